"""Benchmark of the LLM decoder's batched paths against the per-utterance reference (CPU).

Measured side by side in one run (interleaved repetitions, medians reported):

1. Train step of ``HFCausalLMDecoder`` (forward + cross-entropy + backward w.r.t. the speech
   embeddings, which require grad; the LLM is frozen):

   * ``vectorized``: ``HFCausalLMDecoder.forward`` itself (``build_llm_inputs`` right-padded ->
     ``llm.base_model`` -> ``gather_positions`` on the target span -> output layer on the span
     only), then the loss;
   * ``reference``: the original BLOOMZMMS way: ``reference_build_llm_inputs`` (a Python loop per
     utterance), the full causal LM (LM head over ALL positions of the padded sequence), then
     ``reference_gather_positions`` on the logits (a loop per utterance), then the loss.

   Reported: the whole step, its phases (input building, LLM body, LM head, slicing, backward),
   and "input building + logit slicing" alone, both as the forward time inside the step and as an
   isolated forward+backward micro-benchmark (each path slicing the tensor it really slices:
   hidden states (B, N, H) for vectorized, logits (B, N, V) for reference).
2. Padding fraction of the LLM input: compact layout (each utterance's segments concatenated
   without gaps, both paths) against padding every segment to its batch maximum.
3. Generation: ``HFCausalLMDecoder.generate`` on a batch of 16 against 16 one-utterance calls,
   greedy and beam search, with a check that the outputs are identical.

Models are random stand-ins built locally (``bloomzmms.standin``): a byte-level BPE tokenizer
trained on generated text, and BLOOM-architecture causal LMs of two sizes.

Usage:
    python bench/bench_llm_decoder.py                       # full run (~10 min on 2 CPU cores)
    python bench/bench_llm_decoder.py --quick               # smoke run (seconds)
    python bench/bench_llm_decoder.py --output_json bench/llm_decoder.json
"""

import argparse
import json
import logging
import os
import platform
import random
import statistics
import tempfile
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass
from typing import Dict, List

# Idle OpenMP threads sleep instead of spinning. On a shared, oversubscribed CPU the default
# spinning made every small op with 2 threads 10-20x slower than with 1 (2M-element multiply:
# 8 ms vs 0.6 ms), which measured the scheduler, not the code. Must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import bloomzmms.asr.llm_decoder as llm_decoder_module  # noqa: E402
from bloomzmms.asr.llm_decoder import HFCausalLMDecoder, pad_token_lists  # noqa: E402
from bloomzmms.asr.llm_inputs import (  # noqa: E402
    build_llm_inputs,
    gather_positions,
    reference_build_llm_inputs,
    reference_gather_positions,
)
from bloomzmms.standin import build_causal_lm, train_tokenizer  # noqa: E402

# Segment length ranges (inclusive) and the probability that an instruction segment is empty.
PREFIX_MAX, SPEECH_RANGE, POSTFIX_MAX, TARGET_RANGE, EMPTY_PROB = 20, (50, 200), 5, (10, 60), 0.25
FULL_CONFIGS = {
    "tiny": dict(hidden_size=64, num_layers=2, num_heads=4, vocab_size=None),  # tokenizer vocab
    # hidden 512 x 8 layers took ~18 s (vectorized) / ~24 s (reference) per step at B=8 on the
    # shared 2-core machine, i.e. over a minute per step at B=32: the body is shrunk to keep the
    # run near 10 minutes; the 32k vocabulary (what the LM-head cost depends on) is kept.
    "small": dict(hidden_size=256, num_layers=4, num_heads=4, vocab_size=32000),
}
QUICK_CONFIGS = {
    "tiny": dict(hidden_size=32, num_layers=1, num_heads=2, vocab_size=None),
    "small": dict(hidden_size=64, num_layers=2, num_heads=4, vocab_size=4000),
}


