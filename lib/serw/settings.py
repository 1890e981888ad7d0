"""Sizes of the Chapter 2 computations per scale (``BOOK_SCALE``): the notebook reads them from here."""

from __future__ import annotations

from lib.config import pick


def chapter_settings(scale: str | None = None) -> dict:
    """Walkers, steps and grid sizes of book/02_serw.md (ci: ~3 min on 2 CPU cores)."""
    return pick(
        ci={"hs_nmax": 2 ** 17, "msd_nmax": 2 ** 13, "msd_walkers": 4000, "msd_checkpoints": [16, 128, 1024, 8192],
            "hs_walkers": 4000, "hs_steps": 4096, "n_delta": 14, "check_walkers": 10000, "check_steps": 2000,
            "seed": 2020},
        full={"hs_nmax": 2 ** 22, "msd_nmax": 2 ** 16, "msd_walkers": 100000,
              "msd_checkpoints": [16, 128, 1024, 8192, 65536], "hs_walkers": 100000, "hs_steps": 65536,
              "n_delta": 40, "check_walkers": 100000, "check_steps": 20000, "seed": 2020},
        scale=scale,
    )
