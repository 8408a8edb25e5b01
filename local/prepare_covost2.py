#!/usr/bin/env python3
"""Prepare CoVoST 2 speech-translation sets (per language pair) as Kaldi data directories.

Input:
    <covost_root>/covost_v2.<src>_<tgt>.tsv   the released TSV of a pair (tab-separated, header;
        columns found by name): path (Common Voice clip name), translation, split (train,
        train_covost, dev, test); sentence and client_id when the TSV has them
    <commonvoice_root>/<src>/clips/<path>     the audio: a Common Voice release holding the
        clips (CoVoST 2 was built on Common Voice 4.0)
    <commonvoice_root>/<src>/validated.tsv    read only when the pair's TSV lacks sentence or
        client_id (the bare release TSVs): those columns are then looked up by path
Pairs use Common Voice locales (fr:en, zh-CN:en, en:de, ...; conf/languages/covost2_pairs.txt).

Output, for each pair and split: <output_dir>/<split>_covost2_<src>-<tgt>/ (e.g.
data/test_covost2_fr-en), laid out like the FLEURS pair sets of local/make_fleurs_pairs.py:
    wav.scp          <utt> sox -R <clip> -t wav -r 16000 -c 1 -b 16 - |
    text             the reference translation;   text_source: the source transcript
    decoder_prefix   the translation instruction of --translation_template for the pair, with
    decoder_postfix  the languages named through --language_map (CoVoST locale -> FLEURS code)
    utt2lang         the spoken language; utt2tgt_lang: the target language (both as labels of
                     --language_map, else the CoVoST locale)
    utt2spk/spk2utt  speaker = Common Voice client (first 16 characters of client_id)
    utt2dur          seconds, from the clip header
    .dropped         <file>:<line> <reason> <detail>
The "train" split includes the rows marked train_covost, as CoVoST 2's own split script does.
Utterance id: covost2_<src, '-' as '_'>-<split>-<client>-<clip number>, e.g.
    covost2_fr-test-0a1b2c3d4e5f6a7b-17557881
(the same source clip has the same id in every pair of that source).

Dropped: invalid_utf8, wrong_column_count, malformed_field, empty_transcript (no source
sentence), empty_translation, duplicate_clip, unknown_clip (not in validated.tsv when looked
up there), missing_audio, unreadable_audio, too_long. A pair whose TSV is missing is reported
and skipped; the command fails only when no pair could be written.

Usage:
    python local/prepare_covost2.py --covost_root /corpora/covost2 \\
        --commonvoice_root /corpora/cv-corpus-4-2019-12-10 --pair_list conf/languages/covost2_pairs.txt \\
        --language_map conf/languages/to_fleurs.txt --output_dir data
    python local/prepare_covost2.py ... --pairs fr:en en:de --splits dev test
"""

import argparse
import logging
import sys
from pathlib import Path

from tqdm import tqdm

from corpus_common import (Dropped, add_shared_options, id_field, log_drops, log_summary, make_ids,
                           probe_audio, read_header_tsv, read_language_map, read_list_file, wav_scp_entry,
                           write_data_dir)
from prepare_commonvoice import CLIENT_ID, CLIENT_ID_LENGTH, CLIP_NAME, clip_stem

from bloomzmms.cli import start_logging
from bloomzmms.instructions import escape_instruction, load_translation_instruction

SPLITS = ("train", "dev", "test")
SPLIT_VALUES = {"train": {"train", "train_covost"}, "dev": {"dev"}, "test": {"test"}}


def parse_pair(text):
    source, sep, target = text.partition(":")
    if not sep or not source or not target or source == target or ":" in target:
        raise argparse.ArgumentTypeError(f"a pair is SRC:TGT of two locales (e.g. fr:en), got {text!r}")
    return source, target


def read_validated(commonvoice_root, source):
    """{clip stem: (client_id, sentence)} of <root>/<source>/validated.tsv."""
    tsv_path = Path(commonvoice_root) / source / "validated.tsv"
    if not tsv_path.is_file():
        raise FileNotFoundError(f"{tsv_path} is missing: the CoVoST TSV has no sentence/client_id "
                                f"columns, so they are read from Common Voice's validated.tsv")
    rows, _ = read_header_tsv(tsv_path, ("client_id", "path", "sentence"))
    return {clip_stem(row["path"]): (row["client_id"].strip(), row["sentence"]) for _, row in rows}


def parse_pair_rows(tsv_path, split, commonvoice_root, source):
    """Rows of one split as [(line, stem, client, sentence, translation, clip path)], and drops."""
    rows, dropped = read_header_tsv(tsv_path, ("path", "translation", "split"))
    if not rows:
        return [], dropped
    has_source_columns = {"sentence", "client_id"} <= set(rows[0][1])
    validated = None if has_source_columns else read_validated(commonvoice_root, source)
    clips, seen = [], {}
    for line_number, row in rows:
        if row["split"].strip() not in SPLIT_VALUES[split]:
            continue
        stem = clip_stem(row["path"])
        if validated is not None and stem in validated:
            row = {**row, "client_id": validated[stem][0], "sentence": validated[stem][1]}
        client = row.get("client_id", "").strip()
        sentence, translation = " ".join(row.get("sentence", "").split()), " ".join(row["translation"].split())
        problem = None
        if stem is None:
            problem = ("malformed_field", f"path {row['path']!r}")
        elif validated is not None and stem not in validated:
            problem = ("unknown_clip", f"{stem} not in {Path(commonvoice_root) / source / 'validated.tsv'}")
        elif not CLIENT_ID.match(client):
            problem = ("malformed_field", f"client_id {client[:20]!r}")
        elif not sentence:
            problem = ("empty_transcript", row["path"])
        elif not translation:
            problem = ("empty_translation", row["path"])
        elif stem in seen:
            problem = ("duplicate_clip", f"{row['path']} (first on line {seen[stem]})")
        if problem:
            dropped.append(Dropped(Path(tsv_path), line_number, *problem))
            continue
        seen[stem] = line_number
        file_name = row["path"].strip() if CLIP_NAME.match(row["path"].strip())["suffix"] else f"{stem}.mp3"
        clip_path = Path(commonvoice_root) / source / "clips" / file_name
        clips.append((line_number, stem, client[:CLIENT_ID_LENGTH].lower(), sentence, translation, clip_path))
    return clips, dropped


