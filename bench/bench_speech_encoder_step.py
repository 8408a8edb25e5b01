"""Training-step time of the mini recipe's stand-in speech encoder: conv layouts side by side (CPU).

Builds ``Wav2Vec2ForCTC`` (random weights) from ``conf/mini/standin.yaml``'s ``speech_encoder``
section, once with its own conv layout and once with each ``--compare`` layout (the rest of the
section unchanged), and times, interleaved and with medians over ``--repeats``:

* the whole CTC training step (forward + loss + backward) on a batch of ``--batch`` x
  ``--seconds`` of random audio;
* the conv feature encoder alone (forward + backward), the part of the step the layout changes;
* the conv feature encoder forward alone, what the recipe's frozen frontend computes per step.

Usage:
    python bench/bench_speech_encoder_step.py [--batch 4] [--seconds 6] [--repeats 7] [--threads 2]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml
from transformers import Wav2Vec2ForCTC

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bloomzmms.standin import speech_encoder_config  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "conf" / "mini" / "standin.yaml"
MMS_LAYOUT = "48,48,48,64,64,128,128:64,2,2,2,2,2,2:5,2,2,2,2,2,2"  # the stride-5, seven-layer stack of MMS
MODEL_KEYS = ("hidden_size", "num_layers", "num_heads", "intermediate_size", "num_conv_pos_embeddings",
              "num_conv_pos_embedding_groups")


def parse_layout(text: str) -> dict:
    dims, kernels, strides = ([int(v) for v in part.split(",")] for part in text.split(":"))
    return {"conv_dim": dims, "conv_kernel": kernels, "conv_stride": strides}


def median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(model, audio, labels, repeats: int) -> dict:
    conv = model.wav2vec2.feature_extractor

    def step():
        model.zero_grad(set_to_none=True)
        model(audio, labels=labels).loss.backward()

    def conv_step():
        model.zero_grad(set_to_none=True)
        conv(audio).sum().backward()

    def conv_forward():
        with torch.no_grad():
            conv(audio)

    for function in (step, conv_step, conv_forward):  # warm-up
        function()
    return {"step": median_seconds(step, repeats), "conv fwd+bwd": median_seconds(conv_step, repeats),
            "conv fwd": median_seconds(conv_forward, repeats)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compare", nargs="*", default=[MMS_LAYOUT],
                        help="conv layouts 'dims:kernels:strides' (comma-separated each) to time against the "
                        "config's (default: MMS's stride-5 seven-layer stack at the config's widths)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    section = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["speech_encoder"]
    layouts = {"config": {k: section[k] for k in ("conv_dim", "conv_kernel", "conv_stride")}}
    layouts.update({f"compare {i + 1}": parse_layout(text) for i, text in enumerate(args.compare)})
    models = {name: Wav2Vec2ForCTC(speech_encoder_config(vocab_size=55, **layout,
                                                         **{k: section[k] for k in MODEL_KEYS}))
              for name, layout in layouts.items()}
    audio = torch.randn(args.batch, int(args.seconds * 16000))
    labels = torch.randint(3, 55, (args.batch, int(args.seconds * 10)))

    results = {name: [] for name in layouts}
    for _ in range(3):  # rounds, interleaved across layouts
        for name, model in models.items():
            results[name].append(measure(model, audio, labels, args.repeats))
    print(f"batch {args.batch} x {args.seconds:g} s of audio, {args.threads} threads, "
          f"median of {args.repeats} repeats, median of 3 interleaved rounds")
    print(f"{'layout':<10} {'conv dims : kernels : strides':<58} {'step':>7} {'conv fwd+bwd':>13} {'conv fwd':>9}")
    figures = {name: {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
               for name, rounds in results.items()}
    for name, layout in layouts.items():
        described = " : ".join(",".join(map(str, layout[k])) for k in ("conv_dim", "conv_kernel", "conv_stride"))
        f = figures[name]
        print(f"{name:<10} {described:<58} {f['step']:6.3f}s {f['conv fwd+bwd']:12.3f}s {f['conv fwd']:8.3f}s")
    for name in layouts:
        if name != "config":
            ratios = {key: figures["config"][key] / figures[name][key] for key in figures[name]}
            print(f"config / {name}: " + ", ".join(f"{key} {value:.2f}" for key, value in ratios.items()))


if __name__ == "__main__":
    main()
