"""Plotting helpers shared by Chapter 1 (Figure 1.2), Section 4.2 (Figures 4.1, 4.2, 4.5) and
Appendix A (Figures A.1, A.2): weight histograms, the weight-grid visualisation of a conv layer,
and channel-norm histograms.  They take plain arrays or nested lists (the JSON results of the
experiments in :mod:`lib.experiments.ch4_robust`) and return matplotlib figures.
"""

from __future__ import annotations

import numpy as np


def _plt():
    # no matplotlib.use(): switching to Agg inside a notebook kernel leaves figures without their PNG
    import matplotlib.pyplot as plt

    return plt


def small_weight_percent(weights, threshold: float = 1e-2) -> float:
    """% of the entries of ``weights`` with magnitude below ``threshold`` (Chapter 1: 8.66% NT vs 3.64% AT)."""
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold!r}")
    w = np.abs(np.asarray(weights, dtype=float).ravel())
    if w.size == 0:
        raise ValueError("weights must not be empty")
    return float(100.0 * np.mean(w < threshold))


def weight_histograms(series: dict, bins: int = 81, limit: float | None = None, threshold: float | None = 1e-2,
                      titles: dict | None = None, figsize=(9, 3.2), sharey: bool = True):
    """One histogram panel per entry of ``series`` (label -> array of weights), y axis in % of weights.

    ``limit`` fixes the x range to [-limit, limit] (default: the 99.5th percentile of |w| over all
    series); with ``threshold`` the band |w| < threshold is shaded and its share printed in the panel.
    """
    if not series:
        raise ValueError("series must hold at least one label -> weights entry")
    if int(bins) != bins or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
    plt = _plt()
    arrays = {k: np.asarray(v, dtype=float).ravel() for k, v in series.items()}
    if limit is None:
        limit = float(np.percentile(np.abs(np.concatenate(list(arrays.values()))), 99.5))
    edges = np.linspace(-limit, limit, int(bins) + 1)
    fig, axes = plt.subplots(1, len(arrays), figsize=figsize, sharey=sharey, squeeze=False)
    for ax, (label, w) in zip(axes[0], arrays.items()):
        counts, _ = np.histogram(np.clip(w, -limit, limit), edges)
        ax.bar(edges[:-1], 100.0 * counts / w.size, width=np.diff(edges), align="edge", color="tab:blue", alpha=0.8)
        if threshold is not None:
            ax.axvspan(-threshold, threshold, color="tab:orange", alpha=0.25,
                       label=f"|w| < {threshold:g}: {small_weight_percent(w, threshold):.2f}%")
            ax.legend(loc="upper right", fontsize=8)
        ax.set_title((titles or {}).get(label, label), fontsize=10)
        ax.set_xlabel("weight value")
    axes[0][0].set_ylabel("% of weights")
    fig.tight_layout()
    return fig


def kernel_grid(weight, max_out: int | None = None, max_in: int | None = None) -> np.ndarray:
    """Tile a conv weight ``(out, in, k, k)`` into an image: row block i = output channel i, column
    block j = input channel j, each block the k x k kernel, blocks separated by a NaN line."""
    w = np.asarray(weight, dtype=float)
    if w.ndim != 4:
        raise ValueError(f"weight must be 4-D (out, in, kh, kw), got shape {w.shape}")
    w = w[: max_out or w.shape[0], : max_in or w.shape[1]]
    o, i, kh, kw = w.shape
    img = np.full((o * (kh + 1) - 1, i * (kw + 1) - 1), np.nan)
    for a in range(o):
        for b in range(i):
            img[a * (kh + 1): a * (kh + 1) + kh, b * (kw + 1): b * (kw + 1) + kw] = w[a, b]
    return img


