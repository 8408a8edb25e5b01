#!/usr/bin/env python3
"""Build the stand-in models of the mini recipe: a small LLM and a small speech encoder, both
trained here, on the mini corpus, in a few minutes on CPU.

The paper's frozen models are BLOOMZ-7b1 (an instruction-tuned multilingual LLM) and MMS-1B-all
(a wav2vec2 model fine-tuned with CTC for multilingual ASR). Their stand-ins keep the architecture
and the role, at a size a laptop trains:

  * <output_dir>/llm: a byte-level BPE tokenizer (BLOOM's special ids <unk>=0 <s>=1 </s>=2
    <pad>=3) trained on the training transcripts plus the instruction strings, and a tiny
    ``BloomForCausalLM`` pretrained from scratch on the TRAINING sentences only, in instruction
    form (conf/instructions/mini_pretraining.yaml): it repeats a sentence after
    "Repeat the sentence: " (the paper's ASR instruction) and translates between the corpus's
    languages after xP3-like instructions. Input = prefix + source + postfix; the loss covers
    the response + EOS only. ``eval.json``: repeat exact match/CER and translation BLEU/chrF on
    held-out sentences (``--test_dir``, else ``--dev_dir``), gold text in, greedy decoding.
  * <output_dir>/speech_encoder: a tiny ``Wav2Vec2ForCTC`` (20 ms frames at 16 kHz) trained from
    scratch with CTC on the lower-cased characters of the training transcripts, saved with its
    CTC tokenizer and feature extractor. ``AutoModel.from_pretrained`` loads its Wav2Vec2Model
    body, which the recipe's frontend (bloomzmms/asr/frontend.py) runs frozen. ``eval.json``:
    greedy CTC character error rate on ``--dev_dir``.

Idempotent: each model directory holds a ``.done`` stamp with the hash of its config section and
of its inputs (data files and audio, instruction files); a matching stamp skips that model, so a
re-run is a no-op and a config change rebuilds only the model it concerns. A model is built in
<name>.partial and renamed into place when complete, so an interrupted run re-runs cleanly.
<output_dir>/.done holds both hashes and the build summary.

Usage:
    python local/make_standin_models.py --config conf/mini/standin.yaml \\
        --train_dir data/train_fleurs --dev_dir data/dev_fleurs --test_dir data/test_fleurs \\
        --output_dir exp/standin [--smoke]
"""

import argparse
import collections
import dataclasses
import hashlib
import json
import logging
import math
import random
import shutil
import sys
import time
import unicodedata
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import editdistance
import numpy as np
import soundfile
import torch
import yaml
from tqdm import tqdm

RECIPE_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(RECIPE_ROOT))  # bloomzmms, when run from a checkout without installing it

from bloomzmms.cli import start_logging  # noqa: E402
from bloomzmms.instructions import load_translation_instruction, unescape_instruction  # noqa: E402
from bloomzmms.standin import causal_lm_config, speech_encoder_config, train_tokenizer  # noqa: E402

SAMPLE_RATE = 16000
# Bump when what a build writes changes, so that older outputs are rebuilt.
FORMAT_VERSION = 1
DATA_FILES = ("text", "utt2lang", "utt2sentence")
IGNORE_INDEX = -100
WORD_DELIMITER = "|"


# ------------------------------------------------------------------------------ config ---


def deep_update(base: dict, override: dict) -> dict:
    """``base`` with ``override`` merged in, nested mappings key by key."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_update(merged[key], value)
        else:
            merged[key] = value
    return merged


def recipe_path(path) -> Path:
    """A config path: absolute, or relative to the recipe root (the folder holding local/)."""
    path = Path(path)
    return path if path.is_absolute() else RECIPE_ROOT / path


def load_config(path, smoke: bool = False) -> dict:
    """The stand-in config; with ``smoke``, its ``smoke`` section overrides it (nested keys)."""
    with open(path, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    smoke_overrides = config.pop("smoke", None) or {}
    if smoke:
        config = deep_update(config, smoke_overrides)
    return config


# -------------------------------------------------------------------------------- data ---


@dataclasses.dataclass(frozen=True)
class Utterance:
    utt_id: str
    text: str
    language: str
    sentence_id: str
    wav_path: str


def read_kv(path: Path) -> Dict[str, str]:
    entries = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition(" ")
        if key:
            entries[key] = value
    return entries


def read_data_dir(data_dir) -> List[Utterance]:
    """The utterances of a prepared data directory (local/prepare_fleurs.py), sorted by id."""
    data_dir = Path(data_dir)
    files = {name: read_kv(data_dir / name) for name in (*DATA_FILES, "wav.scp")}
    utt_ids = sorted(files["text"])
    for name, entries in files.items():
        missing = [utt for utt in utt_ids if utt not in entries]
        if missing:
            raise ValueError(f"{data_dir / name}: no entry for {len(missing)} utterance(s), e.g. {missing[0]}")
    return [
        Utterance(utt, files["text"][utt], files["utt2lang"][utt], files["utt2sentence"][utt], files["wav.scp"][utt])
        for utt in utt_ids
    ]


def sentence_table(utterances: Iterable[Utterance]) -> Dict[str, Dict[str, str]]:
    """{sentence id: {language: raw text}}: the distinct sentences (one per recording group)."""
    table = collections.defaultdict(dict)
    for utt in utterances:
        known = table[utt.sentence_id].setdefault(utt.language, utt.text)
        if known != utt.text:
            raise ValueError(f"sentence {utt.sentence_id} ({utt.language}) has two texts: {known!r} / {utt.text!r}")
    return {sid: dict(sorted(texts.items())) for sid, texts in sorted(table.items(), key=lambda kv: _sid_key(kv[0]))}


def _sid_key(sentence_id: str):
    return (0, int(sentence_id), "") if sentence_id.isdigit() else (1, 0, sentence_id)


def sha256_of_files(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path).encode() + b"\0")
        digest.update(hashlib.sha256(Path(path).read_bytes()).digest())
    return digest.hexdigest()


def data_dir_digest(data_dir, with_audio: bool = False) -> str:
    """Hash of a data directory's text files and, ``with_audio``, of its audio content."""
    data_dir = Path(data_dir)
    digest = hashlib.sha256()
    for name in (*DATA_FILES, "wav.scp"):
        digest.update(name.encode() + b"\0" + hashlib.sha256((data_dir / name).read_bytes()).digest())
    if with_audio:
        for utt in read_data_dir(data_dir):
            digest.update(hashlib.sha256(Path(utt.wav_path).read_bytes()).digest())
    return digest.hexdigest()


