#!/usr/bin/env python3
"""Speech-translation test sets from a FLEURS data dir (local/prepare_fleurs.py output).

FLEURS has the same sentences (sentence ids) read in every language, so a pair SRC:TGT is the
SRC recordings with the TGT transcripts of the same sentences as references. For each pair,
<output_dir>/<name of --data_dir>_<src>-<tgt>/ (e.g. data/test_fleurs_en_us-de_de) holds:

    wav.scp utt2spk spk2utt utt2lang utt2num_samples utt2sentence ...
                     the SOURCE language's utterances, one recording per sentence id: the first
                     utterance id in C byte order (FLEURS has several readings of a sentence);
                     every per-utterance file of --data_dir is carried, verbatim files too
    text             the TARGET language's raw transcript of the sentence (the reference
                     translation; the first target utterance in C byte order when there are
                     several, with a warning when their transcripts differ)
    text_source      the source transcript (for the text-oracle baseline)
    decoder_prefix   the translation instruction of --translation_template for the pair,
    decoder_postfix  escaped per bloomzmms.instructions (e.g. "Translate the following text
                     from English to German\\n" and "\\n")
    utt2tgt_lang     the target language code
    .missing_in_target   sentence ids of the source without a target-language recording (skipped)

utt2lang stays the spoken (source) language. Each set is written to a temporary sibling and
renamed into place; re-running rewrites identical files. Sentence ids missing in the target
language are reported and skipped; a pair with no sentence in common is reported and not
written.

Decoding a pair: ``python -m bloomzmms.bin.infer ... --data_dir data/test_fleurs_en_us-de_de
--instruction_prefix_file data/test_fleurs_en_us-de_de/decoder_prefix
--instruction_postfix_file data/test_fleurs_en_us-de_de/decoder_postfix``; the text-oracle
baseline: ``python -m bloomzmms.bin.llm_generate --input .../text_source --prefix_file
.../decoder_prefix --postfix_file .../decoder_postfix ...``.

Usage:
    python local/make_fleurs_pairs.py --data_dir data/test_fleurs \\
        --pairs en_us:de_de de_de:en_us fr_fr:es_419 \\
        [--translation_template conf/instructions/translation.yaml] [--output_dir data]
    python local/make_fleurs_pairs.py --data_dir data/test_fleurs --all_pairs_from en_us de_de fr_fr
    python local/make_fleurs_pairs.py --data_dir data/test_fleurs --all_pairs_from all
"""

import argparse
import logging
import shutil
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from the recipe root

from bloomzmms.cli import start_logging  # noqa: E402
from bloomzmms.datadir import (DataDir, DataDirError, load_data_dir, save_data_dir,  # noqa: E402
                               subset, validate_data_dir)
from bloomzmms.instructions import escape_instruction, load_translation_instruction  # noqa: E402

log = logging.getLogger("make_fleurs_pairs")


def c_order(key):
    return key.encode("utf-8")


def parse_pair(text):
    source, sep, target = text.partition(":")
    if not sep or not source or not target or ":" in target:
        raise argparse.ArgumentTypeError(f"a pair is SRC:TGT (FLEURS codes, e.g. en_us:de_de), got {text!r}")
    if source == target:
        raise argparse.ArgumentTypeError(f"{text}: source and target are the same language")
    return source, target


def sentences_by_language(data):
    """{language: {sentence id: [utterance ids in C byte order]}}."""
    for name in ("utt2lang", "utt2sentence", "text"):
        if name not in data.files:
            raise DataDirError(f"{data.name}: no {name} (a local/prepare_fleurs.py data dir is needed)")
    table = defaultdict(lambda: defaultdict(list))
    for utt in sorted(data.utt2spk, key=c_order):
        table[data.files["utt2lang"][utt].strip()][data.files["utt2sentence"][utt].strip()].append(utt)
    return table


