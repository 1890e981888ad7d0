"""The experiment runner: ``python -m lib.experiments list/run``, results with provenance and a
schema, atomic writes, kill -9 then resume equals an uninterrupted run, sweeps as independent
jobs, one-line errors, notebooks picking full-scale results up from ``results/``, and every
registered thesis table running at ci scale through the command line.

The tiny experiments below are registered by this file; the command-line runs import it with
``--import tests/test_experiments.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lib import train
from lib.config import seed_everything
from lib.data import load
from lib.experiments import REGISTRY, Experiment, RunContext, obtain, register, store
from lib.experiments.cli import execute, main
from lib.models import lenet5

REPO = Path(__file__).resolve().parents[1]
HERE = str(Path(__file__).resolve())
TINY = "test-tiny"
SWEEP = "test-sweep"


def _tiny(settings: dict, ctx: RunContext) -> dict:
    """LeNet-5 on a few hundred shipped Fashion-MNIST images; one checkpoint per epoch."""
    seed_everything(ctx.seed)
    torch.set_num_threads(1)  # one thread: same numbers in every process, and no OpenMP spinning on a busy box
    data = load(settings["dataset"], "train", scale="ci", download=False).subset(settings["n_per_class"], seed=1)
    tr, va = data.split(50, seed=2)
    model = lenet5()
    opt = train.sgd(model, lr=settings["lr"][0] if isinstance(settings["lr"], list) else settings["lr"])
    slow = float(settings["sleep"])

    def hook(m, o, epoch):  # a pause per epoch so that a test can kill the run mid-way
        time.sleep(slow)

    hist = train.fit(model, opt, tr, settings["epochs"], batch_size=50, milestones=(2,), seed=ctx.seed,
                     device=ctx.device, on_epoch_end=hook, val=va, checkpoint=ctx.checkpoint("model"),
                     progress=ctx.progress)
    digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.state_dict().values()))
    return {"loss": [h["loss"] for h in hist], "val": [h["val"] for h in hist],
            "acc": train.evaluate(model, va), "weights_sha256": digest.hexdigest()}


def _sweep(settings: dict, ctx: RunContext) -> dict:
    """One row per learning rate; each row reseeded, so a member alone gives its row."""
    rows = []
    for lr in settings["lr"]:
        rows.append({"lr": lr, **_tiny({**settings, "lr": lr}, ctx)})
    return {"rows": rows, "n_per_class": settings["n_per_class"]}


def _shared(settings: dict, ctx: RunContext) -> dict:
    """Trains the base model through a shared checkpoint named by a hash of what it depends on."""
    seed_everything(ctx.seed)
    torch.set_num_threads(1)
    data = load("fashion-mnist", "train", scale="ci").subset(10, seed=1)
    model = lenet5()
    opt = train.sgd(model, lr=0.05)
    name = "lenet-" + store.settings_hash({"epochs": settings["epochs"], "seed": ctx.seed})
    train.fit(model, opt, data, settings["epochs"], batch_size=50, seed=ctx.seed,
              checkpoint=ctx.shared_checkpoint(name), progress=False)
    digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.state_dict().values()))
    return {"weights_sha256": digest.hexdigest(), "which": settings["which"]}


_CI = {"dataset": "fashion-mnist", "n_per_class": 10, "epochs": 2, "lr": 0.05, "sleep": 0.0}
_FULL = {"dataset": "fashion-mnist", "n_per_class": 12, "epochs": 3, "lr": 0.05, "sleep": 0.0}
if TINY not in REGISTRY:
    register(Experiment(id=TINY, title="tiny LeNet-5 run for the runner's tests", settings={"ci": _CI, "full": _FULL},
                        run_fn=_tiny, cost={"ci": "~2 s CPU", "full": "~3 s CPU"}))
    register(Experiment(id=SWEEP, title="tiny learning-rate sweep", run_fn=_sweep, sweep="lr",
                        settings={"ci": {**_CI, "lr": [0.05, 0.1]}, "full": {**_FULL, "lr": [0.05, 0.1]}},
                        cost={"ci": "~4 s CPU", "full": "~6 s CPU"}))
    for which in "ab":
        register(Experiment(id=f"test-shared-{which}", title="two tables sharing one base model", run_fn=_shared,
                            settings={"ci": {"epochs": 2, "which": which}, "full": {"epochs": 3, "which": which}},
                            cost={"ci": "~1 s CPU", "full": "~1 s CPU"}))


def cli(*args, timeout=300, **kw):
    """Run ``python -m lib.experiments --import <this file> ARGS`` and return the completed process."""
    cmd = [sys.executable, "-m", "lib.experiments", *args[:1], "--import", HERE, *args[1:]]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, **kw)


def cli_here(capsys, *args) -> tuple[int, str, str]:
    """The same command line, run in this process (``lib.experiments.cli.main``): (status, stdout, stderr)."""
    capsys.readouterr()
    code = main([*args[:1], "--import", HERE, *args[1:]])
    out, err = capsys.readouterr()
    return code, out, err


def only_result(out: Path, exp_id: str) -> Path:
    files = sorted((out / exp_id).glob("*.json"))
    assert len(files) == 1, files
    return files[0]


# --------------------------------------------------------------------------------------------
# list, run, schema, provenance
# --------------------------------------------------------------------------------------------
def test_list_shows_ids_settings_and_cost(capsys):
    code, out, _ = cli_here(capsys, "list")
    assert code == 0
    assert f"{TINY}: tiny LeNet-5" in out
    assert "ci   (~2 s CPU)" in out and "full (~3 s CPU)" in out and '"n_per_class": 12' in out
    rows = {r["id"]: r for r in json.loads(cli_here(capsys, "list", "--json")[1])}
    assert rows[SWEEP]["members"] == {"ci": 2, "full": 2}
    assert rows[TINY]["settings"]["full"] == _FULL and rows[TINY]["cost"]["ci"] == "~2 s CPU"
    assert TINY in cli_here(capsys, "list", "--ids")[1].split()
    table = cli_here(capsys, "list", "--markdown")[1]
    assert f"| `{TINY}` | tiny LeNet-5 run for the runner's tests | ~2 s CPU | ~3 s CPU |" in table
    assert f"| `{SWEEP}` | tiny learning-rate sweep (sweep over `lr`: 2 jobs) |" in table


def test_run_writes_a_valid_result_with_provenance(tmp_path, capsys):
    res = cli("run", TINY, "--scale", "ci", "--device", "cpu", "--out", str(tmp_path), "--seed", "3")
    assert res.returncode == 0, res.stderr
    path = only_result(tmp_path, TINY)
    assert path.name == f"ci-seed3-{store.settings_hash(_CI)}.json"
    rec = store.read_result(path)  # validates against RESULT_SCHEMA
    p = rec["provenance"]
    assert rec["settings"] == _CI and rec["seed"] == 3 and rec["scale"] == "ci" and rec["member"] is None
    assert p["device"] == "cpu" and p["seed"] == 3 and p["attempts"] == 1 and p["world_size"] == 1
    assert p["packages"]["torch"] == torch.__version__ and p["wall_time_s"] > 0
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    assert p["git_commit"] == head
    assert p["command"].startswith("python -m lib.experiments run") and TINY in p["command"]
    assert len(rec["results"]["loss"]) == 2 and 0 <= rec["results"]["acc"] <= 100
    assert not (tmp_path / store.WORK / TINY).exists() or not any((tmp_path / store.WORK / TINY).iterdir())
    # The same command again reuses the result; --set changes the settings and so the file.
    code, _, err = cli_here(capsys, "run", TINY, "--scale", "ci", "--device", "cpu", "--out", str(tmp_path),
                            "--seed", "3")
    assert code == 0 and "already done" in err
    assert store.read_result(path) == rec
    code, _, err = cli_here(capsys, "run", TINY, "--scale", "ci", "--device", "cpu", "--out", str(tmp_path),
                            "--seed", "3", "--set", "epochs=1", "--quiet")
    assert code == 0, err
    files = sorted((tmp_path / TINY).glob("*.json"))
    assert len(files) == 2
    other = store.read_result(next(f for f in files if f != path))
    assert other["overrides"] == {"epochs": 1} and other["settings"]["epochs"] == 1
    assert len(other["results"]["loss"]) == 1


def test_schema_rejects_broken_records(tmp_path):
    exp = REGISTRY[TINY]
    path, rec = execute(exp, "ci", tmp_path, "cpu", 0, {"epochs": 1}, progress=False)
    store.validate(json.loads(path.read_text()))
    broken = [
        {k: v for k, v in rec.items() if k != "provenance"},
        {**rec, "scale": "huge"},
        {**rec, "settings_hash": "0" * 12},
        {**rec, "provenance": {k: v for k, v in rec["provenance"].items() if k != "git_commit"}},
        {**rec, "provenance": {**rec["provenance"], "wall_time_s": -1.0}},
        {**rec, "seed": -1},
    ]
    for bad in broken:
        with pytest.raises(ValueError, match="invalid"):
            store.validate(bad)
    with pytest.raises(ValueError, match=r"results\.x"):
        store.canonical({"x": object()})
    assert store.canonical({"a": (1, torch.tensor(2.5)), "b": torch.tensor(3)}) == {"a": [1, 2.5], "b": 3}


# --------------------------------------------------------------------------------------------
# Atomic writes and resume
# --------------------------------------------------------------------------------------------
CRASH = """
import os, sys
sys.path.insert(0, {repo!r})
from lib import files
from lib.experiments import store
def crash(src, dst):
    os._exit(9)  # the process dies after writing the temporary file, before the rename
