#!/usr/bin/env python3
"""Keep the utterances present in every per-utterance file, sort all files, regenerate spk2utt.

Prints how many utterances were dropped and why; changed files are backed up to DATA_DIR/.backup/
and the dropped ids (with the reason) listed in DATA_DIR/.backup/dropped. Running it twice is harmless.

Usage: python utils/fix_data_dir.py DATA_DIR
"""
import argparse
import sys

from bloomzmms.datadir import DataDirError, fix_data_dir


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir")
    args = parser.parse_args(argv)
    report = fix_data_dir(args.data_dir)
    print(f"fix_data_dir.py: {args.data_dir}: {report.summary()}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (DataDirError, OSError) as error:
        sys.exit(f"fix_data_dir.py: error: {error}")
