"""Figure of the loss-scale sweep: per optimizer, against the loss-scale ratio r, the first
head-update ratio (flat at 1 = invariant heads), the position w along the Pareto front and the
final task-1 loss relative to the unscaled run (flat = invariant end point). Per (optimizer, r,
seed) the learning rate nearest to the front is shown; lines are medians over seeds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sim.studies.figure_io import pyplot, write_figure

PANELS = (
    ("head1_update_ratio", "first head-1 update / unscaled"),
    ("front_w", "position w along the Pareto front"),
    ("loss1_ratio", "final L1 / unscaled"),
)


def _best(table: Sequence[tuple], header: Sequence[str]) -> dict[tuple[str, float], dict]:
    """Per (optimizer, ratio): medians over seeds of the rows of the lr nearest to the front."""
    col = {name: i for i, name in enumerate(header)}
    best: dict[tuple[str, float, int], tuple] = {}
    for row in table:
        d = row[col["front_distance"]]
        if d is None:
            continue
        key = (row[col["optimizer"]], float(row[col["ratio"]]), row[col["seed"]])
        if key not in best or float(d) < float(best[key][col["front_distance"]]):
            best[key] = row
    out: dict[tuple[str, float], dict] = {}
    for (opt, ratio, _), row in best.items():
        cell = out.setdefault((opt, ratio), {name: [] for name, _ in PANELS})
        for name, _ in PANELS:
            cell[name].append(float(row[col[name]]))
    return {k: {n: float(np.median(v)) for n, v in cell.items()} for k, cell in out.items()}


def sweep_figure(table: Sequence[tuple], header: Sequence[str]):
    plt = pyplot()
    cells = _best(table, header)
    fig, axes = plt.subplots(1, len(PANELS), figsize=(5 * len(PANELS), 4))
    for opt in dict.fromkeys(k[0] for k in cells):
        ratios = sorted(r for o, r in cells if o == opt)
        for ax, (name, title) in zip(axes, PANELS, strict=True):
            ax.plot(ratios, [cells[(opt, r)][name] for r in ratios], ".-", label=opt)
            ax.set_xscale("log")
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("loss-scale ratio r = alpha_1 / alpha_2")
    r = np.logspace(-4, 4, 50)
    axes[1].plot(r, r / (1 + r), "k:", label="EW stationary point r / (1 + r)")
    axes[0].set_yscale("log")
    axes[2].set_yscale("log")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def write_all(table: Sequence[tuple], out: Path, provenance: str = "") -> list[Path]:
    """sweep.{png,pdf} in ``out``."""
    from sim.studies.loss_scale_sweep import HEADER

    return write_figure(sweep_figure(table, HEADER), out, "sweep", provenance)
