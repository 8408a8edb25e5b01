"""Kaldi-style data directories: read, validate, fix, subset, rename, combine, speed-perturb, split.

A data directory holds `<key> <value>` files: keys unique and sorted in C byte order, a final
newline, values kept as raw text (an empty value is written as `key ` ). `utt2spk` defines the
utterance set, every per-utterance file (see `file_kind`) must have exactly that set, and
`spk2utt` is derived from `utt2spk`. Writers replace files atomically (temp file + rename), so an
interrupted run can simply be re-run.
"""
import json
import logging
import os
import random
import re
import shlex
import shutil
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

log = logging.getLogger(__name__)

REQUIRED_FILES = ("utt2spk", "spk2utt", "wav.scp", "text")
VERBATIM_FILES = frozenset({"feats_type", "audio_format", "frame_shift"})  # not key-value
NUMERIC_FILES = {"utt2num_samples": int, "reco2num_samples": int, "utt2dur": float, "reco2dur": float}
AUDIO_DERIVED_FILES = ("feats.scp", "utt2num_frames")  # stale after speed perturbation
_KEY = re.compile(r"[^ \t]*")
_ARK_ENTRY = re.compile(r"^\S+:\d+(\[[^\]]*\])?$")
_SEGMENT = re.compile(r"^\S+\s+\d+(\.\d*)?\s+(\d+(\.\d*)?|-1)\s*$")


class DataDirError(Exception):
    """Malformed or inconsistent data directory (the message names the file and line)."""


class Problem(NamedTuple):
    file: str
    line: int | None
    message: str

    def __str__(self):
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"


class Entry(NamedTuple):
    line: int
    key: str
    value: str


def file_kind(name: str, has_segments: bool) -> str:
    """The one rule for what a data-dir file is keyed by.

    "ignored" (dot files), "derived" (spk2utt), "verbatim" (not key-value, copied as is),
    "spk" (per speaker), "reco" (per recording) or "utt" (per utterance: everything else).
    """
    if name.startswith("."):
        return "ignored"
    if name == "spk2utt":
        return "derived"
    if name in VERBATIM_FILES:
        return "verbatim"
    if name.startswith("spk2") or name == "cmvn.scp":
        return "spk"
    if name.startswith("reco2") or (name == "wav.scp" and has_segments):
        return "reco"
    return "utt"


def _data_file_names(directory: str) -> list[str]:
    return sorted(n for n in os.listdir(directory)
                  if file_kind(n, False) != "ignored" and os.path.isfile(os.path.join(directory, n)))


def per_utterance_files(directory: str) -> list[str]:
    """Names of the files in `directory` keyed by utterance id."""
    has_segments = os.path.isfile(os.path.join(directory, "segments"))
    return [n for n in _data_file_names(directory) if file_kind(n, has_segments) == "utt"]


def _c_order(key: str) -> bytes:
    return key.encode("utf-8")


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _scan(path: str) -> tuple[list[Entry], list[Problem]]:
    """Parse the well-formed lines; report the malformed ones instead of stopping."""
    raw = _read_bytes(path)
    if not raw:
        return [], [Problem(path, None, "file is empty")]
    entries, problems = [], []
    lines = raw.split(b"\n")
    if lines[-1]:
        problems.append(Problem(path, len(lines), "missing final newline"))
    else:
        lines.pop()
    for number, raw_line in enumerate(lines, 1):
        try:
            line = raw_line.decode("utf-8")
        except UnicodeDecodeError as e:
            problems.append(Problem(path, number, f"invalid UTF-8 at byte {e.start} of the line"))
            continue
        key = _KEY.match(line).group()
        if not key:
            problems.append(Problem(path, number, "line has no key (empty or starts with whitespace)"))
            continue
        entries.append(Entry(number, key, line[len(key) + 1:]))  # the separator is one space or tab
    return entries, problems


def read_entries(path: str) -> list[Entry]:
    """Every line of a key-value file as (line, key, value); raise on a malformed line."""
    entries, problems = _scan(path)
    malformed = [p for p in problems if p.message not in ("missing final newline", "file is empty")]
    if malformed:
        raise DataDirError(str(malformed[0]))
    return entries


def read_kv(path: str) -> dict[str, str]:
    """Key -> raw value text ("" when empty); raise on malformed lines or duplicate keys."""
    result, first_line = {}, {}
    for entry in read_entries(path):
        if entry.key in result:
            raise DataDirError(f"{path}:{entry.line}: duplicate key '{entry.key}' "
                               f"(first on line {first_line[entry.key]})")
        result[entry.key], first_line[entry.key] = entry.value, entry.line
    return result


