"""Figures of the cagrad-toy study: Fig. 1 (trajectories over contours) and the Pareto front.

Both are drawn with matplotlib's Agg backend and written as PNG and PDF.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sim.problems.cagrad import INITS, losses, mean_loss, mean_loss_minimum
from sim.studies.cagrad_toy import FIGURE_RECORD_EVERY
from sim.studies.figure_io import pyplot, write_figure

if TYPE_CHECKING:
    from sim.studies.cagrad_toy import Result

FIG1_COLUMNS = (
    ("gd", 1.0),
    ("gd", 0.05),
    ("gd", 0.001),
    ("adam", 1.0),
    ("adam", 0.05),
    ("adam", 0.001),
)
METHOD_NAMES = {"ew": "EW", "pcgrad": "PCGrad", "cagrad": "CAGrad", "mgda": "MGDA"}
EXTENT = 11.0


def _grid(n: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    grid = np.linspace(-EXTENT, EXTENT, n)
    xx, yy = np.meshgrid(grid, grid)
    return xx, yy, mean_loss(np.stack([xx, yy], axis=-1))


def _background(ax, grid, front: np.ndarray, x_star: np.ndarray) -> None:
    """Mean-loss contours, the numerical Pareto set, the initial points and the minimiser."""
    ax.contour(*grid, levels=15, cmap="Greys", linewidths=0.6, alpha=0.8)
    ax.plot(
        front[:, 0],
        front[:, 1],
        color="tab:blue",
        linewidth=3,
        alpha=0.35,
        zorder=1,
        label="Pareto set",
    )
    ax.plot(INITS[:, 0], INITS[:, 1], "o", color="k", markersize=5, zorder=6, label="start")
    ax.plot(
        *x_star,
        marker="*",
        color="gold",
        markeredgecolor="k",
        markersize=13,
        zorder=7,
        linestyle="none",
        label="global minimum of the mean loss",
    )
    ax.set_xlim(-EXTENT, EXTENT)
    ax.set_ylim(-EXTENT, EXTENT)
    ax.set_aspect("equal")


def trajectories_figure(result: Result, front: np.ndarray):
    """Fig. 1: one row per method (EW, PCGrad, CAGrad, MGDA), columns GD and Adam at lr 1.0,
    0.05 and 0.001; each path run past the reaching criterion (to
    ``min(max_steps, FIGURE_STEPS)`` steps), drawn as a line coloured by the step."""
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize

    from sim.studies.cagrad_toy import FIGURE_STEPS, figure_trajectories

    plt = pyplot()
    cfg = result.config
    methods = [m for m in METHOD_NAMES if m in cfg.methods]
    lrs = sorted({lr for _, lr in FIG1_COLUMNS}, reverse=True)
    paths = figure_trajectories(cfg, lrs)
    steps = min(cfg.max_steps, FIGURE_STEPS)
    norm = Normalize(0, steps)
    cmap = plt.get_cmap("autumn")
    grid = _grid()
    x_star, _ = mean_loss_minimum()
    fig, axes = plt.subplots(
        len(methods),
        len(FIG1_COLUMNS),
        figsize=(2.9 * len(FIG1_COLUMNS) + 1.2, 2.9 * len(methods) + 1.2),
        squeeze=False,
    )
    for i, method in enumerate(methods):
        for j, (opt, lr) in enumerate(FIG1_COLUMNS):
            ax = axes[i, j]
            _background(ax, grid, front, x_star)
            ax.set_title(
                f"{METHOD_NAMES[method]}, {'GD' if opt == 'gd' else 'Adam'} lr {lr:g}", fontsize=9
            )
            keys = [f"{opt}-{method}-lr{lr:g}-init{k}" for k in cfg.inits]
            keys = [k for k in keys if k in paths]
            if not keys:
                ax.text(0, 0, "not run", ha="center", va="center")
            for key in keys:
                path = paths[key].astype(float)
                path = path[np.isfinite(path).all(axis=1)]
                t = np.arange(len(path)) * FIGURE_RECORD_EVERY
                segments = np.stack([path[:-1], path[1:]], axis=1)
                lines = LineCollection(segments, cmap=cmap, norm=norm, linewidths=1.6, zorder=4)
                lines.set_array(t[:-1])
                ax.add_collection(lines)
                ax.plot(
                    *path[-1],
                    "x",
                    color="k",
                    markersize=7,
                    mew=2,
                    zorder=8,
                    label="end" if key == keys[0] else None,
                )
            if i == len(methods) - 1:
                ax.set_xlabel("x1", fontsize=8)
            if j == 0:
                ax.set_ylabel("x2", fontsize=8)
            ax.tick_params(labelsize=7)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="lower center",
        ncol=len(labels),
        fontsize=8,
        bbox_to_anchor=(0.45, 0.012),
    )
    fig.suptitle(
        "CAGrad toy (Fig. 1): optimisation paths from the three starts over mean-loss contours; "
        f"every path runs {steps:,} steps (past the reaching criterion), coloured by step",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.05, 0.92, 0.97))
    cax = fig.add_axes((0.93, 0.15, 0.012, 0.7))
    bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), cax=cax)
    bar.set_label("step", fontsize=8)
    return fig


def pareto_figure(front: np.ndarray):
    """The numerical Pareto set in x (beside the original's x2 = -8.3552 shortcut) and its front."""
    plt = pyplot()
    fig, (ax_x, ax_l) = plt.subplots(1, 2, figsize=(10, 4))
    ax_x.plot(front[:, 0], front[:, 1], label="Pareto set (numerical)")
    ax_x.plot([-7, 7], [-8.3552, -8.3552], "--", label="x2 = -8.3552 (original plot)")
    ax_x.set_xlabel("x1")
    ax_x.set_ylabel("x2")
    ax_x.legend()
    f = losses(front)
    ax_l.plot(f[:, 0], f[:, 1], ".-")
    ax_l.set_xlabel("L1")
    ax_l.set_ylabel("L2")
    ax_l.set_title("Pareto front (numerical)")
    fig.tight_layout()
    return fig


def write_all(result: Result, front: np.ndarray, out: Path, provenance: str = "") -> list[Path]:
    """fig1_trajectories.{png,pdf} and pareto_front.{png,pdf} in ``out``."""
    return [
        *write_figure(trajectories_figure(result, front), out, "fig1_trajectories", provenance),
        *write_figure(pareto_figure(front), out, "pareto_front", provenance),
    ]
