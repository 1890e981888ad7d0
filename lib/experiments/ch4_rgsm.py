"""Section 4.1: RGSM (Algorithm 3) -- Theorem 4.1's monotone Lagrangian, Tables 4.1, 4.2 and 4.3.

* ``theorem-4.1``: full-batch RGSM (no momentum, no weight decay) on a small smooth CNN, with the
  step chosen from a measured Lipschitz constant (``lr = c / (beta + L)``, ``L`` by power
  iteration on Hessian-vector products); records ``L_beta(W^t, U^t)`` every iteration.
* ``table-4.1``: LeNet-5, SGD base model vs RGSM with the group lasso (plus the SSL group-lasso
  baseline of Wen et al. 2016, the thesis's comparison "[69]"); channel sparsity over the 7
  input channels of the two conv layers (ceiling 71.43 %).
* ``table-4.2``: ResNet18 and VGG16, base vs RGSM(GL).
* ``table-4.3``: VGG16: baseline, network slimming at 50/60/70 % + retraining from scratch
  (Liu et al. 2017 + 2019), l1-norm filter pruning + fine-tuning (Li et al. 2017, their
  "VGG-16-pruned-A" plan), ADMM in channel mode, and RGSM.

Training follows the thesis (SGD, Nesterov momentum 0.9, weight decay 5e-4, step schedule); the
conv weights of BN networks get He (fan-out) initialisation, as common CIFAR code does. RGSM
loads ``U`` into ``W`` after every epoch. Runs with the same settings are shared between
tables within one process (Tables 4.2 and 4.3 use the same VGG16 base and RGSM runs).

Scales: ``full`` is the thesis's (MNIST / CIFAR-10, full-width networks, 100 or 200 epochs).
``ci`` runs LeNet-5 on the whole shipped 10,000-image Fashion-MNIST subset at 28x28 and width-1/8
ResNet18 / VGG16 on a class-balanced part of it average-pooled to 14x14, for a few epochs.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from lib.config import seed_everything
from lib.data import ImageSet, batches
from lib.experiments.base import Experiment, RunContext, register
from lib.experiments.common import train_test
from lib.models import count_parameters, lenet5, resnet18, vgg16
from lib.sparse.admm import ADMMPruner
from lib.sparse.baselines import (
    GroupLassoSGD,
    SlimmingSGD,
    l1_filter_plan,
    prune_channels,
    prune_zero_input_channels,
    reinitialize,
    removed_share,
    slimming_plan,
    zero_small_channels,
)
from lib.sparse.channels import channel_sparsity, max_channel_sparsity
from lib.sparse.rgsm import RGSM
from lib.sparse.rvsm import recalibrate_bn
from lib.train import evaluate, fit

_CACHE: dict[str, dict] = {}


# ----- data and models ----------------------------------------------------------------------------




@torch.no_grad()
def he_init(model: nn.Module) -> nn.Module:
    """He (fan-out) normal conv weights, unit BN scales, zero BN shifts (common CIFAR initialisation)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model


def build(model: str, width: float, image_size: int, in_channels: int, num_classes: int,
          init: str = "default") -> nn.Module:
    """LeNet-5, VGG16 or ResNet18; ``init="he"`` re-initialises conv weights with :func:`he_init`."""
    if init not in ("default", "he"):
        raise ValueError(f"init must be 'default' or 'he', got {init!r}")
    if model == "lenet5":
        return lenet5(in_channels, num_classes, input_size=image_size)
    if model in ("vgg16", "resnet18"):
        net = (vgg16 if model == "vgg16" else resnet18)(in_channels, num_classes, width)
        return he_init(net) if init == "he" else net
    raise ValueError(f"model must be lenet5, vgg16 or resnet18, got {model!r}")


_RUN_KEYS = ("dataset", "n_per_class", "n_test_per_class", "image_size", "width", "lr", "epochs", "milestones",
             "batch_size", "augment", "init")


def _key(s: dict, *parts) -> str:
    """A stable name for a training run: the settings that define it, the method, its hyper-parameters."""
    return json.dumps([{k: s.get(k) for k in _RUN_KEYS}, *parts], sort_keys=True, default=str)


