#!/usr/bin/env python3
"""Check a Kaldi-style data directory: print every problem (file:line: message), exit 1 if any.

Usage: python utils/validate_data_dir.py [--no-empty-text] DATA_DIR
"""
import argparse
import sys

from bloomzmms.datadir import validate_data_dir


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir")
    parser.add_argument("--no-empty-text", action="store_true", help="report utterances with an empty text")
    args = parser.parse_args(argv)
    problems = validate_data_dir(args.data_dir, no_empty_text=args.no_empty_text)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"validate_data_dir.py: {args.data_dir}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"validate_data_dir.py: {args.data_dir} is valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
