"""Tests of local/prepare_fleurs.py on a fixture in the real FLEURS layout (with every
kind of bad input) and on a tiny mini corpus built by local/make_mini_fleurs.py."""

import importlib.util
import shutil
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

REPO_ROOT = Path(__file__).resolve().parents[2]
KALDI_FILES = ("wav.scp", "text", "utt2spk", "spk2utt", "utt2lang", "utt2sentence",
               "utt2num_samples")


def load_local_module(name):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "local" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    spec.loader.exec_module(module)
    return module


prep = load_local_module("prepare_fleurs")


def tone(seconds, rate=16000, channels=1):
    samples = 0.3 * np.sin(np.arange(int(seconds * rate)) * 2 * np.pi * 440 / rate)
    return np.stack([samples] * channels, axis=1) if channels > 1 else samples


def fleurs_line(sid, file_name, raw, num_samples=16000, gender="FEMALE"):
    transcription = raw.lower().rstrip(".")
    characters = " ".join(" ".join(word) + " |" for word in transcription.split())
    return "\t".join([str(sid), file_name, raw, transcription, characters,
                      str(num_samples), gender]).encode("utf-8")


def write_language(root, lang, split, lines, wavs):
    """Write <root>/<lang>/<split>.tsv from byte lines and the tar.gz from {name: (samples, rate)}."""
    lang_dir = root / lang
    (lang_dir / "audio").mkdir(parents=True, exist_ok=True)
    (lang_dir / f"{split}.tsv").write_bytes(b"\n".join(lines) + b"\n")
    staging = root / "staging" / lang / split
    staging.mkdir(parents=True)
    for name, (samples, rate) in wavs.items():
        soundfile.write(staging / name, samples, rate, subtype="PCM_16")
    with tarfile.open(lang_dir / "audio" / f"{split}.tar.gz", "w:gz") as tar:
        tar.add(staging, arcname=split)


@pytest.fixture
def fleurs_root(tmp_path):
    """en_us train holds one line of each bad kind; everything else is valid."""
    root = tmp_path / "fleurs"
    good = (tone(1.0), 16000)
    en_train_lines = [
        fleurs_line(1, "101.wav", "Hello world."),                          # 1 ok
        fleurs_line(2, "102.wav", "Good morning."),                         # 2 ok
        fleurs_line(3, "103.wav", "Not in the tar."),                       # 3 missing_audio
        fleurs_line(4, "104.wav", "  "),                                    # 4 empty_transcript
        fleurs_line(5, "105.wav", "Eight kilohertz."),                      # 5 wrong_sample_rate
        fleurs_line(6, "106.wav", "Two channels."),                         # 6 not_mono
        fleurs_line(7, "107.wav", "Far too long."),                         # 7 too_long
        b"8\t108.wav\tCaf\xe9.\tcaf\xe9\tc a f \xe9 |\t16000\tMALE",        # 8 invalid_utf8
        b"9\t109.wav\tThree columns only.",                                 # 9 wrong_column_count
        fleurs_line(1, "101.wav", "Hello world."),                          # 10 duplicate_file
    ]
    en_train_wavs = {
        "101.wav": good, "102.wav": good, "104.wav": good, "108.wav": good, "109.wav": good,
        "105.wav": (tone(1.0, rate=8000), 8000),
        "106.wav": (tone(1.0, channels=2), 16000),
        "107.wav": (tone(31.0), 16000),
    }
    write_language(root, "en_us", "train", en_train_lines, en_train_wavs)
    write_language(root, "de_de", "train", [fleurs_line(1, "201.wav", "Hallo Welt.")],
                   {"201.wav": good})
    for split, sid in (("dev", 20), ("test", 30)):
        for lang, file_id in (("en_us", 300), ("de_de", 400)):
            name = f"{file_id + sid}.wav"
            write_language(root, lang, split, [fleurs_line(sid, name, "Ein Satz.")], {name: good})
    shutil.rmtree(root / "staging")
    return root


def read_kaldi(path):
    return [line.split(" ", 1) for line in path.read_text(encoding="utf-8").splitlines()]


def check_kaldi_dir(data_dir):
    """Basic Kaldi data dir checks; return the utterance ids."""
    utt_ids = None
    for name in KALDI_FILES:
        content = (data_dir / name).read_text(encoding="utf-8")
        assert content.endswith("\n"), name
        keys = [key for key, _ in read_kaldi(data_dir / name)]
        assert keys == sorted(keys, key=lambda key: key.encode("utf-8")), f"{name} not C-sorted"
        assert utt_ids is None or keys == utt_ids, f"{name} has other utterances"
        utt_ids = keys
    utt2spk = dict(read_kaldi(data_dir / "utt2spk"))
    spk2utt = {spk: utts.split() for spk, utts in read_kaldi(data_dir / "spk2utt")}
    assert {utt for utts in spk2utt.values() for utt in utts} == set(utt2spk)
    assert all(utt2spk[utt] == spk for spk, utts in spk2utt.items() for utt in utts)
    assert all(utt.startswith(spk) for utt, spk in utt2spk.items())
    num_samples = dict(read_kaldi(data_dir / "utt2num_samples"))
    for utt, wav_path in read_kaldi(data_dir / "wav.scp"):
        info = soundfile.info(wav_path)
        assert (info.samplerate, info.channels, info.frames) == (16000, 1, int(num_samples[utt]))
    return utt_ids


