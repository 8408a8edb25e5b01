"""Shared pieces of the corpus preparation scripts (Common Voice, CoVoST 2, VoxPopuli, MLS).

Not a command: imported by local/prepare_*.py. It holds
    - the utterance-id scheme (see local/README.md): <source>-<split>-<speaker>-<item>,
      speaker id = <source>-<split>-<speaker>, where <source> is <corpus>_<language>;
    - list files of conf/languages/ (one code a line, `#` comments) and the language map
      (<corpus code> <label> lines) that turns corpus codes into utt2lang labels;
    - a TSV reader that finds columns by header name and reports bad lines as <file>:<line>;
    - audio checks from the file header and the wav.scp value (a path for 16 kHz mono
      WAV/FLAC, otherwise a sox or ffmpeg pipe giving 16 kHz mono 16-bit WAV);
    - atomic writing of a validated data directory with its `.dropped` report.
Drops are `Dropped` records of local/prepare_fleurs.py, so every corpus reports alike.
"""

import collections
import dataclasses
import logging
import re
import shlex
import shutil
import sys
from pathlib import Path

import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prepare_fleurs import Dropped  # noqa: E402  (one drop record for every corpus)

from bloomzmms.audio import sox_resample_pipe  # noqa: E402
from bloomzmms.datadir import DataDir, save_data_dir, validate_data_dir  # noqa: E402

SAMPLE_RATE = 16000
DIRECT_SUFFIXES = (".wav", ".flac")  # libsndfile formats wav.scp may name directly
FFMPEG_SUFFIXES = (".opus",)  # sox here cannot read Opus
_FIELD = re.compile(r"^[^\s-]+$")
_ITEM = re.compile(r"^\S+$")


@dataclasses.dataclass(frozen=True)
class AudioInfo:
    sample_rate: int
    channels: int
    frames: int

    @property
    def duration(self):
        return self.frames / self.sample_rate


def read_list_file(path):
    """Entries of a list file: one per line, `#` starts a comment, blank lines skipped."""
    entries, seen = [], {}
    for line_number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if entry in seen:
            raise ValueError(f"{path}:{line_number}: {entry!r} repeats line {seen[entry]}")
        seen[entry] = line_number
        entries.append(entry)
    return entries


def read_language_map(path):
    """{corpus language code: utt2lang label} from `<code> <label>` lines of a list file."""
    mapping = {}
    for entry in read_list_file(path):
        fields = entry.split()
        if len(fields) != 2:
            raise ValueError(f"{path}: expected '<code> <label>', got {entry!r}")
        if fields[0] in mapping:
            raise ValueError(f"{path}: code {fields[0]!r} is mapped twice")
        mapping[fields[0]] = fields[1]
    return mapping


def add_shared_options(parser, item="clips"):
    """The options every corpus script has: --language_map and --max_duration."""
    parser.add_argument("--language_map", help="`<code> <label>` file for utt2lang (default: the code itself)")
    parser.add_argument("--max_duration", type=float, default=30.0, help=f"drop longer {item} (s, default 30)")


def languages_and_map(args):
    """(--languages or the entries of --language_list, or None; the --language_map dict or None)."""
    languages = read_list_file(args.language_list) if args.language_list else args.languages
    return languages, read_language_map(args.language_map) if args.language_map else None


def id_field(text):
    """A corpus code or speaker as an id field: '-' (the field separator) becomes '_'."""
    return text.replace("-", "_")


def make_ids(source, split, speaker, item):
    """(utterance id, speaker id) of the one scheme: <source>-<split>-<speaker>-<item>.

    source, split and speaker hold no '-' or whitespace (id_field them first); item may hold
    '-' (it is the last field) but no whitespace.
    """
    for name, value in (("source", source), ("split", split), ("speaker", speaker)):
        if not _FIELD.match(value):
            raise ValueError(f"id {name} {value!r} is empty or has '-' or whitespace")
    if not _ITEM.match(item):
        raise ValueError(f"id item {item!r} is empty or has whitespace")
    speaker_id = f"{source}-{split}-{speaker}"
    return f"{speaker_id}-{item}", speaker_id


