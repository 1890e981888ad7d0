"""lib.train: checkpoint resume equals an uninterrupted run (bit for bit on CPU, also after a
``kill -9``), atomic checkpoints, the GPU-path options are no-ops on CPU, DDP (gloo, 2 ranks)
matches one process, bad input is refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from lib import files, train
from lib.config import seed_everything
from lib.data import batches, load
from lib.models import lenet5

REPO = Path(__file__).resolve().parents[1]
THREADS = 1  # the same in every process; one thread also avoids OpenMP spinning on a busy machine


@pytest.fixture(scope="module")
def small():
    data = load("fashion-mnist", "train", scale="ci").subset(40, seed=1)  # 400 images
    return data.split(100, seed=2)


def _digest(model) -> list[float]:
    return [p.detach().double().sum().item() for p in model.state_dict().values() if p.is_floating_point()]


def _same_state(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _run(tr, va, epochs, checkpoint=None, stop_after=None, noisy=True):
    """LeNet-5, SGD with a milestone, a random input perturbation, an epoch hook and validation."""
    torch.set_num_threads(THREADS)
    seed_everything(3)
    model = lenet5()
    opt = train.sgd(model, lr=0.05)

    def perturb(m, x, y):  # consumes the global RNG, as PGD's random start does
        return (x + 0.01 * torch.randn_like(x)).clamp(0, 1) if noisy else x

    def hook(m, o, epoch):
        with torch.no_grad():
            m.fc3.weight.mul_(0.999)

    hist = train.fit(model, opt, tr, epochs if stop_after is None else stop_after, batch_size=50, milestones=(2,),
                     seed=5, perturb=perturb, on_epoch_end=hook, val=va, checkpoint=checkpoint, progress=False)
    return model, hist


def test_resume_equals_uninterrupted_bit_for_bit(small, tmp_path):
    tr, va = small
    ref, ref_hist = _run(tr, va, 4)
    ck = tmp_path / "ck.pt"
    _run(tr, va, 4, checkpoint=ck, stop_after=2)  # the "interrupted" run: two epochs, then it stops
    assert torch.load(ck, weights_only=False)["epoch"] == 2
    resumed, hist = _run(tr, va, 4, checkpoint=ck)  # a fresh process state resumes from epoch 2
    assert hist == ref_hist
    assert _same_state(resumed, ref)
    # A finished checkpoint is a cache: running again trains nothing and returns the same model.
    again, hist2 = _run(tr, va, 4, checkpoint=ck)
    assert hist2 == ref_hist and _same_state(again, ref)


CHILD = textwrap.dedent("""
    import sys, time, torch
    sys.path.insert(0, {repo!r})
    sys.path.insert(0, {tests!r})
    import test_train as T
    from lib.data import load
    data = load("fashion-mnist", "train", scale="ci").subset(40, seed=1)
    tr, va = data.split(100, seed=2)
    orig = T.train.evaluate
    def slow_evaluate(*a, **k):  # slow down each epoch so the kill lands mid-run
        time.sleep(0.4)
        return orig(*a, **k)
    T.train.evaluate = slow_evaluate
    T._run(tr, va, 4, checkpoint={ck!r})
    print("finished", flush=True)
