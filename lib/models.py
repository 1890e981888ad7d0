"""Network architectures used in the thesis (Chapters 1, 3, 4 and 5).

Every constructor takes ``in_channels`` and ``num_classes``, so the same code runs on the
shipped 28x28 grey-scale Fashion-MNIST subset (``ci`` scale) and on 32x32 colour CIFAR
(``full`` scale). Models know no optimizer.

* :func:`lenet5` -- LeNet-5 (LeCun et al. 1998) as in Table 4.1: two 5x5 conv layers with
  6 and 16 filters, so 1 + 6 = 7 input channels on MNIST.
* :func:`resnet20`, :func:`resnet38` -- CIFAR pre-activation ResNets (He et al. 2016), the
  baseline of Section 4.2 as in the EnResNet authors' code: a 3x3 stem conv with 16 channels
  and no BN, three stages of 16/32/64 channels, a bare 1x1 conv shortcut on the pre-activated
  input when the shape changes, then BN, ReLU, global average pooling and a linear layer.
* :func:`enresnet` -- the Feynman-Kac formalism principled ensemble En_nResNet (Wang et al.
  2019, Section 4.2.1): ``n`` such ResNets whose residual blocks add Gaussian noise of scale
  ``noise * std(block output)``, kept on at evaluation, with logits averaged over members.
* :func:`resnet18`, :func:`vgg16` -- the CIFAR ResNet18 and VGG16 of Tables 3.1, 3.2, 4.2,
  4.3, with a ``width`` multiplier so that ``ci`` scale can run narrowed copies on a CPU.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _check(in_channels: int, num_classes: int) -> None:
    if int(in_channels) != in_channels or in_channels < 1:
        raise ValueError(f"in_channels must be a positive integer, got {in_channels!r}")
    if int(num_classes) != num_classes or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")


def _scaled(channels: int, width: float) -> int:
    if not width > 0:
        raise ValueError(f"width must be positive, got {width!r}")
    return max(1, int(round(channels * width)))


class LeNet5(nn.Module):
    """LeNet-5: conv5x5(6) - maxpool - conv5x5(16) - maxpool - fc120 - fc84 - fc(classes)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, input_size: int = 28):
        super().__init__()
        _check(in_channels, num_classes)
        if input_size < 16:
            raise ValueError(f"input_size must be >= 16 for two 5x5 convs and two poolings, got {input_size}")
        self.conv1 = nn.Conv2d(in_channels, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        side = ((input_size - 4) // 2 - 4) // 2
        self.fc1 = nn.Linear(16 * side * side, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def lenet5(in_channels: int = 1, num_classes: int = 10, input_size: int = 28) -> LeNet5:
    """LeNet-5 for ``input_size`` x ``input_size`` images (28: 44,426 parameters; 32: 61,706)."""
    return LeNet5(in_channels, num_classes, input_size)


class PreActBlock(nn.Module):
    """Pre-activation basic block: BN-ReLU-conv3x3-BN-ReLU-conv3x3 plus shortcut.

    With ``noise > 0`` the block returns ``out + noise * std(out) * N(0, I)`` (``std`` a scalar over
    the whole batch tensor), the Feynman-Kac diffusion term of EnResNet; the noise stays on in
    evaluation mode, as in the EnResNet authors' code.
    """

    def __init__(self, in_planes: int, planes: int, stride: int = 1, noise: float = 0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride, bias=False)
        self.noise = float(noise)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        out = out + shortcut
        if self.noise > 0:
            out = out + self.noise * torch.std(out) * torch.randn_like(out)
        return out


class PreActResNet(nn.Module):
    """CIFAR pre-activation ResNet of depth ``6 n + 2`` (n blocks in each of three stages)."""

    def __init__(self, depth: int = 20, in_channels: int = 3, num_classes: int = 10, noise: float = 0.0):
        super().__init__()
        _check(in_channels, num_classes)
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"depth must be 6n + 2 with n >= 1 (20, 38, 56, ...), got {depth}")
        if noise < 0:
            raise ValueError(f"noise must be >= 0, got {noise}")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        blocks, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(n):
                blocks.append(PreActBlock(in_planes, planes, stride if i == 0 else 1, noise))
                in_planes = planes
        self.layers = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(64)
        self.linear = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(self.conv1(x))
        out = F.adaptive_avg_pool2d(F.relu(self.bn(out)), 1)
        return self.linear(torch.flatten(out, 1))


def resnet20(in_channels: int = 3, num_classes: int = 10) -> PreActResNet:
    """Pre-activation ResNet20 (about 0.27M parameters on CIFAR-10)."""
    return PreActResNet(20, in_channels, num_classes)


def resnet38(in_channels: int = 3, num_classes: int = 10) -> PreActResNet:
    """Pre-activation ResNet38 (about 0.56M parameters on CIFAR-10), Table 4.6's baseline."""
    return PreActResNet(38, in_channels, num_classes)


class Ensemble(nn.Module):
    """Average of the logits of its ``members`` (the En_n ensemble of Section 4.2.1)."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        if len(members) < 1:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(0)


def enresnet(n: int = 2, depth: int = 20, noise: float = 0.1, in_channels: int = 3, num_classes: int = 10) -> Ensemble:
    """En_nResNet{depth}: ``n`` noisy pre-activation ResNets, logits averaged (En2ResNet20: about 0.54M)."""
    if int(n) != n or n < 1:
        raise ValueError(f"n (ensemble size) must be an integer >= 1, got {n!r}")
    return Ensemble([PreActResNet(depth, in_channels, num_classes, noise) for _ in range(int(n))])


class BasicBlock(nn.Module):
    """Post-activation basic block of ResNet18: conv-BN-ReLU-conv-BN plus (1x1 conv-BN) shortcut, ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """CIFAR ResNet18: 3x3 stem, four stages of two basic blocks (64/128/256/512 x ``width``)."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, width: float = 1.0):
        super().__init__()
        _check(in_channels, num_classes)
        w = [_scaled(c, width) for c in (64, 128, 256, 512)]
        self.conv1 = nn.Conv2d(in_channels, w[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w[0])
        blocks, in_planes = [], w[0]
        for planes, stride in zip(w, (1, 2, 2, 2)):
            blocks += [BasicBlock(in_planes, planes, stride), BasicBlock(planes, planes, 1)]
            in_planes = planes
        self.layers = nn.Sequential(*blocks)
        self.linear = nn.Linear(w[3], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.linear(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


def resnet18(in_channels: int = 3, num_classes: int = 10, width: float = 1.0) -> ResNet18:
    """CIFAR ResNet18 (about 11.2M parameters at ``width=1``)."""
    return ResNet18(in_channels, num_classes, width)


VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG(nn.Module):
    """CIFAR VGG: 3x3 conv-BN-ReLU stacks with max pooling, global pooling, one linear layer.

    Pooling uses ``ceil_mode`` so that 28x28 inputs reach 1x1 after five poolings as 32x32 do.
    """

    def __init__(self, cfg=VGG16_CFG, in_channels: int = 3, num_classes: int = 10, width: float = 1.0):
        super().__init__()
        _check(in_channels, num_classes)
        layers, c = [], in_channels
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
            else:
                out = _scaled(v, width)
                layers += [nn.Conv2d(c, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
                c = out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(out, 1))


def vgg16(in_channels: int = 3, num_classes: int = 10, width: float = 1.0) -> VGG:
    """CIFAR VGG16 with batch norm (about 14.7M parameters at ``width=1``)."""
    return VGG(VGG16_CFG, in_channels, num_classes, width)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
