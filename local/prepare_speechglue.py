#!/usr/bin/env python3
"""Prepare the SpeechGLUE validation sets, with labels from GLUE's own dev files, for
zero-shot evaluation (python -m bloomzmms.bin.eval_slu --task_set speechglue).

Inputs:
  --speechglue_root: the SpeechGLUE dump (ashi-ta/speechGLUE data_prep.py --dump-dir),
      <root>/<glue task>/<split>/data.csv, split "validation" ("validation_matched" and
      "validation_mismatched" for mnli). data.csv is a CSV with a header: "idx" (the
      example's index in GLUE's validation split) and "file_<field>" (path of the spoken
      field, as written at synthesis time) for each text field; its other columns (the
      normalized text the TTS read, "label") are used when present: texts are stored as
      "spoken_texts", a "label" that disagrees with GLUE's drops the example (a misaligned
      dump). Audio paths that no longer exist are looked up again at the dump's own layout,
      <root>/<task>/<split>/<field>/<idx // 10000 * 10000>/<idx>.{wav,flac}.
  --glue_dir: GLUE as downloaded by download_glue_data.py (glue_data/), tab-separated,
      no quoting; the example index is the data-row number (0-based), as in Hugging Face's
      "glue" loader:
        CoLA/dev.tsv               headerless: source, label (0/1), original mark, sentence
        SST-2/dev.tsv              sentence, label
        MRPC/dev.tsv               Quality, #1 ID, #2 ID, #1 String, #2 String
        QQP/dev.tsv                id, qid1, qid2, question1, question2, is_duplicate
        STS-B/dev.tsv              index, genre, filename, year, old_index, source1, source2,
                                   sentence1, sentence2, score
        MNLI/dev_{matched,mismatched}.tsv   ..., sentence1, sentence2, ..., gold_label
        QNLI/dev.tsv               index, question, sentence, label
        RTE/dev.tsv, WNLI/dev.tsv  index, sentence1, sentence2, label

Output: <output_dir>/<task>/ for task in cola sst2 mrpc qqp stsb mnli_matched
mnli_mismatched qnli rte wnli, in the format of bloomzmms/slu_data.py: speech/ (a Kaldi
data dir: wav.scp keyed <task>-<idx, 6 digits>-<field>, text, utt2spk, spk2utt),
examples.jsonl (id, label as the Hugging Face class index or the STS-B score, label_name,
fields, texts from GLUE), .dropped.

Dropped, each reported as <file>:<line> with a reason: GLUE rows with a wrong column count,
invalid UTF-8, an unknown label or an empty field (bad_glue_row); data.csv rows with a bad or
duplicate idx, an idx not in GLUE (no_glue_row), a label disagreeing with GLUE
(label_mismatch), a missing or unreadable audio file. GLUE rows without speech are counted
(not_synthesized; SpeechGLUE left out sentences its TTS front end could not read).

Usage:
    python local/prepare_speechglue.py --speechglue_root /corpora/speechglue/dump \\
        --glue_dir /corpora/glue_data --output_dir data/speechglue [--tasks rte cola]
"""

import argparse
import collections
import csv
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bloomzmms, when run from a checkout without installing it
from bloomzmms.cli import start_logging  # noqa: E402
from bloomzmms.slu_data import Dropped, SLUExample, audio_entry, write_task_dir  # noqa: E402


@dataclasses.dataclass(frozen=True)
class GlueTask:
    glue_folder: str
    tsv: str
    speechglue_task: str
    split: str
    fields: Tuple[Tuple[str, str], ...]  # (field, GLUE column) in the dataset's order
    label_column: str
    label_names: Optional[Tuple[str, ...]]  # class i = label_names[i]; None: a float score
    header: bool = True


