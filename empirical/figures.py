"""Figures of the vision studies, drawn from plain tables so the report can redraw them.

Each function returns a matplotlib figure; callers save it with :func:`mtl.io.save_figure`.
Every figure carries a caption line naming what produced it (``source``).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mtl.metrics import higher_is_better

OPTIMIZER_COLOURS = {"adam": "tab:blue", "sgd": "tab:red", "signsgd": "tab:green"}


def _caption(fig, source: str) -> None:
    fig.text(0.01, 0.005, source, fontsize=7, color="0.35", ha="left", va="bottom")


OFF_SCALE = 5.0
"""Robust standard deviations (1.4826 median absolute deviations) from the median at which a
learning-rate curve leaves the axis."""


def _robust_limits(values: np.ndarray) -> tuple[float, float]:
    """The y range of the finite values within ``OFF_SCALE`` robust deviations of their
    median (robust to any minority of blown-up values), padded."""
    finite = values[np.isfinite(values)]
    centre = np.median(finite)
    spread = max(1.4826 * np.median(np.abs(finite - centre)), 1.0)
    lo = max(finite.min(), centre - OFF_SCALE * spread)
    hi = min(finite.max(), centre + OFF_SCALE * spread)
    pad = 0.08 * (hi - lo) or 1.0
    return lo - pad, hi + pad


def lr_sensitivity(curves: pd.DataFrame, title: str, source: str, value: str = "test_dm"):
    """Δm against the learning rate, one panel per method, one line per optimizer. The y axis
    spans the values within ``OFF_SCALE`` robust deviations of their median; a value beyond
    (a learning rate whose runs blew up, Δm of 1e20 %) is drawn as a triangle on the axis's
    edge, so that it neither hides the others nor is hidden.

    ``curves`` has columns method, optimizer, lr, ``value`` (seed mean) and ``value + '_std'``.
    """
    methods = list(dict.fromkeys(curves["method"]))
    cols = min(4, len(methods))
    rows = -(-len(methods) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.2 * cols, 2.6 * rows + 0.6), squeeze=False, sharey=True
    )
    lo, hi = _robust_limits(curves[value].to_numpy(dtype=float))
    for ax, method in zip(axes.flat, methods, strict=False):
        for opt, part in curves[curves["method"] == method].groupby("optimizer"):
            part = part.sort_values("lr")
            colour = OPTIMIZER_COLOURS.get(opt)
            ax.errorbar(
                part["lr"], part[value], yerr=part.get(f"{value}_std"), marker="o", ms=3,
                capsize=2, label=opt, color=colour,
            )  # fmt: skip
            for beyond, edge, marker in ((part[value] > hi, hi, "^"), (part[value] < lo, lo, "v")):
                (drawn,) = ax.plot(
                    part["lr"][beyond], [edge] * beyond.sum(), marker, ms=7, color=colour,
                    clip_on=False,
                )  # fmt: skip
                drawn.set_in_layout(False)
        ax.set_xscale("log")
        ax.set_ylim(lo, hi)
        ax.set_title(method, fontsize=9)
        ax.set_xlabel("initial learning rate")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel("test Δm (%) ↓")
    for ax in list(axes.flat)[len(methods) :]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    _caption(fig, f"{source}; ▲/▼: a seed mean beyond the axis (e.g. runs that blew up)")
    return fig


def parallel_coordinates(
    points: pd.DataFrame, metrics: Sequence[str], front: Sequence[bool], title: str, source: str
):
    """Fig. 2: every run as a line over its test metrics, each axis scaled so that up is better;
    Pareto-optimal runs drawn bold and saturated."""
    values = points[[f"test/{m}" for m in metrics]].to_numpy(dtype=float)
    signs = np.array([1.0 if higher_is_better(m) else -1.0 for m in metrics])
    oriented = values * signs
    lo, hi = oriented.min(axis=0), oriented.max(axis=0)
    scaled = (oriented - lo) / np.where(hi > lo, hi - lo, 1.0)
    fig, ax = plt.subplots(figsize=(1.2 * len(metrics) + 2.5, 3.6))
    x = np.arange(len(metrics))
    seen = set()
    for row, on_front, opt in zip(scaled, front, points["optimizer"], strict=True):
        label = opt if opt not in seen else None
        seen.add(opt)
        ax.plot(
            x, row, color=OPTIMIZER_COLOURS.get(opt, "0.5"), lw=2.2 if on_front else 0.7,
            alpha=0.95 if on_front else 0.3, label=label,
        )  # fmt: skip
    ax.set_xticks(x, [f"{m}\n{'↑' if higher_is_better(m) else '↓'}" for m in metrics], fontsize=8)
    ax.set_yticks([0, 1], ["worst", "best"])
    ax.set_ylabel("per-metric rank scale")
    ax.set_title(f"{title} (bold: Pareto-optimal)", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    _caption(fig, source)
    return fig
