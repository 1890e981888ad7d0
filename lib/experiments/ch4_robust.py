"""Section 4.2 (pruning robustly trained networks): Tables 4.4-4.8, Figures 4.1-4.5 and Figure 1.2.

Every experiment trains with PGD adversarial training (:mod:`lib.robust.train`) and one of the
optimizers SGD, RVSM (unstructured, Algorithm 1), RGSM (channels, Algorithm 3) or ADMM, all
acting in the back-propagation stage, then measures

* ``A1`` natural accuracy, ``A2`` FGSM, ``A3`` IFGSM^20, ``A4`` C&W (l_inf margin form, see
  :func:`lib.robust.attacks.cw`), ``A5`` NAttack (Table 4.5 only), all in %; for the noisy
  EnResNets also ``A3_eot`` (IFGSM^20 with gradients averaged over ``eot`` noise draws),
* ``sparsity`` (% zero weights among conv and linear weights) and ``channel_sparsity``
  (% conv input channels with l2 norm < 1e-15, :func:`lib.sparse.channels.channel_sparsity`).

Trained models are shared between experiments in the same process (a table's base row is the
next table's base row), keyed by every setting that influences them, so a notebook that obtains
several tables trains each model once.  Each training run seeds with ``ctx.seed`` first, so a
model does not depend on which experiment asked for it first.

Scales: ``full`` is the thesis's protocol (CIFAR-10, CIFAR-100 for Table 4.8, 45k/5k split,
200 epochs, lr 0.1 / 10 at 80, 120, 160, PGD IFGSM^10 training, 10,000 test images).  ``ci``
shrinks everything to fit 2 CPU cores: the shipped Fashion-MNIST subset average-pooled to
14x14, 1,100 training images (100 of them for validation), 3 epochs of batch 32 (lr 0.1, / 10
after epoch 2), PGD-3 training (step 3/255), 150 test images, IFGSM^10 instead of IFGSM^20 (and C&W
with 10 steps), NAttack with a population of 20 for 10 iterations on 50 images.
"""

from __future__ import annotations

import copy
import hashlib
import json

import torch

from lib.config import seed_everything
from lib.data import ImageSet
from lib.experiments.base import Experiment, RunContext, register
from lib.experiments.common import train_test
from lib.models import count_parameters, enresnet, resnet20, resnet38
from lib.robust.attacks import cw, fgsm, ifgsm, nattack, robust_accuracy
from lib.robust.train import pgd_perturb
from lib.train import fit

EPS = 8 / 255

# ----- scales -------------------------------------------------------------------------------------
CI = dict(dataset="fashion-mnist", image_size=14, n_per_class=110, n_val=100, n_test_per_class=15, epochs=3,
          milestones=[2], lr=0.1, batch_size=32, augment=False, train_steps=3, train_alpha=3 / 255, eps=EPS,
          eval_alpha=2 / 255, ifgsm_steps=10, cw_steps=10, eot=4, eot_all=False,
          nattack_population=20, nattack_iterations=10, nattack_n=50)
FULL = dict(dataset="cifar10", image_size=32, n_per_class=None, n_val=5000, n_test_per_class=None, epochs=200,
            milestones=[80, 120, 160], lr=0.1, batch_size=128, augment=True, train_steps=10, train_alpha=2 / 255,
            eps=EPS, eval_alpha=2 / 255, ifgsm_steps=20, cw_steps=30, eot=10, eot_all=True,
            nattack_population=300, nattack_iterations=500, nattack_n=1000)
TRAIN_KEYS = ("dataset", "image_size", "n_per_class", "n_val", "epochs", "milestones", "lr", "batch_size",
              "augment", "train_steps", "train_alpha", "eps")
ARCHS = ("resnet20", "resnet38", "en2resnet20", "en5resnet20")
NAMES = {"resnet20": "ResNet20", "resnet38": "ResNet38", "en2resnet20": "En2ResNet20", "en5resnet20": "En5ResNet20"}


def ci_scale_text(s: dict = CI) -> str:
    """The ci protocol in words, for the page."""
    return (f"ci scale: shipped Fashion-MNIST subset average-pooled to {s['image_size']}x{s['image_size']}, "
            f"{10 * s['n_per_class'] - s['n_val']} training + {s['n_val']} validation images, "
            f"{s['epochs']} epochs of batch {s['batch_size']} (lr {s['lr']}, / 10 after epoch {s['milestones'][0]}), "
            f"PGD-{s['train_steps']} "
            f"training (step {s['train_alpha'] * 255:.0f}/255, eps 8/255), {10 * s['n_test_per_class']} test images, "
            f"IFGSM^{s['ifgsm_steps']} (step 2/255) for A3, C&W {s['cw_steps']} steps, EOT {s['eot']} samples, "
            f"NAttack population "
            f"{s['nattack_population']} x {s['nattack_iterations']} iterations on {s['nattack_n']} images")


