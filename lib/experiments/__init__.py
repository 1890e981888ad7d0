"""One definition per thesis table or figure, shared by the notebooks and the runner.

Each chapter module (``lib/experiments/ch3.py`` ...) registers :class:`Experiment` objects with
:func:`register`; ``python -m lib.experiments list`` lists them and ``run ID`` runs one.
Nothing else in :mod:`lib` imports this package.
"""

from lib.experiments.base import REGISTRY, Experiment, RunContext, get, obtain, register

__all__ = ["REGISTRY", "Experiment", "RunContext", "get", "obtain", "register"]