""")


def test_kill9_mid_run_then_resume(small, tmp_path):
    tr, va = small
    ck = tmp_path / "ck.pt"
    code = CHILD.format(repo=str(REPO), tests=str(REPO / "tests"), ck=str(ck))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.time() + 120
    while not ck.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert ck.exists(), proc.stderr.read().decode() if proc.poll() is not None else "no checkpoint in 120 s"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL  # really killed, not finished
    done = torch.load(ck, weights_only=False)["epoch"]
    assert 1 <= done < 4
    resumed, hist = _run(tr, va, 4, checkpoint=ck)
    ref, ref_hist = _run(tr, va, 4)
    assert hist == ref_hist
    assert _same_state(resumed, ref)


def test_checkpoint_from_other_settings_is_refused(small, tmp_path):
    tr, va = small
    ck = tmp_path / "ck.pt"
    _run(tr, va, 1, checkpoint=ck)
    model = lenet5()
    with pytest.raises(ValueError, match="checkpoint"):
        train.fit(model, train.sgd(model), tr, 2, batch_size=64, seed=5, checkpoint=ck, progress=False)


def test_save_atomic_keeps_old_file_when_rename_fails(tmp_path, monkeypatch):
    path = tmp_path / "ck.pt"
    train.save_atomic({"v": 1}, path)

    def crash(src, dst):
        raise OSError("simulated crash between write and rename")

    monkeypatch.setattr(files.os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        train.save_atomic({"v": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=False) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]


def test_gpu_options_change_nothing_on_cpu(small):
    tr, va = small
    ref, ref_hist = _run(tr, va, 2)
    with train.configure(amp=True, channels_last=True, pin_memory=True, deterministic=False):
        got, hist = _run(tr, va, 2)
    assert train.runtime() == train.Runtime()
    with train.configure(deterministic=True):
        got, hist = _run(tr, va, 2)
        assert torch.are_deterministic_algorithms_enabled()
    assert hist == ref_hist and _same_state(got, ref)
    _run(tr, va, 0)  # the next run without the option switches them off again
    assert not torch.are_deterministic_algorithms_enabled()
    assert hist == ref_hist and _same_state(got, ref)
    a = list(batches(tr, 64, shuffle=True, augment=True, seed=4))
    b = list(train.device_batches(tr, 64, shuffle=True, augment=True, seed=4, rt=train.Runtime(pin_memory=True)))
    assert len(a) == len(b) and all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b))


def test_sharded_batches_partition_the_global_batch(small):
    tr, _ = small
    whole = list(train.device_batches(tr, 64, shuffle=True, seed=9))
    r0 = list(train.device_batches(tr, 64, shuffle=True, seed=9, rank=0, world=2))
    r1 = list(train.device_batches(tr, 64, shuffle=True, seed=9, rank=1, world=2))
    assert len(whole) == len(r0) == len(r1)
    for (x, y), (x0, y0), (x1, y1) in zip(whole, r0, r1):
        assert torch.equal(torch.sort(torch.cat([y0, y1])).values, torch.sort(y).values)
        assert torch.equal(x[0::2], x0) and torch.equal(x[1::2], x1)


def test_bad_input_is_refused(small):
    tr, _ = small
    model = lenet5()
    with pytest.raises(ValueError, match="epochs"):
        train.fit(model, train.sgd(model), tr, -1)
    with pytest.raises(ValueError, match="batch_size"):
        train.fit(model, train.sgd(model), tr, 1, batch_size=0)
    with pytest.raises(ValueError, match="lr"):
        train.sgd(model, lr=0)
    with pytest.raises(ValueError, match="unknown runtime option"):
        train.set_runtime(bf16=True)
    with pytest.raises(ValueError, match="amp"):
        train.set_runtime(amp="yes")


DDP_SCRIPT = textwrap.dedent("""
    import sys, torch
    sys.path.insert(0, {repo!r})
    from lib import train
    from lib.config import seed_everything
    from lib.data import load
    from lib.models import lenet5
    torch.set_num_threads(1)
    data = load("fashion-mnist", "train", scale="ci").subset(32, seed=1)  # 320 images = 5 batches of 64
    seed_everything(0)
    model = lenet5()
    opt = train.sgd(model, lr=0.05)
    hist = train.fit(model, opt, data, 2, batch_size=64, seed=1, checkpoint={ck!r}, progress=False)
    opt = train.sgd(model, lr=0.01)  # a second fit wraps the same model in DDP again (fine-tuning stages do)
    hist += train.fit(model, opt, data, 1, batch_size=64, seed=2, progress=False)
    rank, world, _ = train.dist_info()
    torch.save({{"state": model.state_dict(), "hist": hist, "world": world}}, {out!r} + f".{{rank}}")
""")


@pytest.mark.slow
def test_ddp_two_cpu_ranks_match_one_process(tmp_path):
    """torchrun --nproc_per_node=2 on gloo: each rank trains on half of every global batch; the
    averaged gradient is the global batch's, so the weights match the one-process run (to float
    rounding: the reduction order differs) and both ranks hold identical weights."""
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT.format(repo=str(REPO), ck=str(tmp_path / "ddp.pt"), out=str(tmp_path / "ddp")))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)]
    res = subprocess.run(torchrun, capture_output=True, text=True, timeout=240, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    one = tmp_path / "one.py"
    one.write_text(DDP_SCRIPT.format(repo=str(REPO), ck=str(tmp_path / "one.pt"), out=str(tmp_path / "one")))
    res = subprocess.run([sys.executable, str(one)], capture_output=True, text=True, timeout=240, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    r0, r1, single = (torch.load(tmp_path / n, weights_only=False) for n in ("ddp.0", "ddp.1", "one.0"))
    assert r0["world"] == 2 and single["world"] == 1
    for k in single["state"]:
        assert torch.equal(r0["state"][k], r1["state"][k])
        assert torch.allclose(r0["state"][k], single["state"][k], rtol=1e-4, atol=1e-5), k
    for a, b in zip(r0["hist"], single["hist"]):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
        assert a["train_acc"] == pytest.approx(b["train_acc"], abs=1e-9)
    assert (tmp_path / "ddp.pt").exists()  # rank 0 wrote the checkpoint
