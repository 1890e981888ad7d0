"""Small-delta asymptotics of Chapter 2: the incomplete-gamma integral, tail laws for model II, rate fits."""

from __future__ import annotations

import math

import mpmath
import numpy as np
from scipy import stats


def gamma_integral(delta: float, dps: int = 30) -> mpmath.mpf:
    """int_1^inf e^(-2 delta x) / x^(1 + 2 delta) dx = (2 delta)^(2 delta) Gamma(-2 delta, 2 delta) (Section 2.4.1)."""
    if not (isinstance(delta, (int, float)) and 0 < delta <= 1 and not math.isnan(delta)):
        raise ValueError(f"delta must be a real number in (0, 1], got {delta!r}")
    with mpmath.workdps(dps):
        k = 2 * mpmath.mpf(delta)
        return k ** k * mpmath.gammainc(-k, k)


def gamma_integral_quad(delta: float, dps: int = 30) -> mpmath.mpf:
    """The same integral by direct mpmath quadrature (an independent check)."""
    with mpmath.workdps(dps):
        k = 2 * mpmath.mpf(delta)
        return mpmath.quad(lambda x: mpmath.exp(-k * x) / x ** (1 + k), [1, 10, 1 / k, 10 / k, mpmath.inf])


class _LogSquaredTail(stats.rv_continuous):
    """xi = X - e with X of density 1/(x log^2 x) on [e, inf): P(xi > y) = 1 / log(y + e), infinite mean."""

    def _pdf(self, y):
        x = y + math.e
        return 1.0 / (x * np.log(x) ** 2)

    def _cdf(self, y):
        return 1.0 - 1.0 / np.log(y + math.e)

    def _sf(self, y):
        return 1.0 / np.log(y + math.e)

    def _ppf(self, u):
        return np.exp(1.0 / (1.0 - u)) - math.e

    def _isf(self, u):
        return np.exp(1.0 / u) - math.e


log_squared_tail = _LogSquaredTail(a=0.0, name="log_squared_tail")
"""Frozen-able scipy distribution with density ~ 1/(x log^2 x) (Section 2.4.4, Case 3)."""


def tail_examples(j: float = 0.5) -> dict:
    """The model II laws of the chapter: finite mean, x^-2, x^-(1+j) and 1/(x log^2 x) tails."""
    if not 0 < j < 1:
        raise ValueError(f"j must be in (0, 1), got {j!r}")
    return {
        "exponential": stats.expon(),
        "half-Cauchy": stats.halfcauchy(),
        f"Lomax j={j:g}": stats.lomax(j),
        "1/(x log^2 x)": log_squared_tail(),
    }


def effective_eps(delta: float, xi=None) -> float:
    """eps(delta) = delta E[min(xi, 1/delta)]: the model-I delta that model II acts like for long sojourns."""
    from .renewal import limited_mean

    if xi is None:
        return float(delta)
    return float(delta * limited_mean(xi, [1.0 / delta])[0])


def fit_log_rate(delta, v) -> dict:
    """Fit 1/v = A + B |log delta| (rate O(1/|log delta|)); report B, A and the worst relative residual."""
    x = np.abs(np.log(np.asarray(delta, float)))
    y = 1.0 / np.asarray(v, float)
    B, A = np.polyfit(x, y, 1)
    res = float(np.max(np.abs(A + B * x - y) / y))
    return {"slope": float(B), "intercept": float(A), "max_rel_residual": res}


def fit_loglog_rate(delta, v) -> dict:
    """Fit 1/v = A + B log|log delta| (rate O(1/log|log delta|))."""
    x = np.log(np.abs(np.log(np.asarray(delta, float))))
    y = 1.0 / np.asarray(v, float)
    B, A = np.polyfit(x, y, 1)
    res = float(np.max(np.abs(A + B * x - y) / y))
    return {"slope": float(B), "intercept": float(A), "max_rel_residual": res}


def fit_power(delta, gap, log_factor: bool = False) -> dict:
    """Fit log gap = log C + r log delta (+ log|log delta| if ``log_factor``): the exponent r of v - v0."""
    ld = np.log(np.asarray(delta, float))
    y = np.log(np.asarray(gap, float))
    if log_factor:
        y = y - np.log(np.abs(ld))
    r, logc = np.polyfit(ld, y, 1)
    res = float(np.max(np.abs(logc + r * ld - y)))
    return {"exponent": float(r), "C": float(math.exp(logc)), "max_log_residual": res}
