"""From a channel-sparse network to a small, fast one: shrink, quantize, count, time (Chapter 5).

The thesis's closing claim (Chapter 5) is a pipeline: train with RGSM (Section 4.1) so that whole
channels are zero, physically remove those channels ("VGG16 can be reduced over 3x in size"),
then quantize to 8 bits ("further compressed by 4x, resulting in a model that is over 12x
smaller, and has much faster inference rate"). This module is that pipeline:

* :func:`shrink` removes zero channels together with everything that depends on them, using
  Torch-Pruning's dependency graph (Fang et al. 2023), so residual connections stay consistent,
  and checks that the smaller network computes the same function.
* :func:`quantize_int8`: post-training static int8 quantization with ``torch.ao`` (FX graph mode,
  x86/fbgemm back end, per-channel weights, conv-BN-ReLU fused, calibrated activations).
* :func:`count`: parameters, FLOPs (PyTorch's own ``torch.utils.flop_counter``) and bytes.
* :func:`latency`: median CPU wall time of one forward pass after warm-up; :func:`latency_ratio`
  times two models alternately, so that machine load cancels from their ratio;
  :func:`for_inference` (batch norm folded into the convs, channels-last layout) prepares a float
  model for timing.

``torch.nn.utils.prune`` only masks weights: a masked model is neither smaller nor faster.
"""

from __future__ import annotations

import copy
import io
import statistics
import time
import warnings
from collections.abc import Iterable

import torch
import torch.nn as nn

_PRUNABLE = (nn.Conv2d, nn.Linear)


def _check_input(model: nn.Module, example_input) -> torch.Tensor:
    """Run ``model`` once on ``example_input``; a shape the model cannot take gives a ValueError."""
    if not isinstance(example_input, torch.Tensor):
        raise ValueError(f"example_input must be a torch.Tensor, got {type(example_input).__name__}")
    if example_input.ndim != 4:
        raise ValueError(
            f"example_input must be a 4-D image batch (N, C, H, W), got shape {tuple(example_input.shape)}")
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if first is not None and example_input.shape[1] != first.in_channels:
        raise ValueError(
            f"example_input has {example_input.shape[1]} channels but the model's first conv expects "
            f"{first.in_channels} (shape (N, {first.in_channels}, H, W)); got {tuple(example_input.shape)}")
    try:
        with torch.no_grad():
            return model(example_input)
    except RuntimeError as err:
        raise ValueError(f"example_input of shape {tuple(example_input.shape)} does not fit the model: {err}") from err


def zero_input_channels(model: nn.Module) -> dict[str, list[int]]:
    """For each Conv2d, the input channels whose weights W[:, c] are all exactly zero (RGSM's groups)."""
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            w = m.weight.detach()
            zero = (w.flatten(2).abs().sum((0, 2)) == 0) if m.groups == 1 else torch.zeros(w.shape[1], dtype=bool)
            if zero.any():
                out[name] = torch.nonzero(zero).flatten().tolist()
    return out


