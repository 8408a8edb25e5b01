"""Tests of local/make_mini_fleurs.py: a tiny corpus built by the test, and the bundled
sentence table and config checked without synthesizing them."""

import importlib.util
import shutil
import sys
import tarfile
from pathlib import Path

import pytest
import soundfile
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = {"en_us": "en-us", "de_de": "de", "fr_fr": "fr-fr"}
TINY_SENTENCES = [
    ("The cat sleeps.", "Die Katze schläft.", "Le chat dort."),
    ("The dog eats bread.", "Der Hund frisst Brot.", "Le chien mange du pain."),
    ("The water is cold.", "Das Wasser ist kalt.", "L'eau est froide."),
    ("My brother reads a book.", "Mein Bruder liest ein Buch.", "Mon frère lit un livre."),
]

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


def load_local_module(name):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "local" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    spec.loader.exec_module(module)
    return module


mini = load_local_module("make_mini_fleurs")


def write_tiny_config(directory, speeds=(150, 170)):
    directory.mkdir(parents=True, exist_ok=True)
    table = directory / "sentences.tsv"
    rows = ["\t".join(["id", *LANGUAGES])]
    rows += ["\t".join([str(sid), *cells]) for sid, cells in enumerate(TINY_SENTENCES, start=1)]
    table.write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = {
        "seed": 7,
        "sentence_table": str(table),
        "languages": LANGUAGES,
        "voices": [{"variant": "m3", "gender": "MALE"}, {"variant": "f2", "gender": "FEMALE"}],
        "speeds": list(speeds),
        "pitches": [40, 60],
        "amplitudes": [50, 70],
        "recordings_per_sentence": {"train": 2, "dev": 1, "test": 1},
        "split_fractions": {"dev": 0.25, "test": 0.25},
        "num_sentences": None,
        "smoke": {"num_sentences": 3},
    }
    config_path = directory / "corpus.yaml"
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return config_path


def build(config_path, output_dir, num_jobs=1):
    mini.build_corpus(mini.load_config(config_path), output_dir, num_jobs=num_jobs)
    return output_dir


def read_tsv(path):
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]