# ----- data ---------------------------------------------------------------------------------------


def datasets(s: dict) -> tuple[ImageSet, ImageSet | None, ImageSet]:
    """(train, validation, test) for settings ``s``."""
    train, test = train_test(s)
    val = None
    if s["n_val"]:
        train, val = train.split(s["n_val"], seed=0)
    return train, val, test


def build(arch: str, in_channels: int, num_classes: int) -> torch.nn.Module:
    """ResNet20, ResNet38, En2ResNet20 or En5ResNet20 (noise 0.1 * std, as the EnResNet code)."""
    if arch == "resnet20":
        return resnet20(in_channels, num_classes)
    if arch == "resnet38":
        return resnet38(in_channels, num_classes)
    if arch in ("en2resnet20", "en5resnet20"):
        return enresnet(int(arch[2]), 20, 0.1, in_channels, num_classes)
    raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")


def _param_groups(model: torch.nn.Module, flag: str) -> list[dict]:
    """Conv weights (4-D) penalised, every other parameter plain SGD (as the authors' code)."""
    conv = [p for p in model.parameters() if p.dim() == 4]
    rest = [p for p in model.parameters() if p.dim() != 4]
    return [{"params": conv, flag: True}, {"params": rest, flag: False}]


def optimizer_for(model: torch.nn.Module, method: str, params: dict, lr: float):
    """SGD (Nesterov 0.9, wd 5e-4) or RVSM / RGSM / ADMM with the same SGD part."""
    base = dict(lr=lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    if method == "sgd":
        return torch.optim.SGD(model.parameters(), **base)
    if method == "rvsm":
        from lib.sparse.rvsm import RVSM

        return RVSM(_param_groups(model, "penalise"), beta=params["beta"], lam=params["lam"], penalty="l0", **base)
    if method == "rgsm":
        from lib.sparse.rgsm import RGSM

        return RGSM(_param_groups(model, "split"), beta=params["beta"], lambda1=params["lambda1"],
                    lambda2=params["lambda2"], penalty="group_l0", dim=1, **base)
    if method == "admm":
        from lib.sparse.admm import ADMMPruner

        return ADMMPruner(_param_groups(model, "penalise"), rho=params.get("rho", 1e-2), sparsity=params["target"],
                          mode=params["mode"], dim=1, **base)
    raise ValueError(f"method must be 'sgd', 'rvsm', 'rgsm' or 'admm', got {method!r}")


# ----- training, shared across experiments ---------------------------------------------------------
_MODELS: dict[str, dict] = {}
_EVALS: dict[str, dict] = {}


def _key(*parts) -> str:
    return json.dumps(parts, sort_keys=True, default=str)


def train_model(s: dict, arch: str, method: str = "sgd", params: dict | None = None, natural: bool = False,
                ctx: RunContext | None = None) -> dict:
    """Train (or fetch from this process's cache) one model; returns ``{"model", "history", "stages"}``.

    ``natural=True`` trains without the PGD adversary.  ADMM runs its ADMM phase for all epochs;
    ``stages["admm"]`` is that model (the thesis's protocol: no hard prune), and the returned
    model is the hard-pruned one after ``params["finetune"]`` masked fine-tuning epochs.
    """
    ctx = ctx or RunContext()
    params = dict(params or {})
    key = _key([s[k] for k in TRAIN_KEYS], arch, method, params, natural, ctx.seed)
    if key in _MODELS:
        return _MODELS[key]
    train, val, _ = datasets(s)
    seed_everything(ctx.seed)
    model = build(arch, train.shape[0], train.num_classes).to(ctx.device)
    opt = optimizer_for(model, method, params, s["lr"])
    hook = None
    if method in ("rvsm", "rgsm"):
        def hook(m, o, epoch):
            o.load_u()
    name = f"ch4-{arch}-{method}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"
    perturb = None if natural else pgd_perturb(s["eps"], s["train_alpha"], s["train_steps"], True)
    kw = dict(batch_size=s["batch_size"], seed=ctx.seed, device=ctx.device, augment=s["augment"], perturb=perturb,
              progress=ctx.progress, val=val)
    history = fit(model, opt, train, s["epochs"], milestones=tuple(s["milestones"]), on_epoch_end=hook,
                  checkpoint=ctx.checkpoint(name), desc=f"{NAMES[arch]} {method}", **kw)
    stages = {}
    if method == "admm":
        stages["admm"] = copy.deepcopy(model)
        opt.prune()
        for g in opt.param_groups:
            g["lr"] = s["lr"] * 0.1 ** len(s["milestones"])
        history += fit(model, opt, train, params.get("finetune", 1), checkpoint=ctx.checkpoint(name + "-ft"),
                       desc=f"{NAMES[arch]} ADMM fine-tune", **kw)
    out = {"model": model.eval(), "history": history, "stages": stages}
    _MODELS[key] = out
    return out


def is_noisy(arch: str) -> bool:
    return arch.startswith("en")


def evaluate_model(model: torch.nn.Module, s: dict, arch: str, ctx: RunContext, attacks=("A1", "A2", "A3", "A4"),
                   eot: bool = False, tag: str = "") -> dict:
    """A1..A5 (%) of ``model`` on the test images (and ``A3_eot`` when ``eot``).

    Each accuracy is computed after ``seed_everything(ctx.seed)`` (so it does not depend on which
    others were computed before it) and, when ``tag`` names the model, cached per attack.
    """
    _, _, test = datasets(s)
    dev, e, a = ctx.device, s["eps"], s["eval_alpha"]
    jobs = {
        "A1": lambda: robust_accuracy(model, test, None, device=dev),
        "A2": lambda: robust_accuracy(model, test, fgsm, device=dev, eps=e),
        "A3": lambda: robust_accuracy(model, test, ifgsm, device=dev, eps=e, alpha=a, steps=s["ifgsm_steps"]),
        "A3_eot": lambda: robust_accuracy(model, test, ifgsm, device=dev, eps=e, alpha=a, steps=s["ifgsm_steps"],
                                          eot=s["eot"]),
        "A4": lambda: robust_accuracy(model, test, cw, device=dev, eps=e, alpha=a, steps=s["cw_steps"]),
        "A5": lambda: robust_accuracy(model, test, nattack, n=s["nattack_n"], device=dev, eps=e,
                                      population=s["nattack_population"], iterations=s["nattack_iterations"],
                                      generator=torch.Generator().manual_seed(ctx.seed)),
    }
    wanted = [k for k in ("A1", "A2", "A3", "A3_eot", "A4", "A5") if k in attacks or (k == "A3_eot" and eot)]
    base = [s[k] for k in TRAIN_KEYS + ("n_test_per_class", "eval_alpha", "ifgsm_steps", "cw_steps", "eot",
                                        "nattack_population", "nattack_iterations", "nattack_n")]
    out = {}
    for k in wanted:
        key = _key(tag, base, k, ctx.seed)
        if not tag or key not in _EVALS:
            seed_everything(ctx.seed)
            _EVALS[key] = jobs[k]()
        out[k] = _EVALS[key]
    return out


def sparsity_report(model: torch.nn.Module) -> dict:
    """``sparsity`` (% zeros among conv and linear weights) and ``channel_sparsity`` (% zero input channels)."""
    from lib.sparse.channels import channel_sparsity
    from lib.sparse.rvsm import sparsity

    return {"sparsity": sparsity(model)["overall"], "channel_sparsity": channel_sparsity(model)["overall"]}


def row(s: dict, arch: str, method: str, params: dict, ctx: RunContext, attacks=("A1", "A2", "A3", "A4")) -> dict:
    """One table row: train (cached), evaluate (cached), sparsities, parameter count."""
    run = train_model(s, arch, method, params, ctx=ctx)
    model = run["model"]
    eot = is_noisy(arch) and (s["eot_all"] or method == "sgd")
    tag = _key(arch, method, params)
    out = {"net": NAMES[arch], "method": method, **{k: float(v) for k, v in params.items()}}
    out.update(evaluate_model(model, s, arch, ctx, attacks, eot, tag))
    out.update(sparsity_report(model))
    out["params"] = count_parameters(model)
    return out


# ----- Figure 1.2 and Figures 4.1-4.2 ----------------------------------------------------------------
def _all_weights(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten().cpu() for p in model.parameters() if p.dim() >= 2])


