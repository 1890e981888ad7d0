"""The training loop shared by every chapter: epochs, a step learning-rate schedule, evaluation,
an optional input perturbation (PGD adversarial training, Section 4.2.2), an epoch-end hook
(RVSM/RGSM replace w by u there, Section 3.1.4), best-validation selection, and a checkpoint
after every epoch from which an interrupted run resumes to the same result.

The GPU path (used by ``python -m lib.experiments run ... --device cuda``) is switched on by
:func:`set_runtime` / :func:`configure` rather than by new arguments, so the chapters' calls of
:func:`fit` and :func:`evaluate` need no change:

* ``amp``: bf16 autocast of forward passes and input perturbations (CUDA only; bf16 needs no
  loss scaling);
* ``channels_last``: model and input batches in NHWC memory format (CUDA only);
* ``pin_memory``: batches are copied to page-locked memory and sent with non-blocking copies,
  one batch ahead of the computation;
* ``compile``: the training forward goes through ``torch.compile``;
* ``deterministic``: ``torch.use_deterministic_algorithms(True)`` and no cuDNN autotuning;
* under ``torchrun --nproc_per_node=N`` (``WORLD_SIZE > 1``) the model is wrapped in
  ``DistributedDataParallel``: every rank draws the same shuffled global batch of ``batch_size``
  and trains on its ``1/N`` share of it, so the gradient is that of the global batch (up to the
  per-rank BatchNorm statistics; ``sync_bn`` makes those global too). Rank 0 writes checkpoints.

On CPU none of these options changes a number: a run is bit for bit the run without them.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import gc
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm  # plain text bars: tqdm.auto warns in kernels without ipywidgets

from lib.data import ImageSet, batches
from lib.files import write_atomic

Perturb = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------------------------
# Run-time options (the GPU path) and distributed helpers
# --------------------------------------------------------------------------------------------
@dataclass
class Runtime:
    """How :func:`fit` and :func:`evaluate` execute (not what they compute)."""

    amp: bool = False
    channels_last: bool = False
    pin_memory: bool = True
    compile: bool = False
    deterministic: bool = False
    sync_bn: bool = False


_RUNTIME = Runtime()


def runtime() -> Runtime:
    """The active :class:`Runtime` options (a copy)."""
    return dataclasses.replace(_RUNTIME)


def set_runtime(**options) -> Runtime:
    """Set run-time options for the rest of the process (e.g. ``set_runtime(amp=True)``); return them."""
    global _RUNTIME
    known = {f.name for f in dataclasses.fields(Runtime)}
    unknown = set(options) - known
    if unknown:
        raise ValueError(f"unknown runtime option(s) {sorted(unknown)}; allowed: {sorted(known)}")
    for k, v in options.items():
        if not isinstance(v, bool):
            raise ValueError(f"runtime option {k} must be True or False, got {v!r}")
    _RUNTIME = dataclasses.replace(_RUNTIME, **options)
    return runtime()


@contextlib.contextmanager
def configure(**options) -> Iterator[Runtime]:
    """Context manager: run-time options inside the ``with`` block, the previous ones after it."""
    global _RUNTIME
    saved = _RUNTIME
    try:
        yield set_runtime(**options)
    finally:
        _RUNTIME = saved


def dist_info() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` of this process (``(0, 1, 0)`` outside ``torchrun``)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))
    return 0, 1, 0


def is_main_process() -> bool:
    """True on rank 0 (and outside ``torchrun``): the process that writes files."""
    return dist_info()[0] == 0


def init_distributed(device: str = "cpu") -> str:
    """Join the ``torchrun`` process group (NCCL on CUDA, Gloo on CPU) if ``WORLD_SIZE > 1``.

    Returns the device this rank should use: ``cuda:LOCAL_RANK`` for ``device='cuda'`` under
    ``torchrun``, otherwise ``device`` unchanged. Calling it twice is harmless.
    """
    import torch.distributed as dist

    rank, world, local = dist_info()
    if world == 1:
        return device
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
    return device


def barrier() -> None:
    """Wait for every rank (no-op outside a process group)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _all_sum(values: list[float], device: str) -> list[float]:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def _cuda(device: str) -> bool:
    return str(device).startswith("cuda")


def _autocast(device: str, rt: Runtime):
    if rt.amp and _cuda(device):
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


_DETERMINISM_SET_HERE = False


