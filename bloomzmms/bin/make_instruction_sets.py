"""Stage "T/MI/TMI training directories": the paper's three training sets from one T dir.

* T   (``--t_dir``, e.g. ``dump/raw/train_t_sp``): left as it is. It has no
  ``decoder_prefix``/``decoder_postfix``, so the model's default instruction applies (the
  decoder's ``instruction_prefix``/``instruction_postfix``, which the training configs set to
  ``conf/instructions/default.yaml``: "Repeat the sentence: " ... ". ").
* MI  (``--mi_dir``, default: the T dir's name with ``_t`` -> ``_mi``, e.g. ``train_mi_sp``):
  copy k of every utterance (id suffix ``-k``, k = 1..N, N = the ``copy*`` folders of
  ``--mi_targets``) with ``text``, ``decoder_prefix``, ``decoder_postfix`` of
  ``<mi_targets>/copy{k}`` (from ``make_mi_targets``).
* TMI (``--tmi_dir``, default ``_t`` -> ``_tmi``, e.g. ``train_tmi_sp``): ``-1`` = the T target
  with the default instruction written out (``--default_instruction``; a T dir that has its own
  ``decoder_prefix``/``decoder_postfix`` keeps those), ``-2`` .. ``-(N+1)`` = the MI copies.

Every other file of the T dir comes along: per-utterance files (``wav.scp``,
``utt2num_samples``, ``utt2lang``, ``utt2sentence``, ...) copied for each copy, speaker files,
and ``feats_type``/``audio_format`` verbatim. Ids: the utterance id gets the suffix; a speaker
that is its own single utterance (FLEURS, Common Voice: utt2spk maps an id to itself) gets the
same suffix (``add_affixes(utt_suffix=-k, spk_suffix=-k)``), any other speaker id is kept, so
every utterance id still starts with its speaker id and utt2spk sorts consistently (the
datadir rules; the outputs are checked with ``validate_data_dir``).

Only complete utterances go into MI and TMI: one missing an MI copy (an empty response or no
applicable template in ``make_mi_targets``) is left out of both, and the count is reported.
Instruction values are stored escaped (``bloomzmms.instructions``). Each output is built in a
temporary sibling folder, validated and swapped in; an unchanged output is not touched, so
re-running is a no-op.

With ``--token_ids_from LLM`` the MI and TMI sets store ``text``/``decoder_prefix``/
``decoder_postfix`` as that LLM's token ids, the format of the published targets (train with
``--train_text_type text_int``); the readable values stay beside them as ``*_text`` files.

Usage:
    python -m bloomzmms.bin.make_instruction_sets --t_dir dump/raw/train_t_sp \\
        --mi_targets dump/raw/mi_targets [--mi_dir dump/raw/train_mi_sp] \\
        [--tmi_dir dump/raw/train_tmi_sp] [--default_instruction conf/instructions/default.yaml] \\
        [--token_ids_from bigscience/bloomz-7b1]
"""

import argparse
import filecmp
import logging
import os
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from bloomzmms.datadir import (DataDir, DataDirError, add_affixes, combine, load_data_dir, read_kv, rename,
                               save_data_dir, spk2utt, subset, validate_data_dir)
from bloomzmms.asr.llm import load_tokenizer
from bloomzmms.cli import start_logging
from bloomzmms.instructions import escape_instruction, load_instruction, unescape_instruction

log = logging.getLogger(__name__)

INSTRUCTION_FILES = ("text", "decoder_prefix", "decoder_postfix")


def derived_name(t_dir: str, replacement: str) -> str:
    """``dump/raw/train_t_sp`` -> ``dump/raw/train_<replacement>_sp``."""
    path = Path(t_dir)
    name, count = re.subn(r"_t(?=_|$)", f"_{replacement}", path.name, count=1)
    if not count:
        raise ValueError(f"cannot derive the {replacement.upper()} dir name from {t_dir} (no '_t' in its "
                         f"name): give --{replacement}_dir")
    return str(path.with_name(name))