def _histogram(w: torch.Tensor, limit: float, bins: int) -> dict:
    edges = torch.linspace(-limit, limit, bins + 1)
    counts = torch.histc(w.clamp(-limit, limit), bins, -limit, limit)
    return {"edges": edges.tolist(), "percent": (100.0 * counts / w.numel()).tolist()}


def run_fig_1_2(s: dict, ctx: RunContext) -> dict:
    """Figure 1.2: weights of naturally (NT) vs PGD adversarially trained (AT) ResNet20.

    Result keys: ``threshold`` (1e-2); ``nt_small`` / ``at_small``: % of weights (conv and linear,
    all layers) with |w| < threshold, one entry per trial; ``nt_small_mean`` / ``at_small_mean``;
    ``nt_hist`` / ``at_hist``: ``{"edges", "percent"}`` histograms of the first trial on
    [-``limit``, ``limit``]; ``init_small``: the same share at PyTorch's default initialisation;
    ``nt_acc`` / ``at_acc``: natural test accuracy (%) of the first trial; ``trials``.
    """
    thr, out = s["threshold"], {"threshold": s["threshold"], "nt_small": [], "at_small": [], "trials": s["trials"]}
    for t in range(s["trials"]):
        c = RunContext(ctx.device, ctx.seed + t, ctx.workdir, ctx.progress, ctx.scale)
        nt = train_model(s, "resnet20", natural=True, ctx=c)["model"]
        at = train_model(s, "resnet20", ctx=c)["model"]
        wn, wa = _all_weights(nt), _all_weights(at)
        out["nt_small"].append(float(100.0 * (wn.abs() < thr).float().mean()))
        out["at_small"].append(float(100.0 * (wa.abs() < thr).float().mean()))
        if t == 0:
            out["nt_hist"] = _histogram(wn, s["limit"], s["bins"])
            out["at_hist"] = _histogram(wa, s["limit"], s["bins"])
            _, _, test = datasets(s)
            seed_everything(ctx.seed)
            out["nt_acc"] = robust_accuracy(nt, test, None, device=ctx.device)
            out["at_acc"] = robust_accuracy(at, test, None, device=ctx.device)
            train, _, _ = datasets(s)
            seed_everything(ctx.seed)
            w0 = _all_weights(build("resnet20", train.shape[0], train.num_classes))
            out["init_small"] = float(100.0 * (w0.abs() < thr).float().mean())
    out["nt_small_mean"] = sum(out["nt_small"]) / len(out["nt_small"])
    out["at_small_mean"] = sum(out["at_small"]) / len(out["at_small"])
    return out


