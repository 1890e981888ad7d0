"""``python -m lib.experiments``: list the thesis's tables and figures, run one at any scale.

    python -m lib.experiments list [--json]
    python -m lib.experiments run ID [ID ...|all] [--scale ci|full] [--device cpu|cuda] [--out results/]
                                     [--seed N] [--set KEY=VALUE ...] [--member K] [--fresh]
    python -m lib.experiments status [--out results/]
    torchrun --nproc_per_node=N -m lib.experiments run ID --scale full     (DistributedDataParallel)

A run checkpoints every epoch under ``OUT/.work/`` and, started again after an interruption
(even ``kill -9``), resumes there; its result is written atomically to
``OUT/ID/SCALE-seedN-HASH.json`` with its provenance. Errors are one line on stderr and a
non-zero exit status (2: bad input, 1: the run failed); set ``BOOK_DEBUG=1`` for tracebacks.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import shutil
import sys
import time
from pathlib import Path

from lib.config import SCALES, seed_everything, set_threads
from lib.experiments import store
from lib.experiments.base import REGISTRY, Experiment, RunContext, get


class UsageError(ValueError):
    """Bad input on the command line (exit status 2)."""


def _log(msg: str) -> None:
    from lib.train import is_main_process

    if is_main_process():
        print(msg, file=sys.stderr, flush=True)


def import_extra(spec: str) -> None:
    """Import a module (dotted name or ``.py`` path) that registers more experiments."""
    try:
        if spec.endswith(".py") or os.sep in spec:
            path = Path(spec).resolve()
            if not path.is_file():
                raise UsageError(f"--import {spec}: no such file")
            name = f"_book_extra_{path.stem}"
            if name in sys.modules:
                return
            mod_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules[name] = module
            mod_spec.loader.exec_module(module)
        else:
            importlib.import_module(spec)
    except ImportError as err:
        raise UsageError(f"--import {spec}: {err}") from None


def parse_overrides(items: list[str], exp: Experiment, scale: str) -> dict:
    """``KEY=VALUE`` pairs (VALUE read as JSON, else as a string) checked against the settings."""
    known = exp.settings[scale]
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set expects KEY=VALUE, got {item!r}")
        if key not in known:
            raise UsageError(f"--set {key}: {exp.id} has no setting {key!r}; its settings: {', '.join(sorted(known))}")
        try:
            out[key] = json.loads(text)
        except json.JSONDecodeError:
            out[key] = text
    return out


def check_device(device: str) -> str:
    """``cpu`` or ``cuda[:N]``; ``cuda`` without a visible GPU is an error that says what to do."""
    import torch

    if device == "cpu":
        return device
    if not device.startswith("cuda"):
        raise UsageError(f"--device must be 'cpu' or 'cuda' (or 'cuda:N'), got {device!r}")
    if not torch.cuda.is_available():
        raise UsageError(f"--device {device} was asked for but torch sees no CUDA GPU "
                         f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}); "
                         "run with --device cpu, or install a CUDA build of torch on a GPU machine")
    return device


def execute(exp: Experiment, scale: str = "ci", out: str | Path = "results", device: str = "cpu", seed: int = 0,
            overrides: dict | None = None, member: int | None = None, fresh: bool = False,
            progress: bool = True, keep_work: bool = False, command: str | None = None) -> tuple[Path, dict]:
    """Run ``exp`` (or member ``member`` of its sweep) resumably; return ``(result path, record)``.

    An existing result with the same id, scale, seed and settings is returned as it is (unless
    ``fresh``). Otherwise the run starts, or resumes from the checkpoints of an interrupted run,
    and its record (results plus provenance) is validated and written atomically by rank 0.
    A sweep run without ``member`` runs each member in turn (each resumable, each skipped when
    already done, e.g. by a parallel job) and merges them.
    """
    from lib.train import barrier, dist_info, is_main_process, runtime

    if scale not in SCALES:
        raise UsageError(f"--scale must be one of {SCALES}, got {scale!r}")
    if int(seed) != seed or seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, got {seed!r}")
    try:
        settings = store.canonical(exp.settings_for(scale, **(overrides or {})), "settings")
    except ValueError as err:
        raise UsageError(str(err)) from None
    members = exp.members(settings)
    if member is not None:
        if exp.sweep is None:
            raise UsageError(f"--member: {exp.id} is not a sweep, run it without --member")
        if not 0 <= member < len(members):
            raise UsageError(f"--member must be in [0, {len(members) - 1}] for {exp.id}, got {member}")
    out = Path(out)
    path = store.result_path(out, exp.id, scale, seed, settings, member)
    if path.exists() and not fresh:
        try:
            rec = store.read_result(path)
            _log(f"{exp.id}: already done, {store.describe(rec, path)}")
            return path, rec
        except (ValueError, json.JSONDecodeError):
            _log(f"{exp.id}: {path} is not a valid result; running again")

    work = store.work_dir(out, exp.id, scale, seed, settings, member)
    if fresh and is_main_process() and work.exists():
        shutil.rmtree(work)
    barrier()
    _, world, _ = dist_info()
    state = store.RunState(work)
    st = state.begin(write=is_main_process())
    label = exp.id + ("" if member is None else f" member {member + 1}/{len(members)}")
    if st["attempts"] > 1:
        _log(f"{label}: resuming (attempt {st['attempts']}) from {work}")
    else:
        _log(f"{label}: running at {scale} scale on {device} (seed {seed}, {world} process(es)) -> {path}")

    member_paths = []
    try:
        if exp.sweep is not None and member is None:
            parts = []
            for k in range(len(members)):
                p, rec = execute(exp, scale, out, device, seed, overrides, member=k, fresh=fresh, progress=progress,
                                 keep_work=keep_work, command=command)
                parts.append(rec["results"])
                member_paths.append(str(p))
            results = exp.combine(parts)
        else:
            ctx = RunContext(device=device, seed=int(seed), workdir=work, progress=progress and is_main_process(),
                             scale=scale, shared_dir=store.shared_dir(out, scale, seed))
            seed_everything(int(seed))
            results = exp.run_fn(dict(members[member] if member is not None else settings), ctx)
        if not isinstance(results, dict):
            raise ValueError(f"{exp.id}: run_fn must return a dict, got {type(results).__name__}")
        results = store.canonical(results, "results")
    except BaseException:
        state.end("failed", write=is_main_process())
        raise
    wall = state.end("finished", write=is_main_process())
    record = {
        "schema": store.SCHEMA_VERSION, "id": exp.id, "title": exp.title, "scale": scale, "seed": int(seed),
        "member": None if member is None else {"index": member, "of": len(members), "key": exp.sweep,
                                               "value": settings[exp.sweep][member]},
        "settings": settings, "overrides": store.canonical(overrides or {}, "overrides"),
        "settings_hash": store.settings_hash(settings), "results": results,
        "provenance": store.provenance(device=device, seed=int(seed), world_size=world,
                                       runtime=vars(runtime()), wall_time_s=wall, attempts=st["attempts"],
                                       started_utc=st["started_utc"], command=command),
    }
    if member_paths:
        record["provenance"]["members"] = member_paths
    store.validate(record)
    if is_main_process():
        store.write_json_atomic(record, path)
        if not keep_work:
            shutil.rmtree(work, ignore_errors=True)
    barrier()
    _log(f"{label}: done in {wall:.1f} s -> {path}")
    return path, record


# --------------------------------------------------------------------------------------------
# Sub-commands
# --------------------------------------------------------------------------------------------
def _all() -> list[Experiment]:
    from lib.experiments import catalog  # noqa: F401  (registers every chapter's experiments)

    return [REGISTRY[k] for k in sorted(REGISTRY, key=_sort_key)]


def _sort_key(exp_id: str):
    kind, _, num = exp_id.partition("-")
    parts = []
    for p in num.replace("-", ".").split("."):
        parts.append((0, int(p), "") if p.isdigit() else (1, 0, p))
    return (kind, parts)


def cmd_list(args) -> int:
    exps = _all()
    if args.json:
        rows = [{"id": e.id, "title": e.title, "settings": store.canonical(e.settings, "settings"),
                 "cost": e.cost, "sweep": e.sweep,
                 "members": {s: len(e.members(e.settings[s])) for s in SCALES}} for e in exps]
        print(json.dumps(rows, indent=1, sort_keys=True))
        return 0
    if args.ids:
        print("\n".join(e.id for e in exps))
        return 0
    if args.markdown:
        print("| id | what | ci cost | full-scale cost |")
        print("|---|---|---|---|")
        for e in exps:
            title = e.title.replace("|", "/")
            sweep = f" (sweep over `{e.sweep}`: {len(e.members(e.settings['full']))} jobs)" if e.sweep else ""
            print(f"| `{e.id}` | {title}{sweep} | {e.cost.get('ci', '?')} | {e.cost.get('full', '?')} |")
        return 0
    if not exps:
        print("no experiments registered (chapter modules lib/experiments/ch*.py register them)")
        return 0
    for e in exps:
        sweep = f"  [sweep over {e.sweep!r}]" if e.sweep else ""
        print(f"{e.id}: {e.title}{sweep}")
        for s in SCALES:
            cost = e.cost.get(s, "cost not stated")
            print(f"    {s:<4} ({cost}): {json.dumps(store.canonical(e.settings[s], 'settings'), sort_keys=True)}")
    print(f"{len(exps)} experiment(s); run one with: python -m lib.experiments run ID --scale full --device cuda")
    return 0


def cmd_run(args) -> int:
    from lib.config import device as default_device
    from lib.train import init_distributed, set_runtime

    ids = [e.id for e in _all()] if args.id == ["all"] else list(dict.fromkeys(args.id))
    exps = [get(i) for i in ids]
    if len(exps) > 1 and (args.set or args.member is not None):
        raise UsageError("--set and --member apply to one experiment; name a single id")
    overrides = parse_overrides(args.set or [], exps[0], args.scale)
    device = check_device(args.device or default_device())
    cuda = device.startswith("cuda")
    set_runtime(amp=cuda and not args.no_amp, channels_last=cuda and not args.no_channels_last,
                compile=args.compile, deterministic=args.deterministic, sync_bn=args.sync_bn)
    if args.threads is not None:
        set_threads(args.threads)
    try:
        out = store.check_writable(args.out)
    except ValueError as err:
        raise UsageError(str(err)) from None
    device = init_distributed(device)
    command = " ".join(["python -m lib.experiments", *sys.argv[1:]]) if args.command is None else args.command
    for exp in exps:  # one process: experiments share the models they cache in memory
        execute(exp, args.scale, out, device, args.seed, overrides, args.member, args.fresh,
                progress=not args.quiet, keep_work=args.keep_work, command=command)
    return 0


def cmd_status(args) -> int:
    out = Path(args.out)
    if not out.is_dir():
        print(f"{out}: no results yet")
        return 0
    for f in sorted(out.glob("*/*.json")) + sorted(out.glob("*/members/*.json")):
        try:
            rec = store.read_result(f)
            print(f"done     {rec['id']}: {store.describe(rec, f)}")
        except (ValueError, json.JSONDecodeError, OSError) as err:
            print(f"invalid  {f}: {err}")
    for folder in sorted((out / store.WORK / "shared").glob("*")):
        ckpts = sorted(folder.glob("*.pt"))
        print(f"shared   {folder.name}: {len(ckpts)} checkpoint(s) shared between experiments, "
              f"{sum(p.stat().st_size for p in ckpts) / 2**20:.1f} MiB (delete the folder once every table is done)")
    for st in sorted((out / store.WORK).glob("*/*/state.json")):
        data = json.loads(st.read_text())
        ckpts = sorted(p.name for p in st.parent.glob("*.pt"))
        print(f"{data.get('status', '?'):<8} {st.parent.parent.name} {st.parent.name}: {data.get('attempts')} "
              f"attempt(s), {data.get('wall_time_s', 0) / 60:.1f} min so far, checkpoints {ckpts or 'none'} "
              "(run the same command again to resume)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                        help="also import MODULE (dotted name or .py file) that registers experiments")
    ap = argparse.ArgumentParser(prog="python -m lib.experiments", description=__doc__.splitlines()[0],
                                 parents=[common])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("list", parents=[common], help="every experiment with its settings and cost per scale")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--ids", action="store_true", help="only the ids, one per line")
    p.add_argument("--markdown", action="store_true", help="a Markdown table of ids and costs (for the README)")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("run", parents=[common], help="run one experiment (resumes an interrupted run)")
    p.add_argument("id", nargs="+", help="experiment id(s), e.g. table-3.1 (see 'list'), or 'all'")
    p.add_argument("--scale", default="full", choices=SCALES, help="ci or full (default: full)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--out", default=str(store.results_dir() or store.REPO / "results"),
                   help="results folder (default: $BOOK_RESULTS or results/)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override one setting (JSON value)")
    p.add_argument("--member", type=int, default=None, help="run only member K (0-based) of a sweep")
    p.add_argument("--fresh", action="store_true", help="discard checkpoints and an existing result, start over")
    p.add_argument("--keep-work", action="store_true", help="keep the checkpoints after the run ends")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    p.add_argument("--no-channels-last", action="store_true", help="keep NCHW memory format on CUDA")
    p.add_argument("--compile", action="store_true", help="torch.compile the training forward")
    p.add_argument("--deterministic", action="store_true", help="deterministic algorithms, no cuDNN autotuning")
    p.add_argument("--sync-bn", action="store_true", help="synchronised BatchNorm under torchrun")
    p.add_argument("--command", default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("status", parents=[common], help="finished results and interrupted runs")
    p.add_argument("--out", default=str(store.results_dir() or store.REPO / "results"))
    p.set_defaults(func=cmd_status)
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    debug = os.environ.get("BOOK_DEBUG", "") not in ("", "0")
    t0 = time.perf_counter()
    try:
        for spec in args.imports:
            import_extra(spec)
        return args.func(args)
    except BrokenPipeError:  # e.g. `list | head`: the reader has gone, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume from the last checkpoint", file=sys.stderr)
        return 130
    except (UsageError, FileNotFoundError, ValueError, RuntimeError, OSError) as err:
        if debug:
            raise
        usage = isinstance(err, UsageError) or (isinstance(err, ValueError) and "unknown experiment id" in str(err))
        hint = "" if usage or args.cmd != "run" else (" (checkpoints are kept: fix the cause and run the same command "
                                                       "again to resume)")
        msg = " ".join(str(err).split())
        print(f"error: {msg}{hint}", file=sys.stderr)
        return 2 if usage else 1
    finally:
        if debug:
            print(f"[{time.perf_counter() - t0:.1f} s]", file=sys.stderr)
