"""Figure of conflict-sim: mean +- std of each statistic against the per-sample noise, one colour
per task relatedness, solid inter-task and dashed inter-sample (raw losses, equal units, the
first measurement point), and the inter-task magnitude similarity against the loss-units ratio
for raw and UW-O-normalised losses. Matplotlib's Agg backend; PNG and PDF."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sim.studies.figure_io import pyplot, write_figure

if TYPE_CHECKING:
    from sim.studies.conflict_sim import Result


def conflict_figure(result: Result):
    from sim.studies.conflict_sim import STATISTICS

    plt = pyplot()
    cfg = result.config
    fig, axes = plt.subplots(1, len(STATISTICS) + 1, figsize=(4.5 * (len(STATISTICS) + 1), 3.8))
    base = {"units_ratio": cfg.units_ratios[0], "progress": cfg.progress[0], "normalisation": "raw"}
    for j, name in enumerate(STATISTICS):
        ax = axes[j]
        for c, rel in enumerate(cfg.relatedness):
            for kind, style in (("inter_task", "-"), ("inter_sample", "--")):
                pts = [
                    (s.noise, stats[kind][name])
                    for s, stats in result.summaries.items()
                    if s.relatedness == rel and all(getattr(s, k) == v for k, v in base.items())
                ]
                pts.sort(key=lambda p: p[0])
                x = [p[0] for p in pts]
                mean = [p[1]["mean"] for p in pts]
                std = [p[1]["std"] for p in pts]
                ax.errorbar(
                    x,
                    mean,
                    yerr=std,
                    fmt=style,
                    color=f"C{c}",
                    capsize=2,
                    label=f"cos {rel:g}, {kind.replace('_', '-')}",
                )
        ax.set_xlabel("per-sample noise")
        ax.set_title(name.replace("_", " "), fontsize=9)
    axes[0].legend(fontsize=6)
    ax = axes[-1]
    for norm, style in (("raw", "-o"), ("uw-o", "--s")):
        pts = sorted(
            (s.units_ratio, stats["inter_task"]["magnitude_similarity"]["mean"])
            for s, stats in result.summaries.items()
            if s.normalisation == norm
            and s.noise == cfg.noise[0]
            and s.relatedness == cfg.relatedness[0]
            and s.progress == cfg.progress[0]
        )
        ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=norm)
    ax.set_xscale("log")
    ax.set_xlabel("loss-units ratio u1 / u2")
    ax.set_title("inter-task magnitude similarity", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def write_all(result: Result, out: Path, provenance: str = "") -> list[Path]:
    """conflict.{png,pdf} in ``out``."""
    return write_figure(conflict_figure(result), out, "conflict", provenance)
