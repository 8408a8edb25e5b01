"""Tests of bloomzmms.bin.make_instruction_sets: the MI and TMI training directories."""

import os
from pathlib import Path

import pytest

from bloomzmms.bin import make_instruction_sets as sets
from bloomzmms.bin import make_mi_targets as mi
from bloomzmms.datadir import (DataDir, DataDirError, load_data_dir, read_kv, save_data_dir,
                               validate_data_dir, write_kv)
from bloomzmms.instructions import escape_instruction, unescape_instruction
from tests.bin.test_make_mi_targets import fake_generate, write_t_dir, write_templates

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT = str(REPO_ROOT / "conf/instructions/default.yaml")


@pytest.fixture
def prepared(tmp_path, monkeypatch):
    """dump/raw/train_t_sp and its MI targets (Polish: one copy dropped per utterance)."""
    t_dir = tmp_path / "dump" / "raw" / "train_t_sp"
    data = write_t_dir(t_dir)
    write_templates(tmp_path / "templates.yaml")
    monkeypatch.setattr(mi, "generate_to_file", fake_generate(lambda prompt: prompt.startswith("Paraphrase: kot.")))
    mi.make_mi_targets(str(t_dir), str(tmp_path / "templates.yaml"), str(tmp_path / "mi_targets"),
                       llm=object(), tokenizer=object(), copies=2, seed=0)
    return t_dir, tmp_path / "mi_targets", data


def test_mi_and_tmi_dirs(prepared):
    t_dir, targets, t_data = prepared
    t_before = {p.name: p.read_bytes() for p in t_dir.iterdir() if p.is_file()}
    report = sets.make_instruction_sets(str(t_dir), str(targets), default_instruction=DEFAULT)
    mi_dir, tmi_dir = t_dir.parent / "train_mi_sp", t_dir.parent / "train_tmi_sp"
    assert {p.name: p.read_bytes() for p in t_dir.iterdir() if p.is_file()} == t_before  # T untouched
    assert not (t_dir / "decoder_prefix").exists()

    complete = {u for u, lang in t_data.files["utt2lang"].items() if lang != "pl_pl"}
    assert report["complete_utterances"] == len(complete)
    assert report["dropped_incomplete"] == len(t_data.utt2spk) - len(complete)
    copies = [read_kv(str(targets / f"copy{k}" / "text")) for k in (1, 2)]
    for directory, offset, n in ((mi_dir, 0, 2), (tmi_dir, 1, 3)):
        assert validate_data_dir(str(directory)) == []
        data = load_data_dir(str(directory))
        assert set(data.utt2spk) == {f"{u}-{k}" for u in complete for k in range(1, n + 1)}
        assert data.verbatim == {"feats_type": b"raw\n", "audio_format": b"wav\n"}
        assert set(data.files) == set(t_data.files) | {"decoder_prefix", "decoder_postfix"}
        for utt in complete:
            for k in range(1, n + 1):
                copy = f"{utt}-{k}"
                for name in ("wav.scp", "utt2lang", "utt2num_samples", "utt2sentence"):
                    assert data.files[name][copy] == t_data.files[name][utt]
                assert data.utt2spk[copy] == f"{t_data.utt2spk[utt]}-{k}"
                mi_copy = k - offset
                if mi_copy == 0:  # the T copy of TMI, with the default instruction written out
                    assert data.files["text"][copy] == t_data.files["text"][utt]
                    assert unescape_instruction(data.files["decoder_prefix"][copy]) == "Repeat the sentence: "
                    assert unescape_instruction(data.files["decoder_postfix"][copy]) == ". "
                else:
                    assert data.files["text"][copy] == copies[mi_copy - 1][utt]
                    for name in ("decoder_prefix", "decoder_postfix"):
                        assert data.files[name][copy] == read_kv(str(targets / f"copy{mi_copy}" / name))[utt]
    assert report["train_tmi_sp_utterances"] == 3 * len(complete)

    # Idempotent: a re-run leaves the outputs (and their mtimes) alone.
    stamps = {p: p.stat().st_mtime_ns for d in (mi_dir, tmi_dir) for p in d.iterdir()}
    sets.main(["--t_dir", str(t_dir), "--mi_targets", str(targets), "--default_instruction", DEFAULT])
    assert {p: p.stat().st_mtime_ns for d in (mi_dir, tmi_dir) for p in d.iterdir()} == stamps
    assert not any(p.name.startswith(".") for p in t_dir.parent.iterdir())


