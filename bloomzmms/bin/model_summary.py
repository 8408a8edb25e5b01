"""Parameter counts and weight memory of a BLOOMZMMS training config, without any weights.

The model is built by the task's own ``build_model`` from the config as the ESPnet parser reads
it, on PyTorch's meta device: shapes and dtypes only, nothing is downloaded or allocated. Every
hub name in the config (frontend_conf.model_name_or_path, decoder_conf.model_name_or_path,
llm_ctc_conf.llm_name_or_path, bpemodel) is replaced by the directory
``<architectures>/<org>--<name>`` holding that model's ``config.json`` (a local directory is kept
as it is), and its component is built with ``load_weights: false``. The token list is synthetic,
of the tokenizer's size (``tokenizer_size`` file next to the config, or the tokenizer itself).

The frozen LLM of the decoder lives outside the module tree and the CTC head's matrix is a
non-persistent buffer: both are counted here explicitly. Quantization is switched off to build
the LLM; its 8-bit (or 4-bit) storage is then computed from the layers bitsandbytes replaces.

Usage:
    python -m bloomzmms.bin.model_summary conf/tuning/train_asr_e_branchformer_mms1b-asr_bloomz7b_aed.yaml
    python -m bloomzmms.bin.model_summary CONFIG --architectures conf/architectures \\
        [--language_list data/lang_list | --num_languages 139] [--output_json summary.json]
"""

import argparse
import copy
import json
import logging
import math
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
import yaml

PAPER_NUM_LANGUAGES = 139
GIB = 1024**3
BYTES_PER_PARAMETER = {"fp32": 4, "bf16": 2, "int8": 1}
DTYPE_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16", torch.int8: "int8"}
# (config section, key) of every component that reads a pretrained model by hub name.
HUB_NAME_KEYS = (
    ("frontend_conf", "model_name_or_path"),
    ("decoder_conf", "model_name_or_path"),
    ("llm_ctc_conf", "llm_name_or_path"),
)
# Rows of the table: parameter-name prefix -> component, first match wins.
COMPONENTS = (
    ("frontend.encoder.", "frontend: speech encoder"),
    ("frontend.", "frontend: layer weights"),
    ("specaug.", "specaug"),
    ("normalize.", "normalize"),
    ("preencoder.", "preencoder"),
    ("encoder.lid_ctc.", "encoder: LID head"),
    ("encoder.conditioning_layer.", "encoder: LID conditioning"),
    ("encoder.", "encoder: E-Branchformer"),
    ("adaptor.", "adaptor"),
    ("ctc.", "CTC head (LLM embedding slice)"),
    ("decoder.", "decoder: LLM"),
    ("", "other"),
)


def default_architectures_dir() -> Path:
    """``conf/architectures`` of the current directory (a recipe), else of this repository."""
    local = Path("conf/architectures")
    if local.is_dir():
        return local
    return Path(__file__).resolve().parents[2] / "conf" / "architectures"


def resolve_architecture(name: str, architectures: Path) -> str:
    """A local directory stays; a hub name ``org/name`` becomes ``<architectures>/org--name``."""
    if Path(name).is_dir():
        return name
    candidate = architectures / name.replace("/", "--")
    if (candidate / "config.json").is_file():
        return str(candidate)
    raise FileNotFoundError(
        f"{name} is neither a local directory nor described in {architectures}: "
        f"add its config.json as {candidate}/config.json"
    )


def offline_config(config: dict, architectures: Path) -> Tuple[dict, Dict[str, Optional[str]]]:
    """The config with local architecture directories, ``load_weights: false`` and no quantization.

    Returns the new config and the quantization the decoder was configured with (None if none).
    """
    config = copy.deepcopy(config)
    for section, key in HUB_NAME_KEYS:
        conf = config.get(section)
        if not conf or key not in conf:
            continue
        conf[key] = resolve_architecture(conf[key], architectures)
        conf["load_weights"] = False
    decoder_conf = config.get("decoder_conf") or {}
    quantization = {"decoder": decoder_conf.get("quantization")}
    if "quantization" in decoder_conf:
        decoder_conf["quantization"] = None
    if config.get("bpemodel"):
        config["bpemodel"] = resolve_architecture(config["bpemodel"], architectures)
    return config, quantization