def read_mi_copies(mi_targets: str) -> List[Dict[str, Dict[str, str]]]:
    """[copy1, copy2, ...], each {file name: {utt: value}} for text/decoder_prefix/decoder_postfix."""
    root = Path(mi_targets)
    numbers = sorted(int(p.name[4:]) for p in root.glob("copy*") if p.is_dir() and p.name[4:].isdigit())
    if not numbers:
        raise DataDirError(f"{mi_targets}: no copy1/, copy2/, ... folders (run make_mi_targets)")
    if numbers != list(range(1, len(numbers) + 1)):
        raise DataDirError(f"{mi_targets}: copy folders {numbers} are not numbered 1..N")
    copies = []
    for k in numbers:
        files = {name: read_kv(str(root / f"copy{k}" / name)) for name in INSTRUCTION_FILES}
        if not (set(files["text"]) == set(files["decoder_prefix"]) == set(files["decoder_postfix"])):
            raise DataDirError(f"{root / f'copy{k}'}: text, decoder_prefix and decoder_postfix have different keys")
        copies.append(files)
    return copies


def copy_with_suffix(data: DataDir, suffix: str) -> DataDir:
    """``data`` with ``suffix`` on utterance ids and on the ids of one-utterance self-speakers."""
    speakers = spk2utt(data.utt2spk)
    if all(utts == spk for spk, utts in speakers.items()):
        return add_affixes(data, utt_suffix=suffix, spk_suffix=suffix)
    self_speakers = {spk for spk, utts in speakers.items() if utts == spk}
    return rename(data, lambda utt: utt + suffix, lambda spk: spk + suffix if spk in self_speakers else spk)


def with_files(data: DataDir, replacements: Dict[str, Dict[str, str]], name: str) -> DataDir:
    files = dict(data.files)
    for file_name, values in replacements.items():
        files[file_name] = {utt: values[utt] for utt in data.utt2spk}
    return DataDir(files, dict(data.verbatim), name)


def build_sets(t_data: DataDir, mi_copies: Sequence[Dict[str, Dict[str, str]]], default_prefix: str,
               default_postfix: str):
    """(MI DataDir, TMI DataDir, report) for the complete utterances."""
    t_utts = set(t_data.utt2spk)
    for k, files in enumerate(mi_copies, 1):
        unknown = sorted(set(files["text"]) - t_utts)
        if unknown:
            raise DataDirError(f"MI copy{k} has {len(unknown)} utterance(s) not in {t_data.name}, e.g. "
                               f"{unknown[0]!r}: were the MI targets made from another data dir?")
    missing = Counter()
    for files in mi_copies:
        missing.update(t_utts - set(files["text"]))
    complete = sorted(t_utts - set(missing), key=lambda u: u.encode("utf-8"))
    if not complete:
        raise DataDirError(f"no utterance of {t_data.name} has all {len(mi_copies)} MI copies")
    base = subset(t_data, complete)
    mi_parts = [copy_with_suffix(with_files(base, files, f"mi copy{k}"), f"-{k}")
                for k, files in enumerate(mi_copies, 1)]
    t_instruction = {}
    for file_name, value in (("decoder_prefix", default_prefix), ("decoder_postfix", default_postfix)):
        if file_name not in base.files:
            t_instruction[file_name] = {utt: escape_instruction(value) for utt in base.utt2spk}
    t_part = copy_with_suffix(with_files(base, t_instruction, "t"), "-1")
    tmi_parts = [t_part] + [copy_with_suffix(with_files(base, files, f"mi copy{k}"), f"-{k + 1}")
                            for k, files in enumerate(mi_copies, 1)]
    report = {
        "t_utterances": len(t_utts),
        "mi_copies": len(mi_copies),
        "complete_utterances": len(complete),
        "dropped_incomplete": len(missing),
        "dropped_missing_copies": dict(sorted(Counter(missing.values()).items())),
    }
    return combine(mi_parts), combine(tmi_parts), report


def _same_files(a: Path, b: Path) -> bool:
    names_a = sorted(p.name for p in a.iterdir() if p.is_file() and not p.name.startswith("."))
    names_b = sorted(p.name for p in b.iterdir() if p.is_file() and not p.name.startswith("."))
    return names_a == names_b and all(filecmp.cmp(a / n, b / n, shallow=False) for n in names_a)