def _split_groups(model: nn.Module) -> list[dict]:
    convs = [p for p in model.parameters() if p.dim() == 4]
    rest = [p for p in model.parameters() if p.dim() != 4]
    return [{"params": convs}, {"params": rest, "penalise": False}]


# ----- one training run ------------------------------------------------------------------------------
def train_run(s: dict, model_name: str, method: str, ctx: RunContext, hyper: dict | None = None) -> dict:
    """Train ``model_name`` with ``method`` (``sgd``, ``rgsm``, ``ssl``, ``slim``, ``admm``) on ``s``'s data.

    Returns ``{"model": trained module, "accuracy": %, "channel_sparsity": %, ...}``; cached by settings.
    """
    hyper = dict(hyper or {})
    key = _key(s, model_name, method, hyper, ctx.seed, ctx.device)
    if key in _CACHE:
        return _CACHE[key]
    seed_everything(ctx.seed)
    train, test = train_test(s)
    width = s.get("width", 1.0) if model_name != "lenet5" else 1.0
    model = build(model_name, width, s["image_size"], train.shape[0], train.num_classes,
                  s.get("init", "default")).to(ctx.device)
    lr, epochs, milestones = s["lr"], s["epochs"], tuple(s["milestones"])
    on_epoch_end = None
    admm = None
    if method == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    elif method == "rgsm":
        opt = RGSM(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4, beta=hyper["beta"],
                   lambda1=hyper["lambda1"], penalty=hyper.get("penalty", "group_lasso"))
        on_epoch_end = RGSM.epoch_end
    elif method == "ssl":
        opt = GroupLassoSGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4, lam=hyper["lam"], nesterov=True)
    elif method == "slim":
        opt = SlimmingSGD(model, lr=lr, momentum=0.9, weight_decay=5e-4, s=hyper["s"], nesterov=True)
    elif method == "admm":
        admm = opt = ADMMPruner(_split_groups(model), lr=lr, momentum=0.9, weight_decay=5e-4, rho=hyper["rho"],
                                sparsity=hyper["sparsity"], mode="channel", dim=1)
        prune_at = epochs - hyper["finetune_epochs"]

        def on_epoch_end(m, o, epoch):
            if epoch + 1 == prune_at:
                o.prune()
    else:
        raise ValueError(f"method must be sgd, rgsm, ssl, slim or admm, got {method!r}")
    start = time.perf_counter()
    name = f"ch4-{model_name}-{method}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"
    history = fit(model, opt, train, epochs, batch_size=s["batch_size"], milestones=milestones, seed=ctx.seed,
                  device=ctx.device, augment=s.get("augment", False), on_epoch_end=on_epoch_end,
                  checkpoint=ctx.checkpoint(name), progress=ctx.progress, desc=f"{model_name} {method}")
    if method == "ssl":
        zero_small_channels(model, hyper["zero_below"])
    acc_train_bn = evaluate(model, test, device=ctx.device)
    _recalibrate(model, train, s, ctx)
    out = {"model": model, "accuracy": evaluate(model, test, device=ctx.device), "accuracy_train_bn": acc_train_bn,
           "channel_sparsity": channel_sparsity(model)["overall"],
           "per_layer": channel_sparsity(model)["per_layer"], "final_loss": history[-1]["loss"] if history else None,
           "admm_pruned": bool(admm.pruned) if admm is not None else None,
           "seconds": time.perf_counter() - start}
    print(f"[ch4] {model_name} {method}: {out['accuracy']:.2f}% accuracy, "
          f"{out['channel_sparsity']:.1f}% channels zero, "
          f"{out['seconds']:.0f} s", flush=True)
    _CACHE[key] = out
    return out


def _recalibrate(model: nn.Module, train: ImageSet, s: dict, ctx: RunContext) -> None:
    """Re-estimate BN statistics for the weights evaluated (U for RGSM), for every method alike."""
    n = s.get("bn_batches", 20)
    recalibrate_bn(model, (x for i, (x, _) in enumerate(batches(train, s["batch_size"], shuffle=True, seed=ctx.seed + 1,
                                                               device=ctx.device)) if i < n))


