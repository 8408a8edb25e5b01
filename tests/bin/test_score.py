"""Tests of bloomzmms.scoring (CER/WER, BLEU/chrF, semantic similarity) and the score CLI."""

import json

import pytest
import sacrebleu
from sacrebleu.metrics import BLEU
from whisper.normalizers import BasicTextNormalizer

from bloomzmms import scoring
from bloomzmms.bin import score as score_cli
from tests.embedding_model import build_tiny_embedding_model


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------ ASR ---


def test_normalizer_ignores_case_and_punctuation():
    counts = scoring.asr_error_counts("Hello, World!", "hello world", unspaced=False)
    assert counts == {"ref_chars": 11, "hyp_chars": 11, "char_errors": 0, "ref_words": 2, "word_errors": 0}


def test_cer_wer_hand_computed():
    # "das ist gut" -> "das ist nicht gut": one inserted word, six inserted characters ("nicht ").
    result = scoring.score_asr({"u1": "Das ist gut."}, {"u1": "das ist nicht gut"}, default_language="de_de")
    german = result["languages"]["de_de"]
    assert (german["char_errors"], german["ref_chars"]) == (6, 11)
    assert german["cer"] == pytest.approx(100 * 6 / 11)
    assert (german["word_errors"], german["ref_words"]) == (1, 3)
    assert german["wer"] == pytest.approx(100 / 3)


def test_overlong_hypotheses_are_counted_with_their_errors():
    # A looping generation: more than twice its reference's characters. It is counted, with its
    # share of the errors; a hypothesis of exactly twice the length is not.
    refs = {"loop": "Der Bus fährt.", "double": "ab cd", "fine": "Das ist gut."}
    hyps = {"loop": "der bus der bus der bus der bus", "double": "ab cd ab c", "fine": "das ist gut"}
    german = scoring.score_asr(refs, hyps, default_language="de_de")["languages"]["de_de"]
    loop_errors = scoring.asr_error_counts(refs["loop"], hyps["loop"], unspaced=False)["char_errors"]
    assert german["num_overlong_hyps"] == 1
    assert german["overlong_char_errors"] == loop_errors > 0
    assert german["char_errors"] == loop_errors + 5  # "double": five inserted characters


def test_unspaced_language_cer_only_and_punctuation_free():
    refs = {"a": "你好，世界。", "b": "你好世界"}
    hyps = {"a": "你好世界", "b": "你好世间"}
    chinese = scoring.score_asr(refs, hyps, default_language="cmn_hans_cn")["languages"]["cmn_hans_cn"]
    assert (chinese["char_errors"], chinese["ref_chars"]) == (1, 8)  # the comma is not an error
    assert chinese["cer"] == pytest.approx(12.5)
    assert chinese["wer"] is None


def test_per_language_split_pooled_and_missing_hypothesis():
    refs = {"u1": "Hello, World!", "u2": "Das ist gut.", "u3": "你好，世界。", "u4": "missing one"}
    hyps = {"u1": "hello world", "u2": "das ist nicht gut", "u3": "你好世界"}
    utt2lang = {"u1": "en_us", "u2": "de_de", "u3": "cmn_hans_cn", "u4": "en_us"}
    result = scoring.score_asr(refs, hyps, utt2lang)

    english = result["languages"]["en_us"]
    assert english["num_utts"] == 2 and english["num_missing_hyps"] == 1
    assert (english["char_errors"], english["ref_chars"]) == (11, 22)  # "missing one" fully deleted
    assert (english["word_errors"], english["ref_words"]) == (2, 4)
    assert sorted(result["languages"]) == ["cmn_hans_cn", "de_de", "en_us"]
    assert result["missing_hyp_utts"] == ["u4"]

    pooled = result["pooled"]
    assert pooled["num_utts"] == 4
    assert pooled["cer"] == pytest.approx(100 * (11 + 6 + 0) / (22 + 11 + 4))
    # The pooled WER leaves out Chinese, which has no words to count.
    assert pooled["wer"] == pytest.approx(100 * (2 + 1) / (4 + 3))


def test_hypothesis_without_reference_is_an_error():
    with pytest.raises(scoring.ScoringInputError, match="stray"):
        scoring.score_asr({"u1": "a"}, {"u1": "a", "stray": "b"})


def test_read_kaldi_text_values_with_spaces_and_empty(tmp_path):
    path = write(tmp_path / "text", "u1 several words here\nu2\n")
    assert scoring.read_kaldi_text(path) == {"u1": "several words here", "u2": ""}


