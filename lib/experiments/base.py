"""The :class:`Experiment` record: an id (``table-3.1``), settings per scale, and a run function.

The notebooks call :func:`obtain`; the command line (``python -m lib.experiments``) calls
:func:`lib.experiments.cli.execute`. Both run the same :class:`Experiment`, so there is one
definition of each thesis table.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lib.config import SCALES, get_scale


@dataclass
class RunContext:
    """Where and how an experiment runs: device, seed, a folder for per-epoch checkpoints."""

    device: str = "cpu"
    seed: int = 0
    workdir: Path | None = None
    progress: bool = True
    scale: str | None = None
    shared_dir: Path | None = None

    @staticmethod
    def _check_name(name: str) -> None:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"checkpoint name must be a plain file name, got {name!r}")

    def checkpoint(self, name: str) -> Path | None:
        """Path of the checkpoint called ``name`` (None when the run keeps no checkpoints).

        It lives in this run's own folder and is deleted when the run has finished."""
        if self.workdir is None:
            return None
        self._check_name(name)
        return Path(self.workdir) / f"{name}.pt"

    def shared_checkpoint(self, name: str) -> Path | None:
        """Like :meth:`checkpoint`, but shared by every experiment run with the same results
        folder, scale and seed, and kept after the run: a model that several tables use (a base
        row) is trained once, even by separate commands. ``name`` must therefore encode every
        setting the model depends on (e.g. a hash of them). Falls back to :meth:`checkpoint`."""
        if self.shared_dir is None:
            return self.checkpoint(name)
        self._check_name(name)
        return Path(self.shared_dir) / f"{name}.pt"


def merge_concat(parts: list[dict]) -> dict:
    """Default merge of sweep members: lists are concatenated key by key (in member order),
    nested dicts are merged recursively, and any other value must be equal in every member."""
    if not parts:
        raise ValueError("merge needs at least one member result")
    first = parts[0]
    if all(isinstance(p, dict) for p in parts):
        keys = list(first)
        if any(list(p) != keys for p in parts):
            raise ValueError(f"sweep members return different keys: {[sorted(p) for p in parts]}")
        return {k: merge_concat([p[k] for p in parts]) for k in keys}
    if all(isinstance(p, list) for p in parts):
        return [v for p in parts for v in p]
    if all(json.dumps(p, sort_keys=True) == json.dumps(first, sort_keys=True) for p in parts):
        return first
    raise ValueError(f"sweep members disagree on a value that is not a list ({parts!r:.200}); "
                     "give the Experiment a merge function")


@dataclass
class Experiment:
    """A thesis table or figure: ``run(settings, ctx)`` returns a JSON-serialisable dict.

    ``sweep`` (optional) names a list-valued setting whose entries are independent runs (e.g. a
    list of penalties, one table row each): ``run_fn`` called with a one-entry list must give
    that entry's part of the result, and ``merge`` (default :func:`merge_concat`) joins the
    parts. The runner then runs each member as its own resumable job (``--member K``).
    """

    id: str
    title: str
    settings: dict[str, dict]
    run_fn: Callable[[dict, RunContext], dict]
    cost: dict[str, str] = field(default_factory=dict)
    thesis: dict | None = None
    sweep: str | None = None
    merge: Callable[[list[dict]], dict] | None = None

    def __post_init__(self):
        missing = [s for s in SCALES if s not in self.settings]
        if missing:
            raise ValueError(f"experiment {self.id!r} lacks settings for scale(s) {missing}")
        if self.sweep is not None:
            for s in SCALES:
                v = self.settings[s].get(self.sweep)
                if not isinstance(v, (list, tuple)) or not v:
                    raise ValueError(f"experiment {self.id!r}: sweep setting {self.sweep!r} must be a non-empty "
                                     f"list at scale {s!r}, got {v!r}")

    def settings_for(self, scale: str | None = None, **overrides) -> dict:
        """The settings at ``scale`` (default: ``$BOOK_SCALE``) with ``overrides`` applied."""
        scale = get_scale() if scale is None else scale
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
        settings = dict(self.settings[scale])
        unknown = set(overrides) - set(settings)
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)} for {self.id}; known: {sorted(settings)}")
        settings.update(overrides)
        return settings

    def members(self, settings: dict) -> list[dict]:
        """The member settings of a sweep (``[settings]`` when the experiment is no sweep)."""
        if self.sweep is None:
            return [dict(settings)]
        values = settings[self.sweep]
        if not isinstance(values, (list, tuple)) or not values:
            raise ValueError(f"setting {self.sweep!r} of {self.id} must be a non-empty list, got {values!r}")
        return [{**settings, self.sweep: [v]} for v in values]

    def combine(self, parts: list[dict]) -> dict:
        """Join member results with ``merge`` (default :func:`merge_concat`)."""
        return (self.merge or merge_concat)(parts)

    def run(self, scale: str | None = None, ctx: RunContext | None = None, **overrides) -> dict:
        """Run at ``scale`` (default: ``$BOOK_SCALE``) with optional setting overrides."""
        settings = self.settings_for(scale, **overrides)
        ctx = ctx or RunContext()
        if ctx.scale is None:
            ctx.scale = get_scale() if scale is None else scale
        return self.run_fn(settings, ctx)


