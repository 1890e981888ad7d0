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
    return _walk_nd(n_steps, n_walkers, d, sampler, float(G[:-1].sum()), rng)


def _walk_nd(n: int, W: int, d: int, sampler: _TauSampler, mean_tau: float, rng, B: int = 8) -> np.ndarray:
    """d >= 2: sojourns in groups of B. After a sojourn the next direction keeps the axis with probability
    1/(2d-1) (sign flipped iff tau was even), else moves to an axis shifted by k in 1..d-1 with a fresh sign:
    one draw w in {0..2d-2} per sojourn. Within a group the relative axis offset and sign are elementwise;
    group starts need prefix sums only; the group straddling time n is replayed sojourn by sojourn."""
    pos = np.zeros((W, d), np.int64)
    t0 = np.zeros(W, np.int64)
    axis = rng.integers(0, d, W)  # direction of the next sojourn: axis and sign (-1)^par
    par = rng.integers(0, 2, W).astype(np.int8)
    wv = np.arange(2 * d - 1)
    shift_tab = np.where(wv > 0, 1 + (wv - 1) // 2, 0).astype(np.int8)  # axis shift of choice w
    sign_tab = np.where(wv > 0, (wv - 1) & 1, 0).astype(np.int8)  # fresh sign bit on an axis change
    live = np.arange(W)
    ng_blk = int(1.05 * n / (B * mean_tau)) + 2
    while live.size:
        cw = max(1, (1 << 17) // (ng_blk * B))
        for s in range(0, live.size, cw):
            rows = live[s:s + cw]
            w_n = rows.size
            tau = sampler(rng, (B, ng_blk, w_n))
            w = rng.integers(0, 2 * d - 1, size=(B, ng_blk, w_n), dtype=np.int8)
            odd = (tau & 1).astype(np.int8)
            shift = np.take(shift_tab, w, mode="clip")
            flip = (1 - odd) ^ np.take(sign_tab, w, mode="clip")
            D = np.zeros((d, ng_blk, w_n), np.int16)
            rel = np.zeros((ng_blk, w_n), np.int8)
            sg = np.zeros((ng_blk, w_n), np.int8)
            for b in range(B):
                contrib = odd[b] * (1 - 2 * sg)
                for r in range(d):
                    D[r] += contrib * (rel == r)
                sg ^= flip[b]
                rel += shift[b]
                rel -= d * (rel >= d).view(np.int8)
            cumT = np.cumsum(tau.sum(axis=0, dtype=np.int64), axis=0)
            rem = n - t0[rows]
            full = cumT <= rem
            A = (np.cumsum(rel, axis=0, dtype=np.int64) - rel + axis[rows]) % d  # axis at group start
            P = (np.cumsum(sg, axis=0, dtype=np.int64) - sg + par[rows]) & 1  # sign parity at group start
            sign = (1 - 2 * P) * full
            for r in range(d):
                c = D[r] * sign
                ax = (A + r) % d
                for a in range(d):
                    pos[rows, a] += (c * (ax == a)).sum(axis=0)
            ng = full.sum(axis=0)
            cross = np.flatnonzero(ng < ng_blk)
            if cross.size:  # replay the straddling group
                g = ng[cross]
                left = rem[cross] - np.where(g > 0, cumT[np.maximum(g - 1, 0), cross], 0)
                cur_ax = A[g, cross].astype(np.int64)
                cur_sg = P[g, cross].astype(np.int64)
                prow = rows[cross]
                for b in range(B):
                    tb = tau[b, g, cross].astype(np.int64)
                    r = np.minimum(tb, left)
                    pos[prow, cur_ax] += (r & 1) * (1 - 2 * cur_sg)
                    left -= r
                    cur_sg ^= flip[b, g, cross]
                    cur_ax = (cur_ax + shift[b, g, cross]) % d
                t0[prow] = n
            done = np.flatnonzero(ng == ng_blk)
            t0[rows[done]] += cumT[-1, done]
            axis[rows[done]] = (A[-1, done] + rel[-1, done]) % d
            par[rows[done]] = (P[-1, done] + sg[-1, done]) & 1
        live = live[t0[live] < n]
        ng_blk = max(4, ng_blk // 4)
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