TASKS = {
    "cola": GlueTask("CoLA", "dev.tsv", "cola", "validation", (("sentence", "3"),), "1",
                     ("0", "1"), header=False),
    "sst2": GlueTask("SST-2", "dev.tsv", "sst2", "validation", (("sentence", "sentence"),), "label", ("0", "1")),
    "mrpc": GlueTask("MRPC", "dev.tsv", "mrpc", "validation",
                     (("sentence1", "#1 String"), ("sentence2", "#2 String")), "Quality", ("0", "1")),
    "qqp": GlueTask("QQP", "dev.tsv", "qqp", "validation",
                    (("question1", "question1"), ("question2", "question2")), "is_duplicate", ("0", "1")),
    "stsb": GlueTask("STS-B", "dev.tsv", "stsb", "validation",
                     (("sentence1", "sentence1"), ("sentence2", "sentence2")), "score", None),
    "mnli_matched": GlueTask("MNLI", "dev_matched.tsv", "mnli", "validation_matched",
                             (("premise", "sentence1"), ("hypothesis", "sentence2")), "gold_label",
                             ("entailment", "neutral", "contradiction")),
    "mnli_mismatched": GlueTask("MNLI", "dev_mismatched.tsv", "mnli", "validation_mismatched",
                                (("premise", "sentence1"), ("hypothesis", "sentence2")), "gold_label",
                                ("entailment", "neutral", "contradiction")),
    "qnli": GlueTask("QNLI", "dev.tsv", "qnli", "validation",
                     (("question", "question"), ("sentence", "sentence")), "label", ("entailment", "not_entailment")),
    "rte": GlueTask("RTE", "dev.tsv", "rte", "validation",
                    (("sentence1", "sentence1"), ("sentence2", "sentence2")), "label", ("entailment", "not_entailment")),
    "wnli": GlueTask("WNLI", "dev.tsv", "wnli", "validation",
                     (("sentence1", "sentence1"), ("sentence2", "sentence2")), "label", ("0", "1")),
}
# Hugging Face's class names, for the readable label_name.
CLASS_NAMES = {"cola": ("unacceptable", "acceptable"), "sst2": ("negative", "positive"),
               "mrpc": ("not_equivalent", "equivalent"), "qqp": ("not_duplicate", "duplicate"),
               "wnli": ("not_entailment", "entailment")}


def parse_label(spec: GlueTask, value: str):
    """(label, name) or None for a value that is no label of the task."""
    value = value.strip()
    if spec.label_names is None:
        try:
            score = float(value)
        except ValueError:
            return None
        return (score, value) if 0.0 <= score <= 5.0 else None
    if value not in spec.label_names:
        return None
    return spec.label_names.index(value), value


def read_glue_dev(task: str, spec: GlueTask, glue_dir: Path):
    """{idx: (label, label name, texts, "<file>:<line>")} and the dropped rows."""
    path = glue_dir / spec.glue_folder / spec.tsv
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: is {glue_dir} a glue_data folder?")
    lines = path.read_bytes().split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    columns = None
    rows, dropped = {}, []
    if spec.header:
        # MRPC's header keeps the byte-order mark of Microsoft's source file.
        columns = lines[0].decode("utf-8").lstrip("\ufeff").rstrip("\r").split("\t")
        needed = [column for _, column in spec.fields] + [spec.label_column]
        absent = [column for column in needed if column not in columns]
        if absent:
            raise ValueError(f"{path}:1: header lacks the columns {absent} (has {columns})")
    first_data_line = 2 if spec.header else 1
    # Blank lines are no rows: Hugging Face's csv reader skips them without counting.
    numbered = [(number, raw) for number, raw in enumerate(lines[first_data_line - 1:], first_data_line) if raw.strip()]
    for idx, (number, raw) in enumerate(numbered):
        source = f"{path}:{number}"
        try:
            values = raw.decode("utf-8").rstrip("\r").split("\t")
        except UnicodeDecodeError as error:
            dropped.append(Dropped(source, "bad_glue_row", f"invalid UTF-8 at byte {error.start}"))
            continue
        expected = len(columns) if columns else 4
        if len(values) != expected:
            dropped.append(Dropped(source, "bad_glue_row", f"{len(values)} columns, expected {expected}"))
            continue
        row = dict(zip(columns, values)) if columns else {str(i): v for i, v in enumerate(values)}
        label = parse_label(spec, row[spec.label_column])
        texts = {field: " ".join(row[column].split()) for field, column in spec.fields}
        if label is None:
            dropped.append(Dropped(source, "bad_glue_row", f"label {row[spec.label_column]!r} is not one of "
                                                           f"{spec.label_names or 'the scores 0..5'}"))
        elif not all(texts.values()):
            dropped.append(Dropped(source, "bad_glue_row", "empty text field"))
        else:
            name = CLASS_NAMES[task][label[0]] if task in CLASS_NAMES else label[1]
            rows[idx] = (label[0], name, texts, source)
    return rows, dropped


