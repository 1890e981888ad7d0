"""Input checks shared by :mod:`lib.serw` (bad input -> ``ValueError`` naming the parameter and its range)."""

from __future__ import annotations

import math
import numbers

import numpy as np


def check_delta(delta) -> float:
    """``delta`` must be a real number in [0, 1]."""
    if isinstance(delta, bool) or not isinstance(delta, numbers.Real):
        raise ValueError(f"delta must be a real number in [0, 1], got {delta!r}")
    delta = float(delta)
    if math.isnan(delta) or not 0.0 <= delta <= 1.0:
        raise ValueError(f"delta must be a real number in [0, 1], got {delta!r}")
    return delta


def check_d(d) -> int:
    """``d`` must be an integer >= 1."""
    if isinstance(d, bool) or not isinstance(d, numbers.Integral) or int(d) < 1:
        raise ValueError(f"d must be an integer >= 1 (the lattice dimension), got {d!r}")
    return int(d)


def check_count(value, name: str, minimum: int = 0) -> int:
    """A non-negative (or >= ``minimum``) integer count such as ``n_steps``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_frozen(dist, name: str = "xi"):
    """A frozen scipy.stats distribution carried by [0, inf)."""
    if not (hasattr(dist, "sf") and hasattr(dist, "support") and hasattr(dist, "cdf")):
        raise ValueError(f"{name} must be a frozen scipy.stats distribution on [0, inf), got {dist!r}")
    lo = float(dist.support()[0])
    if math.isnan(lo) or lo < 0.0 or float(dist.cdf(-1e-300)) > 0.0:
        raise ValueError(f"{name} must be a distribution on [0, inf) (no mass below 0); its support starts at {lo}")
    return dist


def check_xi(xi):
    """``None`` (model I), a frozen distribution (model II) or a callable i -> frozen distribution (model III).

    Returns ``(kind, xi)`` with kind in {"I", "II", "III"}.
    """
    if xi is None:
        return "I", None
    if hasattr(xi, "sf"):
        return "II", check_frozen(xi)
    if callable(xi):
        check_frozen(xi(1), "xi(1)")
        return "III", xi
    raise ValueError(f"xi must be None, a frozen scipy.stats distribution on [0, inf) or a callable "
                     f"i -> such a distribution, got {xi!r}")


def as_index_array(n, name: str = "n") -> np.ndarray:
    """Integer array of indices >= 1."""
    arr = np.asarray(n)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"{name} must hold integers >= 1, got dtype {arr.dtype}")
    if arr.size and arr.min() < 1:
        raise ValueError(f"{name} must hold integers >= 1, got minimum {arr.min()}")
    return arr.astype(np.int64)
