"""Imports every chapter's experiment module so that each registers its experiments."""

import importlib
import pkgutil

import lib.experiments as _pkg

for _mod in pkgutil.iter_modules(_pkg.__path__):
    if _mod.name.startswith("ch"):
        importlib.import_module(f"lib.experiments.{_mod.name}")
