"""Pruning baselines against ground truth: autograd of the regularised losses, hand-made plans,
and function preservation when dead channels are removed for real."""

import copy

import pytest
import torch
import torch.nn as nn

from lib.sparse.baselines import (
    GroupLassoSGD,
    SlimmingSGD,
    group_lasso_value,
    l1_filter_plan,
    prune_channels,
    prune_zero_input_channels,
    reinitialize,
    removed_share,
    slimming_plan,
    total_channels,
    zero_small_channels,
)
from lib.sparse.channels import channel_sparsity


def _chain(c=(6, 8, 5)):
    """A VGG-like chain: conv-BN-ReLU twice, then conv-BN-ReLU, pooling, linear."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, c[0], 3, padding=1), nn.BatchNorm2d(c[0]), nn.ReLU(),
                         nn.Conv2d(c[0], c[1], 3, padding=1), nn.BatchNorm2d(c[1]), nn.ReLU(),
                         nn.Conv2d(c[1], c[2], 3, padding=1), nn.BatchNorm2d(c[2]), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c[2], 3)).double()


def _sgd_on(loss_fn, model, **kw):
    opt = torch.optim.SGD(model.parameters(), **kw)
    opt.zero_grad()
    loss_fn(model).backward()
    opt.step()


def test_group_lasso_sgd_is_sgd_on_the_regularised_loss():
    x, y = torch.rand(4, 1, 6, 6, dtype=torch.float64), torch.tensor([0, 1, 2, 1])
    m1 = _chain()
    m2 = copy.deepcopy(m1)
    lam = 0.05
    opt = GroupLassoSGD(m1.parameters(), lr=0.1, momentum=0.0, weight_decay=1e-3, lam=lam)
    opt.zero_grad()
    nn.functional.cross_entropy(m1(x), y).backward()
    opt.step()
    _sgd_on(lambda m: nn.functional.cross_entropy(m(x), y) + lam * group_lasso_value(m), m2, lr=0.1,
            weight_decay=1e-3)
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        assert torch.allclose(p1, p2, atol=1e-12)


def test_slimming_sgd_is_sgd_with_l1_on_bn_scales():
    x, y = torch.rand(4, 1, 6, 6, dtype=torch.float64), torch.tensor([0, 1, 2, 1])
    m1 = _chain()
    with torch.no_grad():
        for bn in [m for m in m1.modules() if isinstance(m, nn.BatchNorm2d)]:
            bn.weight.uniform_(-1, 1)
    m2 = copy.deepcopy(m1)
    s = 0.01
    opt = SlimmingSGD(m1, lr=0.1, momentum=0.0, weight_decay=0.0, s=s)
    opt.zero_grad()
    nn.functional.cross_entropy(m1(x), y).backward()
    opt.step()

    def reg(m):
        return sum(b.weight.abs().sum() for b in m.modules() if isinstance(b, nn.BatchNorm2d))

    _sgd_on(lambda m: nn.functional.cross_entropy(m(x), y) + s * reg(m), m2, lr=0.1)
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        assert torch.allclose(p1, p2, atol=1e-12)


def test_slimming_plan_uses_one_global_threshold_and_never_empties_a_layer():
    m = _chain((4, 4, 4))
    with torch.no_grad():
        m[1].weight.copy_(torch.tensor([0.1, 0.2, 0.9, 1.0]))
        m[4].weight.copy_(torch.tensor([0.05, 0.15, 0.25, 0.3]))  # all below 0.35
        m[7].weight.copy_(torch.tensor([0.5, 0.6, 0.7, 0.8]))
    plan = slimming_plan(m, 0.5)  # 6 of 12 smallest |gamma|: 0.05 0.1 0.15 0.2 0.25 0.3
    assert plan["threshold"] == pytest.approx(0.3)
    assert plan["remove"]["1"] == [0, 1]
    assert plan["remove"]["4"] == [0, 1, 2]  # all four fall below: the largest (index 3) stays
    assert plan["emptied"] == ["4"]
    assert "7" not in plan["remove"]


def test_l1_filter_plan_removes_the_smallest_l1_filters():
    m = _chain((4, 4, 4))
    with torch.no_grad():
        for i, scale in enumerate([3.0, 0.1, 2.0, 0.2]):
            m[3].weight[i] = scale
    assert l1_filter_plan(m, {"3": 0.5}) == {"3": [1, 3]}
    assert set(l1_filter_plan(m, 0.25)) == {"0", "3", "6"}
    with pytest.raises(ValueError, match="ratios"):
        l1_filter_plan(m, 1.0)
    with pytest.raises(ValueError, match="unknown"):
        l1_filter_plan(m, {"nope": 0.5})


def test_removing_dead_channels_keeps_the_function():
    m = _chain()
    m.eval()
    with torch.no_grad():  # channels 1 and 4 of the first block output exactly 0 after ReLU
        for c in (1, 4):
            m[0].weight[c] = 0.0
            m[0].bias[c] = 0.0
            m[1].bias[c] = -1.0
    x = torch.rand(5, 1, 6, 6, dtype=torch.float64)
    before = m(x)
    small = prune_channels(copy.deepcopy(m), {"1": [1, 4]}, x[:2])
    small.eval()
    assert small[0].out_channels == 4 and small[3].in_channels == 4
    assert torch.allclose(small(x), before, atol=1e-12)
    assert removed_share(m, small) == pytest.approx(100 * 2 / (1 + 6 + 8))
    assert total_channels(small) == 1 + 4 + 8


def test_rgsm_zero_input_channels_are_removed_for_real_without_changing_outputs():
    m = _chain()
    m.eval()
    with torch.no_grad():
        m[3].weight[:, [0, 2, 5]] = 0.0  # conv 3 never reads channels 0, 2, 5
        m[6].weight[:, [7]] = 0.0
    x = torch.rand(5, 1, 6, 6, dtype=torch.float64)
    before = m(x)
    assert channel_sparsity(m)["zero"] == 4
    removed = prune_zero_input_channels(m, x[:2])
    assert removed == 4
    assert m[0].out_channels == 3 and m[3].out_channels == 7 and m[6].in_channels == 7
    assert torch.allclose(m(x), before, atol=1e-12)


def test_zero_small_channels_and_reinitialize():
    m = _chain()
    with torch.no_grad():
        m[3].weight[:, 2] *= 1e-4
    assert zero_small_channels(m, 1e-2) == 1
    assert float(m[3].weight[:, 2].detach().abs().sum()) == 0.0
    a = reinitialize(copy.deepcopy(m), seed=3)
    b = reinitialize(copy.deepcopy(m), seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a[3].weight, m[3].weight)
    with pytest.raises(ValueError, match="threshold"):
        zero_small_channels(m, -1.0)
    with pytest.raises(ValueError, match="lam"):
        GroupLassoSGD(m.parameters(), lam=-1.0)
    with pytest.raises(ValueError, match="s must"):
        SlimmingSGD(m, s=-1.0)
