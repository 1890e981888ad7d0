"""Proximal (thresholding) maps of the sparse penalties of Chapters 3 and 4.

Every map returns ``argmin_y 1/2 ||y - x||^2 + t P(y)`` for a penalty ``P``:

* :func:`prox_l0` -- ``P = ||.||_0``: hard thresholding at ``sqrt(2 t)`` (Lemma 15);
* :func:`prox_l1` -- ``P = |.|``: soft thresholding ``S_t`` (the ``S_{lambda/beta}`` of Algorithm 1);
* :func:`prox_tl1` -- the transformed l1 ``rho_a(y) = (a + 1)|y| / (a + |y|)``: the closed form of
  Lemma 14 (Zhang and Xin), with its two threshold branches;
* :func:`prox_group_lasso` -- ``P = sum_g ||w_g||_2``: group soft thresholding, equation (4.4);
* :func:`prox_group_l0` -- ``P = #{g : w_g != 0}``: group hard thresholding, equation (4.6).

The elementwise maps act componentwise; the group maps treat the slices ``w.select(dim, g)`` as
the groups (``dim=1``: the input channels of a conv weight ``(out, in, kh, kw)``; ``dim=0``:
its output channels / filters). All maps accept NumPy arrays and torch tensors and return the
same kind; tensors stay on their device and dtype (no host copies). Ties exactly at a threshold
are resolved towards zero (both values are minimisers there).
"""

from __future__ import annotations

import math

import numpy as np

try:  # torch is optional for the NumPy paths
    import torch
except ImportError:  # pragma: no cover
    torch = None

__all__ = ["prox_l0", "prox_l1", "prox_tl1", "prox_group_lasso", "prox_group_l0", "tl1_threshold",
           "tl1_penalty", "PROX", "prox"]


def _is_torch(x) -> bool:
    return torch is not None and isinstance(x, torch.Tensor)


def _as_array(x):
    """Tensors pass through; anything else becomes a float NumPy array."""
    if _is_torch(x):
        return x
    arr = np.asarray(x)
    return arr if np.issubdtype(arr.dtype, np.floating) else arr.astype(np.float64)


def _check_t(t) -> float:
    t = float(t)
    if not t >= 0 or math.isinf(t):
        raise ValueError(f"t (the threshold parameter lambda/beta) must be finite and >= 0, got {t}")
    return t


def _check_a(a) -> float:
    a = float(a)
    if not a > 0 or math.isinf(a):
        raise ValueError(f"a (the transformed-l1 shape parameter) must be finite and > 0, got {a}")
    return a


def prox_l0(x, t: float):
    """Hard thresholding: ``x`` where ``|x| > sqrt(2 t)``, else 0 (Lemma 15)."""
    t = _check_t(t)
    x = _as_array(x)
    thr = math.sqrt(2.0 * t)
    if _is_torch(x):
        return x * (x.abs() > thr)
    return np.where(np.abs(x) > thr, x, 0.0).astype(x.dtype, copy=False)


def prox_l1(x, t: float):
    """Soft thresholding ``S_t(x) = sgn(x) max(|x| - t, 0)``."""
    t = _check_t(t)
    x = _as_array(x)
    if _is_torch(x):
        return x.sign() * (x.abs() - t).clamp_min_(0)
    return (np.sign(x) * np.maximum(np.abs(x) - t, 0.0)).astype(x.dtype, copy=False)


def tl1_penalty(y, a: float = 1.0):
    """The transformed-l1 penalty ``rho_a(y) = (a + 1)|y| / (a + |y|)`` (elementwise)."""
    a = _check_a(a)
    y = _as_array(y)
    return (a + 1.0) * abs(y) / (a + abs(y))


def tl1_threshold(t: float, a: float = 1.0) -> float:
    """The threshold of the transformed-l1 prox (Lemma 14).

    ``t (a + 1) / a`` when ``t <= a^2 / (2 (a + 1))`` (the prox is continuous there), and
    ``sqrt(2 t (a + 1)) - a / 2`` otherwise (the prox jumps from 0 at the threshold).
    """
    t, a = _check_t(t), _check_a(a)
    if t <= a * a / (2.0 * (a + 1.0)):
        return t * (a + 1.0) / a
    return math.sqrt(2.0 * t * (a + 1.0)) - a / 2.0


