"""Run-time configuration shared by the whole book: the scale knob, seeding, threads.

The book has exactly one scale knob, the environment variable ``BOOK_SCALE``:

* ``ci`` (default): every chapter runs on 2 CPU cores in minutes, on the small
  Fashion-MNIST subset shipped in ``data/``; the numbers are labelled "ci scale".
* ``full``: the thesis's own settings (CIFAR-10/100, MNIST, 200 epochs ...), meant for a GPU.

Sizes for each scale live in :mod:`lib` (see ``lib.experiments``), never in a notebook.
"""

from __future__ import annotations

import os
import platform
import random

import numpy as np

SCALES = ("ci", "full")


def get_scale() -> str:
    """Return the active scale, ``'ci'`` or ``'full'``, read from ``$BOOK_SCALE``.

    Raises ``ValueError`` for any other value, so a typo never silently runs the wrong scale.
    """
    scale = os.environ.get("BOOK_SCALE", "ci").strip().lower() or "ci"
    if scale not in SCALES:
        raise ValueError(
            f"BOOK_SCALE must be one of {SCALES}, got {scale!r}; "
            "unset it for the default 'ci' scale or set BOOK_SCALE=full on a GPU machine."
        )
    return scale


def pick(ci, full, scale: str | None = None):
    """Return ``ci`` or ``full`` according to ``scale`` (default: the active scale)."""
    scale = get_scale() if scale is None else scale
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    return ci if scale == "ci" else full


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and CUDA).

    Same seed, same machine, same numbers: together with :func:`set_threads` this makes the
    book's CPU runs bit-for-bit repeatable.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:  # torch is optional for the random-walk chapter
        return
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def set_threads(n: int | None = None) -> int:
    """Set torch's intra-op thread count (default: ``$BOOK_THREADS``, else 1); return it.

    CPU results depend on the thread count (reductions are split differently), and a short
    ci-scale training run amplifies such differences into different accuracies. The book's
    committed numbers were produced with one thread; CI runs with ``OMP_NUM_THREADS=1`` and
    ``BOOK_THREADS=1`` so that it computes the same numbers.
    """
    import torch

    if n is None:
        n = int(os.environ.get("BOOK_THREADS", 1))
    if n < 1:
        raise ValueError(f"thread count must be >= 1, got {n}")
    torch.set_num_threads(n)
    return n


def device(prefer: str | None = None) -> str:
    """The torch device to use: ``$BOOK_DEVICE`` if set, else ``cuda`` when available, else ``cpu``."""
    import torch

    choice = prefer or os.environ.get("BOOK_DEVICE")
    if choice is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {choice!r} was asked for but torch sees no CUDA GPU; use 'cpu'")
    if choice not in ("cpu",) and not choice.startswith("cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {choice!r}")
    return choice


def versions() -> dict[str, str]:
    """Versions of the packages that produce the book's numbers."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in ("numpy", "scipy", "mpmath", "torch", "torchvision", "matplotlib"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "not installed"
    return out


def describe() -> str:
    """One line for the top of each chapter: scale, device, threads and library versions."""
    import torch

    v = versions()
    pkgs = ", ".join(f"{k} {val}" for k, val in v.items())
    dev = device()
    if dev.startswith("cuda"):
        dev = f"{dev} ({torch.cuda.get_device_name()})"
    return (
        f"BOOK_SCALE={get_scale()} | device: {dev}, {torch.get_num_threads()} torch threads on "
        f"{platform.machine()} | {pkgs}"
    )
