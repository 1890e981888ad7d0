"""ADMMPruner: projections, the ADMM step against a hand-written reference, pruning and masks."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lib.sparse import ADMMPruner, project_channels, project_topk, sparsity


def small_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 6 * 6, 3))


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(16, 2, 8, 8, generator=g), torch.randint(0, 3, (16,), generator=g)


def run(model, opt, steps, start=0):
    for s in range(start, start + steps):
        x, y = batch(s)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()


def test_project_topk_is_the_nearest_sparse_tensor():
    w = torch.randn(50)
    z = project_topk(w, 0.6)
    assert int((z != 0).sum()) == 20
    kept = w.abs()[z != 0].min()
    dropped = w.abs()[z == 0].max()
    assert kept >= dropped  # magnitudes, not signed values
    w2 = -torch.arange(1.0, 11.0)  # all negative: the largest magnitudes are the most negative
    assert torch.equal(project_topk(w2, 0.5) != 0, w2 <= -6)


@pytest.mark.parametrize("dim", [0, 1])
def test_project_channels(dim):
    w = torch.randn(6, 5, 3, 3)
    z = project_channels(w, 0.6, dim)
    norms = z.transpose(0, dim).reshape(w.shape[dim], -1).norm(dim=1)
    wn = w.transpose(0, dim).reshape(w.shape[dim], -1).norm(dim=1)
    keep = int((norms > 0).sum())
    assert keep == -(-w.shape[dim] * 4 // 10)
    assert wn[norms > 0].min() >= wn[norms == 0].max()


def test_step_matches_reference_and_prune():
    lr, rho = 0.05, 0.5
    model = small_net()
    opt = ADMMPruner(model.parameters(), lr=lr, momentum=0.0, weight_decay=0.0, nesterov=False, rho=rho, sparsity=0.6)
    ref = [p.detach().clone() for p in model.parameters()]
    zs = [project_topk(p, 0.6) if p.dim() >= 2 else None for p in ref]
    mus = [torch.zeros_like(p) for p in ref]
    for s in range(4):
        x, y = batch(s)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        grads = [p.grad.clone() for p in model.parameters()]
        opt.step()
        for i, (p, g) in enumerate(zip(model.parameters(), grads)):
            w = ref[i] - lr * (g + (rho * (ref[i] - zs[i] + mus[i]) if zs[i] is not None else 0))
            torch.testing.assert_close(p.detach(), w, rtol=1e-5, atol=1e-6)
            ref[i] = p.detach().clone()
            if zs[i] is not None:
                zs[i] = project_topk(ref[i] + mus[i], 0.6)
                mus[i] = mus[i] + ref[i] - zs[i]
    opt.prune()
    rep = sparsity(model)
    assert rep["overall"] == pytest.approx(60, abs=0.5)
    mask = [p != 0 for p in model.parameters()]
    run(model, opt, 3, start=10)  # masked fine-tuning keeps the pruned weights at 0
    for p, mk in zip(model.parameters(), mask):
        if p.dim() >= 2:
            assert torch.all(p[~mk] == 0)
    assert sparsity(model)["overall"] == pytest.approx(rep["overall"])


def test_channel_mode_and_state_dict():
    model = small_net()
    opt = ADMMPruner(model.parameters(), lr=0.05, sparsity=0.5, mode="channel", dim=1)
    run(model, opt, 3)
    m2 = copy.deepcopy(model)
    o2 = ADMMPruner(m2.parameters(), lr=0.05, sparsity=0.5, mode="channel", dim=1)
    o2.load_state_dict(copy.deepcopy(opt.state_dict()))
    opt.prune(), o2.prune()
    run(model, opt, 2, 5), run(m2, o2, 2, 5)
    for a, b in zip(model.parameters(), m2.parameters()):
        assert torch.equal(a, b)
    conv = model[0].weight
    zero_in = (conv.abs().sum((0, 2, 3)) == 0).sum()
    assert int(zero_in) == 1  # 2 input channels, half kept
    sd = opt.state_dict()
    o3 = ADMMPruner(small_net().parameters())
    o3.load_state_dict(sd)
    assert o3.pruned


def test_bad_input():
    params = small_net().parameters
    with pytest.raises(ValueError, match="rho"):
        ADMMPruner(params(), rho=0.0)
    with pytest.raises(ValueError, match="sparsity"):
        ADMMPruner(params(), sparsity=1.0)
    with pytest.raises(ValueError, match="mode"):
        ADMMPruner(params(), mode="filters")
    with pytest.raises(ValueError, match="dual_every"):
        ADMMPruner(params(), dual_every="never")
