"""Decode a data directory with a trained BLOOMZMMS model, in batches.

LLM models generate with Hugging Face ``generate`` (beam search, ``--max_new_tokens``) after
the instruction: the model's default, one given here (``--instruction_prefix/_postfix``, read
with the escapes of ``bloomzmms.instructions``: ``\\n`` newline, ``\\t`` tab, ``\\s`` space), or
one per utterance from Kaldi-style files (``--instruction_prefix_file``/``--instruction_postfix_file``, e.g. a data dir's
``decoder_prefix``/``decoder_postfix``). CTC models decode greedily. A language-ID head also
writes its prediction per utterance.

Usage:
    python -m bloomzmms.bin.infer --asr_model_file exp/asr_x/valid.acc.ave.pth \\
        --data_dir dump/raw/test --output_dir exp/asr_x/decode/test [--config conf/decode.yaml] \\
        [--batch_size 16] \\
        [--num_beams 5] [--max_new_tokens 192] \\
        [--instruction_prefix "Translate the following text from English to German\\n" \\
         --instruction_postfix "\\n"] [--key_file split/keys.1] [--device cuda]

Writes ``text`` (utterance id, response), ``token_int``, ``utt2lang_hyp`` (with a LID head)
and ``decode_info.yaml`` (model, data and instruction used) in ``--output_dir``.
"""

import argparse
import logging
from pathlib import Path
from typing import Dict, List, Optional

import torch
import yaml
from espnet2.train.collate_fn import CommonCollateFn
from tqdm import tqdm

from bloomzmms.asr.llm_decoder import pad_token_lists
from bloomzmms.cli import parse_args_with_config
from bloomzmms.datadir import read_kv
from bloomzmms.instructions import describe_instructions, unescape_instruction
from bloomzmms.tasks.asr import BloomzmmsASRTask


def audio_type(wav_scp: Path) -> str:
    """``kaldi_ark`` for dumped ``flac.ark``/``wav.ark`` entries, else ``sound``."""
    with wav_scp.open(encoding="utf-8") as f:
        first = f.readline().split(maxsplit=1)
    if len(first) < 2:
        raise ValueError(f"{wav_scp}: empty or malformed first line")
    value = first[1].strip()
    return "kaldi_ark" if ".ark:" in value and not value.endswith("|") else "sound"


def speech_loader(train_args: argparse.Namespace, data_dir: Path, batch_size: int, num_workers: int = 0,
                  key_file: Optional[str] = None):
    """Batches of (utterance ids, {"speech", "speech_lengths"}) of ``data_dir/wav.scp``, in file
    order, preprocessed as at training (audio only: no targets are read)."""
    train_args.train_text_type = "text"
    return BloomzmmsASRTask.build_streaming_iterator(
        data_path_and_name_and_type=[(str(data_dir / "wav.scp"), "speech", audio_type(data_dir / "wav.scp"))],
        preprocess_fn=BloomzmmsASRTask.build_preprocess_fn(train_args, train=False),
        collate_fn=CommonCollateFn(float_pad_value=0.0, int_pad_value=-1),
        key_file=key_file,
        batch_size=batch_size,
        dtype="float32",
        num_workers=num_workers,
        allow_variable_data_keys=True,
        inference=True,
    )


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--asr_model_file", required=True, help="Trained weights (.pth)")
    parser.add_argument("--asr_train_config", default=None, help="Its config.yaml (default: beside the weights)")
    parser.add_argument("--config", default=None, help="YAML file of decoding options (keys: the options below)")
    parser.add_argument("--data_dir", required=True, help="Data dir with wav.scp")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--key_file", default=None, help="Decode only these utterances (one id per line)")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--num_beams", type=int, default=5)
    parser.add_argument("--max_new_tokens", type=int, default=192)
    parser.add_argument("--decoding", choices=["auto", "llm", "ctc"], default="auto",
                        help="auto: the LLM when the model has one, else CTC")
    parser.add_argument("--instruction_prefix", default=None)
    parser.add_argument("--instruction_postfix", default=None)
    parser.add_argument("--instruction_prefix_file", default=None)
    parser.add_argument("--instruction_postfix_file", default=None)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--num_workers", type=int, default=1)
    return parser


def per_utterance_instructions(path: str, data_dir: Path) -> Dict[str, str]:
    instructions = {key: unescape_instruction(value) for key, value in read_kv(path).items()}
    missing = sorted(set(read_kv(str(data_dir / "utt2spk"))) - set(instructions))
    if missing:
        raise ValueError(f"{path}: no instruction for {len(missing)} utterances of {data_dir}, e.g. {missing[:3]}")
    return instructions


def instruction_ids(decoder, keys: List[str], per_utterance: Optional[Dict[str, str]], text: Optional[str], device):
    """Per-utterance instruction ids, else the command line's instruction, else None (default)."""
    if per_utterance is not None:
        return pad_token_lists([decoder.encode_text(per_utterance[key]).tolist() for key in keys], device)
    if text is None:
        return None, None
    return pad_token_lists([decoder.encode_text(text).tolist()] * len(keys), device)


