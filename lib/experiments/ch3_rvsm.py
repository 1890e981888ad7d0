"""Section 3.5: Tables 3.1 (RVSM with l0, transformed l1 and l1 on VGG16) and 3.2 (SGD, ADMM and
RVSM(l0) on ResNet18).

The thesis's procedure, followed at both scales:

* SGD with Nesterov momentum 0.9 and weight decay 5e-4, lr 0.1 divided by 10 at fixed epochs;
  batch-norm networks initialised with He (Kaiming) normal conv weights (fan-out mode), unit BN
  scales and N(0, 0.01) linear weights, as common CIFAR code does (PyTorch's default uniform
  initialisation puts almost every conv weight of a narrow VGG under the l0 threshold
  ``sqrt(2 lambda / beta)``, so that the first ``w <- u`` empties whole layers);
* RVSM (:class:`lib.sparse.RVSM`) on all conv and linear weights; after each epoch ``w`` is
  replaced by ``u`` (Section 3.1.4), so the trained network *is* the sparse ``u``;
* ADMM (:class:`lib.sparse.ADMMPruner`, rho = 1e-2, 60% per-tensor target, dual update every
  batch as in the authors' code), then hard pruning and masked fine-tuning;
* before the test accuracy is measured, the batch-norm running statistics are re-estimated for
  the weights being evaluated (:func:`lib.sparse.recalibrate_bn`), for every method alike; the
  accuracy with the statistics gathered while training ``w`` is reported too
  (``accuracy_train_bn``).

Sparsity: % exact zeros among all conv and linear weights (:func:`lib.sparse.sparsity`).

Scales: ``full`` is the thesis's (CIFAR-10, VGG16 / ResNet18 at full width, 200 epochs, lr / 10
at 80, 120, 160, batch 128, crop-and-flip augmentation). ``ci`` runs narrowed networks (width
1/8) on the shipped Fashion-MNIST subset average-pooled to 14x14, a few epochs.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from lib.config import seed_everything
from lib.data import ImageSet, batches
from lib.experiments.base import Experiment, RunContext, register
from lib.experiments.common import train_test
from lib.models import resnet18, vgg16
from lib.sparse import RVSM, ADMMPruner, recalibrate_bn, sparsity
from lib.train import evaluate, fit

# ----- shared pieces --------------------------------------------------------------------------------






def kaiming_init(model: nn.Module) -> nn.Module:
    """He-normal conv weights (fan-out, ReLU gain), BN scale 1 / shift 0, linear N(0, 0.01), zero biases."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
    return model


def build(s: dict, in_channels: int, num_classes: int) -> nn.Module:
    arch = {"vgg16": vgg16, "resnet18": resnet18}[s["model"]]
    model = arch(in_channels=in_channels, num_classes=num_classes, width=s["width"])
    return kaiming_init(model) if s["init"] == "kaiming" else model


def _bn_inputs(train: ImageSet, s: dict, device: str):
    return (x for x, _ in batches(train, s["batch_size"], shuffle=True, seed=12345, device=device))


def train_one(s: dict, method: str, ctx: RunContext, penalty: str | None = None, lam: float | None = None,
              beta: float | None = None, tag: str = "") -> dict:
    """Train one network of the table with ``method`` in {'sgd', 'rvsm', 'admm'} and measure it."""
    seed_everything(ctx.seed)
    train, test = train_test(s)
    model = build(s, train.shape[0], train.num_classes).to(ctx.device)
    hyper = dict(lr=s["lr"], momentum=s["momentum"], weight_decay=s["weight_decay"], nesterov=True)
    common = dict(epochs=s["epochs"], batch_size=s["batch_size"], milestones=tuple(s["milestones"]), seed=ctx.seed,
                  device=ctx.device, augment=s["augment"], progress=ctx.progress)
    name = f"{s['model']}-{method}{'-' + penalty if penalty else ''}{tag}"
    start = time.perf_counter()
    if method == "sgd":
        opt = torch.optim.SGD(model.parameters(), **hyper)
        history = fit(model, opt, train, checkpoint=ctx.checkpoint(name), desc=name, **common)
    elif method == "rvsm":
        opt = RVSM(model.parameters(), beta=beta, lam=lam, penalty=penalty, a=s["a"], **hyper)
        history = fit(model, opt, train, on_epoch_end=RVSM.epoch_end, checkpoint=ctx.checkpoint(name), desc=name,
                      **common)
    elif method == "admm":
        opt = ADMMPruner(model.parameters(), rho=s["rho"], sparsity=s["admm_sparsity"], **hyper)
        history = fit(model, opt, train, checkpoint=ctx.checkpoint(name + "-admm"), desc=name, **common)
        opt.prune()
        for g in opt.param_groups:
            g["lr"] = s["finetune_lr"]
            g.pop("initial_lr", None)
        ft = dict(common, epochs=s["finetune_epochs"], milestones=())
        history += fit(model, opt, train, checkpoint=ctx.checkpoint(name + "-finetune"), desc=name + " fine-tune",
                       **ft)
    else:
        raise ValueError(f"method must be 'sgd', 'rvsm' or 'admm', got {method!r}")
    acc_train_bn = evaluate(model, test, device=ctx.device)
    recalibrate_bn(model, _bn_inputs(train, s, ctx.device))
    acc = evaluate(model, test, device=ctx.device)
    rep = sparsity(model)
    return {"method": method, "penalty": penalty, "lam": lam, "beta": beta, "accuracy": acc,
            "accuracy_train_bn": acc_train_bn, "sparsity": rep["overall"],
            "layer_sparsity": {k: round(v, 2) for k, v in rep["layers"].items()}, "weights": rep["total"],
            "train_loss": [round(r["loss"], 4) for r in history], "seconds": time.perf_counter() - start}


