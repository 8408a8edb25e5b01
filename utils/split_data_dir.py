#!/usr/bin/env python3
"""Split a data directory into DATA_DIR/splitN/1..N, each a complete data dir.

Contiguous chunks balanced by utterance count; --per-spk keeps each speaker in one part.
Re-running is a no-op while the split is up to date with DATA_DIR's files.

Usage: python utils/split_data_dir.py [--per-spk] DATA_DIR N
"""
import argparse
import logging
import os
import sys

from bloomzmms.datadir import DataDirError, split_data_dir


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir")
    parser.add_argument("num_parts", type=int, metavar="N")
    parser.add_argument("--per-spk", action="store_true", help="split by speaker")
    args = parser.parse_args(argv)
    parts = split_data_dir(args.data_dir, args.num_parts, per_spk=args.per_spk)
    print(f"split_data_dir.py: {os.path.dirname(parts[0])}: {len(parts)} parts")
    return 0


if __name__ == "__main__":
    logging.basicConfig(format="split_data_dir.py: %(message)s", level=logging.INFO)
    try:
        sys.exit(main())
    except (DataDirError, OSError, ValueError) as error:
        sys.exit(f"split_data_dir.py: error: {error}")
