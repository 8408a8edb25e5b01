"""Tables (CSV) of audio paths and transcripts as utterances of a Kaldi data directory.

Shared by ``local/prepare_csv.py`` (table -> training/test data dir) and
``bloomzmms.bin.predict_table`` (table -> predictions -> table).

A table has a header row naming its columns. Each row is identified by its CSV line number
(the line its record starts on; a quoted field may span lines), which stays the row's identity
all the way: utterance id ``<prefix><line, 8 digits>`` (so C byte order = table order) and the
``utt2row`` file. The file is decoded line by line, so a line that is not UTF-8 costs only the
row it belongs to. Relative audio paths are resolved against the table's folder. Audio at
another rate than 16 kHz or with several channels becomes a ``sox ... |`` pipe entry.
"""

import csv
import dataclasses
import re
import shutil
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import soundfile
from tqdm import tqdm

from bloomzmms.audio import sox_resample_pipe
from bloomzmms.datadir import DataDir, save_data_dir

SAMPLE_RATE = 16000
UTT_ID_DIGITS = 8
UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


class TableError(ValueError):
    """The table as a whole cannot be used (unreadable file, missing header or column)."""


@dataclasses.dataclass(frozen=True)
class TableRow:
    line: int                     # CSV line number the record starts on
    fields: List[str]             # as parsed (a line that is not UTF-8 keeps its bytes as surrogates)
    problem: Optional[Tuple[str, str]] = None  # (reason, detail): a row no column can be read from


@dataclasses.dataclass(frozen=True)
class Utterance:
    utt_id: str
    line: int
    wav: str                      # wav.scp value: a path or a `sox ... |` pipe
    num_samples: int              # at 16 kHz
    text: Optional[str] = None
    language: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Dropped:
    csv_path: Path
    line: int
    reason: str
    detail: str

    def __str__(self):
        return f"{self.csv_path}:{self.line}\t{self.reason}\t{self.detail}"


