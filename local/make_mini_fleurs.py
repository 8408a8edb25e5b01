#!/usr/bin/env python3
"""Build the bundled mini corpus: parallel multilingual sentences spoken by espeak-ng,
written in exactly the on-disk layout of FLEURS (google/fleurs on the Hugging Face hub).

Layout written under --output_dir (the same as a downloaded FLEURS):

    <lang>/{train,dev,test}.tsv          headerless, 7 tab-separated columns:
        sentence id | file name | raw transcription | transcription | characters |
        num_samples | gender
    <lang>/audio/{train,dev,test}.tar.gz members "<split>/<file name>", 16 kHz mono 16-bit wav
    .done                                fingerprint of the config and sentence table

Conventions (FLEURS-like, chosen here where the real corpus leaves room):
  * sentence ids are the ids of local/mini_sentences.tsv; the same id in two languages
    is a pair of translations. The split is by sentence id (see split_sentence_ids).
  * file names are 64-bit unsigned integers derived from a seeded hash, like FLEURS's.
  * the transcription column is the raw transcription lower-cased with punctuation
    removed except apostrophes ("l'eau", "'s avonds" stay one word).
  * the characters column spells the transcription out, "|" marking word ends:
    "the cat" -> "t h e | c a t |".
  * gender is the gender of the espeak-ng voice variant (MALE/FEMALE).
  * rows are sorted by sentence id, then file name; tar members by name.

Deterministic: the same config and sentence table give byte-identical TSVs and
tar.gz files (fixed tar metadata, gzip mtime 0). Idempotent: a complete output
whose .done matches is left alone; anything else is rebuilt in <output_dir>.partial
and renamed into place at the end, so an interrupted build never looks complete.

Usage:
    python local/make_mini_fleurs.py --config conf/mini/corpus.yaml --output_dir downloads/mini_fleurs
    python local/make_mini_fleurs.py --config conf/mini/corpus.yaml --output_dir downloads/mini_fleurs --smoke
"""

import argparse
import collections
import concurrent.futures
import contextlib
import dataclasses
import gzip
import hashlib
import io
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import tarfile
import time
import unicodedata
from pathlib import Path

import numpy as np
import soundfile
import yaml
from scipy.signal import resample_poly
from tqdm import tqdm

SPLITS = ("train", "dev", "test")
SAMPLE_RATE = 16000
ESPEAK_SAMPLE_RATE = 22050
RECIPE_ROOT = Path(__file__).resolve().parent.parent
# Bump when the output format changes, so old outputs are rebuilt.
FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Recording:
    """One utterance to synthesize: a sentence in one language spoken by one voice."""

    language: str
    split: str
    sentence_id: int
    text: str
    espeak_voice: str
    variant: str
    gender: str
    speed: int
    pitch: int
    amplitude: int
    file_name: str


