"""bloomzmms.datadir and the utils/*_data_dir*.py tools on small data dirs built in tmp_path."""
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from bloomzmms.datadir import (
    DataDirError,
    add_affixes,
    choose_utterances,
    combine,
    fix_data_dir,
    load_data_dir,
    per_utterance_files,
    read_kv,
    rename,
    speed_command,
    speed_perturb,
    split_data_dir,
    subset,
    validate_data_dir,
    write_kv,
)

REPO = Path(__file__).resolve().parents[2]
UTTS = {"spkA-u1": "spkA", "spkA-u2": "spkA", "spkB-u1": "spkB", "spkB-u2": "spkB", "spkB-u3": "spkB"}


def write_lines(path, lines):
    Path(path).write_bytes("".join(line + "\n" for line in lines).encode())


def make_data_dir(path, utts=UTTS, wav=lambda utt: f"/audio/{utt}.wav"):
    """A valid dir with the extra files this project uses; decoder_prefix has empty values in both forms."""
    path.mkdir(parents=True, exist_ok=True)
    write_lines(path / "utt2spk", [f"{u} {s}" for u, s in utts.items()])
    speakers = {}
    for u, s in utts.items():
        speakers.setdefault(s, []).append(u)
    write_lines(path / "spk2utt", [f"{s} {' '.join(us)}" for s, us in speakers.items()])
    write_lines(path / "wav.scp", [f"{u} {wav(u)}" for u in utts])
    write_lines(path / "text", [f"{u} words of {u}" for u in utts])
    write_lines(path / "utt2lang", [f"{u} {'eng' if s == 'spkA' else 'deu'}" for u, s in utts.items()])
    write_lines(path / "decoder_prefix", [(f"{u} Repeat:  x", f"{u} ", u)[i % 3] for i, u in enumerate(utts)])
    write_lines(path / "decoder_postfix", [f"{u} \tpost" for u in utts])
    return path


def run_tool(name, *args, check=True):
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    result = subprocess.run([sys.executable, str(REPO / "utils" / name), *map(str, args)],
                            capture_output=True, text=True, env=env)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def assert_valid(path):
    assert [str(p) for p in validate_data_dir(str(path))] == []


# -- reading and writing ---------------------------------------------------------------------------


def test_read_kv_keeps_raw_values_including_empty(tmp_path):
    (tmp_path / "f").write_bytes(b"a 1 2  3\nb \nc\nd\tx y\ne  lead\n")
    assert read_kv(str(tmp_path / "f")) == {"a": "1 2  3", "b": "", "c": "", "d": "x y", "e": " lead"}


def test_write_kv_sorts_in_c_byte_order_with_final_newline(tmp_path):
    write_kv(str(tmp_path / "f"), {"é": "3", "b": "", "B": "1", "a-b": "2", "a": "x"})
    assert (tmp_path / "f").read_bytes() == "B 1\na x\na-b 2\nb \né 3\n".encode()
    assert not [n for n in os.listdir(tmp_path) if n != "f"]  # no temp file left


@pytest.mark.parametrize("content, line, message", [
    (b"a 1\n\nb 2\n", 2, "no key"),
    (b"a 1\n b 2\n", 2, "no key"),
    (b"a 1\nb \xff\n", 2, "invalid UTF-8"),
    (b"a 1\nb 2\na 3\n", 3, "duplicate key 'a'"),
])
def test_read_kv_errors_name_file_and_line(tmp_path, content, line, message):
    (tmp_path / "text").write_bytes(content)
    with pytest.raises(DataDirError, match=rf"text:{line}: .*{message}"):
        read_kv(str(tmp_path / "text"))


def test_read_kv_accepts_a_missing_final_newline(tmp_path):
    (tmp_path / "f").write_bytes(b"a 1\nb 2")
    assert read_kv(str(tmp_path / "f")) == {"a": "1", "b": "2"}


