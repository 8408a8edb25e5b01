"""Tests of bloomzmms.bin.make_results: train.log parsing, RESULTS.md, JSON summary, PNG curves."""

import json

import pytest

from bloomzmms.bin import make_results
from bloomzmms.bin import score as score_cli
from tests.embedding_model import build_tiny_embedding_model

# Lines as espnet2/train/trainer.py logs them (reporter.log_message() at the end of
# each epoch); note the humanfriendly "time=1 hour, 19 minutes and ..." values with
# commas and the resumed run repeating epoch 2.
TRAIN_LOG = """\
# python3 -m espnet2.bin.asr_train --use_preprocessor true --output_dir exp/asr_bloomzmms
[gpu01] 2025-11-20 10:00:00,001 (trainer:336) INFO: 1/3epoch started
[gpu01] 2025-11-20 10:05:00,123 (trainer:300) INFO: 1epoch:train:1-100batch: iter_time=0.010, loss=150.123
[gpu01] 2025-11-20 11:19:54,895 (trainer:394) INFO: 1epoch results: [train] iter_time=0.164, forward_time=0.952, \
loss=480.386, loss_att=191.654, loss_ctc=1.154e+03, acc=1.022e-04, backward_time=0.973, optim_step_time=0.007, \
optim0_lr0=2.080e-06, train_time=2.105, time=1 hour, 19 minutes and 54.41 seconds, total_count=49, \
gpu_max_cached_mem_GB=10.254, [valid] loss=479.955, loss_att=191.637, loss_ctc=1.153e+03, acc=1.030e-04, \
cer_ctc=4.993, time=50.5 seconds, total_count=49, gpu_max_cached_mem_GB=10.254, [att_plot] time=3.2 seconds, \
total_count=0
[gpu01] 2025-11-20 11:19:56,067 (trainer:451) INFO: The best model has been updated: valid.acc
[gpu01] 2025-11-20 12:30:00,000 (trainer:394) INFO: 2epoch results: [train] loss=300.500, acc=0.200, \
time=1 hour and 10 minutes, total_count=98, [valid] loss=310.250, acc=0.150, cer_ctc=0.900, time=49 seconds, \
total_count=98
[gpu01] 2025-11-20 13:00:00,000 (trainer:177) INFO: The training was resumed using exp/asr_bloomzmms/checkpoint.pth
[gpu01] 2025-11-20 14:10:00,000 (trainer:394) INFO: 2epoch results: [train] loss=290.000, acc=0.250, \
time=1 hour and 10 minutes, total_count=98, [valid] loss=300.000, acc=0.180, cer_ctc=0.850, time=49 seconds, \
total_count=98
[gpu01] 2025-11-20 14:10:01,000 (trainer:534) INFO: The training was finished at 2 epochs
"""


def test_parse_train_log(tmp_path):
    log_path = tmp_path / "train.log"
    log_path.write_text(TRAIN_LOG, encoding="utf-8")
    epochs = make_results.parse_train_log(log_path)

    assert sorted(epochs) == [1, 2]
    first = epochs[1]
    assert first["train"]["loss"] == pytest.approx(480.386)
    assert first["train"]["loss_ctc"] == pytest.approx(1154.0)
    assert first["train"]["total_count"] == 49  # right after the comma-laden time= value
    assert "time" not in first["train"] and "time" not in first["valid"]
    assert first["valid"]["cer_ctc"] == pytest.approx(4.993)
    assert first["valid"]["gpu_max_cached_mem_GB"] == pytest.approx(10.254)
    assert first["att_plot"] == {"total_count": 0}
    assert epochs[2]["valid"]["acc"] == pytest.approx(0.18)  # the resumed run's line wins


def run_score(tmp_path, task, refs, hyps, output, *extra):
    ref = tmp_path / f"{task}_ref"
    hyp = tmp_path / f"{task}_hyp"
    ref.write_text("".join(f"{u} {t}\n" for u, t in refs.items()), encoding="utf-8")
    hyp.write_text("".join(f"{u} {t}\n" for u, t in hyps.items()), encoding="utf-8")
    argv = ["--task", task, "--ref", str(ref), "--hyp", str(hyp), "--output", str(output), *extra]
    assert score_cli.main(argv) == 0