def _neighbour_gap(w: torch.Tensor) -> float:
    """Mean |difference| of horizontally and vertically adjacent entries of each 3x3 kernel."""
    dh = (w[..., :, 1:] - w[..., :, :-1]).abs().mean()
    dv = (w[..., 1:, :] - w[..., :-1, :]).abs().mean()
    return float((dh + dv) / 2)


def run_fig_4_1(s: dict, ctx: RunContext) -> dict:
    """Figures 4.1, 4.2 (and A.1, A.2): one randomly chosen 64x64x3x3 conv layer of AT ResNet20 and the
    same layer of the first member of AT En2ResNet20.

    Result keys: ``layer`` (module name inside a ResNet20, drawn with ``layer_seed``), ``shape``;
    ``resnet20`` / ``en2resnet20``: that layer's weights as nested lists (out, in, 3, 3); for each
    net in ``stats``: ``std``, ``mean_abs``, ``small`` (% |w| < 1e-2) and ``neighbour_gap`` (mean
    |difference| of adjacent kernel entries, the thesis's "regularity"); ``acc``: natural accuracy.
    """
    r20 = train_model(s, "resnet20", ctx=ctx)["model"]
    en2 = train_model(s, "en2resnet20", ctx=ctx)["model"]
    names = [n for n, m in r20.named_modules() if isinstance(m, torch.nn.Conv2d)
             and tuple(m.weight.shape) == (64, 64, 3, 3)]
    gen = torch.Generator().manual_seed(s["layer_seed"])
    layer = names[int(torch.randint(len(names), (1,), generator=gen))]
    w_r = dict(r20.named_modules())[layer].weight.detach().cpu()
    w_e = dict(en2.members[0].named_modules())[layer].weight.detach().cpu()
    stats = {}
    for k, w in (("resnet20", w_r), ("en2resnet20", w_e)):
        stats[k] = {"std": float(w.std()), "mean_abs": float(w.abs().mean()),
                    "small": float(100.0 * (w.abs() < 1e-2).float().mean()), "neighbour_gap": _neighbour_gap(w)}
    _, _, test = datasets(s)
    seed_everything(ctx.seed)
    acc = {"resnet20": robust_accuracy(r20, test, None, device=ctx.device),
           "en2resnet20": robust_accuracy(en2, test, None, device=ctx.device)}
    return {"layer": layer, "candidates": names, "shape": list(w_r.shape), "resnet20": w_r.tolist(),
            "en2resnet20": w_e.tolist(), "stats": stats, "acc": acc}


FIG_CI = dict(CI, threshold=1e-2, limit=0.25, bins=100, trials=1)
FIG_FULL = dict(FULL, threshold=1e-2, limit=0.25, bins=100, trials=10)

