"""PGD adversarial-training throughput for ResNet20 on CPU: images/s of natural training vs PGD training.

IFGSM^10 costs 10 input-gradient passes plus the weight update, i.e. 11 forward-backward passes
per batch, so PGD-10 training should be at most ~12x slower than natural training.  Both are
timed in the same process on the same batches (32x32x3, batch 128 by default), after warm-up,
as the median of ``--repeats`` steps.

    python bench/bench_pgd.py [--batch 128] [--size 32] [--steps 10] [--repeats 5] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from lib.config import seed_everything, set_threads
from lib.models import resnet20
from lib.robust.train import pgd_perturb


def step_time(model, opt, x, y, perturb, repeats: int) -> float:
    """Median seconds of one training step (perturbation included) over ``repeats`` steps."""
    times = []
    for i in range(repeats + 1):  # the first step is warm-up
        t = time.perf_counter()
        xb = perturb(model, x, y) if perturb is not None else x
        model.train()
        loss = F.cross_entropy(model(xb), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.repeats < 1 or args.steps < 1 or args.batch < 1:
        raise ValueError("--repeats, --steps and --batch must be >= 1")
    threads = set_threads(args.threads)
    seed_everything(0)
    model = resnet20(args.channels, 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(args.batch, args.channels, args.size, args.size)
    y = torch.randint(0, 10, (args.batch,))
    nat = step_time(model, opt, x, y, None, args.repeats)
    adv = step_time(model, opt, x, y, pgd_perturb(steps=args.steps), args.repeats)
    ratio = adv / nat
    print(f"ResNet20, batch {args.batch} x {args.channels}x{args.size}x{args.size}, CPU, {threads} threads, "
          f"median of {args.repeats} steps")
    print(f"{'training':<22}{'s/step':>10}{'images/s':>12}")
    print(f"{'natural':<22}{nat:>10.3f}{args.batch / nat:>12.1f}")
    print(f"{f'PGD-{args.steps} (IFGSM^{args.steps})':<22}{adv:>10.3f}{args.batch / adv:>12.1f}")
    print(f"ratio PGD / natural: {ratio:.2f} (bound: {args.steps + 2}, i.e. {args.steps + 1} forward-backward "
          f"passes per step plus slack)")


if __name__ == "__main__":
    main()