def tokenizer_size(directory: str) -> int:
    """Number of tokens of the tokenizer described in ``directory`` (the token list's size)."""
    path = Path(directory)
    if (path / "tokenizer_size").is_file():
        return int((path / "tokenizer_size").read_text().split()[0])
    if any((path / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json")):
        from transformers import AutoTokenizer

        return len(AutoTokenizer.from_pretrained(directory))
    from transformers import AutoConfig

    size = AutoConfig.from_pretrained(directory).vocab_size
    logging.warning(f"{directory}: no tokenizer_size file nor tokenizer, using vocab_size {size}")
    return size


def token_list_source(config: dict) -> Optional[str]:
    for value in (
        config.get("bpemodel"),
        (config.get("llm_ctc_conf") or {}).get("llm_name_or_path"),
        (config.get("decoder_conf") or {}).get("model_name_or_path"),
    ):
        if value:
            return value
    return None


def build_meta_model(
    config_path: str,
    architectures: Optional[Path] = None,
    language_list: Optional[str] = None,
    num_languages: int = PAPER_NUM_LANGUAGES,
):
    """The model of a training config on the meta device, through the real parser and build_model.

    Returns (model, info) where info holds the token/language counts and configured quantization.
    """
    from bloomzmms.tasks.asr import BloomzmmsASRTask, read_list

    architectures = Path(architectures) if architectures is not None else default_architectures_dir()
    with open(config_path, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    config, quantization = offline_config(config, architectures)
    source = token_list_source(config)
    if source is None:
        raise ValueError(f"{config_path}: no bpemodel or LLM to size the token list from")
    num_tokens = tokenizer_size(source)
    languages = read_list(language_list) if language_list else [f"lang{i}" for i in range(num_languages)]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        (tmp / "tokens.txt").write_text("".join(f"<token{i}>\n" for i in range(num_tokens)))
        (tmp / "languages.txt").write_text("".join(f"{language}\n" for language in languages))
        parser = BloomzmmsASRTask.get_parser()
        args = parser.parse_args([
            "--config", str(tmp / "config.yaml"),
            "--token_list", str(tmp / "tokens.txt"),
            "--language_list", str(tmp / "languages.txt"),
        ])
        with torch.device("meta"):
            model = BloomzmmsASRTask.build_model(args)
    # A few small parameters made by the legacy torch.Tensor(...) constructor (ESPnet's relative
    # position biases, wav2vec2's mask embedding) ignore the default device: move them too.
    model.to(device="meta")
    info = {
        "config": str(config_path),
        "architectures": str(architectures),
        "tokens": num_tokens,
        "languages": len(languages),
        "quantization": quantization["decoder"],
    }
    return model, info


def _llm_quantized_linear_weights(llm: torch.nn.Module) -> List[torch.nn.Parameter]:
    """The weights bitsandbytes stores quantized: every Linear but the output (embedding) layer."""
    output = llm.get_output_embeddings()
    return [
        module.weight
        for module in llm.modules()
        if type(module) is torch.nn.Linear and module is not output
    ]


def _quantized_bytes(tensor: torch.Tensor, quantization: str) -> int:
    """Storage of a bitsandbytes Linear weight: int8 + a float32 scale per output row (LLM.int8),
    or 4 bits + a float32 absmax per block of 64 (NF4/FP4, without double quantization)."""
    if quantization == "8bit":
        return tensor.numel() + tensor.size(0) * 4
    return math.ceil(tensor.numel() / 2) + math.ceil(tensor.numel() / 64) * 4


def named_weights(model: torch.nn.Module):
    """(name, tensor, trainable) of every weight: parameters, the CTC head's embedding matrix
    (a non-persistent buffer) and the decoder's LLM (outside the module tree), each tensor once."""
    seen = set()
    for name, parameter in model.named_parameters():
        seen.add(id(parameter))
        yield name, parameter, parameter.requires_grad
    ctc = getattr(model, "ctc", None)
    if ctc is not None and getattr(ctc, "embedding_matrix", None) is not None:
        yield "ctc.embedding_matrix", ctc.embedding_matrix, False
    decoder = getattr(model, "decoder", None)
    llm = getattr(decoder, "llm", None) if decoder is not None else None
    if llm is not None:
        for name, parameter in llm.named_parameters():
            if id(parameter) not in seen:
                seen.add(id(parameter))
                yield f"decoder.llm.{name}", parameter, parameter.requires_grad


def component_of(name: str) -> str:
    for prefix, component in COMPONENTS:
        if name.startswith(prefix):
            return component
    return "other"


def summarize(model: torch.nn.Module, quantization: Optional[str] = None) -> dict:
    """Parameter counts per component (trainable/frozen) and weight memory by dtype.

    ``quantization`` is the decoder LLM's configured storage ("8bit"/"4bit"/None); the model
    itself must have been built without it.
    """
    quantized = set()
    decoder = getattr(model, "decoder", None)
    if quantization is not None and getattr(decoder, "llm", None) is not None:
        quantized = {id(weight) for weight in _llm_quantized_linear_weights(decoder.llm)}
    rows: Dict[str, dict] = {}
    for _, component in COMPONENTS:
        rows[component] = {
            "component": component,
            "parameters": 0,
            "trainable": 0,
            "frozen": 0,
            "dtypes": set(),
            "bytes_as_built": 0,
        }
    for name, tensor, trainable in named_weights(model):
        row = rows[component_of(name)]
        count = tensor.numel()
        row["parameters"] += count
        row["trainable" if trainable else "frozen"] += count
        if id(tensor) in quantized:
            row["dtypes"].add("int8" if quantization == "8bit" else "nf4")
            row["bytes_as_built"] += _quantized_bytes(tensor, quantization)
        else:
            row["dtypes"].add(DTYPE_NAMES.get(tensor.dtype, str(tensor.dtype)))
            row["bytes_as_built"] += count * tensor.element_size()
    components = []
    for row in rows.values():
        if row["parameters"] == 0:
            continue
        row["dtype"] = "+".join(sorted(row.pop("dtypes")))
        row["bytes"] = {name: row["parameters"] * size for name, size in BYTES_PER_PARAMETER.items()}
        components.append(row)
    total = {
        key: sum(row[key] for row in components)
        for key in ("parameters", "trainable", "frozen", "bytes_as_built")
    }
    total["bytes"] = {name: total["parameters"] * size for name, size in BYTES_PER_PARAMETER.items()}
    return {
        "components": components,
        "total": total,
        "bytes_per_parameter": BYTES_PER_PARAMETER,
        "quantization": quantization,
    }


def _count(value: int) -> str:
    if value >= 10**9:
        return f"{value / 1e9:.2f} B"
    if value >= 10**6:
        return f"{value / 1e6:.1f} M"
    if value >= 10**3:
        return f"{value / 1e3:.1f} k"
    return str(value)


def _gib(value: float) -> str:
    return f"{value / GIB:.3f}"


def format_table(summary: dict, info: Optional[dict] = None) -> str:
    header = (
        f"{'component':<32} {'parameters':>15} {'':>8} {'trainable':>13} {'frozen':>15}"
        f" {'stored as':>10} {'GiB stored':>10} {'GiB fp32':>9} {'GiB bf16':>9} {'GiB int8':>9}"
    )
    lines = []
    if info is not None:
        lines.append(f"Model summary of {info['config']}")
        lines.append(
            f"(architectures from {info['architectures']}; {info['tokens']:,} tokens, "
            f"{info['languages']} languages; built on the meta device, no weights loaded)"
        )
        lines.append("")
    lines += [header, "-" * len(header)]

    def line(name, row, dtype):
        return (
            f"{name:<32} {row['parameters']:>15,} {_count(row['parameters']):>8} "
            f"{row['trainable']:>13,} {row['frozen']:>15,} {dtype:>10} {_gib(row['bytes_as_built']):>10} "
            f"{_gib(row['bytes']['fp32']):>9} {_gib(row['bytes']['bf16']):>9} {_gib(row['bytes']['int8']):>9}"
        )

    for row in summary["components"]:
        lines.append(line(row["component"], row, row["dtype"]))
    lines.append("-" * len(header))
    total = summary["total"]
    lines.append(line("total", total, ""))
    lines.append(f"{'trainable total':<32} {total['trainable']:>15,} {_count(total['trainable']):>8}")
    lines.append(f"{'frozen total':<32} {total['frozen']:>15,} {_count(total['frozen']):>8}")
    lines.append("")
    lines.append("stored as / GiB stored: the weights as this config keeps them in memory (per GPU).")
    if summary["quantization"] is not None:
        lines.append(
            f"  decoder LLM: {summary['quantization']} (bitsandbytes) Linear weights, counted unquantized; "
            "int8 = 1 byte per weight + a float32 scale per row, the rest at the LLM dtype."
        )
    lines.append("GiB fp32/bf16/int8: every parameter at 4/2/1 bytes.")
    lines.append(
        "Frozen pretrained weights (speech encoder, CTC head, LLM) are re-read at build and never "
        "written to checkpoints."
    )
    return "\n".join(lines)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Parameter counts and weight memory of a BLOOMZMMS training config "
        "(built on the meta device from architecture configs; no weights are downloaded)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("config", help="training config (yaml), e.g. conf/tuning/train_..._ctc.yaml")
    parser.add_argument(
        "--architectures",
        type=Path,
        default=None,
        help="directory of <org>--<name>/config.json (and tokenizer_size) per hub model "
        "(default: conf/architectures of the current directory, else of this repository)",
    )
    languages = parser.add_mutually_exclusive_group()
    languages.add_argument("--language_list", default=None, help="language list, one code per line")
    languages.add_argument(
        "--num_languages", type=int, default=PAPER_NUM_LANGUAGES, help="number of LID languages"
    )
    parser.add_argument("--output_json", default=None, help="also write the figures to this JSON file")
    return parser


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    model, info = build_meta_model(args.config, args.architectures, args.language_list, args.num_languages)
    summary = summarize(model, info["quantization"])
    print(format_table(summary, info))
    if args.output_json:
        Path(args.output_json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.output_json, "w", encoding="utf-8") as f:
            json.dump({**info, **summary}, f, indent=2)
    return summary


if __name__ == "__main__":
    main()
