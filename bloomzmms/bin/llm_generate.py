"""Batched text generation with a frozen causal LM: one response per ``<key> <text>`` line.

The LLM input of a key is ``prefix + text + postfix``, tokenized as one string without special
tokens, left-padded into batches; generation is greedy by default (``--num_beams`` for beam
search), stops at EOS or after ``--max_new_tokens``. Uses: multi-instruction target generation
(``make_mi_targets``), the text-oracle baseline (gold transcript -> LLM, same instruction as the
speech model) and the cascade baseline (ASR hypothesis -> LLM).

The instruction is either one for every key (``--instruction_prefix/_postfix``) or per key from
Kaldi-style files (``--prefix_file/--postfix_file``, e.g. a data dir's ``decoder_prefix`` /
``decoder_postfix``). Both are read with the escaping rule of ``bloomzmms.instructions``
(``\\n`` newline, ``\\t`` tab, ``\\\\`` backslash, ``\\s`` an edge space); the input text is
taken verbatim (empty text allowed).

Output: ``<key> <response>`` lines sorted by key (C byte order), whitespace runs (newlines
included) collapsed to one space, so each response stays on its line.

Deterministic and resumable: prompts are batched by token length (longest first) in a plan
that depends only on the prompts and ``--batch_size``. Each finished batch is appended to
``<output>.partial`` (JSON lines, the first one the settings); a restarted run with the same
settings skips the keys done (a key whose prompt changed is redone), so it writes what an
uninterrupted run writes. The output is written atomically at the end, then the partial file
is removed.

Usage:
    python -m bloomzmms.bin.llm_generate --llm bigscience/bloomz-7b1 --input data/x/text_source \\
        --output exp/oracle/x/text (--prefix_file data/x/decoder_prefix --postfix_file \\
        data/x/decoder_postfix | --instruction_prefix "Repeat the sentence: " \\
        --instruction_postfix ". ") [--batch_size 16] [--num_beams 1] [--max_new_tokens 128] \\
        [--dtype float32|bfloat16] [--device cpu|cuda]
"""

import argparse
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence

import torch
from tqdm import tqdm

from bloomzmms.asr.llm import DTYPES, load_causal_lm, load_tokenizer
from bloomzmms.cli import parse_args_with_config, start_logging
from bloomzmms.datadir import read_kv, write_kv
from bloomzmms.instructions import unescape_instruction

log = logging.getLogger(__name__)

PARTIAL_FORMAT = 1


def clean_response(text: str) -> str:
    """One Kaldi-line value: whitespace runs (newlines too) collapsed to a space, stripped."""
    return " ".join(text.split())


def encode_prompts(tokenizer, prompts: Sequence[str]) -> List[List[int]]:
    return [tokenizer(prompt, add_special_tokens=False)["input_ids"] if prompt else [] for prompt in prompts]


