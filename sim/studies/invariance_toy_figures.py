"""Figures of the invariance-toy study, in the layout of the paper's Fig. A1 (frozen backbone) and
Fig. A2 (free backbone): one row per method/optimizer, one column per quantity (losses, scaled
losses, gradient norms, update norms; solid lines unscaled, dashed scaled runs, colours per
task/head/backbone) and a last column with the relative difference of the scaled and unscaled
update vectors per part, ||u_scaled - u|| / ||u||, the quantity the verdicts use, on a log axis
beside the tolerance; an exact 0 (identical updates) is drawn at the bottom of the axis and
labelled. Matplotlib's Agg backend; PNG and PDF.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sim.studies.figure_io import pyplot, write_figure

if TYPE_CHECKING:
    from sim.studies.invariance_toy import Result

COLOURS = {"task1": "C0", "head1": "C0", "task2": "C1", "head2": "C1", "backbone": "C2"}
NAMES = {"task1": "task 1", "task2": "task 2", "head1": "head 1", "head2": "head 2"}
TITLES = {
    "loss": "loss (unscaled)",
    "scaled_loss": "scaled loss (what is optimised)",
    "grad_norm": "gradient norm",
    "update_norm": "update norm",
}
FLOOR = 1e-17
"""Where a relative difference of exactly 0 is drawn on the log axis."""


def backbone_figure(result: Result, backbone: str):
    """All pairs run with ``backbone`` ('frozen': Fig. A1, 'free': Fig. A2)."""
    from matplotlib.ticker import MaxNLocator

    from sim.studies.invariance_toy import PAIRS, PARTS, QUANTITIES, relative_difference

    plt = pyplot()
    pairs = [p for p in PAIRS if p.backbone == backbone]
    cols = len(QUANTITIES) + 1
    fig, axes = plt.subplots(
        len(pairs), cols, figsize=(3.9 * cols, 2.9 * len(pairs) + 0.8), squeeze=False
    )
    tol = result.config.tolerance
    for i, pair in enumerate(pairs):
        for j, quantity in enumerate(QUANTITIES):
            ax = axes[i, j]
            shown = []
            for scaled, style in ((False, "-"), (True, "--")):
                for (q, part), values in result.runs[(pair, scaled)].items():
                    if q != quantity:
                        continue
                    epochs = np.arange(1, len(values) + 1)
                    label = f"{NAMES.get(part, part)}, {'scaled' if scaled else 'unscaled'}"
                    ax.plot(epochs, values, style, color=COLOURS[part], label=label, lw=1.2)
                    shown.append(values)
            values = np.concatenate(shown)
            positive = values[values > 0]
            if positive.size and positive.max() > 10 * positive.min():
                ax.set_yscale("log")  # within one decade a linear axis reads better
            ax.set_title(f"{pair.method} + {pair.optimizer}: {TITLES[quantity]}", fontsize=8)
            ax.legend(fontsize=6, framealpha=0.6, loc="best")
        ax = axes[i, -1]
        unscaled, scaled = result.updates[(pair, False)], result.updates[(pair, True)]
        zero_drawn = False
        for part in (p for p in PARTS if p in unscaled):
            rel = relative_difference(scaled[part], unscaled[part])
            epochs = np.arange(1, len(rel) + 1)
            ax.plot(
                epochs,
                np.maximum(rel, FLOOR),
                "-",
                color=COLOURS[part],
                lw=1.2,
                label=NAMES.get(part, part),
            )
            zero_drawn |= bool((rel == 0).any())
        ax.axhline(tol, color="k", ls=":", lw=1, label=f"tolerance {tol:g}")
        if zero_drawn:
            ax.axhline(FLOOR, color="0.6", lw=3, alpha=0.4, label=f"exactly 0 (drawn at {FLOOR:g})")
        ax.set_yscale("log")
        ax.set_ylim(FLOOR / 10, 10)
        ax.set_title(f"{pair.method} + {pair.optimizer}: ||u_scaled - u|| / ||u||", fontsize=8)
        ax.legend(fontsize=6, framealpha=0.6, loc="center right")
        for ax in axes[i]:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.tick_params(labelsize=7)
            if i == len(pairs) - 1:
                ax.set_xlabel("epoch (one full-batch step)", fontsize=8)
    s1, s2 = result.config.scales
    fig.suptitle(
        f"invariance toy, {backbone} backbone: solid unscaled, dashed scaled (L1 x {s1:g}, "
        f"L2 x {s2:g}); last column: relative difference of the update vectors",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.015, 1, 0.98))
    return fig


def write_all(result: Result, out: Path, provenance: str = "") -> list[Path]:
    """fig_a1_frozen.{png,pdf} and fig_a2_free.{png,pdf} in ``out``."""
    written = []
    for name, backbone in (("fig_a1_frozen", "frozen"), ("fig_a2_free", "free")):
        written += write_figure(backbone_figure(result, backbone), out, name, provenance)
    return written