def read_header_tsv(tsv_path, required_columns):
    """Rows of a tab-separated file with a header line; return (rows, dropped).

    rows: [(line number, {column: value})]; a line that is not UTF-8 or has another number of
    fields than the header is dropped (invalid_utf8, wrong_column_count). Raises when the file
    is empty or its header lacks a required column.
    """
    lines = Path(tsv_path).read_bytes().split(b"\n")
    try:
        header = lines[0].rstrip(b"\r").decode("utf-8").split("\t")
    except UnicodeDecodeError as error:
        raise ValueError(f"{tsv_path}:1: header is not UTF-8 ({error})") from error
    missing = [column for column in required_columns if column not in header]
    if not header[0] or missing:
        raise ValueError(f"{tsv_path}:1: header {header} lacks column(s) {missing or required_columns}")
    rows, dropped = [], []
    for line_number, raw_line in enumerate(lines[1:], start=2):
        raw_line = raw_line.rstrip(b"\r")
        if not raw_line.strip():
            continue
        try:
            fields = raw_line.decode("utf-8").split("\t")
        except UnicodeDecodeError as error:
            dropped.append(Dropped(Path(tsv_path), line_number, "invalid_utf8",
                                   f"byte {error.start}: {raw_line[error.start:error.start + 4]!r}"))
            continue
        if len(fields) != len(header):
            dropped.append(Dropped(Path(tsv_path), line_number, "wrong_column_count",
                                   f"{len(fields)} columns, the header has {len(header)}"))
            continue
        rows.append((line_number, dict(zip(header, fields))))
    return rows, dropped


def probe_audio(path, max_duration):
    """(None, AudioInfo) for usable audio, else (reason, detail): missing_audio,
    unreadable_audio (no header or no samples) or too_long (over max_duration seconds)."""
    path = Path(path)
    if not path.is_file():
        return "missing_audio", f"{path} not found"
    try:
        info = soundfile.info(str(path))
    except RuntimeError as error:  # soundfile's errors derive from it
        return "unreadable_audio", f"{path}: {error}"
    if info.frames <= 0 or info.samplerate <= 0:
        return "unreadable_audio", f"{path}: no samples"
    audio = AudioInfo(info.samplerate, info.channels, info.frames)
    if audio.duration > max_duration:
        return "too_long", f"{path}: {audio.duration:.1f} s > {max_duration} s"
    return None, audio


def wav_scp_entry(path, info):
    """The wav.scp value for an audio file: its absolute path when it is 16 kHz mono WAV/FLAC
    without whitespace in the path, else a pipe writing 16 kHz mono 16-bit WAV to stdout."""
    path = Path(path).resolve()
    if (path.suffix.lower() in DIRECT_SUFFIXES and info.sample_rate == SAMPLE_RATE
            and info.channels == 1 and not any(char.isspace() for char in str(path))):
        return str(path)
    quoted = shlex.quote(str(path))
    if path.suffix.lower() in FFMPEG_SUFFIXES:
        return f"ffmpeg -nostdin -loglevel error -i {quoted} -ac 1 -ar {SAMPLE_RATE} -f wav - |"
    return sox_resample_pipe(path, SAMPLE_RATE)


def _warn_missing_tools(data_dir, wav_scp):
    for tool in ("sox", "ffmpeg"):
        users = sum(value.startswith(f"{tool} ") for value in wav_scp.values())
        if users and shutil.which(tool) is None:
            logging.warning("%s: %d wav.scp entries pipe through %s, which is not on PATH: "
                            "install it before stages 2-3 read the audio", data_dir, users, tool)


def write_data_dir(data_dir, files, utt2spk, dropped):
    """Write a validated Kaldi data dir atomically (temporary sibling, then rename).

    files: {file name: {utterance id: value}} besides utt2spk/spk2utt; dropped: Dropped
    records, written one a line to <data_dir>/.dropped.
    """
    data_dir = Path(data_dir)
    data = DataDir({**files, "utt2spk": dict(utt2spk)}, name=str(data_dir))
    partial = data_dir.with_name(f".{data_dir.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    save_data_dir(data, str(partial))
    with open(partial / ".dropped", "w", encoding="utf-8", newline="\n") as f:
        f.writelines(f"{item}\n" for item in dropped)
    problems = validate_data_dir(str(partial), no_empty_text=True)
    if problems:
        raise ValueError(f"{data_dir} would be invalid: " + "; ".join(map(str, problems[:5])))
    _warn_missing_tools(data_dir, files["wav.scp"])
    shutil.rmtree(data_dir, ignore_errors=True)
    partial.rename(data_dir)


def log_drops(dropped):
    for item in dropped:
        logging.warning("%s:%d: dropped (%s): %s", item.tsv_path, item.line_number, item.reason,
                        item.detail)


def log_summary(data_dir, utt2lang, dropped):
    """Log utterances per language and drops per reason of one written data dir."""
    per_language = collections.Counter(utt2lang.values())
    logging.info("%s: %d utterances (%s)", data_dir, len(utt2lang),
                 " ".join(f"{lang}:{n}" for lang, n in sorted(per_language.items())))
    if dropped:
        reasons = collections.Counter(item.reason for item in dropped)
        logging.warning("%s: dropped %d (%s); listed in %s", data_dir, len(dropped),
                        ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items())),
                        Path(data_dir) / ".dropped")
