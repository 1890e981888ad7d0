"""Build the class-balanced Fashion-MNIST subset shipped in ``data/`` (the ``ci`` data set).

Source: Debian's ``dataset-fashion-mnist`` package (``apt-get install dataset-fashion-mnist``),
which installs the original gzipped IDX files under ``/usr/share/datasets/fashion-mnist``.
The selection is reproducible: a fixed NumPy seed picks ``N_TRAIN_PER_CLASS`` images of each
class from the official training split and ``N_TEST_PER_CLASS`` from the official test split,
in their original order. Run ``python tools/build_fashion_subset.py`` and commit both outputs:
``data/fashion_mnist_ci.npz`` and the checksum line in ``data/fashion_mnist_ci.sha256``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from pathlib import Path

import numpy as np

SRC = Path("/usr/share/datasets/fashion-mnist")
OUT = Path(__file__).resolve().parents[1] / "data"
SEED = 20200601
N_TRAIN_PER_CLASS = 1000
N_TEST_PER_CLASS = 200


def read_idx(path: Path) -> np.ndarray:
    """Read a gzipped IDX file (magic, dims, big-endian sizes, uint8 payload)."""
    raw = gzip.open(path, "rb").read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def balanced_indices(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    picks = [np.sort(rng.choice(np.flatnonzero(labels == c), per_class, replace=False)) for c in range(10)]
    return np.sort(np.concatenate(picks))


def main() -> None:
    if not SRC.exists():
        raise SystemExit(f"{SRC} not found: run 'apt-get install dataset-fashion-mnist' first")
    rng = np.random.default_rng(SEED)
    arrays = {}
    for split, prefix, per_class in (("train", "train", N_TRAIN_PER_CLASS), ("test", "t10k", N_TEST_PER_CLASS)):
        x = read_idx(SRC / f"{prefix}-images-idx3-ubyte.gz")
        y = read_idx(SRC / f"{prefix}-labels-idx1-ubyte.gz")
        idx = balanced_indices(y, per_class, rng)
        arrays[f"x_{split}"] = x[idx]
        arrays[f"y_{split}"] = y[idx]
        arrays[f"index_{split}"] = idx.astype(np.int32)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    payload = buf.getvalue()
    OUT.mkdir(exist_ok=True)
    (OUT / "fashion_mnist_ci.npz").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    (OUT / "fashion_mnist_ci.sha256").write_text(f"{digest}  fashion_mnist_ci.npz\n")
    print(f"wrote {len(payload) / 1e6:.2f} MB, sha256 {digest}")


if __name__ == "__main__":
    main()
