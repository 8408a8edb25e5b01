"""Transcribe the audio of a table (CSV) with a trained model; write the table back with a
prediction column.

Input: ``--csv`` with a header row and an audio-path column ``--audio_col`` (relative paths are
relative to the CSV's folder); ``--model_dir``, a trained experiment dir (``config.yaml`` and
weights; ``--model_file`` picks the weights, default: the model its ``best_model_criterion``
selected, as the recipe's decoding does).

Output: ``--output``, every row of the input in the input order with all its columns, plus
``--prediction_col`` (default ``prediction``) holding the model's transcript (or, for an LLM
model, its response to the instruction). Rows whose audio cannot be used (missing, unreadable,
a line that is not UTF-8, wrong number of fields) get an empty prediction and are reported with
``<csv>:<line>`` and the reason. Lines that are not UTF-8 are written back byte for byte.

The audio is converted to 16 kHz mono (``bloomzmms.bin.dump_audio``) and decoded in batches by
``bloomzmms.bin.infer`` (its decoding options through ``--decode_config``) in ``--work_dir``.

Usage:
    python -m bloomzmms.bin.predict_table --csv test.csv --audio_col audio_path \\
        --model_dir exp/asr_train_ctc_train --output test_predicted.csv \\
        [--model_file valid.cer_ctc.best.pth] [--prediction_col prediction] [--batch_size 8] \\
        [--decode_config conf/decode_ctc.yaml] [--device cuda]
"""

import argparse
import csv
import logging
import sys
import tempfile
from pathlib import Path
from typing import Dict, List

import torch
import yaml

from bloomzmms.bin import infer
from bloomzmms.bin.dump_audio import dump_data_dir
from bloomzmms.cli import parse_args_with_config
from bloomzmms.csv_table import Dropped, TableError, TableRow, read_table, table_utterances, write_data_dir


def best_model_file(model_dir: Path) -> Path:
    """The weights the trainer selected: ``<phase>.<metric>.ave.pth`` when it keeps n > 1 best
    models, else ``<phase>.<metric>.best.pth``."""
    config_path = model_dir / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: missing: is {model_dir} a trained experiment dir?")
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    phase, metric, _ = config["best_model_criterion"][0]
    keep = config.get("keep_nbest_models", 1)
    keep = max(keep) if isinstance(keep, list) else keep
    path = model_dir / (f"{phase}.{metric}.ave.pth" if keep > 1 else f"{phase}.{metric}.best.pth")
    if not path.is_file():
        found = sorted(p.name for p in model_dir.glob("*.pth"))
        raise FileNotFoundError(f"{path}: missing (weights in {model_dir}: {found}); choose one with --model_file")
    return path


def output_fields(row: TableRow, num_columns: int, prediction: str) -> List[str]:
    """The row's fields with the prediction in the header's new last column: a short row is
    padded with empty fields, the extra fields of a long row follow the prediction."""
    fields = row.fields[:num_columns] + [""] * (num_columns - len(row.fields))
    return fields + [prediction] + row.fields[num_columns:]


def write_table(path: Path, header: List[str], rows: List[TableRow], predictions: Dict[int, str], delimiter: str):
    """Atomically: a temporary sibling, then renamed. Surrogates (bytes of a non-UTF-8 line)
    are written back as the original bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
        writer = csv.writer(f, delimiter=delimiter, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow(output_fields(row, len(header) - 1, predictions.get(row.line, "")))
    temporary.replace(path)


def predict_table(args: argparse.Namespace) -> Dict[int, str]:
    """Write the output table; return the prediction of each usable row by CSV line."""
    csv_path, output = Path(args.csv), Path(args.output)
    header, _ = read_table(csv_path, args.delimiter)
    if args.prediction_col in header:
        raise TableError(f"{csv_path}: already has a column {args.prediction_col!r}: choose another --prediction_col")
    model_file = Path(args.model_file) if args.model_file else best_model_file(Path(args.model_dir))
    if not model_file.is_absolute() and not model_file.is_file():
        model_file = Path(args.model_dir) / model_file
    rows, utterances, dropped = table_utterances(csv_path, args.audio_col, utt_prefix="row", delimiter=args.delimiter)
    predictions = decode_utterances(args, model_file, utterances, dropped) if utterances else {}
    for item in sorted(dropped, key=lambda item: item.line):
        logging.warning("%s:%d: no prediction (%s): %s", item.csv_path, item.line, item.reason, item.detail)
    write_table(output, header + [args.prediction_col], rows, predictions, args.delimiter)
    logging.info("%s: %d rows, %d predicted, %d without prediction (bad audio or row)",
                 output, len(rows), len(predictions), len(rows) - len(predictions))
    return predictions


def decode_utterances(args: argparse.Namespace, model_file: Path, utterances, dropped: List[Dropped]) -> Dict[int, str]:
    """Predictions by CSV line: the audio converted to 16 kHz mono in a temporary data dir, then
    decoded by infer. Audio that fails to convert is added to ``dropped``."""
    line_of = {utt.utt_id: utt.line for utt in utterances}
    with tempfile.TemporaryDirectory(prefix="predict_table.", dir=args.work_dir) as work_dir:
        work = Path(work_dir)
        write_data_dir(work / "data", utterances, [])
        # flac.ark, as stage 3 dumps: the same 16-bit samples as the recipe's own decoding.
        dump_data_dir(str(work / "data"), str(work / "dump"), audio_format="flac.ark", nj=args.nj)
        for line in (work / "dump" / ".dropped").read_text(encoding="utf-8").splitlines():
            utt_id, reason = line.split(" ", 1)
            dropped.append(Dropped(Path(args.csv), line_of[utt_id], "unreadable_audio", reason))
        if not (work / "dump" / "wav.scp").stat().st_size:
            return {}
        options = ["--asr_model_file", str(model_file), "--data_dir", str(work / "dump"),
                   "--output_dir", str(work / "decode"), "--device", args.device]
        if args.batch_size is not None:
            options += ["--batch_size", str(args.batch_size)]
        if args.decode_config:
            options += ["--config", args.decode_config]
        texts = infer.decode(parse_args_with_config(infer.get_parser(), options, strict=False))
    return {line_of[utt_id]: text for utt_id, text in texts.items()}


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", required=True, help="input table (header row first)")
    parser.add_argument("--audio_col", required=True, help="column of audio paths (relative: to the CSV's folder)")
    parser.add_argument("--model_dir", required=True, help="trained experiment dir (config.yaml + weights)")
    parser.add_argument("--model_file", default=None,
                        help="weights (default: the best model of the config's best_model_criterion); "
                        "a relative name is looked up in --model_dir")
    parser.add_argument("--output", required=True, help="output table")
    parser.add_argument("--prediction_col", default="prediction", help="name of the added column")
    parser.add_argument("--batch_size", type=int, default=None,
                        help="utterances per decoding batch (default: --decode_config's, else infer's)")
    parser.add_argument("--decode_config", default=None, help="YAML of bloomzmms.bin.infer options (beams, ...)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--delimiter", default=",", help="field delimiter of input and output (default: ',')")
    parser.add_argument("--nj", type=int, default=1, help="processes converting the audio")
    parser.add_argument("--work_dir", default=None, help="where the temporary audio and decodes go (default: /tmp)")
    return parser


def main(cmd=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = get_parser().parse_args(cmd)
    if args.delimiter in ("\\t", "tab"):
        args.delimiter = "\t"
    try:
        predict_table(args)
    except (TableError, FileNotFoundError) as error:
        sys.exit(f"predict_table: error: {error}")


if __name__ == "__main__":
    main()