def fingerprint(payload: dict) -> str:
    return hashlib.sha256(json.dumps({**payload, "format": FORMAT_VERSION}, sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------------- LLM: examples ---


@dataclasses.dataclass(frozen=True)
class Form:
    """One instruction form; ``prefix``/``postfix`` may hold {source}/{target} placeholders."""

    task: str
    prefix: str
    postfix: str
    weight: float = 1.0

    def fill(self, names: Dict[str, str], source: str, target: Optional[str] = None) -> Tuple[str, str]:
        fill = {"source": names[source], "target": names[target] if target else ""}
        return self.prefix.format(**fill), self.postfix.format(**fill)


TASKS = ("repeat", "translation", "language_identification")


def load_forms(path) -> Tuple[Dict[str, List[Form]], Dict[str, float]]:
    """({task: forms}, {task: weight}) of an instruction-forms file (mini_pretraining.yaml)."""
    with open(path, encoding="utf-8") as f:
        content = yaml.safe_load(f)
    forms, weights = {}, {}
    for task, section in (content.get("tasks") or {}).items():
        if task not in TASKS:
            raise ValueError(f"{path}: unknown task {task!r} (known: {', '.join(TASKS)})")
        weights[task] = float(section.get("weight", 1.0))
        forms[task] = [
            Form(task, unescape_instruction(entry.get("prefix") or ""), unescape_instruction(entry.get("postfix") or ""),
                 float(entry.get("weight", 1.0)))
            for entry in section["forms"]
        ]
        if not forms[task]:
            raise ValueError(f"{path}: task {task} has no forms")
    if not forms:
        raise ValueError(f"{path}: no tasks")
    return forms, weights


@dataclasses.dataclass(frozen=True)
class Example:
    """An instruction example: the model reads prefix + source + postfix, answers response."""

    task: str
    prefix: str
    source: str
    postfix: str
    response: str
    sentence_id: str


def split_punctuation(word: str) -> Tuple[str, str]:
    """("Bett", ".") for "Bett.": a word and the punctuation it ends with."""
    stem = word.rstrip(".,;:!?")
    return stem, word[len(stem):]


class ExampleSampler:
    """Draws instruction examples from a sentence table (seeded by the caller's ``rng``).

    repeat: a sentence in one language -> itself; translation: a sentence id present in two
    languages -> its text in the other; language_identification: a sentence -> its language's name.

    Two augmentations keep a model this small from answering by recalling a memorized training
    sentence instead of reading the source (held-out sentences are new combinations of seen
    words, and the recipe's ASR instruction asks for an exact copy):

    * ``recombine_prob``: a repeat example's sentence gets each word (with probability
      ``replace_prob``) replaced by another word seen in training in that language: a copy task
      on new word combinations;
    * ``concat_prob``: a translation example joins two sentence pairs ("S1 S2" -> "T1 T2").

    ``exclude``: texts never to produce as a source or response (the held-out sentences: a
    recombination could hit one by chance); such draws are redrawn.
    """

    def __init__(self, table: Dict[str, Dict[str, str]], forms: Dict[str, List[Form]],
                 task_weights: Dict[str, float], names: Dict[str, str], recombine_prob: float = 0.0,
                 replace_prob: float = 0.3, concat_prob: float = 0.0, exclude: Iterable[str] = ()):
        self.names = names
        self.forms = forms
        self.table = table
        self.entries = [(sid, lang) for sid, texts in table.items() for lang in texts]
        self.pairs = [(sid, s, t) for sid, texts in table.items() for s in texts for t in texts if s != t]
        self.tasks = [task for task in forms if task_weights.get(task, 0) > 0 and (task != "translation" or self.pairs)]
        if not self.tasks or not self.entries:
            raise ValueError("no pretraining examples: empty sentence table or all task weights zero")
        self.task_weights = [task_weights[task] for task in self.tasks]
        missing = sorted({lang for _, lang in self.entries} - set(names))
        if missing:
            raise ValueError(f"no language name for {missing}")
        self.recombine_prob, self.replace_prob, self.concat_prob = recombine_prob, replace_prob, concat_prob
        self.exclude = frozenset(exclude)
        # Words as they occur inside sentences (natural case), per language.
        words = collections.defaultdict(set)
        for texts in table.values():
            for lang, text in texts.items():
                words[lang].update(split_punctuation(word)[0] for word in text.split()[1:])
        self.words = {lang: sorted(w for w in ws if w) for lang, ws in words.items()}
        self.redraws = 0

    def recombine(self, text: str, language: str, rng: random.Random) -> str:
        vocabulary = self.words.get(language)
        if not vocabulary:
            return text
        words = text.split()
        for i, word in enumerate(words):
            if rng.random() < self.replace_prob:
                stem, punctuation = split_punctuation(word)
                new = rng.choice(vocabulary)
                words[i] = (new[:1].upper() + new[1:] if i == 0 else new) + punctuation
        return " ".join(words)

    def sample(self, rng: random.Random) -> Example:
        while True:
            example = self._draw(rng)
            if example.source not in self.exclude and example.response not in self.exclude:
                return example
            self.redraws += 1

    def _draw(self, rng: random.Random) -> Example:
        task = rng.choices(self.tasks, self.task_weights)[0]
        form = rng.choices(self.forms[task], [f.weight for f in self.forms[task]])[0]
        target = None
        if task == "translation":
            sid, source_language, target = rng.choice(self.pairs)
            source, response = self.table[sid][source_language], self.table[sid][target]
            if rng.random() < self.concat_prob:
                other = self.table[rng.choice(self.pairs)[0]]
                if source_language in other and target in other:
                    source, response = f"{source} {other[source_language]}", f"{response} {other[target]}"
        else:
            sid, source_language = rng.choice(self.entries)
            source = self.table[sid][source_language]
            if task == "repeat" and rng.random() < self.recombine_prob:
                source = self.recombine(source, source_language, rng)
            response = source if task == "repeat" else self.names[source_language]
        prefix, postfix = form.fill(self.names, source_language, target)
        return Example(task, prefix, source, postfix, response, sid)


class ExampleEncoder:
    """Token ids and labels of an example: the instruction is masked (IGNORE_INDEX), the response
    and EOS are the targets.

    The prompt is tokenized either as one string (as bloomzmms/bin/llm_generate.py does) or
    segment by segment (prefix, source and postfix apart, as the ASR decoder encodes the prefix
    and postfix around the speech); the response is always tokenized alone, as the recipe's
    targets are.
    """

    def __init__(self, tokenizer, max_length: int = 256):
        self.tokenizer = tokenizer
        self.eos_id = tokenizer.eos_token_id
        self.max_length = max_length
        self._cache: Dict[str, List[int]] = {}

    def ids(self, text: str) -> List[int]:
        if not text:
            return []
        if text not in self._cache:
            self._cache[text] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return self._cache[text]

    def prompt_ids(self, example: Example, joint: bool) -> List[int]:
        if joint:
            return list(self.ids(example.prefix + example.source + example.postfix))
        return self.ids(example.prefix) + self.ids(example.source) + self.ids(example.postfix)

    def __call__(self, example: Example, joint: bool) -> Tuple[List[int], List[int]]:
        prompt = self.prompt_ids(example, joint)
        response = self.ids(example.response) + [self.eos_id]
        input_ids = (prompt + response)[: self.max_length]
        labels = ([IGNORE_INDEX] * len(prompt) + response)[: self.max_length]
        return input_ids, labels


def collate(encoded: Sequence[Tuple[List[int], List[int]]], pad_id: int):
    """Right-padded (input_ids, attention_mask, labels) tensors."""
    length = max(len(ids) for ids, _ in encoded)
    input_ids = torch.full((len(encoded), length), pad_id, dtype=torch.long)
    labels = torch.full((len(encoded), length), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(encoded), length), dtype=torch.long)
    for row, (ids, labs) in enumerate(encoded):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(labs)] = torch.tensor(labs)
        attention_mask[row, : len(ids)] = 1
    return input_ids, attention_mask, labels