def test_tools_refuse_to_overwrite_a_directory_that_is_not_a_data_dir(tmp_path):
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "train.log").write_text("precious")
    result = run_tool("copy_data_dir.py", make_data_dir(tmp_path / "d"), tmp_path / "exp", check=False)
    assert result.returncode != 0 and "not overwriting" in result.stderr
    assert (tmp_path / "exp" / "train.log").read_text() == "precious"


def test_per_utterance_files_rule(tmp_path):
    data = make_data_dir(tmp_path / "d")
    for name in ("spk2gender", "feats_type", "reco2file_and_channel", ".hidden", "utt2num_samples"):
        write_lines(data / name, ["x y"])
    (data / "split2").mkdir()
    assert per_utterance_files(str(data)) == [
        "decoder_postfix", "decoder_prefix", "text", "utt2lang", "utt2num_samples", "utt2spk", "wav.scp"]
    write_lines(data / "segments", [f"{u} rec1 0 1" for u in UTTS])
    assert "wav.scp" not in per_utterance_files(str(data))


# -- validate --------------------------------------------------------------------------------------


def test_validate_accepts_a_valid_dir_and_the_cli_exits_zero(tmp_path):
    data = make_data_dir(tmp_path / "d")
    assert_valid(data)
    assert "is valid" in run_tool("validate_data_dir.py", data).stdout


def problems_after(tmp_path, name, lines=None, raw=None, **options):
    data = make_data_dir(tmp_path / "d")
    if raw is not None:
        (data / name).write_bytes(raw)
    else:
        write_lines(data / name, lines)
    return [str(p) for p in validate_data_dir(str(data), **options)]


def test_validate_reports_unsorted_keys_with_line(tmp_path):
    problems = problems_after(tmp_path, "text", ["spkA-u1 a", "spkB-u1 b", "spkA-u2 c", "spkB-u2 d", "spkB-u3 e"])
    assert len(problems) == 1 and "/text:3: keys not sorted" in problems[0]


def test_validate_reports_duplicate_keys_with_line(tmp_path):
    problems = problems_after(tmp_path, "utt2lang", [f"{u} eng" for u in UTTS] + ["spkB-u3 deu"])
    assert any("/utt2lang:6: duplicate key 'spkB-u3' (first on line 5)" in p for p in problems)


def test_validate_reports_missing_final_newline(tmp_path):
    raw = "".join(f"{u} t\n" for u in UTTS).rstrip("\n").encode()
    assert any(p.endswith("/text:5: missing final newline") for p in problems_after(tmp_path, "text", raw=raw))


def test_validate_reports_invalid_utf8_with_line(tmp_path):
    raw = b"spkA-u1 a\nspkA-u2 b\nspkB-u1 \xc3\x28\nspkB-u2 d\nspkB-u3 e\n"
    problems = problems_after(tmp_path, "text", raw=raw)
    assert any("/text:3: invalid UTF-8" in p for p in problems)


def test_validate_reports_utterance_not_prefixed_by_speaker(tmp_path):
    problems = problems_after(tmp_path, "utt2spk", [f"{u} {s}" for u, s in UTTS.items()][:4] + ["spkB-u3 spkA"])
    assert any("/utt2spk:5: utterance 'spkB-u3' does not start with its speaker id 'spkA'" in p for p in problems)
    assert any("/spk2utt:" in p for p in problems)  # spk2utt no longer matches either


def test_validate_reports_per_utterance_file_with_other_utterances(tmp_path):
    problems = problems_after(tmp_path, "utt2lang", ["spkA-u1 eng", "spkA-u2 eng", "spkB-u1 deu", "spkC-u9 fra"])
    assert any("/utt2lang:4: 1 utterances not in utt2spk, e.g. 'spkC-u9' (line 4)" in p for p in problems)
    assert any("/utt2lang: 2 utterances of utt2spk missing, e.g. 'spkB-u2', 'spkB-u3'" in p for p in problems)


def test_validate_reports_spk2utt_inconsistent_with_utt2spk(tmp_path):
    problems = problems_after(tmp_path, "spk2utt", ["spkA spkA-u1", "spkB spkB-u1 spkB-u2 spkB-u3"])
    assert problems == [f"{tmp_path}/d/spk2utt:1: utterances of speaker 'spkA' differ from utt2spk"]