# --------------------------------------------------------------------------------------------
# Models and data
# --------------------------------------------------------------------------------------------
def generated_text(num_sentences: int, seed: int) -> List[str]:
    rng = random.Random(seed)
    onsets = ["", "b", "d", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "ch", "sh", "st", "tr"]
    vowels = ["a", "e", "i", "o", "u", "ei", "au", "ou"]
    codas = ["", "", "n", "r", "s", "t", "l", "m"]
    words = ["".join(rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas) for _ in range(rng.randint(1, 3)))
             for _ in range(3000)]
    sentences = ["Repeat the sentence: ", "Translate the following text from English to German. "]
    for _ in range(num_sentences):
        sentences.append(" ".join(rng.choice(words) for _ in range(rng.randint(5, 20))) + ".")
    return sentences


def build_models(root: str, configs: Dict[str, dict], tokenizer_vocab: int) -> Dict[str, str]:
    from transformers import BloomConfig, BloomForCausalLM, PreTrainedTokenizerFast

    tokenizer_dir = os.path.join(root, "tokenizer")
    train_tokenizer(generated_text(4000, seed=0), vocab_size=tokenizer_vocab, output_dir=tokenizer_dir)
    paths = {}
    for name, config in configs.items():
        path = os.path.join(root, name)
        if config["vocab_size"] is None:  # the stand-in builder: vocabulary = tokenizer's (+8 rows)
            build_causal_lm("bloom", tokenizer_dir, path, config["hidden_size"], config["num_layers"], config["num_heads"])
        else:  # a wider vocabulary than the tokenizer's (only the LM head cost depends on it)
            torch.manual_seed(0)
            tokenizer = PreTrainedTokenizerFast.from_pretrained(tokenizer_dir)
            bloom_config = BloomConfig(
                vocab_size=config["vocab_size"], hidden_size=config["hidden_size"], n_layer=config["num_layers"],
                n_head=config["num_heads"], bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
            )
            BloomForCausalLM(bloom_config).save_pretrained(path)
            tokenizer.save_pretrained(path)
        paths[name] = path
    return paths


@dataclass
class Batch:
    speech: torch.Tensor
    speech_lengths: torch.Tensor
    prefix: torch.Tensor
    prefix_lengths: torch.Tensor
    postfix: torch.Tensor
    postfix_lengths: torch.Tensor
    target: torch.Tensor
    target_lengths: torch.Tensor
    labels: torch.Tensor  # (B, T+1): target then EOS, -1 after
    prefix_lists: List[List[int]]
    postfix_lists: List[List[int]]


def instruction_length(generator: torch.Generator, maximum: int) -> int:
    if float(torch.rand((), generator=generator)) < EMPTY_PROB:
        return 0
    return int(torch.randint(1, maximum + 1, (), generator=generator))


def segment_lengths(batch_size: int, generator: torch.Generator):
    prefix = [instruction_length(generator, PREFIX_MAX) for _ in range(batch_size)]
    speech = torch.randint(SPEECH_RANGE[0], SPEECH_RANGE[1] + 1, (batch_size,), generator=generator).tolist()
    postfix = [instruction_length(generator, POSTFIX_MAX) for _ in range(batch_size)]
    target = torch.randint(TARGET_RANGE[0], TARGET_RANGE[1] + 1, (batch_size,), generator=generator).tolist()
    return prefix, speech, postfix, target


def make_batch(batch_size: int, hidden_size: int, token_vocab: int, eos_id: int, seed: int, with_target=True) -> Batch:
    generator = torch.Generator().manual_seed(seed)
    prefix_lens, speech_lens, postfix_lens, target_lens = segment_lengths(batch_size, generator)

    def tokens(lengths):
        return [torch.randint(4, token_vocab, (n,), generator=generator).tolist() for n in lengths]

    prefix_lists, postfix_lists, target_lists = tokens(prefix_lens), tokens(postfix_lens), tokens(target_lens)
    prefix, prefix_lengths = pad_token_lists(prefix_lists)
    postfix, postfix_lengths = pad_token_lists(postfix_lists)
    target, target_lengths = pad_token_lists(target_lists)
    labels = torch.full((batch_size, target.size(1) + 1), -1, dtype=torch.long)
    for row, row_tokens in enumerate(target_lists):
        labels[row, : len(row_tokens)] = torch.tensor(row_tokens)
        labels[row, len(row_tokens)] = eos_id
    speech_lengths = torch.tensor(speech_lens)
    speech = torch.randn(batch_size, int(speech_lengths.max()), hidden_size, generator=generator)
    speech = speech * (torch.arange(speech.size(1))[None, :, None] < speech_lengths[:, None, None])
    return Batch(speech, speech_lengths, prefix, prefix_lengths, postfix, postfix_lengths, target,
                 target_lengths, labels, prefix_lists, postfix_lists)