register(Experiment(
    id="fig-1.2", title="Figure 1.2: weights of naturally vs adversarially trained ResNet20",
    settings={"ci": FIG_CI, "full": FIG_FULL}, run_fn=run_fig_1_2,
    cost={"ci": "~15 s CPU (one NT and one PGD-3 AT ResNet20 on 1,500 14x14 images)",
          "full": "~10 x (200 epochs NT + 200 epochs PGD-10 AT) ResNet20, ~100 GPU h"},
    thesis={"nt_small": 8.66, "at_small": 3.64, "threshold": 1e-2, "trials": 10}))

register(Experiment(
    id="fig-4.1", title="Figures 4.1-4.2 (and A.1-A.2): a conv layer of AT ResNet20 vs AT En2ResNet20",
    settings={"ci": dict(CI, layer_seed=0), "full": dict(FULL, layer_seed=0)}, run_fn=run_fig_4_1,
    cost={"ci": "~25 s CPU (AT ResNet20 and En2ResNet20, shared with Tables 4.4-4.6)",
          "full": "~2 x 200 epochs of PGD-10 training, ~25 GPU h"},
    thesis={"claim": "EnResNet20's weights are more concentrated around 0 and smoother across neighbours",
            "shape": [64, 64, 3, 3]}))


# ----- Tables 4.4-4.8 -------------------------------------------------------------------------------
def _base_row(s, arch, ctx, attacks=("A1", "A2", "A3", "A4")) -> dict:
    out = row(s, arch, "sgd", {}, ctx, attacks)
    out.update(beta=None, lam=None, lambda1=None, lambda2=None)
    return out


def run_table_4_4(s: dict, ctx: RunContext) -> dict:
    """Table 4.4: ResNet20 vs En2ResNet20 under RVSM (l0, ``lam``) for each ``beta``, PGD-trained.

    Result keys: ``rows``: one dict per (net, beta) with ``net``, ``method`` ("sgd" for the
    n/a base row, "rvsm"), ``beta``, ``lam``, ``A1``-``A4`` (and ``A3_eot`` for En2ResNet20's base
    row, all EnResNet rows at full scale), ``sparsity`` (% zero weights), ``channel_sparsity``,
    ``params``.
    """
    rows = []
    for arch in s["archs"]:
        rows.append(_base_row(s, arch, ctx))
        for beta in s["betas"]:
            rows.append(row(s, arch, "rvsm", {"beta": beta, "lam": s["lam"]}, ctx))
    return {"rows": rows}


def _rgsm_rows(s, archs, ctx, attacks) -> list[dict]:
    rows = []
    for arch in archs:
        rows.append(_base_row(s, arch, ctx, attacks))
        for lam1, th in zip(s["lambda1s"], s["thesis_lambda1s"]):
            r = row(s, arch, "rgsm", {"beta": s["beta"], "lambda1": lam1, "lambda2": s["lambda2"]}, ctx, attacks)
            rows.append(dict(r, thesis_lambda1=float(th)))
    return rows


def run_table_4_5(s: dict, ctx: RunContext) -> dict:
    """Table 4.5: ResNet20, En2ResNet20 (and En5ResNet20 at full scale) under RGSM (group l0,
    ``beta``, each ``lambda1``, ``lambda2``), PGD-trained.

    Result keys: ``rows``: per (net, lambda1) ``net``, ``method`` ("sgd" base or "rgsm"),
    ``beta``, ``lambda1``, ``thesis_lambda1`` (the thesis's lambda1 this row stands for: at ci scale
    the weights stay near their initialisation and the thesis's values prune no channel, so the
    ci grid is larger), ``lambda2``, ``A1``-``A5`` (A5 NAttack), ``A3_eot`` (EnResNet base
    rows; all EnResNet rows at full scale), ``channel_sparsity``, ``sparsity``, ``params``.
    """
    return {"rows": _rgsm_rows(s, s["archs"], ctx, ("A1", "A2", "A3", "A4", "A5"))}


def run_table_4_6(s: dict, ctx: RunContext) -> dict:
    """Table 4.6: En2ResNet20 vs ResNet38 (similar size) under RGSM: same row keys as Table 4.5
    without ``A5``."""
    return {"rows": _rgsm_rows(s, s["archs"], ctx, ("A1", "A2", "A3", "A4"))}


def run_table_4_8(s: dict, ctx: RunContext) -> dict:
    """Table 4.8: ResNet20 vs En2ResNet20 under RGSM on CIFAR-100 at full scale; same row keys as
    Table 4.6. At ci scale there is no CIFAR-100 offline and the rows are the ci data set's."""
    return {"rows": _rgsm_rows(s, s["archs"], ctx, ("A1", "A2", "A3", "A4")), "dataset": s["dataset"]}


