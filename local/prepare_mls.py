#!/usr/bin/env python3
"""Prepare Multilingual LibriSpeech sets (the paper's test sets test_mls_<lang>) as Kaldi data dirs.

Input: <mls_root>/mls_<language>/ (e.g. mls_german; the Opus release's mls_<language>_opus is
used when the FLAC one is absent), per split (train, dev, test):
    <split>/transcripts.txt   `<id>\\t<text>` lines, id = <speaker>_<book>_<utterance>
    <split>/audio/<speaker>/<book>/<id>.flac   (.opus in the Opus release)
    <split>/segments.txt      (source LibriVox URLs and times; not needed here)
Languages are given by code: de en es fr it nl pl pt (conf/languages/mls8.txt).

Output <output_dir>/<split>_mls_<lang>/ (e.g. data/test_mls_de):
    wav.scp          <utt> <flac path> (16 kHz mono FLAC), or an ffmpeg pipe for Opus (sox
                     here cannot read Opus)
    text             <utt> <transcript> (MLS transcripts are lower-cased, unpunctuated)
    utt2spk/spk2utt  speaker = MLS speaker
    utt2lang         <utt> <lang>, or its label in --language_map (e.g. de -> de_de)
    utt2dur          seconds, from the audio header
    .dropped         <file>:<line> <reason> <detail>
Utterance id: mls_<lang>-<split>-<speaker>-<MLS id>, e.g. mls_de-test-1844-1844_931_000000

Dropped: invalid_utf8, wrong_column_count (not two tab-separated fields), malformed_field (id not
<speaker>_<book>_<utterance> of digits), empty_transcript, duplicate_id, missing_audio,
unreadable_audio, too_long. A language whose folder or transcripts are missing is reported and
skipped; the command fails only when no set could be written.

Usage:
    python local/prepare_mls.py --mls_root /corpora/mls --language_list conf/languages/mls8.txt \\
        --language_map conf/languages/to_fleurs.txt --output_dir data
"""

import argparse
import logging
import re
import sys
from pathlib import Path

from tqdm import tqdm

from corpus_common import (Dropped, add_shared_options, languages_and_map, log_drops, log_summary, make_ids,
                           probe_audio, wav_scp_entry, write_data_dir)

from bloomzmms.cli import start_logging  # after corpus_common: it puts the recipe root on sys.path

LANGUAGE_FOLDERS = {"de": "german", "en": "english", "es": "spanish", "fr": "french",
                    "it": "italian", "nl": "dutch", "pl": "polish", "pt": "portuguese"}
MLS_ID = re.compile(r"^(?P<speaker>\d+)_(?P<book>\d+)_(?P<utterance>\d+)$")


def split_dir(mls_root, lang):
    """(<mls_<language>> folder or None, audio suffix)."""
    name = f"mls_{LANGUAGE_FOLDERS[lang]}"
    for folder, suffix in ((name, ".flac"), (f"{name}_opus", ".opus")):
        if (Path(mls_root) / folder).is_dir():
            return Path(mls_root) / folder, suffix
    return None, None


def read_transcripts(path):
    """[(line, MLS id match, text)] of transcripts.txt, and drops."""
    rows, dropped, seen = [], [], {}
    for line_number, raw_line in enumerate(Path(path).read_bytes().split(b"\n"), start=1):
        raw_line = raw_line.rstrip(b"\r")
        if not raw_line.strip():
            continue
        try:
            fields = raw_line.decode("utf-8").split("\t")
        except UnicodeDecodeError as error:
            dropped.append(Dropped(Path(path), line_number, "invalid_utf8", f"byte {error.start}"))
            continue
        problem = None
        match = MLS_ID.match(fields[0].strip()) if len(fields) == 2 else None
        if len(fields) != 2:
            problem = ("wrong_column_count", f"{len(fields)} columns, expected 2")
        elif not match:
            problem = ("malformed_field", f"id {fields[0]!r} is not <speaker>_<book>_<utterance>")
        elif not fields[1].strip():
            problem = ("empty_transcript", fields[0])
        elif match[0] in seen:
            problem = ("duplicate_id", f"{match[0]} (first on line {seen[match[0]]})")
        if problem:
            dropped.append(Dropped(Path(path), line_number, *problem))
            continue
        seen[match[0]] = line_number
        rows.append((line_number, match, " ".join(fields[1].split())))
    return rows, dropped


