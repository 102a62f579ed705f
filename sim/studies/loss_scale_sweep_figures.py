"""Figure of the loss-scale sweep, as small multiples: one column per optimizer, one row per
quantity against the loss-scale ratio r = alpha_1 / alpha_2 (log axis): the first head-1 update
relative to the unscaled run (flat at 1: invariant heads), the position w along the Pareto front
(beside EW's stationary point r / (1 + r), over the ratios run), the final L1 relative to the
unscaled run (flat: invariant end point) and the distance to the front. Per (optimizer, r, seed)
the learning rate nearest to the front is chosen; lines are medians over seeds, bands their
range."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sim.studies.figure_io import pyplot, write_figure

PANELS = (
    ("head1_update_ratio", "first head-1 update\n/ unscaled run", True),
    ("front_w", "position w along\nthe Pareto front", False),
    ("loss1_ratio", "final L1\n/ unscaled run", True),
    ("front_distance", "distance to\nthe Pareto front", True),
)
"""(runs.csv column, y label, log axis)."""


def _best(table: Sequence[tuple], header: Sequence[str]) -> dict[tuple[str, float], list[tuple]]:
    """Per (optimizer, ratio): the rows (one per seed) of the lr nearest to the front."""
    col = {name: i for i, name in enumerate(header)}
    best: dict[tuple[str, float, int], tuple] = {}
    for row in table:
        d = row[col["front_distance"]]
        if d is None:
            continue
        key = (row[col["optimizer"]], float(row[col["ratio"]]), row[col["seed"]])
        if key not in best or float(d) < float(best[key][col["front_distance"]]):
            best[key] = row
    out: dict[tuple[str, float], list[tuple]] = {}
    for (opt, ratio, _), row in best.items():
        out.setdefault((opt, ratio), []).append(row)
    return out


def sweep_figure(table: Sequence[tuple], header: Sequence[str]):
    plt = pyplot()
    col = {name: i for i, name in enumerate(header)}
    cells = _best(table, header)
    optimizers = list(dict.fromkeys(k[0] for k in cells))
    fig, axes = plt.subplots(
        len(PANELS),
        len(optimizers),
        figsize=(2.6 * len(optimizers) + 1, 2.3 * len(PANELS) + 1.2),
        squeeze=False,
        sharex=True,
        sharey="row",
    )
    all_ratios = sorted({r for _, r in cells})
    for j, opt in enumerate(optimizers):
        ratios = sorted(r for o, r in cells if o == opt)
        axes[0, j].set_title(opt, fontsize=10)
        for i, (name, label, log) in enumerate(PANELS):
            ax = axes[i, j]
            values = [[float(row[col[name]]) for row in cells[(opt, r)]] for r in ratios]
            med = [np.median(v) for v in values]
            ax.fill_between(
                ratios,
                [min(v) for v in values],
                [max(v) for v in values],
                color="C0",
                alpha=0.2,
                lw=0,
                label="range over seeds",
            )
            ax.plot(ratios, med, ".-", color="C0", label="median over seeds")
            if name == "front_w":
                r = np.logspace(np.log10(all_ratios[0]), np.log10(all_ratios[-1]), 50)
                ax.plot(r, r / (1 + r), "k:", label="EW stationary r/(1+r)")
            if name in ("head1_update_ratio", "loss1_ratio"):
                ax.axhline(1.0, color="0.6", lw=0.8, label="invariant (= 1)")
            ax.set_xscale("log")
            if log:
                ax.set_yscale("log")
            if j == 0:
                ax.set_ylabel(label, fontsize=8)
            if i == len(PANELS) - 1:
                ax.set_xlabel("r = alpha_1 / alpha_2", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.legend(fontsize=5.5, loc="best")
    seeds = len({row[col["seed"]] for row in table})
    lrs = sorted({float(row[col["lr"]]) for row in table})
    fig.suptitle(
        "loss-scale sweep on the quadratic family: per optimizer, ratio and seed the learning "
        f"rate (of {', '.join(f'{lr:g}' for lr in lrs)}) whose end point is nearest to the "
        f"Pareto front is shown; {seeds} seed(s)",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0.02, 1, 0.97))
    return fig


def write_all(table: Sequence[tuple], out: Path, provenance: str = "") -> list[Path]:
    """sweep.{png,pdf} in ``out``."""
    from sim.studies.loss_scale_sweep import HEADER

    return write_figure(sweep_figure(table, HEADER), out, "sweep", provenance)
