"""Structured-pruning baselines of Section 4.1.4 (Table 4.3), each after its paper.

* **SSL group lasso** -- Wen et al. 2016, "Learning structured sparsity in deep neural networks"
  {cite}`wen2016ssl`: SGD on ``loss + lam * sum_g ||W_g||_2`` with groups the channels of every
  conv weight (:class:`GroupLassoSGD`); channels whose norm ends below a small threshold are then
  set to zero (:func:`zero_small_channels`), as Wen et al. do before counting sparsity.
* **Network slimming** -- Liu et al. 2017, "Learning efficient convolutional networks through
  network slimming" {cite}`liu2017slimming`: an l1 penalty ``s * sum |gamma|`` on the
  BatchNorm scales during training (subgradient ``s * sign(gamma)``, ``s = 1e-4`` in the paper,
  :class:`SlimmingSGD`); then one *global* threshold on ``|gamma|`` removes the given share of
  channels (:func:`slimming_plan`); then fine-tuning -- or, as the thesis does, retraining the
  slimmed architecture from scratch.
* **l1-norm filter pruning** -- Li et al. 2017, "Pruning filters for efficient ConvNets"
  {cite}`li2017pruning`: train; in each conv layer remove the filters (output channels) with the
  smallest l1 norms ``sum |W_i,:,:,:|`` (:func:`l1_filter_plan`), a per-layer share; fine-tune.
* **Training the pruned architecture from scratch** -- Liu et al. 2019, "Rethinking the value
  of network pruning" {cite}`liu2019rethinking`: keep only the pruned *architecture*,
  re-initialise every weight (:func:`reinitialize`) and train it for as many epochs as the
  original ("Scratch-E").
* ADMM in channel mode is :class:`lib.sparse.admm.ADMMPruner` (the Chapter 3 module).

Pruning removes channels for real (a smaller model, fewer FLOPs) through torch-pruning's
dependency graph (:func:`prune_channels`), so this module knows no concrete architecture.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from lib.sparse.channels import channel_norms, conv_weights


def _check_ratio(ratio: float, name: str = "ratio") -> float:
    if not 0 <= ratio < 1:
        raise ValueError(f"{name} must be in [0, 1), got {ratio!r}")
    return float(ratio)


def group_lasso_value(model: nn.Module, dim: int = 1) -> torch.Tensor:
    """``sum_g ||W_g||_2`` over the channels of every conv weight (differentiable)."""
    if dim not in (0, 1):
        raise ValueError(f"dim must be 0 or 1, got {dim!r}")
    total = torch.zeros(())
    for w in conv_weights(model).values():
        other = [d for d in range(w.dim()) if d != dim]
        total = total + torch.linalg.vector_norm(w, 2, dim=other).sum()
    return total


class GroupLassoSGD(torch.optim.SGD):
    """SSL (Wen et al. 2016): SGD on ``loss + lam * sum_g ||W_g||_2`` over conv channels.

    The group-lasso gradient ``lam * W_g / ||W_g||`` (0 on a zero group) is added to the gradient
    of every 4-D weight before the ordinary SGD step (momentum, weight decay). ``lam`` >= 0;
    ``dim`` 1 (input channels) or 0 (output channels).
    """

    def __init__(self, params, lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 5e-4,
                 lam: float = 1e-4, dim: int = 1, nesterov: bool = False):
        if not lam >= 0:
            raise ValueError(f"lam must be >= 0, got {lam!r}")
        if dim not in (0, 1):
            raise ValueError(f"dim must be 0 (output channels) or 1 (input channels), got {dim!r}")
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
        self.lam, self.dim = float(lam), dim

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None or p.dim() != 4 or self.lam == 0:
                    continue
                other = [d for d in range(4) if d != self.dim]
                norms = torch.linalg.vector_norm(p, 2, dim=other, keepdim=True)
                p.grad.add_(self.lam * p / torch.where(norms > 0, norms, torch.ones_like(norms)))
        return super().step(closure)


@torch.no_grad()
def zero_small_channels(model: nn.Module, threshold: float, dim: int = 1) -> int:
    """Set to zero every conv channel whose l2 norm is below ``threshold``; return how many."""
    if not threshold >= 0:
        raise ValueError(f"threshold must be >= 0, got {threshold!r}")
    count = 0
    for w in conv_weights(model).values():
        small = channel_norms(w, dim) < threshold
        if small.any():
            idx = torch.nonzero(small).flatten()
            w.index_fill_(dim, idx, 0.0)
            count += int(small.sum())
    return count


def _bn_layers(model: nn.Module) -> dict[str, nn.modules.batchnorm._BatchNorm]:
    return {n: m for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine}


class SlimmingSGD(torch.optim.SGD):
    """Network slimming (Liu et al. 2017): SGD with ``s * sign(gamma)`` added to every BN scale's gradient.

    ``model`` is the network (its BatchNorm scales are found by type); ``s`` >= 0 (1e-4 in the paper).
    """

    def __init__(self, model: nn.Module, lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 5e-4,
                 s: float = 1e-4, nesterov: bool = False):
        if not s >= 0:
            raise ValueError(f"s must be >= 0, got {s!r}")
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        super().__init__(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
        self.s = float(s)
        self.scales = [bn.weight for bn in _bn_layers(model).values()]
        if not self.scales:
            raise ValueError("network slimming needs a model with affine BatchNorm layers")

    @torch.no_grad()
    def step(self, closure=None):
        for g in self.scales:
            if g.grad is not None and self.s:
                g.grad.add_(self.s * torch.sign(g))
        return super().step(closure)


def slimming_plan(model: nn.Module, ratio: float) -> dict:
    """Channels that network slimming removes: the ``ratio`` share with the smallest ``|gamma|``, globally.

    Returns ``{"remove": {bn_name: [idx, ...]}, "threshold": t, "emptied": [bn_name, ...]}``.
    A layer whose every channel falls below the global threshold would be left with no channel
    (the failure the thesis reports at 70 % for VGG-16); such a layer keeps its largest channel
    here, and is listed under ``"emptied"``.
    """
    ratio = _check_ratio(ratio)
    bns = _bn_layers(model)
    if not bns:
        raise ValueError("network slimming needs a model with affine BatchNorm layers")
    gammas = torch.cat([bn.weight.detach().abs().flatten() for bn in bns.values()])
    k = int(round(ratio * gammas.numel()))
    threshold = float(torch.sort(gammas).values[k - 1]) if k > 0 else -1.0
    remove, emptied = {}, []
    for name, bn in bns.items():
        g = bn.weight.detach().abs()
        idx = torch.nonzero(g <= threshold).flatten()
        if len(idx) == len(g):
            emptied.append(name)
            idx = idx[idx != int(torch.argmax(g))]
        if len(idx):
            remove[name] = idx.tolist()
    return {"remove": remove, "threshold": threshold, "emptied": emptied}


def l1_filter_plan(model: nn.Module, ratios: float | dict[str, float]) -> dict[str, list[int]]:
    """Filters that l1-norm pruning (Li et al. 2017) removes, per conv layer (by module name).

    ``ratios`` is one share for every conv layer or ``{conv_name: share}`` (layers not named keep
    all filters); in each layer the ``round(share * filters)`` filters with the smallest
    ``sum |W_i|`` go, always leaving at least one.
    """
    convs = conv_weights(model)
    if isinstance(ratios, dict):
        unknown = set(ratios) - set(convs)
        if unknown:
            raise ValueError(f"ratios names unknown conv layers {sorted(unknown)}; known: {sorted(convs)}")
        shares = {n: _check_ratio(r, f"ratios[{n!r}]") for n, r in ratios.items()}
    else:
        r = _check_ratio(ratios, "ratios")
        shares = dict.fromkeys(convs, r)
    plan = {}
    for name, share in shares.items():
        w = convs[name].detach()
        l1 = w.abs().sum(dim=(1, 2, 3))
        k = min(int(round(share * len(l1))), len(l1) - 1)
        if k > 0:
            plan[name] = torch.argsort(l1)[:k].sort().values.tolist()
    return plan


def prune_channels(model: nn.Module, plan: dict[str, list[int]], example_inputs: torch.Tensor) -> nn.Module:
    """Remove channels for real, in place: ``plan`` maps a conv or BatchNorm module name to output indices.

    torch-pruning's dependency graph removes the coupled slices too (the BN after a conv, the
    next conv's input channels, the classifier's inputs). Returns ``model``.
    """
    import torch_pruning as tp

    modules = dict(model.named_modules())
    unknown = set(plan) - set(modules)
    if unknown:
        raise ValueError(f"plan names unknown modules {sorted(unknown)}")
    dg = tp.DependencyGraph().build_dependency(model, example_inputs=example_inputs, verbose=False)
    for name, idxs in plan.items():
        if not idxs:
            continue
        m = modules[name]
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            fn = tp.prune_batchnorm_out_channels
        elif isinstance(m, nn.modules.conv._ConvNd):
            fn = tp.prune_conv_out_channels
        else:
            raise ValueError(f"plan entry {name!r} is a {type(m).__name__}; only conv and BatchNorm layers are pruned")
        group = dg.get_pruning_group(m, fn, idxs=list(idxs))
        if dg.check_pruning_group(group):
            group.prune()
    return model


def prune_zero_input_channels(model: nn.Module, example_inputs: torch.Tensor, tol: float = 1e-15) -> int:
    """Remove, for real, the channels that RGSM zeroed (``dim=1`` groups); return how many went.

    An input channel ``c`` of a conv whose weight slice ``W[:, c]`` is zero reads nothing: the
    dependency graph removes it together with the producer's output channel ``c`` (its filter,
    its BatchNorm slice). A group is pruned only when every conv that reads the channel has it
    at zero (in a residual network, a channel shared through a shortcut may not be free).
    """
    import torch_pruning as tp

    dg = tp.DependencyGraph().build_dependency(model, example_inputs=example_inputs, verbose=False)
    removed = 0
    for conv in [m for m in model.modules() if isinstance(m, nn.Conv2d)]:
        zero = torch.nonzero(channel_norms(conv.weight, 1) < tol).flatten().tolist()
        if not zero or len(zero) == conv.weight.shape[1]:
            continue
        group = dg.get_pruning_group(conv, tp.prune_conv_in_channels, idxs=zero)
        free = True
        for dep, idxs in group:
            target = dep.target.module
            if isinstance(target, nn.Conv2d) and dep.handler == tp.prune_conv_in_channels:
                if float(channel_norms(target.weight, 1)[list(idxs)].max()) >= tol:
                    free = False
        if free and dg.check_pruning_group(group):
            group.prune()
            removed += len(zero)
    return removed


@torch.no_grad()
def reinitialize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Liu et al. 2019's "scratch" training: a fresh random initialisation of every layer (in place)."""
    torch.manual_seed(seed)
    for m in model.modules():
        if hasattr(m, "reset_parameters") and m is not model:
            m.reset_parameters()
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
    return model


def total_channels(model: nn.Module, dim: int = 1) -> int:
    """Number of channels (input channels by default) summed over all conv layers."""
    if dim not in (0, 1):
        raise ValueError(f"dim must be 0 or 1, got {dim!r}")
    return sum(int(w.shape[dim]) for w in conv_weights(model).values())


def removed_share(original: nn.Module, pruned: nn.Module, dim: int = 1) -> float:
    """Channel sparsity (%) of a physically pruned model: 1 - channels(pruned) / channels(original)."""
    return 100.0 * (1.0 - total_channels(pruned, dim) / total_channels(original, dim))
