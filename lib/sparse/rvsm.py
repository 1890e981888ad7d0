"""The relaxed variable splitting method (RVSM, Algorithm 1) as a ``torch.optim.Optimizer``.

For every penalised parameter ``w`` the optimizer keeps a split variable ``u`` and performs,
on each batch, the RVSM step on the augmented Lagrangian (3.9)
``L_beta(w, u) = f(w) + lambda P(u) + beta/2 ||w - u||^2``:

    w <- w - lr (d(w) + beta (w - u)),        u <- prox_{lambda / beta}(w)

where ``d(w)`` is the SGD direction on ``grad f(w)`` with weight decay and (Nesterov) momentum,
as the thesis trains (the relaxation term ``beta (w - u)`` stays outside the momentum buffer, as
in the authors' code) and ``P`` is ``l0``, ``l1`` or the transformed ``l1`` (``tl1``, parameter
``a``). Without penalised parameters, or with ``lambda = 0`` (then ``u = w``), the step is
exactly SGD's.

Evaluation and export use ``u``: Section 3.1.4 replaces ``w`` by ``u`` after each epoch
(:meth:`SplitSGD.load_u`, also usable as ``fit(..., on_epoch_end=RVSM.epoch_end)``), and the
authors' code does the same. Batch-norm running statistics gathered while training ``w`` belong
to ``w``; :func:`recalibrate_bn` re-estimates them for the weights actually evaluated.

:class:`SplitSGD` holds everything but the thresholding map, so that other splitting methods
(RGSM, Algorithm 3) reuse it by overriding :meth:`SplitSGD.threshold`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn
from torch.optim import Optimizer

from lib.sparse.prox import PROX, prox_tl1

__all__ = ["PenalisedParams", "SplitSGD", "RVSM", "sparsity", "recalibrate_bn", "tensor_sparsity"]


def check_sgd(lr, momentum, weight_decay) -> None:
    """ValueError for an SGD setting outside its range (shared by RVSM, RGSM and ADMMPruner)."""
    if not lr >= 0:
        raise ValueError(f"lr must be >= 0, got {lr}")
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")


def _check_hyper(lr, momentum, weight_decay, beta, lam) -> None:
    check_sgd(lr, momentum, weight_decay)
    if not (beta > 0 and math.isfinite(beta)):
        raise ValueError(f"beta must be finite and > 0, got {beta}")
    if not (lam >= 0 and math.isfinite(lam)):
        raise ValueError(f"lam (lambda) must be finite and >= 0, got {lam}")


class PenalisedParams:
    """Which parameters an optimizer penalises: the param-group option ``penalise``.

    ``True``/``False`` decide for the whole group; ``None`` (the default) penalises tensors with at
    least two axes (conv and linear weights) and leaves batch-norm parameters and biases alone.
    Shared by the splitting optimizers and :class:`lib.sparse.admm.ADMMPruner`.
    """

    @staticmethod
    def is_penalised(p: torch.Tensor, group: dict) -> bool:
        flag = group.get("penalise")
        return p.dim() >= 2 if flag is None else bool(flag)

    def penalised(self):
        """Yield ``(group, p)`` for every penalised parameter."""
        for group in self.param_groups:
            for p in group["params"]:
                if self.is_penalised(p, group):
                    yield group, p


class SplitSGD(PenalisedParams, Optimizer):
    """SGD (momentum, weight decay, Nesterov) plus a relaxed splitting term on penalised tensors.

    Param-group options: ``lr``, ``momentum``, ``weight_decay``, ``nesterov``, ``beta``, ``lam``
    and ``penalise`` (``True``/``False``; ``None``, the default, penalises tensors with at
    least two axes, i.e. conv and linear weights, and leaves batch-norm parameters and biases
    alone). Subclasses define :meth:`threshold`, the map ``w -> argmin_u lam P(u) + beta/2 ||w - u||^2``.
    ``foreach=True`` updates each group's tensors with torch's multi-tensor kernels.
    """

    def __init__(self, params, lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 5e-4,
                 nesterov: bool = True, beta: float = 1e-2, lam: float = 1e-6, penalise: bool | None = None,
                 foreach: bool | None = None, **extra):
        _check_hyper(lr, momentum, weight_decay, beta, lam)
        if nesterov and momentum <= 0:
            raise ValueError("nesterov momentum needs momentum > 0")
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov, beta=beta,
                        lam=lam, penalise=penalise, foreach=foreach, **extra)
        super().__init__(params, defaults)
        for group in self.param_groups:
            self._check_group(group)

    def _check_group(self, group: dict) -> None:
        _check_hyper(group["lr"], group["momentum"], group["weight_decay"], group["beta"], group["lam"])

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        self._check_group(self.param_groups[-1])

    # ----- what subclasses change -------------------------------------------------------------
    def threshold(self, w: torch.Tensor, group: dict) -> torch.Tensor:  # pragma: no cover - abstract
        """``argmin_u lam P(u) + beta/2 ||w - u||^2`` for this group's penalty."""
        raise NotImplementedError

    # ----- helpers ----------------------------------------------------------------------------
    def _u(self, p: torch.Tensor, group: dict) -> torch.Tensor:
        state = self.state[p]
        if "u" not in state:  # Algorithm 1: u^0 = prox(w^0)
            with torch.no_grad():
                state["u"] = self.threshold(p.detach(), group).clone()
        return state["u"]

    # ----- the step ---------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, bufs, us, pen = [], [], [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise ValueError("sparse gradients are not supported")
                params.append(p)
                grads.append(p.grad)
                bufs.append(self.state[p].get("momentum_buffer"))
                is_pen = self.is_penalised(p, group)
                pen.append(is_pen)
                us.append(self._u(p, group) if is_pen else None)
            if not params:
                continue
            foreach = group["foreach"]
            if foreach is None:
                foreach = all(p.device.type in ("cpu", "cuda") for p in params)
            (self._foreach_step if foreach else self._single_step)(group, params, grads, bufs, us, pen)
            for p, b in zip(params, bufs):
                if group["momentum"] > 0:
                    self.state[p]["momentum_buffer"] = b
            for p, u, is_pen in zip(params, us, pen):
                if is_pen:
                    u.copy_(self.threshold(p, group))
        return loss

    def _single_step(self, group, params, grads, bufs, us, pen) -> None:
        lr, m, wd, beta = group["lr"], group["momentum"], group["weight_decay"], group["beta"]
        for i, p in enumerate(params):
            d = grads[i]
            if wd != 0:
                d = d.add(p, alpha=wd)
            if m > 0:
                if bufs[i] is None:
                    bufs[i] = torch.clone(d).detach()
                else:
                    bufs[i].mul_(m).add_(d)
                d = d.add(bufs[i], alpha=m) if group["nesterov"] else bufs[i]
            if pen[i]:
                d = d.add(p - us[i], alpha=beta)
            p.add_(d, alpha=-lr)

    def _foreach_step(self, group, params, grads, bufs, us, pen) -> None:
        lr, m, wd, beta = group["lr"], group["momentum"], group["weight_decay"], group["beta"]
        d = list(grads)
        if wd != 0:
            d = torch._foreach_add(d, params, alpha=wd)
        if m > 0:
            fresh = [i for i, b in enumerate(bufs) if b is None]
            for i in fresh:
                bufs[i] = torch.clone(d[i]).detach()
            old = [i for i, b in enumerate(bufs) if i not in set(fresh)]
            if old:
                ob = [bufs[i] for i in old]
                torch._foreach_mul_(ob, m)
                torch._foreach_add_(ob, [d[i] for i in old])
            d = torch._foreach_add(d, bufs, alpha=m) if group["nesterov"] else list(bufs)
        idx = [i for i, flag in enumerate(pen) if flag]
        if idx:  # out of place: d may alias the gradients or the momentum buffers
            diff = torch._foreach_sub([params[i] for i in idx], [us[i] for i in idx])
            relaxed = torch._foreach_add([d[i] for i in idx], diff, alpha=beta)
            d = list(d)
            for i, t in zip(idx, relaxed):
                d[i] = t
        torch._foreach_add_(params, d, alpha=-lr)

    # ----- u as the model's weights -----------------------------------------------------------
    @torch.no_grad()
    def load_u(self) -> None:
        """Replace every penalised ``w`` by its split variable ``u`` (Section 3.1.4), in place.

        ``u`` is then re-thresholded from the new ``w`` (for ``l0`` it is unchanged).
        """
        for group, p in self.penalised():
            p.copy_(self._u(p, group))
            self.state[p]["u"] = self.threshold(p, group).clone()

    @staticmethod
    def epoch_end(model: nn.Module, optimizer: SplitSGD, epoch: int) -> None:
        """An ``on_epoch_end`` hook for :func:`lib.train.fit`: loads ``u`` into the model."""
        optimizer.load_u()

    @torch.no_grad()
    def u_sparsity(self) -> dict:
        """% exact zeros of ``u`` per penalised tensor (keyed ``g<group>.p<index> <shape>``) and overall."""
        layers, zeros, total = {}, 0, 0
        for gi, group in enumerate(self.param_groups):
            for pi, p in enumerate(group["params"]):
                if not self.is_penalised(p, group):
                    continue
                u = self._u(p, group)
                z = int((u == 0).sum())
                layers[f"g{gi}.p{pi} {tuple(p.shape)}"] = 100.0 * z / u.numel()
                zeros, total = zeros + z, total + u.numel()
        return {"layers": layers, "overall": 100.0 * zeros / max(total, 1), "zeros": zeros, "total": total}