# --------------------------------------------------------------------------------------------
# 1. Train step
# --------------------------------------------------------------------------------------------
class PhaseTimer:
    """Accumulates wall time per phase: wrapped functions and module forward hooks."""

    def __init__(self):
        self.times = defaultdict(float)
        self.started = {}

    def wrap(self, name, function):
        def wrapped(*args, **kwargs):
            start = time.perf_counter()
            out = function(*args, **kwargs)
            self.times[name] += time.perf_counter() - start
            return out
        return wrapped

    def hook(self, module, name):
        def pre(_module, _inputs):
            self.started[name] = time.perf_counter()

        def post(_module, _inputs, _output):
            self.times[name] += time.perf_counter() - self.started[name]

        return [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]

    def take(self) -> Dict[str, float]:
        times, self.times = dict(self.times), defaultdict(float)
        return times


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-1)


def vectorized_step(decoder: HFCausalLMDecoder, batch: Batch, speech: torch.Tensor):
    """Exactly HFCausalLMDecoder.forward (its build/gather calls are timed in place), then loss."""
    logits, _ = decoder(speech, batch.speech_lengths, batch.target, batch.target_lengths,
                        batch.prefix, batch.prefix_lengths, batch.postfix, batch.postfix_lengths)
    return cross_entropy(logits, batch.labels)


def reference_step(decoder: HFCausalLMDecoder, batch: Batch, speech: torch.Tensor, timer: PhaseTimer):
    """Original BLOOMZMMS: per-utterance rows, full LM head, per-utterance slicing of the logits."""
    llm = decoder.llm
    segments = decoder.llm_input_segments(llm, speech, batch.speech_lengths, batch.prefix, batch.prefix_lengths,
                                          batch.postfix, batch.postfix_lengths)
    segments.append((llm.get_input_embeddings()(batch.target.clamp(min=0)), batch.target_lengths))
    inputs = timer.wrap("build", reference_build_llm_inputs)(segments, padding_side="right")
    all_logits = llm(inputs_embeds=inputs.embeds, attention_mask=inputs.attention_mask).logits
    logits = timer.wrap("slice", reference_gather_positions)(
        all_logits, inputs.segment_starts[:, 3] - 1, batch.target.size(1) + 1
    ).float()
    return cross_entropy(logits, batch.labels)


def timed_train_step(path: str, decoder, batch: Batch, timer: PhaseTimer) -> Dict[str, float]:
    speech = batch.speech.clone().requires_grad_(True)
    timer.take()
    start = time.perf_counter()
    if path == "vectorized":
        loss = vectorized_step(decoder, batch, speech)
    else:
        loss = reference_step(decoder, batch, speech, timer)
    forward_end = time.perf_counter()
    loss.backward()
    end = time.perf_counter()
    phases = timer.take()
    phases.update(forward=forward_end - start, backward=end - forward_end, step=end - start)
    phases["build+slice"] = phases.get("build", 0.0) + phases.get("slice", 0.0)
    return phases, loss.detach(), speech.grad