@pytest.mark.parametrize(
    "content, message",
    [("u1 a\n\nu2 b\n", r"text:2: blank line"), ("u1 a\nu1 b\n", r"text:2: duplicate utterance id 'u1'")],
)
def test_read_kaldi_text_malformed_names_file_and_line(tmp_path, content, message):
    with pytest.raises(scoring.ScoringInputError, match=message):
        scoring.read_kaldi_text(write(tmp_path / "text", content))


# ------------------------------------------------------------------- ST ---

ST_REFS = {"u1": "The cat sat on the mat.", "u2": "It's raining, isn't it?", "u3": "Good morning, Doctor Smith!"}
ST_HYPS = {"u1": "the cat sat on the mat", "u2": "It is raining, isn't it?", "u3": "Good morning, Doctor Smith!"}


def test_bleu_and_chrf_equal_sacrebleu_on_raw_text():
    result = scoring.score_st(ST_REFS, ST_HYPS, utt2target={u: "en_us" for u in ST_REFS})
    hyps, refs = list(ST_HYPS.values()), list(ST_REFS.values())
    english = result["languages"]["en_us"]
    raw_bleu = sacrebleu.corpus_bleu(hyps, [refs], tokenize="13a").score
    assert english["bleu"] == pytest.approx(raw_bleu)
    assert english["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score)
    assert english["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|")
    assert result["pooled"]["bleu"] == pytest.approx(raw_bleu)  # one language: pooled == per-language

    normalize = BasicTextNormalizer()
    normalized_bleu = sacrebleu.corpus_bleu(hyps, [[normalize(r) for r in refs]], tokenize="13a").score
    assert english["bleu"] != pytest.approx(normalized_bleu)


def test_bleu_tokenizer_choice():
    assert scoring.bleu_tokenizer_for("cmn_hans_cn") == "zh"
    assert scoring.bleu_tokenizer_for("yue_hant_hk") == "zh"
    assert scoring.bleu_tokenizer_for("th_th") == "char"
    assert scoring.bleu_tokenizer_for("de_de") == "13a"
    assert scoring.bleu_tokenizer_for("ja_jp") in {"ja-mecab", "char"}  # char when MeCab is not installed


def test_chinese_target_uses_zh_tokenizer_and_pooling_keeps_it():
    refs = {"z1": "我们今天去公园散步。", "z2": "他喜欢读书。", "e1": "We walk in the park today."}
    hyps = {"z1": "我们今天去公园走路。", "z2": "他喜欢看书。", "e1": "We walk in a park today."}
    targets = {"z1": "zh_cn", "z2": "zh_cn", "e1": "en_us"}
    result = scoring.score_st(refs, hyps, targets)

    chinese = result["languages"]["zh_cn"]
    assert chinese["bleu_tokenizer"] == "zh"
    zh_hyps, zh_refs = [hyps["z1"], hyps["z2"]], [refs["z1"], refs["z2"]]
    assert chinese["bleu"] == pytest.approx(sacrebleu.corpus_bleu(zh_hyps, [zh_refs], tokenize="zh").score)

    # Pooled BLEU == BLEU over segments pre-tokenized with their own language's tokenizer.
    tokenizers = {"zh_cn": BLEU(tokenize="zh").tokenizer, "en_us": BLEU(tokenize="13a").tokenizer}
    tokenized_hyps = [tokenizers[targets[u]](hyps[u]) for u in refs]
    tokenized_refs = [tokenizers[targets[u]](refs[u]) for u in refs]
    expected = sacrebleu.corpus_bleu(tokenized_hyps, [tokenized_refs], tokenize="none").score
    assert result["pooled"]["bleu"] == pytest.approx(expected)
    assert result["pooled"]["bleu_tokenizer"] == "13a+zh"


def test_st_rows_are_language_pairs_with_utt2source():
    sources = {"u1": "de_de", "u2": "de_de", "u3": "fr_fr"}
    result = scoring.score_st(ST_REFS, ST_HYPS, {u: "en_us" for u in ST_REFS}, utt2source=sources)
    assert sorted(result["languages"]) == ["de_de->en_us", "fr_fr->en_us"]


# ------------------------------------------------------------------ CLI ---


def test_cli_writes_json_with_metadata(tmp_path, capsys):
    ref = write(tmp_path / "ref", "u1 Hello, World!\nu2 Das ist gut.\nu3 missing one\n")
    hyp = write(tmp_path / "hyp", "u1 hello world\nu2 das ist nicht gut\n")
    utt2lang = write(tmp_path / "utt2lang", "u1 en_us\nu2 de_de\nu3 en_us\n")
    output = tmp_path / "out" / "scores.json"
    argv = ["--task", "asr", "--ref", str(ref), "--hyp", str(hyp), "--utt2lang", str(utt2lang), "--output", str(output)]
    argv += ["--model", "bloomzmms-7b1", "--data", "fleurs test", "--instruction", "Transcribe the audio."]
    assert score_cli.main(argv) == 0

    report = json.loads(output.read_text(encoding="utf-8"))
    assert report["model"] == "bloomzmms-7b1" and report["data"] == "fleurs test"
    assert report["instruction"] == "Transcribe the audio."
    assert report["task"] == "asr" and report["num_missing_hyps"] == 1 and report["missing_hyp_utts"] == ["u3"]
    assert set(report["languages"]) == {"de_de", "en_us"}
    assert {"num_utts", "num_missing_hyps", "cer", "wer", "char_errors", "ref_chars"} <= set(report["pooled"])
    assert report["pooled"]["num_overlong_hyps"] == 0
    table = capsys.readouterr().out
    assert "pooled" in table and "overlong (errors)" in table


def test_cli_st_records_signature(tmp_path):
    ref = write(tmp_path / "ref", "".join(f"{u} {t}\n" for u, t in ST_REFS.items()))
    hyp = write(tmp_path / "hyp", "".join(f"{u} {t}\n" for u, t in ST_HYPS.items()))
    output = tmp_path / "scores.json"
    argv = ["--task", "st", "--ref", str(ref), "--hyp", str(hyp), "--target_lang", "en_us", "--output", str(output)]
    assert score_cli.main(argv) == 0
    report = json.loads(output.read_text(encoding="utf-8"))
    assert "tok:13a" in report["languages"]["en_us"]["bleu_signature"]


def test_cli_errors_name_the_file(tmp_path, capsys):
    good = write(tmp_path / "good", "u1 a\n")
    malformed = write(tmp_path / "malformed", "u1 a\nu2\tb\n\n")
    output = tmp_path / "scores.json"

    def run(ref, hyp):
        return score_cli.main(["--task", "asr", "--ref", str(ref), "--hyp", str(hyp), "--output", str(output)])

    assert run(good, tmp_path / "absent") == 1
    assert f"{tmp_path / 'absent'}: file not found" in capsys.readouterr().err
    assert run(malformed, good) == 1
    assert f"{malformed}:3: blank line" in capsys.readouterr().err
    assert not output.exists()


# ------------------------------------------------------------- semantic ---


@pytest.fixture(scope="module")
def embedding_model(tmp_path_factory):
    return str(build_tiny_embedding_model(tmp_path_factory.mktemp("embedding_model")))


def read_similarities(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    return {utt: float(value) for utt, value in (line.split() for line in lines)}


def test_add_semantic_similarity_means_per_row_and_pooled():
    scores = {"languages": {"de_de": {}, "en_us": {}}, "pooled": {}}
    utt2row = {"a": "en_us", "b": "en_us", "c": "de_de", "d": None}
    scoring.add_semantic_similarity(scores, {"a": 1.0, "b": 0.5, "c": 0.25, "d": 0.0}, utt2row)
    assert scores["languages"]["en_us"]["semantic_similarity"] == pytest.approx(0.75)
    assert scores["languages"]["de_de"]["semantic_similarity"] == pytest.approx(0.25)
    assert scores["pooled"]["semantic_similarity"] == pytest.approx(1.75 / 4)  # "d" has no row: pooled only
    with pytest.raises(scoring.ScoringInputError, match="no semantic similarity for 1 utterances"):
        scoring.add_semantic_similarity(scores, {"a": 1.0, "b": 0.5, "c": 0.25}, utt2row)


def test_cli_asr_semantic_similarity_file_matches_json(tmp_path, embedding_model, capsys):
    ref = write(tmp_path / "ref", "u1 the red cat sees the small dog.\nu2 der rote Hund sieht die kleine Katze.\n"
                                  "u3 women need about forty six grams of protein per day.\nu4 missing one\n")
    hyp = write(tmp_path / "hyp", "u1 the red cat sees the small dog.\nu2 der rote Hund sieht die Katze.\n"
                                  "u3 a pumpkin soup is cooked with onions and cream.\n")
    utt2lang = write(tmp_path / "utt2lang", "u1 en_us\nu2 de_de\nu3 en_us\nu4 en_us\n")
    output = tmp_path / "decode" / "scores.json"
    argv = ["--task", "asr", "--ref", str(ref), "--hyp", str(hyp), "--utt2lang", str(utt2lang), "--output", str(output),
            "--semantic_model", embedding_model, "--semantic_batch_size", "2", "--semantic_device", "cpu"]
    assert score_cli.main(argv) == 0

    report = json.loads(output.read_text(encoding="utf-8"))
    similarities = read_similarities(tmp_path / "decode" / "semantic_similarity.txt")
    assert list(similarities) == ["u1", "u2", "u3", "u4"]
    assert similarities["u1"] == pytest.approx(1.0, abs=1e-5)  # identical text
    assert similarities["u3"] < similarities["u2"] < similarities["u1"]  # unrelated < one word dropped
    assert similarities["u4"] == 0.0  # missing hypothesis: no credit
    assert report["pooled"]["semantic_similarity"] == pytest.approx(sum(similarities.values()) / 4, abs=1e-6)
    english = report["languages"]["en_us"]["semantic_similarity"]
    assert english == pytest.approx((similarities["u1"] + similarities["u3"] + similarities["u4"]) / 3, abs=1e-6)
    assert report["languages"]["de_de"]["semantic_similarity"] == pytest.approx(similarities["u2"], abs=1e-6)
    assert report["languages"]["en_us"]["cer"] is not None  # CER/WER still there
    assert report["semantic"]["model"] == embedding_model
    assert report["semantic"]["instruction"] == "Retrieve semantically similar text."
    assert report["semantic"]["similarities_file"].endswith("semantic_similarity.txt")
    assert "SIM" in capsys.readouterr().out


def test_cli_st_semantic_similarity_and_instruction_matters(tmp_path, embedding_model):
    ref = write(tmp_path / "ref", "".join(f"{u} {t}\n" for u, t in ST_REFS.items()))
    hyp = write(tmp_path / "hyp", "".join(f"{u} {t}\n" for u, t in ST_HYPS.items()))
    base = ["--task", "st", "--ref", str(ref), "--hyp", str(hyp), "--target_lang", "en_us",
            "--semantic_model", embedding_model, "--semantic_device", "cpu"]
    assert score_cli.main(base + ["--output", str(tmp_path / "a" / "scores.json")]) == 0
    assert score_cli.main(base + ["--output", str(tmp_path / "b" / "plain.json"), "--semantic_instruction", ""]) == 0

    report = json.loads((tmp_path / "a" / "scores.json").read_text(encoding="utf-8"))
    english = report["languages"]["en_us"]
    assert {"bleu", "chrf", "semantic_similarity"} <= set(english)
    assert english["semantic_similarity"] == pytest.approx(report["pooled"]["semantic_similarity"])
    assert read_similarities(tmp_path / "a" / "semantic_similarity.txt")["u3"] == pytest.approx(1.0, abs=1e-5)

    plain = json.loads((tmp_path / "b" / "plain.json").read_text(encoding="utf-8"))
    assert plain["semantic"]["instruction"] is None
    assert (tmp_path / "b" / "plain.semantic_similarity.txt").is_file()
    assert plain["pooled"]["semantic_similarity"] != pytest.approx(report["pooled"]["semantic_similarity"], abs=1e-4)


def test_cli_without_semantic_model_has_no_similarity(tmp_path):
    ref = write(tmp_path / "ref", "u1 a b\n")
    output = tmp_path / "scores.json"
    assert score_cli.main(["--task", "asr", "--ref", str(ref), "--hyp", str(ref), "--output", str(output)]) == 0
    report = json.loads(output.read_text(encoding="utf-8"))
    assert report["semantic"] is None and "semantic_similarity" not in report["pooled"]
    assert not (tmp_path / "semantic_similarity.txt").exists()


def test_cli_unloadable_semantic_model_is_a_clear_error(tmp_path, capsys):
    ref = write(tmp_path / "ref", "u1 a b\n")
    output = tmp_path / "scores.json"
    argv = ["--task", "asr", "--ref", str(ref), "--hyp", str(ref), "--output", str(output),
            "--semantic_model", str(tmp_path / "no_such_model")]
    assert score_cli.main(argv) == 1
    assert f"--semantic_model {tmp_path / 'no_such_model'}: cannot load it" in capsys.readouterr().err
    assert not output.exists()
