"""Cost of the RVSM step over the plain SGD step it wraps, as a share of a whole training step.

CIFAR ResNet20 (pre-activation, 0.27M parameters), batch 128 of 3 x 32 x 32 inputs, on CPU.
In one process, interleaved: (a) a whole SGD training step (forward, backward, SGD step),
(b) ``torch.optim.SGD.step`` alone, (c) ``RVSM.step`` alone (l0, l1, tl1; foreach and
single-tensor paths). Reported: ``(c - b) / a``, the extra cost of RVSM as a fraction of a
training step (target: at most 10%). Medians over repeats.

Run: ``python bench/bench_rvsm.py [--repeats 20] [--threads N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from lib.models import resnet20
from lib.sparse import RVSM


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = resnet20(3, 10)
    x, y = torch.rand(args.batch, 3, 32, 32), torch.randint(0, 10, (args.batch,))
    hyper = dict(lr=0.01, momentum=0.9, weight_decay=5e-4, nesterov=True)
    sgd = torch.optim.SGD(model.parameters(), **hyper)
    variants = {f"RVSM {pen} foreach={fe}":
                RVSM(model.parameters(), beta=1e-2, lam=1e-6, penalty=pen, foreach=fe, **hyper)
                for pen in ("l0", "l1", "tl1") for fe in (True, False)}

    def backward():
        model.zero_grad(set_to_none=False)
        F.cross_entropy(model(x), y).backward()

    def train_step():
        backward()
        sgd.step()

    for _ in range(3):  # warm-up, creates momentum buffers and u
        train_step()
        for opt in variants.values():
            opt.step()
    whole, plain, extra = [], [], {k: [] for k in variants}
    for _ in range(args.repeats):
        whole.append(_timed(train_step))
        plain.append(_timed(sgd.step))
        for name, opt in variants.items():
            extra[name].append(_timed(opt.step))
    w, p = statistics.median(whole), statistics.median(plain)
    print(f"ResNet20, batch {args.batch}, {torch.get_num_threads()} threads, {args.repeats} repeats (medians)")
    print(f"{'what':34s} {'ms':>9s} {'(step - SGD step) / train step':>32s}")
    print(f"{'whole SGD training step':34s} {1e3 * w:9.2f}")
    print(f"{'torch.optim.SGD.step':34s} {1e3 * p:9.2f}")
    for name, ts in extra.items():
        s = statistics.median(ts)
        print(f"{name:34s} {1e3 * s:9.2f} {100 * (s - p) / w:31.2f}%")


if __name__ == "__main__":
    main()