def run_table_4_7(s: dict, ctx: RunContext) -> dict:
    """Table 4.7: ADMM vs RVSM (unstructured) and vs RGSM (channel) on PGD-trained ResNet20.

    ADMM (rho 1e-2, Zhang et al. 2018) runs its ADMM phase for all epochs with target sparsity
    ``target`` = the sparsity RVSM / RGSM reached, so the two are compared at equal sparsity.
    Result keys: ``unstructured`` and ``channel``, each with ``ours`` (the RVSM / RGSM row),
    ``admm`` (the model after the ADMM phase, without a hard prune: the thesis's protocol) and
    ``admm_pruned`` (hard-pruned to ``target``, then ``finetune`` masked epochs), every entry a
    row dict (``A1``-``A4``, ``sparsity``, ``channel_sparsity``), plus ``target`` (%).
    """
    out = {}
    for mode, method, params in (("unstructured", "rvsm", {"beta": s["rvsm_beta"], "lam": s["lam"]}),
                                 ("channel", "rgsm", {"beta": s["beta"], "lambda1": s["rgsm_lambda1"],
                                                      "lambda2": s["lambda2"]})):
        ours = row(s, "resnet20", method, params, ctx)
        target = ours["sparsity" if mode == "unstructured" else "channel_sparsity"] / 100.0
        target = min(max(round(target, 4), 0.01), 0.95)
        aparams = {"mode": mode, "target": target, "rho": s["rho"], "finetune": s["finetune"]}
        run = train_model(s, "resnet20", "admm", aparams, ctx=ctx)
        res = {"ours": ours, "target": 100.0 * target}
        for k, m in (("admm", run["stages"]["admm"]), ("admm_pruned", run["model"])):
            tag = _key("resnet20", "admm", aparams, k)
            r = {"net": "ResNet20", "method": k}
            r.update(evaluate_model(m, s, "resnet20", ctx, ("A1", "A2", "A3", "A4"), False, tag))
            r.update(sparsity_report(m))
            res[k] = r
        out[mode] = res
    return out


def run_fig_4_3(s: dict, ctx: RunContext) -> dict:
    """Figures 4.3-4.4: channel sparsity of En2ResNet20 and ResNet38 under RGSM against ``lambda1``.

    Result keys: ``lambda1`` (the grid, 0 = SGD base model); per net (``en2resnet20``,
    ``resnet38``) a dict with ``channel_sparsity`` and ``A1`` as lists over the grid, one list per
    seed (``seeds``), and their means ``channel_sparsity_mean``, ``A1_mean``.
    """
    out = {"lambda1": list(s["lambda1s"]), "seeds": list(s["seeds"])}
    for arch in s["archs"]:
        cs, acc = [], []
        for seed in s["seeds"]:
            c = RunContext(ctx.device, ctx.seed + seed, ctx.workdir, ctx.progress, ctx.scale)
            cs_s, acc_s = [], []
            for lam1 in s["lambda1s"]:
                if lam1 == 0:
                    m, method, params = train_model(s, arch, ctx=c)["model"], "sgd", {}
                else:
                    params = {"beta": s["beta"], "lambda1": lam1, "lambda2": s["lambda2"]}
                    m, method = train_model(s, arch, "rgsm", params, ctx=c)["model"], "rgsm"
                cs_s.append(sparsity_report(m)["channel_sparsity"])
                acc_s.append(evaluate_model(m, s, arch, c, ("A1",), False, _key(arch, method, params))["A1"])
            cs.append(cs_s)
            acc.append(acc_s)
        n = len(cs)
        out[arch] = {"channel_sparsity": cs, "A1": acc,
                     "channel_sparsity_mean": [sum(v[i] for v in cs) / n for i in range(len(s["lambda1s"]))],
                     "A1_mean": [sum(v[i] for v in acc) / n for i in range(len(s["lambda1s"]))]}
    return out


def run_fig_4_5(s: dict, ctx: RunContext) -> dict:
    """Figure 4.5: channel l2 norms of PGD-trained ResNet20 under RGSM and under ADMM (channel mode).

    Result keys: ``rgsm``, ``admm`` (after the ADMM phase, no hard prune, as the thesis) and
    ``admm_pruned``: lists of every conv input-channel norm; ``zeros``: counts below 1e-15 per key.
    """
    from lib.sparse.channels import channel_norms, conv_weights

    rg = train_model(s, "resnet20", "rgsm", {"beta": s["beta"], "lambda1": s["rgsm_lambda1"],
                                             "lambda2": s["lambda2"]}, ctx=ctx)["model"]
    target = min(max(round(sparsity_report(rg)["channel_sparsity"] / 100.0, 4), 0.01), 0.95)
    run = train_model(s, "resnet20", "admm", {"mode": "channel", "target": target, "rho": s["rho"],
                                              "finetune": s["finetune"]}, ctx=ctx)
    out = {}
    for k, m in (("rgsm", rg), ("admm", run["stages"]["admm"]), ("admm_pruned", run["model"])):
        out[k] = torch.cat([channel_norms(w) for w in conv_weights(m).values()]).tolist()
    out["zeros"] = {k: int(sum(v < 1e-15 for v in out[k])) for k in ("rgsm", "admm", "admm_pruned")}
    return out