def prox_tl1(x, t: float, a: float = 1.0):
    """Transformed-l1 thresholding (Lemma 14).

    ``g(x) = sgn(x) [2/3 (a + |x|) cos(phi(x)/3) - 2a/3 + |x|/3]`` with
    ``phi(x) = arccos(1 - 27 t a (a + 1) / (2 (a + |x|)^3))`` where ``|x| >`` :func:`tl1_threshold`,
    and 0 elsewhere.
    """
    t, a = _check_t(t), _check_a(a)
    x = _as_array(x)
    if t == 0.0:
        return x.clone() if _is_torch(x) else x.copy()
    thr = tl1_threshold(t, a)
    if _is_torch(x):
        ax = x.abs()
        arg = (1.0 - 27.0 * t * a * (a + 1.0) / (2.0 * (a + ax) ** 3)).clamp_(-1.0, 1.0)
        g = (2.0 / 3.0) * (a + ax) * torch.cos(torch.arccos(arg) / 3.0) - 2.0 * a / 3.0 + ax / 3.0
        return torch.where(ax > thr, x.sign() * g, torch.zeros_like(x))
    ax = np.abs(x)
    arg = np.clip(1.0 - 27.0 * t * a * (a + 1.0) / (2.0 * (a + ax) ** 3), -1.0, 1.0)
    g = (2.0 / 3.0) * (a + ax) * np.cos(np.arccos(arg) / 3.0) - 2.0 * a / 3.0 + ax / 3.0
    return np.where(ax > thr, np.sign(x) * g, 0.0).astype(x.dtype, copy=False)


def _group_norms(w, dim: int):
    """l2 norm of each group ``w.select(dim, g)``, shaped to broadcast against ``w``."""
    ndim = w.ndim
    if ndim == 0:
        raise ValueError("w must have at least one axis for a group prox")
    if not -ndim <= int(dim) < ndim:
        raise ValueError(f"dim must be in [{-ndim}, {ndim - 1}] for a weight with {ndim} axes, got {dim}")
    dim = int(dim) % ndim
    axes = tuple(i for i in range(ndim) if i != dim)
    if _is_torch(w):
        return torch.linalg.vector_norm(w, dim=axes, keepdim=True) if axes else w.abs()
    return np.sqrt(np.sum(w * w, axis=axes, keepdims=True)) if axes else np.abs(w)


def prox_group_lasso(w, t: float, dim: int = 1):
    """Group soft thresholding, equation (4.4): ``w_g max(||w_g|| - t, 0) / ||w_g||`` (0 for zero groups)."""
    t = _check_t(t)
    w = _as_array(w)
    norms = _group_norms(w, dim)
    if _is_torch(w):
        scale = (1.0 - t / norms.clamp_min(torch.finfo(w.dtype).tiny)).clamp_min_(0)
        return w * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(norms > t, 1.0 - t / np.where(norms > 0, norms, 1.0), 0.0)
    return (w * scale).astype(w.dtype, copy=False)


def prox_group_l0(w, t: float, dim: int = 1):
    """Group hard thresholding, equation (4.6): keep ``w_g`` where ``||w_g|| > sqrt(2 t)``, else 0."""
    t = _check_t(t)
    w = _as_array(w)
    keep = _group_norms(w, dim) > math.sqrt(2.0 * t)
    if _is_torch(w):
        return w * keep
    return np.where(keep, w, 0.0).astype(w.dtype, copy=False)


PROX = {"l0": prox_l0, "l1": prox_l1, "tl1": prox_tl1}


def prox(penalty: str, x, t: float, a: float = 1.0):
    """Dispatch by name: ``penalty`` in ``{'l0', 'l1', 'tl1'}``."""
    if penalty not in PROX:
        raise ValueError(f"penalty must be one of {sorted(PROX)}, got {penalty!r}")
    if penalty == "tl1":
        return prox_tl1(x, t, a)
    return PROX[penalty](x, t)
