"""The thresholding maps against brute-force minimisation on a fine grid (independent ground truth)."""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from lib.sparse.prox import prox_group_l0, prox_group_lasso, prox_l0, prox_l1, prox_tl1, tl1_penalty, tl1_threshold

GRID = np.linspace(-6, 6, 240_001)  # step 5e-5


def brute(x, t, pen):
    """argmin over the grid of 1/2 (y - x)^2 + t pen(y), for each x."""
    obj = 0.5 * (GRID[None, :] - x[:, None]) ** 2 + t * pen(GRID)[None, :]
    return GRID[np.argmin(obj, axis=1)], obj.min(axis=1)


def objective(y, x, t, pen):
    return 0.5 * (y - x) ** 2 + t * pen(y)


XS = np.concatenate([np.linspace(-4, 4, 161), [0.0, 1e-3, -1e-3]])


@pytest.mark.parametrize("t", [0.05, 0.5, 2.0])
def test_l0_l1_against_grid(t):
    for fn, pen in ((prox_l0, lambda y: (y != 0).astype(float)), (prox_l1, np.abs)):
        y = fn(XS, t)
        _, best = brute(XS, t, pen)
        # the map's value is a minimiser: its objective equals the grid minimum (up to grid resolution)
        assert np.all(objective(y, XS, t, pen) <= best + 1e-8)


@pytest.mark.parametrize("a,t", [(1.0, 0.05), (1.0, 0.2), (1.0, 0.25), (1.0, 1.0), (0.5, 0.02), (0.5, 0.5),
                                 (3.0, 0.3), (3.0, 3.0)])
def test_tl1_against_grid_both_branches(a, t):
    pen = lambda y: tl1_penalty(y, a)  # noqa: E731
    y = prox_tl1(XS, t, a)
    ybest, best = brute(XS, t, pen)
    assert np.all(objective(y, XS, t, pen) <= best + 1e-8)
    # and the minimiser itself agrees with the grid's where the minimiser is unique (away from the threshold)
    thr = tl1_threshold(t, a)
    away = np.abs(np.abs(XS) - thr) > 0.05
    assert np.allclose(y[away], ybest[away], atol=2e-4)


def test_tl1_threshold_branches_and_boundaries():
    a = 1.0
    # branch 1 (t <= a^2 / (2 (a + 1)) = 0.25): continuous, threshold t (a + 1) / a
    t = 0.1
    thr = tl1_threshold(t, a)
    assert thr == pytest.approx(0.2)
    assert prox_tl1(np.array([thr]), t, a)[0] == 0.0
    assert prox_tl1(np.array([thr + 1e-6]), t, a)[0] == pytest.approx(0.0, abs=1e-4)
    # branch 2: threshold sqrt(2 t (a + 1)) - a / 2, the map jumps there; both sides minimise equally
    t = 1.0
    thr = tl1_threshold(t, a)
    assert thr == pytest.approx(2.0 - 0.5)
    above = prox_tl1(np.array([thr + 1e-9]), t, a)[0]
    assert above > 0.3  # a jump
    pen = lambda y: tl1_penalty(y, a)  # noqa: E731
    assert objective(above, thr, t, pen) == pytest.approx(objective(0.0, thr, t, pen), abs=1e-6)
    # the two branch formulas meet at t = a^2 / (2 (a + 1))
    tb = a * a / (2 * (a + 1))
    assert tb * (a + 1) / a == pytest.approx(np.sqrt(2 * tb * (a + 1)) - a / 2)


def test_l0_boundary_and_zero_t():
    t = 0.5  # threshold 1
    assert prox_l0(np.array([1.0, 1.0 + 1e-12, -1.0 - 1e-12]), t).tolist() == [0.0, 1.0 + 1e-12, -1.0 - 1e-12]
    x = np.random.default_rng(0).standard_normal(50)
    for fn in (prox_l0, prox_l1, prox_tl1):
        assert np.array_equal(fn(x, 0.0), x)


