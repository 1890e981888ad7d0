"""RVSM optimizer: lambda = 0 is plain SGD, the step matches a hand-written reference, round trips."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lib.sparse import RVSM, prox_l0, prox_l1, prox_tl1, recalibrate_bn, sparsity


def small_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(16, 1, 8, 8, generator=g), torch.randint(0, 3, (16,), generator=g)


def train(model, opt, steps=5):
    for s in range(steps):
        x, y = batch(s)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("penalty", ["l0", "l1", "tl1"])
def test_lambda_zero_is_sgd(foreach, penalty):
    m1, m2 = small_net(), small_net()
    o1 = RVSM(m1.parameters(), lr=0.05, lam=0.0, beta=0.5, penalty=penalty, foreach=foreach)
    o2 = torch.optim.SGD(m2.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True, foreach=False)
    train(m1, o1), train(m2, o2)
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        torch.testing.assert_close(p1, p2, rtol=0, atol=1e-7)
    for _group, p in o1.penalised():
        assert torch.equal(o1.state[p]["u"], p)  # u = w


@pytest.mark.parametrize("penalty,fn", [("l0", prox_l0), ("l1", prox_l1), ("tl1", prox_tl1)])
@pytest.mark.parametrize("foreach", [False, True])
def test_step_matches_reference(penalty, fn, foreach):
    lr, m, wd, beta, lam = 0.1, 0.9, 1e-3, 0.2, 0.004
    model = small_net()
    opt = RVSM(model.parameters(), lr=lr, momentum=m, weight_decay=wd, nesterov=False, beta=beta, lam=lam,
               penalty=penalty, foreach=foreach)
    ref = [p.detach().clone() for p in model.parameters()]
    us = [fn(p, lam / beta) if p.dim() >= 2 else None for p in ref]
    bufs = [None] * len(ref)
    for s in range(4):
        x, y = batch(s)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        grads = [p.grad.clone() for p in model.parameters()]
        opt.step()
        for i, (w, g) in enumerate(zip(ref, grads)):
            d = g + wd * w
            bufs[i] = d.clone() if bufs[i] is None else m * bufs[i] + d
            d = bufs[i]
            if us[i] is not None:
                d = d + beta * (w - us[i])
            ref[i] = w - lr * d
            if us[i] is not None:
                us[i] = fn(ref[i], lam / beta)
        # the model follows the reference (its gradients are taken at the model's own weights)
        for p, w in zip(model.parameters(), ref):
            torch.testing.assert_close(p.detach(), w, rtol=1e-5, atol=1e-6)
            w.copy_(p.detach())
    for _group, p in opt.penalised():
        torch.testing.assert_close(opt.state[p]["u"], fn(p.detach(), lam / beta))


def test_penalised_defaults_and_groups():
    model = small_net()
    opt = RVSM(model.parameters(), lam=1e-3)
    shapes = [tuple(p.shape) for _, p in opt.penalised()]
    assert shapes == [(4, 1, 3, 3), (3, 144)]  # conv and linear weights; not BN or biases
    opt2 = RVSM([{"params": [model[0].weight], "penalise": False}, {"params": [model[4].weight]}], lam=1e-3)
    assert [tuple(p.shape) for _, p in opt2.penalised()] == [(3, 144)]


def test_state_dict_round_trip():
    m1 = small_net()
    o1 = RVSM(m1.parameters(), lr=0.05, lam=1e-3, beta=0.1, penalty="tl1", a=0.5)
    train(m1, o1, 3)
    m2 = copy.deepcopy(m1)
    o2 = RVSM(m2.parameters(), lr=0.05, lam=1e-3, beta=0.1, penalty="tl1", a=0.5)
    o2.load_state_dict(copy.deepcopy(o1.state_dict()))
    train(m1, o1, 3), train(m2, o2, 3)
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p1, p2)
    assert o2.param_groups[0]["penalty"] == "tl1" and o2.param_groups[0]["a"] == 0.5


def test_load_u_and_sparsity():
    model = small_net()
    opt = RVSM(model.parameters(), lr=0.05, lam=2e-3, beta=0.1, penalty="l0")  # threshold 0.2
    train(model, opt, 3)
    rep_u = opt.u_sparsity()
    opt.load_u()
    rep = sparsity(model)
    assert set(rep["layers"]) == {"0.weight", "4.weight"}
    w0, w4 = model[0].weight, model[4].weight
    assert rep["layers"]["0.weight"] == pytest.approx(100 * float((w0 == 0).sum()) / w0.numel())
    assert rep["overall"] == pytest.approx(100 * float((w0 == 0).sum() + (w4 == 0).sum()) / (w0.numel() + w4.numel()))
    assert rep["overall"] == pytest.approx(rep_u["overall"]) and rep["overall"] > 50
    assert torch.all((w4 == 0) | (w4.abs() > 0.2))


def test_fit_hook_and_bn_recalibration():
    from lib.data import ImageSet
    from lib.train import fit
    g = torch.Generator().manual_seed(0)
    x8 = (torch.rand(64, 1, 8, 8, generator=g) * 255).to(torch.uint8)
    data = ImageSet(x8, torch.randint(0, 3, (64,), generator=g), 3, "toy", "toy")
    model = small_net()
    opt = RVSM(model.parameters(), lr=0.05, lam=2e-3, beta=0.1)
    fit(model, opt, data, epochs=2, batch_size=16, on_epoch_end=RVSM.epoch_end, progress=False)
    assert sparsity(model)["overall"] == pytest.approx(opt.u_sparsity()["overall"])
    x = data.x.float() / 255
    assert recalibrate_bn(model, [x[:32], x[32:]]) == 1
    bn = model[1]
    feats = model[0](x)
    torch.testing.assert_close(bn.running_mean, feats.mean((0, 2, 3)), rtol=1e-4, atol=1e-5)


def test_bad_input():
    params = small_net().parameters
    with pytest.raises(ValueError, match="lam"):
        RVSM(params(), lam=-1.0)
    with pytest.raises(ValueError, match="beta"):
        RVSM(params(), beta=0.0)
    with pytest.raises(ValueError, match="a "):
        RVSM(params(), penalty="tl1", a=0.0)
    with pytest.raises(ValueError, match="penalty"):
        RVSM(params(), penalty="l2")
    with pytest.raises(ValueError, match="momentum"):
        RVSM(params(), momentum=1.5)
