"""Stage "MI targets", published variant: train_mi / train_tmi from the paper's own targets.

Input:
  --targets   tmi_training_targets.tar.gz of Zenodo record 10900287, or the folder it was
              extracted into: the files ``text``, ``decoder_prefix`` and ``decoder_postfix``
              (found by name anywhere in it), one ``<utt>-<k> <token ids>`` line each, k = 1..3,
              the ids (of bigscience/bloomz-7b1's tokenizer, space-separated) of the target, the
              instruction prefix and postfix; a prefix or postfix may be empty.
  --t_dir     our T training dir (``data/train_t`` or ``dump/raw/train_t_sp``: text, utt2spk, ...).
  --llm       the LLM whose tokenizer made the ids: every id must be below its vocabulary size
              (the token list's size; BLOOMZ: 250,680).
Output: ``--mi_dir`` and ``--tmi_dir`` (default: the T dir's name with ``_t`` -> ``_mi``/``_tmi``)
exactly as stage 9 (``make_instruction_sets --token_ids_from``) writes them: every file of the
T dir per copy, ``text``/``decoder_prefix``/``decoder_postfix`` as token ids plus readable
``*_text`` copies (decoded; ``text_text`` with whitespace collapsed). MI = the MI copies (-1, -2),
TMI = our T target with the default instruction (-1) + the MI copies (-2, -3). Written atomically
and validated; re-running with the same inputs changes nothing. Reports in ``--report_dir``:
    summary.yaml           the counts below
    unmatched_published    <published utt> <reason>   every published target with no audio here
    dropped                <our utt> <reason>         every utterance of ours left out of MI/TMI
    bad_entries            <file>:<line> <reason> <detail>  published lines that were not usable

Utterance ids. The published keys are ``<id>-<k>``, ``<id>`` an utterance of the original's
``train_fl_cv_raw_sp`` (speed-perturbed copies prefixed ``sp0.9-``/``sp1.1-``, as ours). Both
sides are reduced to a recording key, compared with the speed factor:
  FLEURS        theirs ``<lang>-audio-<split>-<file stem>`` (or ``<lang>-<file stem>``, the form
                of the shipped prepare_fleurs.py), ours ``<lang>-<split>-<sentence id>-<file stem>``
                (local/prepare_fleurs.py): key (lang, file stem), e.g.
                ``sp0.9-af_za-audio-train-1234`` <-> ``sp0.9-af_za-train-17-1234``.
  Common Voice  theirs ``common_voice_<locale>_<n>`` (the clip name), ours
                ``cv_<locale, '-' as '_'>-<tsv>-<client>-<n>`` (local/prepare_commonvoice.py):
                key (locale with '_', n), e.g. ``common_voice_sv-SE_42`` <-> ``cv_sv_SE-train-ab12-42``.

T or MI. The original's copy numbers do not say which copy is the transcription target (its
``pop()`` order tends to put it at -1, so the README's "MI" set of copies -1/-2 mixes in T).
A published copy is T when its prefix and postfix ids are those of ``--default_instruction``
("Repeat the sentence: " ... ". "), MI otherwise. The T copy is not imported: TMI's -1 is built
from our own transcript (as stage 9 does); published T texts that differ from our tokenized
transcript are counted (``t_text_mismatches``), a check of the id mapping. An utterance of ours
needs ``--mi_copies`` MI copies (the first ones by copy number) to enter MI and TMI.

Usage:
    python -m bloomzmms.bin.import_mi_targets --targets downloads/tmi_training_targets.tar.gz \\
        --t_dir dump/raw/train_t_sp --llm bigscience/bloomz-7b1 \\
        [--mi_dir dump/raw/train_mi_sp] [--tmi_dir dump/raw/train_tmi_sp] [--mi_copies 2] \\
        [--default_instruction conf/instructions/default.yaml] [--report_dir DIR]
"""

import argparse
import logging
import os
import re
import tarfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import yaml
from tqdm import tqdm