def test_validate_reports_empty_text_only_when_asked(tmp_path):
    lines = [f"{u} words" for u in UTTS]
    lines[1] = "spkA-u2 "
    assert problems_after(tmp_path, "text", lines) == []
    problems = problems_after(tmp_path, "text", lines, no_empty_text=True)
    assert problems == [f"{tmp_path}/d/text:2: 'spkA-u2' has an empty transcription"]


def test_validate_cli_prints_problems_and_exits_nonzero(tmp_path):
    data = make_data_dir(tmp_path / "d")
    write_lines(data / "utt2lang", ["spkA-u1 eng"])
    result = run_tool("validate_data_dir.py", data, check=False)
    assert result.returncode == 1
    assert "utt2lang: 4 utterances of utt2spk missing" in result.stderr


# -- fix -------------------------------------------------------------------------------------------


def test_fix_keeps_utterances_in_all_files_and_reports_drops(tmp_path):
    data = make_data_dir(tmp_path / "d")
    write_lines(data / "utt2lang", ["spkA-u1 eng", "spkB-u3 deu", "spkA-u2 eng", "spkB-u2 deu"])  # unsorted
    write_lines(data / "text", [f"{u} t" for u in UTTS if u != "spkB-u2"] + ["spkC-u1 only here"])
    (data / "spk2utt").unlink()
    decoder_prefix = read_kv(str(data / "decoder_prefix"))
    report = fix_data_dir(str(data))
    assert report.kept == 3
    assert report.dropped == {"spkB-u1": "not in utt2lang", "spkB-u2": "not in text",
                              "spkC-u1": "not in decoder_postfix, decoder_prefix, utt2lang, utt2spk, wav.scp"}
    assert "dropped 1: not in text" in report.summary()
    assert read_kv(str(data / ".backup" / "dropped")) == report.dropped
    assert read_kv(str(data / ".backup" / "text"))["spkC-u1"] == "only here"
    assert_valid(data)
    kept = ["spkA-u1", "spkA-u2", "spkB-u3"]
    assert read_kv(str(data / "decoder_prefix")) == {u: decoder_prefix[u] for u in kept}
    assert "" in read_kv(str(data / "decoder_prefix")).values()
    assert (data / "spk2utt").read_text() == "spkA spkA-u1 spkA-u2\nspkB spkB-u3\n"


def test_fix_is_idempotent(tmp_path):
    data = make_data_dir(tmp_path / "d")
    write_lines(data / "utt2lang", ["spkA-u1 eng"])
    fix_data_dir(str(data))
    before = {n: (data / n).read_bytes() for n in os.listdir(data) if (data / n).is_file()}
    report = fix_data_dir(str(data))
    assert report.changed_files == [] and report.dropped == {}
    assert report.summary() == "nothing to fix (1 utterances)"
    assert {n: (data / n).read_bytes() for n in before} == before


def test_fix_keeps_first_of_duplicate_lines_and_sorts(tmp_path):
    data = make_data_dir(tmp_path / "d")
    write_lines(data / "text", [f"{u} t" for u in reversed(UTTS)] + ["spkA-u1 second"])
    report = fix_data_dir(str(data))
    assert report.duplicates == {"text": 1} and report.kept == 5
    assert read_kv(str(data / "text"))["spkA-u1"] == "t"
    assert_valid(data)


def test_fix_drops_segments_whose_recording_is_not_in_wav_scp(tmp_path):
    data = make_data_dir(tmp_path / "d")
    write_lines(data / "segments", [f"{u} {'rec1' if u.startswith('spkA') else 'rec2'} 0.5 1.5" for u in UTTS])
    write_lines(data / "wav.scp", ["rec1 /audio/rec1.wav", "rec9 /audio/rec9.wav"])
    report = fix_data_dir(str(data))
    assert sorted(report.dropped) == ["spkB-u1", "spkB-u2", "spkB-u3"]
    assert set(report.dropped.values()) == {"recording not in wav.scp"}
    assert read_kv(str(data / "wav.scp")) == {"rec1": "/audio/rec1.wav"}
    assert_valid(data)