def decoded_lines(csv_path: Path, bad_lines: set):
    """The file's lines as text; a line that is not UTF-8 is added to ``bad_lines`` and kept
    (its bytes as surrogates), so the CSV parser stays in step with the file."""
    for number, raw in enumerate(csv_path.read_bytes().splitlines(keepends=True), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            bad_lines.add(number)
            line = raw.decode("utf-8", errors="surrogateescape")
        yield line.lstrip("\ufeff") if number == 1 else line


def read_table(csv_path, delimiter: str = ",") -> Tuple[List[str], List[TableRow]]:
    """Header and every non-blank row, in file order. Rows whose fields do not match the header
    (a missing column, extra fields) or that touch a non-UTF-8 line carry a ``problem``."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise TableError(f"{csv_path}: no such file")
    bad_lines: set = set()
    reader = csv.reader(decoded_lines(csv_path, bad_lines), delimiter=delimiter, strict=False)
    header, rows, last_line = None, [], 0
    for fields in reader:
        first_line, last_line = last_line + 1, reader.line_num
        if not fields or fields == [""] or (len(fields) == 1 and not fields[0].strip()):
            continue  # a blank line
        if header is None:
            if bad_lines & set(range(first_line, last_line + 1)):
                raise TableError(f"{csv_path}:{first_line}: the header is not UTF-8")
            header = [name.strip() for name in fields]
            continue
        problem = None
        if bad_lines & set(range(first_line, last_line + 1)):
            problem = ("not_utf8", "the row has bytes that are not UTF-8")
        elif len(fields) < len(header):
            problem = ("missing_column", f"{len(fields)} fields, the header has {len(header)}: no {header[len(fields)]!r}")
        elif len(fields) > len(header):
            problem = ("extra_fields", f"{len(fields)} fields, the header has {len(header)} (an unquoted delimiter?)")
        rows.append(TableRow(first_line, fields, problem))
    if header is None:
        raise TableError(f"{csv_path}: empty table (no header row)")
    return header, rows


def column_index(header: Sequence[str], name: str, csv_path) -> int:
    if name not in header:
        raise TableError(f"{csv_path}: no column {name!r}; the columns are {list(header)}")
    return header.index(name)


def default_utt_prefix(csv_path) -> str:
    """``<table file stem>-``, with characters unsafe in ids replaced by ``_``."""
    return UNSAFE_ID_CHARS.sub("_", Path(csv_path).stem) + "-"


def utterance_id(prefix: str, line: int) -> str:
    return f"{prefix}{line:0{UTT_ID_DIGITS}d}"


def audio_entry(value: str, csv_dir: Path) -> Tuple[Optional[str], int, Optional[Tuple[str, str]]]:
    """(wav.scp value, samples at 16 kHz, None), or (None, 0, (reason, detail)) for bad audio."""
    value = value.strip()
    if not value:
        return None, 0, ("missing_audio", "empty audio path")
    path = Path(value).expanduser()
    path = (path if path.is_absolute() else csv_dir / path).resolve()
    if not path.is_file():
        return None, 0, ("missing_audio", f"{path}: no such file")
    try:
        info = soundfile.info(str(path))
    except RuntimeError as error:  # soundfile's errors derive from it
        return None, 0, ("unreadable_audio", f"{path}: {error}")
    if info.frames <= 0:
        return None, 0, ("unreadable_audio", f"{path}: no samples")
    if info.samplerate == SAMPLE_RATE and info.channels == 1:
        return str(path), info.frames, None
    if shutil.which("sox") is None:
        raise TableError(f"{path}: {info.samplerate} Hz, {info.channels} channel(s): converting it to "
                         f"{SAMPLE_RATE} Hz mono needs sox (apt-get install sox)")
    pipe = sox_resample_pipe(path, SAMPLE_RATE)
    return pipe, round(info.frames * SAMPLE_RATE / info.samplerate), None


def table_utterances(
    csv_path,
    audio_col: str,
    text_col: Optional[str] = None,
    lang_col: Optional[str] = None,
    language: Optional[str] = None,
    utt_prefix: Optional[str] = None,
    delimiter: str = ",",
) -> Tuple[List[TableRow], List[Utterance], List[Dropped]]:
    """Every row of the table, the usable ones as utterances, and the others with a reason.

    With ``text_col`` a row needs a non-empty transcript; with ``lang_col`` its language is that
    cell, else ``language`` (a cell left empty also falls back to ``language``).
    """
    csv_path = Path(csv_path)
    header, rows = read_table(csv_path, delimiter)
    audio_index = column_index(header, audio_col, csv_path)
    text_index = column_index(header, text_col, csv_path) if text_col else None
    lang_index = column_index(header, lang_col, csv_path) if lang_col else None
    prefix = default_utt_prefix(csv_path) if utt_prefix is None else utt_prefix
    utterances, dropped = [], []
    for row in tqdm(rows, desc=f"check {csv_path.name}", unit="row"):
        problem = row.problem
        text = code = None
        if problem is None and text_index is not None:
            text = " ".join(row.fields[text_index].split())
            if not text:
                problem = ("empty_transcript", f"column {text_col!r} is empty")
        if problem is None and (lang_index is not None or language is not None):
            code = (row.fields[lang_index].strip() if lang_index is not None else "") or language
            if not code:
                problem = ("missing_language", f"column {lang_col!r} is empty and no default language is given")
            elif len(code.split()) != 1:
                problem = ("malformed_language", f"language code {code!r} has whitespace")
        wav = None
        if problem is None:
            wav, num_samples, problem = audio_entry(row.fields[audio_index], csv_path.parent)
        if problem is not None:
            dropped.append(Dropped(csv_path, row.line, *problem))
            continue
        utterances.append(Utterance(utterance_id(prefix, row.line), row.line, wav, num_samples, text, code))
    return rows, utterances, dropped


def write_data_dir(directory, utterances: Sequence[Utterance], dropped: Sequence[Dropped]) -> None:
    """A Kaldi data dir (speaker = utterance) with ``utt2row`` and ``.dropped``, written in a
    temporary sibling and renamed into place. ``text``/``utt2lang`` only when the utterances
    have them."""
    if not utterances:
        raise TableError(f"{directory}: no usable rows to write")
    by_id = {utt.utt_id: utt for utt in utterances}
    if len(by_id) != len(utterances):
        raise TableError(f"{directory}: duplicate utterance ids")
    files: Dict[str, Dict[str, str]] = {
        "wav.scp": {key: utt.wav for key, utt in by_id.items()},
        "utt2spk": {key: key for key in by_id},
        "utt2num_samples": {key: str(utt.num_samples) for key, utt in by_id.items()},
        "utt2row": {key: str(utt.line) for key, utt in by_id.items()},
    }
    if all(utt.text is not None for utt in utterances):
        files["text"] = {key: utt.text for key, utt in by_id.items()}
    if all(utt.language is not None for utt in utterances):
        files["utt2lang"] = {key: utt.language for key, utt in by_id.items()}
    directory = Path(directory)
    partial = directory.with_name(f".{directory.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    save_data_dir(DataDir(files, name=str(directory)), str(partial))
    (partial / ".dropped").write_text("".join(f"{item}\n" for item in dropped), encoding="utf-8")
    shutil.rmtree(directory, ignore_errors=True)
    partial.rename(directory)
