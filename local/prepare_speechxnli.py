#!/usr/bin/env python3
"""Prepare SpeechXNLI (the XNLI validation sentences read by a TTS, one folder of audio per
language) with the labels of XNLI-1.0, for zero-shot evaluation
(python -m bloomzmms.bin.eval_slu --task_set speechxnli).

Inputs:
  --speechxnli_root: <root>/sentences_<lang>.txt, the distinct premise and hypothesis
      sentences of the language, one per line; line i (0-based) was read into
      <root>/audios/<lang>/xnli_validation_{i:04d}.flac (or .wav).
  --xnli_dev_tsv: XNLI-1.0/xnli.dev.tsv, tab-separated, no quoting, with a header naming
      at least: language, gold_label (entailment | neutral | contradiction), sentence1
      (premise), sentence2 (hypothesis), pairID. The n-th row of a language is its example n
      (Hugging Face's "xnli" validation order).

Premise and hypothesis audio are found by exact match of the sentence with a line of
sentences_<lang>.txt (the line's newline removed, nothing else).

Output: <output_dir>/<lang>/ in the format of bloomzmms/slu_data.py: speech/ (a Kaldi
data dir: wav.scp keyed <lang>-<n, 4 digits>-{premise,hypothesis}, audio not at 16 kHz as a
sox pipe resampling it, a premise shared by several hypotheses listed under each example;
text, utt2spk, spk2utt), examples.jsonl (label: 0 entailment, 1 neutral, 2 contradiction; "language",
"pair_id"), .dropped.

Dropped, each reported as <file>:<line> with a reason: rows with a wrong column count,
invalid UTF-8 or an unknown label (bad_xnli_row), a premise or hypothesis found in no line of
sentences_<lang>.txt (unmatched_sentence), its audio file missing or unreadable. Repeated or
empty lines of sentences_<lang>.txt are reported (the first occurrence is used).

Usage:
    python local/prepare_speechxnli.py --speechxnli_root /corpora/speechxnli \\
        --xnli_dev_tsv /corpora/XNLI-1.0/xnli.dev.tsv --output_dir data/speechxnli [--languages de en]
"""

import argparse
import collections
import logging
import sys
from pathlib import Path
from typing import Dict, List

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bloomzmms, when run from a checkout without installing it
from bloomzmms.cli import start_logging  # noqa: E402
from bloomzmms.slu_data import Dropped, SLUExample, audio_entry, write_task_dir  # noqa: E402

LANGUAGES = ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")
LABELS = ("entailment", "neutral", "contradiction")
FIELDS = (("premise", "sentence1"), ("hypothesis", "sentence2"))
REQUIRED_COLUMNS = ("language", "gold_label", "sentence1", "sentence2", "pairID")


def read_xnli_dev(tsv_path: Path):
    """{language: [(row, "<file>:<line>"), ...]} in file order, and the dropped rows by
    language (None: not even the language could be read)."""
    lines = tsv_path.read_bytes().split(b"\n")
    header = lines[0].decode("utf-8").lstrip("\ufeff").rstrip("\r").split("\t")
    absent = [column for column in REQUIRED_COLUMNS if column not in header]
    if absent:
        raise ValueError(f"{tsv_path}:1: header lacks the columns {absent}: is it XNLI-1.0's xnli.dev.tsv?")
    rows, dropped = collections.defaultdict(list), collections.defaultdict(list)
    for number, raw in enumerate(lines[1:], 2):
        if not raw.strip():
            continue
        source = f"{tsv_path}:{number}"
        try:
            values = raw.decode("utf-8").rstrip("\r").split("\t")
        except UnicodeDecodeError as error:
            dropped[None].append(Dropped(source, "bad_xnli_row", f"invalid UTF-8 at byte {error.start}"))
            continue
        if len(values) != len(header):
            language = values[0] if len(values) > 1 else None
            dropped[language].append(Dropped(source, "bad_xnli_row", f"{len(values)} columns, expected {len(header)}"))
            continue
        row = dict(zip(header, values))
        if row["gold_label"] not in LABELS:
            problem = f"label {row['gold_label']!r} is not one of {LABELS}"
            dropped[row["language"]].append(Dropped(source, "bad_xnli_row", problem))
            continue
        rows[row["language"]].append((row, source))
    return rows, dropped