def decode(args: argparse.Namespace) -> Dict[str, str]:
    device = torch.device(args.device)
    model, train_args = BloomzmmsASRTask.build_model_from_file(args.asr_train_config, args.asr_model_file, args.device)
    model.eval()
    decoding = args.decoding
    if decoding == "auto":
        decoding = "llm" if model.decoder is not None else "ctc"
    if decoding == "llm" and model.decoder is None:
        raise ValueError(f"{args.asr_model_file} has no LLM decoder: use --decoding ctc")
    if decoding == "ctc" and model.ctc is None:
        raise ValueError(f"{args.asr_model_file} has no CTC head: use --decoding llm")

    data_dir = Path(args.data_dir)
    instructions = {
        name: per_utterance_instructions(path, data_dir)
        for name, path in (("prefix", args.instruction_prefix_file), ("postfix", args.instruction_postfix_file))
        if decoding == "llm" and path is not None
    }
    loader = speech_loader(train_args, data_dir, args.batch_size, args.num_workers, args.key_file)
    tokenizer = model.decoder.tokenizer if decoding == "llm" else model.ctc.tokenizer
    language_list = getattr(train_args, "language_list", []) or []
    responses: Dict[str, List[int]] = {}
    languages: Dict[str, str] = {}
    with torch.no_grad():
        for keys, batch in tqdm(loader, desc="decoding", unit="batch"):
            batch = {name: value.to(device) for name, value in batch.items()}
            embeddings, embedding_lengths, intermediate, encoder_lengths = model.encode(batch["speech"], batch["speech_lengths"])
            if decoding == "llm":
                prefix, prefix_lengths = instruction_ids(
                    model.decoder, keys, instructions.get("prefix"), unescape_instruction(args.instruction_prefix), device)
                postfix, postfix_lengths = instruction_ids(
                    model.decoder, keys, instructions.get("postfix"), unescape_instruction(args.instruction_postfix), device)
                hypotheses = model.decoder.generate(
                    embeddings, embedding_lengths, prefix, prefix_lengths, postfix, postfix_lengths,
                    num_beams=args.num_beams, max_new_tokens=args.max_new_tokens,
                )
            else:
                hypotheses = model.ctc.greedy_decode(embeddings, embedding_lengths)
            responses.update(zip(keys, hypotheses))
            for _, lid_hidden in intermediate[:1]:
                predicted = model.encoder.lid_ctc.predict(lid_hidden, encoder_lengths)
                languages.update((key, language_list[int(index)]) for key, index in zip(keys, predicted))

    texts = {key: " ".join(tokenizer.decode(ids, skip_special_tokens=True).split()) for key, ids in responses.items()}
    write_outputs(args, decoding, describe_instruction(args, decoding, model, instructions), texts, responses, languages)
    return texts


def describe_instruction(args, decoding: str, model, instructions: Dict[str, Dict[str, str]]) -> str:
    """One line naming the instruction the responses answer (for result tables)."""
    if decoding == "ctc":
        return "none (CTC greedy decoding)"
    decoder = model.decoder
    values = {}
    for name, given, default_ids in (
        ("prefix", args.instruction_prefix, decoder.default_prefix_ids),
        ("postfix", args.instruction_postfix, decoder.default_postfix_ids),
    ):
        if name in instructions:
            values[name] = instructions[name].values()
        else:
            values[name] = [unescape_instruction(given) if given is not None else decoder.tokenizer.decode(default_ids.tolist())]
    return describe_instructions(values["prefix"], values["postfix"])


def write_outputs(args, decoding: str, instruction: str, texts, responses, languages) -> None:
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    def write(name: str, lines: Dict[str, str]) -> None:
        temporary = output_dir / f".{name}.tmp"
        temporary.write_text("".join(f"{key} {lines[key]}\n" for key in sorted(lines, key=lambda k: k.encode())), encoding="utf-8")
        temporary.replace(output_dir / name)

    write("token_int", {key: " ".join(map(str, ids)) for key, ids in responses.items()})
    if languages:
        write("utt2lang_hyp", languages)
    info = {
        "model_file": args.asr_model_file,
        "data_dir": args.data_dir,
        "decoding": decoding,
        "instruction": instruction,
        "instruction_prefix": unescape_instruction(args.instruction_prefix),
        "instruction_postfix": unescape_instruction(args.instruction_postfix),
        "instruction_prefix_file": args.instruction_prefix_file,
        "instruction_postfix_file": args.instruction_postfix_file,
        "num_beams": args.num_beams if decoding == "llm" else None,
        "max_new_tokens": args.max_new_tokens if decoding == "llm" else None,
        "num_utterances": len(texts),
    }
    (output_dir / "decode_info.yaml").write_text(yaml.safe_dump(info, allow_unicode=True, sort_keys=False), encoding="utf-8")
    write("text", texts)  # last: its presence marks a finished decode
    logging.info(f"wrote {len(texts)} hypotheses to {output_dir / 'text'}")


def main(cmd=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    decode(parse_args_with_config(get_parser(), cmd))


if __name__ == "__main__":
    main()