def shrink(model: nn.Module, example_input: torch.Tensor, on_conflict: str = "raise", atol: float = 1e-5,
           return_report: bool = False, round_to: int = 1):
    """A physically smaller copy of ``model`` without its removable zero channels.

    A channel c of an intermediate feature map is *removable* when every conv/linear layer that
    reads it has all-zero weights on it (W[:, c] = 0, the input-channel groups of RGSM). Its value
    then never reaches the output, so the channel can go together with everything that only
    computes it: the producing convs' filters and biases, the batch-norm entries, and the
    consumers' zero weight slices. Torch-Pruning's dependency graph gives this coupled *group*;
    across a residual connection the group holds every conv that writes into the shared stream
    and every layer that reads it, so a stream channel goes only if all its readers ignore it.
    Because only values that are multiplied by zero are dropped, no bias correction is needed
    (a zero *output* filter would be different: after batch norm it becomes a non-zero constant,
    blurred at the borders by zero padding, and is not removed here).

    ``on_conflict``: what to do with a zero input channel that cannot be removed consistently
    (another reader of the same channel uses it, or it is the model's own input): ``"raise"``
    (default) refuses with a ``ValueError`` naming the layer; ``"keep"`` keeps such channels.

    ``round_to``: keep a multiple of this many channels in every group (Torch-Pruning's pruners
    have the same option). With ``round_to > 1``, a few removable zero channels stay, so that the
    CPU's vector units work on whole blocks: oneDNN's fp32 convolutions compute channels in
    blocks of 8 (AVX2) or 16 (AVX-512), and 23 channels cost about as much as 32. A group whose
    full width is not such a multiple is left whole. The function is unchanged either way.

    The shrunk model is checked: its output on ``example_input`` must equal the original's within
    ``atol``. Returns the shrunk model (eval mode), or ``(model, report)`` with
    ``return_report=True``; the report lists the removed channels per group root (``removed``),
    the removable channels kept for ``round_to`` (``aligned``) and the kept conflicts.
    """
    import torch_pruning as tp

    if on_conflict not in ("raise", "keep"):
        raise ValueError(f"on_conflict must be 'raise' or 'keep', got {on_conflict!r}")
    if isinstance(round_to, bool) or int(round_to) != round_to or round_to < 1:
        raise ValueError(f"round_to must be an integer >= 1, got {round_to!r}")
    model = copy.deepcopy(model).eval()
    reference = _check_input(model, example_input)
    names = {m: n for n, m in model.named_modules()}
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example_input)

    plan, conflicts = [], {}
    aligned, aligned_roots = {}, {}  # zero slices kept for round_to: count per reader layer, channels per root
    for group in graph.get_all_groups(root_module_types=_PRUNABLE):
        root_dep = group[0].dep
        root, handler = root_dep.target.module, root_dep.handler
        # per root channel j: the (reader layer, input slice) pairs that read it
        readers: dict[int, list] = {}
        for item in group.items:
            m = item.dep.target.module
            if isinstance(m, _PRUNABLE) and not graph.is_out_channel_pruning_fn(item.dep.handler):
                w = m.weight.detach()
                per_root: dict[int, list[int]] = {}
                for idx, r in zip(item.idxs, item.root_idxs):
                    per_root.setdefault(int(r), []).append(int(idx))
                for r, idxs in per_root.items():
                    readers.setdefault(r, []).append((m, idxs, bool((w[:, idxs] == 0).all())))
        removable = []
        for j in sorted(readers):
            zero = [z for _, _, z in readers[j]]
            if all(zero):
                removable.append(j)
            elif any(zero):
                users = sorted({names[m] for m, _, z in readers[j] if not z})
                for m, idxs, z in readers[j]:
                    if z and isinstance(m, nn.Conv2d):
                        conflicts.setdefault(names[m], []).append(
                            f"input channel {idxs[0]} is zero but the same channel is used by {', '.join(users)}")
        # keep the smallest multiple of round_to channels that holds the used ones (at most all)
        width = len(group[0].idxs)
        keep = min(width, -(-(width - len(removable)) // round_to) * round_to)
        extra = len(removable) - (width - keep)
        for j in removable[:extra]:  # kept for alignment: their readers keep a zero slice
            for m, idxs, _ in readers[j]:
                aligned[names[m]] = aligned.get(names[m], 0) + len(idxs)
        if extra:
            aligned_roots[names[root]] = removable[:extra]
        if removable[extra:]:
            plan.append((root, handler, removable[extra:]))

    report = {"removed": {}, "aligned": aligned_roots, "conflicts": {}}
    for root, handler, idxs in plan:
        graph.get_pruning_group(root, handler, idxs).prune()
        report["removed"][names[root]] = idxs

    leftover = {layer: chans for layer, chans in zero_input_channels(model).items()
                if len(chans) > aligned.get(layer, 0)}
    for layer, chans in leftover.items():
        reason = conflicts.get(layer) or [
            f"input channel {c} is zero but it is "
            + ("the model's input" if _reads_model_input(model, layer) else
               "read by a layer the dependency graph cannot prune")
            for c in chans]
        report["conflicts"][layer] = reason
    if report["conflicts"] and on_conflict == "raise":
        layer, reasons = next(iter(report["conflicts"].items()))
        raise ValueError(
            f"shrink: the zero channels of layer {layer!r} cannot be removed consistently ({reasons[0]}); "
            "pass on_conflict='keep' to keep such channels")

    model.eval()
    with torch.no_grad():
        out = model(example_input)
    err = float((out - reference).abs().max())
    if not err <= atol:
        raise RuntimeError(f"shrink changed the model's output by {err:.3g} > atol={atol:g}; please report this model")
    return (model, report) if return_report else model


def _reads_model_input(model: nn.Module, layer: str) -> bool:
    """True when conv ``layer`` is the first Conv2d of the model (it reads the image)."""
    first = next((n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)
    return layer == first


def model_bytes(model: nn.Module) -> int:
    """Size in bytes of the serialized ``state_dict`` (``torch.save``), i.e. the model file on disk."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes


def count(model: nn.Module, example_input: torch.Tensor) -> dict:
    """Parameters, FLOPs of one forward pass on ``example_input``, and bytes.

    * ``params``: weights and biases (for a quantized model, its int8 weights and float biases
      from the state dict; batch-norm running statistics are buffers, not parameters).
    * ``flops``: counted by ``torch.utils.flop_counter.FlopCounterMode`` (2 per multiply-add, convs
      and matrix products; quantized kernels are not counted, so a quantized model reports the
      FLOPs of the float model it came from only if you count that one), ``macs = flops / 2``.
    * ``bytes``: the serialized state dict (:func:`model_bytes`).
    """
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    _check_input(model, example_input)
    params = sum(p.numel() for p in model.parameters())
    for m in model.modules():  # quantized modules keep packed weights outside .parameters()
        w = getattr(m, "weight", None)
        if callable(w) and not isinstance(w, torch.Tensor):
            params += w().numel()
            b = m.bias() if callable(getattr(m, "bias", None)) else None
            params += 0 if b is None else b.numel()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(example_input)
    flops = int(counter.get_total_flops())
    return {"params": int(params), "flops": flops, "macs": flops // 2, "bytes": model_bytes(model)}


def _calibration_batches(calibration_data) -> Iterable[torch.Tensor]:
    if isinstance(calibration_data, torch.Tensor):
        if calibration_data.ndim != 4:
            raise ValueError(f"calibration_data must be a 4-D batch (N, C, H, W), got shape "
                             f"{tuple(calibration_data.shape)}")
        return [calibration_data]
    batches = [b[0] if isinstance(b, (tuple, list)) else b for b in calibration_data]
    if not batches or not all(isinstance(b, torch.Tensor) and b.ndim == 4 for b in batches):
        raise ValueError("calibration_data must be a 4-D tensor or a non-empty iterable of 4-D tensors "
                         "(or of (x, y) pairs)")
    return batches


def quantize_int8(model: nn.Module, calibration_data, backend: str = "x86") -> nn.Module:
    """Post-training static int8 quantization of a copy of ``model`` (torch.ao, FX graph mode).

    Steps: trace the model, fuse conv-BN(-ReLU), insert observers (``get_default_qconfig_mapping``:
    per-channel symmetric int8 weights, per-tensor affine uint8 activations with histogram
    observers), run ``calibration_data`` (a 4-D tensor, or an iterable of tensors or (x, y) pairs)
    through it, then convert to modules that run int8 kernels (``backend`` ``"x86"`` or
    ``"fbgemm"``; ``"qnnpack"`` for ARM). The model must be traceable by ``torch.fx`` (the book's
    CNNs are). PyTorch marks this flow as deprecated in favour of torchao's PT2E flow; in torch
    2.14 it still runs real int8 kernels on CPU, which the PT2E flow in plain eager mode does not
    (it needs ``torch.compile``), so it is the honest choice for a CPU latency measurement.
    """
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    if backend not in torch.backends.quantized.supported_engines:
        raise ValueError(f"backend must be one of {torch.backends.quantized.supported_engines}, got {backend!r}")
    batches = _calibration_batches(calibration_data)
    torch.backends.quantized.engine = backend
    float_model = copy.deepcopy(model).cpu().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = prepare_fx(float_model, get_default_qconfig_mapping(backend), (batches[0][:1].cpu(),))
        with torch.no_grad():
            for b in batches:
                prepared(b.cpu())
        quantized = convert_fx(prepared)
    return quantized.eval()


def cpu_channel_block() -> int:
    """Channels per SIMD block of this CPU's fp32 convolutions: 16 with AVX-512, else 8 (AVX2,
    NEON). A good ``round_to`` for :func:`shrink` when the model will run on this machine."""
    return 16 if torch.backends.cpu.get_cpu_capability().startswith("AVX512") else 8


def for_inference(model: nn.Module, example_input: torch.Tensor, atol: float = 1e-4) -> nn.Module:
    """A copy of float ``model`` prepared for CPU inference, computing the same function.

    Two standard, lossless steps: every batch norm that directly follows a conv is folded into it
    (W' = W gamma / sqrt(var + eps), b' = (b - mean) gamma / sqrt(var + eps) + beta, with
    ``torch.fx.experimental.optimization.fuse``), which removes one memory pass per layer; and
    the weights go to ``channels_last`` (NHWC), the layout oneDNN's convolutions run fastest in
    (an NCHW input is converted by the first conv). Use it on the dense and the shrunk model
    alike before comparing their latencies. The model must be traceable by ``torch.fx``; the
    result's output on ``example_input`` must equal the original's within ``atol``.
    """
    from torch.fx.experimental.optimization import fuse

    model = copy.deepcopy(model).cpu().eval()
    reference = _check_input(model, example_input)
    try:
        fused = fuse(model)
    except Exception as err:  # torch.fx raises assorted errors on untraceable control flow
        raise ValueError(f"for_inference: torch.fx cannot trace {type(model).__name__} ({err})") from err
    fused = fused.to(memory_format=torch.channels_last).eval()
    with torch.no_grad():
        err = float((fused(example_input) - reference).abs().max())
    if not err <= atol:
        raise RuntimeError(f"for_inference changed the model's output by {err:.3g} > atol={atol:g}")
    return fused


def _check_timing(repeats, warmup) -> None:
    if int(repeats) != repeats or repeats < 1:
        raise ValueError(f"repeats must be an integer >= 1, got {repeats!r}")
    if int(warmup) != warmup or warmup < 0:
        raise ValueError(f"warmup must be an integer >= 0, got {warmup!r}")


def _timed(model: nn.Module, example_input: torch.Tensor) -> float:
    start = time.perf_counter()
    model(example_input)
    return time.perf_counter() - start


def latency(model: nn.Module, example_input: torch.Tensor, repeats: int = 30, warmup: int = 5,
            min_time: float = 0.0) -> float:
    """Median wall time (seconds) of ``model(example_input)`` on CPU over ``repeats`` runs.

    ``warmup`` untimed runs first (oneDNN picks and caches kernels on the first calls). With
    ``min_time > 0`` the repeats continue until that many seconds have been spent timing.
    To compare two models, :func:`latency_ratio` is more robust to a changing machine load.
    """
    _check_timing(repeats, warmup)
    model.eval()
    _check_input(model, example_input)
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(example_input)
        spent = 0.0
        while len(times) < repeats or spent < min_time:
            times.append(_timed(model, example_input))
            spent += times[-1]
    return statistics.median(times)


def latency_ratio(a: nn.Module, b: nn.Module, example_input: torch.Tensor, repeats: int = 30,
                  warmup: int = 5) -> dict[str, float]:
    """How many times slower ``a`` is than ``b`` on ``example_input`` (CPU wall time).

    The two models run alternately, a, b, a, b, ..., after ``warmup`` untimed runs of each, and
    the result is the median over the ``repeats`` pairs of t_a / t_b: a load that other jobs put
    on the machine, or a change of clock speed, hits both halves of a pair alike and cancels,
    where the ratio of two separately measured medians can be off by the load's swing.
    Returns ``{"ratio", "a_s", "b_s"}`` (the last two: median seconds of each model).
    """
    _check_timing(repeats, warmup)
    for model in (a, b):
        model.eval()
        _check_input(model, example_input)
    ta, tb = [], []
    with torch.inference_mode():
        for _ in range(warmup):
            a(example_input)
            b(example_input)
        for _ in range(repeats):
            ta.append(_timed(a, example_input))
            tb.append(_timed(b, example_input))
    return {"ratio": statistics.median(p / q for p, q in zip(ta, tb)),
            "a_s": statistics.median(ta), "b_s": statistics.median(tb)}
