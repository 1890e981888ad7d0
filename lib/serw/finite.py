"""Exact finite-n mean square displacement E|S_n|^2 from the renewal equations (no sampling noise).

Sojourn i starts at a renewal time with position S and direction u, lasts tau (i.i.d., p_t = P(tau = t)) and
moves the walk by u [tau odd]; the next direction u' satisfies E[u' | u, tau] = s_tau u / (2d - 1) with
s_t = +1 (t odd), -1 (t even). With R_m = P(renewal at m), A_m = E[|S|^2; renewal at m] and
B_m = E[S.u'; renewal at m], and generating functions P(z) = sum p_t z^t, P_o (odd t only), P_s (p_t s_t):

    R = 1 / (1 - P),   B = P_o R / (2d - 1 - P_s),   A = P_o (2B + R) R,
    M(z) = sum_n E|S_n|^2 z^n = A G + (2B + R) G_o,

where G(z) = sum_{r>=1} P(tau >= r) z^r and G_o keeps odd r (the walk is r traversals into its current
sojourn at time n). Power series are handled to order N with FFT products and Newton inversion.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve

from ._validate import check_count, check_d, check_delta, check_xi
from .renewal import reuse_probability


def _mul(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    return fftconvolve(a[:n], b[:n])[:n]


def _inverse(g: np.ndarray, n: int) -> np.ndarray:
    """1/g mod z^n (g[0] != 0) by Newton iteration h <- h (2 - g h)."""
    h = np.array([1.0 / g[0]])
    m = 1
    while m < n:
        m = min(2 * m, n)
        e = -_mul(g, h, m)
        e[0] += 2.0
        h = _mul(h, e, m)
    return h[:n]


def mean_square(n_max, delta, d=1, xi=None) -> np.ndarray:
    """E|S_n|^2 for n = 0..n_max, exactly (up to float64 rounding), for the walk of :func:`lib.serw.diffusivity`."""
    n_max = check_count(n_max, "n_max", 1)
    delta, d = check_delta(delta), check_d(d)
    check_xi(xi)
    N = n_max + 1
    q = reuse_probability(np.arange(1, N + 1), delta, d, xi)
    surv = np.concatenate([[1.0], np.cumprod(q)])  # surv[r-1] = P(tau >= r), r = 1..N+1
    p = np.zeros(N)
    p[1:] = surv[:N - 1] - surv[1:N]  # p_t = P(tau >= t) - P(tau >= t+1), t = 1..N-1
    odd = (np.arange(N) % 2 == 1)
    po = np.where(odd, p, 0.0)
    ps = np.where(odd, p, -p)
    R = _inverse(np.concatenate([[1.0], -p[1:]]), N)
    den = -ps.copy()
    den[0] += 2 * d - 1
    B = _mul(_mul(po, R, N), _inverse(den, N), N)
    C = 2 * B + R
    A = _mul(_mul(po, C, N), R, N)
    G = np.zeros(N)
    G[1:] = surv[:N - 1]
    Go = np.where(odd, G, 0.0)
    return _mul(A, G, N) + _mul(C, Go, N)