def _apply_determinism(device: str, rt: Runtime) -> None:
    """Switch deterministic algorithms on for ``rt.deterministic``, and off again afterwards
    only if this module switched them on (a caller's own global setting is left alone)."""
    global _DETERMINISM_SET_HERE
    if rt.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        if not torch.are_deterministic_algorithms_enabled():
            torch.use_deterministic_algorithms(True)
            _DETERMINISM_SET_HERE = True
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        return
    if _DETERMINISM_SET_HERE:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
        _DETERMINISM_SET_HERE = False
    if _cuda(device):
        torch.backends.cudnn.benchmark = True


def device_batches(data: ImageSet, batch_size: int, shuffle: bool = False, augment: bool = False,
                   seed: int | None = None, device: str = "cpu", rt: Runtime | None = None,
                   rank: int = 0, world: int = 1):
    """:func:`lib.data.batches` on ``device``, the GPU path applied, and this rank's share.

    On CUDA each batch is pinned and copied with ``non_blocking=True`` one batch ahead, so the
    copy overlaps the computation on the previous batch. Under DDP rank ``r`` of ``N`` keeps rows
    ``r, r + N, ...`` of every global batch (a batch with fewer than ``N`` rows is skipped on all
    ranks alike). On CPU with one process this yields exactly what ``batches`` yields.
    """
    rt = _RUNTIME if rt is None else rt
    cuda = _cuda(device)

    def move(x, y):
        if world > 1:
            x, y = x[rank::world], y[rank::world]
        if cuda:
            if rt.pin_memory:
                x, y = x.pin_memory(), y.pin_memory()
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if rt.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
        elif str(device) != "cpu":
            x, y = x.to(device), y.to(device)
        return x, y

    pending = None
    for x, y in batches(data, batch_size, shuffle=shuffle, augment=augment, seed=seed, device="cpu"):
        if len(y) < world:
            continue
        ready = move(x, y)
        if pending is not None:
            yield pending
        pending = ready
    if pending is not None:
        yield pending


# --------------------------------------------------------------------------------------------
# Evaluation and training
# --------------------------------------------------------------------------------------------
@torch.no_grad()
def evaluate(model: torch.nn.Module, data: ImageSet, batch_size: int = 500, device: str = "cpu") -> float:
    """Top-1 accuracy (%) of ``model`` on ``data`` in evaluation mode (every rank sees all of ``data``)."""
    rt = _RUNTIME
    model.eval()
    correct = 0
    for x, y in device_batches(data, batch_size, device=device, rt=rt):
        with _autocast(device, rt):
            correct += (model(x).argmax(1) == y).sum().item()
    return 100.0 * correct / len(data)


def train_epoch(model, optimizer, data: ImageSet, batch_size: int, seed: int, device: str = "cpu",
                augment: bool = False, perturb: Perturb | None = None, progress: bool = False,
                desc: str = "batches", net: torch.nn.Module | None = None) -> dict:
    """One pass over ``data``; with ``perturb`` the model is trained on ``perturb(model, x, y)``.

    ``net`` is the module that runs the training forward (a DDP or compiled wrapper of
    ``model``; default ``model``); ``perturb`` always receives the plain ``model``.
    Returns the mean training loss and accuracy (%) on the (possibly perturbed) inputs, over
    all ranks.
    """
    rt = _RUNTIME
    net = model if net is None else net
    rank, world, _ = dist_info()
    total_loss, correct, seen = 0.0, 0, 0
    n_batches = -(-len(data) // batch_size)
    loader = device_batches(data, batch_size, shuffle=True, augment=augment, seed=seed, device=device, rt=rt,
                            rank=rank, world=world)
    for x, y in tqdm(loader, total=n_batches, disable=not progress, leave=False, desc=desc):
        if perturb is not None:
            with _autocast(device, rt):
                x = perturb(model, x, y)
        model.train()
        with _autocast(device, rt):
            logits = net(x)
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        seen += len(y)
    if world > 1:
        total_loss, correct, seen = _all_sum([total_loss, float(correct), float(seen)], device)
    return {"loss": total_loss / seen, "train_acc": 100.0 * correct / seen}


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_atomic(obj, path: str | Path) -> None:
    """``torch.save`` through :func:`lib.files.write_atomic`: a crash at any moment leaves either
    the previous file or the new one, never half a file."""
    write_atomic(path, lambda fh: torch.save(obj, fh))


def _sync_buffers(model: torch.nn.Module) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics) so evaluations agree."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        for b in model.buffers():
            dist.broadcast(b, 0)


