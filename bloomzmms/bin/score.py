"""Score a decoding result: CER/WER for ASR, BLEU/chrF for speech translation, optionally semantic similarity.

Usage:
    python -m bloomzmms.bin.score --task asr --ref data/test/text \\
        --hyp exp/asr_x/decode/test/text [--utt2lang data/test/utt2lang] \\
        [--target_lang ja_jp] [--model NAME] [--data NAME] [--instruction TEXT] \\
        --output exp/asr_x/decode/test/scores.json

    python -m bloomzmms.bin.score --task st --ref data/test_st/text \\
        --hyp exp/st_x/decode/test_st/text --target_lang en_us \\
        [--utt2target_lang FILE] [--utt2lang data/test_st/utt2lang] ... \\
        [--semantic_model intfloat/multilingual-e5-large-instruct] \\
        --output exp/st_x/decode/test_st/scores.json

ASR: Whisper BasicTextNormalizer on both sides, CER/WER per language of
--utt2lang (or the single --target_lang) and pooled; WER is n/a for languages
written without spaces. ST: sacrebleu BLEU/chrF on raw text; rows are
"source->target" when --utt2lang gives the spoken language, otherwise the
target language. See bloomzmms/scoring.py for the exact definitions.

With --semantic_model (either task): the cosine similarity of sentence embeddings of each
hypothesis and its reference (bloomzmms/semantic.py; both embedded in the E5-instruct query
format with --semantic_instruction), its mean per row and pooled as ``semantic_similarity``,
and the per-utterance values in ``semantic_similarity.txt`` ('<utt_id> <cosine>') beside the JSON.

Writes a JSON file (see ``build_report``) and prints a short table.
"""

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Dict, Optional, Tuple

from bloomzmms import scoring

