"""Results on disk: one JSON file per finished run, with provenance, written atomically.

Layout under the results folder (``$BOOK_RESULTS``, default ``<repo>/results``)::

    results/<id>/<scale>-seed<N>-<hash>.json          a finished run (what the book reads)
    results/<id>/members/<scale>-seed<N>-<hash>-m<K>.json   one member of a sweep
    results/.work/<id>/<scale>-seed<N>-<hash>[-m<K>]/  checkpoints and state.json of an
                                                       unfinished run (removed when it ends)

``<hash>`` is a short SHA-256 of the run's settings, so a run with other settings (an override,
or settings edited since) never passes for the experiment's current ``full`` run. A result file
exists only once its run has ended: it is written to a temporary name, flushed to disk, then
renamed, so a crash leaves either no file or a complete one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from lib.files import write_atomic

REPO = Path(__file__).resolve().parents[2]
SCHEMA_VERSION = 1
WORK = ".work"

RESULT_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "A finished run of a thesis table or figure",
    "type": "object",
    "required": ["schema", "id", "title", "scale", "seed", "member", "settings", "overrides", "settings_hash",
                 "results", "provenance"],
    "properties": {
        "schema": {"const": SCHEMA_VERSION},
        "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9.\\-]*$"},
        "title": {"type": "string"},
        "scale": {"enum": ["ci", "full"]},
        "seed": {"type": "integer", "minimum": 0},
        "member": {
            "oneOf": [
                {"type": "null"},
                {"type": "object", "required": ["index", "of", "key", "value"],
                 "properties": {"index": {"type": "integer", "minimum": 0}, "of": {"type": "integer", "minimum": 1},
                                "key": {"type": "string"}}},
            ]
        },
        "settings": {"type": "object"},
        "overrides": {"type": "object"},
        "settings_hash": {"type": "string", "pattern": "^[0-9a-f]{12}$"},
        "results": {"type": "object"},
        "provenance": {
            "type": "object",
            "required": ["git_commit", "git_dirty", "packages", "device", "device_name", "world_size", "runtime",
                         "seed", "wall_time_s", "attempts", "started_utc", "finished_utc", "command", "platform"],
            "properties": {
                "git_commit": {"type": "string"},
                "git_dirty": {"type": ["boolean", "null"]},
                "packages": {"type": "object", "additionalProperties": {"type": "string"}},
                "device": {"type": "string"},
                "device_name": {"type": "string"},
                "world_size": {"type": "integer", "minimum": 1},
                "runtime": {"type": "object"},
                "seed": {"type": "integer", "minimum": 0},
                "wall_time_s": {"type": "number", "minimum": 0},
                "attempts": {"type": "integer", "minimum": 1},
                "started_utc": {"type": "string"},
                "finished_utc": {"type": "string"},
                "command": {"type": "string"},
                "platform": {"type": "string"},
            },
        },
    },
}


# --------------------------------------------------------------------------------------------
# JSON helpers
# --------------------------------------------------------------------------------------------
def canonical(obj, where: str = "results"):
    """``obj`` as plain JSON types (tuples become lists, NumPy/torch scalars become numbers).

    Raises ``ValueError`` naming the offending entry for anything JSON cannot hold (NaN and
    infinities are kept: ``json`` writes them as ``NaN``/``Infinity`` and reads them back).
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise ValueError(f"{where}: keys must be strings, got {k!r}")
            out[k] = canonical(v, f"{where}.{k}")
        return out
    if isinstance(obj, (list, tuple)):
        return [canonical(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if hasattr(obj, "item") and getattr(obj, "shape", None) == ():  # NumPy scalars, 0-d arrays and tensors
        return canonical(obj.item(), where)
    raise ValueError(f"{where} is a {type(obj).__name__}, which JSON cannot hold; return plain floats, ints, "
                     "strings, lists and dicts (e.g. float(x), x.tolist())")


def dumps(obj) -> str:
    """Deterministic JSON text (sorted keys, 1-space indent)."""
    return json.dumps(obj, sort_keys=True, indent=1, allow_nan=True)


def settings_hash(settings: dict) -> str:
    """First 12 hex digits of the SHA-256 of the canonical JSON of ``settings``."""
    text = json.dumps(canonical(settings, "settings"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def write_json_atomic(obj, path: str | Path) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically (:func:`lib.files.write_atomic`)."""
    text = dumps(obj)
    return write_atomic(path, lambda fh: fh.write(text.encode()))


def validate(record: dict) -> dict:
    """Check ``record`` against :data:`RESULT_SCHEMA`; raise ``ValueError`` saying what is wrong."""
    import jsonschema

    try:
        jsonschema.validate(record, RESULT_SCHEMA)
    except jsonschema.ValidationError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        raise ValueError(f"result record is invalid at {where}: {err.message}") from None
    if settings_hash(record["settings"]) != record["settings_hash"]:
        raise ValueError("result record is invalid: settings_hash does not match its settings")
    return record


def read_result(path: str | Path) -> dict:
    """Load and validate one result file."""
    with open(path) as fh:
        return validate(json.load(fh))


# --------------------------------------------------------------------------------------------
# Where things live
# --------------------------------------------------------------------------------------------
def results_dir() -> Path | None:
    """The results folder: ``$BOOK_RESULTS`` (``off`` disables reading results), else ``<repo>/results``."""
    env = os.environ.get("BOOK_RESULTS", "").strip()
    if env.lower() in ("off", "none", "0", "false"):
        return None
    return Path(env).expanduser() if env else REPO / "results"


def _stem(scale: str, seed: int, settings: dict) -> str:
    return f"{scale}-seed{int(seed)}-{settings_hash(settings)}"


def result_path(out: str | Path, exp_id: str, scale: str, seed: int, settings: dict, member: int | None = None) -> Path:
    """Where the result of this run lives (``settings`` are the whole run's settings)."""
    stem = _stem(scale, seed, settings)
    if member is None:
        return Path(out) / exp_id / f"{stem}.json"
    return Path(out) / exp_id / "members" / f"{stem}-m{member}.json"


def work_dir(out: str | Path, exp_id: str, scale: str, seed: int, settings: dict, member: int | None = None) -> Path:
    """Folder for the checkpoints and bookkeeping of this run while it is unfinished."""
    stem = _stem(scale, seed, settings) + ("" if member is None else f"-m{member}")
    return Path(out) / WORK / exp_id / stem


def shared_dir(out: str | Path, scale: str, seed: int) -> Path:
    """Folder of the checkpoints shared between experiments (``RunContext.shared_checkpoint``)."""
    return Path(out) / WORK / "shared" / f"{scale}-seed{int(seed)}"


def find_result(out: str | Path | None, exp_id: str, scale: str, settings: dict) -> tuple[Path, dict] | None:
    """The finished run of ``exp_id`` at ``scale`` with exactly ``settings`` (lowest seed), or None.

    Files that fail validation or whose settings differ are skipped.
    """
    if out is None:
        return None
    folder = Path(out) / exp_id
    if not folder.is_dir():
        return None
    want = canonical(settings, "settings")
    h = settings_hash(want)
    found = []
    for p in folder.glob(f"{scale}-seed*-{h}.json"):
        try:
            rec = read_result(p)
        except (ValueError, OSError, json.JSONDecodeError):
            continue
        if rec["id"] == exp_id and rec["scale"] == scale and rec["member"] is None and rec["settings"] == want:
            found.append((rec["seed"], p, rec))
    if not found:
        return None
    _, path, rec = min(found, key=lambda t: t[0])
    return path, rec


def check_writable(out: str | Path) -> Path:
    """Create ``out`` if needed and prove a file can be written there; ``ValueError`` otherwise."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-probe-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise ValueError(f"--out {out} is not a writable folder ({err.strerror or err}); "
                         "choose another with --out DIR") from None
    return out


# --------------------------------------------------------------------------------------------
# Provenance and resume bookkeeping
# --------------------------------------------------------------------------------------------
def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def git_state() -> tuple[str, bool | None]:
    """``(commit, dirty)`` of the repository, or ``("unknown", None)`` outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                timeout=20, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                                capture_output=True, text=True, timeout=20, check=True).stdout
        return commit, bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        return "unknown", None


def packages() -> dict[str, str]:
    """Versions of Python and of every package whose numbers could end up in a result."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in ("numpy", "scipy", "mpmath", "torch", "torchvision", "torchattacks", "torch-pruning", "tqdm"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "not installed"
    import torch

    out["torch"] = torch.__version__  # with its build tag (e.g. +cu130)
    out["cuda"] = str(torch.version.cuda)
    out["cudnn"] = str(torch.backends.cudnn.version())
    return out


def device_name(device: str) -> str:
    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads)"


class RunState:
    """``state.json`` in a run's work folder: attempts, time spent, status.

    A heartbeat thread adds the elapsed time every ``interval`` seconds, so the wall time of an
    attempt that was killed (even with ``kill -9``) is counted, to within one interval.
    """

    def __init__(self, folder: str | Path, interval: float = 10.0):
        self.folder = Path(folder)
        self.path = self.folder / "state.json"
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.data = self.load()

    def load(self) -> dict:
        try:
            with open(self.path) as fh:
                return json.load(fh)
        except (OSError, json.JSONDecodeError):
            return {"attempts": 0, "wall_time_s": 0.0, "status": "new", "started_utc": None}

    def begin(self, write: bool = True) -> dict:
        """Count a new attempt and start the heartbeat; returns the state."""
        self.data["attempts"] = int(self.data.get("attempts", 0)) + 1
        self.data["status"] = "running"
        self.data["started_utc"] = self.data.get("started_utc") or utc_now()
        self._base = float(self.data.get("wall_time_s", 0.0))
        self._t0 = time.perf_counter()
        if write:
            self._save()
            self._thread = threading.Thread(target=self._beat, daemon=True)
            self._thread.start()
        return self.data

    def elapsed(self) -> float:
        return self._base + (time.perf_counter() - self._t0)

    def _save(self) -> None:
        with self._lock:
            self.data["wall_time_s"] = self.elapsed() if hasattr(self, "_t0") else self.data.get("wall_time_s", 0.0)
            self.data["updated_utc"] = utc_now()
            write_json_atomic(self.data, self.path)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(OSError):
                self._save()

    def end(self, status: str, write: bool = True) -> float:
        """Stop the heartbeat, record ``status``; returns the total wall time over all attempts."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        total = self.elapsed()
        self.data["status"] = status
        if write:
            with contextlib.suppress(OSError):
                self._save()
        return total


def provenance(*, device: str, seed: int, world_size: int, runtime: dict, wall_time_s: float, attempts: int,
               started_utc: str, command: str | None = None) -> dict:
    """Everything needed to tell where a result came from."""
    import torch

    commit, dirty = git_state()
    return {
        "git_commit": commit, "git_dirty": dirty, "packages": packages(), "device": str(device),
        "device_name": device_name(device), "world_size": int(world_size), "runtime": dict(runtime),
        "seed": int(seed), "wall_time_s": float(wall_time_s), "attempts": int(attempts),
        "started_utc": started_utc, "finished_utc": utc_now(),
        "command": command if command is not None else " ".join([Path(sys.executable).name, *sys.argv]),
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}; torch threads "
                    f"{torch.get_num_threads()}",
    }


def describe(record: dict, path: str | Path | None = None) -> str:
    """One line for a page: scale, file, commit, device, seed, date, wall time."""
    p = record["provenance"]
    hours = p["wall_time_s"] / 3600
    took = f"{hours:.1f} h" if hours >= 1 else f"{p['wall_time_s'] / 60:.1f} min"
    where = ""
    if path is not None:
        path = Path(path)
        with contextlib.suppress(ValueError):
            path = path.resolve().relative_to(REPO)
        where = f" from {path}"
    commit = p["git_commit"][:10] + ("+dirty" if p.get("git_dirty") else "")
    gpus = f"{p['world_size']} x " if p["world_size"] > 1 else ""
    return (f"{record['scale']} scale{where} (commit {commit}, {gpus}{p['device_name']}, seed {p['seed']}, "
            f"finished {p['finished_utc']}, {took} over {p['attempts']} attempt(s))")
