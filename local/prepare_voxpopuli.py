#!/usr/bin/env python3
"""Prepare VoxPopuli ASR sets (the paper's test sets test_voxpopuli_<lang>) as Kaldi data dirs.

Input: the output of VoxPopuli's ASR data script, <voxpopuli_root>/transcribed_data/<lang>/
(voxpopuli_root may also be the transcribed_data folder itself):
    asr_<split>.tsv     tab-separated with a header; columns found by name: id, raw_text,
                        normalized_text, speaker_id (others: split, gender, is_gold_transcript,
                        accent)
    <year>/<id>.ogg     the audio, year = the first four characters of the id
The text is raw_text (cased, punctuated), or normalized_text where raw_text is empty.

Output <output_dir>/<split>_voxpopuli_<lang>/ (e.g. data/test_voxpopuli_de):
    wav.scp          <utt> sox -R <ogg> -t wav -r 16000 -c 1 -b 16 - |
    text             <utt> <transcript>
    utt2spk/spk2utt  speaker = VoxPopuli speaker_id
    utt2lang         <utt> <lang>, or its label in --language_map (e.g. de -> de_de)
    utt2dur          seconds, from the ogg header
    .dropped         <file>:<line> <reason> <detail>
Utterance id: voxpopuli_<lang>-<split>-<speaker_id>-<id>, e.g.
    voxpopuli_de-test-1234-20180612-0900-PLENARY-3-de_20180612-10:34:49_5

Dropped: invalid_utf8, wrong_column_count, malformed_field (id or speaker_id empty or with
whitespace or '/'), empty_transcript, duplicate_id, missing_audio, unreadable_audio, too_long.
A language without its asr_<split>.tsv is reported and skipped; the command fails only when
no set could be written.

Usage:
    python local/prepare_voxpopuli.py --voxpopuli_root /corpora/voxpopuli \\
        --language_list conf/languages/voxpopuli16.txt --language_map conf/languages/to_fleurs.txt \\
        --output_dir data
"""

import argparse
import logging
import re
import sys
from pathlib import Path

from tqdm import tqdm

from corpus_common import (Dropped, add_shared_options, id_field, languages_and_map, log_drops, log_summary,
                           make_ids, probe_audio, read_header_tsv, wav_scp_entry, write_data_dir)

from bloomzmms.cli import start_logging  # after corpus_common: it puts the recipe root on sys.path

SAFE_FIELD = re.compile(r"^[^\s/\\]+$")


def language_dir(voxpopuli_root, lang):
    root = Path(voxpopuli_root)
    return (root / "transcribed_data" if (root / "transcribed_data").is_dir() else root) / lang


def prepare_language(voxpopuli_root, lang, split, output_dir, labels, max_duration):
    """Write one language's set; return (data dir or None, utterances, dropped)."""
    tsv_path = language_dir(voxpopuli_root, lang) / f"asr_{split}.tsv"
    data_dir = Path(output_dir) / f"{split}_voxpopuli_{lang}"
    if not tsv_path.is_file():
        logging.error("%s is missing: %s not written", tsv_path, data_dir)
        return None, 0, []
    rows, dropped = read_header_tsv(tsv_path, ("id", "raw_text", "normalized_text", "speaker_id"))
    files = {name: {} for name in ("wav.scp", "text", "utt2lang", "utt2dur")}
    utt2spk, seen = {}, {}
    for line_number, row in tqdm(rows, desc=f"voxpopuli {lang} {split}", unit="utt", leave=False):
        item, speaker = row["id"].strip(), row["speaker_id"].strip()
        text = " ".join(row["raw_text"].split()) or " ".join(row["normalized_text"].split())
        problem = None
        if not SAFE_FIELD.match(item) or not SAFE_FIELD.match(speaker):
            problem = ("malformed_field", f"id {item!r}, speaker_id {speaker!r}")
        elif not text:
            problem = ("empty_transcript", item)
        elif item in seen:
            problem = ("duplicate_id", f"{item} (first on line {seen[item]})")
        else:
            seen[item] = line_number
            audio_path = tsv_path.parent / item[:4] / f"{item}.ogg"
            reason, result = probe_audio(audio_path, max_duration)
            problem = (reason, result) if reason else None
        if problem:
            dropped.append(Dropped(tsv_path, line_number, *problem))
            continue
        utt_id, utt2spk[utt_id] = make_ids(f"voxpopuli_{id_field(lang)}", split, id_field(speaker), item)
        files["wav.scp"][utt_id], files["text"][utt_id] = wav_scp_entry(audio_path, result), text
        files["utt2lang"][utt_id] = labels.get(lang, lang)
        files["utt2dur"][utt_id] = f"{result.duration:.3f}"
    dropped.sort(key=lambda item: item.line_number)
    log_drops(dropped)
    if not utt2spk:
        logging.error("%s: no valid utterance in %s: not written", data_dir, tsv_path)
        return None, 0, dropped
    write_data_dir(data_dir, files, utt2spk, dropped)
    log_summary(data_dir, files["utt2lang"], dropped)
    return data_dir, len(utt2spk), dropped


def prepare_voxpopuli(voxpopuli_root, languages, output_dir, splits=("test",), language_map=None,
                      max_duration=30.0):
    """Write every (language, split) set; return {(lang, split): (data dir or None, count)}."""
    results = {}
    for lang in languages:
        for split in splits:
            data_dir, count, _ = prepare_language(voxpopuli_root, lang, split, output_dir,
                                                  language_map or {}, max_duration)
            results[lang, split] = (data_dir, count)
    return results


def get_parser():
    parser = argparse.ArgumentParser(description="Prepare VoxPopuli ASR sets as Kaldi data directories.")
    parser.add_argument("--voxpopuli_root", required=True,
                        help="folder holding transcribed_data/ (or transcribed_data itself)")
    languages = parser.add_mutually_exclusive_group(required=True)
    languages.add_argument("--languages", nargs="+", help="VoxPopuli language codes")
    languages.add_argument("--language_list", help="file of codes, one a line (conf/languages/)")
    parser.add_argument("--splits", nargs="+", default=["test"], choices=("train", "dev", "test"),
                        help="asr_<split>.tsv to read (default: test)")
    parser.add_argument("--output_dir", required=True, help="where <split>_voxpopuli_<lang>/ go")
    add_shared_options(parser, "segments")
    return parser


def main(argv=None):
    args = get_parser().parse_args(argv)
    start_logging()
    languages, language_map = languages_and_map(args)
    results = prepare_voxpopuli(args.voxpopuli_root, languages, args.output_dir, splits=args.splits,
                                language_map=language_map, max_duration=args.max_duration)
    if all(data_dir is None for data_dir, _ in results.values()):
        sys.exit("prepare_voxpopuli.py: no set could be prepared")


if __name__ == "__main__":
    main()