from bloomzmms.asr.llm import load_tokenizer
from bloomzmms.bin.make_instruction_sets import (INSTRUCTION_FILES, build_sets, derived_name,
                                                 write_atomically)
from bloomzmms.cli import start_logging
from bloomzmms.datadir import DataDir, DataDirError, load_data_dir, write_kv
from bloomzmms.instructions import escape_instruction, load_instruction, unescape_instruction

log = logging.getLogger(__name__)

SPEED = re.compile(r"^sp([0-9]+(?:\.[0-9]*)?)-(.+)$")
COPY = re.compile(r"^(.+)-([0-9]+)$")
FLEURS_LANG = r"(?P<lang>[a-z]+(?:_[a-z0-9]+)+)"  # en_us, es_419, cmn_hans_cn
PUBLISHED_FLEURS = re.compile(rf"^{FLEURS_LANG}-(?:audio-(?:train|dev|test)-)?(?P<stem>[0-9]+)$")
OUR_FLEURS = re.compile(rf"^{FLEURS_LANG}-(?:train|dev|test)-[0-9]+-(?P<stem>[0-9]+)$")
PUBLISHED_CV = re.compile(r"^common_voice_(?P<locale>[A-Za-z-]+)_(?P<n>[0-9]+)$")
OUR_CV = re.compile(r"^cv_(?P<locale>[A-Za-z_]+)-[^-]+-[^-]+-(?P<n>[0-9]+)$")
DECODE_BATCH = 4096

RecordingKey = Tuple[str, str, str, str]  # (speed factor, corpus, language, recording)


def _split_speed(utt: str) -> Tuple[str, str]:
    match = SPEED.match(utt)
    if match:
        return f"{float(match.group(1)):g}", match.group(2)
    return "1", utt


def published_recording_key(utt: str) -> Optional[RecordingKey]:
    """The recording key of an original utterance id (without the copy suffix), or None."""
    speed, base = _split_speed(utt)
    match = PUBLISHED_FLEURS.match(base)
    if match:
        return speed, "fleurs", match["lang"], match["stem"]
    match = PUBLISHED_CV.match(base)
    if match:
        return speed, "cv", match["locale"].replace("-", "_"), match["n"]
    return None


def our_recording_key(utt: str) -> Optional[RecordingKey]:
    """The recording key of one of our utterance ids, or None."""
    speed, base = _split_speed(utt)
    match = OUR_FLEURS.match(base)
    if match:
        return speed, "fleurs", match["lang"], match["stem"]
    match = OUR_CV.match(base)
    if match:
        return speed, "cv", match["locale"], match["n"]
    return None


# ----------------------------------------------------------------------- published files ---


def _published_files(targets: str) -> Iterator[Tuple[str, str, Iterator[bytes]]]:
    """(file name, where, lines) of text/decoder_prefix/decoder_postfix in a tarball or folder."""
    path = Path(targets)
    if path.is_dir():
        found = {}
        for root, _, files in os.walk(path):
            for name in set(files) & set(INSTRUCTION_FILES):
                if name in found:
                    raise DataDirError(f"{targets}: two files named {name}: {found[name]} and {Path(root) / name}")
                found[name] = Path(root) / name
        _require_all(found, targets)
        for name in INSTRUCTION_FILES:
            with open(found[name], "rb") as f:
                yield name, str(found[name]), f
        return
    if not tarfile.is_tarfile(path):
        raise DataDirError(f"{targets}: neither a folder nor a tar archive")
    with tarfile.open(path, mode="r|*") as archive:  # one streaming pass over a large .tar.gz
        seen = {}
        for member in archive:
            name = Path(member.name).name
            if member.isfile() and name in INSTRUCTION_FILES:
                if name in seen:
                    raise DataDirError(f"{targets}: two members named {name}: {seen[name]} and {member.name}")
                seen[name] = member.name
                yield name, f"{targets}:{member.name}", archive.extractfile(member)
        _require_all(seen, targets)


