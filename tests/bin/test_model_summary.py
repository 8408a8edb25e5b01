"""The paper configs (real ESPnet parser) and bloomzmms.bin.model_summary (offline, meta device)."""

import json
from pathlib import Path

import pytest
import yaml

from bloomzmms.bin import model_summary
from bloomzmms.tasks.asr import BloomzmmsASRTask
from tests.asr.helpers import LANGUAGES, build_tiny_model, tiny_config

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURES = ROOT / "conf" / "architectures"
CONFIGS = {
    stage: ROOT / "conf" / "tuning" / f"train_asr_e_branchformer_mms1b-asr_bloomz7b_{stage}.yaml"
    for stage in ("ctc", "aed")
}
BLOOMZ_7B1 = 7_069_016_064
BLOOM_TOKENS = 250_680
TRAINABLE = {
    "frontend: layer weights",
    "preencoder",
    "encoder: LID head",
    "encoder: LID conditioning",
    "encoder: E-Branchformer",
    "adaptor",
}
FROZEN = {"frontend: speech encoder", "CTC head (LLM embedding slice)", "decoder: LLM"}


def no_download(*args, **kwargs):
    raise AssertionError(f"model_summary tried to download: {args} {kwargs}")


@pytest.fixture(scope="module")
def paper_summaries(tmp_path_factory):
    """Both paper configs summarized through the command line, with downloads made to fail."""
    out = tmp_path_factory.mktemp("summary")
    results = {}
    with pytest.MonkeyPatch.context() as patch:
        import huggingface_hub
        import transformers.utils.hub

        for module in (huggingface_hub, transformers.utils.hub):
            for name in ("hf_hub_download", "snapshot_download"):
                if hasattr(module, name):
                    patch.setattr(module, name, no_download)
        for stage, config in CONFIGS.items():
            summary = model_summary.main([
                str(config),
                "--architectures", str(ARCHITECTURES),
                "--num_languages", "139",
                "--output_json", str(out / f"{stage}.json"),
            ])
            results[stage] = (summary, json.loads((out / f"{stage}.json").read_text()))
    return results


def rows(summary) -> dict:
    return {row["component"]: row for row in summary["components"]}


@pytest.mark.parametrize("stage", ["ctc", "aed"])
def test_paper_config_parses_with_the_real_parser(tmp_path, stage):
    (tmp_path / "tokens.txt").write_text("<unk>\n<s>\n</s>\n<pad>\n")
    (tmp_path / "langs.txt").write_text("en_us\n")
    args = BloomzmmsASRTask.get_parser().parse_args([
        "--config", str(CONFIGS[stage]),
        "--token_list", str(tmp_path / "tokens.txt"),
        "--language_list", str(tmp_path / "langs.txt"),
    ])
    assert args.frontend == "hf_speech_encoder"
    assert args.frontend_conf == {"model_name_or_path": "facebook/mms-1b-all", "freeze": True}
    assert args.normalize == "utterance_mvn"
    assert args.preencoder_conf == {"input_size": 1280, "output_size": 128}
    assert args.encoder == "e_branchformer_lid"
    assert args.encoder_conf["output_size"] == 1024 and args.encoder_conf["num_blocks"] == 17
    assert args.encoder_conf["lid_layer"] == 3 and args.encoder_conf["layer_drop_rate"] == 0.1
    assert args.postencoder_conf == {"num_layers": 1, "output_size": 4096}
    assert (args.token_type, args.bpemodel) == ("hugging_face", "bigscience/bloomz-7b1")
    assert args.optim == "adam" and args.optim_conf == {"lr": 1e-4, "weight_decay": 1e-6}
    assert args.scheduler == "warmuplr" and args.batch_type == "length"
    assert (args.max_epoch, args.patience, args.unused_parameters, args.num_att_plot) == (70, 3, True, 0)
    if stage == "ctc":
        assert args.model_conf == {"ctc_weight": 0.8, "lid_weight": 0.2, "llm_weight": 0.0,
                                   "extract_feats_in_collect_stats": False}
        assert args.llm_ctc_conf == {"llm_name_or_path": "bigscience/bloomz-7b1", "blank_id": 3}
        assert args.decoder is None
        assert args.scheduler_conf == {"warmup_steps": 25000}
        assert (args.batch_bins, args.accum_grad, args.num_iters_per_epoch) == (7_000_000, 1, 23364)
        assert (args.best_model_criterion, args.keep_nbest_models) == ([["valid", "cer_ctc", "min"]], 1)
    else:
        assert args.model_conf == {"ctc_weight": 0.0, "lid_weight": 0.0, "llm_weight": 1.0,
                                   "extract_feats_in_collect_stats": False}
        assert args.decoder == "hf_causal_lm"
        assert args.decoder_conf == {
            "model_name_or_path": "bigscience/bloomz-7b1",
            "dtype": "bfloat16",
            "quantization": "8bit",
            "instruction_prefix": "Repeat the sentence: ",
            "instruction_postfix": ". ",
        }
        assert args.scheduler_conf == {"warmup_steps": 10000}
        assert (args.batch_bins, args.accum_grad, args.num_iters_per_epoch) == (600_000, 2, 54381)
        assert (args.best_model_criterion, args.keep_nbest_models) == ([["valid", "acc", "max"]], 3)


