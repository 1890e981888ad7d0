"""lib.serw against independent ground truth: products, hypergeometric closed forms, exact path DP, Monte Carlo."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from scipy import stats

from lib.serw import (
    diffusivity,
    gamma_integral,
    gamma_integral_quad,
    limited_mean,
    log_squared_tail,
    mean_square,
    simulate,
    simulate_reference,
    tau_moments,
    tau_survival,
)


def brute_survival(n, delta, d, mu=None):
    """P(tau >= n) = prod_{m<n} q_m, one factor at a time (mu(t) = E[min(xi, t)] in closed form for model II)."""
    out = []
    for nn in n:
        prod = 1.0
        for m in range(1, nn):
            a = (1 + m) / (2 * d + m)
            prod *= max(a - delta, 0.0) if mu is None else a - delta * mu(a / delta)
        out.append(prod)
    return np.array(out)


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("delta", [0.0, 0.02, 0.25])
def test_tau_survival_model_one_matches_product(d, delta):
    n = np.array([1, 2, 3, 7, 50, 400])
    np.testing.assert_allclose(tau_survival(n, delta, d), brute_survival(n, delta, d), rtol=1e-12, atol=1e-300)


def test_tau_survival_model_two_exponential_matches_product():
    n = np.array([1, 2, 5, 40, 300])
    mu = lambda t: 1.0 - math.exp(-t)  # noqa: E731  E[min(Exp(1), t)]
    for d in (1, 2):
        np.testing.assert_allclose(tau_survival(n, 0.1, d, stats.expon()), brute_survival(n, 0.1, d, mu), rtol=1e-10)


def test_tau_survival_model_three_constant_law_is_model_two():
    n = np.array([1, 3, 30, 200])
    xi = stats.lomax(0.5)
    # model III evaluates xi_i exactly for i <= 64 and interpolates between log-spaced i beyond
    np.testing.assert_allclose(tau_survival(n, 0.05, 1, lambda i: xi), tau_survival(n, 0.05, 1, xi), rtol=1e-7)
    np.testing.assert_allclose(tau_moments(1e-4, 1, lambda i: xi), tau_moments(1e-4, 1, xi), rtol=1e-9)


def test_limited_mean_closed_forms():
    t = np.array([1e-3, 0.7, 5.0, 1e4, 1e150])
    np.testing.assert_allclose(limited_mean(stats.expon(), t), 1 - np.exp(-t), rtol=1e-12)
    np.testing.assert_allclose(limited_mean(stats.lomax(0.5), t), 2 * (np.sqrt(1 + t) - 1), rtol=1e-11)
    np.testing.assert_allclose(limited_mean(stats.halfcauchy(), t),
                               2 / np.pi * (t * np.arctan(1 / t) + np.log(t) + 0.5 * np.log1p(t ** -2.0)), rtol=1e-10)


def hypergeometric_moments(delta, d):
    """Model I: P(tau >= n) = alpha^(n-1) (1+c)_(n-1) / (2d+1)_(n-1), so E[tau] = 2F1(1, 1+c; 2d+1; alpha) and
    P(tau odd) = 2F1(1, 1+c; 2d+1; -alpha), alpha = 1 - delta, c = (1 - 2d delta)/(1 - delta)."""
    with mpmath.workdps(80):
        a = 1 - mpmath.mpf(delta)
        c = (1 - 2 * d * mpmath.mpf(delta)) / a
        return float(mpmath.hyp2f1(1, 1 + c, 2 * d + 1, a)), float(mpmath.hyp2f1(1, 1 + c, 2 * d + 1, -a))


@pytest.mark.parametrize("d", [1, 2, 3])
def test_diffusivity_model_one_matches_hypergeometric(d):
    for delta in [0.2, 0.05, 1e-3, 1e-5, 1e-7, 1e-9, 1e-12, 1e-40]:
        E, p = hypergeometric_moments(delta, d)
        v = d * p / ((d - p) * E)
        assert diffusivity(delta, d) == pytest.approx(v, rel=1e-8), (delta, d)


def test_asymptotic_tail_agrees_with_direct_summation():
    # delta = 1e-4: K = 2e6 terms sum the law completely; K = 2e4 leaves the rest to the incomplete-gamma tail
    for d in (1, 2):
        full, cut = tau_moments(1e-4, d, kmax=2_000_000), tau_moments(1e-4, d, kmax=20_000)
        np.testing.assert_allclose(cut, full, rtol=1e-9)
    for xi in (stats.halfcauchy(), log_squared_tail(), stats.lomax(0.3)):
        full, cut = tau_moments(2e-4, 1, xi, kmax=1_000_000), tau_moments(2e-4, 1, xi, kmax=5_000)
        np.testing.assert_allclose(cut, full, rtol=1e-8)


def test_unperturbed_limits():
    assert diffusivity(0.0, 1) == 0.0
    # d >= 2: delta -> 0 is continuous (dominated convergence, Section 2.4.6)
    assert diffusivity(1e-14, 2) == pytest.approx(diffusivity(0.0, 2), rel=1e-12)
    assert 0 < diffusivity(0.0, 3) < 1


def exact_dp_mean_square(n, delta, d):
    """E|S_n|^2 by exhaustive dynamic programming over (position, last direction, m): no renewal theory."""
    states = {}
    for u in range(2 * d):
        x = [0] * d
        x[u >> 1] += 1 - 2 * (u & 1)
        states[(tuple(x), u, 1)] = 1.0 / (2 * d)
    for _ in range(1, n):
        new = {}
        for (x, u, m), pr in states.items():
            q = max((1 + m) / (2 * d + m) - delta, 0.0)
            back = u ^ 1
            for w in range(2 * d):
                if w == back:
                    pw, mm = q, m + 1
                else:
                    pw, mm = (1 - q) / (2 * d - 1), 1
                if pw == 0:
                    continue
                y = list(x)
                y[w >> 1] += 1 - 2 * (w & 1)
                key = (tuple(y), w, mm)
                new[key] = new.get(key, 0.0) + pr * pw
        states = new
    return sum(pr * sum(c * c for c in x) for (x, _, _), pr in states.items())


@pytest.mark.parametrize("d,delta,n", [(1, 0.0, 14), (1, 0.1, 14), (2, 0.05, 8), (3, 0.2, 6)])
def test_mean_square_matches_path_dp(d, delta, n):
    M = mean_square(n, delta, d)
    assert M[n] == pytest.approx(exact_dp_mean_square(n, delta, d), rel=1e-10)


@pytest.mark.parametrize("d,delta", [(1, 0.1), (2, 0.1)])
def test_diffusivity_against_monte_carlo(d, delta):
    n, walkers = 3000, 20000
    x = simulate(n, walkers, delta, d, seed=11)
    s = (x.astype(float) ** 2).sum(axis=1) / n
    se = s.std(ddof=1) / math.sqrt(walkers)
    v = diffusivity(delta, d)
    assert abs(mean_square(n, delta, d)[n] / n - v) < 0.2 * se  # finite-n bias negligible at this n
    assert abs(s.mean() - v) < 3 * se


@pytest.mark.parametrize("d,delta,xi", [(1, 0.0, None), (2, 0.02, None), (3, 0.1, stats.expon())])
def test_mean_square_against_simulation(d, delta, xi):
    n, walkers = 60, 40000
    s = (simulate(n, walkers, delta, d, xi, seed=5).astype(float) ** 2).sum(axis=1)
    se = s.std(ddof=1) / math.sqrt(walkers)
    assert abs(s.mean() - mean_square(n, delta, d, xi)[n]) < 3 * se


def _two_sample_p(a, b):
    """Chi-square two-sample test on the values of two integer samples (bins pooled to >= 10 counts)."""
    values = np.union1d(a, b)
    ca = np.array([(a == v).sum() for v in values])
    cb = np.array([(b == v).sum() for v in values])
    rows, acc_a, acc_b = [], 0, 0
    for x, y in zip(ca, cb):
        acc_a, acc_b = acc_a + x, acc_b + y
        if acc_a + acc_b >= 20:
            rows.append((acc_a, acc_b))
            acc_a = acc_b = 0
    if acc_a + acc_b:
        rows[-1] = (rows[-1][0] + acc_a, rows[-1][1] + acc_b)
    return stats.chi2_contingency(np.array(rows)).pvalue


@pytest.mark.parametrize("d,delta,xi,f", [
    (1, 0.01, None, None),
    (1, 0.05, stats.expon(), None),
    (2, 0.1, None, None),
    (3, 0.0, None, lambda m: 2.0 * m),
    (1, 0.02, lambda i: stats.expon(scale=1.0 + 1.0 / i), None),
])
def test_event_driven_law_equals_step_by_step(d, delta, xi, f):
    n, walkers = 120, 15000
    fast = simulate(n, walkers, delta, d, xi, seed=1, f=f)
    slow = simulate_reference(n, walkers, delta, d, xi, seed=2, f=f)
    assert _two_sample_p(fast[:, 0], slow[:, 0]) > 1e-3
    assert _two_sample_p((fast ** 2).sum(1), (slow ** 2).sum(1)) > 1e-3


def test_simple_random_walk_limit():
    # f = -1 would be degenerate; f = 0 gives reuse probability 1/(2d): the simple random walk, E|S_n|^2 = n
    x = simulate(400, 20000, 0.0, 2, seed=3, f=lambda m: 0.0)
    s = (x.astype(float) ** 2).sum(axis=1)
    assert abs(s.mean() - 400) < 3 * s.std(ddof=1) / math.sqrt(s.size)


def test_simulate_is_reproducible_and_shaped():
    a = simulate(500, 300, 0.1, 2, seed=7)
    assert a.shape == (300, 2) and a.dtype == np.int64
    np.testing.assert_array_equal(a, simulate(500, 300, 0.1, 2, seed=7))
    assert np.all(np.abs(a).sum(axis=1) % 2 == 0)  # parity of S_n equals parity of n
    assert np.all(simulate(0, 5, 0.1) == 0)


def test_gamma_integral_matches_quadrature():
    for delta in [0.3, 1e-2, 1e-4]:
        assert float(gamma_integral(delta)) == pytest.approx(float(gamma_integral_quad(delta)), rel=1e-12)


@pytest.mark.parametrize("call", [
    lambda: diffusivity(-0.1), lambda: diffusivity(1.5), lambda: diffusivity(float("nan")),
    lambda: diffusivity(0.1, d=0), lambda: diffusivity(0.1, d=1.5), lambda: diffusivity(0.1, xi=stats.norm()),
    lambda: diffusivity(0.1, xi=lambda i: stats.uniform(-1, 2)), lambda: tau_survival([0, 1], 0.1),
    lambda: simulate(-1, 10, 0.1), lambda: simulate(10, 0, 0.1), lambda: simulate(10, 10, 2.0),
    lambda: mean_square(-3, 0.1), lambda: simulate(10, 10, 0.1, d=-2), lambda: diffusivity(0.1, xi="cauchy"),
])
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError, match=r"(delta|d|xi|xi\(1\)|n|n_steps|n_walkers|n_max) must"):
        call()