def warmup_cosine(optimizer, warmup_steps: int, total_steps: int, final_lr_ratio: float = 0.1):
    """Linear warm-up, then cosine decay to ``final_lr_ratio`` of the peak."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return final_lr_ratio + (1 - final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def make_optimizer(model, train: dict):
    return torch.optim.AdamW(model.parameters(), lr=float(train["lr"]), betas=(0.9, 0.98),
                             weight_decay=float(train.get("weight_decay", 0.0)))


class RunningMean:
    def __init__(self, size: int = 50):
        self.values = collections.deque(maxlen=size)

    def add(self, value: float):
        self.values.append(value)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else float("nan")


def pretrain_llm(model, encoder: ExampleEncoder, sampler: ExampleSampler, train: dict, seed: int) -> dict:
    """Instruction pretraining of ``model``; returns the loss statistics."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    steps, batch_size = int(train["steps"]), int(train["batch_size"])
    optimizer = make_optimizer(model, train)
    scheduler = warmup_cosine(optimizer, int(train.get("warmup_steps", 0)), steps, float(train.get("final_lr_ratio", 0.1)))
    joint_prob = float(train.get("joint_prompt_prob", 0.5))
    # Examples are drawn `length_pool` batches at a time and grouped by length (less padding).
    length_pool = int(train.get("length_pool", 1))
    pad_id = encoder.tokenizer.pad_token_id
    running, first_loss, tokens, padded = RunningMean(), None, 0, 0
    pending: List[List[Tuple[List[int], List[int]]]] = []
    model.train()
    progress = tqdm(range(steps), desc="LLM pretraining", unit="step", mininterval=2)
    for step in progress:
        if not pending:
            pool = [encoder(sampler.sample(rng), joint=rng.random() < joint_prob)
                    for _ in range(batch_size * min(length_pool, steps - step))]
            pool.sort(key=lambda example: len(example[0]))
            pending = [pool[i : i + batch_size] for i in range(0, len(pool), batch_size)]
            rng.shuffle(pending)
        batch = pending.pop()
        input_ids, attention_mask, labels = collate(batch, pad_id)
        tokens += int(attention_mask.sum())
        padded += attention_mask.numel()
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), float(train.get("grad_clip", 1.0)))
        optimizer.step()
        scheduler.step()
        running.add(loss.item())
        first_loss = running.mean if first_loss is None else first_loss
        if step % 10 == 0 or step == steps - 1:
            progress.set_postfix(loss=f"{running.mean:.3f}")
    model.eval()
    return {"steps": steps, "batch_size": batch_size, "first_loss": first_loss, "final_loss": running.mean,
            "tokens": tokens, "padding_fraction": round(1 - tokens / max(1, padded), 3), "redraws": sampler.redraws}


