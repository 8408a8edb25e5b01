"""Collect every scores.json under an experiment directory into RESULTS.md.

Usage:
    python -m bloomzmms.bin.make_results --exp_dir exp --output RESULTS.md \\
        [--json results.json] [--plots_dir exp/plots]

Looks for:
  * ``<exp_dir>/**/scores.json`` written by ``bloomzmms.bin.score``: one
    Markdown table each (per-language rows and a pooled row), grouped by task
    and test set (the JSON's ``data`` field, else the directory holding
    scores.json), headed with model, data and instruction; ASR tables count
    overlong hypotheses (looping generations) after CER/WER; a "Sim." column
    (mean cosine of sentence embeddings, ``score --semantic_model``) ends the
    metrics of every table of a task where any report has it;
  * ``<exp_dir>/**/train.log`` written by ESPnet's trainer: the per-epoch
    "Nepoch results: [train] ..., [valid] ..." lines are plotted (train/valid
    loss and validation acc/CER against epoch) into
    ``<plots_dir>/<experiment>.png``, linked from RESULTS.md;
  * ``<exp_dir>/**/slu_scores.json`` (``bloomzmms.bin.eval_slu``: zero-shot SpeechGLUE /
    SpeechXNLI) and ``<exp_dir>/**/lid_scores.json`` (``bloomzmms.bin.score_lid``: accuracy of
    the intermediate language-ID head): a section each.

``--json`` writes the same figures as a list of records, one per table row
(with ``semantic_similarity`` and ``semantic_model`` where scored).
"""

import argparse
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from matplotlib.figure import Figure  # a bare Figure renders with Agg, no pyplot/backend state
from matplotlib.ticker import MaxNLocator

from bloomzmms import scoring, slu_report
from bloomzmms.bin import score_lid

VALIDATION_METRICS = ("acc", "cer_ctc", "cer", "wer")
REQUIRED_KEYS = {"task", "languages", "pooled"}
TASK_TITLES = {"asr": "ASR (CER / WER, %)", "st": "Speech translation (BLEU / chrF)"}
NOTE = (
    "CER/WER: computed after Whisper's `BasicTextNormalizer` (whisper.normalizers) on both reference and "
    "hypothesis; WER is n/a for languages written without spaces (zh, ja, th, lo, my, km), whose CER ignores "
    "whitespace, and the pooled WER covers the other languages only. BLEU/chrF: sacrebleu, corpus-level on raw "
    "(unnormalized) text; BLEU tokenizer by target language: zh → `zh`, ja → `ja-mecab`, ko → `ko-mecab` "
    "(`char` when MeCab is not installed), th/lo/my/km → `char`, others → `13a`; the pooled BLEU sums the "
    "per-language n-gram statistics. Missing hypotheses are scored as empty. Overlong (errors): hypotheses "
    f"more than {scoring.OVERLONG_FACTOR} times as long as their reference (normalized characters; in practice a "
    "generation that looped until its token limit) and their share of the row's character errors."
)
SIMILARITY_NOTE = (
    "Sim.: mean cosine similarity of L2-normalized sentence embeddings of hypothesis and reference "
    "(model named under each table; instruction-tuned E5 models give cosines of roughly 0.7-1.0, "
    "so compare systems by differences); an empty hypothesis scores 0."
)

EPOCH_RESULTS = re.compile(r"(\d+)epoch results: (.*)$")
SECTION_HEADER = re.compile(r"\[(\w+)\] ")
# Only numeric values are kept: "time=1 hour, 2 minutes and 3 seconds" also contains ", ".
NUMERIC_PAIR = re.compile(r"(\w+)=([-+]?(?:\d+\.?\d*(?:e[-+]?\d+)?|nan|inf))(?=,|$)")


def parse_train_log(log_path: Path) -> Dict[int, Dict[str, Dict[str, float]]]:
    """``{epoch: {"train": {key: value}, "valid": {...}}}`` from ESPnet's end-of-epoch lines.

    A resumed training repeats epochs; the last line for an epoch wins.
    """
    epochs = {}
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        match = EPOCH_RESULTS.search(line)
        if not match:
            continue
        # re.split with a group yields ["", name1, body1, name2, body2, ...].
        parts = SECTION_HEADER.split(match.group(2))
        sections = {
            name: {key: float(value) for key, value in NUMERIC_PAIR.findall(body.rstrip(", "))}
            for name, body in zip(parts[1::2], parts[2::2])
        }
        epochs[int(match.group(1))] = sections
    return epochs