REGISTRY: dict[str, Experiment] = {}


def register(exp: Experiment) -> Experiment:
    """Add ``exp`` to the registry (ids are unique)."""
    if not isinstance(exp, Experiment):
        raise ValueError(f"register expects an Experiment, got {type(exp).__name__}")
    if exp.id in REGISTRY and REGISTRY[exp.id] is not exp:
        raise ValueError(f"experiment id {exp.id!r} is registered twice")
    REGISTRY[exp.id] = exp
    return exp


def get(exp_id: str) -> Experiment:
    """The experiment with id ``exp_id``; a clear error lists the known ids."""
    from lib.experiments import catalog  # noqa: F401  (imports every chapter module, which register)

    if exp_id not in REGISTRY:
        raise ValueError(f"unknown experiment id {exp_id!r}; known ids: {', '.join(sorted(REGISTRY)) or 'none'} "
                         "(see 'python -m lib.experiments list')")
    return REGISTRY[exp_id]


def obtain(exp_id: str, ctx: RunContext | None = None) -> dict:
    """What a notebook calls: the results of experiment ``exp_id``.

    If the results folder (``$BOOK_RESULTS``, default ``results/``; ``BOOK_RESULTS=off`` skips
    it) holds a finished ``full``-scale run whose settings equal the experiment's current
    ``full`` settings, its numbers are returned, labelled full scale with their provenance.
    Otherwise the experiment runs now at the active scale (``$BOOK_SCALE``); at ``full`` scale
    it runs through the runner, so it checkpoints, resumes and saves its result.

    Returns ``{"id", "scale", "source", "settings", "results", "provenance", "path"}``:
    ``source`` says in words where the numbers come from, for the page to show; ``provenance``
    and ``path`` are None for numbers computed now at ``ci`` scale.
    """
    from lib.experiments import store

    exp = get(exp_id)
    out = store.results_dir()
    hit = store.find_result(out, exp_id, "full", exp.settings_for("full"))
    if hit is not None:
        path, rec = hit
        return {"id": exp_id, "scale": "full", "source": store.describe(rec, path), "settings": rec["settings"],
                "results": rec["results"], "provenance": rec["provenance"], "path": str(path)}
    scale = get_scale()
    if scale == "full" and out is not None:
        from lib.config import device
        from lib.experiments.cli import execute

        path, rec = execute(exp, scale="full", out=out, device=device(), seed=0 if ctx is None else ctx.seed,
                            progress=True if ctx is None else ctx.progress)
        return {"id": exp_id, "scale": "full", "source": store.describe(rec, path), "settings": rec["settings"],
                "results": rec["results"], "provenance": rec["provenance"], "path": str(path)}
    settings = exp.settings_for(scale)
    results = exp.run(scale, ctx)
    return {"id": exp_id, "scale": scale, "source": f"computed now at {scale} scale", "settings": settings,
            "results": results, "provenance": None, "path": None}
