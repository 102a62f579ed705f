"""Figures of the cagrad-toy study: Fig. 1 (trajectories over contours) and the Pareto front.

Both are drawn with matplotlib's Agg backend and written as PNG and PDF.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sim.problems.cagrad import INITS, losses, mean_loss, mean_loss_minimum
from sim.studies.figure_io import pyplot, write_figure

if TYPE_CHECKING:
    from sim.studies.cagrad_toy import Result

FIG1_ROWS = ("ew", "cagrad")
FIG1_COLUMNS = (
    ("gd", 1.0),
    ("gd", 0.05),
    ("gd", 0.001),
    ("adam", 1.0),
    ("adam", 0.05),
    ("adam", 0.001),
)
EXTENT = 11.0


def _contour(ax, front: np.ndarray, n: int = 200) -> None:
    """Mean-loss contours, the numerical Pareto set, the initial points and the minimiser."""
    grid = np.linspace(-EXTENT, EXTENT, n)
    xx, yy = np.meshgrid(grid, grid)
    ax.contour(
        xx, yy, mean_loss(np.stack([xx, yy], axis=-1)), levels=15, cmap="viridis", linewidths=1
    )
    ax.plot(front[:, 0], front[:, 1], color="gray", linewidth=4, zorder=0)
    ax.plot(INITS[:, 0], INITS[:, 1], "o", color="k", markersize=5, zorder=5)
    x_star, _ = mean_loss_minimum()
    ax.plot(*x_star, marker="*", color="k", markersize=10, zorder=5)
    ax.set_xlim(-EXTENT, EXTENT)
    ax.set_ylim(-EXTENT, EXTENT)
    ax.set_aspect("equal")


def trajectories_figure(result: Result, front: np.ndarray):
    """Fig. 1: rows EW and CAGrad, columns GD and Adam at lr 1.0, 0.05 and 0.001.

    Points every 100 steps, coloured red -> yellow over the run; panels of configurations that
    were not run say so.
    """
    plt = pyplot()
    fig, axes = plt.subplots(2, 6, figsize=(18, 6.6), squeeze=False)
    for i, method in enumerate(FIG1_ROWS):
        for j, (opt, lr) in enumerate(FIG1_COLUMNS):
            ax = axes[i, j]
            _contour(ax, front)
            ax.set_title(f"{'GD' if opt == 'gd' else 'Adam'} lr={lr:g}, {method}", fontsize=9)
            keys = [f"{opt}-{method}-lr{lr:g}-init{k}" for k in result.config.inits]
            keys = [k for k in keys if k in result.trajectories]
            if not keys:
                ax.text(0, 0, "not run", ha="center", va="center")
            for key in keys:
                traj = result.trajectories[key]
                colours = np.zeros((len(traj), 3))
                colours[:, 0] = 1
                colours[:, 1] = np.linspace(0, 1, len(traj))
                ax.scatter(traj[:, 0], traj[:, 1], c=colours, s=4, zorder=10)
    fig.tight_layout()
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
