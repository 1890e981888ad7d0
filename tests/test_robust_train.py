"""PGD adversarial training (lib.robust.train) through lib.train.fit: the perturbation is the
PGD adversary, any optimizer acts in back-propagation, resume from a checkpoint equals an
uninterrupted run, and adversarial training buys robustness that natural training lacks."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from lib.config import seed_everything
from lib.data import ImageSet, load
from lib.robust import adversarial_fit, ifgsm, pgd_perturb, robust_accuracy
from lib.train import fit


def small_data(n_per_class: int, split: str = "train") -> ImageSet:
    data = load("fashion-mnist", split, scale="ci").subset(n_per_class, seed=0)
    data.x = F.avg_pool2d(data.x.float(), 2).round().to(torch.uint8)  # 14x14 keeps the test fast
    return data


def cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(8 * 7 * 7, 10))


def test_perturb_is_the_pgd_adversary_and_keeps_parameters():
    seed_everything(0)
    model = cnn().train()
    x, y = torch.rand(16, 1, 14, 14), torch.randint(0, 10, (16,))
    before = [p.detach().clone() for p in model.parameters()]
    running = model[1].running_mean.clone()
    per = pgd_perturb(steps=3)
    torch.manual_seed(5)
    xa = per(model, x, y)
    assert (xa - x).abs().max().item() <= 8 / 255 + 1e-6 and 0 <= xa.min() and xa.max() <= 1
    assert model.training  # mode restored
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(running, model[1].running_mean)  # BN statistics untouched (eval mode inside)
    # same as ifgsm with a random start drawn from the same global generator state
    torch.manual_seed(5)
    assert torch.allclose(xa, ifgsm(model, x, y, steps=3, random_start=True))


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="eps"):
        pgd_perturb(eps=-1)
    with pytest.raises(ValueError, match="alpha"):
        pgd_perturb(alpha=0)
    with pytest.raises(ValueError, match="steps"):
        pgd_perturb(steps=0)
    with pytest.raises(ValueError, match="eot"):
        pgd_perturb(eot=0)


def test_resume_from_checkpoint_equals_uninterrupted(tmp_path):
    data = small_data(20)
    kw = dict(batch_size=50, milestones=(2,), seed=3, perturb=pgd_perturb(steps=2), progress=False)

    seed_everything(0)
    m1 = cnn()
    h1 = fit(m1, torch.optim.SGD(m1.parameters(), lr=0.05, momentum=0.9), data, 3, **kw)

    ck = tmp_path / "run.pt"
    seed_everything(0)
    m2 = cnn()
    fit(m2, torch.optim.SGD(m2.parameters(), lr=0.05, momentum=0.9), data, 2, checkpoint=ck, **kw)
    seed_everything(123)  # a different process state: the checkpoint restores the RNGs
    m3 = cnn()
    h3 = fit(m3, torch.optim.SGD(m3.parameters(), lr=0.05, momentum=0.9), data, 3, checkpoint=ck, **kw)
    assert [r["loss"] for r in h1] == [r["loss"] for r in h3]
    for a, b in zip(m1.state_dict().values(), m3.state_dict().values()):
        assert torch.equal(a, b)


def test_adversarial_training_buys_robustness():
    """Same budget, same seed: PGD training raises IFGSM accuracy well above natural training's."""
    train, test = small_data(150), small_data(30, "test")
    out = {}
    for name, per in (("natural", None), ("pgd", pgd_perturb(eps=0.1, alpha=0.04, steps=3))):
        seed_everything(0)
        m = cnn()
        fit(m, torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9), train, 3, batch_size=50, perturb=per,
            progress=False)
        out[name] = (robust_accuracy(m, test, None), robust_accuracy(m, test, ifgsm, eps=0.1, alpha=0.02, steps=10))
    assert out["natural"][0] > 60
    assert out["pgd"][1] > out["natural"][1] + 10


def test_adversarial_fit_split_selects_best_validation():
    data = small_data(20)
    seed_everything(0)
    m = cnn()
    hist = adversarial_fit(m, torch.optim.SGD(m.parameters(), lr=0.05), data, 2, perturb=pgd_perturb(steps=1),
                           n_val=40, batch_size=40, progress=False)
    assert len(hist) == 2 and all("val" in r for r in hist)
    _, val = data.split(40, seed=0)
    assert robust_accuracy(m, val, None) == pytest.approx(max(r["val"] for r in hist))
