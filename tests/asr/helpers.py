"""Build tiny BLOOMZMMS models through the task's real argument parsing and build_model."""

import yaml

from bloomzmms.tasks.asr import BloomzmmsASRTask

LANGUAGES = ["de_de", "en_us", "fr_fr"]


def tiny_config(tiny_models, stage: str, llm: str = "bloom") -> dict:
    """The paper configs' structure at toy size: stage 'ctc' or 'llm'."""
    config = {
        "frontend": "hf_speech_encoder",
        "frontend_conf": {"model_name_or_path": tiny_models["speech_encoder"]},
        "normalize": "utterance_mvn",
        "preencoder": "linear",
        "preencoder_conf": {"input_size": 32, "output_size": 16},
        "encoder": "e_branchformer_lid",
        "encoder_conf": {
            "output_size": 32, "attention_heads": 2, "cgmlp_linear_units": 64, "cgmlp_conv_kernel": 3,
            "linear_units": 64, "num_blocks": 3, "lid_layer": 1, "input_layer": "conv1d2",
            "use_ffn": True, "macaron_ffn": True, "merge_conv_kernel": 3, "layer_drop_rate": 0.0,
            "dropout_rate": 0.0, "positional_dropout_rate": 0.0,
        },
        "postencoder": "conv_adaptor",
        "postencoder_conf": {"output_size": 32, "num_layers": 1},
        "bpemodel": tiny_models[llm],
    }
    if stage == "ctc":
        config["model_conf"] = {"ctc_weight": 0.8, "lid_weight": 0.2, "llm_weight": 0.0}
        config["llm_ctc_conf"] = {"llm_name_or_path": tiny_models[llm]}
    else:
        config["model_conf"] = {"ctc_weight": 0.0, "lid_weight": 0.0, "llm_weight": 1.0}
        config["decoder"] = "hf_causal_lm"
        config["decoder_conf"] = {"model_name_or_path": tiny_models[llm]}
    return config


def build_args(tmp_path, config: dict, token_list_size: int):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "tokens.txt").write_text("".join(f"tok{i}\n" for i in range(token_list_size)))
    (tmp_path / "langs.txt").write_text("\n".join(LANGUAGES) + "\n")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    parser = BloomzmmsASRTask.get_parser()
    return parser.parse_args([
        "--config", str(tmp_path / "config.yaml"),
        "--token_list", str(tmp_path / "tokens.txt"),
        "--language_list", str(tmp_path / "langs.txt"),
        "--output_dir", str(tmp_path / "exp"),
    ])


def build_tiny_model(tmp_path, tiny_models, stage: str, llm: str = "bloom"):
    from transformers import AutoTokenizer

    token_list_size = len(AutoTokenizer.from_pretrained(tiny_models[llm]))
    args = build_args(tmp_path, tiny_config(tiny_models, stage, llm), token_list_size)
    return BloomzmmsASRTask.build_model(args), args