def _t(ci: dict, full: dict) -> dict:
    return {"ci": dict(CI, **ci), "full": dict(FULL, **full)}


_RVSM = dict(lam=1e-6)
# ci: after 3 epochs every conv input-channel norm is still near its initial sqrt(out / (3 in)) = 0.577
# (0.816 where the width doubles), above the group-l0 thresholds sqrt(2 lambda1 / beta) = 0.32, 0.45 of
# the thesis's lambda1 = 0.05, 0.1: ci uses lambda1 = 0.15, 0.16 (thresholds 0.548, 0.566) in their place.
_L1_CI = dict(lambda1s=[0.15, 0.16], thesis_lambda1s=[0.05, 0.1])
_L1_FULL = dict(lambda1s=[0.05, 0.1], thesis_lambda1s=[0.05, 0.1])
_RGSM = dict(beta=1.0, lambda2=1e-5)
_THESIS_44 = {"ResNet20": {"n/a": [76.07, 51.24, 47.25, 59.30, 0.0], "0.01": [70.26, 46.68, 43.79, 55.59, 80.91],
                           "0.1": [73.45, 49.48, 45.79, 57.72, 56.88], "0.5": [74.08, 50.64, 46.67, 57.24, 39.92]},
              "En2ResNet20": {"n/a": [80.34, 57.11, 50.02, 66.77, 0.0], "0.01": [72.81, 51.98, 46.62, 63.10, 89.86],
                              "0.1": [77.78, 55.48, 49.26, 65.56, 70.55], "0.5": [78.47, 56.13, 49.54, 65.57, 56.34]}}
_THESIS_45 = {"ResNet20": {"n/a": [76.07, 51.24, 47.25, 59.30, 45.88, 0.0],
                           "0.05": [75.91, 51.52, 47.14, 58.77, 45.02, 8.00],
                           "0.1": [71.84, 48.23, 45.21, 57.09, 43.84, 25.33]},
              "En2ResNet20": {"n/a": [80.34, 57.11, 50.02, 66.77, 49.35, 0.0],
                              "0.05": [78.28, 56.53, 49.58, 66.56, 49.11, 41.48],
                              "0.1": [75.87, 54.65, 47.77, 65.41, 46.77, 56.74]},
              "En5ResNet20": {"n/a": [81.41, 58.21, 51.60, 66.48, 50.21, 0.0],
                              "0.01": [81.46, 58.34, 51.35, 66.84, 50.07, 19.76],
                              "0.02": [80.53, 57.38, 50.63, 66.52, 48.23, 53.36]}}
_THESIS_46 = {"En2ResNet20": {"n/a": [80.34, 57.11, 50.02, 66.77, 0.0], "0.05": [78.28, 56.53, 49.58, 66.56, 41.48],
                              "0.1": [76.30, 54.65, 47.77, 65.41, 56.74]},
              "ResNet38": {"n/a": [78.03, 54.09, 49.81, 61.72, 0.0], "0.05": [77.92, 53.51, 49.35, 60.32, 17.67],
                           "0.1": [72.95, 49.78, 46.48, 57.92, 43.80]}}
_THESIS_47 = {"unstructured": {"RVSM": [70.26, 46.68, 43.79, 55.59, 80.91],
                               "ADMM": [71.55, 47.37, 44.30, 55.79, 10.92]},
              "channel": {"RGSM": [71.84, 48.23, 45.21, 57.09, 25.33], "ADMM": [63.99, 42.06, 39.75, 51.90, 4.44]}}
_THESIS_48 = {"ResNet20": {"n/a": [46.02, 24.77, 23.23, 32.42, 0.0], "0.05": [45.74, 25.34, 23.55, 33.53, 7.11],
                           "0.1": [44.34, 24.46, 23.12, 32.38, 18.37]},
              "En2ResNet20": {"n/a": [50.68, 30.2, 26.25, 40.06, 0.0], "0.05": [50.56, 30.33, 26.23, 39.85, 16.89],
                              "0.1": [47.24, 28.77, 25.01, 38.24, 39.23]}}

register(Experiment(
    id="table-4.4", title="Table 4.4: ResNet20 vs En2ResNet20 under RVSM (PGD training), varying beta",
    settings=_t(dict(archs=["resnet20", "en2resnet20"], betas=[0.01, 0.1, 0.5], **_RVSM),
                dict(archs=["resnet20", "en2resnet20"], betas=[0.01, 0.1, 0.5], **_RVSM)),
    run_fn=run_table_4_4, cost={"ci": "~60 s CPU", "full": "8 x 200 PGD-10 epochs, ~80 GPU h"},
    thesis={"columns": ["A1", "A2", "A3", "A4", "sparsity"], "rows": _THESIS_44, "lam": 1e-6}))