def prepare_language(mls_root, lang, split, output_dir, labels, max_duration):
    """Write one language's set; return (data dir or None, utterances, dropped)."""
    data_dir = Path(output_dir) / f"{split}_mls_{lang}"
    folder, suffix = split_dir(mls_root, lang)
    transcripts = folder / split / "transcripts.txt" if folder else None
    if transcripts is None or not transcripts.is_file():
        logging.error("%s: no %s under %s: not written", data_dir,
                      transcripts or f"mls_{LANGUAGE_FOLDERS[lang]}/", mls_root)
        return None, 0, []
    rows, dropped = read_transcripts(transcripts)
    files = {name: {} for name in ("wav.scp", "text", "utt2lang", "utt2dur")}
    utt2spk = {}
    for line_number, match, text in tqdm(rows, desc=f"mls {lang} {split}", unit="utt", leave=False):
        audio_path = folder / split / "audio" / match["speaker"] / match["book"] / f"{match[0]}{suffix}"
        reason, result = probe_audio(audio_path, max_duration)
        if reason:
            dropped.append(Dropped(transcripts, line_number, reason, result))
            continue
        utt_id, utt2spk[utt_id] = make_ids(f"mls_{lang}", split, match["speaker"], match[0])
        files["wav.scp"][utt_id], files["text"][utt_id] = wav_scp_entry(audio_path, result), text
        files["utt2lang"][utt_id] = labels.get(lang, lang)
        files["utt2dur"][utt_id] = f"{result.duration:.3f}"
    dropped.sort(key=lambda item: item.line_number)
    log_drops(dropped)
    if not utt2spk:
        logging.error("%s: no valid utterance in %s: not written", data_dir, transcripts)
        return None, 0, dropped
    write_data_dir(data_dir, files, utt2spk, dropped)
    log_summary(data_dir, files["utt2lang"], dropped)
    return data_dir, len(utt2spk), dropped


def prepare_mls(mls_root, languages, output_dir, splits=("test",), language_map=None, max_duration=30.0):
    """Write every (language, split) set; return {(lang, split): (data dir or None, count)}."""
    unknown = [lang for lang in languages if lang not in LANGUAGE_FOLDERS]
    if unknown:
        raise ValueError(f"not MLS language codes: {unknown} (known: {' '.join(LANGUAGE_FOLDERS)})")
    results = {}
    for lang in languages:
        for split in splits:
            data_dir, count, _ = prepare_language(mls_root, lang, split, output_dir,
                                                  language_map or {}, max_duration)
            results[lang, split] = (data_dir, count)
    return results


def get_parser():
    parser = argparse.ArgumentParser(description="Prepare Multilingual LibriSpeech sets as Kaldi data dirs.")
    parser.add_argument("--mls_root", required=True, help="folder holding the mls_<language>/ folders")
    languages = parser.add_mutually_exclusive_group(required=True)
    languages.add_argument("--languages", nargs="+", help="MLS codes (de en es fr it nl pl pt)")
    languages.add_argument("--language_list", help="file of codes, one a line (conf/languages/)")
    parser.add_argument("--splits", nargs="+", default=["test"], choices=("train", "dev", "test"),
                        help="default: test")
    parser.add_argument("--output_dir", required=True, help="where <split>_mls_<lang>/ go")
    add_shared_options(parser, "utterances")
    return parser


def main(argv=None):
    args = get_parser().parse_args(argv)
    start_logging()
    languages, language_map = languages_and_map(args)
    results = prepare_mls(args.mls_root, languages, args.output_dir, splits=args.splits,
                          language_map=language_map, max_duration=args.max_duration)
    if all(data_dir is None for data_dir, _ in results.values()):
        sys.exit("prepare_mls.py: no set could be prepared")


if __name__ == "__main__":
    main()
