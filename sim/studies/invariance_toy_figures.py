"""Figures of the invariance-toy study, in the layout of the paper's Fig. A1 (frozen backbone) and
Fig. A2 (free backbone): one row per method/optimizer, one column per quantity (losses, scaled
losses, gradient norms, update norms), solid lines unscaled and dashed lines scaled runs,
colours per head/backbone. Matplotlib's Agg backend; PNG and PDF.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sim.studies.figure_io import pyplot, write_figure

if TYPE_CHECKING:
    from sim.studies.invariance_toy import Result

COLOURS = {"task1": "C0", "head1": "C0", "task2": "C1", "head2": "C1", "backbone": "C2"}
TITLES = {
    "loss": "loss (unscaled)",
    "scaled_loss": "scaled loss",
    "grad_norm": "gradient norm",
    "update_norm": "update norm",
}


def backbone_figure(result: Result, backbone: str):
    """All pairs run with ``backbone`` ('frozen': Fig. A1, 'free': Fig. A2)."""
    from sim.studies.invariance_toy import PAIRS, QUANTITIES

    plt = pyplot()
    pairs = [p for p in PAIRS if p.backbone == backbone]
    fig, axes = plt.subplots(
        len(pairs), len(QUANTITIES), figsize=(4 * len(QUANTITIES), 2.8 * len(pairs)), squeeze=False
    )
    for i, pair in enumerate(pairs):
        for j, quantity in enumerate(QUANTITIES):
            ax = axes[i, j]
            for scaled, style in ((False, "-"), (True, "--")):
                record = result.runs[(pair, scaled)]
                for (q, part), values in record.items():
                    if q != quantity:
                        continue
                    epochs = np.arange(1, len(values) + 1)
                    label = f"{part}, {'scaled' if scaled else 'unscaled'}"
                    ax.plot(epochs, values, style, color=COLOURS[part], label=label, lw=1.2)
            ax.set_yscale("log")
            ax.set_title(f"{pair.method} + {pair.optimizer}: {TITLES[quantity]}", fontsize=9)
            if i == len(pairs) - 1:
                ax.set_xlabel("epoch")
            if i == 0 and j == len(QUANTITIES) - 1:
                ax.legend(fontsize=7)
    s1, s2 = result.config.scales
    fig.suptitle(f"{backbone} backbone: solid unscaled, dashed L1 x {s1:g} and L2 x {s2:g}")
    fig.tight_layout()
    return fig


def write_all(result: Result, out: Path, provenance: str = "") -> list[Path]:
    """fig_a1_frozen.{png,pdf} and fig_a2_free.{png,pdf} in ``out``."""
    written = []
    for name, backbone in (("fig_a1_frozen", "frozen"), ("fig_a2_free", "free")):
        written += write_figure(backbone_figure(result, backbone), out, name, provenance)
    return written
