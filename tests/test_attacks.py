"""Attacks of lib.robust.attacks against independent ground truth: closed forms, constraints,
torchattacks' PGD on the same trained model, and the EOT/noise behaviour."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from lib.config import seed_everything
from lib.data import batches, load
from lib.robust import attacks as A
from lib.robust.attacks import cw, fgsm, ifgsm, nattack, robust_accuracy

EPS = 8 / 255


def linear_model(seed: int = 0, d: int = 12, k: int = 4) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(d, k))


@pytest.fixture(scope="module")
def trained_cnn():
    """A small CNN trained for one epoch on 2,000 shipped Fashion-MNIST images (14x14)."""
    seed_everything(0)
    data = load("fashion-mnist", "train", scale="ci").subset(200, seed=0)
    data.x = F.avg_pool2d(data.x.float(), 2).round().to(torch.uint8)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(8 * 7 * 7, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(2):
        for x, y in batches(data, 64, shuffle=True, seed=0):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    test = load("fashion-mnist", "test", scale="ci").subset(30, seed=1)
    test.x = F.avg_pool2d(test.x.float(), 2).round().to(torch.uint8)
    x, y = next(batches(test, 300))
    return model.eval(), x, y


def test_fgsm_linear_closed_form():
    """For logits W x + b, grad_x CE = W^T (softmax - onehot): FGSM is x + eps sign(W^T (p - e_y)), clipped."""
    model = linear_model()
    torch.manual_seed(1)
    x = torch.rand(16, 12)
    y = torch.randint(0, 4, (16,))
    lin = model[1]
    p = torch.softmax(x @ lin.weight.T + lin.bias, 1)
    grad = (p - F.one_hot(y, 4).float()) @ lin.weight
    expected = (x + EPS * grad.sign()).clamp(0, 1)
    assert torch.allclose(fgsm(model, x, y), expected, atol=1e-7)


def test_ifgsm_one_step_equals_fgsm_when_alpha_is_eps():
    model = linear_model(2)
    x, y = torch.rand(8, 12), torch.randint(0, 4, (8,))
    assert torch.allclose(ifgsm(model, x, y, eps=EPS, alpha=EPS, steps=1), fgsm(model, x, y), atol=1e-7)


def test_margin_loss_by_hand():
    z = torch.tensor([[3.0, 1.0, 2.5], [0.0, 4.0, 1.0]])
    y = torch.tensor([0, 2])
    # image 0: max other 2.5 - 3 = -0.5; image 1: 4 - 1 = 3 -> clamped at kappa = 0
    assert A.margin_loss(z, y).item() == pytest.approx(-0.5)
    assert A.margin_loss(z, y, kappa=10.0).item() == pytest.approx(2.5)


@pytest.mark.parametrize("name", ["fgsm", "ifgsm", "ifgsm_rs", "cw", "nattack"])
def test_attacks_stay_in_ball_and_box(trained_cnn, name):
    model, x, y = trained_cnn
    x, y = x[:60], y[:60]
    gen = torch.Generator().manual_seed(0)
    adv = {"fgsm": lambda: fgsm(model, x, y),
           "ifgsm": lambda: ifgsm(model, x, y, steps=5),
           "ifgsm_rs": lambda: ifgsm(model, x, y, steps=3, random_start=True, generator=gen),
           "cw": lambda: cw(model, x, y, steps=5),
           "nattack": lambda: nattack(model, x, y, population=20, iterations=5, generator=gen)}[name]()
    assert adv.shape == x.shape
    assert (adv - x).abs().max().item() <= EPS + 1e-6
    assert adv.min().item() >= 0.0 and adv.max().item() <= 1.0
    assert not model.training


def test_attacks_lower_accuracy_in_expected_order(trained_cnn):
    model, x, y = trained_cnn
    nat = A.accuracy(model, x, y)
    a_fgsm = A.accuracy(model, fgsm(model, x, y), y)
    a_pgd = A.accuracy(model, ifgsm(model, x, y, steps=10), y)
    a_cw = A.accuracy(model, cw(model, x, y, steps=10), y)
    a_nat = A.accuracy(model, nattack(model, x, y, population=30, iterations=20,
                                      generator=torch.Generator().manual_seed(0)), y)
    assert nat > 60.0
    assert a_pgd <= a_fgsm + 1e-9 < nat
    assert a_cw < nat - 10.0
    assert a_nat < nat - 10.0


def test_our_pgd_at_least_as_strong_as_torchattacks(trained_cnn):
    torchattacks = pytest.importorskip("torchattacks")
    model, x, y = trained_cnn
    torch.manual_seed(0)
    theirs = torchattacks.PGD(model, eps=EPS, alpha=2 / 255, steps=10, random_start=True)(x, y)
    ours = ifgsm(model, x, y, eps=EPS, alpha=2 / 255, steps=10, random_start=True,
                 generator=torch.Generator().manual_seed(1))
    acc_theirs, acc_ours = A.accuracy(model, theirs, y), A.accuracy(model, ours, y)
    assert acc_ours <= acc_theirs + 1.0
    assert acc_ours < A.accuracy(model, x, y) - 10.0


def test_torchattacks_same_start_same_result(trained_cnn):
    """Without random start both implementations are the same deterministic map."""
    torchattacks = pytest.importorskip("torchattacks")
    model, x, y = trained_cnn
    theirs = torchattacks.PGD(model, eps=EPS, alpha=2 / 255, steps=5, random_start=False)(x, y)
    ours = ifgsm(model, x, y, eps=EPS, alpha=2 / 255, steps=5)
    assert (theirs - ours).abs().max().item() < 1e-5


class Noisy(nn.Module):
    """A linear classifier whose logits carry large Gaussian noise even in eval mode."""

    def __init__(self, scale: float):
        super().__init__()
        torch.manual_seed(3)
        self.lin = nn.Linear(12, 4)
        self.scale = scale

    def forward(self, x):
        z = self.lin(x)
        return z + self.scale * torch.randn_like(z) * z.detach().std()


def test_eot_averages_gradient_of_noisy_model():
    """EOT's M-sample gradient has the Monte Carlo error ~ 1/sqrt(M) around the expected gradient
    (reference: 600 samples); a single noisy gradient is far from it."""
    torch.manual_seed(0)
    model = Noisy(2.0)
    x, y = torch.rand(64, 12), torch.randint(0, 4, (64,))
    g_ref = A.input_gradient(model, x, y, eot=600)
    err = lambda g: (g - g_ref).norm().item() / g_ref.norm().item()  # noqa: E731
    e1 = sum(err(A.input_gradient(model, x, y, eot=1)) for _ in range(3)) / 3
    e64 = sum(err(A.input_gradient(model, x, y, eot=64)) for _ in range(3)) / 3
    assert e64 < e1 / 4  # 1/sqrt(64) = 1/8 expected
    assert e1 > 0.3


def test_eot_on_deterministic_model_changes_nothing(trained_cnn):
    model, x, y = trained_cnn
    assert torch.allclose(ifgsm(model, x[:20], y[:20], steps=3), ifgsm(model, x[:20], y[:20], steps=3, eot=3))


def test_robust_accuracy_matches_batchwise(trained_cnn):
    model, x, y = trained_cnn
    from lib.data import ImageSet

    data = ImageSet((x * 255).round().to(torch.uint8), y, 10, "t", "t")
    acc = robust_accuracy(model, data, fgsm, batch_size=70)
    assert acc == pytest.approx(A.accuracy(model, fgsm(model, data.x.float() / 255, y), y), abs=1e-6)


def test_bad_inputs_raise():
    model = linear_model()
    x, y = torch.rand(4, 12), torch.randint(0, 4, (4,))
    with pytest.raises(ValueError, match="eps"):
        fgsm(model, x, y, eps=-0.1)
    with pytest.raises(ValueError, match="alpha"):
        ifgsm(model, x, y, alpha=0.0)
    with pytest.raises(ValueError, match="steps"):
        ifgsm(model, x, y, steps=0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fgsm(model, x * 2 + 0.5, y)
    with pytest.raises(ValueError, match="eot"):
        cw(model, x, y, eot=0)
    with pytest.raises(ValueError, match="population"):
        nattack(model, x, y, population=1)
    with pytest.raises(ValueError, match="iterations"):
        nattack(model, x, y, iterations=0)
    with pytest.raises(ValueError, match="n "):
        robust_accuracy(model, None, fgsm, n=0)
