"""Chapter 5: the compression pipeline of the conclusion, measured end to end.

The thesis ends (Chapter 5): "on the CIFAR10, the VGG16 can be reduced over 3x in size using RGSM;
with 8-bit quantization, the model can be further compressed by 4x, resulting in a model that is
over 12x smaller, and has much faster inference rate". It gives no table; ``table-5.1`` is ours:

1. a VGG16-style network trained with plain SGD (the dense reference),
2. the same network trained with RGSM (:class:`lib.sparse.rgsm.RGSM`, Algorithm 3; groups = conv
   input channels, ``W <- U`` at every epoch end), zeros kept (same size as dense). At ``ci`` the
   group-l0 threshold sqrt(2 lambda1 / beta) = sqrt(2) equals the He-initialised group norm, so
   that a few epochs reach a high channel sparsity (the outcome is very sensitive to it: 1.34 gave
   5.6% channel sparsity, 1.48 gave 75% and a dead network, 10% accuracy), and the stem conv
   (one grey input channel: its only group) is not split,
3. :func:`lib.compress.shrink`: the zero channels physically removed (same function, checked),
4. :func:`lib.compress.quantize_int8`: post-training static int8 quantization (torch.ao FX, x86).

For each stage: test accuracy, parameters, FLOPs, bytes of the saved state dict, and median CPU
latency at batch 1 and batch 64 (:func:`lib.compress.latency`). The speed-ups of shrinking and of
int8 over the RGSM network with its zeros are measured pairwise (:func:`lib.compress.latency_ratio`:
the two models alternate, so that machine load cancels from the ratio).
"""

from __future__ import annotations

import torch
from torch import nn

from lib.compress import count, latency, latency_ratio, quantize_int8, shrink
from lib.config import seed_everything
from lib.data import ImageSet, batches
from lib.experiments.base import Experiment, RunContext, register
from lib.experiments.common import train_test
from lib.models import vgg16
from lib.sparse.channels import channel_sparsity
from lib.sparse.rgsm import RGSM, load_u_hook
from lib.train import evaluate, fit


def _build(s: dict, train: ImageSet) -> nn.Module:
    model = vgg16(train.shape[0], train.num_classes, s["width"])
    for m in model.modules():  # He (fan-out) init, as common CIFAR VGG code
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return model


def _train(s: dict, method: str, ctx: RunContext, train: ImageSet) -> nn.Module:
    seed_everything(ctx.seed)
    model = _build(s, train).to(ctx.device)
    hook = None
    if method == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=s["lr"], momentum=0.9, weight_decay=5e-4, nesterov=True)
    else:
        # the stem conv reads the image: with one grey channel, pruning its only group kills the net
        stem = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
        others = [p for p in model.parameters() if p is not stem.weight]
        opt = RGSM([{"params": [stem.weight], "split": not s["skip_stem"]}, {"params": others}], lr=s["lr"],
                   momentum=0.9, weight_decay=5e-4, beta=s["beta"], lambda1=s["lambda1"], penalty=s["penalty"],
                   nesterov=True)
        hook = load_u_hook
    fit(model, opt, train, s["epochs"], batch_size=s["batch_size"], milestones=tuple(s["milestones"]), seed=ctx.seed,
        device=ctx.device, augment=s["augment"], on_epoch_end=hook, checkpoint=ctx.checkpoint(f"ch5-vgg-{method}"),
        progress=ctx.progress, desc=f"VGG16 {method}")
    return model.cpu().eval()