def _require_all(found: dict, targets: str) -> None:
    missing = [name for name in INSTRUCTION_FILES if name not in found]
    if missing:
        raise DataDirError(f"{targets}: no {', '.join(missing)} (expected the files of tmi_training_targets.tar.gz)")


def read_published(targets: str, vocab_size: int):
    """({key: {file name: ids}} of the keys complete in all three files, bad lines
    [(file, line, reason, detail)])."""
    entries: Dict[str, Dict[str, str]] = defaultdict(dict)
    line_of: Dict[Tuple[str, str], int] = {}
    file_of = {}
    bad = []
    for name, where, lines in _published_files(targets):
        file_of[name] = where
        for number, raw in enumerate(tqdm(lines, desc=f"reading {name}", unit=" lines"), 1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as error:
                bad.append((where, number, "invalid_utf8", str(error)))
                continue
            key, _, value = line.partition(" ")
            problem = _id_problem(value, vocab_size)
            if not key:
                problem = ("malformed_line", repr(line[:80]))
            elif name in entries.get(key, {}):
                problem = ("duplicate_key", f"{key} (first on line {line_of[key, name]})")
            if problem:
                bad.append((where, number, *problem))
                continue
            entries[key][name] = value.strip()
            line_of[key, name] = number
    for key, files in entries.items():
        if len(files) < len(INSTRUCTION_FILES):
            present = next(iter(files))
            absent = ", ".join(name for name in INSTRUCTION_FILES if name not in files)
            bad.append((file_of[present], line_of[key, present], "incomplete", f"{key} has no line in {absent}"))
    complete = {key: files for key, files in entries.items() if len(files) == len(INSTRUCTION_FILES)}
    return complete, bad


def _id_problem(value: str, vocab_size: int) -> Optional[Tuple[str, str]]:
    tokens = value.split()
    if not all(token.isascii() and token.isdigit() for token in tokens):
        return "not_token_ids", repr(value[:80])
    largest = max((int(token) for token in tokens), default=-1)
    if largest >= vocab_size:
        return "id_out_of_vocabulary", f"id {largest} >= vocabulary size {vocab_size}"
    return None


# ---------------------------------------------------------------------------- matching ---


def match_targets(published: Dict[str, Dict[str, str]], our_utts: List[str], default_ids: Tuple[str, str],
                  mi_copies: int):
    """({our utt: [MI copy files]}, {our utt: published T text ids}, unmatched {key: reason},
    dropped {our utt: reason})."""
    ours: Dict[RecordingKey, str] = {}
    dropped = {}
    for utt in our_utts:
        key = our_recording_key(utt)
        if key is None:
            dropped[utt] = "no_target: id is neither of the FLEURS nor of the Common Voice form"
        elif key in ours:
            raise DataDirError(f"utterances {ours[key]} and {utt} are the same recording {key}")
        else:
            ours[key] = utt
    copies_of: Dict[str, List[Tuple[int, str]]] = defaultdict(list)
    unmatched = {}
    for published_key in published:
        match = COPY.match(published_key)
        recording = published_recording_key(match.group(1)) if match else None
        if recording is None:
            unmatched[published_key] = "unrecognized_id"
        elif recording not in ours:
            unmatched[published_key] = "no_audio_here"
        else:
            copies_of[ours[recording]].append((int(match.group(2)), published_key))
    mi, t_text = {}, {}
    for utt in our_utts:
        if utt in dropped:
            continue
        found = sorted(copies_of.get(utt, []))
        mi_keys = []
        for _, key in found:
            files = published[key]
            if (files["decoder_prefix"], files["decoder_postfix"]) == default_ids:
                t_text[utt] = files["text"]
            else:
                mi_keys.append(key)
        if not found:
            dropped[utt] = "no_target: no published copy"
        elif len(mi_keys) < mi_copies:
            dropped[utt] = f"too_few_mi_copies: {len(mi_keys)} of {mi_copies}"
        else:
            mi[utt] = [published[key] for key in mi_keys[:mi_copies]]
    return mi, t_text, unmatched, dropped


# ------------------------------------------------------------------------------ output ---


def _ids(tokenizer, text: str) -> str:
    return " ".join(str(i) for i in tokenizer(text, add_special_tokens=False)["input_ids"])


def _decode_all(tokenizer, values: Dict[str, str]) -> Dict[str, str]:
    keys = list(values)
    decoded = {}
    for start in range(0, len(keys), DECODE_BATCH):
        batch = keys[start:start + DECODE_BATCH]
        texts = tokenizer.batch_decode([[int(i) for i in values[k].split()] for k in batch],
                                       skip_special_tokens=False, clean_up_tokenization_spaces=False)
        decoded.update(zip(batch, texts))
    return decoded


def with_readable_copies(data: DataDir, tokenizer) -> DataDir:
    """``*_text`` beside each id file: the decoded target (whitespace collapsed) and instructions
    (escaped), as make_instruction_sets writes them."""
    files = dict(data.files)
    for name in INSTRUCTION_FILES:
        decoded = _decode_all(tokenizer, files[name])
        if name == "text":
            files["text_text"] = {utt: " ".join(value.split()) for utt, value in decoded.items()}
        else:
            files[f"{name}_text"] = {utt: escape_instruction(value) for utt, value in decoded.items()}
    return DataDir(files, data.verbatim, data.name)


def t_as_token_ids(t_data: DataDir, tokenizer) -> DataDir:
    """The T dir with its transcript (and any instruction files) as token ids, as stage 9 stores them."""
    files = dict(t_data.files)
    files["text"] = {utt: _ids(tokenizer, text) for utt, text in t_data.files["text"].items()}
    for name in ("decoder_prefix", "decoder_postfix"):
        if name in files:
            files[name] = {utt: _ids(tokenizer, unescape_instruction(v)) for utt, v in files[name].items()}
    return DataDir(files, t_data.verbatim, t_data.name)


def import_mi_targets(targets: str, t_dir: str, llm: str, mi_dir: Optional[str] = None,
                      tmi_dir: Optional[str] = None, mi_copies: int = 2,
                      default_instruction: str = "conf/instructions/default.yaml",
                      report_dir: Optional[str] = None) -> dict:
    mi_dir = mi_dir or derived_name(t_dir, "mi")
    tmi_dir = tmi_dir or derived_name(t_dir, "tmi")
    report_dir = report_dir or str(Path(tmi_dir).parent / "mi_targets_published")
    if len({os.path.abspath(d) for d in (t_dir, mi_dir, tmi_dir)}) < 3:
        raise ValueError("--t_dir, --mi_dir and --tmi_dir must be three different folders")
    if mi_copies < 1:
        raise ValueError(f"mi_copies must be positive, got {mi_copies}")
    tokenizer = load_tokenizer(llm)
    vocab_size = len(tokenizer)
    prefix, postfix = load_instruction(default_instruction)
    default_ids = (_ids(tokenizer, prefix), _ids(tokenizer, postfix))
    t_data = load_data_dir(t_dir)

    published, bad = read_published(targets, vocab_size)
    if bad and len(bad) > len(published):
        out_of_vocabulary = sum(reason == "id_out_of_vocabulary" for _, _, reason, _ in bad)
        hint = (f"; {out_of_vocabulary} have ids beyond the {vocab_size} tokens of {llm}: the targets "
                f"are for another tokenizer (bigscience/bloomz-7b1)" if out_of_vocabulary else "")
        raise DataDirError(f"{targets}: {len(bad)} unusable line(s), more than the {len(published)} usable "
                           f"ones (e.g. {bad[0][0]}:{bad[0][1]}: {bad[0][2]} {bad[0][3]}){hint}")
    our_utts = sorted(t_data.utt2spk, key=lambda u: u.encode("utf-8"))
    mi, t_text, unmatched, dropped = match_targets(published, our_utts, default_ids, mi_copies)
    if not mi:
        raise DataDirError(f"no utterance of {t_dir} has {mi_copies} published MI copies (of {len(published)} "
                           f"published targets, {len(unmatched)} have no audio here): are these the "
                           f"original's FLEURS/Common Voice training utterances?")
    t_ids = t_as_token_ids(t_data, tokenizer)
    mismatches = sorted(utt for utt, ids in t_text.items() if ids != t_ids.files["text"][utt])
    copies = [{name: {utt: files[k][name] for utt, files in mi.items()} for name in INSTRUCTION_FILES}
              for k in range(mi_copies)]
    mi_data, tmi_data, _ = build_sets(t_ids, copies, *default_ids)
    for data, directory in ((mi_data, mi_dir), (tmi_data, tmi_dir)):
        changed = write_atomically(with_readable_copies(data, tokenizer), directory)
        log.info("%s: %d utterance(s)%s", directory, len(data.utt2spk), "" if changed else " (up to date)")

    summary = {
        "targets": str(targets),
        "t_dir": str(t_dir),
        "vocabulary_size": vocab_size,
        "published_targets_usable": len(published),
        "bad_entries": dict(sorted(Counter(reason for _, _, reason, _ in bad).items())),
        "published_unmatched": dict(sorted(Counter(unmatched.values()).items())),
        "our_utterances": len(our_utts),
        "utterances_imported": len(mi),
        "utterances_dropped": dict(sorted(Counter(r.split(":")[0] for r in dropped.values()).items())),
        "published_t_copies_matched": len(t_text),
        "t_text_mismatches": len(mismatches),
        "mi_utterances": len(mi_data.utt2spk),
        "tmi_utterances": len(tmi_data.utt2spk),
    }
    report = Path(report_dir)
    report.mkdir(parents=True, exist_ok=True)
    write_kv(str(report / "unmatched_published"), unmatched)
    write_kv(str(report / "dropped"), dropped)
    bad_lines = "".join(f"{where}:{line} {reason} {detail}\n" for where, line, reason, detail in bad)
    (report / "bad_entries").write_text(bad_lines, encoding="utf-8")
    (report / "summary.yaml").write_text(yaml.safe_dump(summary, sort_keys=False, allow_unicode=True),
                                         encoding="utf-8")
    log.info("imported %d of %d utterance(s) of %s; %d published target(s) without audio here, %d unusable "
             "line(s), %d utterance(s) of ours left out (%s); %d published T text(s) differ from ours; "
             "reports in %s", len(mi), len(our_utts), t_dir, len(unmatched), len(bad), len(dropped),
             summary["utterances_dropped"], len(mismatches), report)
    if mismatches:
        log.warning("published T text differs from ours for %d utterance(s), e.g. %s", len(mismatches), mismatches[0])
    return summary


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", required=True, help="tmi_training_targets.tar.gz or its extracted folder")
    parser.add_argument("--t_dir", required=True, help="our T training dir (e.g. dump/raw/train_t_sp)")
    parser.add_argument("--llm", required=True, help="the LLM whose tokenizer made the ids (bigscience/bloomz-7b1)")
    parser.add_argument("--mi_dir", default=None, help="default: the T dir's name with _t -> _mi")
    parser.add_argument("--tmi_dir", default=None, help="default: the T dir's name with _t -> _tmi")
    parser.add_argument("--mi_copies", type=int, default=2, help="MI copies per utterance (the paper: 2)")
    parser.add_argument("--default_instruction", default="conf/instructions/default.yaml",
                        help="the T instruction: tells T copies apart and is written for the TMI copy -1")
    parser.add_argument("--report_dir", default=None,
                        help="where the reports go (default: mi_targets_published beside the TMI dir)")
    return parser


def main(argv=None):
    start_logging()
    args = get_parser().parse_args(argv)
    import_mi_targets(args.targets, args.t_dir, args.llm, args.mi_dir, args.tmi_dir, args.mi_copies,
                      args.default_instruction, args.report_dir)


if __name__ == "__main__":
    main()