def load_config(config_path, smoke=False):
    """Read the corpus config; with smoke, its `smoke` section overrides the top-level keys."""
    with open(config_path, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    smoke_overrides = config.pop("smoke", None) or {}
    if smoke:
        config.update(smoke_overrides)
    table_path = Path(config["sentence_table"])
    if not table_path.is_absolute():
        table_path = RECIPE_ROOT / table_path
    config["sentence_table"] = str(table_path)

    if max(config["recordings_per_sentence"].values()) > len(config["voices"]):
        raise ValueError("recordings_per_sentence exceeds the number of voices")
    if sum(config["split_fractions"].values()) >= 1:
        raise ValueError("split_fractions must leave sentences for train")
    return config


def read_sentence_table(table_path, languages):
    """Return {sentence id: {language: raw sentence}} from the hand-written TSV table."""
    with open(table_path, encoding="utf-8") as f:
        header, *rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    missing = [lang for lang in languages if lang not in header]
    if header[0] != "id" or missing:
        raise ValueError(f"{table_path}: header must be 'id' and the languages; missing {missing}")
    table = {}
    for line_number, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise ValueError(f"{table_path}:{line_number}: {len(row)} columns, expected {len(header)}")
        cells = dict(zip(header, row))
        sentence_id = int(cells["id"])
        if sentence_id in table:
            raise ValueError(f"{table_path}:{line_number}: duplicate sentence id {sentence_id}")
        for lang in languages:
            if not cells[lang].strip():
                raise ValueError(f"{table_path}:{line_number}: empty {lang} sentence")
        table[sentence_id] = {lang: cells[lang].strip() for lang in languages}
    return table


def normalize_transcription(raw_text):
    """FLEURS-style normalized transcription: lower case, punctuation removed except apostrophes."""
    kept = "".join(
        char
        for char in raw_text.lower()
        if char in "'’" or not unicodedata.category(char).startswith("P")
    )
    return " ".join(kept.split())


def character_column(transcription):
    """The FLEURS characters column: characters separated by spaces, "|" after each word."""
    return " ".join(" ".join(word) + " |" for word in transcription.split())


def split_sentence_ids(table, languages, split_fractions, seed):
    """Split sentence ids into train/dev/test, disjoint, by a seeded shuffle.

    Held-out (dev/test) sentences are taken greedily from the shuffled ids among those
    whose every word, in every language, still occurs in a sentence left for training;
    so held-out sentences are new combinations of seen words. If too few qualify (tiny
    tables), the rest is filled with other ids, with a warning.
    """
    ids = sorted(table)
    num_held_out = {
        split: max(1, round(len(ids) * split_fractions[split])) for split in ("dev", "test")
    }
    if sum(num_held_out.values()) >= len(ids):
        raise ValueError(f"{len(ids)} sentences are too few for a train/dev/test split")
    words = {
        sid: collections.Counter(
            (lang, word)
            for lang in languages
            for word in normalize_transcription(table[sid][lang]).split()
        )
        for sid in ids
    }
    remaining_counts = collections.Counter()
    for counts in words.values():
        remaining_counts.update(counts)

    shuffled = list(ids)
    random.Random(seed).shuffle(shuffled)
    held_out = []
    for sid in shuffled:
        if len(held_out) == sum(num_held_out.values()):
            break
        if all(remaining_counts[key] > count for key, count in words[sid].items()):
            held_out.append(sid)
            remaining_counts.subtract(words[sid])
    shortfall = sum(num_held_out.values()) - len(held_out)
    if shortfall:
        logging.warning("only %d sentences can be held out with a closed vocabulary; "
                        "filling %d more with sentences that have unseen words",
                        len(held_out), shortfall)
        held_out += [sid for sid in shuffled if sid not in held_out][:shortfall]

    held_out_ids = set(held_out)
    return {
        "train": [sid for sid in ids if sid not in held_out_ids],
        "dev": sorted(held_out[num_held_out["test"]:]),
        "test": sorted(held_out[: num_held_out["test"]]),
    }


def _seeded_rng(*parts):
    """A random.Random seeded by a stable hash of parts (Python's hash() is salted)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _file_name(*parts):
    """A FLEURS-like file name: a 64-bit unsigned integer from a stable hash of parts."""
    digest = hashlib.sha256(":".join(map(str, ("file",) + parts)).encode()).digest()
    return f"{int.from_bytes(digest[:8], 'big')}.wav"


def plan_recordings(config, table, split_ids):
    """Every recording of the corpus, with seeded voice, speed, pitch and amplitude choices."""
    recordings = []
    for lang, espeak_voice in config["languages"].items():
        for split in SPLITS:
            num_recordings = config["recordings_per_sentence"][split]
            for sid in split_ids[split]:
                rng = _seeded_rng(config["seed"], lang, sid)
                voices = rng.sample(config["voices"], num_recordings)
                for index, voice in enumerate(voices):
                    recordings.append(Recording(
                        language=lang,
                        split=split,
                        sentence_id=sid,
                        text=table[sid][lang],
                        espeak_voice=espeak_voice,
                        variant=voice["variant"],
                        gender=voice["gender"],
                        speed=rng.choice(config["speeds"]),
                        pitch=rng.choice(config["pitches"]),
                        amplitude=rng.choice(config["amplitudes"]),
                        file_name=_file_name(config["seed"], lang, sid, index),
                    ))
    file_names = [(rec.language, rec.file_name) for rec in recordings]
    if len(set(file_names)) != len(file_names):
        raise RuntimeError("file name collision; change the seed")
    return recordings


def synthesize(recording, wav_path):
    """Speak the recording with espeak-ng, resample to 16 kHz, write it; return num_samples."""
    command = [
        "espeak-ng", "-b", "1",  # UTF-8 input
        "-v", f"{recording.espeak_voice}+{recording.variant}",
        "-s", str(recording.speed), "-p", str(recording.pitch), "-a", str(recording.amplitude),
        "--stdout", recording.text,
    ]
    result = subprocess.run(command, capture_output=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.decode(errors='replace')}")
    samples, rate = soundfile.read(io.BytesIO(result.stdout), dtype="float64")
    if rate != ESPEAK_SAMPLE_RATE:
        raise RuntimeError(f"espeak-ng wrote {rate} Hz, expected {ESPEAK_SAMPLE_RATE}")
    # 22050 -> 16000 Hz is the exact ratio 320/441.
    resampled = resample_poly(samples, 320, 441)
    pcm = np.clip(np.round(resampled * 32768), -32768, 32767).astype(np.int16)
    soundfile.write(wav_path, pcm, SAMPLE_RATE, subtype="PCM_16")
    return len(pcm)


def _synthesize_job(job):
    return synthesize(*job)


def write_tar_gz(tar_path, member_files):
    """Write {archive name: file path} as a tar.gz whose bytes depend only on the contents."""
    with open(tar_path, "wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as compressed, \
            tarfile.open(fileobj=compressed, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for arcname in sorted(member_files):
            info = tarfile.TarInfo(arcname)
            info.size = os.path.getsize(member_files[arcname])
            info.mtime, info.mode, info.uid, info.gid = 0, 0o644, 0, 0
            with open(member_files[arcname], "rb") as member:
                tar.addfile(info, member)


def write_fleurs_tsv(tsv_path, rows):
    """Write (recording, num_samples) rows as a headerless 7-column FLEURS TSV."""
    with open(tsv_path, "w", encoding="utf-8", newline="\n") as f:
        for rec, num_samples in sorted(rows, key=lambda r: (r[0].sentence_id, r[0].file_name)):
            transcription = normalize_transcription(rec.text)
            fields = [rec.sentence_id, rec.file_name, rec.text, transcription,
                      character_column(transcription), num_samples, rec.gender]
            f.write("\t".join(map(str, fields)) + "\n")


def config_fingerprint(config):
    table_bytes = Path(config["sentence_table"]).read_bytes()
    fingerprinted = {key: value for key, value in config.items() if key != "sentence_table"}
    payload = json.dumps(
        {"config": fingerprinted, "table_sha256": hashlib.sha256(table_bytes).hexdigest(),
         "format": FORMAT_VERSION},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def build_corpus(config, output_dir, num_jobs=1):
    """Build the corpus into output_dir unless it is already complete for this config."""
    output_dir = Path(output_dir)
    fingerprint = config_fingerprint(config)
    done_stamp = output_dir / ".done"
    if done_stamp.is_file() and done_stamp.read_text().strip() == fingerprint:
        logging.info("%s is complete and matches the config: nothing to do", output_dir)
        return
    start_time = time.time()
    languages = list(config["languages"])
    table = read_sentence_table(config["sentence_table"], languages)
    if config.get("num_sentences"):
        table = {sid: table[sid] for sid in sorted(table)[: config["num_sentences"]]}
    split_ids = split_sentence_ids(table, languages, config["split_fractions"], config["seed"])
    recordings = plan_recordings(config, table, split_ids)

    partial_dir = output_dir.with_name(output_dir.name + ".partial")
    shutil.rmtree(partial_dir, ignore_errors=True)
    wav_paths = [partial_dir / rec.language / "audio" / rec.split / rec.file_name
                 for rec in recordings]
    for wav_dir in {path.parent for path in wav_paths}:
        wav_dir.mkdir(parents=True, exist_ok=True)

    jobs = list(zip(recordings, wav_paths))
    pool = concurrent.futures.ProcessPoolExecutor(num_jobs) if num_jobs > 1 else None
    with pool or contextlib.nullcontext():
        results = pool.map(_synthesize_job, jobs, chunksize=16) if pool else map(_synthesize_job, jobs)
        num_samples = list(tqdm(results, total=len(jobs), desc="espeak-ng", unit="utt"))

    groups = collections.defaultdict(list)
    for rec, wav_path, count in zip(recordings, wav_paths, num_samples):
        groups[rec.language, rec.split].append((rec, wav_path, count))
    for (lang, split), members in sorted(groups.items()):
        audio_dir = partial_dir / lang / "audio"
        write_fleurs_tsv(partial_dir / lang / f"{split}.tsv",
                         [(rec, count) for rec, _, count in members])
        write_tar_gz(audio_dir / f"{split}.tar.gz",
                     {f"{split}/{rec.file_name}": path for rec, path, _ in members})
        shutil.rmtree(audio_dir / split)
    (partial_dir / ".done").write_text(fingerprint + "\n")

    shutil.rmtree(output_dir, ignore_errors=True)
    partial_dir.rename(output_dir)
    log_statistics(output_dir, languages, split_ids, recordings, num_samples,
                   time.time() - start_time)


def log_statistics(output_dir, languages, split_ids, recordings, num_samples, seconds):
    samples_per_split = collections.Counter()
    utterances_per_split = collections.Counter()
    for rec, count in zip(recordings, num_samples):
        samples_per_split[rec.split] += count
        utterances_per_split[rec.split] += 1
    logging.info("wrote %s in %.0f s: %d languages (%s)", output_dir, seconds,
                 len(languages), " ".join(languages))
    for split in SPLITS:
        logging.info("  %-5s %4d sentences, %5d utterances, %.2f h", split,
                     len(split_ids[split]), utterances_per_split[split],
                     samples_per_split[split] / SAMPLE_RATE / 3600)
    logging.info("  total %d utterances, %.2f h", len(recordings),
                 sum(num_samples) / SAMPLE_RATE / 3600)


def get_parser():
    parser = argparse.ArgumentParser(
        description="Build the mini corpus (espeak-ng speech) in the FLEURS on-disk layout."
    )
    parser.add_argument("--config", required=True, help="corpus config (conf/mini/corpus.yaml)")
    parser.add_argument("--output_dir", required=True, help="corpus root to write")
    parser.add_argument("--smoke", action="store_true",
                        help="apply the config's smoke section: a tiny corpus in seconds")
    parser.add_argument("--nj", type=int, default=min(4, os.cpu_count() or 1),
                        help="parallel espeak-ng processes (default: min(4, CPUs))")
    return parser


def main(argv=None):
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    if shutil.which("espeak-ng") is None:
        sys.exit("make_mini_fleurs.py: espeak-ng is not installed (see setup.sh)")
    config = load_config(args.config, smoke=args.smoke)
    build_corpus(config, args.output_dir, num_jobs=args.nj)


if __name__ == "__main__":
    main()
