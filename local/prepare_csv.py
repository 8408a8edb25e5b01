#!/usr/bin/env python3
"""Prepare a table (CSV) of audio paths and transcripts as a Kaldi data directory.

Input: a CSV file with a header row; ``--audio_col`` names the column of audio paths (relative
paths are relative to the CSV's folder), ``--text_col`` the transcripts, ``--lang_col`` the
language codes (or ``--language`` gives one code for every row, and for rows whose cell is empty).

Output, <output_dir>:
    wav.scp          <utt> <absolute path>, or <utt> sox -R <path> -t wav -r 16000 -c 1 -b 16 - |
                     for audio at another rate or with several channels
    text             <utt> <transcript, whitespace collapsed>
    utt2spk/spk2utt  speaker = utterance
    utt2lang         <utt> <language code>   (the language-ID targets of the recipe)
    utt2num_samples  <utt> <samples at 16 kHz>
    utt2row          <utt> <CSV line number>  (restores the table's order)
    .dropped         one line per dropped row, tab-separated: <csv>:<line> <reason> <detail>
With ``--held_out_fraction F --held_out_dir DIR`` a seeded random share F of the usable rows
(at least one) goes to DIR instead, e.g. a validation set carved out of the training table
(the dropped rows are listed in <output_dir>/.dropped only).

Utterance id: <prefix><CSV line number, 8 digits> (prefix: ``--utt_prefix``, default the CSV
file's stem and ``-``), e.g. ``train-00000012``: stable from the row, sorted in table order.

Dropped rows (reported as <csv>:<line> with a reason, counted in the summary; the rest is used):
    not_utf8, missing_column (fewer fields than the header), extra_fields, empty_transcript,
    missing_language, malformed_language, missing_audio (empty path or no such file),
    unreadable_audio (not an audio file soundfile reads, or no samples).

Each directory is written to a temporary sibling and renamed into place.

Usage:
    python local/prepare_csv.py --csv train.csv --audio_col audio_path --text_col text \\
        --language en_us --output_dir data/train [--held_out_fraction 0.1 --held_out_dir data/valid --seed 0]
    python local/prepare_csv.py --csv test.csv --audio_col path --text_col sentence --lang_col locale \\
        --output_dir data/test
"""

import argparse
import collections
import logging
import random
import sys
from pathlib import Path

RECIPE_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(RECIPE_ROOT))  # bloomzmms, when run from a checkout without installing it

from bloomzmms.cli import start_logging  # noqa: E402
from bloomzmms.csv_table import TableError, table_utterances, write_data_dir  # noqa: E402


def split_held_out(utterances, fraction: float, seed: int):
    """(kept, held out): a seeded random ``fraction`` of the utterances, at least one, held out."""
    if not 0 < fraction < 1:
        raise ValueError(f"--held_out_fraction must be between 0 and 1, got {fraction}")
    if len(utterances) < 2:
        raise TableError(f"{len(utterances)} usable row(s): too few to hold out a validation set")
    count = min(len(utterances) - 1, max(1, round(len(utterances) * fraction)))
    held_out = set(random.Random(seed).sample(range(len(utterances)), count))
    return ([utt for i, utt in enumerate(utterances) if i not in held_out],
            [utt for i, utt in enumerate(utterances) if i in held_out])


def prepare_csv(csv_path, output_dir, audio_col, text_col, lang_col=None, language=None, utt_prefix=None,
                delimiter=",", held_out_fraction=None, held_out_dir=None, seed=0):
    """Write the data dir(s); return {data dir: number of utterances} and the dropped rows."""
    if lang_col is None and language is None:
        raise ValueError("give --lang_col or --language: every utterance needs a language (utt2lang)")
    if (held_out_fraction is None) != (held_out_dir is None):
        raise ValueError("--held_out_fraction and --held_out_dir go together")
    _, utterances, dropped = table_utterances(csv_path, audio_col, text_col, lang_col, language, utt_prefix, delimiter)
    for item in dropped:
        logging.warning("%s:%d: dropped (%s): %s", item.csv_path, item.line, item.reason, item.detail)
    if not utterances:
        raise TableError(f"{csv_path}: no usable rows ({len(dropped)} dropped, see above)")
    parts = {Path(output_dir): utterances}
    if held_out_dir is not None:
        parts = dict(zip((Path(output_dir), Path(held_out_dir)), split_held_out(utterances, held_out_fraction, seed)))
    for directory, part in parts.items():
        write_data_dir(directory, part, dropped if directory == Path(output_dir) else [])
    counts = {directory: len(part) for directory, part in parts.items()}
    log_summary(csv_path, counts, dropped)
    return counts, dropped


def log_summary(csv_path, counts, dropped):
    written = ", ".join(f"{directory}: {count}" for directory, count in counts.items())
    logging.info("%s: %d utterances (%s)", csv_path, sum(counts.values()), written)
    if dropped:
        reasons = collections.Counter(item.reason for item in dropped)
        listed = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
        logging.warning("%s: dropped %d rows (%s); listed in %s", csv_path, len(dropped), listed,
                        Path(next(iter(counts))) / ".dropped")


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", required=True, help="the table (header row first)")
    parser.add_argument("--audio_col", required=True, help="column of audio paths (relative: to the CSV's folder)")
    parser.add_argument("--text_col", required=True, help="column of transcripts")
    parser.add_argument("--lang_col", default=None, help="column of language codes (utt2lang)")
    parser.add_argument("--language", default=None, help="language code of rows without one (e.g. en_us)")
    parser.add_argument("--output_dir", required=True, help="the data dir to write")
    parser.add_argument("--utt_prefix", default=None, help="utterance id prefix (default: <CSV stem>-)")
    parser.add_argument("--delimiter", default=",", help="field delimiter (default: ','; '\\t' for TSV)")
    parser.add_argument("--held_out_fraction", type=float, default=None,
                        help="share of usable rows written to --held_out_dir instead (seeded)")
    parser.add_argument("--held_out_dir", default=None, help="data dir of the held-out rows")
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out choice (default: 0)")
    return parser


def main(argv=None):
    args = get_parser().parse_args(argv)
    start_logging()
    delimiter = "\t" if args.delimiter in ("\\t", "tab") else args.delimiter
    try:
        prepare_csv(args.csv, args.output_dir, args.audio_col, args.text_col, args.lang_col, args.language,
                    args.utt_prefix, delimiter, args.held_out_fraction, args.held_out_dir, args.seed)
    except ValueError as error:  # TableError included: a clear message, no traceback
        sys.exit(f"prepare_csv: error: {error}")


if __name__ == "__main__":
    main()
