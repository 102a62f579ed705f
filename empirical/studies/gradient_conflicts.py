"""``mtlp empirical gradient-conflicts``: are inter-sample conflicts as large as inter-task ones?

The paper's Sec. 4.2 protocol: EW training with Adam (lr 1e-3, weight decay 1e-5); every 5
iterations, 8 random samples of the batch; per sample pair of one task (inter-sample) and per
task pair of one sample (inter-task): cosine similarity, gradient magnitude similarity and the
ratio of conflicting parameters over the shared parameters, plus the averaged-gradient variants
(App. A5: task gradients averaged over the samples, sample gradients averaged over the tasks),
the positive/negative split of the cosine (A6) and the scalar product (A7). Pooling: the pairs
of every measured step of an epoch are pooled into one distribution per (kind, statistic), whose
mean, std and 2.5/97.5 percentiles are reported per epoch (Fig. 4).

Beyond the paper: the same runs with UW-O-normalised losses (magnitude similarity between tasks
depends on the loss units; UW-O removes them), several seeds, and a summary per setup with
bootstrap intervals over (seed, epoch) cells: ``d_cos`` = mean inter-sample minus mean
inter-task cosine, ``d_mag`` = the same for magnitude similarity; and the same differences per
layer of the shared network (``layers.{csv,md,png}``, from the trainer's per-layer pair means),
to show where in the network samples and tasks conflict.
Verdicts: direction conflicts between samples reach those between tasks when the interval of
``d_cos`` lies below :data:`COSINE_MARGIN`; tasks differ in magnitude more than samples when the
interval of ``d_mag`` (raw losses) lies above 0.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.ticker import MaxNLocator

from empirical.analysis import Verdict, bootstrap
from empirical.studies.common import (
    add_common_arguments,
    dry_run,
    execute_phase,
    with_data_root,
    write_verdicts,
)
from empirical.studies.scales import DATA_LABELS, Setup, setups
from empirical.sweep import read_sweep
from mtl.gradients import summarize
from mtl.io import atomic_write_text, save_figure, write_csv

STUDY = "gradient-conflicts"
COSINE_MARGIN = 0.05
MIN_CELLS = 3
"""Fewer (seed, epoch) cells than this give no interval worth a verdict: inconclusive."""
STATISTICS = ("cosine", "magnitude_similarity", "conflict_ratio", "dot")
KINDS = ("inter_task", "inter_sample", "inter_task_averaged", "inter_sample_averaged")
NORMALISATIONS = {"raw": "ew", "uw-o": "uw-o"}
GRIDS = {
    "quick": {"seeds": 1, "every": 2, "samples": 4},
    "cpu": {"seeds": 3, "every": 5, "samples": 8},
    "full": {"seeds": 1, "every": 5, "samples": 8},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)


def study_setups(scale: str) -> tuple[Setup, ...]:
    """The optimizer study's setups, plus CelebA with ResNet-18 at full scale."""
    chosen = setups(scale)
    if scale == "full":
        celeba = {"epochs": 100, "batch_size": 512, "schedule": "step", "step_size": 30,
                  "gamma": 0.5, "weight_decay": 1e-5, "device": "auto"}  # fmt: skip
        chosen = (*chosen, Setup("celeba", "resnet18", "full", celeba))
    return chosen


def configs(setup: Setup, grid: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        setup.config(
            method=method,
            optimizer="adam",
            lr=1e-3,
            seed=seed,
            grad_stats_every=grid["every"],
            grad_stats_samples=grid["samples"],
        )
        for method in NORMALISATIONS.values()
        for seed in range(grid["seeds"])
    ]


def record(args: argparse.Namespace) -> dict[str, Any]:
    """The study's configuration record (``config.json`` of its folder)."""
    grid = dict(GRIDS[args.scale])
    grid["seeds"] = args.seeds or grid["seeds"]
    return {"study": STUDY, "scale": args.scale, **grid}


