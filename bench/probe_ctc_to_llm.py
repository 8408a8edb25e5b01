"""What the LLM phase starts from: a CTC-phase model's speech embeddings read by the frozen LLM.

Loads a trained CTC-phase model (its config and checkpoint) and the LLM its CTC head is tied to,
encodes a test set, and decodes it four ways, all greedy with the default instruction
(``Repeat the sentence: `` ... ``. ``):

* ``ctc``: the CTC head's own best path (the CTC model's ASR output);
* ``every_frame``: the LLM reads every adaptor frame, as the LLM phase feeds it (zero-shot);
* ``segment_mean``: one vector per CTC segment (frames whose best token is the same non-blank
  token), the mean of its frames; blank frames dropped;
* ``segment_token``: each such segment replaced by its token's LLM embedding, i.e. the CTC
  hypothesis given to the LLM as text.

It prints and writes the pooled CER of each (Whisper-normalized, as stage 13 scores).

Usage (in a finished recipe run):
    python bench/probe_ctc_to_llm.py --exp_dir exp/asr_train_ctc_train_t_sp --llm exp/standin/llm \
        --data_dir dump/raw/test_fleurs --output bench/RESULTS_ctc_to_llm.json
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import torch
from torch.nn.utils.rnn import pad_sequence
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bloomzmms.asr.llm_decoder import HFCausalLMDecoder  # noqa: E402
from bloomzmms.bin.infer import speech_loader  # noqa: E402
from bloomzmms.scoring import read_kaldi_text, score_asr  # noqa: E402
from bloomzmms.tasks.asr import BloomzmmsASRTask  # noqa: E402

MODES = ("ctc", "every_frame", "segment_mean", "segment_token")


def ctc_segments(best: torch.Tensor, length: int, blank_id: int) -> List[Tuple[int, int, int]]:
    """(start, end, token) of each run of one non-blank best token in ``best[:length]``."""
    tokens, counts = torch.unique_consecutive(best[:length], return_counts=True)
    ends = counts.cumsum(0)
    return [(int(end - count), int(end), int(token))
            for token, count, end in zip(tokens, counts, ends) if int(token) != blank_id]


def compress(model, embeddings: torch.Tensor, lengths: torch.Tensor, mode: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """One vector per CTC segment (``segment_mean`` or ``segment_token``), right-padded."""
    best = model.ctc.logits(embeddings).argmax(-1)
    rows = []
    for b in range(embeddings.size(0)):
        segments = ctc_segments(best[b], int(lengths[b]), model.ctc.blank_id)
        if mode == "segment_mean":
            vectors = [embeddings[b, start:end].mean(0) for start, end, _ in segments]
        else:
            vectors = [model.ctc.embedding_matrix[token] for _, _, token in segments]
        # An utterance with no segment keeps its first frame: the LLM needs some input.
        rows.append(torch.stack(vectors) if vectors else embeddings[b, :1])
    return pad_sequence(rows, batch_first=True), torch.tensor([len(row) for row in rows])


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--exp_dir", required=True, help="CTC-phase experiment (config.yaml + the model file)")
    parser.add_argument("--model_file", default="valid.cer_ctc.best.pth", help="checkpoint in --exp_dir")
    parser.add_argument("--llm", required=True, help="the LLM the CTC head is tied to (hub name or directory)")
    parser.add_argument("--data_dir", required=True, help="dumped test set (wav.scp, text, utt2lang)")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--max_new_tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default=None, help="JSON file for the figures")
    return parser


def main(argv=None):
    args = get_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    exp_dir, data_dir = Path(args.exp_dir), Path(args.data_dir)
    model, train_args = BloomzmmsASRTask.build_model_from_file(
        str(exp_dir / "config.yaml"), str(exp_dir / args.model_file), "cpu")
    model.eval()
    if model.ctc is None:
        sys.exit(f"{exp_dir / args.model_file} has no CTC head: give a CTC-phase experiment")
    loader = speech_loader(train_args, data_dir, args.batch_size)
    llm = HFCausalLMDecoder(len(model.token_list), model.adaptor.output_size(), model_name_or_path=args.llm)
    hypotheses: Dict[str, Dict[str, str]] = {mode: {} for mode in MODES}
    with torch.no_grad():
        for keys, batch in tqdm(loader, desc="probing", unit="batch"):
            embeddings, lengths, _, _ = model.encode(batch["speech"], batch["speech_lengths"])
            tokens = {"ctc": model.ctc.greedy_decode(embeddings, lengths),
                      "every_frame": llm.generate(embeddings, lengths, max_new_tokens=args.max_new_tokens)}
            for mode in ("segment_mean", "segment_token"):
                tokens[mode] = llm.generate(*compress(model, embeddings, lengths, mode),
                                            max_new_tokens=args.max_new_tokens)
            for mode, rows in tokens.items():
                for key, ids in zip(keys, rows):
                    hypotheses[mode][key] = " ".join(llm.tokenizer.decode(ids, skip_special_tokens=True).split())
    refs = read_kaldi_text(data_dir / "text")
    utt2lang = read_kaldi_text(data_dir / "utt2lang") if (data_dir / "utt2lang").exists() else None
    figures = {mode: score_asr(refs, hypotheses[mode], utt2lang)["pooled"]["cer"] for mode in MODES}
    for mode in MODES:
        print(f"{mode:14s} CER {figures[mode]:6.1f}%")
    if args.output:
        Path(args.output).write_text(json.dumps({
            "exp_dir": str(exp_dir), "model_file": args.model_file, "llm": args.llm, "data_dir": str(data_dir),
            "greedy_max_new_tokens": args.max_new_tokens, "pooled_cer": figures,
            "examples": {mode: dict(list(hypotheses[mode].items())[:4]) for mode in MODES},
        }, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