# ------------------------------------------------------------------ LLM: evaluation ---


@torch.no_grad()
def generate(model, tokenizer, prompts: Sequence[List[int]], max_new_tokens: int, batch_size: int = 64) -> List[str]:
    """Greedy responses to token-id prompts, in left-padded batches (longest first)."""
    eos_id, pad_id = tokenizer.eos_token_id, tokenizer.pad_token_id
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    responses = [""] * len(prompts)
    for start in range(0, len(order), batch_size):
        rows = [prompts[i] for i in order[start : start + batch_size]]
        length = max(len(row) for row in rows)
        input_ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
        for r, row in enumerate(rows):
            input_ids[r, length - len(row):] = torch.tensor(row)
            attention_mask[r, length - len(row):] = 1
        output = model.generate(input_ids=input_ids, attention_mask=attention_mask, do_sample=False, num_beams=1,
                                max_new_tokens=max_new_tokens, eos_token_id=eos_id, pad_token_id=pad_id)
        for i, row in zip(order[start : start + batch_size], output[:, length:].tolist()):
            if eos_id in row:
                row = row[: row.index(eos_id)]
            responses[i] = tokenizer.decode(row, skip_special_tokens=True).strip()
    return responses


def character_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    errors = sum(editdistance.eval(ref, hyp) for ref, hyp in zip(references, hypotheses))
    return errors / max(1, sum(len(ref) for ref in references))


def evaluate_llm(model, encoder: ExampleEncoder, table: Dict[str, Dict[str, str]], forms: Dict[str, List[Form]],
                 names: Dict[str, str], evaluation: dict) -> dict:
    """Repeat (exact match, CER) and translation (BLEU, chrF) from gold text, greedy decoding.

    Repeat uses the first repeat form (the paper's ASR instruction), translation the first
    translation form (the recipe's speech-translation instruction); the prompt is tokenized as
    one string.
    """
    from sacrebleu.metrics import BLEU, CHRF

    tokenizer = encoder.tokenizer
    max_new_tokens = int(evaluation.get("max_new_tokens", 64))
    joint = bool(evaluation.get("joint_prompt", True))
    examples = {}
    if "repeat" in forms:
        prefix, postfix = forms["repeat"][0].fill(names, next(iter(names)))
        examples["repeat"] = [
            Example("repeat", prefix, text, postfix, text, sid) for sid, texts in table.items() for text in texts.values()
        ]
    if "translation" in forms:
        for direction in evaluation.get("directions", []):
            source, target = direction.split("-")
            prefix, postfix = forms["translation"][0].fill(names, source, target)
            pairs = [Example("translation", prefix, texts[source], postfix, texts[target], sid)
                     for sid, texts in table.items() if source in texts and target in texts]
            if pairs:
                examples[direction] = pairs
            else:
                logging.warning("no held-out sentence in both %s and %s: %s not evaluated", source, target, direction)
    flat = [(key, example) for key, group in examples.items() for example in group]
    hypotheses = generate(model, tokenizer, [encoder.prompt_ids(example, joint) for _, example in flat], max_new_tokens)
    by_key = collections.defaultdict(list)
    for (key, example), hypothesis in zip(flat, hypotheses):
        by_key[key].append((example, hypothesis))
    results = {"sentences": len(table), "max_new_tokens": max_new_tokens, "prompt_tokenization": "joint" if joint else "segments"}
    if "repeat" in by_key:
        pairs = by_key.pop("repeat")
        refs, hyps = [e.response for e, _ in pairs], [h for _, h in pairs]
        results["repeat"] = {
            "instruction": [forms["repeat"][0].prefix, forms["repeat"][0].postfix],
            "utterances": len(pairs),
            "exact_match": sum(r == h for r, h in zip(refs, hyps)) / max(1, len(pairs)),
            "cer": character_error_rate(refs, hyps),
            "examples": [{"reference": r, "hypothesis": h} for r, h in list(zip(refs, hyps))[:4]],
        }
    translation = {}
    for key, pairs in by_key.items():
        refs, hyps = [e.response for e, _ in pairs], [h for _, h in pairs]
        translation[key] = {
            "sentences": len(pairs),
            "bleu": round(BLEU().corpus_score(hyps, [refs]).score, 2),
            "chrf": round(CHRF().corpus_score(hyps, [refs]).score, 2),
            "examples": [{"source": e.source, "reference": e.response, "hypothesis": h} for e, h in pairs[:2]],
        }
    if translation:
        results["translation"] = {
            "instruction": [forms["translation"][0].prefix, forms["translation"][0].postfix],
            "directions": translation,
            "mean_bleu": round(float(np.mean([d["bleu"] for d in translation.values()])), 2),
            "mean_chrf": round(float(np.mean([d["chrf"] for d in translation.values()])), 2),
        }
    return results


# --------------------------------------------------------------------------- LLM: build ---


def instruction_strings(forms: Dict[str, List[Form]], names: Dict[str, str], languages: Sequence[str]) -> List[str]:
    """Every instruction string the forms make for ``languages`` (for the tokenizer)."""
    strings = set()
    for task_forms in forms.values():
        for form in task_forms:
            for source in languages:
                for target in languages:
                    strings.update(form.fill(names, source, target))
    strings.update(names[lang] for lang in languages)
    return sorted(s for s in strings if s)


