#!/usr/bin/env python3
"""Copy a subset of a data directory, carrying every per-utterance file.

Pick the utterances with exactly one of: --utt-list FILE (first column), --spk-list FILE,
--first N, --last N (in sorted order), --shuffle N [--seed S] (N random ones, reproducible).

Usage: python utils/subset_data_dir.py (--utt-list FILE | --spk-list FILE | --first N | --last N
                                        | --shuffle N [--seed S]) SRC DEST
"""
import argparse
import sys

from bloomzmms.datadir import DataDirError, choose_utterances, load_data_dir, read_entries, save_data_dir, subset


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src")
    parser.add_argument("dest")
    choice = parser.add_mutually_exclusive_group(required=True)
    choice.add_argument("--utt-list", metavar="FILE", help="utterance ids, one a line (first column)")
    choice.add_argument("--spk-list", metavar="FILE", help="speaker ids, one a line (first column)")
    choice.add_argument("--first", type=int, metavar="N")
    choice.add_argument("--last", type=int, metavar="N")
    choice.add_argument("--shuffle", type=int, metavar="N", help="N utterances drawn at random (see --seed)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for --shuffle (default: 0)")
    args = parser.parse_args(argv)
    data = load_data_dir(args.src)
    utt_list = [e.key for e in read_entries(args.utt_list)] if args.utt_list else None
    spk_list = [e.key for e in read_entries(args.spk_list)] if args.spk_list else None
    utts = choose_utterances(data, utt_list=utt_list, spk_list=spk_list, first=args.first, last=args.last,
                             shuffle=args.shuffle, seed=args.seed)
    if utt_list is not None and len(set(utt_list)) > len(set(utts)):
        print(f"subset_data_dir.py: warning: {len(set(utt_list)) - len(set(utts))} ids of {args.utt_list} "
              f"are not in {args.src}", file=sys.stderr)
    save_data_dir(subset(data, utts), args.dest)
    print(f"subset_data_dir.py: {args.dest}: {len(set(utts))} of {len(data.utt2spk)} utterances")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (DataDirError, OSError, ValueError) as error:
        sys.exit(f"subset_data_dir.py: error: {error}")