def isolated_build_slice(path: str, batch_segments, sliced_source, count: int, grads) -> float:
    """Forward + backward of input building and slicing alone (building only when
    ``sliced_source`` is None); returns seconds."""
    segments = [(values.detach().requires_grad_(index == 1), lengths) for index, (values, lengths) in
                enumerate(batch_segments)]
    source = None if sliced_source is None else sliced_source.detach().requires_grad_(True)
    build = build_llm_inputs if path == "vectorized" else reference_build_llm_inputs
    gather = gather_positions if path == "vectorized" else reference_gather_positions
    start = time.perf_counter()
    inputs = build(segments, padding_side="right")
    if source is None:
        inputs.embeds.backward(grads[0])
    else:
        sliced = gather(source, inputs.segment_starts[:, 3] - 1, count)
        torch.autograd.backward([inputs.embeds, sliced], [grads[0], grads[path]])
    return time.perf_counter() - start


def median(values):
    return statistics.median(values) if values else float("nan")


def bench_train(decoder: HFCausalLMDecoder, config_name: str, batch_size: int, repeats: int, isolated_repeats: int,
                seed: int, log) -> dict:
    llm = decoder.llm
    hidden_size = llm.get_input_embeddings().weight.size(1)
    batch = make_batch(batch_size, hidden_size, len(decoder.tokenizer), decoder.eos_id, seed)
    timer = PhaseTimer()
    handles = timer.hook(llm.base_model, "llm_body") + timer.hook(llm.get_output_embeddings(), "lm_head")
    # Time build/gather inside HFCausalLMDecoder.forward itself (the module-level names it calls).
    original = llm_decoder_module.build_llm_inputs, llm_decoder_module.gather_positions
    llm_decoder_module.build_llm_inputs = timer.wrap("build", build_llm_inputs)
    llm_decoder_module.gather_positions = timer.wrap("slice", gather_positions)
    try:
        # Warm-up, and the equivalence check of the two paths.
        results = {path: timed_train_step(path, decoder, batch, timer) for path in ("vectorized", "reference")}
        loss_v, grad_v = results["vectorized"][1:]
        loss_r, grad_r = results["reference"][1:]
        same = torch.allclose(loss_v, loss_r, rtol=1e-4, atol=1e-5) and torch.allclose(grad_v, grad_r, rtol=1e-3, atol=1e-6)
        log(f"CHECK train {config_name} B={batch_size}: loss vectorized {loss_v.item():.6f} reference "
            f"{loss_r.item():.6f}, speech grads max|diff| {(grad_v - grad_r).abs().max().item():.2e} -> "
            f"{'identical' if same else 'DIFFERENT'}")
        samples = {"vectorized": [], "reference": []}
        for repeat in range(repeats):
            order = ("vectorized", "reference") if repeat % 2 == 0 else ("reference", "vectorized")
            for path in order:
                samples[path].append(timed_train_step(path, decoder, batch, timer)[0])
    finally:
        llm_decoder_module.build_llm_inputs, llm_decoder_module.gather_positions = original
        for handle in handles:
            handle.remove()

    # Isolated build + slice (forward + backward), on the real segment tensors and real shapes.
    with torch.no_grad():
        segments = decoder.llm_input_segments(llm, batch.speech, batch.speech_lengths, batch.prefix,
                                              batch.prefix_lengths, batch.postfix, batch.postfix_lengths)
        segments.append((llm.get_input_embeddings()(batch.target.clamp(min=0)), batch.target_lengths))
        inputs = build_llm_inputs(segments, padding_side="right")
        hidden = llm.base_model(inputs_embeds=inputs.embeds, attention_mask=inputs.attention_mask).last_hidden_state
        all_logits = llm.get_output_embeddings()(hidden)
    count = batch.target.size(1) + 1
    generator = torch.Generator().manual_seed(seed + 1)
    grads = {0: torch.randn(inputs.embeds.shape, generator=generator),
             "vectorized": torch.randn(batch_size, count, hidden.size(2), generator=generator),
             "reference": torch.randn(batch_size, count, all_logits.size(2), generator=generator)}
    sources = {"vectorized": hidden, "reference": all_logits}
    isolated = {"vectorized": [], "reference": []}
    isolated_build = {"vectorized": [], "reference": []}
    for repeat in range(isolated_repeats + 1):
        order = ("vectorized", "reference") if repeat % 2 == 0 else ("reference", "vectorized")
        for path in order:
            seconds = isolated_build_slice(path, segments, sources[path], count, grads)
            build_seconds = min(isolated_build_slice(path, segments, None, count, grads) for _ in range(3))
            if repeat >= 1:  # the first round is warm-up
                isolated[path].append(seconds)
                isolated_build[path].append(build_seconds)
    del all_logits, sources

    out = {"config": config_name, "batch_size": batch_size, "llm_positions": int(inputs.embeds.size(1)),
           "target_positions": count, "equivalent": bool(same)}
    for path in ("vectorized", "reference"):
        keys = sorted({key for sample in samples[path] for key in sample})
        out[path] = {key: median([sample.get(key, 0.0) for sample in samples[path]]) for key in keys}
        out[path]["isolated_build+slice_fwd_bwd"] = median(isolated[path])
        out[path]["isolated_build_fwd_bwd"] = median(isolated_build[path])
    for key in ("step", "build+slice", "isolated_build+slice_fwd_bwd", "isolated_build_fwd_bwd", "lm_head", "backward"):
        out[f"ratio_{key}"] = out["reference"][key] / out["vectorized"][key]
    return out


