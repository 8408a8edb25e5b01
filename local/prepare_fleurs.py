#!/usr/bin/env python3
"""Prepare FLEURS (the real google/fleurs download, or the bundled mini corpus that
local/make_mini_fleurs.py writes in the same layout) as Kaldi-style data directories.

Input layout, <fleurs_root>/<lang>/ for each FLEURS language code (en_us, cmn_hans_cn, ...):
    {train,dev,test}.tsv        headerless, 7 tab-separated columns: sentence id,
                                file name, raw transcription, transcription,
                                characters, num_samples, gender
    audio/{train,dev,test}.tar.gz   the wav files, as members "<split>/<file name>"
In a snapshot of the google/fleurs hub repository, fleurs_root is its `data/` folder.
Audio members are matched by base name, whatever folder they are under.

Audio is extracted to <audio_dir>/<lang>/<split>/<file name> (audio_dir defaults to
<output_dir>/fleurs_audio); a stamp records which tar.gz was extracted, so re-runs
skip extraction.

Output: one directory per split, <output_dir>/<split><set_suffix> (train_fleurs,
dev_fleurs, test_fleurs by default), holding all requested languages:
    wav.scp          <utt> <absolute wav path>
    text             <utt> <raw transcription>  (cased and punctuated, as in the paper)
    utt2spk/spk2utt  speaker = utterance: FLEURS has no speaker ids
    utt2lang         <utt> <FLEURS language code>
    utt2sentence     <utt> <FLEURS sentence id>  (same id across languages = translations)
    utt2num_samples  <utt> <samples at 16 kHz>
    .dropped         one line per dropped TSV line, tab-separated: <tsv>:<line> <reason> <detail>

Utterance id: <lang>-<split>-<sentence id>-<file stem>, e.g.
    en_us-train-1234-10004088536354799741
Files are sorted in C byte order of the utterance ids and end with a newline.

Dropped (reported as <tsv>:<line> with a reason, counted in the summary):
    invalid_utf8, wrong_column_count, malformed_field (non-integer sentence id or a
    file name with whitespace/slashes), empty_transcript, duplicate_file (a file
    name seen before in the same TSV), missing_audio (not in the tar.gz),
    unreadable_audio, wrong_sample_rate (not 16 kHz), not_mono, too_long
    (over --max_duration seconds).

Each data directory is written to a temporary directory and renamed into place, so
a killed run leaves no half-written directory; re-running rewrites identical files.

Usage:
    python local/prepare_fleurs.py --fleurs_root downloads/mini_fleurs --output_dir data
    python local/prepare_fleurs.py --fleurs_root /corpora/fleurs/data --output_dir data \\
        --languages en_us de_de --splits train dev test --audio_dir /scratch/fleurs_audio
"""

import argparse
import collections
import dataclasses
import json
import logging
import re
import shutil
import tarfile
from pathlib import Path

import soundfile
from tqdm import tqdm

SPLITS = ("train", "dev", "test")
SAMPLE_RATE = 16000
NUM_COLUMNS = 7
SENTENCE_ID = re.compile(r"^[0-9]+$")
FILE_NAME = re.compile(r"^[^\s/\\]+$")


@dataclasses.dataclass(frozen=True)
class Utterance:
    utt_id: str
    language: str
    sentence_id: str
    text: str
    wav_path: Path
    num_samples: int


@dataclasses.dataclass(frozen=True)
class Dropped:
    tsv_path: Path
    line_number: int
    reason: str
    detail: str

    def __str__(self):
        return f"{self.tsv_path}:{self.line_number}\t{self.reason}\t{self.detail}"


def parse_tsv_line(raw_line):
    """Parse one FLEURS TSV line (bytes); return ((sentence id, file name, text), None)
    or (None, (reason, detail)) for a line that must be dropped."""
    try:
        line = raw_line.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, ("invalid_utf8", f"byte {error.start}: {raw_line[error.start:error.start + 4]!r}")
    fields = line.split("\t")
    if len(fields) != NUM_COLUMNS:
        return None, ("wrong_column_count", f"{len(fields)} columns, expected {NUM_COLUMNS}")
    sentence_id, file_name, text = fields[0].strip(), fields[1].strip(), " ".join(fields[2].split())
    if not SENTENCE_ID.match(sentence_id) or not FILE_NAME.match(file_name):
        return None, ("malformed_field", f"sentence id {sentence_id!r}, file name {file_name!r}")
    if not text:
        return None, ("empty_transcript", file_name)
    return (sentence_id, file_name, text), None