def run(args: argparse.Namespace) -> int:
    grid = dict(GRIDS[args.scale])
    grid["seeds"] = args.seeds or grid["seeds"]
    chosen = study_setups(args.scale)
    phases = {
        s.name: [with_data_root(c, s, args.data_root) for c in configs(s, grid)] for s in chosen
    }
    if args.dry_run:
        return dry_run(phases, chosen, args)
    root = Path(args.out)
    verdicts = []
    for setup in chosen:
        out = root / setup.name
        execute_phase(out, "runs", phases[setup.name], args)
        table = epoch_table(out / "runs")
        write_csv(out / "epochs.csv", list(table.columns), table.itertuples(index=False))
        source = f"mtlp empirical {STUDY} --scale {args.scale}; {setup.name}"
        for norm in NORMALISATIONS:
            fig = figure(table[table["normalisation"] == norm], f"{setup.name}, {norm}", source)
            save_figure(fig, out / f"conflicts_{norm}.png", dpi=110)
            plt.close(fig)
        verdicts += summary_verdicts(out, table, setup, args.scale)
        layers = layer_summary(layer_table(out / "runs"))
        write_layers(out, layers, source)
    write_verdicts(root, verdicts, STUDY)
    return 0


def _values(stats: dict[str, list], name: str) -> torch.Tensor:
    values = [float("nan") if v is None else v for v in stats.get(name, [])]
    return torch.tensor(values, dtype=torch.float64)


def epoch_table(sweep_root: Path) -> pd.DataFrame:
    """One row per run, epoch, pair kind and statistic: the pooled summary of that epoch, plus
    the means of the positive and of the negative values (App. A6)."""
    _, runs = read_sweep(sweep_root)
    rows = []
    norm_of = {m: n for n, m in NORMALISATIONS.items()}
    for run in runs:
        path = run.directory / "grad_stats.jsonl"
        if not path.is_file():
            continue
        pooled: dict[tuple[int, str, str], list[torch.Tensor]] = {}
        for line in path.read_text().splitlines():
            record = json.loads(line)
            for kind, stats in record.get("per_sample", {}).items():
                for name in STATISTICS:
                    pooled.setdefault((record["epoch"], kind, name), []).append(
                        _values(stats, name)
                    )
        for (epoch, kind, name), values in sorted(pooled.items()):
            summary = summarize(values)
            finite = torch.cat(values)
            finite = finite[torch.isfinite(finite)]
            positive, negative = finite[finite > 0], finite[finite < 0]
            rows.append({
                "normalisation": norm_of.get(run.config["method"], run.config["method"]),
                "seed": run.config["seed"], "epoch": epoch, "kind": kind, "statistic": name,
                **summary,
                "mean_positive": float(positive.mean()) if positive.numel() else float("nan"),
                "mean_negative": float(negative.mean()) if negative.numel() else float("nan"),
            })  # fmt: skip
    return pd.DataFrame(rows)


def layer_table(sweep_root: Path) -> pd.DataFrame:
    """One row per run, epoch, layer, pair kind and statistic: the mean over the epoch's measured
    steps of the per-step pair means (each step has the same pairs, so this is the pooled mean)."""
    _, runs = read_sweep(sweep_root)
    norm_of = {m: n for n, m in NORMALISATIONS.items()}
    rows = []
    for run in runs:
        path = run.directory / "grad_stats.jsonl"
        if not path.is_file():
            continue
        norm = norm_of.get(run.config["method"], run.config["method"])
        seed = run.config["seed"]
        for line in path.read_text().splitlines():
            record = json.loads(line)
            for order, (layer, kinds) in enumerate(record.get("by_layer", {}).items()):
                for kind, stats in kinds.items():
                    for name, value in stats.items():
                        rows.append({
                            "normalisation": norm, "seed": seed, "epoch": record["epoch"],
                            "order": order, "layer": layer, "kind": kind, "statistic": name,
                            "mean": float("nan") if value is None else value,
                        })  # fmt: skip
    columns = ["normalisation", "seed", "epoch", "order", "layer", "kind", "statistic", "mean"]
    if not rows:
        return pd.DataFrame(columns=columns)
    keys = columns[:-1]
    return pd.DataFrame(rows).groupby(keys, as_index=False)["mean"].mean()