def test_architecture_facts():
    bloomz = json.loads((ARCHITECTURES / "bigscience--bloomz-7b1" / "config.json").read_text())
    assert bloomz["architectures"] == ["BloomForCausalLM"]
    assert (bloomz["vocab_size"], bloomz["hidden_size"], bloomz["n_layer"], bloomz["n_head"]) == (250880, 4096, 30, 32)
    assert model_summary.tokenizer_size(str(ARCHITECTURES / "bigscience--bloomz-7b1")) == BLOOM_TOKENS
    mms = json.loads((ARCHITECTURES / "facebook--mms-1b-all" / "config.json").read_text())
    assert mms["architectures"] == ["Wav2Vec2ForCTC"]
    assert (mms["hidden_size"], mms["num_hidden_layers"], mms["num_attention_heads"]) == (1280, 48, 16)
    assert (mms["intermediate_size"], mms["conv_dim"], mms["adapter_attn_dim"]) == (5120, [512] * 7, 16)
    assert mms["do_stable_layer_norm"] is True and mms["feat_extract_norm"] == "layer"


def test_offline_config_rewrites_every_hub_name():
    config = yaml.safe_load(CONFIGS["aed"].read_text())
    config["llm_ctc_conf"] = {"llm_name_or_path": "bigscience/bloomz-7b1"}
    offline, quantization = model_summary.offline_config(config, ARCHITECTURES)
    bloomz = str(ARCHITECTURES / "bigscience--bloomz-7b1")
    assert offline["frontend_conf"]["model_name_or_path"] == str(ARCHITECTURES / "facebook--mms-1b-all")
    assert offline["decoder_conf"]["model_name_or_path"] == bloomz
    assert offline["llm_ctc_conf"]["llm_name_or_path"] == bloomz
    assert offline["bpemodel"] == bloomz
    for section in ("frontend_conf", "decoder_conf", "llm_ctc_conf"):
        assert offline[section]["load_weights"] is False
    assert offline["decoder_conf"]["quantization"] is None and quantization == {"decoder": "8bit"}
    assert config["decoder_conf"]["quantization"] == "8bit"  # the input is left alone
    with pytest.raises(FileNotFoundError, match="unknown--model"):
        model_summary.resolve_architecture("unknown/model", ARCHITECTURES)