def corpus_files(root):
    return {str(path.relative_to(root)): path.read_bytes()
            for path in sorted(root.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    base = tmp_path_factory.mktemp("mini")
    return build(write_tiny_config(base / "conf"), base / "corpus")


def test_fleurs_layout_and_columns(tiny_corpus):
    assert sorted(p.name for p in tiny_corpus.iterdir() if p.is_dir()) == sorted(LANGUAGES)
    for lang in LANGUAGES:
        for split in mini.SPLITS:
            rows = read_tsv(tiny_corpus / lang / f"{split}.tsv")
            assert rows and all(len(row) == 7 for row in rows)
            for sid, file_name, raw, transcription, characters, num_samples, gender in rows:
                assert sid.isdigit() and file_name.endswith(".wav") and file_name[:-4].isdigit()
                assert raw[0].isupper() and raw.endswith(".")
                assert transcription == transcription.lower() and "." not in transcription
                assert characters.replace(" ", "").replace("|", "") == transcription.replace(" ", "")
                assert int(num_samples) > 0 and gender in ("MALE", "FEMALE")
            with tarfile.open(tiny_corpus / lang / "audio" / f"{split}.tar.gz") as tar:
                assert sorted(tar.getnames()) == sorted(f"{split}/{row[1]}" for row in rows)


def test_sentence_ids_shared_and_splits_disjoint(tiny_corpus):
    ids = {}
    for split in mini.SPLITS:
        per_language = [{row[0] for row in read_tsv(tiny_corpus / lang / f"{split}.tsv")}
                        for lang in LANGUAGES]
        assert all(language_ids == per_language[0] for language_ids in per_language)
        ids[split] = per_language[0]
    assert not ids["train"] & ids["dev"] and not ids["train"] & ids["test"]
    assert not ids["dev"] & ids["test"]
    assert ids["train"] | ids["dev"] | ids["test"] == {"1", "2", "3", "4"}
    rows = read_tsv(tiny_corpus / "en_us" / "train.tsv")
    assert len(rows) == 2 * len(ids["train"])  # recordings_per_sentence train: 2
    # The same sentence id is the translated sentence in every language.
    sid = rows[0][0]
    raw = {lang: read_tsv(tiny_corpus / lang / "train.tsv")[0][2] for lang in LANGUAGES}
    assert tuple(raw.values()) == TINY_SENTENCES[int(sid) - 1]


def test_audio_is_16k_mono_and_matches_num_samples(tiny_corpus, tmp_path):
    for lang in LANGUAGES:
        rows = {row[1]: int(row[5]) for row in read_tsv(tiny_corpus / lang / "test.tsv")}
        with tarfile.open(tiny_corpus / lang / "audio" / "test.tar.gz") as tar:
            tar.extractall(tmp_path / lang, filter="data")
        for file_name, num_samples in rows.items():
            samples, rate = soundfile.read(tmp_path / lang / "test" / file_name, dtype="int16")
            assert rate == 16000 and samples.ndim == 1 and len(samples) == num_samples
            assert 0.5 < num_samples / rate < 10 and 1000 < abs(samples.astype(int)).max() < 32767


def test_deterministic_and_idempotent(tiny_corpus, tmp_path, caplog):
    config_path = write_tiny_config(tmp_path / "conf")
    second = tmp_path / "corpus"
    (tmp_path / "corpus.partial").mkdir()  # left over by an interrupted run
    build(config_path, second, num_jobs=2)
    assert corpus_files(second) == corpus_files(tiny_corpus)
    assert not (tmp_path / "corpus.partial").exists()

    stamp_time = (second / ".done").stat().st_mtime_ns
    with caplog.at_level("INFO"):
        build(config_path, second)
    assert "nothing to do" in caplog.text
    assert (second / ".done").stat().st_mtime_ns == stamp_time

    build(write_tiny_config(tmp_path / "conf", speeds=(200,)), second)  # config changed
    assert (second / ".done").read_bytes() != corpus_files(tiny_corpus)[".done"]


def test_text_normalization():
    assert mini.normalize_transcription("L'eau est froide, non?") == "l'eau est froide non"
    assert mini.normalize_transcription("Mijn moeder drinkt 's avonds thee.") == \
        "mijn moeder drinkt 's avonds thee"
    assert mini.character_column("the cat") == "t h e | c a t |"


def test_bundled_table_and_default_split():
    config = mini.load_config(REPO_ROOT / "conf" / "mini" / "corpus.yaml")
    languages = list(config["languages"])
    assert len(languages) >= 6
    table = mini.read_sentence_table(config["sentence_table"], languages)
    assert 120 <= len(table) <= 200
    for sentences in table.values():
        for lang, raw in sentences.items():
            assert raw[0].isupper() and raw.endswith(".") and "  " not in raw, (lang, raw)
            assert not any(char.isdigit() for char in raw), (lang, raw)
        assert 3 <= len(sentences["en_us"].split()) <= 8

    split_ids = mini.split_sentence_ids(table, languages, config["split_fractions"], config["seed"])
    train, dev, test = (set(split_ids[split]) for split in mini.SPLITS)
    assert not train & dev and not train & test and not dev & test
    assert train | dev | test == set(table)
    assert len(test) == round(0.15 * len(table)) and len(dev) == round(0.10 * len(table))
    for lang in languages:
        # Closed vocabulary: every held-out word occurs in a training sentence.
        train_words = {w for sid in train
                       for w in mini.normalize_transcription(table[sid][lang]).split()}
        held_out_words = {w for sid in dev | test
                          for w in mini.normalize_transcription(table[sid][lang]).split()}
        assert held_out_words <= train_words, (lang, held_out_words - train_words)


def test_smoke_section_overrides():
    config = mini.load_config(REPO_ROOT / "conf" / "mini" / "corpus.yaml", smoke=True)
    assert config["num_sentences"] == 24
    assert set(config["recordings_per_sentence"].values()) == {1}
    assert "smoke" not in config
