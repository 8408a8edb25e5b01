#!/usr/bin/env python3
"""Combine data directories into DEST, carrying every per-utterance file (utt2lang, decoder_prefix, ...).

Fails on an utterance id found in two sources, and on a file that only some sources have
(unless --skip-missing-extra, which leaves such files out).

Usage: python utils/combine_data.py [--skip-missing-extra] DEST SRC1 SRC2 ...
"""
import argparse
import logging
import sys

from bloomzmms.datadir import DataDirError, combine, load_data_dir, save_data_dir


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest")
    parser.add_argument("sources", nargs="+", metavar="src")
    parser.add_argument("--skip-missing-extra", action="store_true",
                        help="leave out files that some sources lack instead of failing")
    args = parser.parse_args(argv)
    if args.dest in args.sources:
        parser.error("DEST must not be one of the sources")
    combined = combine([load_data_dir(src) for src in args.sources], args.skip_missing_extra)
    save_data_dir(combined, args.dest)
    print(f"combine_data.py: {args.dest}: {len(combined.utt2spk)} utterances from {len(args.sources)} dirs")
    return 0


if __name__ == "__main__":
    logging.basicConfig(format="%(message)s")
    try:
        sys.exit(main())
    except (DataDirError, OSError) as error:
        sys.exit(f"combine_data.py: error: {error}")
