"""Scoring of decoded outputs: ASR (CER/WER) and speech translation (BLEU/chrF).

Inputs are Kaldi-style text files: one ``<utt_id> <value>`` per line, where the
value may contain spaces and, for hypotheses, may be empty.

ASR: reference and hypothesis are both passed through Whisper's
``BasicTextNormalizer`` (lower-casing, punctuation/symbols to spaces), then
scored with ``editdistance`` (a dependency of ESPnet).

* Languages written with spaces: CER counts characters of the normalized text
  with whitespace runs collapsed to one space (so a missing word boundary is an
  error); WER counts whitespace-separated words.
* Languages written without spaces (Chinese, Japanese, Thai, Lao, Burmese,
  Khmer): CER counts characters with all whitespace removed, because the
  normalizer turns punctuation into spaces and those must not count as errors;
  WER is not defined (``None``, shown as "n/a"). The pooled WER therefore only
  covers utterances of languages written with spaces.

Caveat inherited from the normalizer: it replaces combining marks (e.g. Thai or
Devanagari vowel signs) by spaces, so errors on those marks are not counted.

Only total edit counts are reported: ``editdistance`` does not return the
substitution/deletion/insertion split. Each row also counts its overlong hypotheses (more than
``OVERLONG_FACTOR`` times its reference's characters) and their character errors: a generation
that loops until its token limit counts several times its reference's length in errors, so a
few of them can dominate a CER.

ST: BLEU and chrF with sacrebleu on the raw text (no normalization),
corpus-level, per language (pair) and pooled. The BLEU tokenizer follows the
target language (see ``bleu_tokenizer_for``); the pooled BLEU sums the
per-language sufficient statistics, so every segment keeps the tokenizer of
its own target language.

Semantic similarity (optional, either task): the cosine between sentence embeddings of
hypothesis and reference (see ``bloomzmms.semantic``), averaged per row and pooled over all
utterances by ``add_semantic_similarity``.
"""

import functools
import logging
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import editdistance
import sacrebleu
from sacrebleu.metrics import BLEU, CHRF
from whisper.normalizers import BasicTextNormalizer

logger = logging.getLogger(__name__)

# ISO 639-1/639-3 base codes (the part before the first "_" or "-") of
# languages whose script does not separate words with spaces.
CHINESE_CODES = {"zh", "cmn", "yue", "zho", "chi"}
JAPANESE_CODES = {"ja", "jpn"}
KOREAN_CODES = {"ko", "kor"}
SOUTHEAST_ASIAN_UNSPACED_CODES = {"th", "tha", "lo", "lao", "my", "mya", "bur", "km", "khm"}
UNSPACED_CODES = CHINESE_CODES | JAPANESE_CODES | SOUTHEAST_ASIAN_UNSPACED_CODES

NORMALIZER_NAME = "whisper.normalizers.BasicTextNormalizer"
SACREBLEU_VERSION = sacrebleu.__version__
_normalizer = BasicTextNormalizer()


class ScoringInputError(ValueError):
    """An input file is malformed or inconsistent with the others."""


def read_kaldi_text(path, allow_empty_value: bool = True) -> Dict[str, str]:
    """Read ``<utt_id> <value>`` lines into a dict, rejecting blank lines and duplicate ids."""
    path = Path(path)
    if not path.is_file():
        raise ScoringInputError(f"{path}: file not found")
    entries: Dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise ScoringInputError(f"{path}: not valid UTF-8 ({error})") from error
    for line_number, line in enumerate(lines, start=1):
        fields = line.strip().split(maxsplit=1)
        if not fields:
            raise ScoringInputError(f"{path}:{line_number}: blank line (expected '<utt_id> <value>')")
        utt_id, value = fields[0], fields[1] if len(fields) == 2 else ""
        if not value and not allow_empty_value:
            raise ScoringInputError(f"{path}:{line_number}: no value after utterance id {utt_id!r}")
        if utt_id in entries:
            raise ScoringInputError(f"{path}:{line_number}: duplicate utterance id {utt_id!r}")
        entries[utt_id] = value
    return entries


