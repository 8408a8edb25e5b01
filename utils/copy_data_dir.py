#!/usr/bin/env python3
"""Copy a data directory, optionally adding a prefix/suffix to utterance and speaker ids.

Keys are rewritten in every per-utterance file (and wav.scp's, unless segments exist: then the
recording ids stay). Training-set copies use suffixes (--utt-suffix -1); keep utterance ids
starting with their speaker id (e.g. give the same --utt-prefix and --spk-prefix).

Usage: python utils/copy_data_dir.py [--utt-prefix P] [--utt-suffix S] [--spk-prefix P] [--spk-suffix S] SRC DEST
"""
import argparse
import sys

from bloomzmms.datadir import DataDirError, add_affixes, load_data_dir, save_data_dir


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src")
    parser.add_argument("dest")
    for option in ("--utt-prefix", "--utt-suffix", "--spk-prefix", "--spk-suffix"):
        parser.add_argument(option, default="", metavar="STR")
    args = parser.parse_args(argv)
    if args.dest == args.src:
        parser.error("DEST must differ from SRC")
    data = add_affixes(load_data_dir(args.src), args.utt_prefix, args.utt_suffix, args.spk_prefix, args.spk_suffix)
    save_data_dir(data, args.dest)
    print(f"copy_data_dir.py: {args.src} -> {args.dest}: {len(data.utt2spk)} utterances")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (DataDirError, OSError) as error:
        sys.exit(f"copy_data_dir.py: error: {error}")
