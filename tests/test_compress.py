"""lib.compress: shrink keeps the function and removes exactly the zero channels; count, int8, latency."""

import copy
import time

import pytest
import torch
import torch.nn as nn

from lib.compress import (
    count,
    cpu_channel_block,
    for_inference,
    latency,
    latency_ratio,
    model_bytes,
    quantize_int8,
    shrink,
)
from lib.config import seed_everything
from lib.data import batches, load
from lib.models import lenet5, resnet20, vgg16
from lib.train import evaluate, fit


def _randomize_bn(model):
    """Non-trivial BN statistics, so that a wrongly removed channel would change the output."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)


def _convs(model):
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def test_shrink_vgg_removes_exactly_the_zero_channels():
    seed_everything(0)
    model = vgg16(in_channels=1, num_classes=10, width=0.25).eval()
    _randomize_bn(model)
    convs = _convs(model)
    keep_in = [torch.arange(convs[0].in_channels)]
    for c in convs[1:]:  # zero 60% of the input channels of every conv but the stem
        drop = torch.randperm(c.in_channels)[: int(0.6 * c.in_channels)]
        c.weight.data[:, drop] = 0
        keep_in.append(torch.tensor(sorted(set(range(c.in_channels)) - set(drop.tolist()))))
    drop = torch.randperm(model.classifier.in_features)[:5]
    model.classifier.weight.data[:, drop] = 0
    keep_last = torch.tensor(sorted(set(range(model.classifier.in_features)) - set(drop.tolist())))
    keep_out = keep_in[1:] + [keep_last]
    x = torch.rand(6, 1, 28, 28)
    small = shrink(model, x)
    assert (small(x) - model(x)).abs().max() < 1e-5
    # every surviving weight is the original's slice on the kept channels
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    small_bns = [m for m in small.modules() if isinstance(m, nn.BatchNorm2d)]
    expected_params = 0
    for c, sc, bn, sbn, ki, ko in zip(convs, _convs(small), bns, small_bns, keep_in, keep_out):
        assert torch.equal(sc.weight, c.weight[ko][:, ki])
        assert torch.equal(sbn.running_mean, bn.running_mean[ko])
        expected_params += len(ko) * len(ki) * 9 + 2 * len(ko)
    expected_params += 10 * len(keep_last) + 10
    assert torch.equal(small.classifier.weight, model.classifier.weight[:, keep_last])
    assert count(small, x)["params"] == expected_params
    # the original is untouched
    assert count(model, x)["params"] == sum(p.numel() for p in model.parameters())


def test_shrink_resnet_across_residual_connections():
    seed_everything(1)
    model = resnet20(in_channels=1, num_classes=10).eval()
    _randomize_bn(model)
    L = model.layers
    s1, inner, s3 = [2, 5, 11], [0, 7, 8, 30], [1, 40, 63]
    for blk in (L[0], L[1], L[2], L[3]):  # every reader of the stage-1 residual stream
        blk.conv1.weight.data[:, s1] = 0
    L[3].shortcut.weight.data[:, s1] = 0
    L[4].conv2.weight.data[:, inner] = 0  # inside a block: conv1's filters and bn2 can go
    for blk in (L[7], L[8]):  # readers of the stage-3 stream, and the classifier
        blk.conv1.weight.data[:, s3] = 0
    model.linear.weight.data[:, s3] = 0
    x = torch.rand(4, 1, 28, 28)
    before = count(model, x)["params"]
    small = shrink(model, x)
    assert (small(x) - model(x)).abs().max() < 1e-5
    n1, ni, n3 = len(s1), len(inner), len(s3)
    removed = (
        n1 * 9                                  # stem filters
        + 3 * 16 * 9 * n1                       # conv2 filters writing the stream (blocks 0-2)
        + 4 * 2 * n1                            # bn1 of blocks 0-3
        + 3 * 16 * 9 * n1 + 32 * 9 * n1 + 32 * n1  # conv1 input slices (blocks 0-3), block 3's shortcut
        + 32 * 9 * ni + 2 * ni + 32 * 9 * ni    # block 4: conv1 filters, bn2, conv2 input slices
        + 3 * 64 * 9 * n3 + 32 * n3             # conv2 filters of blocks 6-8, block 6's shortcut filters
        + 2 * 2 * n3 + 2 * 64 * 9 * n3          # bn1 and conv1 input slices of blocks 7, 8
        + 2 * n3 + 10 * n3                      # final bn, classifier columns
    )
    assert before - count(small, x)["params"] == removed
    assert small.conv1.out_channels == 16 - n1 and small.linear.in_features == 64 - n3


def test_shrink_round_to_keeps_whole_simd_blocks():
    seed_everything(2)
    model = vgg16(in_channels=1, num_classes=10, width=0.25).eval()  # widths 16, 32, 64, 128
    _randomize_bn(model)
    convs = _convs(model)
    used = []
    for c in convs[1:]:
        n_zero = int(0.7 * c.in_channels)
        c.weight.data[:, torch.randperm(c.in_channels)[:n_zero]] = 0
        used.append(c.in_channels - n_zero)
    x = torch.rand(3, 1, 28, 28)
    small, report = shrink(model, x, round_to=8, return_report=True)
    assert (small(x) - model(x)).abs().max() < 1e-5
    widths = [c.out_channels for c in _convs(small)][:-1]  # the last conv feeds the classifier, untouched
    assert widths == [min(c.out_channels, -(-u // 8) * 8) for c, u in zip(convs, used)]
    assert all(w % 8 == 0 for w in widths)
    # the kept zero channels are exactly the round-up, and the exact shrink keeps none of them
    assert sum(len(v) for v in report["aligned"].values()) == sum(w - u for w, u in zip(widths, used))
    exact = shrink(model, x)
    assert [c.out_channels for c in _convs(exact)][:-1] == used
    assert count(exact, x)["flops"] < count(small, x)["flops"] < count(model, x)["flops"]
    for bad in (0, -8, 2.5, True):
        with pytest.raises(ValueError, match="round_to"):
            shrink(model, x, round_to=bad)
    assert cpu_channel_block() in (8, 16)


def test_shrink_round_to_across_residual_connections():
    seed_everything(3)
    model = resnet20(in_channels=1, num_classes=10).eval()
    _randomize_bn(model)
    L = model.layers
    for blk in (L[0], L[1], L[2], L[3]):  # 3 of the 16 stage-1 stream channels are unused ...
        blk.conv1.weight.data[:, [2, 5, 11]] = 0
    L[3].shortcut.weight.data[:, [2, 5, 11]] = 0
    L[4].conv2.weight.data[:, [0, 7, 8, 30]] = 0  # ... and 4 of block 4's 32 inner channels
    x = torch.rand(4, 1, 28, 28)
    small, report = shrink(model, x, round_to=4, return_report=True)  # 13 -> keep 16, 28 -> keep 28
    assert (small(x) - model(x)).abs().max() < 1e-5
    assert small.conv1.out_channels == 16 and small.layers[4].conv1.out_channels == 28
    assert not report["conflicts"] and sum(len(v) for v in report["aligned"].values()) == 3


def test_for_inference_folds_batch_norm_and_keeps_the_function():
    seed_everything(4)
    model = vgg16(in_channels=1, num_classes=10, width=0.25).eval()
    _randomize_bn(model)
    x = torch.rand(5, 1, 28, 28)
    fast = for_inference(model, x)
    assert (fast(x) - model(x)).abs().max() < 1e-4
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    assert len(_convs(fast)) == len(_convs(model))
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in _convs(fast))
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # the original is untouched

    class Branchy(nn.Module):  # data-dependent control flow: torch.fx cannot trace it
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, x):
            return self.conv(x) if x.sum() > 0 else -self.conv(x)

    with pytest.raises(ValueError, match="Branchy"):
        for_inference(Branchy(), x)
    with pytest.raises(ValueError, match="channels"):
        for_inference(model, torch.rand(2, 3, 28, 28))


def test_shrink_refuses_inconsistent_zeros_and_bad_input():
    model = resnet20(in_channels=1, num_classes=10).eval()
    model.layers[1].conv1.weight.data[:, 3] = 0  # the stream channel is still read by other blocks
    x = torch.rand(2, 1, 28, 28)
    with pytest.raises(ValueError, match="layers.1.conv1"):
        shrink(model, x)
    kept = shrink(model, x, on_conflict="keep")
    assert count(kept, x)["params"] == count(model, x)["params"]
    with pytest.raises(ValueError, match="channels"):
        shrink(model, torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match="4-D"):
        shrink(model, torch.rand(1, 28, 28))
    with pytest.raises(ValueError, match="on_conflict"):
        shrink(model, x, on_conflict="ignore")


def test_count_against_hand_computed_flops():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 8, 3), nn.Flatten(),
                        nn.Linear(8 * 26 * 26, 10))
    x = torch.rand(3, 1, 28, 28)
    c = count(net, x)
    macs = 3 * (4 * 1 * 9 * 28 * 28 + 8 * 4 * 9 * 26 * 26 + 10 * 8 * 26 * 26)
    assert c["flops"] == 2 * macs and c["macs"] == macs
    assert c["params"] == (4 * 9 + 4) + (8 * 4 * 9 + 8) + (8 * 26 * 26 * 10 + 10)
    assert 4 * c["params"] <= c["bytes"] <= 4 * c["params"] + 4096  # fp32 plus the file's header


def test_int8_accuracy_drop_is_bounded_on_shipped_data():
    seed_everything(0)
    torch.set_num_threads(2)
    train, test = load("fashion-mnist", "train"), load("fashion-mnist", "test")
    model = lenet5(in_channels=1, num_classes=10)
    fit(model, torch.optim.Adam(model.parameters(), 2e-3), train.subset(300), epochs=3, batch_size=32, progress=False)
    calib = [x for x, _ in batches(train.subset(30, seed=1), 100)]
    q = quantize_int8(model, calib)
    acc_fp32, acc_int8 = evaluate(model, test), evaluate(q, test)
    assert acc_fp32 > 65.0
    assert abs(acc_fp32 - acc_int8) < 1.5, (acc_fp32, acc_int8)
    assert model_bytes(model) / model_bytes(q) > 3.0  # int8 weights: about 4x smaller
    x = next(iter(batches(test, 16)))[0]
    assert count(q, x)["params"] == count(model, x)["params"]
    assert (q(x) - model(x)).abs().max() < 0.5
    with pytest.raises(ValueError, match="calibration_data"):
        quantize_int8(model, torch.rand(28, 28))


def test_latency_and_bad_arguments():
    model = copy.deepcopy(lenet5()).eval()
    x = torch.rand(1, 1, 28, 28)
    t = latency(model, x, repeats=5, warmup=1)
    assert 0 < t < 1.0
    with pytest.raises(ValueError, match="repeats"):
        latency(model, x, repeats=0)
    with pytest.raises(ValueError, match="example_input"):
        latency(model, torch.rand(1, 1, 5, 5))


class _Sleeper(nn.Module):
    """A 'model' whose run time is known: it sleeps ``seconds`` and logs its calls in ``log``."""

    def __init__(self, seconds: float, name: str, log: list):
        super().__init__()
        self.seconds, self.name, self.log = seconds, name, log

    def forward(self, x):
        self.log.append(self.name)
        time.sleep(self.seconds)
        return x.flatten(1)


def test_latency_ratio_alternates_and_recovers_a_known_ratio():
    log = []
    slow, fast = _Sleeper(0.006, "slow", log), _Sleeper(0.002, "fast", log)
    timing = latency_ratio(slow, fast, torch.rand(1, 1, 4, 4), repeats=9, warmup=2)
    # 6 ms against 2 ms of sleep: the ratio is 3 up to the sleeps' overshoot (a fraction of a millisecond)
    assert 2.2 < timing["ratio"] < 3.2, timing
    assert 0.006 <= timing["a_s"] < 0.012 and 0.002 <= timing["b_s"] < 0.006
    timed = log[2 + 2 * 2:]  # after one input check of each model and two warm-up pairs
    assert timed == ["slow", "fast"] * 9
    with pytest.raises(ValueError, match="repeats"):
        latency_ratio(slow, fast, torch.rand(1, 1, 4, 4), repeats=0)
    with pytest.raises(ValueError, match="example_input"):
        latency_ratio(slow, fast, torch.rand(4, 4))