# The default task description of bloomzmms.semantic, repeated so --help needs no torch import.
SIMILARITY_INSTRUCTION = "Retrieve semantically similar text."
SIMILARITIES_FILE = "semantic_similarity.txt"


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
    )
    parser.add_argument("--task", choices=["asr", "st"], required=True)
    parser.add_argument("--ref", type=Path, required=True, help="reference text: '<utt_id> <text>' lines")
    parser.add_argument("--hyp", type=Path, required=True, help="hypothesis text; missing utterances count as empty")
    parser.add_argument("--utt2lang", type=Path, help="spoken language per utterance (per-language rows)")
    parser.add_argument(
        "--target_lang",
        help="language of the reference text for all utterances "
        "(ASR: used when --utt2lang is absent; ST: translation target, picks the BLEU tokenizer)",
    )
    parser.add_argument("--utt2target_lang", type=Path, help="ST only: target language per utterance")
    parser.add_argument("--model", help="model description stored in the JSON")
    parser.add_argument("--data", help="test data description stored in the JSON")
    parser.add_argument("--instruction", help="instruction/prompt used for decoding, stored in the JSON")
    parser.add_argument("--output", type=Path, required=True, help="scores.json to write")
    semantic = parser.add_argument_group("semantic similarity (optional)")
    semantic.add_argument("--semantic_model", help="sentence-embedding model: hub name or local directory")
    semantic.add_argument(
        "--semantic_instruction",
        default=SIMILARITY_INSTRUCTION,
        help="task description of the E5-instruct query format ('' embeds the plain texts)",
    )
    semantic.add_argument("--semantic_batch_size", type=int, default=32)
    semantic.add_argument("--semantic_max_length", type=int, default=512, help="tokens per text (longer: truncated)")
    semantic.add_argument("--semantic_device", default=None, help="default: cuda when available, else cpu")
    semantic.add_argument("--semantic_dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    return parser


def _target_languages(args, refs: Dict[str, str]) -> Dict[str, str]:
    per_utt = scoring.read_kaldi_text(args.utt2target_lang, allow_empty_value=False) if args.utt2target_lang else {}
    targets = {}
    for utt_id in refs:
        target = per_utt.get(utt_id, args.target_lang)
        if target is None:
            raise scoring.ScoringInputError(f"no target language for utterance {utt_id!r}: pass --target_lang")
        targets[utt_id] = target
    return targets


def build_report(args) -> Dict:
    """Score and return the JSON record.

    Keys: task, model, data, instruction, ref, hyp, utt2lang, target_lang,
    num_utts, num_missing_hyps, missing_hyp_utts, metric_notes, languages
    ({row: figures}), pooled (figures), semantic (the embedding model and settings, or None).
    Figures are percentages, except ``semantic_similarity`` (a mean cosine). With
    --semantic_model, the per-utterance cosines are returned under ``utterance_similarities``
    (``main`` writes them to a file and drops the key).
    """
    refs = scoring.read_kaldi_text(args.ref)
    hyps = scoring.read_kaldi_text(args.hyp)
    utt2lang: Optional[Dict[str, str]] = None
    if args.utt2lang:
        utt2lang = scoring.read_kaldi_text(args.utt2lang, allow_empty_value=False)
        unlabeled = [utt_id for utt_id in refs if utt_id not in utt2lang]
        if unlabeled:
            raise scoring.ScoringInputError(
                f"{args.utt2lang}: no language for {len(unlabeled)} utterances, e.g. {unlabeled[0]!r}"
            )

    if args.task == "asr":
        scores = scoring.score_asr(refs, hyps, utt2lang, default_language=args.target_lang)
        utt2row = scoring.asr_rows(refs, utt2lang, args.target_lang)
        notes = f"CER/WER in % after {scoring.NORMALIZER_NAME}; WER n/a for languages written without spaces"
    else:
        targets = _target_languages(args, refs)
        scores = scoring.score_st(refs, hyps, targets, utt2source=utt2lang)
        utt2row = scoring.st_rows(refs, targets, utt2lang)
        notes = f"BLEU/chrF on raw text, sacrebleu {scoring.SACREBLEU_VERSION}; BLEU tokenizer per target language"

    semantic, similarities = None, None
    if args.semantic_model:
        semantic, similarities = _semantic_similarities(args, refs, hyps)
        scoring.add_semantic_similarity(scores, similarities, utt2row)
        notes += "; semantic similarity: mean cosine of sentence embeddings of hypothesis and reference"

    report = {
        "task": args.task,
        "model": args.model,
        "data": args.data,
        "instruction": args.instruction,
        "ref": str(args.ref),
        "hyp": str(args.hyp),
        "utt2lang": str(args.utt2lang) if args.utt2lang else None,
        "target_lang": args.target_lang,
        "num_utts": scores["pooled"]["num_utts"],
        "num_missing_hyps": len(scores["missing_hyp_utts"]),
        "missing_hyp_utts": scores["missing_hyp_utts"],
        "metric_notes": notes,
        "languages": scores["languages"],
        "pooled": scores["pooled"],
        "semantic": semantic,
    }
    if similarities is not None:
        report["utterance_similarities"] = similarities
    return report


def _semantic_similarities(args, refs: Dict[str, str], hyps: Dict[str, str]) -> Tuple[Dict, Dict[str, float]]:
    """Embedding settings and ``{utt_id: cosine}``; a missing hypothesis counts as empty (0.0)."""
    import torch  # only loaded (with transformers) when semantic scoring is asked for

    from bloomzmms.semantic import SentenceEmbedder, paired_similarities

    device = args.semantic_device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        embedder = SentenceEmbedder.from_pretrained(
            args.semantic_model, device=device, dtype=args.semantic_dtype, max_length=args.semantic_max_length
        )
    except (OSError, ValueError) as error:
        raise scoring.ScoringInputError(f"--semantic_model {args.semantic_model}: cannot load it ({error})") from error
    utt_ids = list(refs)
    values = paired_similarities(
        embedder,
        [refs[u] for u in utt_ids],
        [hyps.get(u, "") for u in utt_ids],
        instruction=args.semantic_instruction,
        batch_size=args.semantic_batch_size,
    )
    settings = {**embedder.describe(), "instruction": args.semantic_instruction or None, "applied_to": "both sides"}
    return settings, dict(zip(utt_ids, values))


def similarities_path(output: Path) -> Path:
    """``semantic_similarity.txt`` beside ``scores.json``; ``<stem>.semantic_similarity.txt`` beside other names."""
    name = SIMILARITIES_FILE if output.name == "scores.json" else f"{output.stem}.{SIMILARITIES_FILE}"
    return output.with_name(name)


def write_similarities(path: Path, similarities: Dict[str, float]) -> None:
    """``<utt_id> <cosine>`` per line, written to a temporary file first."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text("".join(f"{u} {value:.6f}\n" for u, value in similarities.items()), encoding="utf-8")
    temporary.replace(path)


def _fmt(value: Optional[float], decimals: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{decimals}f}"


def format_table(report: Dict) -> str:
    asr = report["task"] == "asr"
    metrics = ("cer", "wer") if asr else ("bleu", "chrf")
    with_similarity = "semantic_similarity" in report["pooled"]
    rows = [("language", "utts", "missing", *(m.upper() for m in metrics), *(["overlong (errors)"] if asr else []),
             *(["SIM"] if with_similarity else []))]
    for name, figures in [*report["languages"].items(), ("pooled", report["pooled"])]:
        counts = (str(figures["num_utts"]), str(figures["num_missing_hyps"]))
        overlong = [scoring.overlong_cell(figures)] if asr else []
        similarity = [_fmt(figures["semantic_similarity"], 4)] if with_similarity else []
        rows.append((name, *counts, *(_fmt(figures[m]) for m in metrics), *overlong, *similarity))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in rows)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    parser = get_parser()
    args = parser.parse_args(argv)
    if args.task == "st" and not (args.target_lang or args.utt2target_lang):
        parser.error("--task st needs --target_lang or --utt2target_lang")
    try:
        report = build_report(args)
    except scoring.ScoringInputError as error:
        print(f"score: error: {error}", file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if "utterance_similarities" in report:
        similarities_file = similarities_path(args.output)
        write_similarities(similarities_file, report.pop("utterance_similarities"))
        report["semantic"]["similarities_file"] = str(similarities_file)
    args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if report["num_missing_hyps"]:
        logging.warning("%d utterances have no hypothesis (scored as empty)", report["num_missing_hyps"])
    print(format_table(report))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
