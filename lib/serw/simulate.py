"""Monte Carlo of the perturbed SeRW: an event-driven sampler (one tau per edge) and a step-by-step reference.

Event-driven (:func:`simulate`): the walk is a sequence of edge sojourns. A sojourn starts at vertex x with
direction u, traverses the edge tau times (tau i.i.d., P(tau > n) = prod_{m<=n} q_m) and ends at
x + u [tau odd]; the next direction is uniform among the 2d - 1 directions other than the current edge's
(escape mass shared equally, Section 2.4.6). One tau per sojourn is drawn by inverse transform through a
2^16-bucket guide table (exact: impure buckets fall back to a binary search).

Step-by-step (:func:`simulate_reference`): every step draws a uniform (and in models II/III a fresh xi) and
compares it with the reuse probability (1 + f(m))/(2d + f(m)) - delta*xi: the plain definition, kept as the
reference for the law and the speed.
"""

from __future__ import annotations

import numpy as np

from ._validate import check_count, check_d, check_delta, check_xi
from .renewal import reinforced_reuse, reuse_probability

_BUCKETS = 1 << 16


def _survival_table(n_steps: int, delta: float, d: int, xi, f) -> np.ndarray:
    """G[n] = P(tau > n) for n = 0..n_steps."""
    if n_steps == 0:
        return np.ones(1)
    q = reuse_probability(np.arange(1, n_steps + 1), delta, d, xi, f)
    return np.concatenate([[1.0], np.cumprod(q)])


