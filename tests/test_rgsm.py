"""RGSM (Algorithm 3) against independent ground truth: closed forms, brute force, scipy, plain SGD."""

import itertools

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from lib.models import lenet5
from lib.sparse.channels import channel_sparsity
from lib.sparse.rgsm import RGSM, group_penalty, group_prox


@pytest.fixture(autouse=True)
def float64():
    """Double precision for these comparisons, restored afterwards (other test files use float32)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _quadratic_run(a, penalty, beta, lam, lr=0.2, steps=3000, lagrangian=None):
    """RGSM with plain gradient steps on f(W) = 1/2 ||W - A||^2 (L = 1); returns (W, U)."""
    w = torch.nn.Parameter(torch.zeros_like(a) + 0.5)
    opt = RGSM([w], lr=lr, momentum=0.0, weight_decay=0.0, beta=beta, lambda1=lam, penalty=penalty, nesterov=False)
    for _ in range(steps):
        w.grad = (w - a).detach().clone()
        if lagrangian is not None:
            lagrangian.append(0.5 * float(((w.detach() - a) ** 2).sum()) + opt.lagrangian_terms())
        opt.step()
    return w.detach(), opt.u_tensors()[0]


def _lagrangian(wu, a, lam, beta, groups_dim=1, eps=1e-10):
    n = a.size
    w, u = wu[:n].reshape(a.shape), wu[n:].reshape(a.shape)
    axes = tuple(i for i in range(a.ndim) if i != groups_dim)
    norms = np.sqrt((u ** 2).sum(axis=axes) + eps ** 2)
    return 0.5 * ((w - a) ** 2).sum() + lam * norms.sum() + 0.5 * beta * ((w - u) ** 2).sum()


def test_group_lasso_fixed_point_matches_numerical_minimisation():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(3, 4, 1, 2, generator=gen)
    a[:, 1] *= 0.05  # a weak channel that the group lasso removes
    beta, lam = 1.0, 0.4
    w, u = _quadratic_run(a, "group_lasso", beta, lam)
    # joint numerical minimisation of the (convex) Lagrangian (4.2) over (W, U), smoothed group norm
    an = a.numpy()
    res = minimize(_lagrangian, np.concatenate([an.ravel(), an.ravel()]), args=(an, lam, beta),
                   method="L-BFGS-B", options={"maxiter": 20000, "ftol": 1e-15, "gtol": 1e-10})
    wu = np.concatenate([w.numpy().ravel(), u.numpy().ravel()])
    assert _lagrangian(wu, an, lam, beta, eps=0.0) <= res.fun + 1e-7
    n = a.numel()
    assert np.allclose(u.numpy().ravel(), res.x[n:], atol=2e-4)
    assert np.allclose(w.numpy().ravel(), res.x[:n], atol=2e-4)
    # the weak channel is exactly zero in U, the others are not
    norms = u.pow(2).sum(dim=(0, 2, 3)).sqrt()
    assert float(norms[1]) == 0.0 and bool((norms[[0, 2, 3]] > 0).all())


def test_group_lasso_prox_equals_scipy_per_group():
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(2, 3, 2, 2, generator=gen)
    lam, beta = 0.7, 0.5
    u = group_prox(w, "group_lasso", lam, beta)
    for g in range(3):
        wg = w[:, g].numpy().ravel()

        def obj(x, wg=wg):
            return lam * np.sqrt((x ** 2).sum() + 1e-20) + 0.5 * beta * ((wg - x) ** 2).sum()

        res = minimize(obj, wg, method="Powell", options={"xtol": 1e-10, "ftol": 1e-14, "maxfev": 200000})
        assert obj(u[:, g].numpy().ravel()) <= res.fun + 1e-8
        assert np.allclose(u[:, g].numpy().ravel(), res.x, atol=1e-4)


def test_group_l0_prox_equals_brute_force_over_supports():
    gen = torch.Generator().manual_seed(2)
    for trial in range(20):
        w = torch.randn(3, 4, 1, 1, generator=gen) * (0.2 + trial / 10)
        lam, beta = 0.3, 1.5
        u = group_prox(w, "group_l0", lam, beta)
        best, best_u = np.inf, None
        for keep in itertools.product([0, 1], repeat=4):  # U_g in {0, W_g}: the only candidates
            cand = w * torch.tensor(keep, dtype=w.dtype).reshape(1, 4, 1, 1)
            val = lam * sum(keep) + 0.5 * beta * float(((w - cand) ** 2).sum())
            if val < best - 1e-12:
                best, best_u = val, cand
        assert torch.allclose(u, best_u)


def test_group_l0_run_reaches_a_fixed_point_and_lagrangian_decreases():
    gen = torch.Generator().manual_seed(3)
    a = torch.randn(2, 5, 1, 1, generator=gen)
    a[:, :2] *= 0.1
    beta, lam, lr = 2.0, 0.2, 0.3  # lr < 1/(beta + L) = 1/3: Theorem 4.1's condition
    values = []
    w, u = _quadratic_run(a, "group_l0", beta, lam, lr=lr, steps=400, lagrangian=values)
    assert all(b <= a_ + 1e-12 for a_, b in zip(values, values[1:]))  # monotone (Theorem 4.1)
    assert torch.allclose(w, (a + beta * u) / (1 + beta), atol=1e-9)  # stationary in W
    assert torch.equal(u, group_prox(w, "group_l0", lam, beta))  # U minimises over U
    assert float(u[:, :2].abs().sum()) == 0.0 and bool((u[:, 2:] != 0).all())


def test_closed_form_soft_threshold_of_the_data():
    # eliminating W gives U* = group soft threshold of A at lam (1 + beta) / beta
    gen = torch.Generator().manual_seed(4)
    a = torch.randn(4, 3, 3, 3, generator=gen) * 0.3
    a[:, 0] *= 0.2  # norms about 0.4, 2.0, 1.9: threshold 0.6 removes channel 0 only
    beta, lam = 0.5, 0.2
    _, u = _quadratic_run(a, "group_lasso", beta, lam, lr=0.5, steps=4000)
    expected = group_prox(a, "group_lasso", lam * (1 + beta) / beta, 1.0)
    assert torch.allclose(u, expected, atol=1e-8)
    assert 0 < int((expected.pow(2).sum(dim=(0, 2, 3)) == 0).sum()) < 3  # some, not all, channels go


def test_zero_lambda_is_exactly_sgd_with_nesterov_and_weight_decay():
    torch.manual_seed(5)
    m1 = lenet5().double()
    m2 = lenet5().double()
    m2.load_state_dict(m1.state_dict())
    o1 = RGSM(m1.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, beta=0.3, lambda1=0.0)
    o2 = torch.optim.SGD(m2.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
    x, y = torch.rand(16, 1, 28, 28), torch.randint(0, 10, (16,))
    for _ in range(4):
        for m, o in ((m1, o1), (m2, o2)):
            o.zero_grad()
            torch.nn.functional.cross_entropy(m(x), y).backward()
            o.step()
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        assert torch.allclose(p1, p2, atol=1e-12)


def test_lambda2_adds_the_group_lasso_gradient():
    torch.manual_seed(6)
    w = torch.nn.Parameter(torch.randn(3, 4, 2, 2))
    w0 = w.detach().clone()
    lam2, lr = 0.3, 0.1
    opt = RGSM([w], lr=lr, momentum=0.0, weight_decay=0.0, beta=1.0, lambda1=0.0, lambda2=lam2, nesterov=False)
    loss = (w ** 3).sum()
    loss.backward()
    opt.step()
    ref = w0.clone().requires_grad_(True)
    total = (ref ** 3).sum() + lam2 * ref.pow(2).sum(dim=(0, 2, 3)).sqrt().sum()
    (g,) = torch.autograd.grad(total, ref)
    assert torch.allclose(w.detach(), w0 - lr * g, atol=1e-12)  # lambda1 = 0: U = W, no coupling


def test_load_u_makes_zero_groups_zero_channels_and_input_channels_are_groups():
    torch.manual_seed(7)
    m = lenet5().double()
    opt = RGSM(m.parameters(), lr=0.01, beta=1.0, lambda1=0.5)  # threshold 0.5 on channel norms
    x, y = torch.rand(16, 1, 28, 28), torch.randint(0, 10, (16,))
    torch.nn.functional.cross_entropy(m(x), y).backward()
    opt.step()
    u2 = opt.u_tensors()[1]
    zero_u = int((u2.pow(2).sum(dim=(0, 2, 3)) == 0).sum())
    opt.load_u()
    assert channel_sparsity(m)["per_layer"]["conv2"] == pytest.approx(100 * zero_u / 6)
    assert [tuple(u.shape) for u in opt.u_tensors()] == [(6, 1, 5, 5), (16, 6, 5, 5)]  # only conv weights split
    assert group_penalty(u2, "group_l0") == 6 - zero_u


@pytest.mark.parametrize("kwargs, word", [({"beta": 0.0}, "beta"), ({"lambda1": -1.0}, "lam"),
                                          ({"lambda2": -0.1}, "lambda2"), ({"penalty": "l1"}, "penalty"),
                                          ({"dim": 2}, "dim"), ({"lr": 0.0}, "lr"), ({"momentum": 1.0}, "momentum")])
def test_bad_input_raises(kwargs, word):
    with pytest.raises(ValueError, match=word):
        RGSM(lenet5().parameters(), **kwargs)
