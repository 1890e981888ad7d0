"""Benchmark: event-driven SeRW sampler (lib.serw.simulate) against the step-by-step reference, one process.

    python bench/bench_serw.py [--walkers 100000] [--steps 10000] [--delta 0.01] [--ref-walkers-hi 20000]

Prints walker-steps per second for d = 1, 2, 3 and the speed-up over the step-by-step vectorised NumPy walker
(lib.serw.simulate_reference). The d = 1 reference runs at the full size; for d = 2, 3 the reference uses
``--ref-walkers-hi`` walkers (its cost is linear in walkers). Both samplers draw from the same law (tests/).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lib.serw import diffusivity, simulate, simulate_reference


def rate(fn, n_steps: int, walkers: int, repeats: int = 1) -> tuple[float, np.ndarray]:
    best, out = float("inf"), None
    for r in range(repeats):
        t = time.perf_counter()
        out = fn(seed=r)
        best = min(best, time.perf_counter() - t)
    return n_steps * walkers / best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--walkers", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--delta", type=float, default=0.01)
    ap.add_argument("--ref-walkers-hi", type=int, default=20_000)
    ap.add_argument("--dims", type=int, nargs="+", default=[1, 2, 3])
    args = ap.parse_args()
    n, W, delta = args.steps, args.walkers, args.delta
    print(f"n = {n}, delta = {delta}; walker-steps per second (higher is better)")
    print(f"{'d':>2} {'event-driven':>14} {'step-by-step':>14} {'speed-up':>9} {'E|S_n|^2/n':>11} {'v':>8}")
    for d in args.dims:
        w_ref = W if d == 1 else min(W, args.ref_walkers_hi)
        ev, x = rate(lambda seed, d=d: simulate(n, W, delta, d, seed=seed), n, W, repeats=2)
        st, _ = rate(lambda seed, d=d, w=w_ref: simulate_reference(n, w, delta, d, seed=seed), n, w_ref)
        msd = float((x.astype(float) ** 2).sum(axis=1).mean() / n)
        print(f"{d:>2} {ev:>14.3e} {st:>14.3e} {ev / st:>8.1f}x {msd:>11.4f} {diffusivity(delta, d):>8.4f}",
              flush=True)


if __name__ == "__main__":
    main()