class _TauSampler:
    """Exact inverse-transform sampler of min(tau, n_steps + 1) from G = P(tau > n), n = 0..n_steps.

    V uniform on [0, 1) is read as a 16-bit bucket j plus a fraction; tau(V) = 1 + #{n >= 1: G[n] > V} is
    constant on bucket j unless some G[n] falls inside it: those "impure" buckets get an exact binary search
    with a fresh fraction, all others a table look-up.
    """

    def __init__(self, G: np.ndarray):
        self.negG = -G[1:]  # increasing
        self.cap = G.size  # n_steps + 1
        lo = np.arange(_BUCKETS) / _BUCKETS
        hi = (np.arange(_BUCKETS) + 1) / _BUCKETS
        c_lo = np.searchsorted(self.negG, -lo, side="left")  # #{n >= 1: G[n] > lo}
        c_hi = np.searchsorted(self.negG, -hi, side="right")  # #{n >= 1: G[n] >= hi}
        dtype = np.int16 if self.cap < np.iinfo(np.int16).max else np.int64
        table = np.minimum(1 + c_lo, self.cap).astype(dtype)
        table[c_lo != c_hi] = 0  # some G[n] lies inside the bucket
        self.table = table

    def __call__(self, rng: np.random.Generator, shape) -> np.ndarray:
        size = int(np.prod(shape))
        j = rng.bit_generator.random_raw((size + 3) // 4).view(np.uint16)[:size]
        tau = np.take(self.table, j, mode="clip")  # j < 2^16 = len(table): clip only skips the bounds check
        bad = np.flatnonzero(tau == 0)
        if bad.size:
            V = (j[bad] + rng.random(bad.size)) / _BUCKETS
            tau[bad] = np.minimum(1 + np.searchsorted(self.negG, -V, side="left"), self.cap)
        return tau.reshape(shape)


def _check(n_steps, n_walkers, delta, d, xi):
    n_steps = check_count(n_steps, "n_steps", 0)
    n_walkers = check_count(n_walkers, "n_walkers", 1)
    delta, d = check_delta(delta), check_d(d)
    check_xi(xi)
    return n_steps, n_walkers, delta, d


def simulate(n_steps, n_walkers, delta, d=1, xi=None, seed=None, f=None) -> np.ndarray:
    """Positions S_n (int64 array of shape (n_walkers, d)) of independent perturbed SeRWs after ``n_steps``.

    Event-driven: one tau per edge sojourn. ``xi``: None (model I), a frozen distribution (model II) or a
    callable i -> distribution (model III); ``f``: reinforcement N -> [-1, inf) (default f(m) = m).
    """
    n_steps, n_walkers, delta, d = _check(n_steps, n_walkers, delta, d, xi)
    rng = np.random.default_rng(seed)
    pos = np.zeros((n_walkers, d), dtype=np.int64)
    if n_steps == 0:
        return pos
    G = _survival_table(n_steps, delta, d, xi, f)
    sampler = _TauSampler(G)
    if d == 1:
        pos[:, 0] = _walk_1d(n_steps, n_walkers, sampler, float(G[:-1].sum()), rng)
        return pos
    idx = np.arange(n_walkers)  # walkers still moving
    t = np.zeros(n_walkers, dtype=np.int64)
    u = rng.integers(0, 2 * d, n_walkers)  # direction index: axis u >> 1, sign + for even u
    flat = pos.reshape(-1)
    rounds = 0
    while idx.size:
        tau = sampler(rng, idx.size).astype(np.int64)
        r = np.minimum(tau, n_steps - t)
        flat[idx * d + (u >> 1)] += (r & 1) * (1 - 2 * (u & 1))
        excl = np.where(tau & 1, u ^ 1, u)  # the current edge, seen from the current vertex
        j = rng.integers(0, 2 * d - 1, idx.size)
        u = j + (j >= excl)
        t += r
        rounds += 1
        if rounds % 16 == 0 or t.min() >= n_steps:
            keep = t < n_steps
            idx, t, u = idx[keep], t[keep], u[keep]
    return pos


def _walk_1d(n: int, W: int, sampler: _TauSampler, mean_tau: float, rng, B: int = 8) -> np.ndarray:
    """d = 1: sojourns drawn in groups of B. A group's displacement D (relative to its first direction) and
    its turn parity f (even sojourns turn the walk) are elementwise sums; only group totals need prefix sums,
    and the one group that straddles time n is replayed sojourn by sojourn."""
    pos = np.zeros(W, np.int64)
    t0 = np.zeros(W, np.int64)
    turn = rng.integers(0, 2, W).astype(np.int8)  # direction (-1)^turn
    live = np.arange(W)
    ng_blk = int(1.05 * n / (B * mean_tau)) + 2
    while live.size:
        cw = max(1, (1 << 18) // (ng_blk * B))
        for s in range(0, live.size, cw):
            rows = live[s:s + cw]
            tau = sampler(rng, (B, ng_blk, rows.size))
            odd = (tau & 1).astype(np.int8)
            D = np.zeros((ng_blk, rows.size), np.int8)
            f = np.zeros((ng_blk, rows.size), np.int8)
            for b in range(B):
                D += odd[b] * (1 - 2 * f)
                f ^= 1 - odd[b]
            cumT = np.cumsum(tau.sum(axis=0, dtype=np.int64), axis=0)
            rem = n - t0[rows]
            full = cumT <= rem
            F = (np.cumsum(f, axis=0, dtype=np.int8) - f + turn[rows]) & 1
            sign = 1 - 2 * F
            pos[rows] += (D * sign * full).sum(axis=0)
            ng = full.sum(axis=0)
            cross = np.flatnonzero(ng < ng_blk)
            if cross.size:  # replay the straddling group
                g = ng[cross]
                left = rem[cross] - np.where(g > 0, cumT[np.maximum(g - 1, 0), cross], 0)
                cs = sign[g, cross].astype(np.int64)
                disp = np.zeros(cross.size, np.int64)
                for b in range(B):
                    tb = tau[b, g, cross].astype(np.int64)
                    r = np.minimum(tb, left)
                    disp += (r & 1) * cs
                    left -= r
                    cs = np.where(tb & 1, cs, -cs)
                pos[rows[cross]] += disp
                t0[rows[cross]] = n
            done = np.flatnonzero(ng == ng_blk)
            t0[rows[done]] += cumT[-1, done]
            turn[rows[done]] = (F[-1, done] + f[-1, done]) & 1
        live = live[t0[live] < n]
        ng_blk = max(4, ng_blk // 4)
    return pos


def simulate_reference(n_steps, n_walkers, delta, d=1, xi=None, seed=None, f=None) -> np.ndarray:
    """The same law, one step at a time for all walkers (vectorised over walkers): the baseline."""
    n_steps, n_walkers, delta, d = _check(n_steps, n_walkers, delta, d, xi)
    kind, xi = check_xi(xi)
    rng = np.random.default_rng(seed)
    pos = np.zeros((n_walkers, d), dtype=np.int64)
    if n_steps == 0:
        return pos
    a_tab = reinforced_reuse(np.arange(1, n_steps + 1), d, f)
    q_tab = np.maximum(a_tab - delta, 0.0) if kind == "I" else None
    flat = pos.reshape(-1)
    rows = np.arange(n_walkers) * d
    last = rng.integers(0, 2 * d, n_walkers)  # direction of the last step
    flat[rows + (last >> 1)] += 1 - 2 * (last & 1)
    m = np.ones(n_walkers, dtype=np.int64)
    for _ in range(1, n_steps):
        U = rng.random(n_walkers)
        if kind == "I":
            reuse = U < q_tab[m - 1]
        elif kind == "II":
            reuse = U < a_tab[m - 1] - delta * xi.rvs(size=n_walkers, random_state=rng)
        else:
            thr = np.empty(n_walkers)
            for mm in np.unique(m):
                sel = m == mm
                thr[sel] = a_tab[mm - 1] - delta * xi(int(mm)).rvs(size=int(sel.sum()), random_state=rng)
            reuse = U < thr
        if d == 1:
            new = np.where(reuse, last ^ 1, last)
        else:
            j = rng.integers(0, 2 * d - 1, n_walkers)
            back = last ^ 1
            new = np.where(reuse, back, j + (j >= back))
        flat[rows + (new >> 1)] += 1 - 2 * (new & 1)
        m = np.where(reuse, m + 1, 1)
        last = new
    return pos