@pytest.mark.parametrize("stage", ["ctc", "aed"])
def test_paper_model_counts(paper_summaries, stage):
    summary, from_json = paper_summaries[stage]
    by_name = rows(summary)
    assert by_name["encoder: E-Branchformer"]["parameters"] == pytest.approx(527.3e6, rel=1e-3)
    assert by_name["adaptor"]["parameters"] == 2 * 1024 * 1024 + 1024 + 1024 * 4096 + 4096  # ~6.3 M
    assert by_name["preencoder"]["parameters"] == 1280 * 128 + 128
    assert by_name["frontend: layer weights"]["parameters"] == 49  # embeddings + 48 layers
    assert by_name["frontend: speech encoder"]["parameters"] == pytest.approx(0.965e9, rel=1e-3)
    if stage == "ctc":
        assert "decoder: LLM" not in by_name
        assert by_name["CTC head (LLM embedding slice)"]["parameters"] == BLOOM_TOKENS * 4096
    else:
        assert "CTC head (LLM embedding slice)" not in by_name
        llm = by_name["decoder: LLM"]
        assert llm["parameters"] == BLOOMZ_7B1
        assert llm["dtype"] == "bf16+int8"
        # LLM.int8: ~1 byte per Linear weight, bf16 embeddings/norms/biases: ~8.1 GB per GPU.
        assert 8.0e9 < llm["bytes_as_built"] < 8.2e9
        assert llm["bytes"]["bf16"] == 2 * BLOOMZ_7B1
    for name, row in by_name.items():
        assert name in TRAINABLE | FROZEN, name
        if name in TRAINABLE:
            assert (row["trainable"], row["frozen"]) == (row["parameters"], 0), name
        else:
            assert (row["trainable"], row["frozen"]) == (0, row["parameters"]), name
    total = summary["total"]
    assert total["trainable"] == sum(by_name[name]["parameters"] for name in TRAINABLE)
    assert total["trainable"] == pytest.approx(0.534e9, rel=1e-3)
    assert total["parameters"] == total["trainable"] + total["frozen"]
    assert from_json["total"] == json.loads(json.dumps(total))
    assert (from_json["tokens"], from_json["languages"]) == (BLOOM_TOKENS, 139)


def real_weight_counts(model) -> dict:
    """Independent counts of a model built with its weights."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    if model.ctc is not None:
        frozen += model.ctc.embedding_matrix.numel()
    if model.decoder is not None:
        frozen += sum(p.numel() for p in model.decoder.llm.parameters())
    return {"trainable": trainable, "frozen": frozen, "parameters": trainable + frozen}


@pytest.mark.parametrize("stage", ["ctc", "llm"])
def test_tiny_model_counts_equal_the_real_model(tmp_path, tiny_models, stage):
    real, _ = build_tiny_model(tmp_path / "real", tiny_models, stage)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(tiny_config(tiny_models, stage)))
    (tmp_path / "langs.txt").write_text("\n".join(LANGUAGES) + "\n")
    meta, info = model_summary.build_meta_model(
        str(config_path), ARCHITECTURES, language_list=str(tmp_path / "langs.txt")
    )
    assert all(weight.is_meta for _, weight, _ in model_summary.named_weights(meta))
    summary = model_summary.summarize(meta, info["quantization"])
    expected = real_weight_counts(real)
    for key in ("parameters", "trainable", "frozen"):
        assert summary["total"][key] == expected[key], key
    by_name = rows(summary)
    assert by_name["frontend: speech encoder"]["parameters"] == sum(
        p.numel() for p in real.frontend.encoder.parameters()
    )
    assert by_name["adaptor"]["parameters"] == sum(p.numel() for p in real.adaptor.parameters())
    if stage == "ctc":
        assert by_name["CTC head (LLM embedding slice)"]["parameters"] == real.ctc.embedding_matrix.numel()
    else:
        assert by_name["decoder: LLM"]["parameters"] == sum(p.numel() for p in real.decoder.llm.parameters())
    assert rows(model_summary.summarize(real)) == by_name