def test_fix_refuses_to_empty_a_dir_because_of_a_stray_file(tmp_path):
    data = make_data_dir(tmp_path / "d")
    write_lines(data / "README", ["This is not a data file"])
    with pytest.raises(DataDirError, match="no utterance id of utt2spk is in README"):
        fix_data_dir(str(data))
    assert (data / "README").exists() and not (data / ".backup").exists()


def test_fix_cli_prints_summary(tmp_path):
    data = make_data_dir(tmp_path / "d")
    write_lines(data / "decoder_prefix", ["spkA-u1 "])
    result = run_tool("fix_data_dir.py", data)
    assert "kept 1 of 5 utterances" in result.stdout and "dropped 4: not in decoder_prefix" in result.stdout


# -- combine ---------------------------------------------------------------------------------------


def test_combine_unions_all_per_utterance_files(tmp_path):
    first = make_data_dir(tmp_path / "a", {"spkA-u1": "spkA", "spkA-u2": "spkA"})
    second = make_data_dir(tmp_path / "b", {"spkA-u3": "spkA", "spkC-u1": "spkC"})
    run_tool("combine_data.py", tmp_path / "all", first, second)
    assert_valid(tmp_path / "all")
    for name in ("decoder_prefix", "decoder_postfix", "utt2lang", "text", "wav.scp"):
        expected = {**read_kv(str(first / name)), **read_kv(str(second / name))}
        assert read_kv(str(tmp_path / "all" / name)) == expected
    assert read_kv(str(tmp_path / "all" / "spk2utt"))["spkA"] == "spkA-u1 spkA-u2 spkA-u3"


def test_combine_fails_on_duplicate_utterance_ids(tmp_path):
    first = make_data_dir(tmp_path / "a", {"spkA-u1": "spkA"})
    second = make_data_dir(tmp_path / "b", {"spkA-u1": "spkA"})
    result = run_tool("combine_data.py", tmp_path / "all", first, second, check=False)
    assert result.returncode != 0
    assert f"duplicate utterance id 'spkA-u1' in {first} and {second}" in result.stderr
    assert not (tmp_path / "all").exists()


def test_combine_fails_on_an_extra_file_missing_from_some_sources_unless_skipped(tmp_path):
    dirs = [make_data_dir(tmp_path / name, {f"spk{name}-u1": f"spk{name}"}) for name in "abc"]
    (dirs[1] / "utt2lang").unlink()
    (dirs[2] / "utt2lang").unlink()
    with pytest.raises(DataDirError, match=f"utt2lang \\(in {dirs[0]}\\) is missing from {dirs[1]}, {dirs[2]}"):
        combine([load_data_dir(str(d)) for d in dirs])
    result = run_tool("combine_data.py", "--skip-missing-extra", tmp_path / "all", *dirs)
    assert "leaving out utt2lang" in result.stderr
    assert not (tmp_path / "all" / "utt2lang").exists()
    assert read_kv(str(tmp_path / "all" / "decoder_prefix")) == {f"spk{n}-u1": "Repeat:  x" for n in "abc"}
    assert_valid(tmp_path / "all")


# -- subset ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("options, expected", [
    (["--first", 2], ["spkA-u1", "spkA-u2"]),
    (["--last", 2], ["spkB-u2", "spkB-u3"]),
    (["--utt-list", "LIST"], ["spkA-u2", "spkB-u3"]),
    (["--spk-list", "SPKS"], ["spkB-u1", "spkB-u2", "spkB-u3"]),
])
def test_subset_cli_carries_every_per_utterance_file(tmp_path, options, expected):
    data = make_data_dir(tmp_path / "d")
    write_lines(tmp_path / "LIST", ["spkB-u3", "spkA-u2 anything", "unknown-utt"])
    write_lines(tmp_path / "SPKS", ["spkB"])
    options = [tmp_path / o if o in ("LIST", "SPKS") else o for o in options]
    run_tool("subset_data_dir.py", *options, data, tmp_path / "sub")
    assert_valid(tmp_path / "sub")
    assert sorted(read_kv(str(tmp_path / "sub" / "utt2spk"))) == expected
    for name in per_utterance_files(str(data)):
        full = read_kv(str(data / name))
        assert read_kv(str(tmp_path / "sub" / name)) == {u: full[u] for u in expected}


