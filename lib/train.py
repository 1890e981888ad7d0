"""The training loop shared by every chapter: epochs, a step learning-rate schedule, evaluation,
an optional input perturbation (PGD adversarial training, Section 4.2.2), an epoch-end hook
(RVSM/RGSM replace w by u there, Section 3.1.4), best-validation selection, and a checkpoint
after every epoch from which an interrupted run resumes to the same result.
"""

from __future__ import annotations

import copy
import os
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from lib.data import ImageSet, batches

Perturb = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: ImageSet, batch_size: int = 500, device: str = "cpu") -> float:
    """Top-1 accuracy (%) of ``model`` on ``data`` in evaluation mode."""
    model.eval()
    correct = 0
    for x, y in batches(data, batch_size, device=device):
        correct += (model(x).argmax(1) == y).sum().item()
    return 100.0 * correct / len(data)


def train_epoch(model, optimizer, data: ImageSet, batch_size: int, seed: int, device: str = "cpu",
                augment: bool = False, perturb: Perturb | None = None, progress: bool = False,
                desc: str = "batches") -> dict:
    """One pass over ``data``; with ``perturb`` the model is trained on ``perturb(model, x, y)``.

    Returns the mean training loss and accuracy (%) on the (possibly perturbed) inputs.
    """
    total_loss, correct, seen = 0.0, 0, 0
    n_batches = -(-len(data) // batch_size)
    for x, y in tqdm(batches(data, batch_size, shuffle=True, augment=augment, seed=seed, device=device),
                     total=n_batches, disable=not progress, leave=False, desc=desc):
        if perturb is not None:
            x = perturb(model, x, y)
        model.train()
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        seen += len(y)
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
    """``torch.save`` to a temporary file in the same folder, then rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


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
      resumed run ends bit for bit where the uninterrupted one does.

    Returns the history: one dict per epoch (loss, train_acc, lr, and val when given).
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(milestones), gamma)
    history: list[dict] = []
    best_score, best_state, start = -float("inf"), None, 0
    if checkpoint is not None and Path(checkpoint).exists():
        ck = torch.load(checkpoint, map_location=device, weights_only=False)
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        scheduler.load_state_dict(ck["scheduler"])
        history, best_score, best_state, start = ck["history"], ck["best_score"], ck["best_state"], ck["epoch"]
        _set_rng_state(ck["rng"])
    if val is not None and val_metric is None:
        def val_metric(m):
            return evaluate(m, val, device=device)
    for epoch in tqdm(range(start, epochs), initial=start, total=epochs, disable=not progress, desc=desc):
        row = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"]}
        row.update(train_epoch(model, optimizer, train, batch_size, seed * 100003 + epoch, device, augment, perturb))
        scheduler.step()
        if on_epoch_end is not None:
            on_epoch_end(model, optimizer, epoch)
        if val_metric is not None:
            row["val"] = val_metric(model)
            if row["val"] > best_score:
                best_score, best_state = row["val"], copy.deepcopy(model.state_dict())
        history.append(row)
        if checkpoint is not None:
            save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "scheduler": scheduler.state_dict(), "history": history, "best_score": best_score,
                         "best_state": best_state, "epoch": epoch + 1, "rng": _rng_state()}, checkpoint)
    if best_state is not None:
        model.load_state_dict(best_state)
    return history


def sgd(model: torch.nn.Module, lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 5e-4,
        nesterov: bool = True) -> torch.optim.SGD:
    """The thesis's optimizer: SGD with (Nesterov) momentum 0.9 and weight decay 5e-4."""
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
