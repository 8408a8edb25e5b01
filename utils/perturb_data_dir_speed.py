#!/usr/bin/env python3
"""Speed-perturb a data directory with sox `speed` (tempo and pitch, as in Kaldi/ESPnet).

Utterance, speaker (and recording) ids get the prefix `sp<factor>-`; wav.scp entries become sox
pipes; segments times, utt2num_samples and utt2dur are scaled; every other per-utterance file is
carried with renamed keys. With --factors, DEST holds all the copies combined (1.0: the original ids).

Usage: python utils/perturb_data_dir_speed.py (--factor F | --factors F1 F2 ...) SRC DEST
"""
import argparse
import itertools
import logging
import sys

from bloomzmms.datadir import DataDirError, load_data_dir, save_data_dir, speed_perturb_combined


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     usage="%(prog)s (--factor F | --factors F1 F2 ...) SRC DEST")
    # --factors takes several values, so SRC and DEST may land in it; they are sorted out below.
    parser.add_argument("dirs", nargs="*", help=argparse.SUPPRESS)
    factor = parser.add_mutually_exclusive_group(required=True)
    factor.add_argument("--factor", type=float, metavar="F", help="one speed factor, e.g. 0.9")
    factor.add_argument("--factors", nargs="+", metavar="F", help="several factors, e.g. 0.9 1.0 1.1")
    args = parser.parse_args(argv)
    factors, dirs = [args.factor], args.dirs
    if args.factors:
        factors = [float(f) for f in itertools.takewhile(_is_number, args.factors)]
        dirs = args.dirs + args.factors[len(factors):]
        if not factors:
            parser.error(f"--factors: expected numbers, got {args.factors[0]}")
    if len(dirs) != 2:
        parser.error(f"expected SRC DEST, got {' '.join(dirs) or 'nothing'}")
    src, dest = dirs
    if dest == src:
        parser.error("DEST must differ from SRC")
    perturbed = speed_perturb_combined(load_data_dir(src), factors)
    save_data_dir(perturbed, dest)
    print(f"perturb_data_dir_speed.py: {dest}: {len(perturbed.utt2spk)} utterances "
          f"(speed {' '.join(f'{f:g}' for f in factors)})")
    return 0


if __name__ == "__main__":
    logging.basicConfig(format="%(message)s")
    try:
        sys.exit(main())
    except (DataDirError, OSError, ValueError) as error:
        sys.exit(f"perturb_data_dir_speed.py: error: {error}")
