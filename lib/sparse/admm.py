"""The ADMM pruning baseline of Table 3.2 (Zhang et al. 2018), as the thesis runs it.

The "empirical" ADMM of Section 3.5: the argmin over ``w`` in (3.11) is replaced by a gradient
step. For each penalised weight ``w`` with auxiliary ``z`` (the sparse copy) and scaled
multiplier ``mu``:

    w  <- w - lr (d(w) + rho (w - z + mu))        (d: SGD with momentum and weight decay)
    z  <- Proj_S(w + mu)                          (S: the sparsity pattern allowed)
    mu <- mu + w - z

then a hard prune ``w <- Proj_S(w)`` and masked fine-tuning (pruned weights stay 0). ``Proj_S``
keeps, per tensor, the ``ceil((1 - sparsity) n)`` entries of largest magnitude (``mode='unstructured'``),
or the groups ``w.select(dim, g)`` of largest l2 norm (``mode='channel'``; ``dim=1``: input
channels, ``dim=0``: filters). The authors' public code takes its percentile over *signed*
weights; ours takes magnitudes, as the ADMM pruning paper describes.

Use inside :func:`lib.train.fit`: every ``step`` does the ``w`` update and, with
``dual_every='batch'`` (the authors' code), the ``z``/``mu`` updates; with ``dual_every='epoch'``
call :meth:`ADMMPruner.update_dual` from ``on_epoch_end``. After the ADMM phase call
:meth:`ADMMPruner.prune` and keep training with the same optimizer (masked fine-tuning).
"""

from __future__ import annotations

import math

import torch
from torch.optim import Optimizer

from lib.sparse.prox import _group_norms
from lib.sparse.rvsm import PenalisedParams, check_sgd

__all__ = ["ADMMPruner", "project_topk", "project_channels"]

MODES = ("unstructured", "channel")


def _n_keep(n: int, sparsity: float) -> int:
    return max(1, int(math.ceil((1.0 - sparsity) * n - 1e-9)))


