#!/usr/bin/env python3
"""Prepare a Common Voice subsample (the paper's training addition to FLEURS) as a Kaldi data dir.

Input layout, <commonvoice_root>/<locale>/ for each Common Voice locale (en, zh-CN, sv-SE, ...),
as in a cv-corpus-12.0-2022-12-07 download:
    train.tsv          tab-separated with a header; columns are found by name: client_id,
                       path (clip file name, common_voice_<locale>_<n>.mp3), sentence
                       (others, e.g. up_votes, locale, segment, sentence_id, are ignored)
    clips/<path>       the audio (48 kHz MP3)
    clip_durations.tsv optional (later releases): `clip  duration[ms]` with a header

Two ways to choose clips (exactly one):
  --utt_list FILE   the clips named in FILE, e.g. the published cv12_train_utts.lst (Zenodo
                    10900287). One clip a line, as `common_voice_<locale>_<n>`, with or without
                    `.mp3`, optionally with leading folders (`de/clips/common_voice_de_1.mp3`);
                    `#` comments and blank lines are ignored. The locale is read from the name.
                    Listed clips not in the locale's TSV are reported as unknown_clip.
  by rule (default) per locale: the sentences (distinct `sentence` strings) are shuffled, and so
                    are the clips of each sentence, with random.Random("<seed>:<locale>"); then in
                    passes over the shuffled sentences, each pass takes the next clip of every
                    sentence that has one left (pass 1: one clip per sentence, pass 2: a second
                    clip of the sentences read twice or more, ...), until the total duration
                    exceeds --max_hours (the clip crossing the limit is kept) or no clip is left.
                    Durations come from --durations (`<clip>\\t<seconds>`, e.g. Zenodo's
                    cv12_durations.tsv, or a clip_durations.tsv in milliseconds), else from
                    <locale>/clip_durations.tsv, else from each clip's header. This is the
                    published rule (cv12_sample.py, seed 1), but that script drew every locale
                    from one shared generator, so its exact clips come only with --utt_list.

Output <output_dir>/<set_name> (train_cv by default):
    wav.scp      <utt> sox -R <clip> -t wav -r 16000 -c 1 -b 16 - |
    text         <utt> <sentence>   (as written, whitespace collapsed)
    utt2spk/spk2utt  speaker = Common Voice client (first 16 characters of client_id)
    utt2lang     <utt> the locale, or its label in --language_map (e.g. de -> de_de)
    utt2dur      <utt> seconds (from the header, or the durations file in rule mode)
    .dropped     <file>:<line> <reason> <detail> for every row or list line left out
Utterance id: cv_<locale, '-' as '_'>-<tsv name>-<client>-<clip number>, e.g.
    cv_zh_CN-train-3f1a09c2b7de4e51-12345

Dropped: invalid_utf8, wrong_column_count, malformed_field (clip name not
common_voice_<locale>_<n>.<ext>, or client_id not hexadecimal), empty_transcript,
duplicate_clip, unknown_clip (listed, not in the TSV), missing_language (no <locale>/<tsv>),
missing_audio, unreadable_audio, too_long (over --max_duration).

Usage:
    python local/prepare_commonvoice.py --commonvoice_root /corpora/cv-corpus-12.0-2022-12-07 \\
        --output_dir data --utt_list downloads/cv12_train_utts.lst --language_map conf/languages/to_fleurs.txt
    python local/prepare_commonvoice.py --commonvoice_root /corpora/cv-corpus-12.0-2022-12-07 \\
        --output_dir data --language_list conf/languages/commonvoice12.txt --max_hours 25 --seed 1
"""

import argparse
import random
import re
from pathlib import Path

from tqdm import tqdm

from corpus_common import (Dropped, add_shared_options, id_field, languages_and_map, log_drops, log_summary,
                           make_ids, probe_audio, read_header_tsv, wav_scp_entry, write_data_dir)

from bloomzmms.cli import start_logging  # after corpus_common: it puts the recipe root on sys.path

CLIP_NAME = re.compile(r"^common_voice_(?P<locale>[^_\s/]+)_(?P<number>\d+)(?P<suffix>\.[a-z0-9]+)?$")
CLIENT_ID = re.compile(r"^[0-9a-fA-F]+$")
CLIENT_ID_LENGTH = 16


def clip_stem(name):
    """`common_voice_de_1` of `de/clips/common_voice_de_1.mp3` (None if not a clip name)."""
    match = CLIP_NAME.match(Path(name.strip()).name)
    return f"common_voice_{match['locale']}_{match['number']}" if match else None


