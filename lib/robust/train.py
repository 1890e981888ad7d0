"""PGD adversarial training (Madry et al. 2018) as the thesis runs it in Section 4.2.3.

Each iteration replaces the clean batch by its PGD adversary (IFGSM^10, ``alpha = 2/255``,
``eps = 8/255``, uniform random start) in the forward-propagation stage; the back-propagation
stage is whatever optimizer the caller hands to :func:`lib.train.fit` (SGD, RVSM, RGSM, ADMM),
so sparsification and adversarial training happen together, on the fly:

    min_w  E_(x,y) max_{||x' - x||_inf <= eps} L(F(x', w), y)  (+ the optimizer's penalty).

:func:`pgd_perturb` builds the ``perturb`` callable that :func:`lib.train.fit` expects;
:func:`adversarial_fit` adds the thesis's protocol: a train/validation split and the
best-validation model.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from lib.robust.attacks import ALPHA, EPS, _check_steps, pgd


class PGDPerturb:
    """``perturb(model, x, y)`` for :func:`lib.train.fit`: the PGD adversary of the batch.

    The adversary is computed with the model in evaluation mode (batch-norm statistics are not
    updated by the ``steps`` inner forward passes); :func:`lib.train.train_epoch` switches the
    model back to training mode for the weight update.  The random start draws from torch's
    global generator, whose state :func:`lib.train.fit` checkpoints, so a resumed run repeats
    the uninterrupted one.
    """

    def __init__(self, eps: float = EPS, alpha: float = ALPHA, steps: int = 10, random_start: bool = True,
                 eot: int = 1):
        if not eps >= 0:
            raise ValueError(f"eps must be >= 0, got {eps!r}")
        _check_steps(alpha, steps)
        if int(eot) != eot or eot < 1:
            raise ValueError(f"eot must be an integer >= 1, got {eot!r}")
        self.eps, self.alpha, self.steps, self.random_start, self.eot = eps, alpha, int(steps), random_start, int(eot)

    def __call__(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return pgd(model, x, y, self.eps, self.alpha, self.steps, self.random_start, self.eot)

    def __repr__(self) -> str:
        return (f"PGDPerturb(eps={self.eps:.5f}, alpha={self.alpha:.5f}, steps={self.steps}, "
                f"random_start={self.random_start}, eot={self.eot})")


def pgd_perturb(eps: float = EPS, alpha: float = ALPHA, steps: int = 10, random_start: bool = True,
                eot: int = 1) -> PGDPerturb:
    """The thesis's PGD adversary (IFGSM^10, alpha 2/255, eps 8/255, random start) as a ``perturb``."""
    return PGDPerturb(eps, alpha, steps, random_start, eot)


def adversarial_fit(model: torch.nn.Module, optimizer: torch.optim.Optimizer, train, epochs: int,
                    perturb: Callable | None = None, n_val: int | None = None, split_seed: int = 0,
                    **fit_kwargs) -> list[dict]:
    """PGD adversarial training with any optimizer, via :func:`lib.train.fit`.

    ``perturb`` defaults to :func:`pgd_perturb` ``()``.  With ``n_val`` the training set is split
    into ``len(train) - n_val`` / ``n_val`` images (the thesis's 45k/5k) and the model with the best
    natural validation accuracy is kept.  Remaining keyword arguments (``batch_size``,
    ``milestones``, ``seed``, ``device``, ``augment``, ``on_epoch_end``, ``checkpoint``,
    ``progress`` ...) go to :func:`lib.train.fit`.  Returns its history.
    """
    from lib.train import fit

    if perturb is None:
        perturb = pgd_perturb()
    if n_val is not None:
        train, val = train.split(int(n_val), seed=split_seed)
        fit_kwargs["val"] = val
    return fit(model, optimizer, train, epochs, perturb=perturb, **fit_kwargs)