@torch.no_grad()
def project_topk(w: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep the ``ceil((1 - sparsity) n)`` entries of largest magnitude, zero the rest."""
    if not 0 <= sparsity < 1:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    k = _n_keep(w.numel(), sparsity)
    flat = w.reshape(-1)
    idx = torch.topk(flat.abs(), k, sorted=False).indices
    mask = torch.zeros_like(flat, dtype=torch.bool)
    mask[idx] = True
    return (flat * mask).reshape(w.shape)


@torch.no_grad()
def project_channels(w: torch.Tensor, sparsity: float, dim: int = 1) -> torch.Tensor:
    """Keep the ``ceil((1 - sparsity) G)`` groups ``w.select(dim, g)`` of largest l2 norm."""
    if not 0 <= sparsity < 1:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    norms = _group_norms(w, dim)
    flat = norms.reshape(-1)
    k = _n_keep(flat.numel(), sparsity)
    keep = torch.zeros_like(flat, dtype=torch.bool)
    keep[torch.topk(flat, k, sorted=False).indices] = True
    return w * keep.reshape(norms.shape)


class ADMMPruner(PenalisedParams, Optimizer):
    """ADMM pruning as an optimizer: SGD plus ``rho (w - z + mu)``, then :meth:`prune` and masked training.

    ``sparsity``: target share of zeros per penalised tensor (0.6 in Table 3.2); ``mode``:
    ``'unstructured'`` or ``'channel'`` (groups along ``dim``). Penalised tensors: param-group
    option ``penalise`` (default ``None``: tensors with at least two axes, i.e. conv and linear
    weights). ``rho = 1e-2`` as in the thesis.
    """

    def __init__(self, params, lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 5e-4,
                 nesterov: bool = True, rho: float = 1e-2, sparsity: float = 0.6, mode: str = "unstructured",
                 dim: int = 1, dual_every: str = "batch", penalise: bool | None = None):
        check_sgd(lr, momentum, weight_decay)
        if not (rho > 0 and math.isfinite(rho)):
            raise ValueError(f"rho must be finite and > 0, got {rho}")
        if not 0 <= sparsity < 1:
            raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if dual_every not in ("batch", "epoch"):
            raise ValueError(f"dual_every must be 'batch' or 'epoch', got {dual_every!r}")
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov, rho=rho,
                        sparsity=sparsity, mode=mode, dim=dim, penalise=penalise)
        super().__init__(params, defaults)
        self.dual_every = dual_every
        self.pruned = False

    # ----- helpers ----------------------------------------------------------------------------
    def project(self, w: torch.Tensor, group: dict) -> torch.Tensor:
        """``Proj_S(w)`` for this group's mode and sparsity."""
        if group["mode"] == "channel":
            return project_channels(w, group["sparsity"], group["dim"])
        return project_topk(w, group["sparsity"])

    def _zmu(self, p: torch.Tensor, group: dict):
        state = self.state[p]
        if "z" not in state:
            state["z"] = self.project(p.detach(), group).clone()
            state["mu"] = torch.zeros_like(p)
        return state["z"], state["mu"]

    # ----- the step ---------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, m, wd, rho = group["lr"], group["momentum"], group["weight_decay"], group["rho"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                d = p.grad
                if wd != 0:
                    d = d.add(p, alpha=wd)
                if m > 0:
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = torch.clone(d).detach()
                    else:
                        buf.mul_(m).add_(d)
                    d = d.add(buf, alpha=m) if group["nesterov"] else buf
                pen = self.is_penalised(p, group)
                if pen and not self.pruned:
                    z, mu = self._zmu(p, group)
                    d = d + rho * (p - z + mu)
                p.add_(d, alpha=-lr)
                if pen and self.pruned:
                    mask = state["mask"]
                    p.mul_(mask)
                    if m > 0:
                        state["momentum_buffer"].mul_(mask)
        if self.dual_every == "batch" and not self.pruned:
            self.update_dual()
        return loss

    @torch.no_grad()
    def update_dual(self) -> None:
        """``z <- Proj_S(w + mu)``, ``mu <- mu + w - z`` for every penalised tensor."""
        for group, p in self.penalised():
            z, mu = self._zmu(p, group)
            z.copy_(self.project(p + mu, group))
            mu.add_(p - z)

    @torch.no_grad()
    def prune(self) -> None:
        """Hard prune ``w <- Proj_S(w)``, fix the masks, and switch to masked fine-tuning."""
        for group, p in self.penalised():
            p.copy_(self.project(p, group))
            mask = (p != 0).to(p.dtype)
            self.state[p]["mask"] = mask
            buf = self.state[p].get("momentum_buffer")
            if buf is not None:
                buf.mul_(mask)
        self.pruned = True

    @staticmethod
    def epoch_end(model, optimizer: ADMMPruner, epoch: int) -> None:
        """``on_epoch_end`` hook for ``dual_every='epoch'``: one dual update per epoch."""
        if optimizer.dual_every == "epoch" and not optimizer.pruned:
            optimizer.update_dual()

    def state_dict(self):
        sd = super().state_dict()
        sd["pruned"] = self.pruned
        sd["dual_every"] = self.dual_every
        return sd

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        self.pruned = bool(state_dict.pop("pruned", False))
        self.dual_every = state_dict.pop("dual_every", self.dual_every)
        super().load_state_dict(state_dict)

    @torch.no_grad()
    def w_sparsity(self) -> dict:
        """% exact zeros of the penalised ``w`` per tensor and overall."""
        layers, zeros, total = {}, 0, 0
        for gi, group in enumerate(self.param_groups):
            for pi, p in enumerate(group["params"]):
                if self.is_penalised(p, group):
                    z = int((p == 0).sum())
                    layers[f"g{gi}.p{pi} {tuple(p.shape)}"] = 100.0 * z / p.numel()
                    zeros, total = zeros + z, total + p.numel()
        return {"layers": layers, "overall": 100.0 * zeros / max(total, 1), "zeros": zeros, "total": total}
