"""The one-layer non-overlap network of Chapter 3 and the splitting algorithms on it.

The network (Section 3.1.1): a filter ``w`` in R^d shared by ``k`` hidden nodes, each seeing
its own patch ``x[i]`` of an input ``x`` in R^{k x d} with i.i.d. N(0, 1) entries,
``L(x; w) = (1/k) sum_i sigma(w . x[i])``, data labelled by a teacher ``w*``.

* ReLU ``sigma``: the population loss ``f(w) = E (L(x; w) - L(x; w*))^2`` in closed form (3.2),
  built from Lemma 1's ``g(u, v) = E sigma(u.x) sigma(v.x) = |u||v| (sin t + (pi - t) cos t) / (2 pi)``,
  ``f(w) = [a (|w|^2 + |w*|^2) - 2 k g(w, w*) - 2 b |w||w*|] / k^2`` with ``b = (k^2 - k) / (2 pi)``,
  ``a = b + k / 2``; its gradient (3.16) (derived from the same expression, so ``grad f = 0`` at
  Lemma 4's three critical points).
* Binarized ``sigma(z) = 1{z > 0}`` (Section 3.1.2, ``|w*| = 1``): ``f(w) = k theta / pi``;
  the coarse gradient (3.6) replaces ``sigma'`` by the ReLU derivative,
  ``g(w, Z) = Z^T 1{Zw > 0} (1^T sigma(Zw) - 1^T sigma(Zw*))``, whose expectation (3.23) is
  ``k / sqrt(2 pi) [w/|w| - cos(theta/2) (w/|w| + w*) / |w/|w| + w*|]``, i.e.
  ``k / (2 sqrt(2 pi)) (w - w*)`` on the unit sphere (3.26).
* Algorithm 1 (RVSM), Algorithm 2 (RVSCGD, with the normalisation of ``w``) and ADMM (3.11) with
  its gradient-step ``w`` update, for the penalties ``l0``, ``l1`` and ``tl1``; each returns the
  whole trajectory.
"""

from __future__ import annotations

import math

import numpy as np

from lib.sparse.prox import prox, tl1_penalty

PENALTIES = ("l0", "l1", "tl1")

__all__ = ["angle", "g_relu", "population_loss", "population_grad", "network", "sample_inputs", "empirical_loss",
           "critical_points", "binary_population_loss", "coarse_grad", "expected_coarse_grad", "penalty_value",
           "rvsm", "rvscgd", "admm", "limit_residual"]


