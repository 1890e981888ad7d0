"""lib.data: the shipped subset's checksum, shapes, dtype and balance; clear errors, never random data."""

import shutil

import numpy as np
import pytest
import torch

import lib.data as data


@pytest.mark.parametrize("split,n", [("train", 10_000), ("test", 2_000)])
def test_shipped_subset_shapes_dtype_balance(split, n):
    s = data.load("fashion-mnist", split, scale="ci")
    assert s.x.shape == (n, 1, 28, 28) and s.x.dtype == torch.uint8
    assert s.y.shape == (n,) and s.y.dtype == torch.int64
    assert torch.bincount(s.y, minlength=10).tolist() == [n // 10] * 10
    assert s.num_classes == 10 and s.shape == (1, 28, 28)
    assert 0 < s.x.float().mean() < 255  # real images, not a constant array


def test_shipped_subset_matches_debian_source():
    """The shipped images are the official ones at the recorded indices (needs the Debian package)."""
    src = data.REPO / "tools" / "build_fashion_subset.py"
    assert src.exists()
    debian = data.Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
    if not debian.exists():
        pytest.skip("dataset-fashion-mnist is not installed")
    import importlib.util

    spec = importlib.util.spec_from_file_location("build", src)
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    official = build.read_idx(debian)
    with np.load(data.SHIPPED) as z:
        assert np.array_equal(official[z["index_test"]], z["x_test"])


def test_corrupted_file_is_refused(tmp_path, monkeypatch):
    bad = tmp_path / "fashion_mnist_ci.npz"
    shutil.copy(data.SHIPPED, bad)
    raw = bytearray(bad.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    bad.write_bytes(bytes(raw))
    monkeypatch.setattr(data, "SHIPPED", bad)
    with pytest.raises(ValueError, match="corrupted"):
        data.load("fashion-mnist", "train", scale="ci")


def test_missing_shipped_file_says_how_to_restore(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "SHIPPED", tmp_path / "absent.npz")
    with pytest.raises(FileNotFoundError, match="git checkout"):
        data.load("fashion-mnist", "test", scale="ci")


def test_missing_torchvision_set_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("BOOK_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="BOOK_DATA"):
        data.load("cifar10", "train", scale="full", download=False)


@pytest.mark.parametrize("kwargs", [{"name": "svhn"}, {"name": "mnist", "split": "val"}])
def test_bad_names_raise(kwargs):
    with pytest.raises(ValueError):
        data.load(**kwargs)


def test_batches_are_reproducible_floats_in_unit_interval():
    s = data.load("fashion-mnist", "test", scale="ci").subset(20, seed=1)
    assert len(s) == 200 and torch.bincount(s.y).tolist() == [20] * 10
    a = [(x.clone(), y.clone()) for x, y in data.batches(s, 64, shuffle=True, augment=True, seed=3)]
    b = list(data.batches(s, 64, shuffle=True, augment=True, seed=3))
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))
    x = torch.cat([x for x, _ in a])
    assert x.dtype == torch.float32 and x.min() >= 0 and x.max() <= 1 and len(x) == 200


def test_split_is_disjoint_and_complete():
    s = data.load("fashion-mnist", "test", scale="ci")
    tr, va = s.split(500, seed=0)
    assert len(tr) == 1500 and len(va) == 500
    with pytest.raises(ValueError):
        s.split(0)