def fit(model: torch.nn.Module, optimizer: torch.optim.Optimizer, train: ImageSet, epochs: int,
        batch_size: int = 128, milestones: tuple[int, ...] = (), gamma: float = 0.1, seed: int = 0,
        device: str = "cpu", augment: bool = False, perturb: Perturb | None = None,
        on_epoch_end: Callable[[torch.nn.Module, torch.optim.Optimizer, int], None] | None = None,
        val: ImageSet | None = None, val_metric: Callable[[torch.nn.Module], float] | None = None,
        checkpoint: str | Path | None = None, progress: bool = True, desc: str = "epochs") -> list[dict]:
    """Train for ``epochs`` epochs with the learning rate divided by ``1/gamma`` at each milestone.

    * ``on_epoch_end(model, optimizer, epoch)`` runs after each epoch (e.g. RVSM loads u into w).
    * With ``val`` (or ``val_metric``) the state with the best validation score is loaded into
      ``model`` at the end (the thesis's 45k/5k selection); otherwise the last state is kept.
    * With ``checkpoint`` the model, optimizer, schedule, history and RNG states are saved
      atomically after every epoch, and a run that finds the file resumes from it: on CPU the
      resumed run ends bit for bit where the uninterrupted one does. A checkpoint written with
      another seed, batch size or schedule is refused (``ValueError``), never silently mixed in.
    * The run-time options of :func:`set_runtime` (bf16, channels_last, compile, DDP ...) apply.

    Returns the history: one dict per epoch (loss, train_acc, lr, and val when given).
    """
    if int(epochs) != epochs or epochs < 0:
        raise ValueError(f"epochs must be an integer >= 0, got {epochs}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size}")
    if not gamma > 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    rt = _RUNTIME
    rank, world, local = dist_info()
    if world > 1:
        device = init_distributed(device)
    _apply_determinism(device, rt)
    if rt.channels_last and _cuda(device):
        model.to(memory_format=torch.channels_last)

    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(milestones), gamma)
    meta = {"batch_size": int(batch_size), "milestones": [int(m) for m in milestones], "gamma": float(gamma),
            "seed": int(seed)}
    history: list[dict] = []
    best_score, best_state, start = -float("inf"), None, 0
    if checkpoint is not None and Path(checkpoint).exists():
        ck = torch.load(checkpoint, map_location=device, weights_only=False)
        if ck.get("meta", meta) != meta:
            raise ValueError(f"checkpoint {checkpoint} was written by a run with {ck['meta']}, not {meta}; "
                             "delete it (or run with --fresh) to start over")
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        scheduler.load_state_dict(ck["scheduler"])
        history, best_score, best_state, start = ck["history"], ck["best_score"], ck["best_state"], ck["epoch"]
        _set_rng_state(ck["rng"])

    net = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        if rt.sync_bn:
            net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
        net = DDP(net, device_ids=[local] if _cuda(device) else None)
    if rt.compile:
        net = torch.compile(net)

    if val is not None and val_metric is None:
        def val_metric(m):
            return evaluate(m, val, device=device)
    for epoch in tqdm(range(start, epochs), initial=start, total=epochs, disable=not progress or rank != 0,
                      desc=desc):
        row = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"]}
        row.update(train_epoch(model, optimizer, train, batch_size, seed * 100003 + epoch, device, augment, perturb,
                               net=net))
        scheduler.step()
        if world > 1:
            _sync_buffers(model)
        if on_epoch_end is not None:
            on_epoch_end(model, optimizer, epoch)
        if val_metric is not None:
            row["val"] = val_metric(model)
            if row["val"] > best_score:
                best_score, best_state = row["val"], copy.deepcopy(model.state_dict())
        history.append(row)
        if checkpoint is not None:
            if rank == 0:
                save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                             "scheduler": scheduler.state_dict(), "history": history, "best_score": best_score,
                             "best_state": best_state, "epoch": epoch + 1, "rng": _rng_state(), "meta": meta},
                            checkpoint)
            barrier()
    if world > 1:  # drop the DDP reducer (and its gradient hooks) now, so that a later fit can wrap the model again
        del net
        gc.collect()
    if best_state is not None:
        model.load_state_dict(best_state)
    return history


def sgd(model: torch.nn.Module, lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 5e-4,
        nesterov: bool = True) -> torch.optim.SGD:
    """The thesis's optimizer: SGD with (Nesterov) momentum 0.9 and weight decay 5e-4."""
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