def write_atomically(data: DataDir, directory: str) -> bool:
    """Save, validate and swap in ``directory``; return False when it already held the same."""
    target = Path(directory)
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_data_dir(data, str(tmp))
    problems = validate_data_dir(str(tmp))
    if problems:
        raise DataDirError(f"{target} would be invalid: " + "; ".join(map(str, problems[:5])))
    if target.is_dir() and _same_files(tmp, target):
        shutil.rmtree(tmp)
        return False
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.rename(target, old)
    os.rename(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
    return True


def as_token_ids(data: DataDir, tokenizer_name_or_path: str) -> DataDir:
    """The paper's storage format (as the published targets): text and instructions as LLM token
    ids, each tokenized on its own, as the model embeds them; readable copies stay as ``*_text``."""
    tokenizer = load_tokenizer(tokenizer_name_or_path)
    files = dict(data.files)
    for name in INSTRUCTION_FILES:
        values = files[name]
        files[f"{name}_text"] = values
        plain = values if name == "text" else {utt: unescape_instruction(v) for utt, v in values.items()}
        files[name] = {
            utt: " ".join(str(i) for i in tokenizer(value, add_special_tokens=False)["input_ids"])
            for utt, value in plain.items()
        }
    return DataDir(files, data.verbatim, data.name)


def make_instruction_sets(t_dir: str, mi_targets: str, mi_dir: Optional[str] = None,
                          tmi_dir: Optional[str] = None,
                          default_instruction: str = "conf/instructions/default.yaml",
                          token_ids_from: Optional[str] = None) -> dict:
    mi_dir = mi_dir or derived_name(t_dir, "mi")
    tmi_dir = tmi_dir or derived_name(t_dir, "tmi")
    if len({os.path.abspath(d) for d in (t_dir, mi_dir, tmi_dir)}) < 3:
        raise ValueError("--t_dir, --mi_dir and --tmi_dir must be three different folders")
    prefix, postfix = load_instruction(default_instruction)
    t_data = load_data_dir(t_dir)
    mi_data, tmi_data, report = build_sets(t_data, read_mi_copies(mi_targets), prefix, postfix)
    if token_ids_from is not None:
        mi_data, tmi_data = as_token_ids(mi_data, token_ids_from), as_token_ids(tmi_data, token_ids_from)
    for data, directory in ((mi_data, mi_dir), (tmi_data, tmi_dir)):
        changed = write_atomically(data, directory)
        log.info("%s: %d utterance(s)%s", directory, len(data.utt2spk), "" if changed else " (up to date)")
        report[f"{Path(directory).name}_utterances"] = len(data.utt2spk)
    if report["dropped_incomplete"]:
        log.warning("%d of %d utterance(s) of %s lack MI copies (empty responses / no template): left out "
                    "of MI and TMI (missing copies -> count: %s)", report["dropped_incomplete"],
                    report["t_utterances"], t_dir, report["dropped_missing_copies"])
    return report


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--t_dir", required=True, help="the T training dir (e.g. dump/raw/train_t_sp)")
    parser.add_argument("--mi_targets", required=True, help="make_mi_targets' output dir")
    parser.add_argument("--mi_dir", default=None, help="default: the T dir's name with _t -> _mi")
    parser.add_argument("--tmi_dir", default=None, help="default: the T dir's name with _t -> _tmi")
    parser.add_argument("--default_instruction", default="conf/instructions/default.yaml",
                        help="the T instruction written for the TMI copy -1")
    parser.add_argument("--token_ids_from", default=None,
                        help="store text/decoder_prefix/decoder_postfix as token ids of this LLM's tokenizer "
                             "(train with --train_text_type text_int), keeping readable *_text copies")
    return parser


def main(argv=None):
    start_logging()
    args = get_parser().parse_args(argv)
    make_instruction_sets(args.t_dir, args.mi_targets, args.mi_dir, args.tmi_dir, args.default_instruction,
                          args.token_ids_from)


if __name__ == "__main__":
    main()