def extra_instruction_strings(paths: Iterable) -> List[str]:
    """The prefix/postfix strings found anywhere in YAML files (e.g. the recipe's MI templates)."""
    strings = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("prefix", "postfix") and isinstance(value, str) and value:
                    strings.append(unescape_instruction(value))
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in paths:
        with open(recipe_path(path), encoding="utf-8") as f:
            walk(yaml.safe_load(f))
    return strings


def language_names(config: dict) -> Dict[str, str]:
    return load_translation_instruction(recipe_path(config["language_names"])).languages


def make_llm(config: dict, train_utts: List[Utterance], eval_utts: List[Utterance], dev_utts: List[Utterance],
             output_dir: Path) -> dict:
    """Tokenizer + pretrained stand-in LLM + eval.json in ``output_dir``; returns the summary."""
    from transformers import BloomForCausalLM

    section = config["llm"]
    start = time.time()
    names = language_names(config)
    forms, task_weights = load_forms(recipe_path(section["instructions"]))
    table = sentence_table(train_utts)
    languages = sorted({utt.language for utt in train_utts})
    held_out_utts = [*eval_utts, *dev_utts]
    check_held_out(table, sentence_table(held_out_utts))

    tokenizer_section = config["tokenizer"]
    texts = [text for texts in table.values() for text in texts.values()]
    texts += instruction_strings(forms, names, languages)
    texts += extra_instruction_strings(tokenizer_section.get("extra_instruction_files") or [])
    tokenizer = train_tokenizer(texts, int(tokenizer_section["vocab_size"]), str(output_dir))

    torch.manual_seed(int(config["seed"]))
    model_config = causal_lm_config(
        "bloom", tokenizer, hidden_size=int(section["hidden_size"]), num_layers=int(section["num_layers"]),
        num_heads=int(section["num_heads"]), vocab_padding=int(section.get("vocab_padding", 8)),
    )
    model_config.hidden_dropout = model_config.attention_dropout = float(section.get("dropout", 0.0))
    model = BloomForCausalLM(model_config)
    num_parameters = sum(p.numel() for p in model.parameters())
    logging.info("LLM: BloomForCausalLM, %.2fM parameters (hidden %d, %d layers, %d heads, vocabulary %d + %d padding)",
                 num_parameters / 1e6, model_config.hidden_size, model_config.n_layer, model_config.n_head,
                 len(tokenizer), model_config.vocab_size - len(tokenizer))
    held_out = {text for texts in sentence_table(held_out_utts).values() for text in texts.values()}
    augmentation = section.get("augmentation") or {}
    sampler = ExampleSampler(table, forms, task_weights, names, exclude=held_out, **augmentation)
    encoder = ExampleEncoder(tokenizer, int(section["train"].get("max_length", 256)))
    logging.info("LLM pretraining on %d training sentences x %d languages (%d translation pairs), tasks %s",
                 len(table), len(languages), len(sampler.pairs), dict(zip(sampler.tasks, sampler.task_weights)))
    train_start = time.time()
    stats = pretrain_llm(model, encoder, sampler, section["train"], int(config["seed"]))
    train_seconds = time.time() - train_start
    model.config.hidden_dropout = model.config.attention_dropout = 0.0  # frozen in the recipe, as BLOOMZ's
    model.save_pretrained(str(output_dir))
    tokenizer.save_pretrained(str(output_dir))

    eval_start = time.time()
    evaluation = evaluate_llm(model, encoder, sentence_table(eval_utts), forms, names, section.get("eval") or {})
    evaluation["eval_set"] = config.get("_llm_eval_dir")
    if section.get("eval", {}).get("train_sentences"):
        sample = dict(list(table.items())[: int(section["eval"]["train_sentences"])])
        evaluation["training_sentences"] = summarize_eval(
            evaluate_llm(model, encoder, sample, forms, names, section["eval"]))
    eval_seconds = time.time() - eval_start
    summary = {
        "parameters": num_parameters,
        "hidden_size": model_config.hidden_size,
        "num_layers": model_config.n_layer,
        "num_heads": model_config.n_head,
        "tokenizer_vocab_size": len(tokenizer),
        "embedding_rows": model_config.vocab_size,
        "training_sentences": len(table),
        **stats,
        "train_seconds": round(train_seconds, 1),
        "eval_seconds": round(eval_seconds, 1),
        "total_seconds": round(time.time() - start, 1),
    }
    evaluation["training"] = summary
    (output_dir / "eval.json").write_text(json.dumps(evaluation, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return {**summary, **summarize_eval(evaluation)}


def summarize_eval(evaluation: dict) -> dict:
    summary = {}
    if "repeat" in evaluation:
        summary["repeat_exact_match"] = round(evaluation["repeat"]["exact_match"], 4)
        summary["repeat_cer"] = round(evaluation["repeat"]["cer"], 4)
    if "translation" in evaluation:
        summary["bleu"] = {key: d["bleu"] for key, d in evaluation["translation"]["directions"].items()}
        summary["mean_bleu"] = evaluation["translation"]["mean_bleu"]
    return summary


def check_held_out(train_table: Dict[str, Dict[str, str]], held_out_table: Dict[str, Dict[str, str]]):
    """Held-out sentences must share neither an id nor a text with the training sentences."""
    shared_ids = sorted(set(train_table) & set(held_out_table), key=_sid_key)
    if shared_ids:
        raise ValueError(f"sentence ids in both the training and the held-out data: {shared_ids[:5]}")
    train_texts = {text for texts in train_table.values() for text in texts.values()}
    shared_texts = sorted({text for texts in held_out_table.values() for text in texts.values()} & train_texts)
    if shared_texts:
        logging.warning("%d held-out sentence text(s) also occur in training, e.g. %r", len(shared_texts), shared_texts[0])


# ------------------------------------------------------------------- speech encoder ---


def normalize_transcript(text: str) -> str:
    """Lower case, punctuation dropped except apostrophes, whitespace collapsed."""
    kept = "".join(c for c in text.lower() if c in "'’" or not unicodedata.category(c).startswith(("P", "S", "C")))
    return " ".join(kept.replace("’", "'").split())


def character_vocabulary(transcripts: Iterable[str]) -> Dict[str, int]:
    """CTC vocabulary: <pad> (the blank) = 0, <unk> = 1, "|" (word delimiter), then the characters."""
    characters = sorted({c for text in transcripts for c in text if c != " "})
    vocab = {"<pad>": 0, "<unk>": 1, WORD_DELIMITER: 2}
    for character in characters:
        vocab.setdefault(character, len(vocab))
    return vocab


def encode_characters(text: str, vocab: Dict[str, int]) -> List[int]:
    return [vocab.get(WORD_DELIMITER if c == " " else c, vocab["<unk>"]) for c in text]


def load_audio(utterances: Sequence[Utterance], desc: str) -> List[np.ndarray]:
    """The waveforms, zero-mean unit-variance per utterance (as the recipe's frontend feeds them)."""
    waveforms = []
    for utt in tqdm(utterances, desc=desc, unit="utt", mininterval=2):
        audio, rate = soundfile.read(utt.wav_path, dtype="float32")
        if rate != SAMPLE_RATE or audio.ndim != 1:
            raise ValueError(f"{utt.wav_path}: expected 16 kHz mono audio, got {rate} Hz, shape {audio.shape}")
        waveforms.append(((audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)).astype(np.float32))
    return waveforms


def length_batches(lengths: Sequence[int], max_samples: int, rng: Optional[random.Random] = None) -> List[List[int]]:
    """Batches of indices of similar length, at most ``max_samples`` padded samples each; shuffled
    (batch order and ties) when ``rng`` is given."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], rng.random() if rng else i))
    batches, current = [], []
    for index in order:
        if current and lengths[index] * (len(current) + 1) > max_samples:
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    if rng:
        rng.shuffle(batches)
    return batches


def pad_waveforms(waveforms: Sequence[np.ndarray]) -> Tuple[torch.Tensor, torch.Tensor]:
    length = max(len(w) for w in waveforms)
    batch = torch.zeros((len(waveforms), length))
    mask = torch.zeros((len(waveforms), length), dtype=torch.long)
    for row, waveform in enumerate(waveforms):
        batch[row, : len(waveform)] = torch.from_numpy(waveform)
        mask[row, : len(waveform)] = 1
    return batch, mask


def ctc_greedy(logits: torch.Tensor, lengths: torch.Tensor, id_to_char: Dict[int, str], blank: int = 0) -> List[str]:
    texts = []
    for row, length in zip(logits.argmax(-1).tolist(), lengths.tolist()):
        row = row[:length]
        ids = [t for i, t in enumerate(row) if t != blank and (i == 0 or t != row[i - 1])]
        text = "".join(" " if id_to_char[t] == WORD_DELIMITER else id_to_char[t] for t in ids)
        texts.append(" ".join(text.split()))
    return texts


def gabor_filterbank(num_filters: int, kernel_size: int, min_hz: float, max_hz: float) -> torch.Tensor:
    """(num_filters, 1, kernel_size) Hann-windowed cosine/sine (quadrature) pairs at mel-spaced
    centre frequencies, unit norm: a first conv layer that starts out as a filterbank."""

    def mel(hz):
        return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)

    def hz(mels):
        return 700.0 * (10.0 ** (np.asarray(mels) / 2595.0) - 1.0)

    num_bands = (num_filters + 1) // 2
    centres = hz(np.linspace(mel(min_hz), mel(max_hz), num_bands))
    t = (np.arange(kernel_size) - (kernel_size - 1) / 2) / SAMPLE_RATE
    window = np.hanning(kernel_size + 2)[1:-1]
    filters = []
    for centre in centres:
        filters.append(window * np.cos(2 * np.pi * centre * t))
        filters.append(window * np.sin(2 * np.pi * centre * t))
    filters = np.stack(filters[:num_filters])
    filters /= np.linalg.norm(filters, axis=1, keepdims=True) + 1e-8
    return torch.tensor(filters, dtype=torch.float32)[:, None, :]


def init_filterbank(model, min_hz: float, max_hz: float):
    """Start the first conv layer of a Wav2Vec2(ForCTC) model as a Gabor filterbank."""
    conv = model.wav2vec2.feature_extractor.conv_layers[0].conv
    with torch.no_grad():
        conv.weight.copy_(gabor_filterbank(conv.out_channels, conv.kernel_size[0], min_hz, max_hz))
        if conv.bias is not None:
            conv.bias.zero_()


def train_speech_encoder(model, waveforms, labels, train: dict, seed: int) -> dict:
    """CTC training of a Wav2Vec2ForCTC on normalized waveforms; returns the loss statistics."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    lengths = [len(w) for w in waveforms]
    max_samples = int(float(train["max_batch_seconds"]) * SAMPLE_RATE)
    epochs = float(train["epochs"])
    steps_per_epoch = len(length_batches(lengths, max_samples))
    steps = max(1, int(round(epochs * steps_per_epoch)))
    optimizer = make_optimizer(model, train)
    scheduler = warmup_cosine(optimizer, int(train.get("warmup_steps", 0)), steps, float(train.get("final_lr_ratio", 0.05)))
    running, first_loss = RunningMean(), None
    model.train()
    progress = tqdm(total=steps, desc="speech encoder CTC", unit="step", mininterval=2)
    step = 0
    sortagrad = bool(train.get("sortagrad", False))
    while step < steps:
        batches = length_batches(lengths, max_samples, rng)
        if sortagrad and step == 0:  # the first epoch goes from the shortest utterances up
            batches.sort(key=lambda batch: max(lengths[i] for i in batch))
        for batch in batches:
            if step >= steps:
                break
            audio, mask = pad_waveforms([waveforms[i] for i in batch])
            target_length = max(len(labels[i]) for i in batch)
            target = torch.full((len(batch), target_length), IGNORE_INDEX, dtype=torch.long)
            for row, i in enumerate(batch):
                target[row, : len(labels[i])] = torch.tensor(labels[i])
            loss = model(audio, attention_mask=mask, labels=target).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), float(train.get("grad_clip", 5.0)))
            optimizer.step()
            scheduler.step()
            running.add(loss.item())
            first_loss = running.mean if first_loss is None else first_loss
            step += 1
            progress.update()
            if step % 10 == 0:
                progress.set_postfix(loss=f"{running.mean:.3f}")
    progress.close()
    model.eval()
    return {"steps": steps, "epochs": epochs, "steps_per_epoch": steps_per_epoch,
            "first_loss": first_loss, "final_loss": running.mean}