def find_audio(recorded: str, split_dir: Path, field: str, idx: int) -> Path:
    """The audio file of a data.csv entry: its recorded path, else the dump's own layout."""
    recorded_path = Path(recorded)
    if not recorded_path.is_absolute():
        recorded_path = split_dir / recorded_path
    if recorded_path.is_file():
        return recorded_path
    bucket = split_dir / field / str(idx // 10000 * 10000)
    for suffix in (".wav", ".flac"):
        if (bucket / f"{idx}{suffix}").is_file():
            return bucket / f"{idx}{suffix}"
    return recorded_path


def labels_agree(spec: GlueTask, csv_label: str, glue_label) -> bool:
    """A data.csv label (Hugging Face's class index or score) against GLUE's."""
    try:
        value = float(csv_label)
    except ValueError:
        return False
    return abs(value - glue_label) < 1e-3 if spec.label_names is None else value == glue_label


def prepare_task(task: str, speechglue_root: Path, glue_dir: Path, output_dir: Path) -> Dict:
    spec = TASKS[task]
    glue_rows, dropped = read_glue_dev(task, spec, glue_dir)
    split_dir = speechglue_root / spec.speechglue_task / spec.split
    csv_path = split_dir / "data.csv"
    if not csv_path.is_file():
        raise FileNotFoundError(f"{csv_path} is missing: is {speechglue_root} a SpeechGLUE dump?")
    examples: List[SLUExample] = []
    seen = set()
    with open(csv_path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        needed = ["idx"] + [f"file_{field}" for field, _ in spec.fields]
        absent = [column for column in needed if column not in (reader.fieldnames or [])]
        if absent:
            raise ValueError(f"{csv_path}:1: header lacks the columns {absent} (has {reader.fieldnames})")
        for row in tqdm(reader, desc=task, unit="example"):
            source = f"{csv_path}:{reader.line_num}"
            idx_text = (row["idx"] or "").strip()
            if not idx_text.isdigit() or int(idx_text) in seen:
                reason = "duplicate_idx" if idx_text.isdigit() else "bad_idx"
                dropped.append(Dropped(source, reason, f"idx {idx_text!r}"))
                continue
            idx = int(idx_text)
            seen.add(idx)
            if idx not in glue_rows:
                problem = f"idx {idx} is not a valid row of {spec.glue_folder}/{spec.tsv}"
                dropped.append(Dropped(source, "no_glue_row", problem))
                continue
            label, label_name, texts, glue_source = glue_rows[idx]
            if (row.get("label") or "").strip() and not labels_agree(spec, row["label"], label):
                dropped.append(Dropped(source, "label_mismatch", f"idx {idx}: data.csv label {row['label']!r}, "
                                                                 f"GLUE {label!r} ({glue_source})"))
                continue
            audio, problem = {}, None
            for field, _ in spec.fields:
                recorded = (row[f"file_{field}"] or "").strip()
                if not recorded:
                    problem = ("missing_audio", f"idx {idx}: empty file_{field}")
                    break
                path = find_audio(recorded, split_dir, field, idx)
                if not path.is_file():
                    problem = ("missing_audio", f"idx {idx}: {path}")
                    break
                audio[field], problem = audio_entry(path.resolve())
                if problem:
                    break
            if problem:
                dropped.append(Dropped(source, *problem))
                continue
            spoken = {field: " ".join(row[field].split()) for field, _ in spec.fields if (row.get(field) or "").strip()}
            examples.append(SLUExample(
                id=f"{task}-{idx:06d}", task=task, label=label, label_name=label_name,
                fields=[field for field, _ in spec.fields], texts=texts, audio=audio, source=glue_source,
                extra={"idx": idx, **({"spoken_texts": spoken} if spoken else {})},
            ))
    not_synthesized = len(set(glue_rows) - seen)
    for item in dropped:
        logging.warning("%s: dropped (%s): %s", item.source, item.reason, item.detail)
    if not examples:
        raise RuntimeError(f"{task}: no valid examples in {csv_path}")
    write_task_dir(output_dir / task, examples, dropped)
    return {"examples": len(examples), "not_synthesized": not_synthesized,
            "dropped": collections.Counter(item.reason for item in dropped)}


def prepare_speechglue(speechglue_root, glue_dir, output_dir, tasks=None) -> Dict[str, Dict]:
    """Prepare each task; return {task: summary}."""
    summaries = {}
    for task in tasks or list(TASKS):
        summaries[task] = summary = prepare_task(task, Path(speechglue_root), Path(glue_dir), Path(output_dir))
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(summary["dropped"].items())) or "none"
        logging.info("%s: %d examples; dropped: %s (listed in %s); GLUE rows without speech: %d",
                     task, summary["examples"], reasons, Path(output_dir) / task / ".dropped", summary["not_synthesized"])
    return summaries


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speechglue_root", required=True, help="the SpeechGLUE dump: <root>/<task>/<split>/data.csv")
    parser.add_argument("--glue_dir", required=True, help="glue_data/ (CoLA/, SST-2/, MRPC/, ... with dev*.tsv)")
    parser.add_argument("--output_dir", required=True, help="where <task>/ directories go")
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=None, help="default: all ten")
    return parser


def main(argv=None):
    args = get_parser().parse_args(argv)
    start_logging()
    try:
        prepare_speechglue(args.speechglue_root, args.glue_dir, args.output_dir, args.tasks)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"prepare_speechglue: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
