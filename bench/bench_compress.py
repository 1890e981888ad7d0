"""Bench: does removing zero channels buy the speed its FLOPs promise? (Chapter 5's pipeline)

A VGG16 (CIFAR shape, 3 x 32 x 32, full width) is made channel-sparse by hand -- the zeros are the
input-channel groups RGSM produces -- then ``lib.compress.shrink`` removes them and
``quantize_int8`` quantizes the result. Two sparsity profiles:

* ``rgsm-like`` (72.8% channel sparsity): most zeros in the 256- and 512-channel layers, the
  pattern channel pruning finds in VGG16 on CIFAR-10 (the thesis's RGSM VGG16 reaches 69%,
  Table 4.2; Network Slimming, its [40], prunes the late 512-channel layers hardest);
* ``uniform`` (64.1%): every conv but the stem loses the same fraction of its input channels,
  which leaves narrow layers at full 32 x 32 resolution: the hard case for a CPU.

Three ways to run dense and shrunk alike: ``eager`` (the models as trained), ``deployed``
(:func:`lib.compress.for_inference`: batch norm folded into the convs, channels-last layout) and
``deployed+round`` (``shrink(..., round_to=cpu_channel_block())``: a few zero channels are kept so
that every layer's width is a multiple of the CPU's SIMD block). In one process, with the dense
and shrunk models timed alternately (so that load from other jobs hits both alike), it prints for
batch 1 and batch 64: the FLOP ratio dense/shrunk of the models actually run, the latency ratio,
and latency ratio / FLOP ratio (the issue's target: >= 0.7), plus the size ratio dense fp32 /
shrunk int8 (the thesis: "over 12x smaller").

With ``--accuracy`` it also runs the Chapter 5 experiment (``table-5.1``: an RGSM-trained VGG at
the active scale) and prints its accuracy, size, FLOPs and latency at each stage.

Usage: ``python bench/bench_compress.py [--repeats 15] [--threads N] [--accuracy]``
"""

from __future__ import annotations

import argparse

import torch
import torch.nn as nn

from lib.compress import (
    count,
    cpu_channel_block,
    for_inference,
    latency,
    latency_ratio,
    model_bytes,
    quantize_int8,
    shrink,
)
from lib.config import seed_everything, set_threads
from lib.models import vgg16

PROFILES = {
    "rgsm-like": {64: 0.3, 128: 0.45, 256: 0.65, 512: 0.8},
    "uniform": {64: 0.64, 128: 0.64, 256: 0.64, 512: 0.64},
}
TARGET = 0.7  # latency ratio / FLOP ratio


def make_sparse(profile: dict[int, float], seed: int = 0) -> tuple[nn.Module, float]:
    """Full-width VGG16 with the given fraction of zero input channels per conv width; returns
    the model and its channel sparsity (zero input-channel groups / all groups, stem excluded)."""
    seed_everything(seed)
    model = vgg16(in_channels=3, num_classes=10).eval()
    zero = total = 0
    for i, conv in enumerate(m for m in model.modules() if isinstance(m, nn.Conv2d)):
        if i == 0:
            continue
        k = int(round(profile[conv.in_channels] * conv.in_channels))
        conv.weight.data[:, torch.randperm(conv.in_channels)[:k]] = 0
        zero, total = zero + k, total + conv.in_channels
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    return model, zero / total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    ap.add_argument("--accuracy", action="store_true", help="also run the Chapter 5 experiment table-5.1")
    args = ap.parse_args()
    threads = set_threads(args.threads)
    block = cpu_channel_block()
    print(f"torch {torch.__version__}, {threads} threads, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"round_to={block}, quantized engine x86\n")
    print(f"{'profile':<10} {'ch.sp':>6} {'mode':<15} {'batch':>5} {'FLOPs d/s':>9} {'t dense ms':>10} "
          f"{'t shrunk ms':>11} {'lat d/s*':>8} {'lat/FLOP':>8} {'target':>6} {'t int8 ms':>9} {'fp32/int8':>9}")
    met = total = 0
    for name, profile in PROFILES.items():
        dense, sparsity = make_sparse(profile)
        x1 = torch.rand(1, 3, 32, 32)
        calib = torch.rand(64, 3, 32, 32)
        for mode, round_to in (("eager", 1), ("deployed", 1), ("deployed+round", block)):
            small = shrink(dense, x1, round_to=round_to)
            q = quantize_int8(small, calib)
            size_ratio = model_bytes(dense) / model_bytes(q)
            a, b = (dense, small) if mode == "eager" else (for_inference(dense, x1), for_inference(small, x1))
            for batch in (1, 64):
                x = torch.rand(batch, 3, 32, 32)
                flop_ratio = count(dense, x)["flops"] / count(small, x)["flops"]
                timing = latency_ratio(a, b, x, repeats=args.repeats, warmup=3)
                td, ts, ratio = timing["a_s"], timing["b_s"], timing["ratio"]
                tq = latency(q, x, repeats=args.repeats, warmup=3)
                ok = ratio / flop_ratio >= TARGET
                met, total = met + ok, total + 1
                print(f"{name:<10} {100 * sparsity:>5.1f}% {mode:<15} {batch:>5} {flop_ratio:>9.2f} {1e3 * td:>10.2f} "
                      f"{1e3 * ts:>11.2f} {ratio:>8.2f} {ratio / flop_ratio:>8.2f} {'met' if ok else 'MISS':>6} "
                      f"{1e3 * tq:>9.2f} {size_ratio:>9.2f}", flush=True)
    print(f"* median over alternating runs of t_dense / t_shrunk; lat/FLOP is that ratio over the FLOP ratio of the "
          f"models run (target >= {TARGET}: met in {met} of {total} rows)")
    if args.accuracy:
        from lib.experiments import get

        res = get("table-5.1").run()
        print("\nChapter 5 pipeline (table-5.1 at the active scale):")
        for row in res["rows"]:
            print("  " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