def run_pipeline(s: dict, ctx: RunContext) -> dict:
    """Result keys: ``rows`` (one per stage: ``stage``, ``accuracy``, ``params``, ``flops``,
    ``flops_note``, ``bytes``, ``latency_b1_ms``, ``latency_b64_ms``, ``channel_sparsity``),
    ``shrink_max_diff`` (max |output change| of shrinking on the test set), ``kept_conflicts``,
    ``latency_ratios`` (``shrink_b1``, ``shrink_b64``, ``int8_b1``, ``int8_b64``: how many times
    faster the shrunk fp32 / int8 model is than the RGSM model with zeros, timed alternately),
    ``threads``, ``scale_note``."""
    train, test = train_test(s)
    dense = _train(s, "sgd", ctx, train)
    sparse = _train(s, "rgsm", ctx, train)
    c, h, w = train.shape
    x1 = torch.rand(1, c, h, w, generator=torch.Generator().manual_seed(0))
    small, report = shrink(sparse, x1, on_conflict="keep", return_report=True)
    calib = [x for x, _ in batches(train.subset(s["calib_per_class"], seed=2), 256)]
    q = quantize_int8(small, calib)
    with torch.no_grad():
        diff = max(float((sparse(x) - small(x)).abs().max()) for x, _ in batches(test, 500))
    xb = {b: torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(b)) for b in (1, 64)}
    rows = []
    small_flops = count(small, x1)["flops"]
    for stage, model in (("dense SGD, fp32", dense), ("RGSM, fp32 (zeros kept)", sparse),
                         ("RGSM shrunk, fp32", small), ("RGSM shrunk, int8", q)):
        cnt = count(model, x1)
        is_q = model is q
        rows.append({
            "stage": stage, "accuracy": evaluate(model, test),
            "params": cnt["params"], "flops": small_flops if is_q else cnt["flops"],
            "flops_note": "int8 multiply-adds, as many as the shrunk fp32 model" if is_q else "fp32",
            "bytes": cnt["bytes"],
            "latency_b1_ms": 1e3 * latency(model, xb[1], repeats=s["repeats"], warmup=3),
            "latency_b64_ms": 1e3 * latency(model, xb[64], repeats=max(3, s["repeats"] // 4), warmup=2),
            "channel_sparsity": channel_sparsity(small if is_q else model)["overall"] if model is not dense
            else channel_sparsity(model)["overall"],
        })
    speedups = {f"{name}_b{b}": latency_ratio(sparse, model, xb[b], repeats=s["repeats"], warmup=3)["ratio"]
                for name, model in (("shrink", small), ("int8", q)) for b in (1, 64)}
    n = 10 * s["n_per_class"] if s["n_per_class"] else None
    note = (f"ci scale: VGG16 at width {s['width']:g} on {n:,} shipped Fashion-MNIST images average-pooled to "
            f"{s['image_size']}x{s['image_size']}, {s['epochs']} epochs; tested on {len(test):,} images"
            if s["dataset"] == "fashion-mnist" else
            f"full scale: VGG16 on {s['dataset']}, {s['epochs']} epochs (the thesis's protocol)")
    return {"rows": rows, "shrink_max_diff": diff, "kept_conflicts": len(report["conflicts"]),
            "removed_groups": len(report["removed"]), "latency_ratios": speedups, "threads": torch.get_num_threads(),
            "scale_note": note}


register(Experiment(
    id="table-5.1", title="Chapter 5: RGSM-trained VGG16 -> shrink -> int8 (size, FLOPs, latency, accuracy)",
    settings={
        "ci": dict(dataset="fashion-mnist", image_size=14, n_per_class=100, n_test_per_class=100, width=0.125,
                   epochs=5, milestones=[4], lr=0.05, batch_size=64, augment=False, beta=1.0, lambda1=1.0,
                   penalty="group_l0", skip_stem=True, calib_per_class=20, repeats=100),
        "full": dict(dataset="cifar10", image_size=32, n_per_class=None, n_test_per_class=None, width=1.0,
                     epochs=200, milestones=[80, 120, 160], lr=0.1, batch_size=128, augment=True, beta=1.0,
                     lambda1=1e-3, penalty="group_lasso", skip_stem=False, calib_per_class=100, repeats=50),
    },
    run_fn=run_pipeline,
    cost={"ci": "~1 min CPU (two width-1/8 VGG16 trainings on 1,000 14x14 images)",
          "full": "~2 x 200 epochs VGG16 on CIFAR-10, ~6 GPU h, then CPU timing"},
    thesis={"shrink_factor": 3.0, "int8_factor": 4.0, "total_factor": 12.0,
            "claim": "VGG16 with RGSM + 8-bit quantization: over 12x smaller, much faster inference"}))
