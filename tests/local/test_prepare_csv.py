"""Tests of local/prepare_csv.py on a table of espeak-ng speech with every kind of bad row."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from scipy.signal import resample_poly

from bloomzmms.audio import read_audio
from bloomzmms.datadir import read_kv, validate_data_dir

from tests.local.corpus_helpers import REPO_ROOT

import prepare_csv as prep  # noqa: E402  (local/, put on sys.path by corpus_helpers)


def speak(path: Path, text: str, voice: str = "en", rate: int = None, channels: int = 1) -> Path:
    """espeak-ng speech (22,050 Hz), resampled to ``rate`` and copied to ``channels``."""
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True)
    samples, native = soundfile.read(path)
    if rate and rate != native:
        samples = resample_poly(samples, rate, native)
    if channels > 1:
        samples = np.stack([samples] * channels, axis=1)
    soundfile.write(path, samples, rate or native)
    return path


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A CSV (line numbers in comments) whose rows are good, bad, or good in unusual forms."""
    root = tmp_path_factory.mktemp("table")
    (root / "clips").mkdir()
    speak(root / "clips" / "a.wav", "the red cat", rate=16000)
    speak(root / "clips" / "b.wav", "the small dog")                     # 22,050 Hz: a sox pipe
    speak(root / "clips" / "c.wav", "le chat", voice="fr", rate=16000, channels=2)  # stereo: a sox pipe
    (root / "clips" / "broken.wav").write_text("not audio")
    lines = [
        b"id,audio_path,text,lang",                     # 1 header
        b"1,clips/a.wav,The red cat.,en_us",            # 2
        b'2,clips/b.wav,"The small\ndog.",',            # 3-4 quoted newline; empty lang: default
        b"3,clips/c.wav,le chat,fr_fr",                 # 5
        b"4,clips/missing.wav,gone,en_us",              # 6 missing_audio
        b"5,clips/a.wav,   ,en_us",                     # 7 empty_transcript
        b"6,clips/a.wav,caf\xe9,en_us",                 # 8 not_utf8 (latin-1)
        b"7,clips/a.wav",                               # 9 missing_column
        b"",                                            # 10 blank: not a row
        b"8,clips/broken.wav,broken,en_us",             # 11 unreadable_audio
        b"9,clips/a.wav,one,two,en_us",                 # 12 extra_fields
        b"10,,no audio,en_us",                          # 13 missing_audio (empty path)
        b"11," + str(root / "clips" / "a.wav").encode() + b",absolute path,en_us",  # 14
    ]
    (root / "table.csv").write_bytes(b"\n".join(lines) + b"\n")
    return root


def test_usable_rows_become_a_valid_data_dir_in_table_order(table, tmp_path):
    counts, dropped = prep.prepare_csv(table / "table.csv", tmp_path / "train", "audio_path", "text",
                                       lang_col="lang", language="en_us")
    data = tmp_path / "train"
    assert validate_data_dir(str(data)) == []
    utt2row = read_kv(str(data / "utt2row"))
    assert list(utt2row.items()) == [("table-00000002", "2"), ("table-00000003", "3"),
                                     ("table-00000005", "5"), ("table-00000014", "14")]
    assert read_kv(str(data / "text")) == {"table-00000002": "The red cat.", "table-00000003": "The small dog.",
                                           "table-00000005": "le chat", "table-00000014": "absolute path"}
    assert read_kv(str(data / "utt2lang")) == {"table-00000002": "en_us", "table-00000003": "en_us",
                                               "table-00000005": "fr_fr", "table-00000014": "en_us"}
    assert counts == {data: 4}


def test_every_bad_row_is_reported_by_line_with_its_reason(table, tmp_path):
    _, dropped = prep.prepare_csv(table / "table.csv", tmp_path / "train", "audio_path", "text",
                                  lang_col="lang", language="en_us")
    expected = {6: "missing_audio", 7: "empty_transcript", 8: "not_utf8", 9: "missing_column",
                11: "unreadable_audio", 12: "extra_fields", 13: "missing_audio"}
    assert {item.line: item.reason for item in dropped} == expected
    listed = (tmp_path / "train" / ".dropped").read_text().splitlines()
    assert [line.split("\t")[:2] for line in listed] == [[f"{table / 'table.csv'}:{line}", reason]
                                                         for line, reason in expected.items()]


def test_any_rate_or_channel_count_reads_as_16khz_mono(table, tmp_path):
    prep.prepare_csv(table / "table.csv", tmp_path / "train", "audio_path", "text", lang_col="lang", language="en_us")
    wav_scp = read_kv(str(tmp_path / "train" / "wav.scp"))
    num_samples = read_kv(str(tmp_path / "train" / "utt2num_samples"))
    assert wav_scp["table-00000002"] == str(table / "clips" / "a.wav")  # already 16 kHz mono: as is
    for utt in ("table-00000003", "table-00000005"):
        assert wav_scp[utt].startswith("sox ") and wav_scp[utt].endswith("|")
        samples, rate = read_audio(wav_scp[utt])
        assert rate == 16000 and samples.ndim == 1
        assert abs(len(samples) - int(num_samples[utt])) <= 2


def test_held_out_set_is_seeded_disjoint_and_complete(table, tmp_path):
    def split(name, seed):
        prep.prepare_csv(table / "table.csv", tmp_path / name / "train", "audio_path", "text", language="en_us",
                         held_out_fraction=0.25, held_out_dir=tmp_path / name / "valid", seed=seed)
        return [set(read_kv(str(tmp_path / name / part / "utt2spk"))) for part in ("train", "valid")]

    train, valid = split("a", 0)
    assert len(valid) == 1 and len(train) == 3 and not train & valid
    assert [train, valid] == split("b", 0)
    assert read_kv(str(tmp_path / "a" / "valid" / "utt2lang")) == {utt: "en_us" for utt in valid}
    assert (tmp_path / "a" / "valid" / ".dropped").read_text() == ""


def test_a_missing_column_or_language_is_an_error_naming_what_exists(table, tmp_path):
    with pytest.raises(prep.TableError, match=r"no column 'transcript'.*'audio_path', 'text'"):
        prep.prepare_csv(table / "table.csv", tmp_path / "x", "audio_path", "transcript", language="en_us")
    with pytest.raises(ValueError, match="--lang_col or --language"):
        prep.prepare_csv(table / "table.csv", tmp_path / "x", "audio_path", "text")
    result = subprocess.run([sys.executable, str(REPO_ROOT / "local" / "prepare_csv.py"), "--csv", str(table / "table.csv"),
                             "--audio_col", "path", "--text_col", "text", "--language", "en", "--output_dir", str(tmp_path / "x")],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "no column 'path'" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x").exists()


def test_rows_without_language_cell_or_default_are_dropped(table, tmp_path):
    _, dropped = prep.prepare_csv(table / "table.csv", tmp_path / "train", "audio_path", "text", lang_col="lang")
    assert [(item.line, item.reason) for item in dropped if item.reason == "missing_language"] == [(3, "missing_language")]