def _render_kv(mapping: dict[str, str]) -> bytes:
    return "".join(f"{k} {mapping[k]}\n" for k in sorted(mapping, key=_c_order)).encode("utf-8")


def _write_atomic(path: str, content: bytes) -> bool:
    """Replace `path` through a temp file; leave it (and its mtime) alone when unchanged."""
    if os.path.isfile(path) and _read_bytes(path) == content:
        return False
    tmp = os.path.join(os.path.dirname(path) or ".", f".{os.path.basename(path)}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(content)
    os.replace(tmp, path)
    return True


def write_kv(path: str, mapping: dict[str, str]) -> None:
    """Write `key value` lines sorted in C byte order, atomically."""
    _write_atomic(path, _render_kv(mapping))


def spk2utt(utt2spk: dict[str, str]) -> dict[str, str]:
    """Speaker -> its utterances (space-separated, C byte order)."""
    grouped = defaultdict(list)
    for utt in sorted(utt2spk, key=_c_order):
        grouped[utt2spk[utt]].append(utt)
    return {spk: " ".join(utts) for spk, utts in grouped.items()}


@dataclass
class DataDir:
    """A data directory in memory: key-value files by name, plus files copied verbatim."""
    files: dict[str, dict[str, str]]
    verbatim: dict[str, bytes] = field(default_factory=dict)
    name: str = ""  # for messages

    @property
    def has_segments(self) -> bool:
        return "segments" in self.files

    @property
    def utt2spk(self) -> dict[str, str]:
        return self.files["utt2spk"]

    def kind(self, name: str) -> str:
        return file_kind(name, self.has_segments)

    def recording_of(self, utt: str) -> str:
        if not self.has_segments:
            return utt
        if not self.files["segments"].get(utt, "").strip():
            raise DataDirError(f"{self.name}: no segment for '{utt}' (run utils/fix_data_dir.py)")
        return self.files["segments"][utt].split()[0]


def load_data_dir(directory: str, reader: Callable[[str], dict[str, str]] = read_kv) -> DataDir:
    """Read every data file of `directory` (spk2utt is derived, so not read)."""
    if not os.path.isfile(os.path.join(directory, "utt2spk")):
        raise DataDirError(f"{directory}: no utt2spk (not a data directory?)")
    data = DataDir({}, name=directory)
    for name in _data_file_names(directory):
        path = os.path.join(directory, name)
        if file_kind(name, False) == "verbatim":
            data.verbatim[name] = _read_bytes(path)
        elif file_kind(name, False) != "derived":
            data.files[name] = reader(path)
    return data


def _render_data_dir(data: DataDir) -> dict[str, bytes]:
    rendered = {name: _render_kv(kv) for name, kv in data.files.items()}
    rendered["spk2utt"] = _render_kv(spk2utt(data.utt2spk))
    return {**rendered, **data.verbatim}


def _write_files(directory: str, rendered: dict[str, bytes]) -> list[str]:
    """Write the changed files, delete data files not in `rendered`; return what changed."""
    os.makedirs(directory, exist_ok=True)
    if _data_file_names(directory) and not os.path.isfile(os.path.join(directory, "utt2spk")):
        raise DataDirError(f"{directory} has files but no utt2spk: not overwriting what is not a data dir")
    changed = [name for name, content in rendered.items() if _write_atomic(os.path.join(directory, name), content)]
    for stale in set(_data_file_names(directory)) - set(rendered):
        os.remove(os.path.join(directory, stale))
        changed.append(stale)
    return changed


def save_data_dir(data: DataDir, directory: str) -> None:
    """Write `data` into `directory`, removing the data files `data` does not have."""
    _write_files(directory, _render_data_dir(data))


def _line_problems(path: str, entries: list[Entry]) -> list[Problem]:
    problems, first_line, unsorted = [], {}, []
    for previous, entry in zip([None, *entries], entries, strict=False):
        if entry.key in first_line:
            problems.append(Problem(path, entry.line, f"duplicate key '{entry.key}' "
                                                      f"(first on line {first_line[entry.key]})"))
        first_line.setdefault(entry.key, entry.line)
        if previous and _c_order(entry.key) < _c_order(previous.key):
            unsorted.append((entry, previous))
    if unsorted:
        entry, previous = unsorted[0]
        problems.append(Problem(path, entry.line, f"keys not sorted in C byte order: '{entry.key}' after "
                                                  f"'{previous.key}' (line {previous.line}); "
                                                  f"{len(unsorted)} line(s) out of order"))
    return problems


def _value_problems(path: str, name: str, entries: list[Entry], no_empty_text: bool) -> list[Problem]:
    problems = []
    for e in entries:
        if name == "wav.scp" and not e.value.strip():
            problems.append(Problem(path, e.line, f"'{e.key}' has no audio path or command"))
        elif name == "text" and no_empty_text and not e.value.strip():
            problems.append(Problem(path, e.line, f"'{e.key}' has an empty transcription"))
        elif name == "segments" and not _SEGMENT.match(e.value):
            problems.append(Problem(path, e.line, f"'{e.key}': expected '<recording> <start> <end>'"))
    return problems


def _key_set_problems(path: str, entries: list[Entry], expected: set[str], what: str,
                      reference: str = "utt2spk", report_extra: bool = True) -> list[Problem]:
    line_of = {e.key: e.line for e in entries}
    problems = []
    extra = sorted(set(line_of) - expected, key=line_of.get)
    if extra and report_extra:
        examples = ", ".join(f"'{k}' (line {line_of[k]})" for k in extra[:3])
        problems.append(Problem(path, line_of[extra[0]], f"{len(extra)} {what} not in {reference}, e.g. {examples}"))
    missing = sorted(expected - set(line_of), key=_c_order)
    if missing:
        examples = ", ".join(f"'{k}'" for k in missing[:3])
        problems.append(Problem(path, None, f"{len(missing)} {what} of {reference} missing, e.g. {examples}"))
    return problems


def validate_data_dir(directory: str, no_empty_text: bool = False) -> list[Problem]:
    """Every problem found in `directory` (an empty list: valid)."""
    if not os.path.isdir(directory):
        return [Problem(directory, None, "not a directory")]
    problems = [Problem(os.path.join(directory, n), None, "required file missing")
                for n in REQUIRED_FILES if not os.path.isfile(os.path.join(directory, n))]
    has_segments = os.path.isfile(os.path.join(directory, "segments"))
    entries = {}
    for name in _data_file_names(directory):
        if file_kind(name, has_segments) != "verbatim":
            path = os.path.join(directory, name)
            entries[name], scan_problems = _scan(path)
            problems += scan_problems + _line_problems(path, entries[name])
            problems += _value_problems(path, name, entries[name], no_empty_text)
    if "utt2spk" not in entries:
        return problems
    utt2spk = {e.key: e.value for e in entries["utt2spk"]}
    for e in entries["utt2spk"]:
        if not e.value or not e.key.startswith(e.value):
            problems.append(Problem(os.path.join(directory, "utt2spk"), e.line,
                                    f"utterance '{e.key}' does not start with its speaker id '{e.value}'"))
    speakers = {spk: set(utts.split()) for spk, utts in spk2utt(utt2spk).items()}
    for e in entries.get("spk2utt", []):
        if e.key in speakers and set(e.value.split()) != speakers[e.key]:
            problems.append(Problem(os.path.join(directory, "spk2utt"), e.line,
                                    f"utterances of speaker '{e.key}' differ from utt2spk"))
    recordings = {e.value.split()[0] for e in entries["segments"] if e.value.strip()} if has_segments else None
    for name, name_entries in entries.items():
        path, kind = os.path.join(directory, name), file_kind(name, has_segments)
        if kind == "utt" and name != "utt2spk":
            problems += _key_set_problems(path, name_entries, set(utt2spk), "utterances")
        elif kind in ("spk", "derived"):
            problems += _key_set_problems(path, name_entries, set(speakers), "speakers")
        elif kind == "reco":  # unused recordings are harmless
            problems += _key_set_problems(path, name_entries, recordings or set(utt2spk), "recordings",
                                          "segments" if has_segments else "utt2spk", report_extra=False)
    return problems


@dataclass
class FixReport:
    kept: int
    dropped: dict[str, str]  # utterance -> reason
    duplicates: dict[str, int]  # file -> duplicate lines removed (the first one was kept)
    changed_files: list[str]

    def summary(self) -> str:
        if not self.changed_files:
            return f"nothing to fix ({self.kept} utterances)"
        lines = [f"kept {self.kept} of {self.kept + len(self.dropped)} utterances"]
        lines += [f"  dropped {n}: {why}" for why, n in sorted(Counter(self.dropped.values()).items())]
        lines += [f"  {name}: removed {n} duplicate line(s), kept the first" for name, n in self.duplicates.items()]
        lines.append(f"  rewrote: {' '.join(sorted(self.changed_files))}")
        return "\n".join(lines)


def fix_data_dir(directory: str) -> FixReport:
    """Keep the utterances present in all per-utterance files, sort, regenerate spk2utt.

    Files about to change are first copied to `<dir>/.backup/`; dropped ids go to `.backup/dropped`.
    """
    duplicates = {}

    def read_keeping_first(path):
        entries, kv = read_entries(path), {}
        for entry in entries:
            kv.setdefault(entry.key, entry.value)
        if len(kv) < len(entries):
            duplicates[os.path.basename(path)] = len(entries) - len(kv)
        return kv

    data = load_data_dir(directory, reader=read_keeping_first)
    utt_files = [name for name in data.files if data.kind(name) == "utt"]
    dropped = {}
    for utt in set().union(*(data.files[n] for n in utt_files)):
        missing = [n for n in utt_files if utt not in data.files[n]]
        if missing:
            dropped[utt] = "not in " + ", ".join(missing)
        elif data.has_segments and data.recording_of(utt) not in data.files.get("wav.scp", {}):
            dropped[utt] = "recording not in wav.scp"
    kept = [u for u in data.utt2spk if u not in dropped]
    if dropped and not kept:
        strays = ", ".join(n for n in utt_files if not set(data.files[n]) & set(data.utt2spk))
        why = f"no utterance id of utt2spk is in {strays}: a stray non-data file?" if strays else \
            f"e.g. '{next(iter(dropped))}' is {next(iter(dropped.values()))}"
        raise DataDirError(f"{directory}: fixing would drop every utterance ({why}); nothing changed")
    rendered = _render_data_dir(subset(data, kept))
    backup = os.path.join(directory, ".backup")
    to_back_up = [n for n in _data_file_names(directory)
                  if _read_bytes(os.path.join(directory, n)) != rendered.get(n)]
    if to_back_up:
        os.makedirs(backup, exist_ok=True)
        for name in to_back_up:
            shutil.copy2(os.path.join(directory, name), os.path.join(backup, name))
        _write_atomic(os.path.join(backup, "dropped"), _render_kv(dropped))
    return FixReport(len(kept), dropped, duplicates, _write_files(directory, rendered))


def subset(data: DataDir, utts: Iterable[str]) -> DataDir:
    """The utterances `utts` (unknown ids ignored) with their speakers and recordings."""
    keep = set(utts) & set(data.utt2spk)
    allowed = {"utt": keep, "spk": {data.utt2spk[u] for u in keep}, "reco": {data.recording_of(u) for u in keep}}
    files = {name: {k: v for k, v in kv.items() if k in allowed[data.kind(name)]} for name, kv in data.files.items()}
    return DataDir(files, dict(data.verbatim), data.name)


def choose_utterances(data: DataDir, *, utt_list: Sequence[str] | None = None,
                      spk_list: Sequence[str] | None = None, first: int | None = None,
                      last: int | None = None, shuffle: int | None = None, seed: int = 0) -> list[str]:
    """Utterance ids picked by exactly one criterion; `shuffle` draws that many ids, seeded by `seed`."""
    criteria = [c for c in (utt_list, spk_list, first, last, shuffle) if c is not None]
    if len(criteria) != 1:
        raise ValueError("give exactly one of utt_list, spk_list, first, last, shuffle")
    if utt_list is not None:
        return [u for u in utt_list if u in data.utt2spk]
    utts = sorted(data.utt2spk, key=_c_order)
    if spk_list is not None:
        return [u for u in utts if data.utt2spk[u] in set(spk_list)]
    count = criteria[0]
    if not 0 <= count <= len(utts):
        raise ValueError(f"asked for {count} utterances, {data.name or 'the data'} has {len(utts)}")
    if first is not None:
        return utts[:count]
    if last is not None:
        return utts[len(utts) - count:]
    return random.Random(seed).sample(utts, count)


def rename(data: DataDir, utt_map: Callable[[str], str], spk_map: Callable[[str], str],
           reco_map: Callable[[str], str] | None = None) -> DataDir:
    """Rewrite utterance, speaker and recording ids in every file, also in utt2spk and segments values.

    `reco_map=None` keeps recording ids when `segments` exists (without it they are utterance ids).
    """
    if reco_map is None:
        reco_map = (lambda reco: reco) if data.has_segments else utt_map
    key_maps = {"utt": utt_map, "spk": spk_map, "reco": reco_map}
    files = {}
    for name, kv in data.files.items():
        key_map = key_maps[data.kind(name)]
        if name == "utt2spk":
            files[name] = {key_map(k): spk_map(v) for k, v in kv.items()}
        elif name == "segments":
            files[name] = {key_map(k): " ".join([reco_map(v.split()[0]), *v.split()[1:]]) for k, v in kv.items()}
        else:
            files[name] = {key_map(k): v for k, v in kv.items()}
    return DataDir(files, dict(data.verbatim), data.name)


def add_affixes(data: DataDir, utt_prefix: str = "", utt_suffix: str = "",
                spk_prefix: str = "", spk_suffix: str = "") -> DataDir:
    """Copy with prefixed/suffixed utterance and speaker ids (recording ids kept when segments exist)."""
    return rename(data, lambda u: f"{utt_prefix}{u}{utt_suffix}", lambda s: f"{spk_prefix}{s}{spk_suffix}")


def combine(datas: Sequence[DataDir], skip_missing_extra: bool = False) -> DataDir:
    """Union of data dirs; raise on duplicate utterance ids and on files only some sources have."""
    with_segments = [d.name for d in datas if d.has_segments]
    if 0 < len(with_segments) < len(datas):
        raise DataDirError(f"cannot combine: only {', '.join(with_segments)} of the sources have segments")
    combined = DataDir({}, name="+".join(d.name for d in datas))
    for name in sorted({n for d in datas for n in [*d.files, *d.verbatim]}):
        lacking = [d.name for d in datas if name not in d.files and name not in d.verbatim]
        if lacking and skip_missing_extra and name not in REQUIRED_FILES:
            log.warning("combine: leaving out %s, which %s lack(s)", name, ", ".join(lacking))
        elif lacking:
            having = ", ".join(d.name for d in datas if d.name not in lacking)
            raise DataDirError(f"cannot combine: {name} (in {having}) is missing from {', '.join(lacking)}; "
                               f"add it there or leave such files out (--skip-missing-extra)")
        elif name in datas[0].verbatim:
            if len({d.verbatim.get(name) for d in datas}) > 1:
                raise DataDirError(f"cannot combine: {name} differs between the sources")
            combined.verbatim[name] = datas[0].verbatim[name]
        else:
            combined.files[name] = _union(name, datas, unique_keys=datas[0].kind(name) == "utt")
    return combined


def _union(name: str, datas: Sequence[DataDir], unique_keys: bool) -> dict[str, str]:
    merged, origin = {}, {}
    for data in datas:
        for key, value in data.files[name].items():
            if key in merged and (unique_keys or merged[key] != value):
                what = "duplicate utterance id" if unique_keys else f"conflicting {name} entries for"
                raise DataDirError(f"cannot combine: {what} '{key}' in {origin[key]} and {data.name}")
            merged[key], origin[key] = value, data.name
    return merged


def speed_command(wav_value: str, factor: float) -> str:
    """A wav.scp pipe giving the audio of `wav_value` (a path or `cmd |`) at `factor` speed.

    sox `speed` changes tempo and pitch, as Kaldi/ESPnet do; -R makes its dither repeatable.
    """
    value = wav_value.strip()
    if value.endswith("|"):
        return f"{value} sox -R -t wav - -t wav -b 16 - speed {factor:g} |"
    if _ARK_ENTRY.match(value):
        raise DataDirError(f"cannot speed-perturb the ark entry '{value}': perturb the data dir whose "
                           f"wav.scp has paths or pipes (the one before dumping)")
    return f"sox -R {shlex.quote(value)} -t wav -b 16 - speed {factor:g} |"


def _seconds(value: float) -> str:
    return f"{value:.4f}"


def _scale_segment(segment: str, factor: float) -> str:
    recording, start, end = segment.split()
    end = end if float(end) < 0 else _seconds(float(end) / factor)  # -1: to the end of the recording
    return f"{recording} {_seconds(float(start) / factor)} {end}"


def _scale_number(value: str, number_type: type, factor: float) -> str:
    if number_type is int:
        return str(round(int(value) / factor))  # sox writes round(n / factor) samples
    return _seconds(float(value) / factor)


def speed_perturb(data: DataDir, factor: float) -> DataDir:
    """Speed-perturbed copy; utterance, speaker and recording ids get the prefix `sp<factor>-`."""
    if factor <= 0:
        raise ValueError(f"speed factor must be positive, got {factor}")
    if factor == 1.0:
        return subset(data, data.utt2spk)  # an unchanged copy

    def add_prefix(key):
        return f"sp{factor:g}-{key}"

    out = rename(data, add_prefix, add_prefix, add_prefix)
    for name in AUDIO_DERIVED_FILES:
        if out.files.pop(name, None) is not None:
            log.warning("speed perturbation: leaving out %s (computed from the unperturbed audio)", name)
    out.files["wav.scp"] = {k: speed_command(v, factor) for k, v in out.files["wav.scp"].items()}
    if out.has_segments:
        out.files["segments"] = {k: _scale_segment(v, factor) for k, v in out.files["segments"].items()}
    for name, number_type in NUMERIC_FILES.items():
        if name in out.files:
            out.files[name] = {k: _scale_number(v, number_type, factor) for k, v in out.files[name].items()}
    return out


def speed_perturb_combined(data: DataDir, factors: Sequence[float]) -> DataDir:
    """One data dir holding the copies for all `factors` (1.0 keeps the original ids)."""
    copies = [speed_perturb(data, factor) for factor in factors]
    for copy, factor in zip(copies, factors, strict=True):
        copy.name = f"{data.name} (speed {factor:g})"
    return combine(copies)


def _contiguous_parts(weights: Sequence[int], num_parts: int) -> list[int]:
    """Part index of each group: contiguous, no part empty, balanced by total weight."""
    total, cumulative, previous, parts = sum(weights), 0, -1, []
    for i, weight in enumerate(weights):
        target = int((cumulative + weight / 2) * num_parts / total)
        earliest = num_parts - (len(weights) - i)  # leaves one group for each later part
        part = max(min(max(target, previous), previous + 1, num_parts - 1), earliest, 0)
        parts.append(part)
        cumulative, previous = cumulative + weight, part
    return parts


def split_data_dir(directory: str, num_parts: int, per_spk: bool = False) -> list[str]:
    """Write `<dir>/split<N>/<1..N>/`, each a complete data dir; a no-op when already up to date.

    Up to date: the stamp in the split dir matches the source files' mtimes and sizes and `per_spk`.
    """
    if num_parts < 1:
        raise ValueError(f"number of parts must be positive, got {num_parts}")
    split_dir = os.path.join(directory, f"split{num_parts}")
    parts = [os.path.join(split_dir, str(i)) for i in range(1, num_parts + 1)]
    sources = {n: os.stat(os.path.join(directory, n)) for n in _data_file_names(directory)}
    stamp = {"per_spk": per_spk, "sources": {n: [s.st_mtime_ns, s.st_size] for n, s in sources.items()}}
    stamp_path = os.path.join(split_dir, ".source_stamp")
    if os.path.isfile(stamp_path) and all(map(os.path.isdir, parts)):
        with open(stamp_path) as f:
            if json.load(f) == stamp:
                log.info("%s is up to date", split_dir)
                return parts
    data = load_data_dir(directory)
    if per_spk:
        groups = [utts.split() for utts in spk2utt(data.utt2spk).values()]
    else:
        groups = [[u] for u in sorted(data.utt2spk, key=_c_order)]
    if num_parts > len(groups):
        raise DataDirError(f"cannot split the {len(groups)} {'speakers' if per_spk else 'utterances'} "
                           f"of {directory} into {num_parts} parts")
    assignment = defaultdict(list)
    for group, part in zip(groups, _contiguous_parts([len(g) for g in groups], num_parts), strict=True):
        assignment[part].extend(group)
    tmp_dir = split_dir + ".tmp"  # one left over is from an interrupted run
    shutil.rmtree(tmp_dir, ignore_errors=True)
    for part in range(num_parts):
        save_data_dir(subset(data, assignment[part]), os.path.join(tmp_dir, str(part + 1)))
    with open(os.path.join(tmp_dir, ".source_stamp"), "w") as f:
        json.dump(stamp, f)
    shutil.rmtree(split_dir, ignore_errors=True)
    os.rename(tmp_dir, split_dir)
    return parts