def plot_training_curves(epochs: Dict[int, Dict], title: str, png_path: Path) -> None:
    """Train/valid loss and the validation metrics found, against epoch, into one PNG."""
    numbers = sorted(epochs)

    def series(section: str, key: str) -> Optional[List[float]]:
        values = [epochs[e].get(section, {}).get(key) for e in numbers]
        return None if all(v is None for v in values) else [float("nan") if v is None else v for v in values]

    metrics = {key: series("valid", key) for key in VALIDATION_METRICS}
    metrics = {key: values for key, values in metrics.items() if values is not None}
    figure = Figure(figsize=(10 if metrics else 5, 4))
    axes = figure.subplots(1, 2 if metrics else 1, squeeze=False)[0]
    for section in ("train", "valid"):
        values = series(section, "loss")
        if values is not None:
            axes[0].plot(numbers, values, marker="o", label=f"{section} loss")
    axes[0].set(xlabel="epoch", ylabel="loss", title="loss")
    for key, values in metrics.items():
        axes[1].plot(numbers, values, marker="o", label=f"valid {key}")
    if metrics:
        axes[1].set(xlabel="epoch", title="validation metrics")
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
        ax.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png_path, dpi=100)


def load_named_reports(exp_dir: Path, name: str) -> List[Tuple[Path, Dict]]:
    """``(path, report)`` of every ``name`` file under exp_dir (``slu_scores.json`` of
    ``bloomzmms.bin.eval_slu``, ``lid_scores.json`` of ``bloomzmms.bin.score_lid``)."""
    reports = []
    for path in sorted(exp_dir.glob(f"**/{name}")):
        try:
            reports.append((path, json.loads(path.read_text(encoding="utf-8"))))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: invalid JSON ({error})") from error
    return reports


def load_reports(exp_dir: Path) -> List[Dict]:
    """Every scores.json under exp_dir, with its path and test-set name added."""
    reports = []
    for path, report in load_named_reports(exp_dir, "scores.json"):
        if not isinstance(report, dict) or not REQUIRED_KEYS <= set(report):
            raise ValueError(f"{path}: not written by bloomzmms.bin.score (needs keys {sorted(REQUIRED_KEYS)})")
        report["scores_file"] = str(path)
        report["test_set"] = report.get("data") or path.parent.name
        reports.append(report)
    return sorted(reports, key=lambda r: (r["task"], r["test_set"], r["scores_file"]))


def summary_records(reports: List[Dict]) -> List[Dict]:
    """One flat record per table row (language or pooled)."""
    records = []
    for report in reports:
        rows = [*report["languages"].items(), ("pooled", report["pooled"])]
        for language, figures in rows:
            records.append(
                {
                    "task": report["task"],
                    "test_set": report["test_set"],
                    "model": report.get("model"),
                    "data": report.get("data"),
                    "instruction": report.get("instruction"),
                    "scores_file": report["scores_file"],
                    "semantic_model": (report.get("semantic") or {}).get("model"),
                    "language": language,
                    **figures,
                }
            )
    return records


def _fmt(value: Optional[float], decimals: int) -> str:
    return "n/a" if value is None else f"{value:.{decimals}f}"


def _metric_cells(task: str, figures: Dict, with_similarity: bool) -> List[str]:
    similarity = [_fmt(figures.get("semantic_similarity"), 3)] if with_similarity else []
    if task == "asr":
        # Reports written before overlong hypotheses were counted have no such figures.
        overlong = scoring.overlong_cell(figures) if "num_overlong_hyps" in figures else "n/a"
        return [_fmt(figures["cer"], 2), _fmt(figures["wer"], 2), overlong, *similarity]
    return [_fmt(figures["bleu"], 1), _fmt(figures["chrf"], 1), *similarity, f"`{figures['bleu_tokenizer']}`"]


def has_similarity(report: Dict) -> bool:
    return report["pooled"].get("semantic_similarity") is not None


def score_table(report: Dict, with_similarity: bool = False) -> List[str]:
    """Markdown rows; ``with_similarity`` adds the "Sim." column (n/a where the report has none)."""
    similarity = ["Sim."] if with_similarity else []
    if report["task"] == "asr":
        header = ["language", "utts", "missing hyps", "CER", "WER", "overlong (errors)", *similarity]
        alignment = "|---|" + "---:|" * len(header[1:])
    else:
        header = ["language (pair)", "utts", "missing hyps", "BLEU", "chrF", *similarity, "BLEU tokenizer"]
        alignment = "|---|" + "---:|" * len(header[1:-1]) + "---|"
    lines = ["| " + " | ".join(header) + " |", alignment]
    for language, figures in [*report["languages"].items(), ("**pooled**", report["pooled"])]:
        counts = [str(figures["num_utts"]), str(figures["num_missing_hyps"])]
        row = [language, *counts, *_metric_cells(report["task"], figures, with_similarity)]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _similarity_model_line(report: Dict) -> List[str]:
    semantic = report.get("semantic")
    if not semantic:
        return []
    instruction = semantic.get("instruction")
    return [f"- semantic similarity: `{semantic['model']}`, instruction: {_describe(instruction)}"]


def _describe(value: Optional[str]) -> str:
    return "(not given)" if not value else " ".join(value.split())  # one line, even for a multi-line prompt


