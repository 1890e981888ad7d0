"""Chapter 1: residual diffusivity in the cellular flow (1.1)-(1.3) and Table 1.1 (model sizes).

* ``fig-1.1-flow``: D^E against D0 for theta = 0 (enhanced diffusivity, O(sqrt(D0))) and
  theta = 1 (residual diffusivity, D^E = O(1) as D0 -> 0), by Monte Carlo with
  :func:`lib.flows.effective_diffusivity` (structure-preserving splitting). The thesis states
  these scalings in words and cites the computations of Biferale et al., Lyu et al. and Wang,
  Xin and Zhang (2018); it has no figure of its own for them.
* ``table-1.1``: parameters and fp32 size of LeNet, MobileNet, ResNet50 and VGG16, recomputed from
  the constructors (LeNet from :mod:`lib.models`, the ImageNet models from torchvision, built on
  the ``meta`` device so that no memory is allocated). torchvision has MobileNet V2, not the V1
  of the thesis's row; NASNet is not built (cited only).
"""

from __future__ import annotations

import numpy as np
import torch

from lib.config import seed_everything
from lib.experiments.base import Experiment, RunContext, register
from lib.flows import effective_diffusivity, loglog_slope

MIB = 2 ** 20


def run_flow(s: dict, ctx: RunContext) -> dict:
    """D^E(D0) for each theta: one vectorised integration of all (D0, theta) pairs.

    Result keys: ``d0`` (list), ``thetas``; per theta (as a string key, ``"0"``, ``"1"``): ``de``,
    ``stderr``, ``de_t`` (records x D0, the running estimate), ``slope`` (log-log least squares
    over all D0) and ``slope_small`` (over the smallest half of the D0 values); ``times``.
    """
    seed_everything(ctx.seed)
    d0 = np.logspace(np.log10(s["d0_min"]), np.log10(s["d0_max"]), s["n_d0"])
    thetas = [float(t) for t in s["thetas"]]
    d0_all = np.concatenate([d0] * len(thetas))
    th_all = np.repeat(thetas, len(d0))
    r = effective_diffusivity(d0_all, th_all, t_end=s["t_end"], dt=s["dt"], n_particles=s["n_particles"],
                              seed=ctx.seed, direction=(1.0, 0.0), scheme=s["scheme"], n_records=s["n_records"])
    de, se, de_t = np.array(r["de"]), np.array(r["stderr"]), np.array(r["de_t"])
    out = {"d0": d0.tolist(), "thetas": thetas, "times": r["times"]}
    half = len(d0) // 2
    for i, th in enumerate(thetas):
        sl = slice(i * len(d0), (i + 1) * len(d0))
        out[f"{th:g}"] = {"de": de[sl].tolist(), "stderr": se[sl].tolist(), "de_t": de_t[:, sl].tolist(),
                          "slope": loglog_slope(d0, de[sl]), "slope_small": loglog_slope(d0[:half], de[sl][:half])}
    return out


def _meta_params(build) -> int:
    with torch.device("meta"):
        model = build()
    return int(sum(p.numel() for p in model.parameters()))


def run_table_1_1(s: dict, ctx: RunContext) -> dict:
    """Rows ``{"model", "built_as", "params", "size_mib"}``; size = 4 bytes per fp32 parameter, in MiB
    (the thesis's "MB": 138M x 4 B = 528 MiB for VGG16)."""
    import torchvision.models as tvm

    from lib.models import lenet5, resnet20, vgg16

    seed_everything(ctx.seed)
    builds = [
        ("LeNet", "lib.models.lenet5 (LeNet-5, 32x32 input)", lambda: lenet5(1, 10, input_size=32)),
        ("MobileNet", "torchvision mobilenet_v2 (V2: torchvision has no V1)", lambda: tvm.mobilenet_v2()),
        ("ResNet50", "torchvision resnet50", lambda: tvm.resnet50()),
        ("VGG16", "torchvision vgg16 (ImageNet, with its 3 FC layers)", lambda: tvm.vgg16()),
    ]
    if s["book_models"]:
        builds += [("VGG16 (CIFAR)", "lib.models.vgg16, the book's CIFAR VGG16", lambda: vgg16(3, 10)),
                   ("ResNet20 (CIFAR)", "lib.models.resnet20", lambda: resnet20(3, 10))]
    rows = []
    for name, how, build in builds:
        p = _meta_params(build)
        rows.append({"model": name, "built_as": how, "params": p, "size_mib": 4 * p / MIB})
    return {"rows": rows}


register(Experiment(
    id="fig-1.1-flow", title="Section 1.1: effective diffusivity D^E(D0) of the cellular flow (1.1)",
    settings={
        "ci": dict(d0_min=1e-3, d0_max=10 ** -0.5, n_d0=6, thetas=[0.0, 1.0], t_end=400.0, dt=0.1,
                   n_particles=600, scheme="splitting", n_records=8),
        "full": dict(d0_min=1e-4, d0_max=10 ** -0.5, n_d0=8, thetas=[0.0, 1.0], t_end=1e4, dt=0.05,
                     n_particles=20000, scheme="splitting", n_records=20),
    },
    run_fn=run_flow,
    cost={"ci": "~10 s CPU (12 x 600 particles, 4,000 steps)", "full": "~2 CPU h (12 x 20,000 particles, 2e5 steps)"},
    thesis={"theta0": "D^E = O(sqrt(D0)) as D0 -> 0", "theta1": "D^E = O(1) as D0 -> 0 (residual diffusivity)",
            "direction": [1, 0]}))

register(Experiment(
    id="table-1.1", title="Table 1.1: size and number of parameters of some modern DNNs",
    settings={"ci": dict(book_models=True), "full": dict(book_models=True)},
    run_fn=run_table_1_1,
    cost={"ci": "~3 s CPU (meta-device construction)", "full": "same as ci"},
    thesis={"rows": [{"model": "LeNet", "size_mb": 0.25, "params": 60e3},
                     {"model": "MobileNet", "size_mb": 16, "params": 4.2e6},
                     {"model": "ResNet50", "size_mb": 98, "params": 25.5e6},
                     {"model": "NASNet", "size_mb": 343, "params": 89e6},
                     {"model": "VGG16", "size_mb": 528, "params": 138e6}]}))
