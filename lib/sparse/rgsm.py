"""RGSM, the Relaxed Group-wise Splitting Method (thesis Section 4.1.1, Algorithm 3).

RGSM extends RVSM (Algorithm 1) from single weights to *groups* of weights -- the channels of
each convolution -- to prune whole channels. With the loss ``f`` and a group penalty ``P`` it
decreases the relaxed Lagrangian (4.1)-(4.2)

    L_beta(W, U) = f(W) + lambda1 * P(U) + beta/2 * ||W - U||^2

by alternating a gradient step in ``W`` with an exact minimisation in ``U``, one group at a time:

    W^{t+1} = W^t - lr * grad f(W^t) - lr * beta * (W^t - U^t)
    U_g^{t+1} = Prox(W_g^{t+1})       for every group g,

where the prox map is

* group lasso (4.3)-(4.4), ``P(U) = sum_g ||U_g||_2``:
  ``U_g = W_g / ||W_g|| * max(||W_g|| - lambda1/beta, 0)`` (soft thresholding of the group norm);
* group l0 (4.5)-(4.6), ``P(U) = #{g : U_g != 0}``:
  ``U_g = W_g * 1{||W_g|| > sqrt(2 lambda1/beta)}`` (hard thresholding).

As in the authors' code (rvsm-rgsm-admm, see ``shared/NOTES.md``) the gradient step is the
ordinary SGD step (momentum, Nesterov, weight decay) while the coupling ``beta (W - U)`` acts
outside the momentum buffer; only the 4-D (convolution) weights are split, with groups the
input channels (``dim=1``; ``dim=0`` for output channels); the optional ``lambda2`` adds the
group lasso term ``lambda2 * sum_g ||W_g||_2`` to the loss on ``W`` (the form of RGSM used in
Tables 4.5-4.8); and at the end of every epoch ``W`` is replaced by ``U``
(:meth:`RGSM.load_u`, or ``RGSM.epoch_end`` as ``lib.train.fit``'s ``on_epoch_end``), so that
the zero channels of ``U`` become zero channels of the model.

Theorem 4.1: under Assumption 1 (an L-Lipschitz gradient, (4.7)) and with
``lr < 1/(beta + L)`` and no momentum, ``L_beta(W^t, U^t)`` decreases monotonically;
:meth:`RGSM.lagrangian_terms` gives the penalty part of ``L_beta`` to check it.
"""

from __future__ import annotations

import torch

from lib.sparse.prox import _group_norms, prox_group_l0, prox_group_lasso
from lib.sparse.rvsm import SplitSGD

PENALTIES = ("group_lasso", "group_l0")


def group_prox(w: torch.Tensor, penalty: str, lam: float, beta: float, dim: int = 1) -> torch.Tensor:
    """``argmin_U lam * P(U) + beta/2 ||w - U||^2`` group by group: (4.4) or (4.6).

    ``penalty`` is ``"group_lasso"`` (soft threshold ``lam/beta`` on each group norm) or
    ``"group_l0"`` (hard threshold ``sqrt(2 lam/beta)``); groups are slices along ``dim``.
    """
    if penalty not in PENALTIES:
        raise ValueError(f"penalty must be one of {PENALTIES}, got {penalty!r}")
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta!r}")
    if not lam >= 0:
        raise ValueError(f"lambda must be >= 0, got {lam!r}")
    fn = prox_group_lasso if penalty == "group_lasso" else prox_group_l0
    return fn(w, lam / beta, dim)


def group_penalty(w: torch.Tensor, penalty: str, dim: int = 1, tol: float = 0.0) -> float:
    """``P(w)``: the sum of group norms (group lasso) or the number of groups with norm > tol (group l0)."""
    if penalty not in PENALTIES:
        raise ValueError(f"penalty must be one of {PENALTIES}, got {penalty!r}")
    norms = _group_norms(w.detach(), dim)
    return float(norms.sum()) if penalty == "group_lasso" else float((norms > tol).sum())


