"""lib.config: the scale knob and seeding."""

import random

import numpy as np
import pytest
import torch

from lib import config


def test_scale_defaults_to_ci(monkeypatch):
    monkeypatch.delenv("BOOK_SCALE", raising=False)
    assert config.get_scale() == "ci"
    assert config.pick(1, 2) == 1


def test_scale_full_and_typo(monkeypatch):
    monkeypatch.setenv("BOOK_SCALE", "FULL")
    assert config.get_scale() == "full" and config.pick(1, 2) == 2
    monkeypatch.setenv("BOOK_SCALE", "fulll")
    with pytest.raises(ValueError, match="BOOK_SCALE"):
        config.get_scale()


def _draw():
    layer = torch.nn.Linear(4, 2)
    return random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist(), layer.weight.sum().item()


def test_seed_everything_repeats_numbers():
    config.seed_everything(123)
    first = _draw()
    config.seed_everything(123)
    assert _draw() == first
    config.seed_everything(124)
    assert _draw() != first


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_seed_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        config.seed_everything(bad)


def test_describe_names_scale_and_versions():
    line = config.describe()
    assert "BOOK_SCALE=ci" in line and "torch" in line and "device" in line


def test_device_refuses_cuda_without_gpu(monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    monkeypatch.setenv("BOOK_DEVICE", "cuda")
    with pytest.raises(ValueError, match="CUDA"):
        config.device()