@pytest.fixture
def exp_tree(tmp_path):
    exp = tmp_path / "exp"
    utt2lang = tmp_path / "utt2lang"
    utt2lang.write_text("u1 en_us\nu2 de_de\nu3 cmn_hans_cn\nu4 en_us\n", encoding="utf-8")
    run_score(
        tmp_path,
        "asr",
        {"u1": "Hello, World!", "u2": "Das ist gut.", "u3": "你好，世界。", "u4": "missing one"},
        {"u1": "hello world", "u2": "das ist nicht gut", "u3": "你好世界"},
        exp / "asr_bloomzmms" / "decode_asr" / "test" / "scores.json",
        "--utt2lang", str(utt2lang), "--model", "BLOOMZMMS-7b1", "--data", "fleurs_test",
        "--instruction", "Repeat the sentence.",
    )
    run_score(
        tmp_path,
        "st",
        {"s1": "The cat sat on the mat.", "s2": "Good morning!"},
        {"s1": "The cat sat on a mat.", "s2": "Good morning!"},
        exp / "asr_bloomzmms" / "decode_st" / "test_st" / "scores.json",
        "--target_lang", "en_us", "--model", "BLOOMZMMS-7b1", "--instruction", "Translate into English.",
    )
    (exp / "asr_bloomzmms" / "train.log").write_text(TRAIN_LOG, encoding="utf-8")
    return tmp_path