# --------------------------------------------------------------------------------------------
# 2. Padding fraction
# --------------------------------------------------------------------------------------------
def bench_padding(batch_size: int, num_batches: int, seed: int) -> dict:
    generator = torch.Generator().manual_seed(seed)
    compact, per_segment, compact_len, per_segment_len = [], [], [], []
    for _ in range(num_batches):
        lengths = torch.tensor(segment_lengths(batch_size, generator)).T  # (B, 4)
        real = int(lengths.sum())
        compact_width = int(lengths.sum(1).max())
        per_segment_width = int(lengths.max(0).values.sum())
        compact.append(1 - real / (batch_size * compact_width))
        per_segment.append(1 - real / (batch_size * per_segment_width))
        compact_len.append(compact_width)
        per_segment_len.append(per_segment_width)
    return {
        "batch_size": batch_size,
        "num_batches": num_batches,
        "compact_padding_fraction": statistics.mean(compact),
        "per_segment_padding_fraction": statistics.mean(per_segment),
        "compact_mean_width": statistics.mean(compact_len),
        "per_segment_mean_width": statistics.mean(per_segment_len),
        "positions_ratio": statistics.mean(per_segment_len) / statistics.mean(compact_len),
    }


# --------------------------------------------------------------------------------------------
# 3. Generation
# --------------------------------------------------------------------------------------------
def generate_batched(decoder, batch: Batch, num_beams: int, max_new_tokens: int):
    return decoder.generate(batch.speech, batch.speech_lengths, batch.prefix, batch.prefix_lengths,
                            batch.postfix, batch.postfix_lengths, num_beams=num_beams, max_new_tokens=max_new_tokens)


def single_inputs(batch: Batch):
    singles = []
    for index in range(batch.speech.size(0)):
        prefix, prefix_lengths = pad_token_lists([batch.prefix_lists[index]])
        postfix, postfix_lengths = pad_token_lists([batch.postfix_lists[index]])
        length = int(batch.speech_lengths[index])
        singles.append((batch.speech[index : index + 1, :length], batch.speech_lengths[index : index + 1],
                        prefix, prefix_lengths, postfix, postfix_lengths))
    return singles


def generate_one_at_a_time(decoder, singles, num_beams: int, max_new_tokens: int):
    out = []
    for speech, speech_lengths, prefix, prefix_lengths, postfix, postfix_lengths in singles:
        out += decoder.generate(speech, speech_lengths, prefix, prefix_lengths, postfix, postfix_lengths,
                                num_beams=num_beams, max_new_tokens=max_new_tokens)
    return out