def layer_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per normalisation, layer (in network order) and statistic: the mean inter-sample minus
    inter-task value with a bootstrap interval over (seed, epoch) cells."""
    rows = []
    for (norm, order, layer, name), part in table.groupby(
        ["normalisation", "order", "layer", "statistic"], sort=True
    ):
        wide = part.pivot_table(index=["seed", "epoch"], columns="kind", values="mean")
        if "inter_sample" not in wide or "inter_task" not in wide:
            continue
        diffs = (wide["inter_sample"] - wide["inter_task"]).dropna().to_numpy()
        if diffs.size:
            mean, lo, hi = bootstrap(diffs)
            rows.append((norm, order, layer, name, diffs.size, mean, lo, hi))
    columns = ["normalisation", "order", "layer", "statistic", "cells", "difference", "lo", "hi"]
    return pd.DataFrame(rows, columns=columns)


def write_layers(out: Path, summary: pd.DataFrame, source: str) -> None:
    """``layers.csv``, ``layers.md`` (raw losses) and ``layers.png`` (both normalisations)."""
    if summary.empty:
        return
    write_csv(out / "layers.csv", list(summary.columns), summary.itertuples(index=False))
    raw = summary[summary["normalisation"] == "raw"].sort_values("order")
    lines = [
        "## Per layer: inter-sample minus inter-task (raw losses)",
        "",
        "Each cell: mean inter-sample minus mean inter-task value, 95% bootstrap interval over "
        f"{int(raw['cells'].max())} (seed, epoch) cells. A negative cosine difference: samples "
        "point apart more than tasks in that layer; a negative magnitude-similarity difference: "
        "samples differ more in gradient length than tasks; a positive conflict-ratio "
        "difference: more coordinates of opposite sign between samples.",
        "",
        "| layer | cosine | magnitude similarity | conflict ratio |",
        "|---|---|---|---|",
    ]
    for _, part in raw.groupby("order", sort=True):
        cells = {r.statistic: f"{r.difference:+.3f} [{r.lo:+.3f}, {r.hi:+.3f}]"
                 for r in part.itertuples()}  # fmt: skip
        name = part["layer"].iloc[0]
        lines.append(
            f"| {name} | {cells.get('cosine', '')} | {cells.get('magnitude_similarity', '')} | "
            f"{cells.get('conflict_ratio', '')} |"
        )
    atomic_write_text(out / "layers.md", "\n".join(lines) + "\n")
    fig = layer_figure(summary, source)
    save_figure(fig, out / "layers.png", dpi=110)
    plt.close(fig)


def layer_figure(summary: pd.DataFrame, source: str):
    """Per statistic: the inter-sample minus inter-task difference along the network's layers,
    with its interval, for raw and UW-O-normalised losses."""
    names = ("cosine", "magnitude_similarity", "conflict_ratio")
    layers = summary.drop_duplicates("order").sort_values("order")["layer"].tolist()
    fig, axes = plt.subplots(1, len(names), figsize=(4.6 * len(names), 4.4), sharex=True)
    for ax, name in zip(axes, names, strict=True):
        for norm, colour in (("raw", "tab:purple"), ("uw-o", "tab:green")):
            part = summary[(summary["normalisation"] == norm) & (summary["statistic"] == name)]
            part = part.sort_values("order")
            if part.empty:
                continue
            ax.errorbar(
                part["order"], part["difference"],
                yerr=[part["difference"] - part["lo"], part["hi"] - part["difference"]],
                fmt="o-", ms=3, capsize=2, color=colour, label=norm,
            )  # fmt: skip
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_title(f"{name.replace('_', ' ')}: inter-sample - inter-task", fontsize=9)
        every = max(1, -(-len(layers) // 24))  # at most 24 labels
        ticks = range(0, len(layers), every)
        ax.set_xticks(ticks, [_short(layers[i]) for i in ticks], rotation=90, fontsize=6)
        ax.set_xlabel("shared layer (network order)", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.text(0.01, 0.005, source, fontsize=7, color="0.35")
    return fig


def _short(layer: str) -> str:
    """A layer's name without the shared module's own prefix."""
    return layer.removeprefix("encoder.")


def figure(table: pd.DataFrame, title: str, source: str):
    """Fig. 4 / A5 / A7: per statistic, the epoch means with 2.5-97.5 % percentile bands of
    inter-task and inter-sample pairs (single and averaged gradients)."""
    fig, axes = plt.subplots(2, len(STATISTICS), figsize=(3.3 * len(STATISTICS), 5.6))
    colours = {"inter_task": "tab:red", "inter_sample": "tab:blue"}
    for col, name in enumerate(STATISTICS):
        for row, suffix in enumerate(("", "_averaged")):
            ax = axes[row, col]
            for base, colour in colours.items():
                part = table[(table["kind"] == base + suffix) & (table["statistic"] == name)]
                if part.empty:
                    continue
                by_epoch = part.groupby("epoch")[["mean", "p2.5", "p97.5"]].mean()
                label = base.replace("_", "-")
                ax.plot(by_epoch.index, by_epoch["mean"], "o-", ms=4, color=colour, label=label)
                ax.errorbar(  # the 2.5-97.5 % band, visible even for a single epoch
                    by_epoch.index, by_epoch["mean"],
                    yerr=[by_epoch["mean"] - by_epoch["p2.5"],
                          by_epoch["p97.5"] - by_epoch["mean"]],
                    fmt="none", ecolor=colour, alpha=0.4, capsize=3,
                )  # fmt: skip
                ax.fill_between(
                    by_epoch.index, by_epoch["p2.5"], by_epoch["p97.5"], color=colour, alpha=0.15
                )
            ax.set_title(f"{name.replace('_', ' ')}{' (averaged)' if suffix else ''}", fontsize=9)
            ax.set_xlabel("epoch")
            if not table.empty:  # integer epochs, also when only one was measured
                ax.set_xlim(table["epoch"].min() - 0.5, table["epoch"].max() + 0.5)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.suptitle(f"Gradient similarity during EW training: {title} (bands: 2.5-97.5 %)")
    fig.tight_layout(rect=(0, 0.03, 1, 0.97))
    fig.text(0.01, 0.005, source, fontsize=7, color="0.35")
    return fig


def _difference(table: pd.DataFrame, norm: str, statistic: str) -> np.ndarray:
    """Per (seed, epoch): mean inter-sample minus mean inter-task value of ``statistic``."""
    part = table[(table["normalisation"] == norm) & (table["statistic"] == statistic)]
    wide = part.pivot_table(index=["seed", "epoch"], columns="kind", values="mean")
    if "inter_sample" not in wide or "inter_task" not in wide:
        return np.array([])
    return (wide["inter_sample"] - wide["inter_task"]).dropna().to_numpy()


def summary_verdicts(out: Path, table: pd.DataFrame, setup: Setup, scale: str) -> list[Verdict]:
    data = f"{DATA_LABELS[setup.data]} ({setup.name})"
    rows, verdicts = [], []
    for norm in NORMALISATIONS:
        for statistic in ("cosine", "magnitude_similarity", "conflict_ratio"):
            diffs = _difference(table, norm, statistic)
            if diffs.size:
                mean, lo, hi = bootstrap(diffs)
                rows.append((norm, statistic, diffs.size, mean, lo, hi))
    write_csv(
        out / "summary.csv",
        ["normalisation", "statistic", "cells", "inter_sample_minus_inter_task", "lo", "hi"],
        rows,
    )
    found = {(r[0], r[1]): r for r in rows}
    cosine = found.get(("raw", "cosine"))
    if cosine is None:
        verdicts.append(Verdict("direction-conflicts", "not run", scale, data, "no statistics"))
    else:
        _, _, n, mean, lo, hi = cosine
        verdict = "confirmed" if hi < COSINE_MARGIN else "refuted" if lo > COSINE_MARGIN else (
            "inconclusive"
        )  # fmt: skip
        verdict = verdict if n >= MIN_CELLS else "inconclusive"
        evidence = (
            f"mean inter-sample minus inter-task cosine {mean:+.3f}, 95% interval [{lo:+.3f}, "
            f"{hi:+.3f}] over {n} (seed, epoch) cells; confirmed below {COSINE_MARGIN}"
        )
        verdicts.append(Verdict("direction-conflicts", verdict, scale, data, evidence))
    magnitude = found.get(("raw", "magnitude_similarity"))
    if magnitude is None:
        verdicts.append(Verdict("magnitude-similarity", "not run", scale, data, "no statistics"))
    else:
        _, _, n, mean, lo, hi = magnitude
        verdict = "confirmed" if lo > 0 else "refuted" if hi < 0 else "inconclusive"
        verdict = verdict if n >= MIN_CELLS else "inconclusive"
        uwo = found.get(("uw-o", "magnitude_similarity"))
        evidence = (
            f"raw losses: inter-sample minus inter-task magnitude similarity {mean:+.3f}, 95% "
            f"interval [{lo:+.3f}, {hi:+.3f}] ({n} cells)"
        )
        if uwo is not None:
            evidence += f"; UW-O: {uwo[3]:+.3f} [{uwo[4]:+.3f}, {uwo[5]:+.3f}]"
        verdicts.append(Verdict("magnitude-similarity", verdict, scale, data, evidence))
    return verdicts
