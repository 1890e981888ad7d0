"""The :class:`Experiment` record: an id (``table-3.1``), settings per scale, and a run function."""

from __future__ import annotations

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

    def checkpoint(self, name: str) -> Path | None:
        """Path of the checkpoint called ``name`` (None when the run keeps no checkpoints)."""
        return None if self.workdir is None else Path(self.workdir) / f"{name}.pt"


@dataclass
class Experiment:
    """A thesis table or figure: ``run(settings, ctx)`` returns a JSON-serialisable dict."""

    id: str
    title: str
    settings: dict[str, dict]
    run_fn: Callable[[dict, RunContext], dict]
    cost: dict[str, str] = field(default_factory=dict)
    thesis: dict | None = None

    def __post_init__(self):
        missing = [s for s in SCALES if s not in self.settings]
        if missing:
            raise ValueError(f"experiment {self.id!r} lacks settings for scale(s) {missing}")

    def settings_for(self, scale: str | None = None) -> dict:
        scale = get_scale() if scale is None else scale
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
        return dict(self.settings[scale])

    def run(self, scale: str | None = None, ctx: RunContext | None = None, **overrides) -> dict:
        """Run at ``scale`` (default: ``$BOOK_SCALE``) with optional setting overrides."""
        settings = self.settings_for(scale)
        unknown = set(overrides) - set(settings)
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)} for {self.id}; known: {sorted(settings)}")
        settings.update(overrides)
        return self.run_fn(settings, ctx or RunContext())


REGISTRY: dict[str, Experiment] = {}


def register(exp: Experiment) -> Experiment:
    """Add ``exp`` to the registry (ids are unique)."""
    if exp.id in REGISTRY and REGISTRY[exp.id] is not exp:
        raise ValueError(f"experiment id {exp.id!r} is registered twice")
    REGISTRY[exp.id] = exp
    return exp


def get(exp_id: str) -> Experiment:
    """The experiment with id ``exp_id``; a clear error lists the known ids."""
    from lib.experiments import catalog  # noqa: F401  (imports every chapter module, which register)

    if exp_id not in REGISTRY:
        raise ValueError(f"unknown experiment id {exp_id!r}; known ids: {', '.join(sorted(REGISTRY)) or 'none'}")
    return REGISTRY[exp_id]


def obtain(exp_id: str, ctx: RunContext | None = None) -> dict:
    """What a notebook calls: the results of experiment ``exp_id`` at the active scale.

    Returns ``{"id", "scale", "source", "settings", "results"}``; ``source`` says in words where
    the numbers come from (computed now, and at which scale), for the page to show.
    """
    exp = get(exp_id)
    scale = get_scale()
    settings = exp.settings_for(scale)
    results = exp.run(scale, ctx)
    return {"id": exp_id, "scale": scale, "source": f"computed now at {scale} scale", "settings": settings,
            "results": results}
