#!/usr/bin/env python3
"""Keep the utterances of a data directory whose duration and transcript are usable for training.

Drops utterances shorter than --min_duration or longer than --max_duration seconds (from
utt2num_samples) and, with --no_empty_text, those whose text is empty; every per-utterance file is
carried along and every drop is reported with its reason in DEST/.dropped.

Usage: python utils/filter_data_dir.py [--min_duration 0.1] [--max_duration 30] [--fs 16000]
                                       [--no_empty_text] SRC DEST
"""
import argparse
import sys
from pathlib import Path

from bloomzmms.datadir import DataDirError, load_data_dir, save_data_dir, subset


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src")
    parser.add_argument("dest")
    parser.add_argument("--min_duration", type=float, default=0.1, help="seconds (default: 0.1)")
    parser.add_argument("--max_duration", type=float, default=30.0, help="seconds (default: 30)")
    parser.add_argument("--fs", type=int, default=16000, help="sampling rate of utt2num_samples")
    parser.add_argument("--no_empty_text", action="store_true", help="drop utterances with empty text")
    args = parser.parse_args(argv)
    data = load_data_dir(args.src)
    if "utt2num_samples" not in data.files:
        raise DataDirError(f"{args.src}: utt2num_samples is missing (dump the audio first)")
    dropped = {}
    for utt, samples in data.files["utt2num_samples"].items():
        seconds = int(samples) / args.fs
        if seconds < args.min_duration:
            dropped[utt] = f"shorter than {args.min_duration} s ({seconds:.2f} s)"
        elif seconds > args.max_duration:
            dropped[utt] = f"longer than {args.max_duration} s ({seconds:.2f} s)"
    if args.no_empty_text:
        dropped.update({utt: "empty text" for utt, text in data.files.get("text", {}).items() if not text.strip()})
    kept = [utt for utt in data.utt2spk if utt not in dropped]
    save_data_dir(subset(data, kept), args.dest)
    (Path(args.dest) / ".dropped").write_text("".join(f"{utt} {dropped[utt]}\n" for utt in sorted(dropped)), encoding="utf-8")
    reasons = {}
    for reason in dropped.values():
        reasons[reason.split(" (")[0]] = reasons.get(reason.split(" (")[0], 0) + 1
    summary = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items())) or "none dropped"
    print(f"filter_data_dir.py: {args.dest}: kept {len(kept)} of {len(data.utt2spk)} utterances ({summary})")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (DataDirError, OSError, ValueError) as error:
        sys.exit(f"filter_data_dir.py: error: {error}")