def build_pair(data, table, source, target, translation):
    """(DataDir of the pair, sentence ids missing in the target) or (None, missing)."""
    for language in (source, target):
        if language not in table:
            raise DataDirError(f"{data.name} has no utterances of {language} "
                               f"(it has {', '.join(sorted(table))})")
    prefix, postfix = translation.format(source, target)
    chosen, missing = {}, []
    for sentence in sorted(table[source], key=c_order):
        if sentence not in table[target]:
            missing.append(sentence)
            continue
        target_utts = table[target][sentence]
        references = {data.files["text"][utt].strip() for utt in target_utts}
        if len(references) > 1:
            log.warning("%s sentence %s: %d different transcripts among %d recordings; using %s's",
                        target, sentence, len(references), len(target_utts), target_utts[0])
        chosen[table[source][sentence][0]] = data.files["text"][target_utts[0]].strip()
    if not chosen:
        return None, missing
    pair = subset(data, chosen)
    files = dict(pair.files)
    files["text_source"] = {utt: files["text"][utt] for utt in chosen}
    files["text"] = chosen
    files["decoder_prefix"] = {utt: escape_instruction(prefix) for utt in chosen}
    files["decoder_postfix"] = {utt: escape_instruction(postfix) for utt in chosen}
    files["utt2tgt_lang"] = {utt: target for utt in chosen}
    return DataDir(files, dict(pair.verbatim), f"{data.name} {source}->{target}"), missing


def write_pair(pair, directory, missing):
    directory = Path(directory)
    tmp = directory.with_name(f".{directory.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_data_dir(pair, str(tmp))
    (tmp / ".missing_in_target").write_text("".join(f"{sentence}\n" for sentence in missing), encoding="utf-8")
    problems = validate_data_dir(str(tmp))
    if problems:
        raise DataDirError(f"{directory} would be invalid: " + "; ".join(map(str, problems[:5])))
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)


def all_pairs(languages):
    return [(s, t) for s in languages for t in languages if s != t]


def make_fleurs_pairs(data_dir, pairs, translation_template, output_dir):
    """Write one data dir per (source, target) pair; return {pair: (dir or None, kept, missing)}."""
    data = load_data_dir(data_dir)
    table = sentences_by_language(data)
    translation = load_translation_instruction(translation_template)
    results = {}
    for source, target in pairs:
        name = f"{Path(data_dir).name}_{source}-{target}"
        pair, missing = build_pair(data, table, source, target, translation)
        if missing:
            log.warning("%s: %d of %d %s sentence id(s) have no %s recording: skipped (e.g. %s)",
                        name, len(missing), len(table[source]), source, target, ", ".join(missing[:5]))
        if pair is None:
            log.error("%s: no sentence of %s has a %s recording: not written", name, source, target)
            results[source, target] = (None, 0, len(missing))
            continue
        directory = Path(output_dir) / name
        write_pair(pair, directory, missing)
        log.info("%s: %d utterance(s)", directory, len(pair.utt2spk))
        results[source, target] = (str(directory), len(pair.utt2spk), len(missing))
    return results


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True, help="FLEURS data dir with utt2lang, utt2sentence")
    parser.add_argument("--pairs", nargs="+", type=parse_pair, default=[], metavar="SRC:TGT")
    parser.add_argument("--all_pairs_from", nargs="+", default=None, metavar="LANG",
                        help="every ordered pair of these languages ('all': of every language in --data_dir)")
    parser.add_argument("--translation_template", default="conf/instructions/translation.yaml")
    parser.add_argument("--output_dir", default=None, help="default: the folder holding --data_dir")
    return parser


def main(argv=None):
    start_logging()
    parser = get_parser()
    args = parser.parse_args(argv)
    pairs = list(args.pairs)
    if args.all_pairs_from:
        languages = args.all_pairs_from
        if languages == ["all"]:
            languages = sorted({v.strip() for v in load_data_dir(args.data_dir).files["utt2lang"].values()})
        pairs += [pair for pair in all_pairs(languages) if pair not in pairs]
    if not pairs:
        parser.error("give --pairs and/or --all_pairs_from")
    output_dir = args.output_dir or str(Path(args.data_dir).parent)
    results = make_fleurs_pairs(args.data_dir, pairs, args.translation_template, output_dir)
    if all(directory is None for directory, _, _ in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