def test_make_results_writes_markdown_json_and_png(exp_tree):
    output, summary, plots_dir = exp_tree / "RESULTS.md", exp_tree / "results.json", exp_tree / "exp" / "plots"
    argv = ["--exp_dir", str(exp_tree / "exp"), "--output", str(output), "--json", str(summary)]
    assert make_results.main(argv + ["--plots_dir", str(plots_dir)]) == 0

    markdown = output.read_text(encoding="utf-8")
    assert "BasicTextNormalizer" in markdown and "raw" in markdown
    assert "### Test set: fleurs_test" in markdown and "### Test set: test_st" in markdown  # data, else dir name
    assert "- model: BLOOMZMMS-7b1" in markdown
    assert "- instruction: Repeat the sentence." in markdown and "- instruction: Translate into English." in markdown
    assert "| cmn_hans_cn | 1 | 0 | 0.00 | n/a |" in markdown
    assert "| de_de | 1 | 0 | 54.55 | 33.33 |" in markdown
    assert "| en_us | 2 | 1 | 50.00 | 50.00 |" in markdown
    assert "| **pooled** | 4 | 1 | 45.95 | 42.86 |" in markdown
    assert "| en_us | 2 | 0 |" in markdown and "`13a` |" in markdown
    assert "![training curves of asr_bloomzmms](exp/plots/asr_bloomzmms.png)" in markdown

    records = json.loads(summary.read_text(encoding="utf-8"))
    assert len(records) == 4 + 2  # ASR: 3 languages + pooled; ST: 1 language + pooled
    pooled_asr = next(r for r in records if r["task"] == "asr" and r["language"] == "pooled")
    assert pooled_asr["cer"] == pytest.approx(100 * 17 / 37)
    assert pooled_asr["model"] == "BLOOMZMMS-7b1" and pooled_asr["test_set"] == "fleurs_test"

    png = (plots_dir / "asr_bloomzmms.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 1000


def test_overlong_hypotheses_column(tmp_path):
    """A looping hypothesis shows up with its share of the errors; a report without the count says n/a."""
    exp = tmp_path / "exp"
    run_score(
        tmp_path, "asr", {"u1": "the red cat", "u2": "a dog"}, {"u1": "the red cat", "u2": "a dog dog dog dog dog"},
        exp / "asr_loop" / "decode_asr" / "test" / "scores.json", "--target_lang", "en_us",
    )
    old_report = exp / "asr_old" / "decode_asr" / "test" / "scores.json"
    report = json.loads((exp / "asr_loop" / "decode_asr" / "test" / "scores.json").read_text(encoding="utf-8"))
    for figures in [*report["languages"].values(), report["pooled"]]:
        del figures["num_overlong_hyps"], figures["overlong_char_errors"]
    old_report.parent.mkdir(parents=True)
    old_report.write_text(json.dumps(report), encoding="utf-8")
    output = tmp_path / "RESULTS.md"
    argv = ["--exp_dir", str(exp), "--output", str(output), "--plots_dir", str(tmp_path / "plots")]
    assert make_results.main(argv) == 0

    markdown = output.read_text(encoding="utf-8")
    assert "| language | utts | missing hyps | CER | WER | overlong (errors) |" in markdown
    assert "| en_us | 2 | 0 | 100.00 | 80.00 | 1 (100%) |" in markdown  # "a dog" + 16 inserted characters
    assert "| en_us | 2 | 0 | 100.00 | 80.00 | n/a |" in markdown
    assert "Overlong (errors): hypotheses more than 2 times as long" in markdown


def test_make_results_rejects_foreign_scores_json(tmp_path, capsys):
    (tmp_path / "exp" / "x").mkdir(parents=True)
    (tmp_path / "exp" / "x" / "scores.json").write_text('{"bleu": 1}', encoding="utf-8")
    assert make_results.main(["--exp_dir", str(tmp_path / "exp"), "--output", str(tmp_path / "RESULTS.md")]) == 1
    assert "scores.json: not written by bloomzmms.bin.score" in capsys.readouterr().err


def test_similarity_column_only_where_scored(tmp_path, exp_tree):
    output = exp_tree / "RESULTS.md"
    argv = ["--exp_dir", str(exp_tree / "exp"), "--output", str(output), "--plots_dir", str(tmp_path / "plots")]
    assert make_results.main(argv) == 0
    assert "Sim." not in output.read_text(encoding="utf-8")  # nothing scored with an embedding model


def test_similarity_column_next_to_bleu_and_cer(tmp_path, exp_tree):
    model_dir = str(build_tiny_embedding_model(tmp_path / "embedding_model"))
    semantic = ["--semantic_model", model_dir, "--semantic_device", "cpu"]
    run_score(
        tmp_path, "st",
        {"s1": "The cat sat on the mat.", "s2": "Good morning!"}, {"s1": "Good morning!", "s2": "Good morning!"},
        exp_tree / "exp" / "asr_semantic" / "decode_st" / "test_st" / "scores.json",
        "--target_lang", "en_us", "--model", "with-sim", *semantic,
    )
    run_score(
        tmp_path, "asr", {"u1": "the red cat"}, {"u1": "the red cat"},
        exp_tree / "exp" / "asr_semantic" / "decode_asr" / "test" / "scores.json",
        "--target_lang", "en_us", "--model", "with-sim", "--data", "fleurs_test", *semantic,
    )
    output, summary = exp_tree / "RESULTS.md", exp_tree / "results.json"
    argv = ["--exp_dir", str(exp_tree / "exp"), "--output", str(output), "--json", str(summary),
            "--plots_dir", str(tmp_path / "plots")]
    assert make_results.main(argv) == 0

    markdown = output.read_text(encoding="utf-8")
    assert "| language | utts | missing hyps | CER | WER | overlong (errors) | Sim. |" in markdown
    assert "| language (pair) | utts | missing hyps | BLEU | chrF | Sim. | BLEU tokenizer |" in markdown
    assert "| en_us | 1 | 0 | 0.00 | 0.00 | 0 (-) | 1.000 |" in markdown
    assert "| **pooled** | 4 | 1 | 45.95 | 42.86 | 0 (0%) | n/a |" in markdown  # the report scored without a model
    assert f"- semantic similarity: `{model_dir}`, instruction: Retrieve semantically similar text." in markdown
    assert "Sim.: mean cosine similarity" in markdown

    records = json.loads(summary.read_text(encoding="utf-8"))
    scored = [r for r in records if r["model"] == "with-sim"]
    assert len(scored) == 4 and all(r["semantic_model"] == model_dir for r in scored)
    st_pooled = next(r for r in scored if r["task"] == "st" and r["language"] == "pooled")
    similarities = (exp_tree / "exp" / "asr_semantic" / "decode_st" / "test_st" / "semantic_similarity.txt").read_text()
    s1, s2 = (float(line.split()[1]) for line in similarities.splitlines())
    assert s2 == pytest.approx(1.0, abs=1e-5) and s1 < s2
    assert st_pooled["semantic_similarity"] == pytest.approx((s1 + s2) / 2, abs=1e-6)
    assert all("semantic_similarity" not in r for r in records if r["model"] != "with-sim")