def _scale_note(s: dict) -> str:
    if s["dataset"] == "fashion-mnist":
        return (f"ci scale: {s['model']} at width {s['width']:g} on {10 * s['n_per_class']:,} shipped Fashion-MNIST "
                f"images average-pooled to {s['image_size']}x{s['image_size']}, {s['epochs']} epochs, "
                f"{10 * s['n_test_per_class']:,} test images")
    return f"full scale: {s['model']} on {s['dataset']}, {s['epochs']} epochs (the thesis's protocol)"


# ----- Table 3.1 ----------------------------------------------------------------------------------------

def run_table_3_1(s: dict, ctx: RunContext) -> dict:
    rows = {"base": train_one(s, "sgd", ctx)}
    for pen in s["penalties"]:
        rows[pen] = train_one(s, "rvsm", ctx, penalty=pen, lam=s["lam"], beta=s["beta"])
    return {"rows": rows, "sweep": _sweep(s, ctx), "note": _scale_note(s)}


def _sweep(s: dict, ctx: RunContext) -> list[dict]:
    """RVSM runs at the settings' ``sweep`` points ``[penalty, lambda]`` (beta as in the table)."""
    out = []
    for pen, lam in s["sweep"]:
        r = train_one(s, "rvsm", ctx, penalty=pen, lam=lam, beta=s["beta"], tag=f"-lam{lam:g}")
        out.append({k: r[k] for k in ("penalty", "lam", "beta", "accuracy", "accuracy_train_bn", "sparsity",
                                      "seconds")})
    return out


_COMMON_CI = dict(dataset="fashion-mnist", n_per_class=200, n_test_per_class=100, image_size=14, width=0.125,
                  init="kaiming", epochs=8, milestones=[6], batch_size=64, lr=0.1, momentum=0.9, weight_decay=5e-4,
                  augment=False, a=1.0)
_COMMON_FULL = dict(dataset="cifar10", n_per_class=None, n_test_per_class=None, image_size=32, width=1.0,
                    init="kaiming", epochs=200, milestones=[80, 120, 160], batch_size=128, lr=0.1, momentum=0.9,
                    weight_decay=5e-4, augment=True, a=1.0)

TABLE_3_1 = register(Experiment(
    id="table-3.1",
    title="Table 3.1: sparsity and accuracy of RVSM under the l0, transformed-l1 and l1 penalties (VGG16)",
    settings={
        "ci": dict(_COMMON_CI, model="vgg16", lam=1e-5, beta=1e-2, penalties=["l0", "tl1", "l1"],
                   sweep=[["tl1", 1e-4], ["l1", 1e-4]]),
        "full": dict(_COMMON_FULL, model="vgg16", lam=1e-5, beta=1e-2, penalties=["l0", "tl1", "l1"], sweep=[]),
    },
    run_fn=run_table_3_1,
    cost={"ci": "~1.5 min on 2 CPU cores (6 runs)", "full": "~4 x 3 GPU h (4 runs of 200 CIFAR-10 epochs)"},
    thesis={"base": {"accuracy": 93.82, "sparsity": 0.0}, "l0": {"accuracy": 93.7, "sparsity": 35.68},
            "tl1": {"accuracy": 93.07, "sparsity": 63.34}, "l1": {"accuracy": 92.54, "sparsity": 86.89}},
))


# ----- Table 3.2 ----------------------------------------------------------------------------------------

def run_table_3_2(s: dict, ctx: RunContext) -> dict:
    rows = {"sgd": train_one(s, "sgd", ctx),
            "admm": train_one(s, "admm", ctx),
            "rvsm_l0": train_one(s, "rvsm", ctx, penalty="l0", lam=s["lam"], beta=s["beta"])}
    return {"rows": rows, "sweep": _sweep(s, ctx), "note": _scale_note(s)}


TABLE_3_2 = register(Experiment(
    id="table-3.2",
    title="Table 3.2: ADMM against RVSM(l0) on ResNet18",
    settings={
        "ci": dict(_COMMON_CI, model="resnet18", lam=1e-6, beta=8e-2, rho=1e-2, admm_sparsity=0.6,
                   finetune_epochs=2, finetune_lr=0.01, sweep=[["l0", 1e-4], ["l0", 3e-4]]),
        "full": dict(_COMMON_FULL, model="resnet18", lam=1e-6, beta=8e-2, rho=1e-2, admm_sparsity=0.6,
                     finetune_epochs=40, finetune_lr=0.01, sweep=[]),
    },
    run_fn=run_table_3_2,
    cost={"ci": "~2 min on 2 CPU cores (5 runs)",
          "full": "~3 x 4 GPU h (200 epochs each, ADMM + 40 fine-tuning epochs)"},
    thesis={"sgd": {"accuracy": 95.07, "sparsity": 0.0}, "admm": {"accuracy": 94.84, "sparsity": 47.08},
            "rvsm_l0": {"accuracy": 94.89, "sparsity": 93.70}},
))
