"""The one-layer theory: closed forms against Monte Carlo and finite differences; the algorithms."""

import math

import numpy as np
import pytest

from lib import onelayer as ol


@pytest.fixture
def setup():
    rng = np.random.default_rng(0)
    return rng.standard_normal(6), rng.standard_normal(6)


def test_g_relu_against_monte_carlo():
    rng = np.random.default_rng(1)
    u, v = rng.standard_normal(5), rng.standard_normal(5)
    x = rng.standard_normal((400_000, 5))
    mc = np.maximum(x @ u, 0) * np.maximum(x @ v, 0)
    se = mc.std() / math.sqrt(len(mc))
    assert abs(mc.mean() - ol.g_relu(u, v)) < 4 * se


@pytest.mark.parametrize("k", [1, 3, 8])
def test_population_loss_against_monte_carlo(setup, k):
    w, w_star = setup
    mean, se = ol.empirical_loss(w, w_star, k, n=200_000, seed=k)
    assert abs(mean - ol.population_loss(w, w_star, k)) < 4 * se


@pytest.mark.parametrize("k", [1, 2, 5])
def test_gradient_against_finite_differences(setup, k):
    w, w_star = setup
    g = ol.population_grad(w, w_star, k)
    eps = 1e-6
    fd = np.array([(ol.population_loss(w + eps * e, w_star, k) - ol.population_loss(w - eps * e, w_star, k)) / (2 * eps)
                   for e in np.eye(w.size)])
    assert np.allclose(g, fd, atol=1e-7)


def test_gradient_against_monte_carlo(setup):
    w, w_star = setup
    k = 3
    x = ol.sample_inputs(200_000, k, w.size, seed=5)
    resid = ol.network(x, w) - ol.network(x, w_star)  # d/dw (L(w) - L(w*))^2 = 2 resid (1/k) sum_i 1{w.x_i > 0} x_i
    per = 2 * resid[:, None] * np.einsum("nkd,nk->nd", x, (x @ w > 0).astype(float)) / k
    se = per.std(0) / math.sqrt(len(per))
    assert np.all(np.abs(per.mean(0) - ol.population_grad(w, w_star, k)) < 5 * se)


@pytest.mark.parametrize("k", [2, 4, 10])
def test_lemma4_critical_points(k):
    w_star = np.array([0.6, -0.8, 0.0])
    cp = ol.critical_points(w_star, k)
    assert np.allclose(ol.population_grad(cp["min"], w_star, k), 0, atol=1e-12)
    assert np.allclose(ol.population_grad(cp["saddle"], w_star, k), 0, atol=1e-12)
    assert ol.population_loss(cp["min"], w_star, k) == pytest.approx(0, abs=1e-12)
    # 0 is a local maximum: f decreases in every direction away from 0
    f0 = ol.population_loss(np.zeros(3), w_star, k)
    for d in np.random.default_rng(k).standard_normal((20, 3)):
        assert ol.population_loss(1e-3 * d / np.linalg.norm(d), w_star, k) < f0


def test_expected_coarse_gradient_against_monte_carlo():
    rng = np.random.default_rng(2)
    d, k = 5, 4
    w_star = rng.standard_normal(d)
    w_star /= np.linalg.norm(w_star)
    w = rng.standard_normal(d)
    z = rng.standard_normal((300_000, k, d))
    zw = z @ w
    resid = (zw > 0).sum(-1) - (z @ w_star > 0).sum(-1)
    per = np.einsum("nkd,nk->nd", z, (zw > 0).astype(float)) * resid[:, None]
    se = per.std(0) / math.sqrt(len(per))
    assert np.all(np.abs(per.mean(0) - ol.expected_coarse_grad(w, w_star, k)) < 5 * se)
    assert np.allclose(ol.coarse_grad(w, w_star, z), per.mean(0))
    # (3.26) on the unit sphere, and f = k theta / pi against Monte Carlo
    wu = w / np.linalg.norm(w)
    assert np.allclose(ol.expected_coarse_grad(wu, w_star, k), k / (2 * math.sqrt(2 * math.pi)) * (wu - w_star))
    mc_f = (((z @ w > 0).sum(-1) - (z @ w_star > 0).sum(-1)) ** 2).mean()
    assert mc_f == pytest.approx(ol.binary_population_loss(w, w_star, k), rel=0.02)


def test_rvsm_lambda_zero_is_gradient_descent(setup):
    w, w_star = setup
    tr = ol.rvsm(w, w_star, 3, lr=0.05, beta=0.3, lam=0.0, penalty="l1", steps=50)
    assert np.array_equal(tr["u"], tr["w"])
    x = w.copy()
    for _ in range(50):
        x = x - 0.05 * ol.population_grad(x, w_star, 3)
    assert np.allclose(tr["w"][-1], x, atol=1e-12)


@pytest.mark.parametrize("penalty", ["l0", "l1", "tl1"])
def test_rvsm_descends_and_limit_relation(penalty):
    w_star = np.array([1.0, -0.8, 0.5, 0.0, 0.0, 0.02, 0.0, -0.01])
    w0 = np.random.default_rng(3).standard_normal(8)
    tr = ol.rvsm(w0, w_star, 4, lr=0.5, beta=0.05, lam=5e-4, penalty=penalty, steps=3000)
    assert np.all(np.diff(tr["lagrangian"]) <= 1e-12)
    lim = ol.limit_residual(tr["w"][-1], tr["u"][-1], w_star, 4, 0.05)
    assert lim["rel_residual"] < 1e-6 and lim["C"] > 0
    assert np.count_nonzero(tr["u"][-1]) < 8


def test_bad_input(setup):
    w, w_star = setup
    with pytest.raises(ValueError, match="lam"):
        ol.rvsm(w, w_star, 2, lam=-1)
    with pytest.raises(ValueError, match="beta"):
        ol.rvsm(w, w_star, 2, beta=0)
    with pytest.raises(ValueError, match="a "):
        ol.rvscgd(w, w_star, 2, penalty="tl1", a=0)
    with pytest.raises(ValueError, match="penalty"):
        ol.admm(w, w_star, 2, penalty="l2")
    with pytest.raises(ValueError, match="k "):
        ol.population_loss(w, w_star, 0)
    with pytest.raises(ValueError, match="w_star"):
        ol.population_grad(w, np.zeros(6), 2)
    with pytest.raises(ValueError, match="lr"):
        ol.rvsm(w, w_star, 2, lr=0)