def test_subset_shuffle_is_reproducible_with_a_seed(tmp_path):
    utts = {f"spk{i % 3}-utt{i:02d}": f"spk{i % 3}" for i in range(40)}
    data = load_data_dir(str(make_data_dir(tmp_path / "d", utts)))
    draw = choose_utterances(data, shuffle=10, seed=3)
    assert len(set(draw)) == 10 and set(draw) <= set(utts)
    assert draw == choose_utterances(data, shuffle=10, seed=3)
    assert draw != choose_utterances(data, shuffle=10, seed=4)
    for out in ("s1", "s2"):
        run_tool("subset_data_dir.py", "--shuffle", 10, "--seed", 3, tmp_path / "d", tmp_path / out)
    assert (tmp_path / "s1" / "utt2spk").read_bytes() == (tmp_path / "s2" / "utt2spk").read_bytes()
    assert sorted(read_kv(str(tmp_path / "s1" / "utt2spk"))) == sorted(draw)


def test_subset_rejects_more_utterances_than_there_are(tmp_path):
    result = run_tool("subset_data_dir.py", "--first", 9, make_data_dir(tmp_path / "d"), tmp_path / "s", check=False)
    assert result.returncode != 0 and "asked for 9 utterances" in result.stderr


def test_subset_keeps_only_the_needed_speakers_and_recordings(tmp_path):
    data = make_data_dir(tmp_path / "d")
    write_lines(data / "spk2gender", ["spkA f", "spkB m"])
    write_lines(data / "segments", [f"{u} {'rec1' if u.startswith('spkA') else 'rec2'} 0 1" for u in UTTS])
    write_lines(data / "wav.scp", ["rec1 /audio/rec1.wav", "rec2 /audio/rec2.wav"])
    small = subset(load_data_dir(str(data)), ["spkA-u2"])
    assert small.files["spk2gender"] == {"spkA": "f"}
    assert small.files["wav.scp"] == {"rec1": "/audio/rec1.wav"}


# -- copy ------------------------------------------------------------------------------------------


def test_copy_with_utterance_suffix_renames_keys_in_every_file(tmp_path):
    data = make_data_dir(tmp_path / "d")
    run_tool("copy_data_dir.py", "--utt-suffix", "-1", data, tmp_path / "copy")
    assert_valid(tmp_path / "copy")
    for name in per_utterance_files(str(data)):
        original = read_kv(str(data / name))
        assert read_kv(str(tmp_path / "copy" / name)) == {f"{k}-1": v for k, v in original.items()}
    assert read_kv(str(tmp_path / "copy" / "utt2spk"))["spkB-u1-1"] == "spkB"
    assert (tmp_path / "copy" / "decoder_prefix").read_text().count(" \n") == 3  # empty values kept


def test_copy_with_prefixes_and_segments_keeps_recording_ids(tmp_path):
    data = make_data_dir(tmp_path / "d")
    write_lines(data / "segments", [f"{u} rec1 {i} {i + 1}" for i, u in enumerate(UTTS)])
    write_lines(data / "wav.scp", ["rec1 /audio/rec1.wav"])
    run_tool("copy_data_dir.py", "--utt-prefix", "x-", "--spk-prefix", "x-", data, tmp_path / "copy")
    copy = tmp_path / "copy"
    assert_valid(copy)
    assert read_kv(str(copy / "wav.scp")) == {"rec1": "/audio/rec1.wav"}
    assert read_kv(str(copy / "segments"))["x-spkA-u2"] == "rec1 1 2"
    assert read_kv(str(copy / "utt2spk"))["x-spkA-u2"] == "x-spkA"
    assert read_kv(str(copy / "utt2lang"))["x-spkB-u1"] == "deu"


