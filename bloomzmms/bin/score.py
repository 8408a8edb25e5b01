"""Score a decoding result: CER/WER for ASR, BLEU/chrF for speech translation.

Usage:
    python -m bloomzmms.bin.score --task asr --ref data/test/text \\
        --hyp exp/asr_x/decode/test/text [--utt2lang data/test/utt2lang] \\
        [--target_lang ja_jp] [--model NAME] [--data NAME] [--instruction TEXT] \\
        --output exp/asr_x/decode/test/scores.json

    python -m bloomzmms.bin.score --task st --ref data/test_st/text \\
        --hyp exp/st_x/decode/test_st/text --target_lang en_us \\
        [--utt2target_lang FILE] [--utt2lang data/test_st/utt2lang] ... \\
        --output exp/st_x/decode/test_st/scores.json

ASR: Whisper BasicTextNormalizer on both sides, CER/WER per language of
--utt2lang (or the single --target_lang) and pooled; WER is n/a for languages
written without spaces. ST: sacrebleu BLEU/chrF on raw text; rows are
"source->target" when --utt2lang gives the spoken language, otherwise the
target language. See bloomzmms/scoring.py for the exact definitions.

Writes a JSON file (see ``build_report``) and prints a short table.
"""

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Dict, Optional

from bloomzmms import scoring


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
    ({row: figures}), pooled (figures). Figures are percentages.
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
        notes = f"CER/WER in % after {scoring.NORMALIZER_NAME}; WER n/a for languages written without spaces"
    else:
        scores = scoring.score_st(refs, hyps, _target_languages(args, refs), utt2source=utt2lang)
        notes = f"BLEU/chrF on raw text, sacrebleu {scoring.SACREBLEU_VERSION}; BLEU tokenizer per target language"

    return {
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
    }


def _fmt(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def format_table(report: Dict) -> str:
    metrics = ("cer", "wer") if report["task"] == "asr" else ("bleu", "chrf")
    rows = [("language", "utts", "missing", *(m.upper() for m in metrics))]
    for name, figures in [*report["languages"].items(), ("pooled", report["pooled"])]:
        counts = (str(figures["num_utts"]), str(figures["num_missing_hyps"]))
        rows.append((name, *counts, *(_fmt(figures[m]) for m in metrics)))
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
    args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if report["num_missing_hyps"]:
        logging.warning("%d utterances have no hypothesis (scored as empty)", report["num_missing_hyps"])
    print(format_table(report))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