register(Experiment(
    id="table-4.5", title="Table 4.5: ResNet20 and EnResNet20 ensembles under RGSM (PGD training)",
    settings=_t(dict(archs=["resnet20", "en2resnet20"], **_L1_CI, **_RGSM),
                dict(archs=["resnet20", "en2resnet20", "en5resnet20"], **_L1_FULL, **_RGSM)),
    run_fn=run_table_4_5, cost={"ci": "~70 s CPU (bases shared with Table 4.4)", "full": "~100 GPU h"},
    thesis={"columns": ["A1", "A2", "A3", "A4", "A5", "channel_sparsity"], "rows": _THESIS_45, "beta": 1.0,
            "lambda2": 1e-5, "note": "En5ResNet20 rows use lambda1 = 1e-2 and 2e-2"}))

register(Experiment(
    id="table-4.6", title="Table 4.6: En2ResNet20 vs ResNet38 (similar size) under RGSM (PGD training)",
    settings=_t(dict(archs=["en2resnet20", "resnet38"], **_L1_CI, **_RGSM),
                dict(archs=["en2resnet20", "resnet38"], **_L1_FULL, **_RGSM)),
    run_fn=run_table_4_6, cost={"ci": "~45 s CPU (En2ResNet20 shared with Table 4.5)", "full": "~60 GPU h"},
    thesis={"columns": ["A1", "A2", "A3", "A4", "channel_sparsity"], "rows": _THESIS_46, "beta": 1.0,
            "lambda2": 1e-5}))

register(Experiment(
    id="table-4.7", title="Table 4.7: ADMM vs RVSM (unstructured) and RGSM (channel), PGD-trained ResNet20",
    settings=_t(dict(rvsm_beta=0.01, rgsm_lambda1=0.16, rho=1e-2, finetune=1, **_RVSM, **_RGSM),
                dict(rvsm_beta=0.01, rgsm_lambda1=0.1, rho=1e-2, finetune=20, **_RVSM, **_RGSM)),
    run_fn=run_table_4_7, cost={"ci": "~30 s CPU", "full": "~40 GPU h"},
    thesis={"columns": ["A1", "A2", "A3", "A4", "sparsity"], "rows": _THESIS_47}))

register(Experiment(
    id="table-4.8", title="Table 4.8: ResNet20 vs En2ResNet20 under RGSM on CIFAR-100 (PGD training)",
    settings=_t(dict(archs=["resnet20", "en2resnet20"], **_L1_CI, **_RGSM),
                dict(dataset="cifar100", archs=["resnet20", "en2resnet20"], **_L1_FULL, **_RGSM)),
    run_fn=run_table_4_8, cost={"ci": "shared with Table 4.5 (no CIFAR-100 offline)", "full": "~60 GPU h"},
    thesis={"columns": ["A1", "A2", "A3", "A4", "channel_sparsity"], "rows": _THESIS_48, "beta": 1.0,
            "lambda2": 1e-5}))

register(Experiment(
    id="fig-4.3", title="Figures 4.3-4.4: channel sparsity of En2ResNet20 and ResNet38 against lambda1 (RGSM)",
    settings=_t(dict(archs=["en2resnet20", "resnet38"], lambda1s=[0.0, 0.15, 0.16], seeds=[0], **_RGSM),
                dict(archs=["en2resnet20", "resnet38"], lambda1s=[0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06],
                     seeds=[0, 1, 2, 3, 4], **_RGSM)),
    run_fn=run_fig_4_3, cost={"ci": "shared with Table 4.6", "full": "~70 x 200 PGD epochs, ~500 GPU h"},
    thesis={"claim": "En2ResNet20's channel sparsity grows much faster with lambda1 than ResNet38's",
            "read_off_fig_4_3_at_0.05": {"en2resnet20": 41.48, "resnet38": 17.67}}))

register(Experiment(
    id="fig-4.5", title="Figure 4.5: channel norms of PGD-trained ResNet20 under RGSM and ADMM",
    settings=_t(dict(rgsm_lambda1=0.16, rho=1e-2, finetune=1, **_RGSM),
                dict(rgsm_lambda1=0.1, rho=1e-2, finetune=20, **_RGSM)),
    run_fn=run_fig_4_5, cost={"ci": "shared with Table 4.7", "full": "shared with Table 4.7"},
    thesis={"zeros": {"rgsm": 171, "admm": 30}}))