def bench_generation(decoder, config_name: str, batch_size: int, num_beams: int, max_new_tokens: int,
                     repeats: int, seed: int, log) -> dict:
    hidden_size = decoder.llm.get_input_embeddings().weight.size(1)
    batch = make_batch(batch_size, hidden_size, len(decoder.tokenizer), decoder.eos_id, seed)
    singles = single_inputs(batch)
    # Warm-up (short), then interleaved timed runs.
    generate_batched(decoder, batch, num_beams, 2)
    generate_one_at_a_time(decoder, singles[:2], num_beams, 2)
    times = {"batched": [], "one_at_a_time": []}
    prefill_times = {"batched": [], "one_at_a_time": []}  # max_new_tokens=1: ~prefill cost
    outputs = {}
    for repeat in range(repeats):
        order = ("batched", "one_at_a_time") if repeat % 2 == 0 else ("one_at_a_time", "batched")
        for mode in order:
            for new_tokens, store in ((max_new_tokens, times), (1, prefill_times)):
                start = time.perf_counter()
                if mode == "batched":
                    result = generate_batched(decoder, batch, num_beams, new_tokens)
                else:
                    result = generate_one_at_a_time(decoder, singles, num_beams, new_tokens)
                store[mode].append(time.perf_counter() - start)
                if new_tokens == max_new_tokens:
                    outputs[mode] = result
    mismatches = [i for i, (a, b) in enumerate(zip(outputs["batched"], outputs["one_at_a_time"])) if a != b]
    tokens = sum(len(row) for row in outputs["batched"])
    log(f"CHECK generation {config_name} beams={num_beams}: batched == one-at-a-time for "
        f"{batch_size - len(mismatches)}/{batch_size} utterances"
        + (f" (differ: {mismatches})" if mismatches else " -> identical"))
    totals = (batch.prefix_lengths + batch.speech_lengths + batch.postfix_lengths).tolist()
    out = {"config": config_name, "batch_size": batch_size, "num_beams": num_beams, "max_new_tokens": max_new_tokens,
           "generated_tokens": tokens, "identical": not mismatches, "mismatched_utterances": mismatches,
           "prompt_positions": {"batched": batch_size * max(totals), "one_at_a_time": sum(totals)}}
    for mode in times:
        seconds = median(times[mode])
        out[mode] = {"seconds": seconds, "tokens_per_s": sum(len(r) for r in outputs[mode]) / seconds,
                     "utterances_per_s": batch_size / seconds, "all_seconds": times[mode],
                     "prefill_seconds": median(prefill_times[mode])}
    out["throughput_ratio"] = out["one_at_a_time"]["seconds"] / out["batched"]["seconds"]
    out["prefill_ratio"] = out["one_at_a_time"]["prefill_seconds"] / out["batched"]["prefill_seconds"]
    out["decode_ratio"] = ((out["one_at_a_time"]["seconds"] - out["one_at_a_time"]["prefill_seconds"])
                           / (out["batched"]["seconds"] - out["batched"]["prefill_seconds"]))
    return out


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def print_tables(results: dict, log):
    log("\n## Train step (medians, ms per step; ratio = reference / vectorized)")
    log("| config | B | N | T+1 | path | build | LLM body | LM head | slice | backward | build+slice (fwd, in step) "
        "| build alone, isolated fwd+bwd | build+slice isolated fwd+bwd | whole step |")
    log("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in results["train"]:
        for path in ("vectorized", "reference"):
            t = row[path]
            log(f"| {row['config']} | {row['batch_size']} | {row['llm_positions']} | {row['target_positions']} | {path} "
                f"| {ms(t.get('build', 0))} | {ms(t.get('llm_body', 0))} | {ms(t.get('lm_head', 0))} "
                f"| {ms(t.get('slice', 0))} | {ms(t['backward'])} | {ms(t['build+slice'])} "
                f"| {ms(t['isolated_build_fwd_bwd'])} | {ms(t['isolated_build+slice_fwd_bwd'])} | {ms(t['step'])} |")
        log(f"| {row['config']} | {row['batch_size']} | | | **ratio** | | | {row['ratio_lm_head']:.2f}x | "
            f"| {row['ratio_backward']:.2f}x | **{row['ratio_build+slice']:.2f}x** | {row['ratio_isolated_build_fwd_bwd']:.2f}x "
            f"| **{row['ratio_isolated_build+slice_fwd_bwd']:.2f}x** | **{row['ratio_step']:.2f}x** |")
    log("\n## Padding fraction of the LLM input (mean over random batches)")
    log("| B | compact (both paths) | pad each segment to batch max | mean width compact | mean width per-segment |")
    log("|---|---|---|---|---|")
    for row in results["padding"]:
        log(f"| {row['batch_size']} | {row['compact_padding_fraction']:.1%} | {row['per_segment_padding_fraction']:.1%} "
            f"| {row['compact_mean_width']:.0f} | {row['per_segment_mean_width']:.0f} |")
    size = results["settings"]["gen_batch_size"]
    log(f"\n## Generation (medians; batch of {size} in one call vs {size} calls of batch 1)")
    log("| config | beams | max_new | mode | seconds | tokens/s | utterances/s | ratio | prompt positions "
        "| prefill-only s (max_new=1) | prefill ratio | rest (decode) ratio | identical |")
    log("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in results["generation"]:
        for mode in ("batched", "one_at_a_time"):
            t = row[mode]
            batched = mode == "batched"
            ratio = f"**{row['throughput_ratio']:.2f}x**" if batched else ""
            prefill_ratio = f"{row['prefill_ratio']:.2f}x" if batched else ""
            decode_ratio = f"{row['decode_ratio']:.2f}x" if batched else ""
            log(f"| {row['config']} | {row['num_beams']} | {row['max_new_tokens']} | {mode} | {t['seconds']:.2f} "
                f"| {t['tokens_per_s']:.1f} | {t['utterances_per_s']:.2f} | {ratio} | {row['prompt_positions'][mode]} "
                f"| {t['prefill_seconds']:.2f} | {prefill_ratio} | {decode_ratio} | {row['identical']} |")
    log("\n## Goals")
    for line in results["goals"]:
        log(f"- {line}")


def goals(results: dict, max_batch: int) -> List[str]:
    lines = []
    for row in results["train"]:
        if row["batch_size"] != max_batch:
            continue
        for key, label in (("ratio_isolated_build+slice_fwd_bwd", "isolated fwd+bwd"),
                           ("ratio_build+slice", "forward inside the step")):
            met = row[key] >= 3.0
            lines.append(f"input building + logit slicing >= 3x at B={max_batch} ({row['config']}, {label}): "
                         f"{row[key]:.2f}x -> {'MET' if met else 'NOT MET'}")
    for row in results["generation"]:
        met = row["throughput_ratio"] >= 4.0
        lines.append(f"generation throughput >= 4x at B={row['batch_size']} ({row['config']}, beams={row['num_beams']}): "
                     f"{row['throughput_ratio']:.2f}x -> {'MET' if met else 'NOT MET'}")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: smaller models, batches, repeats")
    parser.add_argument("--output_json", default=None, help="write all figures to this JSON file")
    parser.add_argument("--configs", nargs="+", default=["tiny", "small"], choices=["tiny", "small"])
    parser.add_argument("--batch_sizes", nargs="+", type=int, default=None, help="train batch sizes (default 8 32)")
    parser.add_argument("--repeats", type=int, default=None, help="timed train steps per path (default: tiny 15; small 5 at B<=8, else 3)")
    parser.add_argument("--gen_batch_size", type=int, default=None, help="default 16")
    parser.add_argument("--gen_beams", nargs="+", type=int, default=[1, 5])
    parser.add_argument("--max_new_tokens", type=int, default=None, help="default 32")
    parser.add_argument("--gen_repeats", type=int, default=None, help="timed generation runs per mode (default 3)")
    parser.add_argument("--small_size", nargs=4, type=int, default=None, metavar=("HIDDEN", "LAYERS", "HEADS", "VOCAB"),
                        help="override the small config (default 256 4 4 32000), e.g. 512 8 8 32000")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    quick = args.quick
    configs = dict(QUICK_CONFIGS if quick else FULL_CONFIGS)
    if args.small_size:
        hidden, layers, heads, vocab = args.small_size
        configs["small"] = dict(hidden_size=hidden, num_layers=layers, num_heads=heads, vocab_size=vocab)
    batch_sizes = args.batch_sizes or ([2, 4] if quick else [8, 32])
    gen_batch_size = args.gen_batch_size or (4 if quick else 16)
    max_new_tokens = args.max_new_tokens or (4 if quick else 32)
    gen_repeats = args.gen_repeats or (1 if quick else 3)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    warnings.filterwarnings("ignore")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    def log(message=""):
        print(message, flush=True)

    started = time.perf_counter()
    results = {
        "machine": {"cpu": cpu_model(), "logical_cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                    "torch": torch.__version__, "python": platform.python_version()},
        "settings": {"quick": quick, "configs": {name: configs[name] for name in args.configs},
                     "batch_sizes": batch_sizes, "segments": {"prefix": [0, PREFIX_MAX], "speech": list(SPEECH_RANGE),
                     "postfix": [0, POSTFIX_MAX], "target": list(TARGET_RANGE), "empty_instruction_prob": EMPTY_PROB},
                     "gen_batch_size": gen_batch_size, "gen_beams": args.gen_beams, "max_new_tokens": max_new_tokens},
        "train": [], "padding": [], "generation": [],
    }
    log(f"machine: {results['machine']}")
    with tempfile.TemporaryDirectory() as root:
        paths = build_models(root, {name: configs[name] for name in args.configs}, 300 if quick else 1000)
        decoders = {}
        for name in args.configs:
            decoders[name] = HFCausalLMDecoder(vocab_size=0, encoder_output_size=configs[name]["hidden_size"],
                                               model_name_or_path=paths[name])
            llm = decoders[name].llm
            log(f"config {name}: {configs[name]}, vocab rows {llm.get_output_embeddings().weight.size(0)}, "
                f"tokenizer {len(decoders[name].tokenizer)}, params {sum(p.numel() for p in llm.parameters()) / 1e6:.1f}M")

        for name in args.configs:
            for batch_size in batch_sizes:
                # The small reference step at B=32 takes ~40 s here (see RESULTS): fewer repeats.
                small_repeats = 5 if batch_size <= 8 else 3
                repeats = args.repeats or (3 if quick else (15 if name == "tiny" else small_repeats))
                isolated_repeats = 3 if quick else (9 if name == "tiny" else small_repeats)
                t0 = time.perf_counter()
                row = bench_train(decoders[name], name, batch_size, repeats, isolated_repeats,
                                  args.seed + batch_size, log)
                results["train"].append(row)
                log(f"train {name} B={batch_size}: step vectorized {ms(row['vectorized']['step'])} ms, reference "
                    f"{ms(row['reference']['step'])} ms ({row['ratio_step']:.2f}x); build+slice in step "
                    f"{row['ratio_build+slice']:.2f}x, isolated fwd+bwd {row['ratio_isolated_build+slice_fwd_bwd']:.2f}x "
                    f"[{time.perf_counter() - t0:.0f} s]")

        for batch_size in batch_sizes:
            results["padding"].append(bench_padding(batch_size, 50 if quick else 1000, args.seed))

        for name in args.configs:
            for num_beams in args.gen_beams:
                t0 = time.perf_counter()
                row = bench_generation(decoders[name], name, gen_batch_size, num_beams, max_new_tokens,
                                       gen_repeats, args.seed + 100, log)
                results["generation"].append(row)
                log(f"generation {name} beams={num_beams}: batched {row['batched']['seconds']:.2f} s, one-at-a-time "
                    f"{row['one_at_a_time']['seconds']:.2f} s ({row['throughput_ratio']:.2f}x) "
                    f"[{time.perf_counter() - t0:.0f} s]")

    results["goals"] = goals(results, max(batch_sizes))
    results["total_seconds"] = time.perf_counter() - started
    print_tables(results, log)
    log(f"\ntotal {results['total_seconds']:.0f} s")
    if args.output_json:
        os.makedirs(os.path.dirname(os.path.abspath(args.output_json)), exist_ok=True)
        with open(args.output_json, "w") as handle:
            json.dump(results, handle, indent=2)
    return results


if __name__ == "__main__":
    main()