PENALTIES = tuple(PROX)


class RVSM(SplitSGD):
    """RVSM (Algorithm 1) on any model: ``penalty`` in ``{'l0', 'l1', 'tl1'}``, ``a`` for ``tl1``.

    ``u = prox_{lam/beta}(w)``: hard thresholding at ``sqrt(2 lam / beta)`` (l0), soft thresholding
    at ``lam / beta`` (l1), or transformed-l1 thresholding (Lemma 14). The thesis's settings:
    ``lam = 1e-5, beta = 1e-2`` (VGG16, Table 3.1), ``lam = 1e-6, beta = 8e-2`` (ResNet18, Table 3.2).
    """

    def __init__(self, params, lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 5e-4,
                 nesterov: bool = True, beta: float = 1e-2, lam: float = 1e-6, penalty: str = "l0",
                 a: float = 1.0, penalise: bool | None = None, foreach: bool | None = None):
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov, beta=beta,
                         lam=lam, penalise=penalise, foreach=foreach, penalty=penalty, a=a)

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        if group["penalty"] not in PENALTIES:
            raise ValueError(f"penalty must be one of {PENALTIES}, got {group['penalty']!r}")
        if not group["a"] > 0:
            raise ValueError(f"a (transformed-l1 parameter) must be > 0, got {group['a']}")

    def threshold(self, w: torch.Tensor, group: dict) -> torch.Tensor:
        t = group["lam"] / group["beta"]
        if group["penalty"] == "tl1":
            return prox_tl1(w, t, group["a"])
        return PROX[group["penalty"]](w, t)


