"""Adversarial robustness (Section 4.2): l_inf attacks and PGD adversarial training.

* :mod:`lib.robust.attacks` -- :func:`fgsm`, :func:`ifgsm` (PGD), :func:`cw` (l_inf margin loss),
  :func:`nattack` (black box), with an ``eot`` option, and :func:`robust_accuracy`.
* :mod:`lib.robust.train` -- :func:`pgd_perturb` (the ``perturb`` of :func:`lib.train.fit`) and
  :func:`adversarial_fit` (45k/5k split, best-validation model).
"""

from lib.robust.attacks import cw, fgsm, ifgsm, margin_loss, nattack, pgd, project, robust_accuracy
from lib.robust.train import PGDPerturb, adversarial_fit, pgd_perturb

__all__ = ["PGDPerturb", "adversarial_fit", "cw", "fgsm", "ifgsm", "margin_loss", "nattack", "pgd",
           "pgd_perturb", "project", "robust_accuracy"]