def prepare_pair(covost_root, commonvoice_root, source, target, split, output_dir, translation,
                 labels, max_duration):
    """Write one pair's data dir; return (data dir, utterances, dropped)."""
    tsv_path = Path(covost_root) / f"covost_v2.{source}_{target}.tsv"
    clips, dropped = parse_pair_rows(tsv_path, split, commonvoice_root, source)
    source_label, target_label = labels.get(source, source), labels.get(target, target)
    prefix, postfix = (escape_instruction(text) for text in translation.format(source_label, target_label))
    files = {name: {} for name in ("wav.scp", "text", "text_source", "decoder_prefix",
                                   "decoder_postfix", "utt2lang", "utt2tgt_lang", "utt2dur")}
    utt2spk = {}
    for line_number, stem, client, sentence, reference, clip_path in tqdm(
            clips, desc=f"covost2 {source}-{target} {split}", unit="clip", leave=False):
        reason, result = probe_audio(clip_path, max_duration)
        if reason:
            dropped.append(Dropped(tsv_path, line_number, reason, result))
            continue
        utt_id, utt2spk[utt_id] = make_ids(f"covost2_{id_field(source)}", split, client,
                                           CLIP_NAME.match(stem)["number"])
        values = {"wav.scp": wav_scp_entry(clip_path, result), "text": reference, "text_source": sentence,
                  "decoder_prefix": prefix, "decoder_postfix": postfix, "utt2lang": source_label,
                  "utt2tgt_lang": target_label, "utt2dur": f"{result.duration:.3f}"}
        for name, value in values.items():
            files[name][utt_id] = value
    dropped.sort(key=lambda item: item.line_number)
    log_drops(dropped)
    data_dir = Path(output_dir) / f"{split}_covost2_{source}-{target}"
    if not utt2spk:
        logging.error("%s: no valid %s utterance in %s: not written", data_dir, split, tsv_path)
        return None, 0, dropped
    write_data_dir(data_dir, files, utt2spk, dropped)
    log_summary(data_dir, files["utt2lang"], dropped)
    return data_dir, len(utt2spk), dropped


def prepare_covost2(covost_root, commonvoice_root, pairs, output_dir, splits=("test",),
                    translation_template="conf/instructions/translation.yaml", language_map=None,
                    max_duration=30.0):
    """Write every (pair, split) set; return {(source, target, split): (data dir or None, count)}."""
    translation = load_translation_instruction(translation_template)
    labels = language_map or {}
    for source, target in pairs:  # fail before any long work
        try:
            translation.format(labels.get(source, source), labels.get(target, target))
        except KeyError as error:
            raise ValueError(f"pair {source}:{target}: {error.args[0]} (map CoVoST locales to its "
                             f"codes with --language_map conf/languages/to_fleurs.txt)") from None
    results = {}
    for source, target in pairs:
        tsv_path = Path(covost_root) / f"covost_v2.{source}_{target}.tsv"
        if not tsv_path.is_file():
            logging.error("%s is missing: pair %s:%s skipped", tsv_path, source, target)
            results.update({(source, target, split): (None, 0) for split in splits})
            continue
        for split in splits:
            data_dir, count, _ = prepare_pair(covost_root, commonvoice_root, source, target, split,
                                              output_dir, translation, labels, max_duration)
            results[source, target, split] = (data_dir, count)
    return results


def get_parser():
    parser = argparse.ArgumentParser(description="Prepare CoVoST 2 pairs as Kaldi data directories.")
    parser.add_argument("--covost_root", required=True, help="folder of covost_v2.<src>_<tgt>.tsv")
    parser.add_argument("--commonvoice_root", required=True, help="Common Voice root with <src>/clips/")
    pairs = parser.add_mutually_exclusive_group(required=True)
    pairs.add_argument("--pairs", nargs="+", type=parse_pair, metavar="SRC:TGT")
    pairs.add_argument("--pair_list", help="file of SRC:TGT pairs, one a line (conf/languages/)")
    parser.add_argument("--splits", nargs="+", default=["test"], choices=SPLITS, help="default: test")
    parser.add_argument("--output_dir", required=True, help="where <split>_covost2_<src>-<tgt>/ go")
    parser.add_argument("--translation_template", default="conf/instructions/translation.yaml")
    add_shared_options(parser)
    return parser


def main(argv=None):
    parser = get_parser()
    args = parser.parse_args(argv)
    start_logging()
    pairs = args.pairs or [parse_pair(entry) for entry in read_list_file(args.pair_list)]
    results = prepare_covost2(args.covost_root, args.commonvoice_root, pairs, args.output_dir,
                              splits=args.splits, translation_template=args.translation_template,
                              language_map=read_language_map(args.language_map) if args.language_map else None,
                              max_duration=args.max_duration)
    if all(data_dir is None for data_dir, _ in results.values()):
        sys.exit("prepare_covost2.py: no pair could be prepared")


if __name__ == "__main__":
    main()