def read_fleurs_tsv(tsv_path):
    """Parse a FLEURS TSV; return (rows, dropped), rows as (line number, sentence id, file, text).

    The file is read as bytes and decoded line by line, so one bad line costs one utterance.
    """
    rows, dropped, seen_files = [], [], set()
    for line_number, raw_line in enumerate(Path(tsv_path).read_bytes().split(b"\n"), start=1):
        raw_line = raw_line.rstrip(b"\r")
        if not raw_line.strip():
            continue
        row, problem = parse_tsv_line(raw_line)
        if row and row[1] in seen_files:
            row, problem = None, ("duplicate_file", row[1])
        if problem:
            dropped.append(Dropped(Path(tsv_path), line_number, *problem))
        else:
            seen_files.add(row[1])
            rows.append((line_number, *row))
    return rows, dropped


def extract_audio(tar_path, destination):
    """Extract the wav members of tar_path into destination (flat, by base name).

    Skipped when destination's stamp names the same tar.gz (path, size, mtime); otherwise
    destination is rebuilt from scratch via a temporary sibling directory.
    """
    tar_path, destination = Path(tar_path), Path(destination)
    stat = tar_path.stat()
    identity = {"tar": str(tar_path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    stamp = destination / ".extracted"
    if stamp.is_file() and json.loads(stamp.read_text()) == identity:
        return
    partial = destination.with_name(destination.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with tarfile.open(tar_path, mode="r:*") as tar:
        for member in tqdm(tar, desc=f"extract {tar_path}", unit="file", leave=False):
            name = Path(member.name).name
            # Only plain files, written under our own name: no links or path tricks.
            if member.isfile() and name.endswith(".wav") and FILE_NAME.match(name):
                with tar.extractfile(member) as source, open(partial / name, "wb") as target:
                    shutil.copyfileobj(source, target)
    (partial / ".extracted").write_text(json.dumps(identity) + "\n")
    shutil.rmtree(destination, ignore_errors=True)
    partial.rename(destination)


def check_audio(wav_path, max_duration):
    """Return (reason, detail) if the wav is unusable, else (None, num_samples)."""
    if not wav_path.is_file():
        return "missing_audio", f"{wav_path.name} not in the tar.gz"
    try:
        info = soundfile.info(str(wav_path))
    except RuntimeError as error:  # soundfile's errors derive from it
        return "unreadable_audio", f"{wav_path.name}: {error}"
    if info.samplerate != SAMPLE_RATE:
        return "wrong_sample_rate", f"{wav_path.name}: {info.samplerate} Hz, expected {SAMPLE_RATE}"
    if info.channels != 1:
        return "not_mono", f"{wav_path.name}: {info.channels} channels"
    if info.frames == 0:
        return "unreadable_audio", f"{wav_path.name}: no samples"
    if info.frames / info.samplerate > max_duration:
        return "too_long", f"{wav_path.name}: {info.frames / info.samplerate:.1f} s > {max_duration} s"
    return None, info.frames


def collect_split(fleurs_root, audio_dir, languages, split, max_duration):
    """Read one split of every language; return (utterances, dropped)."""
    utterances, dropped = [], []
    for lang in languages:
        tsv_path = Path(fleurs_root) / lang / f"{split}.tsv"
        tar_path = Path(fleurs_root) / lang / "audio" / f"{split}.tar.gz"
        for path in (tsv_path, tar_path):
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing: is {fleurs_root} a FLEURS root?")
        wav_dir = Path(audio_dir).resolve() / lang / split
        if any(char.isspace() for char in str(wav_dir)):
            raise ValueError(f"audio directory {wav_dir} has whitespace: wav.scp cannot hold it")
        extract_audio(tar_path, wav_dir)
        rows, tsv_dropped = read_fleurs_tsv(tsv_path)
        dropped += tsv_dropped
        for line_number, sentence_id, file_name, text in tqdm(rows, desc=f"{lang}/{split}", unit="utt"):
            wav_path = wav_dir / file_name
            reason, result = check_audio(wav_path, max_duration)
            if reason:
                dropped.append(Dropped(tsv_path, line_number, reason, result))
                continue
            utt_id = f"{lang}-{split}-{sentence_id}-{Path(file_name).stem}"
            utterances.append(Utterance(utt_id, lang, sentence_id, text, wav_path, result))
    dropped.sort(key=lambda item: (str(item.tsv_path), item.line_number))
    for item in dropped:
        logging.warning("%s:%d: dropped (%s): %s", item.tsv_path, item.line_number,
                        item.reason, item.detail)
    return utterances, dropped


def write_data_dir(data_dir, utterances, dropped):
    """Write a Kaldi data directory atomically (temporary sibling, then rename)."""
    utterances = sorted(utterances, key=lambda utt: utt.utt_id.encode("utf-8"))
    columns = {
        "wav.scp": [str(utt.wav_path) for utt in utterances],
        "text": [utt.text for utt in utterances],
        "utt2spk": [utt.utt_id for utt in utterances],  # speaker = utterance
        "spk2utt": [utt.utt_id for utt in utterances],
        "utt2lang": [utt.language for utt in utterances],
        "utt2sentence": [utt.sentence_id for utt in utterances],
        "utt2num_samples": [str(utt.num_samples) for utt in utterances],
    }
    data_dir = Path(data_dir)
    partial = data_dir.with_name(f".{data_dir.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for file_name, values in columns.items():
        with open(partial / file_name, "w", encoding="utf-8", newline="\n") as f:
            f.writelines(f"{utt.utt_id} {value}\n" for utt, value in zip(utterances, values))
    with open(partial / ".dropped", "w", encoding="utf-8", newline="\n") as f:
        f.writelines(f"{item}\n" for item in dropped)
    shutil.rmtree(data_dir, ignore_errors=True)
    partial.rename(data_dir)


def discover_languages(fleurs_root, splits):
    """Language folders of fleurs_root that hold a TSV of one of the splits."""
    return sorted(
        path.name for path in Path(fleurs_root).iterdir()
        if path.is_dir() and any((path / f"{split}.tsv").is_file() for split in splits)
    )


def prepare_fleurs(fleurs_root, output_dir, languages=None, splits=SPLITS, audio_dir=None,
                   set_suffix="_fleurs", max_duration=30.0):
    """Prepare FLEURS splits as Kaldi data dirs; return {data dir: summary}.

    languages: FLEURS codes (None: every language folder in fleurs_root).
    A summary holds "utterances" (per language) and "dropped" (per reason) counters.
    """
    output_dir = Path(output_dir)
    audio_dir = Path(audio_dir) if audio_dir else output_dir / "fleurs_audio"
    languages = list(languages or discover_languages(fleurs_root, splits))
    if not languages:
        raise ValueError(f"no FLEURS language folders in {fleurs_root}")
    summaries = {}
    for split in splits:
        utterances, dropped = collect_split(fleurs_root, audio_dir, languages, split, max_duration)
        if not utterances:
            raise RuntimeError(f"no valid {split} utterances in {fleurs_root} for {languages}")
        data_dir = output_dir / f"{split}{set_suffix}"
        write_data_dir(data_dir, utterances, dropped)
        summaries[data_dir] = {
            "utterances": collections.Counter(utt.language for utt in utterances),
            "dropped": collections.Counter(item.reason for item in dropped),
        }
    log_summary(summaries, audio_dir)
    return summaries


def log_summary(summaries, audio_dir):
    for data_dir, summary in summaries.items():
        per_language = " ".join(f"{lang}:{n}" for lang, n in sorted(summary["utterances"].items()))
        logging.info("%s: %d utterances (%s)", data_dir, sum(summary["utterances"].values()),
                     per_language)
        if summary["dropped"]:
            reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(summary["dropped"].items()))
            logging.warning("%s: dropped %d (%s); listed in %s",
                            data_dir, sum(summary["dropped"].values()), reasons,
                            data_dir / ".dropped")
    logging.info("audio extracted under %s", audio_dir)


def get_parser():
    parser = argparse.ArgumentParser(
        description="Prepare FLEURS (real or mini) as Kaldi data directories."
    )
    parser.add_argument("--fleurs_root", required=True,
                        help="folder holding the <lang>/ folders (google/fleurs: its data/)")
    parser.add_argument("--output_dir", required=True, help="where <split><set_suffix>/ go")
    parser.add_argument("--languages", nargs="+", default=None,
                        help="FLEURS language codes (default: all in fleurs_root)")
    parser.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS,
                        help="FLEURS splits to prepare (default: all three)")
    parser.add_argument("--audio_dir", default=None,
                        help="where wavs are extracted (default: <output_dir>/fleurs_audio)")
    parser.add_argument("--set_suffix", default="_fleurs", help="data dir = <split><set_suffix> (default: _fleurs)")
    parser.add_argument("--max_duration", type=float, default=30.0,
                        help="drop utterances longer than this, in seconds (default: 30)")
    return parser


def main(argv=None):
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    prepare_fleurs(args.fleurs_root, args.output_dir, languages=args.languages,
                   splits=args.splits, audio_dir=args.audio_dir, set_suffix=args.set_suffix,
                   max_duration=args.max_duration)


if __name__ == "__main__":
    main()