# ----- reports and batch-norm statistics --------------------------------------------------------
def tensor_sparsity(t: torch.Tensor) -> float:
    """% exact zeros of a tensor."""
    return 100.0 * float((t == 0).sum()) / max(t.numel(), 1)


@torch.no_grad()
def sparsity(model: nn.Module, min_dim: int = 2) -> dict:
    """% exact zeros per weight tensor with at least ``min_dim`` axes (conv, linear) and overall.

    Returns ``{"layers": {name: %}, "overall": %, "zeros": n, "total": n}``; "overall" is the
    share of zeros among all those weights (the thesis's "percentage of zero components over all
    network weights"), biases and batch-norm parameters excluded.
    """
    layers, zeros, total = {}, 0, 0
    for name, p in model.named_parameters():
        if p.dim() < min_dim:
            continue
        z = int((p == 0).sum())
        layers[name] = 100.0 * z / p.numel()
        zeros, total = zeros + z, total + p.numel()
    return {"layers": layers, "overall": 100.0 * zeros / max(total, 1), "zeros": zeros, "total": total}


@torch.no_grad()
def recalibrate_bn(model: nn.Module, inputs: Iterable[torch.Tensor]) -> int:
    """Re-estimate every batch-norm layer's running mean and variance for the current weights.

    Resets the statistics, then averages them (cumulatively) over the batches of ``inputs`` in
    training mode without touching any parameter; restores each layer's momentum and the model's
    mode. Returns the number of batch-norm layers recalibrated.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not bns:
        return 0
    momenta = [m.momentum for m in bns]
    was_training = model.training
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    model.train()
    seen = 0
    for x in inputs:
        model(x)
        seen += 1
    if seen == 0:
        raise ValueError("inputs must yield at least one batch")
    for m, mom in zip(bns, momenta):
        m.momentum = mom
    model.train(was_training)
    return len(bns)
