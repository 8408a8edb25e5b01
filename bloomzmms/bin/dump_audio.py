"""Stage 3: write a data directory's audio into ``flac.ark`` (or ``wav.ark``) archives.

Reads every ``wav.scp`` entry (path, ``cmd |`` pipe such as speed perturbation, or ark entry),
converts it to mono at ``--fs``, and writes ``<output_dir>/data/format.<n>.ark`` with ``--nj``
processes. The output dir is a complete data dir: ``wav.scp`` pointing into the archives,
``utt2num_samples``, ``feats_type`` (raw), ``audio_format``, and every other per-utterance file of
the input. Utterances whose audio cannot be read are dropped and listed in ``.dropped``.
Written to ``<output_dir>.tmp`` and renamed: an interrupted run leaves nothing half-written.

Usage:
    python -m bloomzmms.bin.dump_audio --data_dir data/train_sp --output_dir dump/raw/train_sp \\
        [--audio_format flac.ark] [--fs 16000] [--nj 4]
"""

import argparse
import logging
import shutil
from multiprocessing import Pool
from pathlib import Path
from typing import Dict, List, Tuple

import kaldiio
import numpy as np
from scipy.signal import resample_poly
from tqdm import tqdm

from bloomzmms.audio import read_audio
from bloomzmms.datadir import load_data_dir, save_data_dir, subset

FORMATS = {"flac.ark": "flac", "wav.ark": "wav"}


def to_mono_at(samples: np.ndarray, rate: int, fs: int) -> np.ndarray:
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if rate != fs:
        divisor = np.gcd(rate, fs)
        samples = resample_poly(samples, fs // divisor, rate // divisor).astype(np.float32)
    return np.clip(samples, -1.0, 1.0)


def dump_part(job: Tuple[int, List[Tuple[str, str]], str, str, str, int]) -> Tuple[Dict[str, str], Dict[str, int], Dict[str, str]]:
    """Write one archive; returns its wav.scp entries, sample counts and read errors.

    The archive is written under ``write_dir`` but referenced under ``final_dir``, where the
    finished output directory is renamed to.
    """
    index, entries, write_dir, final_dir, audio_format, fs = job
    name = f"format.{index}.ark"
    positions, lengths, errors = {}, {}, {}
    with open(Path(write_dir) / name, "wb") as ark_file:
        for key, value in entries:
            try:
                samples, rate = read_audio(value)
            except (OSError, RuntimeError, ValueError) as error:
                errors[key] = f"unreadable audio ({value}): {error}"
                continue
            samples = to_mono_at(samples, rate, fs)
            if samples.size == 0:
                errors[key] = f"empty audio ({value})"
                continue
            # kaldiio writes "<key> " and then the audio: the entry points right after the key.
            offset = ark_file.tell() + len(f"{key} ".encode())
            kaldiio.save_ark(
                ark_file, {key: (samples, fs)}, write_function="soundfile",
                write_kwargs={"format": FORMATS[audio_format], "subtype": "PCM_16"},
            )
            positions[key] = f"{final_dir}/{name}:{offset}"
            lengths[key] = samples.size
    return positions, lengths, errors


def dump_data_dir(data_dir: str, output_dir: str, audio_format: str = "flac.ark", fs: int = 16000, nj: int = 1) -> None:
    if audio_format not in FORMATS:
        raise ValueError(f"--audio_format must be one of {sorted(FORMATS)}")
    output = Path(output_dir)
    temporary = output.with_name(output.name + ".tmp")
    shutil.rmtree(temporary, ignore_errors=True)
    (temporary / "data").mkdir(parents=True)
    data = load_data_dir(data_dir)
    wav_scp = data.files["wav.scp"]
    if data.has_segments:
        raise ValueError(f"{data_dir}: segments are not supported by the dumper yet")
    keys = sorted(wav_scp, key=lambda k: k.encode())
    chunks = [keys[i::nj] for i in range(nj)]
    jobs = [
        (index + 1, [(key, wav_scp[key]) for key in chunk], str(temporary / "data"), str(output / "data"), audio_format, fs)
        for index, chunk in enumerate(chunks) if chunk
    ]
    positions, lengths, errors = {}, {}, {}
    with Pool(max(1, min(nj, len(jobs)))) as pool:
        parts = pool.imap_unordered(dump_part, jobs)
        for part_positions, part_lengths, part_errors in tqdm(parts, total=len(jobs), desc=f"dump {Path(data_dir).name}", unit="part"):
            positions.update(part_positions)
            lengths.update(part_lengths)
            errors.update(part_errors)
    for key, reason in sorted(errors.items()):
        logging.warning(f"{data_dir}: dropping {key}: {reason}")
    kept = subset(data, [k for k in keys if k in positions])
    kept.files["wav.scp"] = positions
    kept.files["utt2num_samples"] = {k: str(v) for k, v in lengths.items()}
    kept.verbatim = {**kept.verbatim, "feats_type": b"raw\n", "audio_format": f"{audio_format}\n".encode()}
    save_data_dir(kept, str(temporary))
    (temporary / ".dropped").write_text("".join(f"{k} {errors[k]}\n" for k in sorted(errors)), encoding="utf-8")
    shutil.rmtree(output, ignore_errors=True)
    temporary.rename(output)
    logging.info(f"{output}: {len(positions)} utterances dumped as {audio_format}, {len(errors)} dropped")


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--audio_format", default="flac.ark", choices=sorted(FORMATS))
    parser.add_argument("--fs", type=int, default=16000)
    parser.add_argument("--nj", type=int, default=1)
    args = parser.parse_args(cmd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    dump_data_dir(args.data_dir, args.output_dir, args.audio_format, args.fs, args.nj)


if __name__ == "__main__":
    main()
