"""One definition per thesis table or figure, shared by the notebooks and the runner.

Each chapter module (``lib/experiments/ch3.py`` ...) registers :class:`Experiment` objects with
:func:`register`; ``python -m lib.experiments list`` lists them and ``run ID`` runs one
(:mod:`lib.experiments.cli`); results land in ``results/`` (:mod:`lib.experiments.store`) and
:func:`obtain` hands the notebooks a matching full-scale result when there is one.
Nothing else in :mod:`lib` imports this package.
"""

from lib.experiments.base import REGISTRY, Experiment, RunContext, get, merge_concat, obtain, register

__all__ = ["REGISTRY", "Experiment", "RunContext", "get", "merge_concat", "obtain", "register"]