def test_speakers_other_than_utterances_are_kept(tmp_path):
    """Real speaker ids: the copies keep them, so utterance ids still start with their speaker."""
    utts = {"spkA-u1": "spkA", "spkA-u2": "spkA", "spkB-u1": "spkB"}
    files = {"utt2spk": utts, "wav.scp": {u: f"/a/{u}.wav" for u in utts}, "text": {u: f"t {u}" for u in utts},
             "utt2lang": {u: "en_us" for u in utts}, "spk2gender": {"spkA": "f", "spkB": "m"}}
    save_data_dir(DataDir(files, {}), str(tmp_path / "train_t"))
    for k in (1, 2):
        for name, value in (("text", "r{k} {u}"), ("decoder_prefix", "P{k}:\\s"), ("decoder_postfix", "")):
            (tmp_path / "mi" / f"copy{k}").mkdir(parents=True, exist_ok=True)
            write_kv(str(tmp_path / "mi" / f"copy{k}" / name), {u: value.format(k=k, u=u) for u in utts})
    sets.make_instruction_sets(str(tmp_path / "train_t"), str(tmp_path / "mi"), default_instruction=DEFAULT)
    tmi = load_data_dir(str(tmp_path / "train_tmi"))
    assert validate_data_dir(str(tmp_path / "train_tmi")) == []
    assert tmi.utt2spk["spkA-u2-3"] == "spkA" and tmi.files["spk2gender"] == {"spkA": "f", "spkB": "m"}
    assert tmi.files["text"]["spkA-u2-3"] == "r2 spkA-u2"
    assert unescape_instruction(tmi.files["decoder_prefix"]["spkA-u2-3"]) == "P2: "
    assert tmi.files["decoder_prefix"]["spkA-u2-1"] == escape_instruction("Repeat the sentence: ")
    assert len(load_data_dir(str(tmp_path / "train_mi")).utt2spk) == 6


def test_mismatched_targets_and_names(tmp_path, prepared):
    t_dir, targets, _ = prepared
    write_kv(str(targets / "copy2" / "text"), {**read_kv(str(targets / "copy2" / "text")), "stranger": "x"})
    with pytest.raises(DataDirError):
        sets.make_instruction_sets(str(t_dir), str(targets), default_instruction=DEFAULT)
    with pytest.raises(ValueError, match="--mi_dir"):
        sets.derived_name(str(tmp_path / "train_all"), "mi")
    assert sets.derived_name("dump/raw/train_t_sp", "tmi") == os.path.join("dump/raw", "train_tmi_sp")
    assert sets.derived_name("data/train_t", "mi") == os.path.join("data", "train_mi")


def test_token_id_storage_keeps_what_the_model_embeds(prepared, tiny_models):
    from transformers import AutoTokenizer

    from bloomzmms.asr.preprocessor import BloomzmmsPreprocessor

    t_dir, targets, _ = prepared
    sets.make_instruction_sets(str(t_dir), str(targets), default_instruction=DEFAULT,
                               token_ids_from=tiny_models["bloom"])
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["bloom"])
    tmi = load_data_dir(str(t_dir.parent / "train_tmi_sp"))
    assert validate_data_dir(str(t_dir.parent / "train_tmi_sp")) == []
    as_text = BloomzmmsPreprocessor(train=True, tokenizer_name_or_path=tiny_models["bloom"])
    as_ids = BloomzmmsPreprocessor(train=True, tokenizer_name_or_path=tiny_models["bloom"], token_id_input=True)
    for utt in tmi.utt2spk:
        readable = {name: tmi.files[f"{name}_text"][utt] for name in ("text", "decoder_prefix", "decoder_postfix")}
        ids = {name: tmi.files[name][utt] for name in readable}
        from_text = as_text(utt, readable)
        from_ids = as_ids(utt, ids)
        for name in readable:
            assert from_text[name].tolist() == from_ids[name].tolist(), (utt, name)
        assert tokenizer.decode(from_ids["text"].tolist()) == readable["text"]
