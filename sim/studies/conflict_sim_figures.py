"""Figure of conflict-sim: one row per measurement point (``progress``), one column per
statistic against the per-sample noise, one colour per task relatedness (cos of the task optima),
solid inter-task and dashed inter-sample pairs (raw losses, equal units); markers are means,
bars the 2.5-97.5 % percentile interval (the statistics are bounded, so mean +- std could leave
their range). The last column shows the inter-task magnitude similarity against the loss-units
ratio for raw and UW-O-normalised losses. Matplotlib's Agg backend; PNG and PDF."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sim.studies.figure_io import pyplot, write_figure

if TYPE_CHECKING:
    from sim.studies.conflict_sim import Result

LABELS = {
    "cosine": "cosine similarity",
    "magnitude_similarity": "magnitude similarity",
    "conflict_ratio": "conflict ratio (opposite-sign coords)",
}
KIND_LABELS = {"inter_task": "inter-task", "inter_sample": "inter-sample"}


def conflict_figure(result: Result):
    from sim.studies.conflict_sim import STATISTICS

    plt = pyplot()
    cfg = result.config
    rows, cols = len(cfg.progress), len(STATISTICS) + 1
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.6 * rows + 0.8), squeeze=False)
    for i, progress in enumerate(cfg.progress):
        base = {"units_ratio": cfg.units_ratios[0], "progress": progress, "normalisation": "raw"}
        for j, name in enumerate(STATISTICS):
            ax = axes[i, j]
            for c, rel in enumerate(cfg.relatedness):
                for k, (kind, style) in enumerate((("inter_task", "-o"), ("inter_sample", "--s"))):
                    pts = sorted(
                        (s.noise, stats[kind][name])
                        for s, stats in result.summaries.items()
                        if s.relatedness == rel and all(getattr(s, a) == v for a, v in base.items())
                    )
                    x = np.array([p[0] for p in pts]) * (1 + 0.03 * (2 * k - 1))  # dodge
                    mean = np.array([p[1]["mean"] for p in pts])
                    lo = mean - np.array([p[1]["p2.5"] for p in pts])
                    hi = np.array([p[1]["p97.5"] for p in pts]) - mean
                    ax.errorbar(
                        x,
                        mean,
                        yerr=np.clip([lo, hi], 0, None),
                        fmt=style,
                        color=f"C{c}",
                        capsize=2,
                        markersize=3,
                        label=f"relatedness cos = {rel:g}, {KIND_LABELS[kind]}",
                    )
            ax.set_xscale("symlog", linthresh=0.1)
            ax.set_xlabel("per-sample noise sqrt(E ||eps||^2)")
            ax.set_ylabel(LABELS[name])
            ax.set_title(f"{LABELS[name]}, measured at progress {progress:g}", fontsize=9)
        ax = axes[i, -1]
        for norm, style in (("raw", "-o"), ("uw-o", "--s")):
            pts = sorted(
                (s.units_ratio, stats["inter_task"]["magnitude_similarity"]["mean"])
                for s, stats in result.summaries.items()
                if s.normalisation == norm
                and s.noise == cfg.noise[0]
                and s.relatedness == cfg.relatedness[0]
                and s.progress == progress
            )
            label = "raw losses" if norm == "raw" else "UW-O-normalised losses"
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=label)
        ax.set_xscale("log")
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel("loss-units ratio u1 / u2")
        ax.set_ylabel("inter-task magnitude similarity (mean)")
        ax.set_title(
            f"loss units, progress {progress:g} (cos = {cfg.relatedness[0]:g}, "
            f"noise {cfg.noise[0]:g})",
            fontsize=9,
        )
        ax.legend(fontsize=7)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="lower center",
        ncol=min(4, len(labels)),
        fontsize=7,
        bbox_to_anchor=(0.5, 0.015),
    )
    fig.suptitle(
        "conflict-sim: inter-task (solid) vs inter-sample (dashed) gradient pairs; markers: "
        "means, bars: 2.5-97.5 % percentiles; raw losses, equal units",
        fontsize=10,
    )
    legend_rows = int(np.ceil(len(labels) / 4))
    fig.tight_layout(rect=(0, 0.03 + 0.035 * legend_rows / rows, 1, 0.97))
    return fig


def write_all(result: Result, out: Path, provenance: str = "") -> list[Path]:
    """conflict.{png,pdf} in ``out``."""
    return write_figure(conflict_figure(result), out, "conflict", provenance)