def read_utt_list(list_path):
    """({locale: {clip stem: line number}}, dropped) from a clip list file."""
    by_locale, dropped, seen = {}, [], {}
    for line_number, line in enumerate(Path(list_path).read_text(encoding="utf-8").splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        stem = clip_stem(entry)
        if stem is None:
            dropped.append(Dropped(Path(list_path), line_number, "malformed_field",
                                   f"{entry!r} is not common_voice_<locale>_<n>[.mp3]"))
        elif stem in seen:
            dropped.append(Dropped(Path(list_path), line_number, "duplicate_clip",
                                   f"{stem} (first on line {seen[stem]})"))
        else:
            seen[stem] = line_number
            by_locale.setdefault(CLIP_NAME.match(stem)["locale"], {})[stem] = line_number
    return by_locale, dropped


def read_durations(path):
    """{clip stem: seconds} of `<clip>\\t<seconds>` lines or CV's clip_durations.tsv
    (`clip\\tduration[ms]` header, milliseconds)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    has_header = bool(lines) and clip_stem(lines[0].split("\t")[0]) is None
    scale = 0.001 if has_header and "ms" in lines[0] else 1.0
    durations = {}
    for line_number, line in enumerate(lines[1:] if has_header else lines, 2 if has_header else 1):
        fields = line.split("\t")
        stem = clip_stem(fields[0]) if len(fields) == 2 else None
        try:
            durations[stem] = float(fields[1]) * scale
        except (ValueError, IndexError):
            stem = None
        if stem is None:
            raise ValueError(f"{path}:{line_number}: expected '<clip>\\t<duration>', got {line!r}")
    return durations


def parse_rows(tsv_path):
    """Valid TSV rows of one locale as [(line, stem, client, sentence, clip path)], and drops."""
    rows, dropped = read_header_tsv(tsv_path, ("client_id", "path", "sentence"))
    clips, seen = [], {}
    for line_number, row in rows:
        match = CLIP_NAME.match(row["path"].strip())
        client, sentence = row["client_id"].strip(), " ".join(row["sentence"].split())
        problem = None
        if not match or not CLIENT_ID.match(client):
            problem = ("malformed_field", f"path {row['path']!r}, client_id {client[:20]!r}")
        elif not sentence:
            problem = ("empty_transcript", row["path"])
        elif clip_stem(row["path"]) in seen:
            problem = ("duplicate_clip", f"{row['path']} (first on line {seen[clip_stem(row['path'])]})")
        if problem:
            dropped.append(Dropped(Path(tsv_path), line_number, *problem))
            continue
        stem = clip_stem(row["path"])
        seen[stem] = line_number
        file_name = row["path"].strip() if match["suffix"] else f"{stem}.mp3"
        clip_path = Path(tsv_path).parent / "clips" / file_name
        clips.append((line_number, stem, client[:CLIENT_ID_LENGTH].lower(), sentence, clip_path))
    return clips, dropped


def select_by_rule(clips, durations, max_seconds, rng):
    """The clips chosen by the published rule (see the module doc), in selection order."""
    by_sentence = {}
    for clip in clips:
        by_sentence.setdefault(clip[3], []).append(clip)
    sentences = list(by_sentence)
    rng.shuffle(sentences)
    for sentence in sentences:
        rng.shuffle(by_sentence[sentence])
    queues = [by_sentence[sentence] for sentence in sentences]
    chosen, total, depth = [], 0.0, 0
    while total <= max_seconds and any(len(queue) > depth for queue in queues):
        for queue in queues:
            if len(queue) > depth:
                chosen.append(queue[depth])
                total += durations[queue[depth][1]]
                if total > max_seconds:
                    break
        depth += 1
    return chosen


def prepare_locale(root, locale, tsv_name, wanted, selection, max_duration):
    """(utterances, dropped) of one locale; wanted: {stem: list line} or None (by rule)."""
    tsv_path = Path(root) / locale / tsv_name
    clips, dropped = parse_rows(tsv_path)
    probed = {}

    def probe(clip):
        if clip[1] not in probed:
            probed[clip[1]] = probe_audio(clip[4], max_duration)
        return probed[clip[1]]

    if wanted is not None:
        present = {clip[1] for clip in clips}
        dropped += [Dropped(selection["list_path"], line, "unknown_clip", f"{stem} not in {tsv_path}")
                    for stem, line in wanted.items() if stem not in present]
        chosen = [clip for clip in clips if clip[1] in wanted]
    else:
        durations = dict(selection["durations"])
        own = Path(root) / locale / "clip_durations.tsv"
        if not durations and own.is_file():
            durations = read_durations(own)
        timed = []
        for clip in tqdm(clips, desc=f"{locale}: durations", unit="clip", leave=False):
            if clip[1] not in durations:
                reason, result = probe(clip)
                if reason:
                    dropped.append(Dropped(tsv_path, clip[0], reason, result))
                    continue
                durations[clip[1]] = result.duration
            timed.append(clip)
        rng = random.Random(f"{selection['seed']}:{locale}")
        chosen = select_by_rule(timed, durations, selection["max_hours"] * 3600.0, rng)
    utterances = []
    for clip in tqdm(chosen, desc=f"{locale}: audio", unit="clip", leave=False):
        reason, result = probe(clip)
        if reason:
            dropped.append(Dropped(tsv_path, clip[0], reason, result))
            continue
        number = CLIP_NAME.match(clip[1])["number"]
        utt_id, speaker = make_ids(f"cv_{id_field(locale)}", Path(tsv_name).stem, clip[2], number)
        utterances.append((utt_id, speaker, locale, clip[3], wav_scp_entry(clip[4], result), result.duration))
    return utterances, dropped


def prepare_commonvoice(commonvoice_root, output_dir, set_name="train_cv", languages=None,
                        utt_list=None, max_hours=25.0, seed=1, durations=None, tsv_name="train.tsv",
                        language_map=None, max_duration=30.0):
    """Write <output_dir>/<set_name>; return (data dir, {locale: utterances}, dropped)."""
    root = Path(commonvoice_root)
    dropped, wanted_by_locale = [], None
    if utt_list:
        wanted_by_locale, dropped = read_utt_list(utt_list)
        locales = sorted(wanted_by_locale)
        if languages:
            locales = [locale for locale in locales if locale in set(languages)]
    else:
        locales = list(languages or sorted(p.name for p in root.iterdir() if (p / tsv_name).is_file()))
    selection = {"list_path": Path(utt_list) if utt_list else None, "seed": seed, "max_hours": max_hours,
            "durations": read_durations(durations) if durations else {}}
    labels = language_map or {}
    files = {"wav.scp": {}, "text": {}, "utt2lang": {}, "utt2dur": {}}
    utt2spk, counts = {}, {}
    for locale in locales:
        if not (root / locale / tsv_name).is_file():
            where = (Path(utt_list), min(wanted_by_locale[locale].values())) if utt_list else (root / locale, 0)
            dropped.append(Dropped(*where, "missing_language", f"{locale}: no {root / locale / tsv_name}"))
            continue
        wanted = wanted_by_locale[locale] if utt_list else None
        utterances, locale_dropped = prepare_locale(root, locale, tsv_name, wanted, selection, max_duration)
        dropped += locale_dropped
        counts[locale] = len(utterances)
        for utt_id, speaker, lang, text, wav, seconds in utterances:
            utt2spk[utt_id] = speaker
            files["wav.scp"][utt_id], files["text"][utt_id] = wav, text
            files["utt2lang"][utt_id] = labels.get(lang, lang)
            files["utt2dur"][utt_id] = f"{seconds:.3f}"
    if not utt2spk:
        raise RuntimeError(f"no valid Common Voice clips under {root} for {locales or 'any locale'}")
    dropped.sort(key=lambda item: (str(item.tsv_path), item.line_number))
    log_drops(dropped)
    data_dir = Path(output_dir) / set_name
    write_data_dir(data_dir, files, utt2spk, dropped)
    log_summary(data_dir, files["utt2lang"], dropped)
    return data_dir, counts, dropped


def get_parser():
    parser = argparse.ArgumentParser(
        description="Prepare a Common Voice subsample (by clip list or by the published rule).")
    parser.add_argument("--commonvoice_root", required=True, help="folder holding the <locale>/ folders")
    parser.add_argument("--output_dir", required=True, help="where <set_name>/ goes")
    parser.add_argument("--set_name", default="train_cv", help="data dir name (default: train_cv)")
    languages = parser.add_mutually_exclusive_group()
    languages.add_argument("--languages", nargs="+", help="locales (default: all in the list or the root)")
    languages.add_argument("--language_list", help="file of locales, one a line (conf/languages/)")
    parser.add_argument("--utt_list", help="clip list (e.g. cv12_train_utts.lst); default: by rule")
    parser.add_argument("--max_hours", type=float, default=25.0, help="rule: hours per locale (default 25)")
    parser.add_argument("--seed", type=int, default=1, help="rule: random seed (default 1, as published)")
    parser.add_argument("--durations", help="rule: `<clip>\\t<seconds>` file (e.g. cv12_durations.tsv)")
    parser.add_argument("--tsv_name", default="train.tsv", help="TSV of each locale (default train.tsv)")
    add_shared_options(parser)
    return parser


def main(argv=None):
    args = get_parser().parse_args(argv)
    start_logging()
    languages, language_map = languages_and_map(args)
    prepare_commonvoice(args.commonvoice_root, args.output_dir, set_name=args.set_name,
                        languages=languages, utt_list=args.utt_list, max_hours=args.max_hours,
                        seed=args.seed, durations=args.durations, tsv_name=args.tsv_name,
                        language_map=language_map,
                        max_duration=args.max_duration)


if __name__ == "__main__":
    main()
