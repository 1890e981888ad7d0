"""Channels of convolution weights: their l2 norms, which of them are zero, and channel sparsity.

Section 4.1 of the thesis measures structured sparsity by *channels*: a group ``W_g`` of a
convolution weight ``W`` of shape ``(out, in, kh, kw)`` is, by default, one **input** channel
``W[:, g]`` (the thesis's definition: LeNet-5 has 1 + 6 = 7 channels over its two conv layers,
so at least one channel per layer survives and 5/7 = 71.43 % is the highest possible sparsity,
Table 4.1). ``dim=0`` groups by **output** channel (filters) instead.

A channel counts as zero when its l2 norm is below ``tol = 1e-15``.
"""

from __future__ import annotations

import torch
import torch.nn as nn

ZERO_TOL = 1e-15


def _check_dim(dim: int) -> int:
    if dim not in (0, 1):
        raise ValueError(f"dim must be 0 (output channels) or 1 (input channels), got {dim!r}")
    return dim


def _check_tol(tol: float) -> float:
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol!r}")
    return float(tol)


def channel_norms(weight: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """l2 norm of every channel of a conv weight ``(out, in, kh, kw)``: ``||W_g||_2`` of (4.2).

    ``dim=1`` (default) gives one norm per input channel (norm over dims 0, 2, 3), ``dim=0`` one
    per output channel (norm over dims 1, 2, 3). Any weight with at least 2 dimensions works.
    """
    _check_dim(dim)
    if weight.dim() < 2:
        raise ValueError(f"weight must have at least 2 dimensions (out, in, ...), got shape {tuple(weight.shape)}")
    other = [d for d in range(weight.dim()) if d != dim]
    return torch.linalg.vector_norm(weight.detach(), 2, dim=other)


def conv_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The 4-D weights of ``model``'s convolutions by module name (stem and 1x1 shortcuts included)."""
    return {name: m.weight for name, m in model.named_modules()
            if isinstance(m, nn.modules.conv._ConvNd) and m.weight.dim() == 4}


def zero_channels(model: nn.Module, dim: int = 1, tol: float = ZERO_TOL) -> dict[str, list[int]]:
    """Indices of the channels whose l2 norm is below ``tol``, per conv layer (by module name)."""
    _check_dim(dim)
    tol = _check_tol(tol)
    return {name: torch.nonzero(channel_norms(w, dim) < tol).flatten().tolist()
            for name, w in conv_weights(model).items()}


def channel_sparsity(model: nn.Module, dim: int = 1, tol: float = ZERO_TOL) -> dict:
    """Channel sparsity (%) of ``model``: the share of conv channels whose l2 norm is below ``tol``.

    Returns ``{"overall": %, "per_layer": {name: %}, "zero": count, "total": count}``, where the
    overall figure pools the channels of all conv layers (LeNet-5: 7 input channels in all).
    """
    _check_dim(dim)
    tol = _check_tol(tol)
    per_layer, zero, total = {}, 0, 0
    for name, w in conv_weights(model).items():
        norms = channel_norms(w, dim)
        z = int((norms < tol).sum())
        per_layer[name] = 100.0 * z / norms.numel()
        zero += z
        total += norms.numel()
    if total == 0:
        raise ValueError("model has no 4-D convolution weight, so channel sparsity is undefined")
    return {"overall": 100.0 * zero / total, "per_layer": per_layer, "zero": zero, "total": total}


def max_channel_sparsity(model: nn.Module, dim: int = 1) -> float:
    """The ceiling of :func:`channel_sparsity` when every conv layer keeps exactly one channel (%)."""
    _check_dim(dim)
    sizes = [w.shape[dim] for w in conv_weights(model).values()]
    if not sizes:
        raise ValueError("model has no 4-D convolution weight, so channel sparsity is undefined")
    return 100.0 * (sum(sizes) - len(sizes)) / sum(sizes)


def weight_sparsity(model: nn.Module, tol: float = 0.0) -> float:
    """Share (%) of conv-weight entries with ``|w| <= tol`` (unstructured sparsity of the conv layers)."""
    tol = _check_tol(tol)
    ws = list(conv_weights(model).values())
    if not ws:
        raise ValueError("model has no 4-D convolution weight")
    zero = sum(int((w.detach().abs() <= tol).sum()) for w in ws)
    return 100.0 * zero / sum(w.numel() for w in ws)