def _public(run: dict) -> dict:
    return {k: v for k, v in run.items() if k != "model"}


def _scale_note(s: dict, model: str) -> str:
    if s["dataset"] == "fashion-mnist":
        n = 10 * s["n_per_class"] if s["n_per_class"] else 10000
        w = "" if model == "lenet5" else f" at width {s['width']:g}"
        return (f"ci scale: {model}{w} on {n:,} shipped Fashion-MNIST images at {s['image_size']}x{s['image_size']}, "
                f"{s['epochs']} epochs, lr {s['lr']:g} divided by 10 at epochs {list(s['milestones'])}, "
                f"tested on {10 * s['n_test_per_class'] if s['n_test_per_class'] else 2000:,} test images")
    return f"full scale: {model} on {s['dataset']}, {s['epochs']} epochs (the thesis's settings)"


# ----- Theorem 4.1 --------------------------------------------------------------------------------------
class SmoothCNN(nn.Module):
    """Two tanh conv layers with average pooling and a linear layer: smooth, as Assumption 1 needs."""

    def __init__(self, c1: int = 4, c2: int = 8, num_classes: int = 10, image_size: int = 14):
        super().__init__()
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.fc = nn.Linear(c2 * (image_size // 4) ** 2, num_classes)

    def forward(self, x):
        x = F.avg_pool2d(torch.tanh(self.conv1(x)), 2)
        x = F.avg_pool2d(torch.tanh(self.conv2(x)), 2)
        return self.fc(torch.flatten(x, 1))


def _full_batch(train: ImageSet, device: str):
    return next(iter(batches(train, len(train), device=device)))


def lipschitz_estimate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, iters: int = 30, seed: int = 0) -> float:
    """Largest |eigenvalue| of the Hessian of the loss at the current weights (power iteration on HVPs)."""
    params = [p for p in model.parameters()]
    gen = torch.Generator().manual_seed(seed)
    v = [torch.randn(p.shape, generator=gen).to(p) for p in params]
    norm = math.sqrt(sum(float((t ** 2).sum()) for t in v))
    v = [t / norm for t in v]
    eig = 0.0
    for _ in range(iters):
        loss = F.cross_entropy(model(x), y)
        grads = torch.autograd.grad(loss, params, create_graph=True)
        hv = torch.autograd.grad(grads, params, grad_outputs=v)
        eig = math.sqrt(sum(float((t ** 2).sum()) for t in hv))
        if eig == 0:
            break
        v = [t.detach() / eig for t in hv]
    return eig


def _rgsm_full_batch(model0: nn.Module, x, y, s: dict, lr: float, ctx: RunContext, track_l: bool) -> dict:
    """Full-batch RGSM from ``model0``'s weights: the Lagrangian each iteration, L along the path."""
    m = copy.deepcopy(model0)
    opt = RGSM(m.parameters(), lr=lr, momentum=0.0, weight_decay=0.0, beta=s["beta"], lambda1=s["lambda1"],
               penalty=s["penalty"], nesterov=False)
    values, losses, l_path = [], [], []
    for it in range(s["iterations"] + 1):
        loss = F.cross_entropy(m(x), y)
        values.append(loss.item() + opt.lagrangian_terms())
        losses.append(loss.item())
        if track_l and it % s["lipschitz_every"] == 0:
            l_path.append(lipschitz_estimate(m, x, y, iters=s["power_iters_path"], seed=ctx.seed + it))
        if it == s["iterations"]:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    diffs = [b - a for a, b in zip(values, values[1:])]
    us = opt.u_tensors()
    zero = sum(int((u.pow(2).sum(dim=(0, 2, 3)) == 0).sum()) for u in us)
    return {"lr": lr, "lagrangian": values, "loss": losses, "max_increase": max(diffs),
            "L_path": l_path, "L_path_max": max(l_path) if l_path else None,
            "channel_sparsity_U": 100.0 * zero / sum(u.shape[1] for u in us)}


def run_theorem_4_1(s: dict, ctx: RunContext) -> dict:
    """Theorem 4.1 on a smooth CNN, full batch. The Hessian's top eigenvalue grows while training, so a
    pilot run with ``lr = 0.9/(beta + L_init)`` measures ``L`` along its path; the checked run then uses
    ``lr = 0.9/(beta + L_hat)``, ``L_hat`` the largest value seen, and measures ``L`` along its own path.
    A third run takes ``s["violate_factor"]/(beta + L_init)``, far above the condition."""
    seed_everything(ctx.seed)
    train, _ = train_test(s)
    x, y = _full_batch(train, ctx.device)
    model = SmoothCNN(s["c1"], s["c2"], train.num_classes, s["image_size"]).to(ctx.device)
    l0 = lipschitz_estimate(model, x, y, iters=s["power_iters"], seed=ctx.seed)
    beta = s["beta"]
    pilot = _rgsm_full_batch(model, x, y, s, 0.9 / (beta + l0), ctx, track_l=True)
    l_hat = max(l0, pilot["L_path_max"])
    inside = _rgsm_full_batch(model, x, y, s, 0.9 / (beta + l_hat), ctx, track_l=True)
    outside = _rgsm_full_batch(model, x, y, s, s["violate_factor"] / (beta + l0), ctx, track_l=False)
    return {"L_init": l0, "L_hat": l_hat,
            "runs": {"pilot: 0.9/(beta+L_init)": pilot, "inside: 0.9/(beta+L_hat)": inside,
                     f"outside: {s['violate_factor']:g}/(beta+L_init)": outside},
            "scale_note": (f"{len(train):,} Fashion-MNIST images at {s['image_size']}x{s['image_size']}, full batch, "
                           f"{s['iterations']} iterations of Algorithm 3 without momentum or weight decay")}


register(Experiment(
    id="theorem-4.1", title="Theorem 4.1: the RGSM Lagrangian decreases monotonically",
    settings={
        "ci": dict(dataset="fashion-mnist", n_per_class=30, n_test_per_class=10, image_size=14, c1=4, c2=8,
                   beta=1.0, lambda1=0.05, penalty="group_lasso", iterations=100, lipschitz_every=20,
                   power_iters=12, power_iters_path=5, violate_factor=8.0),
        "full": dict(dataset="fashion-mnist", n_per_class=200, n_test_per_class=10, image_size=28, c1=6, c2=16,
                     beta=1.0, lambda1=0.05, penalty="group_lasso", iterations=2000, lipschitz_every=100,
                     power_iters=30, power_iters_path=15, violate_factor=8.0),
    },
    run_fn=run_theorem_4_1, cost={"ci": "~10 s CPU", "full": "~10 min CPU"},
    thesis={"claim": "L_beta(W^t, U^t) decreases monotonically when lr < 1/(beta + L)"},
))


# ----- Table 4.1 ------------------------------------------------------------------------------------------
def run_table_4_1(s: dict, ctx: RunContext) -> dict:
    base = train_run(s, "lenet5", "sgd", ctx)
    rgsm = train_run(s, "lenet5", "rgsm", ctx, {"beta": s["beta"], "lambda1": s["lambda1"]})
    ssl = train_run(s, "lenet5", "ssl", ctx, {"lam": s["ssl_lam"], "zero_below": s["ssl_zero_below"]})
    return {"rows": {"Base model": _public(base), "RGSM (GL)": _public(rgsm), "SSL group lasso": _public(ssl)},
            "ceiling": max_channel_sparsity(base["model"]), "scale_note": _scale_note(s, "lenet5")}


_LENET = dict(batch_size=128, augment=False)
register(Experiment(
    id="table-4.1", title="Table 4.1: RGSM on LeNet-5, accuracy and channel sparsity",
    settings={
        "ci": dict(_LENET, dataset="fashion-mnist", n_per_class=None, n_test_per_class=None, image_size=28, lr=0.05,
                   epochs=8, milestones=[6], beta=1.0, lambda1=0.05, ssl_lam=0.005, ssl_zero_below=1e-2),
        "full": dict(_LENET, dataset="mnist", n_per_class=None, n_test_per_class=None, image_size=28, lr=0.1,
                     epochs=100, milestones=[60], beta=1.0, lambda1=1.0, ssl_lam=1e-2, ssl_zero_below=1e-2),
    },
    run_fn=run_table_4_1, cost={"ci": "~30 s CPU", "full": "~30 min GPU"},
    thesis={"Base model": {"accuracy": 99.1, "channel_sparsity": 0.0},
            "RGSM (GL)": {"accuracy": 98.74, "channel_sparsity": 71.43}, "beta": 1, "lambda": 1},
))


# ----- Table 4.2 ------------------------------------------------------------------------------------------
def run_table_4_2(s: dict, ctx: RunContext) -> dict:
    rows = {}
    for model in s["models"]:
        base = train_run(s, model, "sgd", ctx)
        rgsm = train_run(s, model, "rgsm", ctx, {"beta": s["beta"], "lambda1": s["lambda1"]})
        rows[model] = {"Base model": _public(base), "RGSM (GL)": _public(rgsm),
                       "params": count_parameters(base["model"])}
    return {"rows": rows, "scale_note": _scale_note(s, " / ".join(s["models"]))}


_CI_DEEP = dict(dataset="fashion-mnist", n_per_class=100, n_test_per_class=100, image_size=14, width=0.125,
                lr=0.05, epochs=10, milestones=[7], batch_size=32, augment=False, beta=1.0, lambda1=0.05)
_FULL_DEEP = dict(dataset="cifar10", n_per_class=None, n_test_per_class=None, image_size=32, width=1.0,
                  lr=0.1, epochs=200, milestones=[100, 160], batch_size=128, augment=True, beta=1.0, lambda1=1e-3)
register(Experiment(
    id="table-4.2", title="Table 4.2: RGSM on ResNet18 and VGG16, accuracy and channel sparsity",
    settings={"ci": dict(_CI_DEEP, models=["resnet18", "vgg16"]),
              "full": dict(_FULL_DEEP, models=["resnet18", "vgg16"])},
    run_fn=run_table_4_2, cost={"ci": "~1 min CPU", "full": "~2 x 4 GPU h"},
    thesis={"resnet18": {"Base model": {"accuracy": 94.97, "channel_sparsity": 0.0},
                         "RGSM (GL)": {"accuracy": 94.74, "channel_sparsity": 45.8}},
            "vgg16": {"Base model": {"accuracy": 93.94, "channel_sparsity": 0.0},
                      "RGSM (GL)": {"accuracy": 93.68, "channel_sparsity": 69.0}}, "beta": 1, "lambda": 1e-3},
))


# ----- Table 4.3 ------------------------------------------------------------------------------------------
def _example(train: ImageSet, device: str) -> torch.Tensor:
    return next(iter(batches(train, 2, device=device)))[0]


def _continue(model: nn.Module, s: dict, ctx: RunContext, epochs: int, lr: float, name: str) -> float:
    train, test = train_test(s)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    fit(model, opt, train, epochs, batch_size=s["batch_size"], milestones=tuple(s.get("milestones_ft", ())),
        seed=ctx.seed + 7, device=ctx.device, augment=s.get("augment", False), checkpoint=ctx.checkpoint(name),
        progress=ctx.progress, desc=name)
    return evaluate(model, test, device=ctx.device)


def run_table_4_3(s: dict, ctx: RunContext) -> dict:
    train, test = train_test(s)
    example = _example(train, ctx.device)
    rows = {}
    base = train_run(s, "vgg16", "sgd", ctx)
    rows["Baseline"] = {"sparsity": 0.0, "accuracy": base["accuracy"], "params": count_parameters(base["model"])}
    # network slimming: train with l1 on BN scales, pick channels globally, retrain the slim net from scratch
    slim = train_run(s, "vgg16", "slim", ctx, {"s": s["slim_s"]})
    for ratio in s["slim_ratios"]:
        plan = slimming_plan(slim["model"], ratio)
        small = prune_channels(copy.deepcopy(slim["model"]), plan["remove"], example)
        reinitialize(small, seed=ctx.seed)
        he_init(small)
        acc = _continue(small, dict(s, milestones_ft=s["milestones"]), ctx, s["epochs"], s["lr"],
                        f"t43-ns{int(100 * ratio)}")
        rows[f"Network slimming {int(round(100 * ratio))}%"] = {
            "sparsity": removed_share(base["model"], small), "accuracy": acc, "params": count_parameters(small),
            "emptied_layers": len(plan["emptied"])}
    # l1-norm filter pruning (Li et al. 2017, VGG-16-pruned-A): 50% of the filters of conv 1 and 8-13, fine-tune
    convs = [n for n, m in base["model"].named_modules() if isinstance(m, nn.Conv2d)]
    ratios = {convs[i]: 0.5 for i in s["l1_layers"]}
    pruned = prune_channels(copy.deepcopy(base["model"]), l1_filter_plan(base["model"], ratios), example)
    acc_pruned = evaluate(pruned, test, device=ctx.device)
    acc = _continue(pruned, s, ctx, s["l1_finetune_epochs"], s["l1_finetune_lr"], "t43-l1")
    params_share = 100.0 * (1 - count_parameters(pruned) / count_parameters(base["model"]))
    rows["l1-norm pruning"] = {"sparsity": removed_share(base["model"], pruned), "accuracy": acc,
                               "accuracy_before_finetune": acc_pruned, "params": count_parameters(pruned),
                               "params_pruned": params_share}
    # ADMM in channel mode (Zhang et al. 2018 as the thesis runs it), then hard prune and masked fine-tuning
    admm = train_run(s, "vgg16", "admm", ctx, {"rho": s["admm_rho"], "sparsity": s["admm_sparsity"],
                                                "finetune_epochs": s["admm_finetune_epochs"]})
    rows["ADMM (channel)"] = {"sparsity": admm["channel_sparsity"], "accuracy": admm["accuracy"]}
    # RGSM: train once; zero channels are then removed for real and the smaller net must compute the same function
    rgsm = train_run(s, "vgg16", "rgsm", ctx, {"beta": s["beta"], "lambda1": s["lambda1"]})
    small = copy.deepcopy(rgsm["model"])
    prune_zero_input_channels(small, example)
    rows["RGSM"] = {"sparsity": rgsm["channel_sparsity"], "accuracy": rgsm["accuracy"],
                    "accuracy_physically_pruned": evaluate(small, test, device=ctx.device),
                    "params": count_parameters(small),
                    "sparsity_physically_pruned": removed_share(base["model"], small)}
    high = train_run(s, "vgg16", "rgsm", ctx, {"beta": s["beta"], "lambda1": s["lambda1_high"]})
    rows["RGSM (larger lambda)"] = {"sparsity": high["channel_sparsity"], "accuracy": high["accuracy"]}
    return {"rows": rows, "scale_note": _scale_note(s, "vgg16")}


register(Experiment(
    id="table-4.3", title="Table 4.3: RGSM against network slimming, l1-norm pruning and ADMM on VGG16",
    settings={
        "ci": dict(_CI_DEEP, lambda1_high=0.1, slim_s=1e-3, slim_ratios=[0.5, 0.6, 0.7],
                   l1_layers=[0, 7, 8, 9, 10, 11, 12],
                   l1_finetune_epochs=2, l1_finetune_lr=0.005, admm_rho=1e-2, admm_sparsity=0.5,
                   admm_finetune_epochs=2),
        "full": dict(_FULL_DEEP, lambda1_high=1e-2, slim_s=1e-4, slim_ratios=[0.5, 0.6, 0.7],
                     l1_layers=[0, 7, 8, 9, 10, 11, 12],
                     l1_finetune_epochs=40, l1_finetune_lr=0.001, admm_rho=1e-2, admm_sparsity=0.5,
                     admm_finetune_epochs=40),
    },
    run_fn=run_table_4_3, cost={"ci": "~1.5 min CPU", "full": "~12 GPU h"},
    thesis={"Baseline": {"sparsity": 0, "accuracy": 93.96}, "Network slimming 50%": {"sparsity": 50, "accuracy": 90.91},
            "Network slimming 60%": {"sparsity": 60, "accuracy": 90.27},
            "Network slimming 70%": {"sparsity": 70, "accuracy": 71.88},
            "l1-norm pruning": {"sparsity": 64, "accuracy": 93.30}, "RGSM": {"sparsity": 70, "accuracy": 93.62}},
))