def test_rename_without_segments_renames_wav_scp_keys_like_utterances(tmp_path):
    data = rename(load_data_dir(str(make_data_dir(tmp_path / "d"))), str.upper, str.upper)
    assert sorted(data.files["wav.scp"]) == sorted(u.upper() for u in UTTS)
    assert add_affixes(data).files == data.files


# -- speed perturbation ----------------------------------------------------------------------------


def make_audio_dir(tmp_path):
    """One 1 s 16 kHz wav used as a path, as a pipe, and with utt2num_samples/utt2dur."""
    wav = tmp_path / "tone.wav"
    soundfile.write(wav, 0.3 * np.sin(np.arange(16000) * 0.05), 16000, subtype="PCM_16")
    utts = {"spkA-u1": "spkA", "spkA-u2": "spkA"}
    data = make_data_dir(tmp_path / "d", utts, wav=lambda u: str(wav) if u.endswith("1") else f"cat {wav} |")
    write_lines(data / "utt2num_samples", [f"{u} 16000" for u in utts])
    write_lines(data / "utt2dur", [f"{u} 1.0" for u in utts])
    return data


def read_pipe(command):
    assert command.endswith("|")
    audio = subprocess.run(command[:-1], shell=True, capture_output=True, check=True).stdout
    return soundfile.read(io.BytesIO(audio))


def test_speed_perturbed_wav_scp_commands_run_and_give_the_expected_duration(tmp_path):
    data = make_audio_dir(tmp_path)
    run_tool("perturb_data_dir_speed.py", "--factor", 0.9, data, tmp_path / "sp")
    sp = tmp_path / "sp"
    assert_valid(sp)
    num_samples = read_kv(str(sp / "utt2num_samples"))
    assert num_samples == {"sp0.9-spkA-u1": "17778", "sp0.9-spkA-u2": "17778"}
    assert read_kv(str(sp / "utt2dur")) == {"sp0.9-spkA-u1": "1.1111", "sp0.9-spkA-u2": "1.1111"}
    for utt, command in read_kv(str(sp / "wav.scp")).items():
        assert "speed 0.9" in command
        samples, rate = read_pipe(command)
        assert rate == 16000 and len(samples) == int(num_samples[utt])
        assert abs(len(samples) / rate - 1 / 0.9) < 0.01


def test_speed_perturbation_renames_utterances_and_speakers_in_every_file(tmp_path):
    data = make_data_dir(tmp_path / "d")
    run_tool("perturb_data_dir_speed.py", "--factor", 1.1, data, tmp_path / "sp")
    sp = tmp_path / "sp"
    assert_valid(sp)
    assert read_kv(str(sp / "utt2spk"))["sp1.1-spkB-u2"] == "sp1.1-spkB"
    for name in ("text", "utt2lang", "decoder_prefix", "decoder_postfix"):
        original = read_kv(str(data / name))
        assert read_kv(str(sp / name)) == {f"sp1.1-{k}": v for k, v in original.items()}


def test_speed_perturbation_scales_segments_and_prefixes_recordings(tmp_path):
    data = make_data_dir(tmp_path / "d")
    write_lines(data / "segments", [f"{u} rec1 {i * 0.9:.1f} {i * 0.9 + 0.9:.1f}" for i, u in enumerate(UTTS)])
    write_lines(data / "wav.scp", ["rec1 /audio/rec1.wav"])
    write_lines(data / "reco2dur", ["rec1 4.5"])
    sp = speed_perturb(load_data_dir(str(data)), 0.9)
    assert sp.files["segments"]["sp0.9-spkA-u2"] == "sp0.9-rec1 1.0000 2.0000"
    assert sp.files["wav.scp"] == {"sp0.9-rec1": "sox -R /audio/rec1.wav -t wav -b 16 - speed 0.9 |"}
    assert sp.files["reco2dur"] == {"sp0.9-rec1": "5.0000"}


