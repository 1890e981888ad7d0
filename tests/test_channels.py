"""channel_sparsity and its helpers on hand-made weights (the counts are known by construction)."""

import pytest
import torch
import torch.nn as nn

from lib.models import lenet5
from lib.sparse.channels import (
    channel_norms,
    channel_sparsity,
    conv_weights,
    max_channel_sparsity,
    weight_sparsity,
    zero_channels,
)


def _two_convs():
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 5, 1), nn.Flatten(), nn.LazyLinear(2))
    with torch.no_grad():
        for p in m.parameters():
            if not isinstance(p, nn.parameter.UninitializedParameter):
                p.fill_(1.0)
    return m


def test_channel_norms_match_hand_computation():
    w = torch.zeros(2, 3, 2, 2)
    w[:, 0] = 1.0  # 8 ones: norm sqrt(8)
    w[1, 2, 0, 0] = 3.0
    assert torch.allclose(channel_norms(w, 1), torch.tensor([8 ** 0.5, 0.0, 3.0]))
    assert torch.allclose(channel_norms(w, 0), torch.tensor([2.0, (4 + 9) ** 0.5]))


def test_sparsity_counts_input_channels_per_layer_and_overall():
    m = _two_convs()
    with torch.no_grad():
        m[0].weight[:, 1] = 0.0          # 1 of 3 input channels of conv 0
        m[2].weight[:, [0, 2, 3]] = 0.0  # 3 of 4 input channels of conv 2
    s = channel_sparsity(m)
    assert s["per_layer"] == pytest.approx({"0": 100 / 3, "2": 75.0})
    assert (s["zero"], s["total"]) == (4, 7)
    assert s["overall"] == pytest.approx(400 / 7)
    assert zero_channels(m) == {"0": [1], "2": [0, 2, 3]}
    out = channel_sparsity(m, dim=0)  # output channels: none is zero
    assert out["overall"] == 0.0 and out["total"] == 4 + 5


def test_tolerance_is_1e_15_on_the_l2_norm():
    m = _two_convs()
    with torch.no_grad():
        m[0].weight[:, 0] = 0.0
        m[0].weight[0, 0, 0, 0] = 1e-14  # norm 1e-14 > 1e-15: not zero
        m[0].weight[:, 2] = 0.0
    assert channel_sparsity(m)["per_layer"]["0"] == pytest.approx(100 / 3)
    assert channel_sparsity(m, tol=1e-13)["per_layer"]["0"] == pytest.approx(200 / 3)


def test_lenet_has_seven_channels_and_a_71_43_percent_ceiling():
    m = lenet5()
    assert channel_sparsity(m)["total"] == 7
    assert max_channel_sparsity(m) == pytest.approx(500 / 7)
    with torch.no_grad():
        m.conv2.weight[:, 1:] = 0.0  # keep one channel per layer: the ceiling
    assert channel_sparsity(m)["overall"] == pytest.approx(max_channel_sparsity(m))
    assert set(conv_weights(m)) == {"conv1", "conv2"}


def test_weight_sparsity_and_bad_input():
    m = _two_convs()
    with torch.no_grad():
        m[2].weight[:2] = 0.0  # 2 of 5 filters of 4x1x1: 8 of 20 entries; conv 0 has 108 entries
    assert weight_sparsity(m) == pytest.approx(100 * 8 / 128)
    with pytest.raises(ValueError, match="dim"):
        channel_sparsity(m, dim=2)
    with pytest.raises(ValueError, match="tol"):
        channel_sparsity(m, tol=-1.0)
    with pytest.raises(ValueError, match="no 4-D"):
        channel_sparsity(nn.Linear(3, 2))