def plan_batches(token_ids: Sequence[Sequence[int]], batch_size: int) -> List[List[int]]:
    """Indices of the prompts in each batch: longest first (ties by index), empty prompts left out.

    The plan depends only on the prompts and ``batch_size``: a resumed run pads exactly as an
    uninterrupted one does, so its outputs are the same bit for bit.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    order = sorted((i for i, ids in enumerate(token_ids) if ids), key=lambda i: (-len(token_ids[i]), i))
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def _special_ids(tokenizer, llm):
    eos_id = tokenizer.eos_token_id
    if eos_id is None:
        eos_id = llm.generation_config.eos_token_id
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = eos_id
    if pad_id is None:
        raise ValueError("the tokenizer has neither a pad nor an EOS token: cannot pad batches")
    return eos_id, pad_id


@torch.no_grad()
def generate_batch(llm, tokenizer, token_ids: Sequence[Sequence[int]], num_beams: int = 1,
                   max_new_tokens: int = 128) -> List[str]:
    """Responses to non-empty tokenized prompts, generated as one left-padded batch."""
    eos_id, pad_id = _special_ids(tokenizer, llm)
    width = max(len(ids) for ids in token_ids)
    input_ids = torch.full((len(token_ids), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(token_ids), width), dtype=torch.long)
    for row, ids in enumerate(token_ids):
        input_ids[row, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, width - len(ids):] = 1
    device = next(llm.parameters()).device
    output = llm.generate(
        input_ids=input_ids.to(device),
        attention_mask=attention_mask.to(device),
        do_sample=False,
        num_beams=num_beams,
        max_new_tokens=max_new_tokens,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    responses = []
    for row in output[:, width:].tolist():
        if eos_id is not None and eos_id in row:
            row = row[: row.index(eos_id)]
        responses.append(clean_response(tokenizer.decode(row, skip_special_tokens=True)))
    return responses


def generate_responses(
    llm,
    tokenizer,
    prompts: List[str],
    batch_size: int = 16,
    num_beams: int = 1,
    max_new_tokens: int = 128,
    done: Optional[Mapping[int, str]] = None,
    on_batch: Optional[Callable[[List[int], List[str]], None]] = None,
    progress: bool = True,
) -> List[str]:
    """The response to every prompt (same order), batched by length.

    ``done``: responses already known by prompt index; a batch whose prompts are all done is
    skipped, any other batch is generated whole (so padding, hence numerics, never depend on
    what was done). ``on_batch(indices, responses)`` is called after each generated batch.
    An empty prompt gets an empty response without running the LLM.
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be positive, got {max_new_tokens}")
    done = dict(done or {})
    token_ids = encode_prompts(tokenizer, prompts)
    responses: List[Optional[str]] = [done.get(i) for i in range(len(prompts))]
    empty = [i for i, ids in enumerate(token_ids) if not ids]
    if empty:
        log.warning("%d empty prompt(s): empty responses, no generation", len(empty))
        for i in empty:
            responses[i] = ""
    batches = plan_batches(token_ids, batch_size)
    todo = [batch for batch in batches if any(i not in done for i in batch)]
    with tqdm(total=sum(len(batch) for batch in todo), desc="generating", unit="prompt",
              disable=not progress or not todo, dynamic_ncols=True) as bar:
        for batch in todo:
            generated = generate_batch(llm, tokenizer, [token_ids[i] for i in batch], num_beams, max_new_tokens)
            for i, response in zip(batch, generated):
                responses[i] = response
            if on_batch is not None:
                on_batch(batch, generated)
            bar.update(len(batch))
    return responses


def prompt_digest(prompt: str) -> str:
    return hashlib.sha1(prompt.encode("utf-8")).hexdigest()


def _read_partial(path: Path, settings: dict) -> Dict[str, dict]:
    """Entries (key -> {"prompt": digest, "response": text}) of a partial file with these settings.

    A torn last line (a killed run) is cut off; a file from other settings is set aside.
    """
    if not path.is_file():
        return {}
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    complete, entries, good_bytes = lines[:-1], {}, 0
    try:
        header = json.loads(complete[0]) if complete else None
    except json.JSONDecodeError:
        header = None
    if header != {"format": PARTIAL_FORMAT, "settings": settings}:
        stale = path.with_name(path.name + ".stale")
        os.replace(path, stale)
        log.warning("%s was written with other settings (or is unreadable): moved to %s, starting over",
                    path, stale)
        return {}
    good_bytes = len(complete[0]) + 1
    for line in complete[1:]:
        try:
            entry = json.loads(line)
            key, digest, response = entry["key"], entry["prompt"], entry["response"]
        except (json.JSONDecodeError, KeyError, TypeError):
            break
        entries[key] = {"prompt": digest, "response": response}
        good_bytes += len(line) + 1
    if good_bytes < len(raw):
        log.warning("%s: cutting off %d byte(s) of an unfinished write", path, len(raw) - good_bytes)
        with open(path, "r+b") as f:
            f.truncate(good_bytes)
    return entries