def slu_and_lid_lines(slu: List[Tuple[Path, Dict]], lid: List[Tuple[Path, Dict]]) -> List[str]:
    lines = []
    if slu:
        lines += ["## Spoken language understanding (zero-shot, answers by option scoring)", ""]
    for path, report in slu:
        lines += slu_report.render_markdown(report, heading_level=3) + [f"- scores: `{path}`", ""]
    if lid:
        lines += ["## Language identification (intermediate LID head)", ""]
    for path, report in lid:
        lines += [f"### {report['data']}: {report['model']}", "", f"- scores: `{path}`", "",
                  *score_lid.render_markdown(report), ""]
    return lines


def slu_and_lid_records(slu: List[Tuple[Path, Dict]], lid: List[Tuple[Path, Dict]]) -> List[Dict]:
    records = [record for path, report in slu for record in slu_report.summary_records(report, str(path))]
    records += [
        {"task": "lid", "model": report["model"], "data": report["data"], "scores_file": str(path), "language": language, **figures}
        for path, report in lid for language, figures in [*report["languages"].items(), ("pooled", report["pooled"])]
    ]
    return records


def render_markdown(reports: List[Dict], plots: Dict[str, Path], output_dir: Path,
                    extra_lines: Sequence[str] = ()) -> str:
    lines = ["# Results", "", NOTE, ""]
    if any(has_similarity(r) for r in reports):
        lines += [SIMILARITY_NOTE, ""]
    if not reports:
        lines += ["No `scores.json` found.", ""]
    for task, title in TASK_TITLES.items():
        task_reports = [r for r in reports if r["task"] == task]
        with_similarity = any(has_similarity(r) for r in task_reports)
        if task_reports:
            lines += [f"## {title}", ""]
        for index, report in enumerate(task_reports):
            if index == 0 or report["test_set"] != task_reports[index - 1]["test_set"]:
                lines += [f"### Test set: {report['test_set']}", ""]
            lines += [
                f"#### {report.get('model') or Path(report['scores_file']).parent.as_posix()}",
                "",
                f"- model: {_describe(report.get('model'))}",
                f"- data: {_describe(report.get('data'))}",
                f"- instruction: {_describe(report.get('instruction'))}",
                f"- scores: `{report['scores_file']}`",
                *_similarity_model_line(report),
                "",
                *score_table(report, with_similarity),
                "",
            ]
    lines += list(extra_lines)
    if plots:
        lines += ["## Training curves", ""]
        for experiment, png_path in plots.items():
            link = Path(os.path.relpath(png_path, output_dir)).as_posix()
            lines += [f"### {experiment}", "", f"![training curves of {experiment}]({link})", ""]
    return "\n".join(lines)


def make_plots(exp_dir: Path, plots_dir: Path) -> Dict[str, Path]:
    """Plot every train.log with epoch results; ``{experiment: png_path}``."""
    plots = {}
    for log_path in sorted(exp_dir.glob("**/train.log")):
        epochs = parse_train_log(log_path)
        if not epochs:
            logging.info("%s: no epoch results yet, no plot", log_path)
            continue
        experiment = log_path.parent.relative_to(exp_dir).as_posix()
        png_path = plots_dir / (experiment.replace("/", "__") + ".png")
        plot_training_curves(epochs, experiment, png_path)
        plots[experiment] = png_path
    return plots


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
    )
    parser.add_argument("--exp_dir", type=Path, default=Path("exp"), help="searched recursively")
    parser.add_argument("--output", type=Path, default=Path("RESULTS.md"))
    parser.add_argument("--json", type=Path, help="also write the figures as a JSON list of records")
    parser.add_argument("--plots_dir", type=Path, help="where training-curve PNGs go (default: <exp_dir>/plots)")
    return parser


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    args = get_parser().parse_args(argv)
    if not args.exp_dir.is_dir():
        print(f"make_results: error: {args.exp_dir} is not a directory", file=sys.stderr)
        return 1
    try:
        reports = load_reports(args.exp_dir)
        slu = load_named_reports(args.exp_dir, "slu_scores.json")
        lid = load_named_reports(args.exp_dir, "lid_scores.json")
    except ValueError as error:
        print(f"make_results: error: {error}", file=sys.stderr)
        return 1
    if not reports:
        logging.warning("no scores.json under %s", args.exp_dir)
    plots = make_plots(args.exp_dir, args.plots_dir or args.exp_dir / "plots")

    args.output.parent.mkdir(parents=True, exist_ok=True)
    markdown = render_markdown(reports, plots, args.output.parent, slu_and_lid_lines(slu, lid))
    args.output.write_text(markdown, encoding="utf-8")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        records = summary_records(reports) + slu_and_lid_records(slu, lid)
        args.json.write_text(json.dumps(records, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    logging.info("wrote %s (%d score files, %d training plots)", args.output, len(reports), len(plots))
    return 0


if __name__ == "__main__":
    sys.exit(main())