files.os.replace = crash
store.write_json_atomic({{"version": 2, "pad": "x" * 100000}}, {path!r})
"""


def test_atomic_write_survives_a_crash_between_write_and_rename(tmp_path):
    path = tmp_path / "r.json"
    store.write_json_atomic({"version": 1}, path)
    res = subprocess.run([sys.executable, "-c", CRASH.format(repo=str(REPO), path=str(path))], capture_output=True)
    assert res.returncode == 9
    assert json.loads(path.read_text()) == {"version": 1}  # the old file, intact
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "r.json"]
    assert leftovers and all(n.startswith(".r.json.tmp") for n in leftovers)  # hidden, never a result
    assert store.find_result(tmp_path, "r", "ci", {}) is None
    store.write_json_atomic({"version": 3}, path)
    assert json.loads(path.read_text()) == {"version": 3}


def test_kill9_mid_run_then_rerun_equals_uninterrupted(tmp_path, capsys):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    args = ["--scale", "ci", "--device", "cpu", "--seed", "1", "--quiet", "--set", "epochs=4"]
    slow = [*args, "--set", "sleep=0.5"]
    # sleep only slows the run; it is a setting, so both runs use it and share one settings hash
    cmd = [sys.executable, "-m", "lib.experiments", "run", "--import", HERE, TINY, "--out", str(killed), *slow]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    settings = {**_CI, "epochs": 4, "sleep": 0.5}
    ck = store.work_dir(killed, TINY, "ci", 1, settings) / "model.pt"
    deadline = time.time() + 120
    while not ck.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert ck.exists(), f"no checkpoint appeared; rc={proc.poll()}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / TINY).exists() or not list((killed / TINY).glob("*.json"))  # nothing looks finished
    code, out, _ = cli_here(capsys, "status", "--out", str(killed))
    assert code == 0 and "running" in out and "model.pt" in out  # killed while running, resumable

    code, _, err = cli_here(capsys, "run", TINY, "--out", str(killed), *slow)
    assert code == 0, err
    assert "resuming (attempt 2)" in err
    code, _, err = cli_here(capsys, "run", TINY, "--out", str(clean), *slow)
    assert code == 0, err
    a, b = store.read_result(only_result(killed, TINY)), store.read_result(only_result(clean, TINY))
    assert a["provenance"]["attempts"] == 2 and b["provenance"]["attempts"] == 1
    assert a["results"] == b["results"]  # bit for bit: every loss, accuracy and the weights' SHA-256
    assert a["settings"] == b["settings"] == settings


def test_sweep_members_run_as_independent_jobs_and_merge(tmp_path, capsys):
    base = ["--scale", "ci", "--device", "cpu", "--out", str(tmp_path), "--quiet"]
    for k in (1, 0):  # independent jobs, in any order (on a GPU box: one per GPU, in parallel)
        code, _, err = cli_here(capsys, "run", SWEEP, *base, "--member", str(k))
        assert code == 0, err
    members = sorted((tmp_path / SWEEP / "members").glob("*.json"))
    assert len(members) == 2
    assert sorted(store.read_result(m)["member"]["value"] for m in members) == [0.05, 0.1]
    code, _, err = cli_here(capsys, "run", SWEEP, *base)  # finds both members done, merges
    assert code == 0, err
    assert err.count("already done") == 2
    rec = store.read_result(only_result(tmp_path, SWEEP))
    direct = REGISTRY[SWEEP].run("ci", RunContext(progress=False))
    assert [r["lr"] for r in rec["results"]["rows"]] == [0.05, 0.1]
    assert rec["results"] == store.canonical(direct)
    assert len(rec["provenance"]["members"]) == 2
    code, _, err = cli_here(capsys, "run", SWEEP, *base, "--member", "2")
    assert code == 2 and "--member must be in [0, 1]" in err


def test_tables_share_a_base_model_across_commands(tmp_path, capsys):
    base = ["--scale", "ci", "--device", "cpu", "--out", str(tmp_path), "--quiet"]
    code, _, err = cli_here(capsys, "run", "test-shared-a", *base)
    assert code == 0, err
    shared = list(store.shared_dir(tmp_path, "ci", 0).glob("*.pt"))
    assert len(shared) == 1 and torch.load(shared[0], weights_only=False)["epoch"] == 2
    stamp = shared[0].stat().st_mtime_ns
    code, _, err = cli_here(capsys, "run", "test-shared-a", "test-shared-b", *base)  # several ids, one process
    assert code == 0 and "test-shared-a: already done" in err, err
    assert shared[0].stat().st_mtime_ns == stamp  # b reused the model: nothing retrained, nothing rewritten
    a, b = (store.read_result(only_result(tmp_path, f"test-shared-{w}"))["results"] for w in "ab")
    assert a["weights_sha256"] == b["weights_sha256"] and (a["which"], b["which"]) == ("a", "b")
    code, out, _ = cli_here(capsys, "status", "--out", str(tmp_path))
    assert "1 checkpoint(s) shared" in out
    code, _, err = cli_here(capsys, "run", "test-shared-a", "test-shared-b", *base, "--set", "epochs=1")
    assert code == 2 and "name a single id" in err


# --------------------------------------------------------------------------------------------
# Bad input: one line, non-zero exit, nothing that looks finished
# --------------------------------------------------------------------------------------------
def _one_line_error(code, err, want, *needles):
    """Exit status ``want``; the error is one line starting with 'error: ' and is the last line."""
    assert code == want, (code, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    for n in needles:
        assert n in errors[0], errors[0]


def test_bad_input_gives_one_line_and_nonzero_exit(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    res = cli("run", "table-99.9", "--out", str(out))  # a real process: its exit status
    _one_line_error(res.returncode, res.stderr, 2, "unknown experiment id 'table-99.9'", "list")
    assert len(res.stderr.splitlines()) == 1
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    ci = ["--scale", "ci", "--device", "cpu"]
    _one_line_error(*cli_here(capsys, "run", TINY, *ci, "--out", str(blocker / "sub"))[::2], 2,
                    "not a writable folder", "--out")
    _one_line_error(*cli_here(capsys, "run", TINY, *ci, "--out", str(out), "--set", "nope=1")[::2], 2,
                    "no setting 'nope'")
    _one_line_error(*cli_here(capsys, "run", TINY, "--scale", "ci", "--device", "tpu", "--out", str(out))[::2], 2,
                    "--device")
    if not torch.cuda.is_available():
        _one_line_error(*cli_here(capsys, "run", TINY, "--scale", "ci", "--device", "cuda", "--out", str(out))[::2],
                        2, "no CUDA GPU", "--device cpu")
    assert not out.exists() or not list(out.rglob("*.json"))
    # A missing data set: the run fails with a pointer to the data, and no result file exists.
    monkeypatch.setenv("BOOK_DATA", str(tmp_path / "empty"))
    _one_line_error(*cli_here(capsys, "run", TINY, "--scale", "full", "--device", "cpu", "--out", str(out), "--set",
                              'dataset="cifar10"')[::2], 1, "cifar10", "BOOK_DATA", "resume")
    assert not list(out.glob(f"{TINY}/*.json"))
    states = list((out / store.WORK / TINY).glob("*/state.json"))
    assert len(states) == 1 and json.loads(states[0].read_text())["status"] == "failed"


# --------------------------------------------------------------------------------------------
# The book reads full-scale results from results/
# --------------------------------------------------------------------------------------------
def test_obtain_picks_a_matching_full_result(tmp_path, monkeypatch):
    exp = REGISTRY[TINY]
    monkeypatch.setenv("BOOK_SCALE", "ci")
    monkeypatch.setenv("BOOK_RESULTS", str(tmp_path))
    got = obtain(TINY, RunContext(progress=False))
    assert got["scale"] == "ci" and got["source"] == "computed now at ci scale" and got["provenance"] is None
    path, rec = execute(exp, "full", tmp_path, "cpu", 0, progress=False)
    got = obtain(TINY)
    assert got["scale"] == "full" and got["results"] == rec["results"] and got["path"] == str(path)
    assert got["source"].startswith("full scale from ") and rec["provenance"]["git_commit"][:10] in got["source"]
    # A result run with other settings is not the experiment's full-scale run.
    path.unlink()
    execute(exp, "full", tmp_path, "cpu", 0, {"epochs": 1}, progress=False)
    assert obtain(TINY, RunContext(progress=False))["scale"] == "ci"
    # A corrupt file is ignored, never half-read.
    (tmp_path / TINY / f"full-seed0-{store.settings_hash(_FULL)}.json").write_text('{"schema": 1, "id": ')
    assert obtain(TINY, RunContext(progress=False))["scale"] == "ci"
    monkeypatch.setenv("BOOK_RESULTS", "off")
    assert obtain(TINY, RunContext(progress=False))["scale"] == "ci"


NOTEBOOK = f"""
import sys
sys.path.insert(0, {str(REPO)!r})
from lib.experiments.cli import import_extra
import_extra({HERE!r})
from lib.experiments import obtain
r = obtain({TINY!r})
print(r["scale"], "|", r["source"], "|", r["results"]["weights_sha256"])
"""


def test_a_notebook_shows_the_full_result_with_provenance(tmp_path):
    """A notebook kernel started with BOOK_RESULTS pointing at a results folder shows the
    full-scale numbers and their provenance instead of computing at ci scale."""
    import nbformat
    from nbclient import NotebookClient

    _, rec = execute(REGISTRY[TINY], "full", tmp_path, "cpu", 0, progress=False)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(NOTEBOOK)])
    old = os.environ.get("BOOK_RESULTS")
    os.environ["BOOK_RESULTS"] = str(tmp_path)  # the kernel inherits the environment
    try:
        NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    finally:
        if old is None:
            os.environ.pop("BOOK_RESULTS")
        else:
            os.environ["BOOK_RESULTS"] = old
    text = "".join(o.get("text", "") for o in nb.cells[0].outputs if o.get("name") == "stdout")
    scale, source, sha = (s.strip() for s in text.split("|"))
    assert scale == "full" and sha == rec["results"]["weights_sha256"]
    assert "full scale from" in source and "seed 0" in source and "1 attempt(s)" in source


# --------------------------------------------------------------------------------------------
# Every registered thesis table and figure runs at ci scale through the command line
# --------------------------------------------------------------------------------------------
# The smoke run shrinks the ci settings further (the chapters' own notebooks run them at full ci
# size): the run must go through end to end and write a valid result, not reproduce a number.
SHRINK = {"epochs": 1, "finetune_epochs": 1, "retrain_epochs": 1, "pretrain_epochs": 1, "admm_finetune_epochs": 1,
          "l1_finetune_epochs": 1, "train_steps": 1, "n_per_class": 8, "n_test_per_class": 4, "n_val": 20,
          "cw_steps": 2, "ifgsm_steps": 2, "pgd_steps": 2, "eot": 1, "nattack_iterations": 2, "nattack_n": 8,
          "nattack_population": 4, "trials": 1, "repeats": 1, "power_iters": 2, "power_iters_path": 1,
          "calib_per_class": 4}
WHOLE_SET = ("n_per_class", "n_test_per_class")  # None means "all images": shrink those too
# Per-id corrections where the generic shrink does not fit an experiment.
SMOKE_OVERRIDES: dict[str, dict] = {"theorem-4.1": {"iterations": 10, "lipschitz_every": 5}}


def _chapter_ids() -> list[str]:
    from lib.experiments import catalog  # noqa: F401

    return sorted(k for k in REGISTRY if not k.startswith("test-"))


def smoke_overrides(exp_id: str) -> dict:
    ci = REGISTRY[exp_id].settings["ci"]
    out = {}
    for k, v in SHRINK.items():
        if k in ci and isinstance(ci[k], int) and not isinstance(ci[k], bool) and ci[k] > v:
            out[k] = v
        elif k in WHOLE_SET and k in ci and ci[k] is None:
            out[k] = v
    out.update({k: v for k, v in SMOKE_OVERRIDES.get(exp_id, {}).items() if k in ci})
    return out


# The thesis's tables (1.1, 3.1-3.2, 4.1-4.8) and the figures that come from training runs.
THESIS = ["table-1.1", "table-3.1", "table-3.2", *[f"table-4.{i}" for i in range(1, 9)], "fig-1.2", "fig-4.1",
          "fig-4.3", "fig-4.5"]


def test_every_thesis_table_has_an_id():
    ids = set(_chapter_ids())
    assert not set(THESIS) - ids, f"thesis tables/figures without an experiment: {sorted(set(THESIS) - ids)}"
    for e in (REGISTRY[i] for i in ids):
        assert e.title and e.settings["ci"] and e.settings["full"], e.id
        assert e.cost.get("ci") and e.cost.get("full"), f"{e.id} states no cost for each scale"


@pytest.mark.slow
@pytest.mark.parametrize("exp_id", _chapter_ids())
def test_registered_experiment_runs_at_ci_scale_through_the_cli(exp_id, tmp_path, capsys):
    sets = [f"{k}={json.dumps(v)}" for k, v in smoke_overrides(exp_id).items()]
    args = ["run", exp_id, "--scale", "ci", "--device", "cpu", "--out", str(tmp_path), "--quiet", "--threads", "1"]
    code, _, err = cli_here(capsys, *args, *[a for s in sets for a in ("--set", s)])
    assert code == 0, err[-2000:]
    rec = store.read_result(only_result(tmp_path, exp_id))
    assert rec["scale"] == "ci" and rec["results"], exp_id