def complete_hypotheses(refs: Dict[str, str], hyps: Dict[str, str]) -> Tuple[Dict[str, str], List[str]]:
    """Return hypotheses for every reference (missing ones as ``""``) and the missing ids.

    A hypothesis without a reference means the two files do not belong together,
    so that is an error rather than something to skip silently.
    """
    unknown = [utt_id for utt_id in hyps if utt_id not in refs]
    if unknown:
        shown = ", ".join(unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        raise ScoringInputError(f"{len(unknown)} hypotheses have no reference: {shown}")
    missing = [utt_id for utt_id in refs if utt_id not in hyps]
    return {utt_id: hyps.get(utt_id, "") for utt_id in refs}, missing


def base_language(code: str) -> str:
    """``cmn_hans_cn`` -> ``cmn``, ``de-DE`` -> ``de``."""
    return code.replace("-", "_").split("_")[0].lower()


def is_unspaced(language: Optional[str]) -> bool:
    return language is not None and base_language(language) in UNSPACED_CODES


def _percent(errors: int, length: int) -> Optional[float]:
    return 100.0 * errors / length if length else None


# ---------------------------------------------------------------- ASR ---


# A hypothesis more than this many times as long as its reference (normalized characters) is
# reported as overlong: in practice a generation that looped until its token limit.
OVERLONG_FACTOR = 2


def asr_error_counts(ref: str, hyp: str, unspaced: bool) -> Dict[str, int]:
    """Edit counts of one utterance after Whisper normalization of both sides."""
    ref_words = _normalizer(ref).split()
    hyp_words = _normalizer(hyp).split()
    joiner = "" if unspaced else " "
    ref_chars, hyp_chars = joiner.join(ref_words), joiner.join(hyp_words)
    counts = {
        "ref_chars": len(ref_chars),
        "hyp_chars": len(hyp_chars),
        "char_errors": editdistance.eval(ref_chars, hyp_chars),
        "ref_words": 0,
        "word_errors": 0,
    }
    if not unspaced:
        counts["ref_words"] = len(ref_words)
        counts["word_errors"] = editdistance.eval(ref_words, hyp_words)
    return counts


def _asr_summary(utterances: List[Dict], wer_defined: bool) -> Dict:
    totals = {key: sum(u[key] for u in utterances) for key in ("ref_chars", "char_errors", "ref_words", "word_errors")}
    overlong = [u for u in utterances if u["hyp_chars"] > OVERLONG_FACTOR * u["ref_chars"]]
    return {
        "num_utts": len(utterances),
        "num_missing_hyps": sum(u["missing"] for u in utterances),
        **totals,
        "num_overlong_hyps": len(overlong),
        "overlong_char_errors": sum(u["char_errors"] for u in overlong),
        "cer": _percent(totals["char_errors"], totals["ref_chars"]),
        "wer": _percent(totals["word_errors"], totals["ref_words"]) if wer_defined else None,
    }


def overlong_cell(figures: Dict) -> str:
    """``6 (21%)``: a row's overlong hypotheses and their share of its character errors."""
    errors = figures["char_errors"]
    share = f"{100 * figures['overlong_char_errors'] / errors:.0f}%" if errors else "-"
    return f"{figures['num_overlong_hyps']} ({share})"


def asr_rows(
    refs: Dict[str, str], utt2lang: Optional[Dict[str, str]] = None, default_language: Optional[str] = None
) -> Dict[str, Optional[str]]:
    """The result row (language) of each utterance; ``None``: pooled figures only."""
    return {utt_id: (utt2lang or {}).get(utt_id, default_language) for utt_id in refs}


def score_asr(
    refs: Dict[str, str],
    hyps: Dict[str, str],
    utt2lang: Optional[Dict[str, str]] = None,
    default_language: Optional[str] = None,
) -> Dict:
    """CER/WER per language and pooled.

    The language of an utterance comes from ``utt2lang``, else ``default_language``;
    utterances with no language only count in the pooled figures.
    """
    hyps, missing = complete_hypotheses(refs, hyps)
    missing_set = set(missing)
    by_language: Dict[str, List[Dict]] = {}
    utterances = []
    rows = asr_rows(refs, utt2lang, default_language)
    for utt_id, ref in refs.items():
        language = rows[utt_id]
        counts = asr_error_counts(ref, hyps[utt_id], is_unspaced(language))
        counts["missing"] = utt_id in missing_set
        counts["unspaced"] = is_unspaced(language)
        utterances.append(counts)
        if language is not None:
            by_language.setdefault(language, []).append(counts)
    return {
        "languages": {
            language: _asr_summary(group, wer_defined=not is_unspaced(language))
            for language, group in sorted(by_language.items())
        },
        "pooled": _asr_summary(utterances, wer_defined=not all(u["unspaced"] for u in utterances)),
        "missing_hyp_utts": missing,
    }


# ----------------------------------------------------------------- ST ---


@functools.lru_cache(maxsize=None)
def bleu_tokenizer_for(target_language: str) -> str:
    """sacrebleu tokenizer for a target language.

    zh -> "zh"; ja -> "ja-mecab", ko -> "ko-mecab" (each falls back to "char" with
    a warning when the MeCab extras are not installed); th/lo/my/km -> "char";
    anything else -> "13a". The "flores200" SentencePiece tokenizer is avoided
    because it downloads its model at first use.
    """
    base = base_language(target_language)
    if base in CHINESE_CODES:
        return "zh"
    if base in SOUTHEAST_ASIAN_UNSPACED_CODES:
        return "char"
    if base in JAPANESE_CODES or base in KOREAN_CODES:
        extra = "ja" if base in JAPANESE_CODES else "ko"
        mecab_tokenizer = f"{extra}-mecab"
        try:
            BLEU(tokenize=mecab_tokenizer)
        except RuntimeError:  # sacrebleu raises this when MeCab or its dictionary is missing
            logger.warning(
                "BLEU for %s: tokenizer %s needs 'pip install sacrebleu[%s]'; using 'char' instead",
                target_language,
                mecab_tokenizer,
                extra,
            )
            return "char"
        return mecab_tokenizer
    return "13a"


def _st_group_score(hyps: List[str], refs: List[str], tokenizer: str) -> Tuple[Dict, object]:
    bleu_metric, chrf_metric = BLEU(tokenize=tokenizer), CHRF()
    bleu = bleu_metric.corpus_score(hyps, [refs])
    chrf = chrf_metric.corpus_score(hyps, [refs])
    summary = {
        "bleu": bleu.score,
        "chrf": chrf.score,
        "bleu_tokenizer": tokenizer,
        "bleu_signature": str(bleu_metric.get_signature()),
        "chrf_signature": str(chrf_metric.get_signature()),
        "hyp_len": bleu.sys_len,
        "ref_len": bleu.ref_len,
        "brevity_penalty": bleu.bp,
    }
    return summary, bleu


def st_rows(
    refs: Dict[str, str], utt2target: Dict[str, str], utt2source: Optional[Dict[str, str]] = None
) -> Dict[str, str]:
    """The result row of each utterance: ``source->target`` when the source is known, else ``target``."""
    rows = {}
    for utt_id in refs:
        source = (utt2source or {}).get(utt_id)
        rows[utt_id] = f"{source}->{utt2target[utt_id]}" if source else utt2target[utt_id]
    return rows


def score_st(
    refs: Dict[str, str],
    hyps: Dict[str, str],
    utt2target: Dict[str, str],
    utt2source: Optional[Dict[str, str]] = None,
) -> Dict:
    """BLEU/chrF on raw text per ``source->target`` pair (or per target) and pooled."""
    hyps, missing = complete_hypotheses(refs, hyps)
    missing_set = set(missing)
    groups: Dict[str, Dict] = {}
    for utt_id, key in st_rows(refs, utt2target, utt2source).items():
        group = groups.setdefault(key, {"target": utt2target[utt_id], "utt_ids": []})
        group["utt_ids"].append(utt_id)

    languages, bleu_scores = {}, []
    for key, group in sorted(groups.items()):
        utt_ids = group["utt_ids"]
        summary, bleu = _st_group_score(
            [hyps[u] for u in utt_ids], [refs[u] for u in utt_ids], bleu_tokenizer_for(group["target"])
        )
        languages[key] = {
            "num_utts": len(utt_ids),
            "num_missing_hyps": sum(u in missing_set for u in utt_ids),
            "target_language": group["target"],
            **summary,
        }
        bleu_scores.append(bleu)
    return {
        "languages": languages,
        "pooled": _pooled_st(refs, hyps, languages, bleu_scores, missing),
        "missing_hyp_utts": missing,
    }


def _pooled_st(
    refs: Dict[str, str], hyps: Dict[str, str], languages: Dict, bleu_scores: List, missing: List[str]
) -> Dict:
    # Summing n-gram statistics keeps each segment's own tokenizer; with one
    # language this equals that language's corpus BLEU.
    pooled_bleu = BLEU.compute_bleu(
        correct=[sum(n) for n in zip(*(s.counts for s in bleu_scores))],
        total=[sum(n) for n in zip(*(s.totals for s in bleu_scores))],
        sys_len=sum(s.sys_len for s in bleu_scores),
        ref_len=sum(s.ref_len for s in bleu_scores),
        smooth_method="exp",  # sacrebleu's corpus default, as used per language
    )
    chrf_metric = CHRF()  # character n-grams: no tokenizer involved, so pool directly
    chrf = chrf_metric.corpus_score([hyps[u] for u in refs], [list(refs.values())])
    tokenizers = sorted({group["bleu_tokenizer"] for group in languages.values()})
    signatures = {group["bleu_signature"] for group in languages.values()}
    return {
        "num_utts": len(refs),
        "num_missing_hyps": len(missing),
        "bleu": pooled_bleu.score,
        "chrf": chrf.score,
        "bleu_tokenizer": "+".join(tokenizers),
        # One signature only when every group used the same settings.
        "bleu_signature": signatures.pop() if len(signatures) == 1 else None,
        "chrf_signature": str(chrf_metric.get_signature()),
        "hyp_len": pooled_bleu.sys_len,
        "ref_len": pooled_bleu.ref_len,
        "brevity_penalty": pooled_bleu.bp,
    }


# ------------------------------------------------------------ semantic ---


def _mean(values: List[float]) -> Optional[float]:
    return sum(values) / len(values) if values else None


def add_semantic_similarity(scores: Dict, similarities: Dict[str, float], utt2row: Dict[str, Optional[str]]) -> None:
    """Add ``semantic_similarity`` (mean cosine) to every row of ``scores`` and to the pooled figures.

    ``similarities`` holds one value per utterance of ``utt2row`` (the row map that
    ``asr_rows``/``st_rows`` gave the scores); utterances without a row count in the pooled mean only.
    """
    unscored = [utt_id for utt_id in utt2row if utt_id not in similarities]
    if unscored:
        raise ScoringInputError(f"no semantic similarity for {len(unscored)} utterances, e.g. {unscored[0]!r}")
    by_row: Dict[str, List[float]] = {}
    for utt_id, row in utt2row.items():
        if row is not None:
            by_row.setdefault(row, []).append(similarities[utt_id])
    for row, figures in scores["languages"].items():
        figures["semantic_similarity"] = _mean(by_row.get(row, []))
    scores["pooled"]["semantic_similarity"] = _mean([similarities[utt_id] for utt_id in utt2row])
