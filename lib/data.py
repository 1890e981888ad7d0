"""Data sets of the book: the shipped Fashion-MNIST subset (``ci``) and torchvision's sets (``full``).

``load(name, split)`` returns an :class:`ImageSet` of uint8 images (N, C, H, W) and int64
labels; :func:`batches` turns one into shuffled float batches in [0, 1] (optionally with the
random-crop and flip augmentation used for CIFAR in the thesis's experiments). There is no
silent fallback: a missing or corrupted data set raises an error that says how to get it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lib.config import get_scale

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "data" / "fashion_mnist_ci.npz"
SHIPPED_SHA = REPO / "data" / "fashion_mnist_ci.sha256"
NAMES = ("fashion-mnist", "mnist", "cifar10", "cifar100")
SPLITS = ("train", "test")


@dataclass
class ImageSet:
    """Images ``x`` (uint8, N x C x H x W), labels ``y`` (int64, N), and where they came from."""

    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    name: str
    source: str

    def __len__(self) -> int:
        return len(self.y)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one image."""
        return tuple(self.x.shape[1:])

    def subset(self, n_per_class: int | None = None, seed: int = 0) -> ImageSet:
        """A class-balanced subset with ``n_per_class`` images of each class (all if None)."""
        if n_per_class is None:
            return self
        gen = torch.Generator().manual_seed(seed)
        idx = []
        for c in range(self.num_classes):
            members = torch.nonzero(self.y == c).flatten()
            if len(members) < n_per_class:
                raise ValueError(
                    f"class {c} of {self.name} has {len(members)} images, fewer than n_per_class={n_per_class}"
                )
            idx.append(members[torch.randperm(len(members), generator=gen)[:n_per_class]])
        idx = torch.sort(torch.cat(idx)).values
        return ImageSet(self.x[idx], self.y[idx], self.num_classes, self.name, self.source + f" [{n_per_class}/class]")

    def pooled(self, size: int) -> ImageSet:
        """Images average-pooled to ``size`` x ``size`` (rounded back to uint8): cheaper ci-scale runs.

        ``size`` must divide the image side; the side itself returns the set unchanged.
        """
        side = self.x.shape[-1]
        if size == side:
            return self
        if not 0 < size < side or side % size:
            raise ValueError(f"image size must divide the image side {side}, got {size}")
        x = torch.nn.functional.avg_pool2d(self.x.float(), side // size).round().to(torch.uint8)
        return ImageSet(x, self.y, self.num_classes, self.name, self.source + f" [avg-pooled to {size}x{size}]")

    def split(self, n_val: int, seed: int = 0) -> tuple[ImageSet, ImageSet]:
        """Random (train, validation) split with ``n_val`` validation images (e.g. CIFAR's 45k/5k)."""
        if not 0 < n_val < len(self):
            raise ValueError(f"n_val must be in (0, {len(self)}), got {n_val}")
        perm = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        tr, va = perm[n_val:].sort().values, perm[:n_val].sort().values
        return (
            ImageSet(self.x[tr], self.y[tr], self.num_classes, self.name, self.source + " [train part]"),
            ImageSet(self.x[va], self.y[va], self.num_classes, self.name, self.source + " [validation part]"),
        )


def data_root() -> Path:
    """Folder for torchvision data sets: ``$BOOK_DATA`` or ``~/.cache/book-data``."""
    return Path(os.environ.get("BOOK_DATA", Path.home() / ".cache" / "book-data")).expanduser()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_shipped(split: str) -> ImageSet:
    """The shipped, checksum-verified Fashion-MNIST subset (10,000 train / 2,000 test)."""
    if not SHIPPED.exists():
        raise FileNotFoundError(
            f"{SHIPPED} is missing: restore it with 'git checkout -- data/' or rebuild it with "
            "'apt-get install dataset-fashion-mnist && python tools/build_fashion_subset.py'"
        )
    expected = SHIPPED_SHA.read_text().split()[0]
    actual = _sha256(SHIPPED)
    if actual != expected:
        raise ValueError(
            f"{SHIPPED} is corrupted: SHA-256 {actual} differs from the recorded {expected}; "
            "restore it with 'git checkout -- data/' or rebuild it with tools/build_fashion_subset.py"
        )
    with np.load(SHIPPED) as z:
        x = torch.from_numpy(z[f"x_{split}"].copy()).unsqueeze(1)
        y = torch.from_numpy(z[f"y_{split}"].astype(np.int64))
    return ImageSet(x, y, 10, "fashion-mnist", f"shipped Fashion-MNIST subset ({split}, {len(y)} images)")


def _torchvision(name: str, split: str, download: bool) -> ImageSet:
    import torchvision.datasets as tvd

    classes = {"fashion-mnist": tvd.FashionMNIST, "mnist": tvd.MNIST, "cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100}
    cls = classes[name]
    root = data_root()
    try:
        ds = cls(str(root), train=(split == "train"), download=download)
    except Exception as err:  # network or integrity failures: say how to get the files
        raise FileNotFoundError(
            f"data set {name!r} ({split}) is not under {root} and could not be downloaded ({err}). "
            f"Download it on a machine with network access with torchvision "
            f"(torchvision.datasets.{cls.__name__}(root, download=True)) and copy it to {root}, "
            "or point $BOOK_DATA at a folder that holds it."
        ) from err
    data = ds.data if isinstance(ds.data, torch.Tensor) else torch.from_numpy(np.asarray(ds.data))
    x = data.unsqueeze(1) if data.ndim == 3 else data.permute(0, 3, 1, 2)
    y = torch.as_tensor(ds.targets, dtype=torch.int64)
    return ImageSet(x.contiguous(), y, len(ds.classes), name, f"torchvision {cls.__name__} ({split}) under {root}")


def load(name: str, split: str = "train", scale: str | None = None, download: bool = True) -> ImageSet:
    """Load data set ``name`` (``fashion-mnist``, ``mnist``, ``cifar10``, ``cifar100``), split ``split``.

    At ``ci`` scale ``fashion-mnist`` is the shipped subset; every other case reads torchvision's
    files under :func:`data_root` (downloading them when the network allows).
    """
    if name not in NAMES:
        raise ValueError(f"unknown data set {name!r}; choose one of {NAMES}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    scale = get_scale() if scale is None else scale
    if name == "fashion-mnist" and scale == "ci":
        return load_shipped(split)
    return _torchvision(name, split, download)


def augment_crop_flip(x: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop after zero padding by ``pad`` and random horizontal flip (standard CIFAR augmentation)."""
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).tolist()
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).tolist()
    flip = torch.rand(n, generator=generator) < 0.5
    out = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])
    out[flip] = out[flip].flip(-1)
    return out


def batches(data: ImageSet, batch_size: int, shuffle: bool = False, augment: bool = False,
            seed: int | None = None, device: str = "cpu"):
    """Yield ``(x, y)`` batches, ``x`` float32 in [0, 1] on ``device``.

    Shuffling and augmentation draw from a generator seeded with ``seed``, so the same seed gives
    the same batches. No input normalisation (as in the thesis's code: attacks work in [0, 1]).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    gen = torch.Generator().manual_seed(0 if seed is None else seed)
    order = torch.randperm(len(data), generator=gen) if shuffle else torch.arange(len(data))
    for start in range(0, len(data), batch_size):
        idx = order[start : start + batch_size]
        x = data.x[idx].float().div_(255.0)
        if augment:
            x = augment_crop_flip(x, generator=gen)
        yield x.to(device, non_blocking=True), data.y[idx].to(device, non_blocking=True)