def test_speed_factors_combined_and_factor_one_is_an_unchanged_copy(tmp_path):
    data = make_audio_dir(tmp_path)
    run_tool("perturb_data_dir_speed.py", "--factors", 0.9, 1.0, 1.1, data, tmp_path / "sp")
    sp = tmp_path / "sp"
    assert_valid(sp)
    utt2spk = read_kv(str(sp / "utt2spk"))
    assert sorted(utt2spk) == ["sp0.9-spkA-u1", "sp0.9-spkA-u2", "sp1.1-spkA-u1", "sp1.1-spkA-u2",
                               "spkA-u1", "spkA-u2"]
    original = load_data_dir(str(data))
    assert speed_perturb(original, 1.0).files == original.files
    assert read_kv(str(sp / "wav.scp"))["spkA-u2"] == read_kv(str(data / "wav.scp"))["spkA-u2"]
    assert read_kv(str(sp / "utt2num_samples"))["sp1.1-spkA-u1"] == "14545"


def test_speed_command_rejects_ark_entries_clearly():
    assert speed_command("flac -dc a.flac |", 1.1) == "flac -dc a.flac | sox -R -t wav - -t wav -b 16 - speed 1.1 |"
    with pytest.raises(DataDirError, match="ark entry 'dump/a.ark:123'"):
        speed_command("dump/a.ark:123", 0.9)


# -- split -----------------------------------------------------------------------------------------


def split_contents(parts):
    return [read_kv(os.path.join(part, "utt2spk")) for part in parts]


def test_split_by_utterance_is_complete_balanced_and_covers_each_utterance_once(tmp_path):
    utts = {f"spk{i % 4}-utt{i:02d}": f"spk{i % 4}" for i in range(11)}
    data = make_data_dir(tmp_path / "d", utts)
    run_tool("split_data_dir.py", data, 3)
    parts = [str(data / "split3" / str(i)) for i in (1, 2, 3)]
    contents = split_contents(parts)
    assert sorted(u for c in contents for u in c) == sorted(utts)
    assert sorted(len(c) for c in contents) == [3, 4, 4]
    for part in parts:
        assert_valid(part)
        assert per_utterance_files(part) == per_utterance_files(str(data))
        assert read_kv(os.path.join(part, "decoder_prefix")) == {
            u: v for u, v in read_kv(str(data / "decoder_prefix")).items() if u in read_kv(part + "/utt2spk")}


def test_split_per_speaker_keeps_speakers_together(tmp_path):
    utts = {f"spk{s}-utt{i}": f"spk{s}" for s, count in enumerate([6, 1, 1, 3, 2]) for i in range(count)}
    data = make_data_dir(tmp_path / "d", utts)
    parts = split_data_dir(str(data), 3, per_spk=True)
    speaker_sets = [set(c.values()) for c in split_contents(parts)]
    assert all(speaker_sets) and sum(map(len, speaker_sets)) == 5
    assert set().union(*speaker_sets) == set(utts.values())
    assert sum(len(c) for c in split_contents(parts)) == len(utts)
    for part in parts:
        assert_valid(part)


def test_split_rerun_is_a_noop_until_the_source_changes(tmp_path):
    data = make_data_dir(tmp_path / "d")
    parts = split_data_dir(str(data), 2)
    stamp = os.stat(os.path.join(parts[0], "utt2spk")).st_mtime_ns
    assert split_data_dir(str(data), 2) == parts
    assert os.stat(os.path.join(parts[0], "utt2spk")).st_mtime_ns == stamp
    write_lines(data / "utt2lang", [f"{u} fra" for u in UTTS])
    split_data_dir(str(data), 2)
    assert set(read_kv(os.path.join(parts[1], "utt2lang")).values()) == {"fra"}
    write_lines(data / "utt2extra", [f"{u} x" for u in UTTS])
    split_data_dir(str(data), 2, per_spk=True)
    assert os.path.isfile(os.path.join(parts[0], "utt2extra")) and not os.path.exists(data / "split2.tmp")


def test_split_into_more_parts_than_utterances_fails(tmp_path):
    result = run_tool("split_data_dir.py", make_data_dir(tmp_path / "d"), 6, check=False)
    assert result.returncode != 0 and "cannot split the 5 utterances" in result.stderr