class RGSM(SplitSGD):
    """Algorithm 3 (RGSM) as a PyTorch optimizer, built on RVSM's :class:`~lib.sparse.rvsm.SplitSGD`.

    Parameters: ``lr`` (> 0), ``momentum`` in [0, 1), ``weight_decay`` (>= 0), ``beta`` (> 0, the
    relaxation weight of (4.1)), ``lambda1`` (>= 0, the weight of ``P(U)``), ``lambda2`` (>= 0,
    the extra group-lasso term on ``W``), ``penalty`` (``"group_lasso"``, (4.4), or
    ``"group_l0"``, (4.6)), ``dim`` (1: input channels, the thesis's channels; 0: output
    channels), ``nesterov`` (default True, as the authors' code). Parameters with 4 dimensions
    (conv weights) are split by default; a parameter group may set ``"penalise": True/False``.

    After each ``step()`` the state holds ``U`` (:meth:`u_tensors`); :meth:`load_u` copies ``U``
    into the weights (done at every epoch end in the thesis's experiments; ``RGSM.epoch_end``
    or :func:`load_u_hook` is the matching ``on_epoch_end`` hook of :func:`lib.train.fit`).
    """

    def __init__(self, params, lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 5e-4,
                 beta: float = 1e-2, lambda1: float = 1e-6, lambda2: float = 0.0,
                 penalty: str = "group_lasso", dim: int = 1, nesterov: bool = True,
                 penalise: bool | None = None, foreach: bool | None = None):
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov, beta=beta,
                         lam=lambda1, penalise=penalise, foreach=foreach, lambda2=lambda2, penalty=penalty, dim=dim)

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        if not group["lambda2"] >= 0:
            raise ValueError(f"lambda2 must be >= 0, got {group['lambda2']!r}")
        if group["penalty"] not in PENALTIES:
            raise ValueError(f"penalty must be one of {PENALTIES}, got {group['penalty']!r}")
        if group["dim"] not in (0, 1):
            raise ValueError(f"dim must be 0 (output channels) or 1 (input channels), got {group['dim']!r}")

    @staticmethod
    def is_penalised(p: torch.Tensor, group: dict) -> bool:
        flag = group.get("penalise")
        return p.dim() == 4 if flag is None else bool(flag)

    def threshold(self, w: torch.Tensor, group: dict) -> torch.Tensor:
        """``U = Prox(W)`` group by group: (4.4) for the group lasso, (4.6) for the group l0."""
        return group_prox(w, group["penalty"], group["lam"], group["beta"], group["dim"])

    def u_tensors(self) -> list[torch.Tensor]:
        """The current ``U`` of every split parameter, in parameter order."""
        return [self._u(p, g) for g, p in self.penalised()]

    @torch.no_grad()
    def lagrangian_terms(self) -> float:
        """``lambda1 P(U) + beta/2 ||W - U||^2 + lambda2 sum_g ||W_g||``, summed over split weights.

        Add the loss ``f(W)`` to get the Lagrangian ``L_beta(W, U)`` of (4.1) (plus the lambda2 term).
        """
        total = 0.0
        for g, p in self.penalised():
            u = self._u(p, g)
            total += g["lam"] * group_penalty(u, g["penalty"], g["dim"])
            total += 0.5 * g["beta"] * float(((p - u) ** 2).sum())
            if g["lambda2"] > 0:
                total += g["lambda2"] * group_penalty(p, "group_lasso", g["dim"])
        return total

    @torch.no_grad()
    def step(self, closure=None):
        """One batch of Algorithm 3: the SGD step plus ``lr * beta * (W - U)``, then ``U <- Prox(W)``.

        With ``lambda2 > 0`` the subgradient ``lambda2 W_g / ||W_g||`` (0 on a zero group) of the
        extra group-lasso term is added to each split weight's gradient first.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group, p in self.penalised():
            if p.grad is None or group["lambda2"] == 0:
                continue
            norms = _group_norms(p, group["dim"])
            p.grad.add_(group["lambda2"] * p / torch.where(norms > 0, norms, torch.ones_like(norms)))
        super().step()
        return loss


def load_u_hook(model: torch.nn.Module, optimizer: torch.optim.Optimizer, epoch: int) -> None:
    """``on_epoch_end`` hook for :func:`lib.train.fit`: load ``U`` into the model's weights."""
    if not hasattr(optimizer, "load_u"):
        raise ValueError(f"optimizer must have load_u() (RVSM or RGSM), got {type(optimizer).__name__}")
    optimizer.load_u()
