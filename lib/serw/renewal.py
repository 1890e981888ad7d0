"""The law of tau and the diffusion constant of the perturbed SeRW, from the renewal structure.

Notation (thesis Section 2.1-2.4, rederived). The walk with reinforcement f(m) = m re-traverses its
current edge after m consecutive traversals with probability

    a_m = (1 + m) / (2d + m)                                        (Section 2.1, f(m) = m)

lowered in model I by delta (floored at 0, Section 2.2.1), in model II by delta*xi_n with fresh i.i.d.
xi_n (Section 2.2.2) and in model III by delta*xi_m with xi_m's law indexed by the traversal count m
(the reading of Section 2.4.5). Averaging over a fresh xi,

    q_m = E[(a_m - delta*xi)^+] = a_m - delta * mu(a_m / delta),   mu(t) = E[min(xi, t)] = int_0^t P(xi > y) dy,

so tau, the number of consecutive traversals of one edge, has P(tau >= n) = prod_{m<n} q_m (2.4), (2.5),
and the successive sojourns on edges are i.i.d. For d >= 2 the thesis's perturbed probabilities do not sum to
one; we share the escape mass 1 - q_m equally among the other 2d - 1 edges, which leaves the law of tau as above.

Diffusion constant (Holmes and Sakai; (2.1)/(2.2) is its d = 1 case): with p = P(tau odd),

    v = d p / ((d - p) E[tau]).

E[tau] = sum_n P(tau >= n) and p = sum_n (-1)^(n-1) P(tau >= n) are summed directly up to a cut-off K and the
tail n > K from the model-I form q_m = (1 - eps)(m + c)/(m + 2d): an Euler-Maclaurin (resp. Boole) expansion
whose integral is a sum of upper incomplete gamma functions Gamma(1 - sigma - j, lambda K), evaluated with
mpmath (the d = 1, model I leading term is the thesis's (2 delta)^(2 delta) Gamma(-2 delta, 2 delta)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mpmath
import numpy as np

from ._validate import as_index_array, check_d, check_delta, check_xi

_GL_X, _GL_W = np.polynomial.legendre.leggauss(12)

#: Direct-summation cut-offs (number of terms) per model: beyond them the incomplete-gamma tail is used.
K_MAX = {"I": 2_000_000, "II": 100_000, "III": 1_000_000}
#: Model III: the law of xi_i is evaluated at every i <= III_EXACT and at III_PER_DECADE log-spaced i beyond.
III_EXACT = 64
III_PER_DECADE = 32
_TAIL_TERMS = 4  # terms of the 1/x expansion of Gamma(x + c) / Gamma(x + 2d)


def limited_mean(dist, t) -> np.ndarray:
    """mu(t) = E[min(xi, t)] = int_0^t P(xi > y) dy for an array of t >= 0 (vectorised Gauss-Legendre).

    The panels are the targets themselves plus a geometric grid of ratio 2 from y0 = 1e-13 min(t, median) up,
    12 nodes each; the piece [0, y0] is taken as its length times P(xi > y0/2) (error below 1e-13 t).
    Assumes xi has a density (the thesis's assumption), so P(xi > y) is smooth on each panel.
    """
    t = np.asarray(t, dtype=float)
    flat = t.ravel()
    out = np.zeros_like(flat)
    pos = flat > 0
    if not pos.any():
        return out.reshape(t.shape)
    tp = flat[pos]
    tmin, tmax = tp.min(), tp.max()
    med = float(dist.median())
    y0 = 1e-13 * min(tmin, med) if med > 1e-290 else 1e-13 * tmin
    n_geo = int(math.ceil(math.log2(tmax) - math.log2(y0))) + 1
    geo = 2.0 ** (math.log2(y0) + np.arange(n_geo + 1))
    edges = np.unique(np.concatenate([[y0], geo[geo < tmax], tp]))
    lo, hi = edges[:-1], edges[1:]
    half, mid = 0.5 * (hi - lo), 0.5 * (hi + lo)
    nodes = mid[:, None] + half[:, None] * _GL_X[None, :]
    pieces = (dist.sf(nodes) * _GL_W[None, :]).sum(axis=1) * half
    cum = np.concatenate([[0.0], np.cumsum(pieces)]) + y0 * float(dist.sf(0.5 * y0))
    out[pos] = cum[np.searchsorted(edges, tp)]
    return out.reshape(t.shape)


def reinforced_reuse(k: np.ndarray, d: int, f=None) -> np.ndarray:
    """a_k = (1 + f(k)) / (2d + f(k)): the unperturbed probability of re-traversing the current edge."""
    fk = np.asarray(k, dtype=float) if f is None else np.asarray([float(f(int(i))) for i in np.ravel(k)]).reshape(
        np.shape(k))
    if f is not None and np.any(fk < -1):
        raise ValueError("f must map N to [-1, inf)")
    return (1.0 + fk) / (2.0 * d + fk)


def _model3_eps(kmax: int, delta: float, d: int, xi) -> np.ndarray:
    """eps_k = delta * E[min(xi_k, a_k/delta)] for k = 1..kmax: exact at i <= III_EXACT and at log-spaced
    nodes beyond, cubic-spline interpolation in log i in between (about 1e-9 relative for smooth laws)."""
    from scipy.interpolate import CubicSpline

    nodes = np.arange(1, min(kmax, III_EXACT) + 1)
    if kmax > III_EXACT:
        n_dec = math.log10(kmax / III_EXACT)
        far = np.unique(np.round(III_EXACT * 10 ** np.linspace(0, n_dec, max(2, int(n_dec * III_PER_DECADE) + 1))))
        nodes = np.unique(np.concatenate([nodes, far.astype(np.int64), [kmax]]))
    a = reinforced_reuse(nodes, d)
    eps = np.array([delta * float(limited_mean(xi(int(i)), [ai / delta])[0]) for i, ai in zip(nodes, a)])
    if kmax <= III_EXACT:
        return eps
    k = np.arange(1, kmax + 1)
    out = np.empty(kmax)
    out[:III_EXACT] = eps[:III_EXACT]
    out[III_EXACT:] = CubicSpline(np.log(nodes), eps)(np.log(k[III_EXACT:]))
    return out


def reuse_probability(k, delta, d=1, xi=None, f=None) -> np.ndarray:
    """q_k: probability that the walk re-traverses its current edge after k consecutive traversals.

    Model I (xi None): max(a_k - delta, 0); model II (frozen xi): a_k - delta*E[min(xi, a_k/delta)];
    model III (callable xi): the same with xi_k. ``f`` replaces the identity reinforcement f(m) = m.
    """
    delta, d = check_delta(delta), check_d(d)
    kind, xi = check_xi(xi)
    k = as_index_array(k, "k")
    a = reinforced_reuse(k, d, f)
    if delta == 0.0:
        return a
    if kind == "I":
        return np.maximum(a - delta, 0.0)
    if kind == "II":
        return np.maximum(a - delta * limited_mean(xi, a / delta), 0.0)
    out = np.empty(k.shape)
    for idx in np.ndindex(k.shape):
        out[idx] = a[idx] - delta * float(limited_mean(xi(int(k[idx])), [a[idx] / delta])[0])
    return np.maximum(out, 0.0)


@dataclass
class TauLaw:
    """P(tau >= n) for n <= K + 1 (``logp[n-1]``) and the model-I-form tail q_m = (1-eps)(m+c)/(m+2d), m > K."""

    logp: np.ndarray
    K: int
    d: int
    lam: float  # -log(1 - eps)
    c: float
    dead: bool  # P(tau >= 2) = 0

    @property
    def sigma(self) -> float:
        return 2 * self.d - self.c

    def _coeffs(self):
        """e_k of log Gamma(x+c) - log Gamma(x+2d) = -sigma log x + sum_k e_k x^-k, and h_j of exp(sum e_k x^-k)."""
        c, b = mpmath.mpf(self.c), mpmath.mpf(2 * self.d)
        e = [(-1) ** (k + 1) * (mpmath.bernpoly(k + 1, c) - mpmath.bernpoly(k + 1, b)) / (k * (k + 1))
             for k in range(1, _TAIL_TERMS + 1)]
        coeffs = mpmath.taylor(lambda u: mpmath.exp(sum(ek * u ** (i + 1) for i, ek in enumerate(e))), 0,
                               _TAIL_TERMS)
        return e, coeffs  # coeffs[0] = 1

    def _log_ratio(self, x, e):
        """log Gamma(x+c)/Gamma(x+2d) by its asymptotic series (x >= K+1 >= 1000: error < 1e-18)."""
        x = np.asarray(x, dtype=float)
        return -self.sigma * np.log(x) + sum(float(ek) * x ** -(i + 1) for i, ek in enumerate(e))

    def log_survival(self, n) -> np.ndarray:
        """log P(tau >= n) for an integer array n >= 1."""
        n = as_index_array(n)
        out = np.empty(n.shape)
        inside = n <= self.K + 1
        out[inside] = self.logp[n[inside] - 1]
        if (~inside).any():
            x = n[~inside].astype(float)
            e, _ = self._coeffs()
            X = float(self.K + 1)
            out[~inside] = (self.logp[self.K] - self.lam * (x - X) + self._log_ratio(x, e)
                            - self._log_ratio(np.array([X]), e)[0])
            if self.dead:
                out[~inside] = -np.inf
        return out

    def sums(self) -> tuple[float, float]:
        """(E[tau], P(tau odd)): direct sums to K+1, then the incomplete-gamma (Euler-Maclaurin/Boole) tail."""
        p = np.exp(self.logp)
        mean = float(np.sum(p))  # pairwise summation: relative error ~1e-15
        odd = float(np.sum(p[0::2]) - np.sum(p[1::2]))
        if self.dead or p[-1] == 0.0:
            return mean, odd
        mp = mpmath.mp
        with mpmath.workdps(30):
            e, h = self._coeffs()
            X = mpmath.mpf(self.K + 1)
            lam, sig = mpmath.mpf(self.lam), mpmath.mpf(self.sigma)
            series_at = sum(h[j] * X ** -j for j in range(len(h)))
            dlog = -lam - sig / X - sum((k + 1) * e[k] * X ** -(k + 2) for k in range(len(e)))
            gX = mp.mpf(p[-1])
            # Boole: sum_{n >= K+2} (-1)^(n-1) g(n) = (-1)^(K+1) (g(Y)/2 - g'(Y)/4), Y = K+2, g(Y) = g(X) e^{...}
            gY = gX * mpmath.exp(dlog)
            tail_odd = (-1) ** (self.K + 1) * gY * (mpmath.mpf(1) / 2 - dlog / 4)
            if lam == 0:
                if sig <= 1:
                    return math.inf, odd + float(tail_odd)  # E[tau] = infinity (d = 1, no perturbation)
                integ = sum(h[j] * X ** (1 - sig - j) / (sig + j - 1) for j in range(len(h)))
            else:
                integ = sum(h[j] * lam ** (sig + j - 1) * mpmath.gammainc(1 - sig - j, lam * X)
                            for j in range(len(h))) * mpmath.exp(lam * X)
            ratio_int = integ * X ** sig / series_at  # int_X^inf g / g(X)
            tail_mean = gX * (ratio_int - mpmath.mpf(1) / 2 - dlog / 12)  # sum_{n >= K+2} g(n)
        return mean + float(tail_mean), odd + float(tail_odd)


def tau_law(delta, d=1, xi=None, kmax: int | None = None) -> TauLaw:
    """Build the :class:`TauLaw` of the perturbed walk (f(m) = m); ``kmax`` overrides the direct cut-off."""
    delta, d = check_delta(delta), check_d(d)
    kind, xi = check_xi(xi)
    if delta == 0.0:
        kind = "I"
    # effective perturbation of the tail: q_m ~ (1 - eps) - (1 - s) (2d-1)/(m+2d) as m -> infinity
    if kind == "I":
        eps, s = delta, 0.0
    elif kind == "II":
        eps, s = delta * float(limited_mean(xi, [1.0 / delta])[0]), float(xi.sf(1.0 / delta))
    else:
        eps = None
    kcap = K_MAX[kind] if kmax is None else int(kmax)
    if kind != "III":
        lam = -math.log1p(-eps) if eps < 1 else math.inf
        K = int(min(kcap, max(1000, math.ceil(60.0 / lam) if lam > 0 else kcap)))
    else:
        K = kcap
    k = np.arange(1, K + 1)
    a = reinforced_reuse(k, d)
    if kind == "I":
        q = np.maximum(a - delta, 0.0)
    elif kind == "II":
        q = np.maximum(a - delta * limited_mean(xi, a / delta), 0.0)
    else:
        eps_k = _model3_eps(K, delta, d, xi)
        q = np.maximum(a - eps_k, 0.0)
        last = xi(K)  # beyond K the law of xi_K is kept (exact when xi_i's law is constant for i >= K)
        eps, s = eps_k[-1] + delta * float(limited_mean(last, [1.0 / delta])[0]) - delta * float(
            limited_mean(last, [a[-1] / delta])[0]), float(last.sf(1.0 / delta))
        lam = -math.log1p(-eps) if eps < 1 else math.inf
    with np.errstate(divide="ignore"):
        logq = np.log(q)
    logp = np.concatenate([[0.0], np.cumsum(logq)])
    dead = bool(q[0] == 0.0)
    if not math.isfinite(lam):
        lam, dead = 1e300, True
    c = 2 * d - (1.0 - s) * (2 * d - 1) / (1.0 - eps) if eps < 1 else 0.0
    return TauLaw(logp=logp, K=K, d=d, lam=lam, c=c, dead=dead)


def tau_survival(n, delta, d=1, xi=None) -> np.ndarray:
    """P(tau >= n) for an integer array n >= 1 ((2.4)-(2.5), Section 2.4.6 for d >= 2)."""
    n = as_index_array(n)
    law = tau_law(delta, d, xi)
    return np.exp(law.log_survival(n))


def tau_moments(delta, d=1, xi=None, kmax: int | None = None) -> tuple[float, float]:
    """(E[tau], P(tau odd)) of the perturbed walk (direct summation plus incomplete-gamma tail)."""
    return tau_law(delta, d, xi, kmax).sums()


def diffusion_from_moments(mean: float, odd: float, d: int) -> float:
    """Holmes-Sakai: v = d p / ((d - p) E[tau]), p = P(tau odd); (2.1)/(2.2) is d = 1."""
    if math.isinf(mean):
        return 0.0
    if d == 1 and odd >= 1.0:
        return math.inf  # tau = 1 almost surely: the one-dimensional walk is ballistic
    return d * odd / ((d - odd) * mean)


def diffusivity(delta, d=1, xi=None) -> float:
    """Diffusion constant v = lim E|S_n|^2 / n of the perturbed SeRW with f(m) = m on Z^d.

    ``xi=None``: model I; ``xi`` a frozen distribution on [0, inf): model II; ``xi`` a callable
    i -> frozen distribution: model III (xi indexed by the traversal count, Section 2.4.5; beyond
    i = K_MAX["III"] the law of xi_K is kept). ``delta = 0`` gives the unperturbed walk (v = 0 for d = 1).
    """
    mean, odd = tau_moments(delta, d, xi)
    return diffusion_from_moments(mean, odd, check_d(d))