def weight_grids(series: dict, max_out: int | None = 16, max_in: int | None = 16, vmax: float | None = None,
                 figsize=(9, 4.6), cmap: str = "RdBu_r"):
    """Figure 4.1 / A.1-A.2: the kernels of one conv layer per entry of ``series`` on a common colour scale.

    ``max_out`` x ``max_in`` kernels are shown (None: all, as in Appendix A).
    """
    if not series:
        raise ValueError("series must hold at least one label -> weight entry")
    plt = _plt()
    grids = {k: kernel_grid(v, max_out, max_in) for k, v in series.items()}
    if vmax is None:
        vmax = float(max(np.nanpercentile(np.abs(g), 99) for g in grids.values()))
    fig, axes = plt.subplots(1, len(grids), figsize=figsize, squeeze=False)
    im = None
    for ax, (label, g) in zip(axes[0], grids.items()):
        im = ax.imshow(g, cmap=cmap, vmin=-vmax, vmax=vmax, interpolation="nearest")
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("input channel (3x3 kernels)")
        ax.set_ylabel("output channel")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="weight value")
    return fig


def channel_norm_histograms(series: dict, bins: int = 40, zoom: float = 2e-7, figsize=(9, 5)):
    """Figure 4.5: per entry of ``series`` (label -> channel l2 norms) the histogram of all norms and a
    zoom on [0, ``zoom``]; each panel states the number of zero channels (norm < 1e-15)."""
    if not series:
        raise ValueError("series must hold at least one label -> norms entry")
    plt = _plt()
    fig, axes = plt.subplots(len(series), 2, figsize=figsize, squeeze=False)
    for row, (label, norms) in zip(axes, series.items()):
        n = np.asarray(norms, dtype=float)
        zeros = int(np.sum(n < 1e-15))
        row[0].hist(n, bins=bins, color="tab:blue")
        row[0].set_title(f"{label}: all channels", fontsize=10)
        row[1].hist(n[n <= zoom], bins=np.linspace(0, zoom, bins + 1), color="tab:red")
        row[1].set_title(f"{label}: zoom on [0, {zoom:g}]", fontsize=10)
        for ax in row:
            ax.set_xlabel("channel l2 norm")
            ax.set_ylabel("# channels")
            ax.text(0.97, 0.9, f"#zeros: {zeros}", transform=ax.transAxes, ha="right", va="top", fontsize=9)
    fig.tight_layout()
    return fig


def histogram_panels(hists: dict, small: dict | None = None, threshold: float | None = 1e-2,
                     titles: dict | None = None, figsize=(9, 3.2)):
    """Figure 1.2 from precomputed histograms: ``hists`` maps a label to ``{"edges", "percent"}`` (the
    ``nt_hist`` / ``at_hist`` of experiment ``fig-1.2``); ``small`` maps a label to its % of weights
    with |w| < ``threshold``, written in the shaded band's legend."""
    if not hists:
        raise ValueError("hists must hold at least one label -> {'edges', 'percent'} entry")
    plt = _plt()
    fig, axes = plt.subplots(1, len(hists), figsize=figsize, sharey=True, squeeze=False)
    for ax, (label, h) in zip(axes[0], hists.items()):
        edges, pct = np.asarray(h["edges"], dtype=float), np.asarray(h["percent"], dtype=float)
        if len(edges) != len(pct) + 1:
            raise ValueError(f"histogram {label!r}: need len(edges) = len(percent) + 1")
        ax.bar(edges[:-1], pct, width=np.diff(edges), align="edge", color="tab:blue", alpha=0.8)
        if threshold is not None:
            extra = f": {small[label]:.2f}%" if small and label in small else ""
            ax.axvspan(-threshold, threshold, color="tab:orange", alpha=0.25, label=f"|w| < {threshold:g}{extra}")
            ax.legend(loc="upper right", fontsize=8)
        ax.set_title((titles or {}).get(label, label), fontsize=10)
        ax.set_xlabel("weight value")
    axes[0][0].set_ylabel("% of weights")
    fig.tight_layout()
    return fig
