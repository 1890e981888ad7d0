"""lib.models: parameter counts against the thesis and hand counts, shapes, EnResNet's noise."""

import pytest
import torch

from lib import models


@pytest.mark.parametrize("ctor,expected,tol", [
    (models.resnet20, 0.27e6, 0.01e6),   # thesis: ResNet20 about 0.27M
    (models.resnet38, 0.56e6, 0.01e6),   # thesis: ResNet38 about 0.56M
    (lambda: models.enresnet(2), 0.54e6, 0.01e6),  # thesis: En2ResNet20 about 0.54M
    (models.resnet18, 11.17e6, 0.01e6),
    (models.vgg16, 14.72e6, 0.01e6),
])
def test_parameter_counts_match_the_thesis(ctor, expected, tol):
    assert abs(models.count_parameters(ctor()) - expected) < tol


def test_lenet_count_by_hand():
    # conv1 6*1*25+6, conv2 16*6*25+16, fc 256*120+120, 120*84+84, 84*10+10 (28x28 input)
    assert models.count_parameters(models.lenet5()) == 156 + 2416 + 30840 + 10164 + 850
    # the classic 32x32 LeNet-5 has 400 inputs to fc1: about 60K as Table 1.1 says
    assert models.count_parameters(models.lenet5(input_size=32)) == 156 + 2416 + 48120 + 10164 + 850
    convs = [m for m in models.lenet5().modules() if isinstance(m, torch.nn.Conv2d)]
    assert sum(c.in_channels for c in convs) == 7  # Table 4.1's 7 channels


@pytest.mark.parametrize("ctor", [models.lenet5, models.resnet20, models.resnet38, models.resnet18, models.vgg16,
                                  lambda **kw: models.enresnet(2, **kw)])
@pytest.mark.parametrize("in_channels,side,classes", [(1, 28, 10), (3, 32, 100)])
def test_every_model_takes_channels_and_classes(ctor, in_channels, side, classes):
    kwargs = {"in_channels": in_channels, "num_classes": classes}
    if ctor is models.lenet5:
        kwargs["input_size"] = side
    if ctor in (models.resnet18, models.vgg16):
        kwargs["width"] = 0.125
    out = ctor(**kwargs).eval()(torch.rand(2, in_channels, side, side))
    assert out.shape == (2, classes)


def test_enresnet_noise_stays_on_at_evaluation_and_scales_with_std():
    torch.manual_seed(0)
    net = models.enresnet(2, in_channels=1).eval()
    x = torch.rand(4, 1, 28, 28)
    assert not torch.equal(net(x), net(x))
    quiet = models.enresnet(2, noise=0.0, in_channels=1).eval()
    assert torch.equal(quiet(x), quiet(x))
    block = models.PreActBlock(4, 4, noise=0.1).eval()
    z = torch.randn(64, 4, 8, 8)
    clean = models.PreActBlock(4, 4, noise=0.0).eval()
    clean.load_state_dict(block.state_dict())
    diff = block(z) - clean(z)  # the added noise: 0.1 * std(out) * N(0, 1)
    assert abs(diff.std().item() / (0.1 * clean(z).std().item()) - 1) < 0.05


def test_ensemble_averages_member_logits():
    net = models.enresnet(3, noise=0.0, in_channels=1).eval()
    x = torch.rand(2, 1, 28, 28)
    mean = sum(m(x) for m in net.members) / 3
    assert torch.allclose(net(x), mean, atol=1e-6)


@pytest.mark.parametrize("call", [
    lambda: models.resnet20(in_channels=0), lambda: models.resnet20(num_classes=1),
    lambda: models.PreActResNet(depth=21), lambda: models.enresnet(0), lambda: models.vgg16(width=0),
    lambda: models.lenet5(input_size=8), lambda: models.PreActResNet(noise=-0.1),
])
def test_bad_arguments_raise(call):
    with pytest.raises(ValueError):
        call()