def test_bad_lines_dropped_and_reported(fleurs_root, tmp_path, caplog):
    output_dir = tmp_path / "data"
    with caplog.at_level("WARNING"):
        summaries = prep.prepare_fleurs(fleurs_root, output_dir, ["en_us", "de_de"])

    train_dir = output_dir / "train_fleurs"
    assert check_kaldi_dir(train_dir) == [
        "de_de-train-1-201", "en_us-train-1-101", "en_us-train-2-102"]
    expected_drops = {3: "missing_audio", 4: "empty_transcript", 5: "wrong_sample_rate",
                      6: "not_mono", 7: "too_long", 8: "invalid_utf8",
                      9: "wrong_column_count", 10: "duplicate_file"}
    tsv = fleurs_root / "en_us" / "train.tsv"
    dropped_lines = (train_dir / ".dropped").read_text(encoding="utf-8").splitlines()
    assert [line.split("\t")[:2] for line in dropped_lines] == [
        [f"{tsv}:{line}", reason] for line, reason in expected_drops.items()]
    for line, reason in expected_drops.items():
        assert f"{tsv}:{line}: dropped ({reason})" in caplog.text
    assert summaries[train_dir]["dropped"] == {reason: 1 for reason in expected_drops.values()}
    assert summaries[train_dir]["utterances"] == {"en_us": 2, "de_de": 1}

    assert dict(read_kaldi(train_dir / "text"))["en_us-train-1-101"] == "Hello world."
    assert dict(read_kaldi(train_dir / "utt2lang"))["de_de-train-1-201"] == "de_de"
    assert dict(read_kaldi(train_dir / "utt2sentence"))["en_us-train-2-102"] == "2"
    for split in ("dev", "test"):
        assert len(check_kaldi_dir(output_dir / f"{split}_fleurs")) == 2
        assert (output_dir / f"{split}_fleurs" / ".dropped").read_text() == ""


def test_max_duration_and_options(fleurs_root, tmp_path):
    summaries = prep.prepare_fleurs(fleurs_root, tmp_path / "data", splits=("train",),
                                    audio_dir=tmp_path / "wavs", set_suffix="_x",
                                    max_duration=40)
    train_dir = tmp_path / "data" / "train_x"
    assert "en_us-train-7-107" in dict(read_kaldi(train_dir / "text"))
    assert "too_long" not in summaries[train_dir]["dropped"]
    assert (tmp_path / "wavs" / "en_us" / "train" / "107.wav").is_file()
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["train_x"]


def test_rerun_is_identical_and_skips_extraction(fleurs_root, tmp_path):
    output_dir = tmp_path / "data"
    prep.prepare_fleurs(fleurs_root, output_dir)
    first = {p: p.read_bytes() for p in output_dir.rglob("*") if p.is_file()}
    wav = output_dir / "fleurs_audio" / "en_us" / "train" / "101.wav"
    wav_time = wav.stat().st_mtime_ns
    (output_dir / ".train_fleurs.partial").mkdir()  # left over by a killed run
    prep.prepare_fleurs(fleurs_root, output_dir)
    assert {p: p.read_bytes() for p in output_dir.rglob("*") if p.is_file()} == first
    assert wav.stat().st_mtime_ns == wav_time
    assert not (output_dir / ".train_fleurs.partial").exists()


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_prepares_a_mini_corpus(tmp_path):
    mini = load_local_module("make_mini_fleurs")
    table = tmp_path / "sentences.tsv"
    table.write_text("id\ten_us\tes_419\n"
                     "1\tThe cat sleeps.\tEl gato duerme.\n"
                     "2\tThe dog eats.\tEl perro come.\n"
                     "3\tThe water is cold.\tEl agua está fría.\n"
                     "4\tThe child reads.\tEl niño lee.\n", encoding="utf-8")
    config = {
        "seed": 1, "sentence_table": str(table),
        "languages": {"en_us": "en-us", "es_419": "es-419"},
        "voices": [{"variant": "m1", "gender": "MALE"}, {"variant": "f1", "gender": "FEMALE"}],
        "speeds": [160], "pitches": [50], "amplitudes": [60],
        "recordings_per_sentence": {"train": 2, "dev": 1, "test": 1},
        "split_fractions": {"dev": 0.25, "test": 0.25},
    }
    mini.build_corpus(config, tmp_path / "mini")
    summaries = prep.prepare_fleurs(tmp_path / "mini", tmp_path / "data")
    for split in ("train", "dev", "test"):
        data_dir = tmp_path / "data" / f"{split}_fleurs"
        utt_ids = check_kaldi_dir(data_dir)
        assert not summaries[data_dir]["dropped"]
        tsv_rows = (tmp_path / "mini" / "en_us" / f"{split}.tsv").read_text().splitlines()
        assert summaries[data_dir]["utterances"] == {"en_us": len(tsv_rows), "es_419": len(tsv_rows)}
        sentences = dict(read_kaldi(data_dir / "utt2sentence"))
        languages = dict(read_kaldi(data_dir / "utt2lang"))
        by_language = {lang: {sentences[utt] for utt in utt_ids if languages[utt] == lang}
                       for lang in ("en_us", "es_419")}
        assert by_language["en_us"] == by_language["es_419"]