@torch.no_grad()
def evaluate_ctc(model, waveforms, references: Sequence[str], id_to_char: Dict[int, str], max_batch_seconds: float) -> dict:
    lengths = [len(w) for w in waveforms]
    hypotheses = [""] * len(waveforms)
    for batch in length_batches(lengths, int(max_batch_seconds * SAMPLE_RATE)):
        audio, mask = pad_waveforms([waveforms[i] for i in batch])
        logits = model(audio, attention_mask=mask).logits
        frames = model._get_feat_extract_output_lengths(mask.sum(-1))
        for i, text in zip(batch, ctc_greedy(logits, frames, id_to_char)):
            hypotheses[i] = text
    return {
        "utterances": len(references),
        "cer": character_error_rate(references, hypotheses),
        "examples": [{"reference": r, "hypothesis": h} for r, h in list(zip(references, hypotheses))[:6]],
    }


def make_speech_encoder(config: dict, train_utts: List[Utterance], dev_utts: List[Utterance], output_dir: Path) -> dict:
    """Tiny wav2vec2 trained with character CTC, saved with its processor, + eval.json."""
    from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC, Wav2Vec2Processor

    section = config["speech_encoder"]
    start = time.time()
    transcripts = [normalize_transcript(utt.text) for utt in train_utts]
    vocab = character_vocabulary(transcripts)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    processor = Wav2Vec2Processor(
        feature_extractor=Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0,
                                                   do_normalize=True, return_attention_mask=True),
        tokenizer=Wav2Vec2CTCTokenizer(str(output_dir / "vocab.json"), unk_token="<unk>", pad_token="<pad>",
                                       word_delimiter_token=WORD_DELIMITER, bos_token=None, eos_token=None),
    )
    model_keys = ("hidden_size", "num_layers", "num_heads", "intermediate_size", "conv_dim", "conv_kernel",
                  "conv_stride", "num_conv_pos_embeddings", "num_conv_pos_embedding_groups", "mask_time_prob")
    model_config = speech_encoder_config(vocab_size=len(vocab), **{k: section[k] for k in model_keys if k in section})
    torch.manual_seed(int(config["seed"]))
    model = Wav2Vec2ForCTC(model_config)
    if section.get("filterbank_init"):
        init_filterbank(model, **section["filterbank_init"])
    num_parameters = sum(p.numel() for p in model.wav2vec2.parameters())
    frame_ms = 1000 * int(np.prod(model_config.conv_stride)) / SAMPLE_RATE
    logging.info("speech encoder: Wav2Vec2ForCTC, %.2fM parameters in its body (conv %s, hidden %d, %d layers, "
                 "%d heads, %.0f ms frames), %d CTC symbols", num_parameters / 1e6, list(model_config.conv_dim),
                 model_config.hidden_size, model_config.num_hidden_layers, model_config.num_attention_heads,
                 frame_ms, len(vocab))

    train_waveforms = load_audio(train_utts, "reading training audio")
    labels = [encode_characters(text, vocab) for text in transcripts]
    hours = sum(len(w) for w in train_waveforms) / SAMPLE_RATE / 3600
    logging.info("speech encoder CTC training on %d utterances (%.2f h)", len(train_utts), hours)
    train_start = time.time()
    stats = train_speech_encoder(model, train_waveforms, labels, section["train"], int(config["seed"]))
    train_seconds = time.time() - train_start
    model.save_pretrained(str(output_dir))
    processor.save_pretrained(str(output_dir))

    eval_start = time.time()
    id_to_char = {index: char for char, index in vocab.items()}
    evaluation = evaluate_ctc(model, load_audio(dev_utts, "reading dev audio"),
                              [normalize_transcript(utt.text) for utt in dev_utts], id_to_char,
                              float(section["train"]["max_batch_seconds"]))
    summary = {
        "parameters": num_parameters,
        "hidden_size": model_config.hidden_size,
        "num_layers": model_config.num_hidden_layers,
        "conv_dim": list(model_config.conv_dim),
        "frame_ms": frame_ms,
        "ctc_symbols": len(vocab),
        "training_hours": round(hours, 3),
        **stats,
        "train_seconds": round(train_seconds, 1),
        "eval_seconds": round(time.time() - eval_start, 1),
        "total_seconds": round(time.time() - start, 1),
    }
    evaluation = {"eval_set": config.get("_dev_dir"), **evaluation, "training": summary}
    (output_dir / "eval.json").write_text(json.dumps(evaluation, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return {**summary, "dev_cer": round(evaluation["cer"], 4)}


# ------------------------------------------------------------------------------- main ---


def component_fingerprints(config: dict, train_dir, dev_dir, eval_dir) -> Dict[str, str]:
    common = {"seed": config["seed"], "num_threads": config.get("num_threads")}
    llm_files = [recipe_path(config["llm"]["instructions"]), recipe_path(config["language_names"]),
                 *(recipe_path(p) for p in config["tokenizer"].get("extra_instruction_files") or [])]
    return {
        "llm": fingerprint({
            **common, "tokenizer": config["tokenizer"], "llm": config["llm"], "instruction_files": sha256_of_files(llm_files),
            "train": data_dir_digest(train_dir), "eval": data_dir_digest(eval_dir), "dev": data_dir_digest(dev_dir),
        }),
        "speech_encoder": fingerprint({
            **common, "speech_encoder": config["speech_encoder"],
            "train": data_dir_digest(train_dir, with_audio=True), "dev": data_dir_digest(dev_dir, with_audio=True),
        }),
    }


def read_stamp(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def build(config: dict, train_dir, dev_dir, output_dir, test_dir=None) -> dict:
    """Build whatever of <output_dir>/{llm,speech_encoder} is missing or stale; returns the summary."""
    output_dir = Path(output_dir)
    eval_dir = test_dir or dev_dir
    config = {**config, "_llm_eval_dir": str(eval_dir), "_dev_dir": str(dev_dir)}
    torch.set_num_threads(int(config.get("num_threads") or torch.get_num_threads()))
    hashes = component_fingerprints(config, train_dir, dev_dir, eval_dir)
    top_stamp = read_stamp(output_dir / ".done")
    if top_stamp and top_stamp.get("hashes") == hashes and all(
            (read_stamp(output_dir / name / ".done") or {}).get("hash") == hashes[name] for name in hashes):
        logging.info("%s is complete and matches the config and data: nothing to do", output_dir)
        return top_stamp["summary"]

    start = time.time()
    train_utts = read_data_dir(train_dir)
    builders = {
        "llm": lambda d: make_llm(config, train_utts, read_data_dir(eval_dir), read_data_dir(dev_dir), d),
        "speech_encoder": lambda d: make_speech_encoder(config, train_utts, read_data_dir(dev_dir), d),
    }
    summary = {}
    (output_dir / ".done").unlink(missing_ok=True)
    for name, builder in builders.items():
        final_dir = output_dir / name
        stamp = read_stamp(final_dir / ".done")
        if stamp and stamp.get("hash") == hashes[name]:
            logging.info("%s is up to date", final_dir)
            summary[name] = stamp["summary"]
            continue
        partial_dir = output_dir / f"{name}.partial"
        shutil.rmtree(partial_dir, ignore_errors=True)
        partial_dir.mkdir(parents=True)
        summary[name] = builder(partial_dir)
        (partial_dir / ".done").write_text(json.dumps({"hash": hashes[name], "summary": summary[name]}, indent=2) + "\n")
        shutil.rmtree(final_dir, ignore_errors=True)
        partial_dir.rename(final_dir)
        logging.info("wrote %s", final_dir)
    summary["seconds"] = round(time.time() - start, 1)
    (output_dir / ".done").write_text(json.dumps({"hashes": hashes, "summary": summary}, indent=2) + "\n")
    log_summary(output_dir, summary)
    return summary


def log_summary(output_dir: Path, summary: dict):
    llm, speech = summary["llm"], summary["speech_encoder"]
    logging.info("stand-in models in %s (%.0f s of work this run):", output_dir, summary["seconds"])
    logging.info("  llm: %.2fM parameters, vocabulary %d, %d steps, loss %.3f -> %.3f, %.0f s training; held-out "
                 "repeat exact match %.1f%% CER %.1f%%, BLEU %s (mean %.1f)", llm["parameters"] / 1e6,
                 llm["tokenizer_vocab_size"], llm["steps"], llm["first_loss"], llm["final_loss"], llm["train_seconds"],
                 100 * llm.get("repeat_exact_match", float("nan")), 100 * llm.get("repeat_cer", float("nan")),
                 llm.get("bleu"), llm.get("mean_bleu", float("nan")))
    logging.info("  speech_encoder: %.2fM parameters, %d steps (%.1f epochs), CTC loss %.3f -> %.3f, %.0f s training; "
                 "dev CER %.1f%%", speech["parameters"] / 1e6, speech["steps"], speech["epochs"], speech["first_loss"],
                 speech["final_loss"], speech["train_seconds"], 100 * speech["dev_cer"])


def get_parser():
    parser = argparse.ArgumentParser(description="Build the stand-in LLM and speech encoder of the mini recipe.")
    parser.add_argument("--config", required=True, help="stand-in config (conf/mini/standin.yaml)")
    parser.add_argument("--train_dir", required=True, help="training data dir (text, utt2lang, utt2sentence, wav.scp)")
    parser.add_argument("--dev_dir", required=True, help="dev data dir: the speech encoder's CER")
    parser.add_argument("--test_dir", default=None,
                        help="held-out data dir the LLM is evaluated on (default: --dev_dir); never trained on")
    parser.add_argument("--output_dir", required=True, help="writes <output_dir>/{llm,speech_encoder}")
    parser.add_argument("--smoke", action="store_true", help="apply the config's smoke section: tiny, fast models")
    return parser


def main(argv=None):
    args = get_parser().parse_args(argv)
    start_logging()
    config = load_config(args.config, smoke=args.smoke)
    build(config, args.train_dir, args.dev_dir, args.output_dir, args.test_dir)


if __name__ == "__main__":
    main()