def generate_to_file(
    llm,
    tokenizer,
    prompts: Mapping[str, str],
    output: str,
    settings: Optional[dict] = None,
    batch_size: int = 16,
    num_beams: int = 1,
    max_new_tokens: int = 128,
    progress: bool = True,
) -> Dict[str, str]:
    """Responses by key, written to ``output`` (Kaldi lines sorted by key), resumably.

    ``settings``: what else identifies the run (e.g. the LLM name and dtype); a partial file from
    other settings is not reused. Returns the responses by key.
    """
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial_path = output.with_name(output.name + ".partial")
    settings = {**(settings or {}), "batch_size": batch_size, "num_beams": num_beams,
                "max_new_tokens": max_new_tokens}
    settings = json.loads(json.dumps(settings))  # as it reads back
    keys = sorted(prompts, key=lambda k: k.encode("utf-8"))
    for key in keys:
        if not key or any(char.isspace() for char in key):
            raise ValueError(f"key {key!r} is empty or has whitespace: not a Kaldi key")
    ordered = [prompts[key] for key in keys]
    digests = [prompt_digest(prompt) for prompt in ordered]
    previous = _read_partial(partial_path, settings)
    done = {i: previous[key]["response"] for i, key in enumerate(keys)
            if key in previous and previous[key]["prompt"] == digests[i]}
    if done:
        log.info("%s: resuming, %d of %d prompt(s) already done", partial_path, len(done), len(keys))
    if not partial_path.is_file():
        with open(partial_path, "w", encoding="utf-8") as f:
            f.write(json.dumps({"format": PARTIAL_FORMAT, "settings": settings}) + "\n")

    with open(partial_path, "a", encoding="utf-8") as partial:
        def append(batch, responses):
            partial.write("".join(
                json.dumps({"key": keys[i], "prompt": digests[i], "response": response}, ensure_ascii=False) + "\n"
                for i, response in zip(batch, responses) if i not in done))
            partial.flush()
            os.fsync(partial.fileno())

        responses = generate_responses(llm, tokenizer, ordered, batch_size, num_beams, max_new_tokens,
                                       done=done, on_batch=append, progress=progress)
    result = dict(zip(keys, responses))
    write_kv(str(output), result)
    partial_path.unlink()
    empty = sum(not response for response in responses)
    log.info("wrote %d response(s) to %s (%d empty)", len(result), output, empty)
    return result


def read_prompts(input_path: str, prefix=None, postfix=None, prefix_file=None, postfix_file=None) -> Dict[str, str]:
    """``prefix + text + postfix`` by key; instructions (strings or files) are unescaped."""
    texts = read_kv(input_path)
    if not texts:
        raise ValueError(f"{input_path}: no lines")
    if (prefix_file or postfix_file) and (prefix is not None or postfix is not None):
        raise ValueError("give the instruction as strings or as files, not both")

    def per_key(path, name):
        if path is None:
            return {}
        values = read_kv(path)
        missing = [key for key in texts if key not in values]
        if missing:
            raise ValueError(f"{path}: no {name} for {len(missing)} key(s) of {input_path}, e.g. {missing[0]!r}")
        return {key: unescape_instruction(value) for key, value in values.items()}

    prefixes, postfixes = per_key(prefix_file, "prefix"), per_key(postfix_file, "postfix")
    prefix, postfix = unescape_instruction(prefix or ""), unescape_instruction(postfix or "")
    return {key: prefixes.get(key, prefix) + text + postfixes.get(key, postfix) for key, text in texts.items()}


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llm", required=True, help="hub name or local directory of the causal LM")
    parser.add_argument("--input", required=True, help="Kaldi-style '<key> <text>' file")
    parser.add_argument("--output", required=True, help="where '<key> <response>' lines go")
    parser.add_argument("--prefix_file", default=None, help="per-key prefixes (escaped), e.g. decoder_prefix")
    parser.add_argument("--postfix_file", default=None, help="per-key postfixes (escaped), e.g. decoder_postfix")
    parser.add_argument("--instruction_prefix", default=None, help="one prefix for all keys (escaped)")
    parser.add_argument("--instruction_postfix", default=None, help="one postfix for all keys (escaped)")
    parser.add_argument("--config", default=None,
                        help="YAML of generation options (e.g. the speech model's decoding config); other keys are ignored")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--num_beams", type=int, default=1, help="1: greedy")
    parser.add_argument("--max_new_tokens", type=int, default=128)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    parser.add_argument("--quantization", choices=["8bit", "4bit"], default=None, help="bitsandbytes, CUDA only")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    return parser


def load_llm(name: str, dtype: str = "float32", quantization: Optional[str] = None, device: str = "cpu"):
    """(model, tokenizer) for generation, the model frozen on ``device``."""
    device = torch.device(device)
    llm = load_causal_lm(name, dtype, quantization, device)
    if quantization is None:
        llm.to(device)
    return llm, load_tokenizer(name)


def main(argv=None):
    start_logging()
    args = parse_args_with_config(get_parser(), argv, strict=False)
    prompts = read_prompts(args.input, args.instruction_prefix, args.instruction_postfix,
                           args.prefix_file, args.postfix_file)
    llm, tokenizer = load_llm(args.llm, args.dtype, args.quantization, args.device)
    settings = {"llm": args.llm, "dtype": args.dtype, "quantization": args.quantization,
                "device_type": torch.device(args.device).type}
    generate_to_file(llm, tokenizer, prompts, args.output, settings, args.batch_size, args.num_beams,
                     args.max_new_tokens, progress=not args.no_progress)


if __name__ == "__main__":
    main()