# ----- checks -----------------------------------------------------------------------------------
def _vec(w, name: str) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 1 or w.size < 1:
        raise ValueError(f"{name} must be a non-empty 1-D vector, got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"{name} must be finite")
    return w


def _teacher(w_star) -> np.ndarray:
    w_star = _vec(w_star, "w_star")
    if not np.linalg.norm(w_star) > 0:
        raise ValueError("w_star must be non-zero (|w_star| > 0)")
    return w_star


def _k(k) -> int:
    if int(k) != k or k < 1:
        raise ValueError(f"k (number of patches) must be an integer >= 1, got {k!r}")
    return int(k)


def _hyper(lr, beta, lam, penalty, a, steps) -> None:
    if not lr > 0:
        raise ValueError(f"lr (step size eta) must be > 0, got {lr}")
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if not lam >= 0:
        raise ValueError(f"lam (lambda) must be >= 0, got {lam}")
    if penalty not in PENALTIES:
        raise ValueError(f"penalty must be one of {PENALTIES}, got {penalty!r}")
    if not a > 0:
        raise ValueError(f"a (transformed-l1 parameter) must be > 0, got {a}")
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")


# ----- geometry and the ReLU network --------------------------------------------------------------
def angle(u, v) -> float:
    """The angle ``theta(u, v)`` in [0, pi]."""
    u, v = np.asarray(u, float), np.asarray(v, float)
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    if nu == 0 or nv == 0:
        return float("nan")
    return float(np.arccos(np.clip(u @ v / (nu * nv), -1.0, 1.0)))


def g_relu(u, v) -> float:
    """Lemma 1: ``E[relu(u.x) relu(v.x)] = |u||v| (sin t + (pi - t) cos t) / (2 pi)``, (3.1)."""
    nu, nv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
    if nu == 0 or nv == 0:
        return 0.0
    t = angle(u, v)
    return nu * nv * (math.sin(t) + (math.pi - t) * math.cos(t)) / (2 * math.pi)


def _ab(k: int) -> tuple[float, float]:
    b = (k * k - k) / (2 * math.pi)
    return b + k / 2, b


def population_loss(w, w_star, k: int) -> float:
    """The population risk (3.2) of the non-overlap ReLU network."""
    w, w_star, k = _vec(w, "w"), _teacher(w_star), _k(k)
    a, b = _ab(k)
    nw, ns = np.linalg.norm(w), np.linalg.norm(w_star)
    return float((a * (nw**2 + ns**2) - 2 * k * g_relu(w, w_star) - 2 * b * nw * ns) / k**2)


def population_grad(w, w_star, k: int) -> np.ndarray:
    """The gradient (3.16) of (3.2) (``w != 0``):

    ``[(k + 2b - k |w*| sin t / (pi |w|) - 2b |w*| / |w|) w - k (pi - t) w* / pi] / k^2``.
    """
    w, w_star, k = _vec(w, "w"), _teacher(w_star), _k(k)
    nw = np.linalg.norm(w)
    if nw == 0:
        raise ValueError("f is not differentiable at w = 0 (Lemma 4): w must be non-zero")
    _, b = _ab(k)
    ns, t = np.linalg.norm(w_star), angle(w, w_star)
    coef = k + 2 * b - k * ns * math.sin(t) / (math.pi * nw) - 2 * b * ns / nw
    return (coef * w - k * (math.pi - t) / math.pi * w_star) / k**2


def network(x, w, activation: str = "relu") -> np.ndarray:
    """``L(x; w) = (1/k) sum_i sigma(w . x[i])`` for inputs ``x`` of shape (n, k, d)."""
    z = np.asarray(x) @ np.asarray(w, float)
    if activation == "relu":
        s = np.maximum(z, 0.0)
    elif activation == "binary":
        s = (z > 0).astype(float)
    else:
        raise ValueError(f"activation must be 'relu' or 'binary', got {activation!r}")
    return s.mean(axis=-1)


def sample_inputs(n: int, k: int, d: int, seed: int = 0) -> np.ndarray:
    """``n`` Gaussian inputs of shape (k, d) (the distribution G of Section 3.1.1)."""
    if n < 1 or d < 1:
        raise ValueError(f"n and d must be >= 1, got n={n}, d={d}")
    return np.random.default_rng(seed).standard_normal((n, _k(k), d))


def empirical_loss(w, w_star, k: int, n: int = 100_000, seed: int = 0) -> tuple[float, float]:
    """Monte Carlo estimate of (3.2) on ``n`` sampled inputs: (mean, standard error)."""
    w, w_star, k = _vec(w, "w"), _teacher(w_star), _k(k)
    x = sample_inputs(n, k, w.size, seed)
    sq = (network(x, w) - network(x, w_star)) ** 2
    return float(sq.mean()), float(sq.std(ddof=1) / math.sqrt(n))


def critical_points(w_star, k: int) -> dict:
    """Lemma 4: local maximum 0, global minimum ``w*``, saddle ``-(k^2 - k) / (k^2 + (pi - 1) k) w*``."""
    w_star, k = _teacher(w_star), _k(k)
    c = (k * k - k) / (k * k + (math.pi - 1) * k)
    return {"max": np.zeros_like(w_star), "min": w_star.copy(), "saddle": -c * w_star}


# ----- the binarized network ---------------------------------------------------------------------
def binary_population_loss(w, w_star, k: int) -> float:
    """``f(w) = k theta(w, w*) / pi`` for the binarized activation (3.4) (each patch disagrees w.p. theta/pi)."""
    return _k(k) * angle(_vec(w, "w"), _teacher(w_star)) / math.pi


def coarse_grad(w, w_star, z) -> np.ndarray:
    """The coarse gradient (3.6) for one input ``Z`` (k, d), or averaged over a batch (n, k, d)."""
    w, w_star = _vec(w, "w"), _teacher(w_star)
    z = np.asarray(z, float)
    if z.ndim == 2:
        z = z[None]
    zw = z @ w
    resid = (zw > 0).sum(-1) - (z @ w_star > 0).sum(-1)  # 1^T sigma(Zw) - 1^T sigma(Zw*)
    per = np.einsum("nkd,nk->nd", z, (zw > 0).astype(float)) * resid[:, None]
    return per.mean(0)


def expected_coarse_grad(w, w_star, k: int) -> np.ndarray:
    """(3.23): ``E_Z g(w, Z) = k / sqrt(2 pi) [w/|w| - cos(theta/2) (w/|w| + w^) / |w/|w| + w^|]``, ``w^ = w*/|w*|``."""
    w, w_star, k = _vec(w, "w"), _teacher(w_star), _k(k)
    nw = np.linalg.norm(w)
    if nw == 0:
        raise ValueError("w must be non-zero")
    wh, sh = w / nw, w_star / np.linalg.norm(w_star)
    s = wh + sh
    ns = np.linalg.norm(s)
    t = angle(w, w_star)
    bis = s / ns if ns > 0 else np.zeros_like(s)
    return k / math.sqrt(2 * math.pi) * (wh - math.cos(t / 2) * bis)


# ----- penalties and algorithms ------------------------------------------------------------------
def penalty_value(u, penalty: str, a: float = 1.0) -> float:
    """``P(u)``: ``||u||_0``, ``||u||_1`` or ``sum rho_a(u_i)``."""
    u = np.asarray(u, float)
    if penalty == "l0":
        return float(np.count_nonzero(u))
    if penalty == "l1":
        return float(np.abs(u).sum())
    if penalty == "tl1":
        return float(tl1_penalty(u, a).sum())
    raise ValueError(f"penalty must be one of {PENALTIES}, got {penalty!r}")


def _record(ws, us, lag, th, fs, zs=None) -> dict:
    out = {"w": np.array(ws), "u": np.array(us), "lagrangian": np.array(lag), "theta": np.array(th),
           "f": np.array(fs)}
    if zs is not None:
        out["z"] = np.array(zs)
    return out


def rvsm(w0, w_star, k: int, lr: float = 0.01, beta: float = 0.1, lam: float = 0.01, penalty: str = "l1",
         a: float = 1.0, steps: int = 2000) -> dict:
    """Algorithm 1 with the exact population gradient:

    ``w^{t+1} = w^t - lr grad f(w^t) - lr beta (w^t - u^t)``, ``u^{t+1} = prox_{lam/beta}(w^{t+1})``,
    ``u^0 = prox(w^0)``. Returns arrays ``w``, ``u`` (steps + 1 rows), the Lagrangian (3.9)
    ``L_beta(w^t, u^t)``, the angle ``theta(w^t, w*)`` and ``f(w^t)``.
    """
    w, w_star, k = _vec(w0, "w0").copy(), _teacher(w_star), _k(k)
    _hyper(lr, beta, lam, penalty, a, steps)
    t = lam / beta
    u = prox(penalty, w, t, a)
    ws, us, lag, th, fs = [], [], [], [], []
    for step in range(steps + 1):
        f = population_loss(w, w_star, k)
        ws.append(w.copy()), us.append(u.copy()), fs.append(f), th.append(angle(w, w_star))
        lag.append(f + lam * penalty_value(u, penalty, a) + beta / 2 * float(np.sum((w - u) ** 2)))
        if step == steps:
            break
        w = w - lr * population_grad(w, w_star, k) - lr * beta * (w - u)
        u = prox(penalty, w, t, a)
    return _record(ws, us, lag, th, fs)


def rvscgd(w0, w_star, k: int, lr: float = 0.01, beta: float = 0.1, lam: float = 0.01, penalty: str = "l1",
           a: float = 1.0, steps: int = 2000, batch: int | None = None, seed: int = 0) -> dict:
    """Algorithm 2 (RVSCGD) on the binarized network, ``|w*| = 1`` assumed (``w*`` is normalised).

    ``w~ = w^t - lr (E_Z g(w^t, Z) + beta (w^t - u^t))``, ``w^{t+1} = w~ / |w~|``,
    ``u^{t+1} = prox_{lam/beta}(w^{t+1})``. With ``batch`` the expected coarse gradient is replaced
    by its average over ``batch`` sampled inputs (the stochastic version). The Lagrangian is
    ``f(w) + lam P(u) + beta/2 |w - u|^2`` with ``f = k theta / pi``.
    """
    w_star, k = _teacher(w_star), _k(k)
    w_star = w_star / np.linalg.norm(w_star)
    w = _vec(w0, "w0").copy()
    if not np.linalg.norm(w) > 0:
        raise ValueError("w0 must be non-zero")
    w = w / np.linalg.norm(w)
    _hyper(lr, beta, lam, penalty, a, steps)
    rng = np.random.default_rng(seed)
    t = lam / beta
    u = prox(penalty, w, t, a)
    ws, us, lag, th, fs = [], [], [], [], []
    for step in range(steps + 1):
        f = binary_population_loss(w, w_star, k)
        ws.append(w.copy()), us.append(u.copy()), fs.append(f), th.append(angle(w, w_star))
        lag.append(f + lam * penalty_value(u, penalty, a) + beta / 2 * float(np.sum((w - u) ** 2)))
        if step == steps:
            break
        if batch is None:
            g = expected_coarse_grad(w, w_star, k)
        else:
            g = coarse_grad(w, w_star, rng.standard_normal((batch, k, w.size)))
        w = w - lr * (g + beta * (w - u))
        w = w / np.linalg.norm(w)
        u = prox(penalty, w, t, a)
    return _record(ws, us, lag, th, fs)


def admm(w0, w_star, k: int, lr: float = 0.01, beta: float = 0.1, lam: float = 0.01, penalty: str = "l1",
         a: float = 1.0, steps: int = 2000) -> dict:
    """ADMM (3.11) with the ``w`` argmin replaced by one gradient step on the Lagrangian (3.10):

    ``w <- w - lr (grad f(w) + z + beta (w - u))``, ``u <- prox_{lam/beta}(w + z / beta)``,
    ``z <- z + beta (w - u)``. Returns the trajectory and the multiplier ``z``; the recorded
    Lagrangian is (3.10).
    """
    w, w_star, k = _vec(w0, "w0").copy(), _teacher(w_star), _k(k)
    _hyper(lr, beta, lam, penalty, a, steps)
    t = lam / beta
    z = np.zeros_like(w)
    u = prox(penalty, w, t, a)
    ws, us, lag, th, fs, zs = [], [], [], [], [], []
    for step in range(steps + 1):
        f = population_loss(w, w_star, k)
        ws.append(w.copy()), us.append(u.copy()), fs.append(f), th.append(angle(w, w_star)), zs.append(z.copy())
        lag.append(f + lam * penalty_value(u, penalty, a) + float(z @ (w - u)) + beta / 2 * float(np.sum((w - u) ** 2)))
        if step == steps:
            break
        w = w - lr * (population_grad(w, w_star, k) + z + beta * (w - u))
        u = prox(penalty, w + z / beta, t, a)
        z = z + beta * (w - u)
    return _record(ws, us, lag, th, fs, zs)


def limit_residual(w, u, w_star, k: int, beta: float) -> dict:
    """How well a limit ``(w, u)`` satisfies (3.13): ``w* = pi k / (pi - theta) beta (w - u) + C w``.

    Returns ``C`` (least squares) and the relative norm of the part of
    ``w* - pi k / (pi - theta) beta (w - u)`` orthogonal to ``w`` (0 when (3.13) holds exactly).
    """
    w, u, w_star, k = _vec(w, "w"), _vec(u, "u"), _teacher(w_star), _k(k)
    t = angle(w, w_star)
    r = w_star - math.pi * k / (math.pi - t) * beta * (w - u)
    c = float(r @ w / (w @ w))
    return {"C": c, "rel_residual": float(np.linalg.norm(r - c * w) / np.linalg.norm(w_star)), "theta": t}
