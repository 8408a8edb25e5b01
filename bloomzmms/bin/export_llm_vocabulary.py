"""Stages 5 and 7: the token list of the LLM's tokenizer, and its token-embedding matrix.

``token_list``: one token per line in id order (line i = token id i), so ESPnet's token list and
the LLM agree on every id. ``embeddings``: the LLM's input-embedding matrix sliced to the token
list, saved as ``{"ctc.ctc_lo.weight": matrix}``: the CTC stage's ``--pretrained_model``.

Usage:
    python -m bloomzmms.bin.export_llm_vocabulary token_list --llm bigscience/bloomz-7b1 \\
        --output data/token_list/bigscience-bloomz-7b1/tokens.txt
    python -m bloomzmms.bin.export_llm_vocabulary embeddings --llm bigscience/bloomz-7b1 \\
        --token_list data/token_list/bigscience-bloomz-7b1/tokens.txt --output exp/llm/token_embeddings.pth
"""

import argparse
import logging
from pathlib import Path

import torch

from bloomzmms.asr.llm import load_input_embeddings, load_tokenizer


def write_atomic_text(path: Path, text: str) -> None:
    """Writes only when the content changes: an unchanged token list keeps its time stamp."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def export_token_list(llm: str, output: str) -> int:
    tokenizer = load_tokenizer(llm)
    tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    for token_id, token in enumerate(tokens):
        if token is None or token == "" or any(c in token for c in "\n\r") or token != token.strip():
            raise ValueError(f"{llm}: token {token_id} ({token!r}) cannot be a line of a token list")
    write_atomic_text(Path(output), "".join(token + "\n" for token in tokens))
    logging.info(f"{output}: {len(tokens)} tokens of {llm}")
    return len(tokens)


def export_embeddings(llm: str, token_list: str, output: str) -> None:
    with open(token_list, encoding="utf-8") as f:
        vocab_size = sum(1 for _ in f)
    matrix = load_input_embeddings(llm)
    if matrix.size(0) < vocab_size:
        raise ValueError(f"{llm} has {matrix.size(0)} embedding rows, fewer than the {vocab_size} tokens of {token_list}")
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(output + ".tmp")
    torch.save({"ctc.ctc_lo.weight": matrix[:vocab_size].clone()}, temporary)
    temporary.replace(output)
    logging.info(f"{output}: embeddings {vocab_size} x {matrix.size(1)} of {llm} ({matrix.size(0)} rows, sliced)")


def main(cmd=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["token_list", "embeddings"])
    parser.add_argument("--llm", required=True, help="LLM hub name or directory")
    parser.add_argument("--output", required=True)
    parser.add_argument("--token_list", help="token list (for 'embeddings')")
    args = parser.parse_args(cmd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.what == "token_list":
        export_token_list(args.llm, args.output)
    else:
        if args.token_list is None:
            parser.error("'embeddings' needs --token_list")
        export_embeddings(args.llm, args.token_list, args.output)


if __name__ == "__main__":
    main()
