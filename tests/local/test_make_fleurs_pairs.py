"""Tests of local/make_fleurs_pairs.py: speech-translation sets matched by sentence id."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from bloomzmms.datadir import DataDir, load_data_dir, save_data_dir, validate_data_dir
from bloomzmms.instructions import unescape_instruction

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = str(REPO_ROOT / "conf/instructions/translation.yaml")


def load_local_module(name):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "local" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


pairs = load_local_module("make_fleurs_pairs")

# sentence id -> {language: [(file stem, transcript), ...]}
CORPUS = {
    "7": {"en_us": [("222", "The cat sleeps."), ("111", "The cat sleeps.")], "de_de": [("333", "Die Katze schläft.")],
          "fr_fr": [("444", "Le chat dort.")]},
    "12": {"en_us": [("555", "The dog drinks.")], "de_de": [("666", "Der Hund trinkt."), ("667", "Der Hund trinkt.")]},
    "30": {"en_us": [("777", "My brother reads.")], "fr_fr": [("888", "Mon frère lit.")]},
    "99": {"it_it": [("999", "Solo in italiano.")]},
}


@pytest.fixture
def test_fleurs(tmp_path):
    files = {name: {} for name in ("wav.scp", "text", "utt2spk", "utt2lang", "utt2sentence", "utt2num_samples")}
    for sentence, languages in CORPUS.items():
        for language, recordings in languages.items():
            for stem, text in recordings:
                utt = f"{language}-test-{sentence}-{stem}"
                values = {"wav.scp": f"/fleurs/{language}/{stem}.wav", "text": text, "utt2spk": utt,
                          "utt2lang": language, "utt2sentence": sentence, "utt2num_samples": str(16000 + int(stem))}
                for name, value in values.items():
                    files[name][utt] = value
    directory = tmp_path / "data" / "test_fleurs"
    save_data_dir(DataDir(files, {}), str(directory))
    return directory


def test_pairs_have_target_references_by_sentence_id(test_fleurs, tmp_path):
    results = pairs.make_fleurs_pairs(str(test_fleurs), [("en_us", "de_de"), ("de_de", "en_us")], TEMPLATE,
                                      str(tmp_path / "data"))
    en_de = tmp_path / "data" / "test_fleurs_en_us-de_de"
    assert results["en_us", "de_de"] == (str(en_de), 2, 1)  # sentence 30 has no German recording
    assert validate_data_dir(str(en_de)) == []
    data = load_data_dir(str(en_de))
    # One recording per sentence: the first utterance id in C byte order (111 before 222).
    assert sorted(data.utt2spk) == ["en_us-test-12-555", "en_us-test-7-111"]
    assert data.files["text"] == {"en_us-test-7-111": "Die Katze schläft.", "en_us-test-12-555": "Der Hund trinkt."}
    assert data.files["text_source"] == {"en_us-test-7-111": "The cat sleeps.", "en_us-test-12-555": "The dog drinks."}
    assert set(data.files["utt2tgt_lang"].values()) == {"de_de"}
    assert set(data.files["utt2lang"].values()) == {"en_us"}
    assert data.files["utt2num_samples"]["en_us-test-7-111"] == "16111"
    assert data.files["wav.scp"]["en_us-test-12-555"] == "/fleurs/en_us/555.wav"
    assert {unescape_instruction(v) for v in data.files["decoder_prefix"].values()} == \
        {"Translate the following text from English to German\n"}
    assert {unescape_instruction(v) for v in data.files["decoder_postfix"].values()} == {"\n"}
    assert (en_de / "decoder_postfix").read_text(encoding="utf-8").splitlines()[0].endswith(" \\n")
    assert (en_de / ".missing_in_target").read_text() == "30\n"
    assert {f.name for f in en_de.iterdir()} >= {"wav.scp", "utt2spk", "spk2utt", "utt2lang", "utt2num_samples",
                                                 "text", "text_source", "decoder_prefix", "decoder_postfix",
                                                 "utt2tgt_lang"}

    de_en = load_data_dir(str(tmp_path / "data" / "test_fleurs_de_de-en_us"))
    assert de_en.files["text"] == {"de_de-test-12-666": "The dog drinks.", "de_de-test-7-333": "The cat sleeps."}


def test_cli_all_pairs_and_pairs_without_common_sentences(test_fleurs, tmp_path):
    subprocess.run([sys.executable, str(REPO_ROOT / "local" / "make_fleurs_pairs.py"), "--data_dir",
                    str(test_fleurs), "--all_pairs_from", "de_de", "en_us", "fr_fr", "--translation_template",
                    TEMPLATE], check=True, cwd=tmp_path, capture_output=True)
    written = sorted(p.name for p in (tmp_path / "data").iterdir() if p.name.startswith("test_fleurs_"))
    assert written == sorted(f"test_fleurs_{s}-{t}" for s in ("de_de", "en_us", "fr_fr")
                             for t in ("de_de", "en_us", "fr_fr") if s != t)
    fr_en = load_data_dir(str(tmp_path / "data" / "test_fleurs_fr_fr-en_us"))
    assert fr_en.files["text"] == {"fr_fr-test-30-888": "My brother reads.", "fr_fr-test-7-444": "The cat sleeps."}
    de_fr = load_data_dir(str(tmp_path / "data" / "test_fleurs_de_de-fr_fr"))
    assert de_fr.files["text"] == {"de_de-test-7-333": "Le chat dort."}
    assert {unescape_instruction(v) for v in de_fr.files["decoder_prefix"].values()} == \
        {"Translate the following text from German to French\n"}

    # Italian shares no sentence with German: reported, not written; the CLI fails when nothing is written.
    results = pairs.make_fleurs_pairs(str(test_fleurs), [("it_it", "de_de")], TEMPLATE, str(tmp_path / "data"))
    assert results["it_it", "de_de"] == (None, 0, 1)
    assert not (tmp_path / "data" / "test_fleurs_it_it-de_de").exists()
    with pytest.raises(SystemExit):
        pairs.main(["--data_dir", str(test_fleurs), "--pairs", "it_it:de_de", "--translation_template", TEMPLATE])
    with pytest.raises(Exception, match="no utterances of pl_pl"):
        pairs.make_fleurs_pairs(str(test_fleurs), [("en_us", "pl_pl")], TEMPLATE, str(tmp_path / "data"))
    with pytest.raises(SystemExit):  # not SRC:TGT
        pairs.main(["--data_dir", str(test_fleurs), "--pairs", "en_us-de_de"])
