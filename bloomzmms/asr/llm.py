"""Loading a frozen Hugging Face causal LM, its tokenizer and its input-embedding matrix."""

import json
import logging
from typing import Optional

import torch
from safetensors import safe_open
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
from transformers.utils import cached_file

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
QUANTIZATIONS = (None, "8bit", "4bit")


def resolve_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {name!r}")
    return DTYPES[name]


def load_tokenizer(model_name_or_path: str):
    return AutoTokenizer.from_pretrained(model_name_or_path)


def load_causal_lm(
    model_name_or_path: str,
    dtype: str = "float32",
    quantization: Optional[str] = None,
    device: Optional[torch.device] = None,
    load_weights: bool = True,
) -> torch.nn.Module:
    """A frozen causal LM in eval mode.

    ``quantization`` ("8bit"/"4bit") loads through bitsandbytes straight onto ``device``, which
    must be a CUDA device: the quantized weights live only there.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    torch_dtype = resolve_dtype(dtype)
    if not load_weights:
        config = AutoConfig.from_pretrained(model_name_or_path)
        model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
    elif quantization is None:
        model = AutoModelForCausalLM.from_pretrained(model_name_or_path, dtype=torch_dtype)
    else:
        if device is None or device.type != "cuda":
            raise RuntimeError(
                f"{quantization} loading of {model_name_or_path} needs a CUDA device "
                "(bitsandbytes); use dtype bfloat16/float32 without quantization on CPU"
            )
        try:
            from transformers import BitsAndBytesConfig
            import bitsandbytes  # noqa: F401
        except ImportError as error:
            raise RuntimeError(
                "quantized loading needs bitsandbytes: pip install -e '.[quantization]'"
            ) from error
        quantization_config = BitsAndBytesConfig(
            load_in_8bit=quantization == "8bit",
            load_in_4bit=quantization == "4bit",
            bnb_4bit_compute_dtype=torch_dtype,
        )
        model = AutoModelForCausalLM.from_pretrained(
            model_name_or_path,
            dtype=torch_dtype,
            quantization_config=quantization_config,
            device_map={"": device.index if device.index is not None else 0},
        )
    model.requires_grad_(False)
    model.eval()
    return model


def _embedding_parameter_name(model_name_or_path: str) -> str:
    """Name of the input-embedding weight, found on a meta-device copy of the architecture."""
    config = AutoConfig.from_pretrained(model_name_or_path)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    embedding_weight = model.get_input_embeddings().weight
    for name, parameter in model.named_parameters():
        if parameter is embedding_weight:
            return name
    raise RuntimeError(f"cannot find the input-embedding parameter of {model_name_or_path}")


def _safetensors_files(model_name_or_path: str):
    index = cached_file(
        model_name_or_path, "model.safetensors.index.json", _raise_exceptions_for_missing_entries=False
    )
    if index is not None:
        with open(index, encoding="utf-8") as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        return [cached_file(model_name_or_path, shard) for shard in shards]
    single = cached_file(
        model_name_or_path, "model.safetensors", _raise_exceptions_for_missing_entries=False
    )
    return [single] if single is not None else []


def load_input_embeddings(model_name_or_path: str) -> torch.Tensor:
    """The LLM's input-embedding matrix (rows = token ids), float32.

    Reads only that tensor from safetensors checkpoints; older checkpoints load the whole model.
    """
    name = _embedding_parameter_name(model_name_or_path)
    # Checkpoints may store the backbone with or without the task head's prefix.
    candidates = {name, name.split(".", 1)[-1]}
    for path in _safetensors_files(model_name_or_path):
        with safe_open(path, framework="pt") as f:
            for key in f.keys():
                if key in candidates:
                    return f.get_tensor(key).float()
    logging.info(f"{model_name_or_path}: no safetensors embedding found, loading the full model")
    model = AutoModelForCausalLM.from_pretrained(model_name_or_path, dtype=torch.float32)
    return model.get_input_embeddings().weight.detach().clone()