def read_sentences(root: Path, language: str):
    """{sentence: audio path} from sentences_<lang>.txt, and the dropped lines."""
    path = root / f"sentences_{language}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: is {root} a SpeechXNLI folder?")
    audio_dir = root / "audios" / language
    sentences, dropped = {}, []
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines[-1] == "":
        lines.pop()
    for index, sentence in enumerate(lines):
        source = f"{path}:{index + 1}"
        if not sentence.strip():
            dropped.append(Dropped(source, "empty_sentence", "empty line"))
        elif sentence in sentences:
            dropped.append(Dropped(source, "repeated_sentence", f"also {sentences[sentence].name}"))
        else:
            stem = f"xnli_validation_{index:04d}"
            flac = audio_dir / f"{stem}.flac"
            sentences[sentence] = flac if flac.is_file() else audio_dir / f"{stem}.wav"
    return sentences, dropped


def prepare_language(language: str, root: Path, xnli_rows, bad_rows: List[Dropped], output_dir: Path) -> Dict:
    sentences, dropped = read_sentences(root, language)
    dropped += bad_rows
    if not xnli_rows:
        raise ValueError(f"no rows of language {language!r} in the XNLI dev file")
    audio_entries: Dict[Path, tuple] = {}
    examples: List[SLUExample] = []
    for number, (row, source) in enumerate(tqdm(xnli_rows, desc=language, unit="example")):
        audio, problem = {}, None
        for field, column in FIELDS:
            sentence = row[column]
            if sentence not in sentences:
                problem = ("unmatched_sentence", f"{field} {sentence[:80]!r} is no line of sentences_{language}.txt")
                break
            path = sentences[sentence]
            if not path.is_file():
                problem = ("missing_audio", f"{field}: {path.with_suffix('')}.{{flac,wav}}")
                break
            if path not in audio_entries:  # a premise serves several examples: check it once
                audio_entries[path] = audio_entry(path.resolve())
            audio[field], problem = audio_entries[path]
            if problem:
                break
        if problem:
            dropped.append(Dropped(source, *problem))
            continue
        label = LABELS.index(row["gold_label"])
        examples.append(SLUExample(
            id=f"{language}-{number:04d}", task="xnli", label=label, label_name=LABELS[label],
            fields=[field for field, _ in FIELDS], texts={field: row[column] for field, column in FIELDS},
            audio=audio, source=source, extra={"language": language, "pair_id": row["pairID"]},
        ))
    for item in dropped:
        logging.warning("%s: dropped (%s): %s", item.source, item.reason, item.detail)
    if not examples:
        raise RuntimeError(f"{language}: no valid examples")
    write_task_dir(output_dir / language, examples, dropped)
    return {"examples": len(examples), "dropped": collections.Counter(item.reason for item in dropped)}


def prepare_speechxnli(speechxnli_root, xnli_dev_tsv, output_dir, languages=None) -> Dict[str, Dict]:
    """Prepare each language; return {language: summary}."""
    root, output_dir = Path(speechxnli_root), Path(output_dir)
    rows, bad_rows = read_xnli_dev(Path(xnli_dev_tsv))
    for item in bad_rows.get(None, []):
        logging.warning("%s: dropped (%s): %s", item.source, item.reason, item.detail)
    if languages is None:
        languages = [language for language in LANGUAGES if (root / f"sentences_{language}.txt").is_file()]
    if not languages:
        raise FileNotFoundError(f"no sentences_<lang>.txt in {root}")
    summaries = {}
    for language in languages:
        summary = prepare_language(language, root, rows.get(language, []), bad_rows.get(language, []), output_dir)
        summaries[language] = summary
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(summary["dropped"].items())) or "none"
        logging.info("%s: %d examples; dropped: %s (listed in %s)",
                     language, summary["examples"], reasons, output_dir / language / ".dropped")
    if bad_rows.get(None):
        logging.warning("%s: %d unusable rows of no known language, listed above", xnli_dev_tsv, len(bad_rows[None]))
    return summaries


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speechxnli_root", required=True, help="folder with sentences_<lang>.txt and audios/<lang>/")
    parser.add_argument("--xnli_dev_tsv", required=True, help="XNLI-1.0/xnli.dev.tsv")
    parser.add_argument("--output_dir", required=True, help="where <lang>/ directories go")
    parser.add_argument("--languages", nargs="+", choices=LANGUAGES, default=None,
                        help="default: every language with a sentences_<lang>.txt")
    return parser


def main(argv=None):
    args = get_parser().parse_args(argv)
    start_logging()
    try:
        prepare_speechxnli(args.speechxnli_root, args.xnli_dev_tsv, args.output_dir, args.languages)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"prepare_speechxnli: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