def test_torch_matches_numpy_and_stays_put():
    x = np.random.default_rng(1).standard_normal((5, 4, 3, 3))
    xt = torch.tensor(x, dtype=torch.float64)
    for fn in (prox_l0, prox_l1, prox_tl1):
        out = fn(xt, 0.3)
        assert isinstance(out, torch.Tensor) and out.dtype == torch.float64 and out.device == xt.device
        assert np.allclose(out.numpy(), fn(x, 0.3), atol=1e-12)
    for fn in (prox_group_l0, prox_group_lasso):
        for dim in (0, 1):
            assert np.allclose(fn(xt, 0.8, dim).numpy(), fn(x, 0.8, dim), atol=1e-12)


def _group_objective(flat, w, t, dim, pen):
    y = flat.reshape(w.shape)
    norms = np.sqrt(np.sum(np.moveaxis(y, dim, 0).reshape(y.shape[dim], -1) ** 2, axis=1))
    return 0.5 * np.sum((y - w) ** 2) + t * pen(norms)


@pytest.mark.parametrize("dim", [0, 1])
def test_group_lasso_against_numerical_minimisation(dim):
    rng = np.random.default_rng(2)
    w = rng.standard_normal((3, 4, 2))
    w[:, 2] *= 0.1  # a small input-channel group
    w[1] *= 0.1  # a small output-channel group
    t = 0.7
    y = prox_group_lasso(w, t, dim)
    obj = lambda f: _group_objective(f, w, t, dim, np.sum)  # noqa: E731
    best = min((minimize(obj, x0, method="Powell", options={"xtol": 1e-10, "ftol": 1e-14, "maxiter": 200000})
                for x0 in (w.ravel(), y.ravel() + 0.01)), key=lambda r: r.fun)
    assert obj(y.ravel()) <= best.fun + 1e-8
    # subgradient optimality: for a non-zero group y_g - w_g + t y_g / |y_g| = 0; for a zero group |w_g| <= t
    wg = np.moveaxis(w, dim, 0).reshape(w.shape[dim], -1)
    yg = np.moveaxis(y, dim, 0).reshape(w.shape[dim], -1)
    for a, b in zip(wg, yg):
        if np.linalg.norm(b) > 0:
            assert np.allclose(b - a + t * b / np.linalg.norm(b), 0, atol=1e-12)
        else:
            assert np.linalg.norm(a) <= t


@pytest.mark.parametrize("dim", [0, 1])
def test_group_l0_against_enumeration(dim):
    rng = np.random.default_rng(3)
    w = rng.standard_normal((3, 4, 2)) * rng.uniform(0.1, 1.5, size=(1, 4, 1))
    t = 0.6
    y = prox_group_l0(w, t, dim)
    # the optimum keeps or zeroes each group: enumerate all 2^G patterns
    G = w.shape[dim]
    best = np.inf
    for pattern in range(2**G):
        keep = np.array([(pattern >> g) & 1 for g in range(G)], dtype=float)
        shape = [1] * w.ndim
        shape[dim] = G
        cand = w * keep.reshape(shape)
        best = min(best, 0.5 * np.sum((cand - w) ** 2) + t * keep.sum())
    val = 0.5 * np.sum((y - w) ** 2) + t * np.sum(np.any(np.moveaxis(y, dim, 0).reshape(G, -1) != 0, axis=1))
    assert val == pytest.approx(best, abs=1e-12)


def test_group_maps_all_zero_groups():
    w = np.zeros((2, 3, 3, 3))
    w[:, 1] = 1.0
    for fn in (prox_group_lasso, prox_group_l0):
        out = fn(w, 0.1, 1)
        assert np.all(out[:, 0] == 0) and np.all(out[:, 2] == 0) and np.all(np.isfinite(out))
        tout = fn(torch.zeros(2, 3, 3, 3), 0.1, 1)
        assert torch.all(tout == 0) and torch.all(torch.isfinite(tout))


def test_bad_input():
    with pytest.raises(ValueError, match="t "):
        prox_l1(np.ones(3), -0.1)
    with pytest.raises(ValueError, match="a "):
        prox_tl1(np.ones(3), 0.1, a=0.0)
    with pytest.raises(ValueError, match="a "):
        prox_tl1(np.ones(3), 0.1, a=-1.0)
    with pytest.raises(ValueError, match="dim"):
        prox_group_l0(np.ones((2, 2)), 0.1, dim=2)
    from lib.sparse.prox import prox
    with pytest.raises(ValueError, match="penalty"):
        prox("l2", np.ones(3), 0.1)
