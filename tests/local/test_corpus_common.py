"""Tests of local/corpus_common.py (id scheme, list files, wav.scp values) and of the language
lists in conf/languages/ the recipe prepares the paper's corpora from."""

import pytest
import yaml

from tests.local.corpus_helpers import REPO_ROOT, write_audio, write_lines

import corpus_common  # noqa: E402  (local/, put on sys.path by corpus_helpers)

LISTS = REPO_ROOT / "conf" / "languages"


def listed(name):
    return corpus_common.read_list_file(LISTS / name)


def test_ids_share_one_scheme_and_reject_ambiguous_fields():
    assert corpus_common.make_ids("cv_zh_CN", "train", "ab12", "77") == ("cv_zh_CN-train-ab12-77",
                                                                         "cv_zh_CN-train-ab12")
    assert corpus_common.make_ids("voxpopuli_de", "test", "9", "2018-a_1") == ("voxpopuli_de-test-9-2018-a_1",
                                                                                "voxpopuli_de-test-9")
    assert corpus_common.id_field("zh-CN") == "zh_CN"
    for fields in (("cv_zh-CN", "train", "a", "1"), ("cv_de", "train", "a b", "1"), ("cv_de", "train", "a", "")):
        with pytest.raises(ValueError):
            corpus_common.make_ids(*fields)


def test_list_files_ignore_comments_and_reject_repeats(tmp_path):
    entries = corpus_common.read_list_file(write_lines(tmp_path / "a.txt", ["# head", "de", "", "fr  # x"]))
    assert entries == ["de", "fr"]
    with pytest.raises(ValueError, match="b.txt:3"):
        corpus_common.read_list_file(write_lines(tmp_path / "b.txt", ["de", "fr", "de"]))
    with pytest.raises(ValueError, match="<code> <label>"):
        corpus_common.read_language_map(write_lines(tmp_path / "c.txt", ["de de_de extra"]))


def test_wav_scp_entry_names_16khz_mono_wav_and_flac_directly(tmp_path):
    for name, rate, channels, direct in (("a.flac", 16000, 1, True), ("b.wav", 16000, 2, False),
                                         ("c.wav", 44100, 1, False), ("d.ogg", 16000, 1, False)):
        path = write_audio(tmp_path / name, 0.5, rate=rate, channels=channels)
        reason, info = corpus_common.probe_audio(path, 30.0)
        assert reason is None
        entry = corpus_common.wav_scp_entry(path, info)
        assert (entry == str(path.resolve())) == direct, entry
    spaced = write_audio(tmp_path / "with space" / "e.flac", 0.5)
    assert corpus_common.wav_scp_entry(spaced, corpus_common.probe_audio(spaced, 30.0)[1]).startswith("sox -R '")


def test_fleurs102_is_every_fleurs_language_of_the_translation_template():
    fleurs = listed("fleurs102.txt")
    template = yaml.safe_load((REPO_ROOT / "conf" / "instructions" / "translation.yaml").read_text())
    assert len(fleurs) == 102 and set(fleurs) == set(template["languages"])
    assert {"af_za", "am_et", "cmn_hans_cn", "yue_hant_hk", "zu_za"} <= set(fleurs)


def test_paper_test_set_lists_and_their_fleurs_labels():
    to_fleurs = corpus_common.read_language_map(LISTS / "to_fleurs.txt")
    assert set(to_fleurs.values()) <= set(listed("fleurs102.txt"))
    voxpopuli, mls = listed("voxpopuli16.txt"), listed("mls8.txt")
    assert len(voxpopuli) == 16 and len(mls) == 8
    pairs = [entry.split(":") for entry in listed("covost2_pairs.txt")]
    to_english = [src for src, tgt in pairs if tgt == "en"]
    from_english = [tgt for src, tgt in pairs if src == "en"]
    assert len(to_english) == 21 and len(from_english) == 15 and len(pairs) == 36
    assert "en" not in to_english  # the original's en->en pair does not exist
    covost_locales = set(to_english) | set(from_english) | {"en"}
    assert covost_locales | set(voxpopuli) | set(mls) <= set(to_fleurs)  # all named by the template
    assert {"de", "en", "zh-CN", "sv-SE"} <= set(listed("commonvoice12.txt"))
