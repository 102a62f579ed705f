"""``mtlp empirical capacity``: how should capacity be allocated between tasks?

Three levers of hard parameter sharing, each varied alone from one reference run (SegNet with
every block shared, the published head, EW, one learning rate for all parameters), against
task weighting, under Adam and SGD+momentum, over seeds:

- ``split``: how many of SegNet's ten blocks are shared (``model_options.shared_blocks``; the
  unshared tail is copied per task as part of its head);
- ``head-width``: channels of each head's conv3x3 (``model_options.head_width``);
- ``head-lr``: one task's head learning rate scaled by a factor (``task_lrs = {task: lr}``);
- ``task-weight``: the same task's loss weighted by the same factor (a fixed weighting, run only
  where ``mtl.methods`` has one, :data:`FIXED_WEIGHTING`);
- ``weighting``: the loss weightings of ``mtl.methods`` in place of EW.

Two phases per setup: ``stl/`` (single-task Adam baselines, as the optimizer study) and ``mtl/``.
The analysis writes ``<setup>/table.{csv,md}`` (per optimizer, lever and value: test Δm with a
bootstrap interval over seeds, its paired change against the reference, and the fraction of
seeds on the Pareto front of all the setup's runs over the test metrics), ``levers.png`` (Δm and
front membership against each lever) and verdicts computed from the intervals. The pairing of a
task weight with the head learning rate of the same factor tests the atlas' statement: under SGD
a task weight w scales its head's step as a head learning rate w does (and also reweights the
backbone's mixture); under Adam a weight leaves its head's step unchanged.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from empirical.analysis import (
    Verdict,
    bootstrap,
    interval_from_direction,
    metric_columns,
    with_delta_m,
)
from empirical.figures import OPTIMIZER_COLOURS
from empirical.studies import optimizer_sweep as sweep_study
from empirical.studies.common import (
    add_common_arguments,
    baselines,
    baselines_path,
    dry_run,
    run_phase,
    stl_configs,
    with_data_root,
    write_verdicts,
)
from empirical.studies.scales import DATA_LABELS, Setup, setups
from mtl.io import atomic_write_text, save_figure, write_csv
from mtl.metrics import higher_is_better, pareto_front

STUDY = "capacity"
ARCH = "segnet"  # the architecture with a split point and a head width (empirical.models)
LEVERS = ("reference", "split", "head-width", "head-lr", "task-weight", "weighting")
OPTIMIZERS: dict[str, dict[str, Any]] = {
    "adam": {"optimizer": "adam"},
    "sgd": {"optimizer": "sgd", "momentum": 0.9},
}
#: The fixed-weight method the ``task-weight`` lever needs: ``weights`` = one float per task.
FIXED_WEIGHTING = "fixed"
GRIDS: dict[str, dict[str, Any]] = {
    "quick": {
        "lrs": {"adam": 0.001, "sgd": 0.01}, "shared_blocks": (5,), "head_widths": (8,),
        "head_tasks": ("depth",), "factors": (10.0,), "weightings": ("uw",), "stl_lrs": (0.001,),
        "seeds": 1,
    },
    "cpu": {
        "lrs": {"adam": 0.001, "sgd": 0.01}, "shared_blocks": (8, 6, 5, 3),
        "head_widths": (1, 16), "head_tasks": ("segmentation", "depth", "normal"),
        "factors": (0.1, 10.0), "weightings": ("uw", "dwa", "rlw"),
        "stl_lrs": (0.01, 0.001), "seeds": 3,
    },
    "full": {
        "lrs": {"adam": 0.0001, "sgd": 0.01}, "shared_blocks": (9, 8, 7, 6, 5, 3, 1),
        "head_widths": (16, 32, 128, 256), "head_tasks": ("segmentation", "depth", "normal"),
        "factors": (0.1, 0.3, 3.0, 10.0),
        "weightings": ("uw", "uw-o", "dwa", "rlw", "gls", "si", "famo"),
        "stl_lrs": (0.01, 0.005, 0.001, 0.0005, 0.0001, 0.00005), "seeds": 3,
    },
}  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)


def capacity_setups(scale: str) -> tuple[Setup, ...]:
    """The scale's setups with the architecture that has the levers (SegNet)."""
    return tuple(s for s in setups(scale) if s.arch == ARCH)


def fixed_weighting_available() -> bool:
    import mtl.methods

    return FIXED_WEIGHTING in mtl.methods.NAMES


def labelled_configs(
    setup: Setup, grid: dict[str, Any], seeds: int, root: Path, *, task_weights: bool
) -> list[tuple[str, str, dict[str, Any]]]:
    """``(lever, value, config)`` of every MTL run: the reference and each lever alone."""
    tasks = sweep_study.TASKS[setup.dataset]
    width = setup.protocol.get("width") or 64
    out = []
    for opt, fields in OPTIMIZERS.items():
        lr = grid["lrs"][opt]
        changes: list[tuple[str, str, dict[str, Any]]] = [("reference", "default", {})]
        changes += [
            ("split", str(s), {"model_options": {"shared_blocks": s}})
            for s in grid["shared_blocks"]
        ]
        changes += [
            ("head-width", f"{h / width:g}x", {"model_options": {"head_width": h}})
            for h in grid["head_widths"]
        ]
        for task in grid["head_tasks"]:
            for f in grid["factors"]:
                changes.append(("head-lr", f"{task} x{f:g}", {"task_lrs": {task: f * lr}}))
                if task_weights:
                    weights = [f if t == task else 1.0 for t in tasks]
                    fixed = {"method": FIXED_WEIGHTING, "method_options": {"weights": weights}}
                    changes.append(("task-weight", f"{task} x{f:g}", fixed))
        changes += [("weighting", m, {"method": m}) for m in grid["weightings"]]
        for lever, value, change in changes:
            for seed in range(seeds):
                config = setup.config(
                    method="ew", lr=lr, seed=seed, baselines=baselines_path(root, setup), **fields
                )
                out.append((lever, value, {**config, **change}))
    return out


def record(args: argparse.Namespace) -> dict[str, Any]:
    """The study's configuration record (``config.json`` of its folder)."""
    return {"study": STUDY, "scale": args.scale, "seeds": args.seeds or GRIDS[args.scale]["seeds"]}


def run(args: argparse.Namespace) -> int:
    grid = GRIDS[args.scale]
    seeds = args.seeds or grid["seeds"]
    chosen = capacity_setups(args.scale)
    root = Path(args.out)
    weights = fixed_weighting_available()
    if not weights:
        print(
            f"note: mtl.methods has no {FIXED_WEIGHTING!r} weighting; the task-weight lever "
            "and its verdict are not run"
        )
    stl, mtl = {}, {}
    for s in chosen:
        stl[s.name] = [
            with_data_root(c, s, args.data_root)
            for c in stl_configs(s, sweep_study.TASKS[s.dataset], grid["stl_lrs"], range(seeds))
        ]
        mtl[s.name] = [
            (lever, value, with_data_root(c, s, args.data_root))
            for lever, value, c in labelled_configs(s, grid, seeds, root, task_weights=weights)
        ]
    if args.dry_run:
        phases = {f"{n}/stl": c for n, c in stl.items()}
        phases |= {f"{n}/mtl": [c for *_, c in runs] for n, runs in mtl.items()}
        return dry_run(phases, chosen, args)
    verdicts = []
    for setup in chosen:
        out = root / setup.name
        val_base, test_base = baselines(root, run_phase(out, "stl", stl[setup.name], args), setup)
        table = run_phase(out, "mtl", [c for *_, c in mtl[setup.name]], args)
        labels = pd.DataFrame(
            [(sweep_run_id(c), lever, value) for lever, value, c in mtl[setup.name]],
            columns=["run_id", "lever", "setting"],
        )
        runs = table.merge(labels, on="run_id")
        runs["val_dm"] = with_delta_m(runs, {f"val/{k}": v for k, v in val_base.items()}, "val")
        runs["test_dm"] = with_delta_m(runs, {f"test/{k}": v for k, v in test_base.items()}, "test")
        data = f"{DATA_LABELS[setup.data]} ({setup.name})"
        verdicts += analyse(out, runs, test_base, args.scale, data, source=_source(args, setup))
    write_verdicts(root, verdicts, STUDY)
    return 0


def _bootstrap(values) -> tuple[float, float, float]:
    """Mean and 95% percentile-bootstrap interval (1000 resamples) of ``values``."""
    return bootstrap(np.asarray(values, dtype=float), resamples=1000)


def _from_interval(lo: float, hi: float, n: int) -> str:
    """:func:`interval_from_direction`, but never a verdict from fewer than two pairs."""
    return interval_from_direction(lo, hi) if n >= 2 else "inconclusive"


def sweep_run_id(config: dict[str, Any]) -> str:
    from empirical.sweep import run_id

    return run_id(config)


def _source(args: argparse.Namespace, setup: Setup) -> str:
    return f"mtlp empirical {STUDY} --scale {args.scale}; setup {setup.name}"


def analyse(
    out: Path,
    runs: pd.DataFrame,
    test_base: dict[str, float],
    scale: str,
    data: str,
    *,
    source: str,
) -> list[Verdict]:
    """Table, figure and verdicts of one setup's runs (columns ``optimizer``, ``lever``,
    ``setting``, ``seed``, ``val_dm``, ``test_dm`` and ``test/<metric>``)."""
    out.mkdir(parents=True, exist_ok=True)
    metrics = [m for m in metric_columns(runs, "test") if m in test_base]
    runs = runs.reset_index(drop=True).copy()
    runs["on_front"] = front_membership(runs, metrics)
    table = lever_table(runs)
    write_csv(out / "table.csv", list(table.columns), table.itertuples(index=False))
    source = f"{source}; {len(runs)} runs"
    atomic_write_text(out / "table.md", _markdown(table, data, source))
    save_figure(_figure(table, data, source), out / "levers.png", dpi=120)
    return study_verdicts(runs, test_base, metrics, scale, data)


def study_verdicts(
    runs: pd.DataFrame, test_base: dict[str, float], metrics: list[str], scale: str, data: str
) -> list[Verdict]:
    """Every lever against the reference, head lrs against weighting (per optimizer), and the
    interchangeability of a task weight with a head learning rate."""
    verdicts = [v for opt in OPTIMIZERS for v in lever_verdicts(runs, opt, scale, data)]
    verdicts.append(interchangeability_verdict(runs, test_base, metrics, scale, data))
    return verdicts


def front_membership(runs: pd.DataFrame, metrics: list[str]) -> list[bool]:
    """Whether each run (each seed a point) is on the Pareto front of all runs' test metrics."""
    columns = [f"test/{m}" for m in metrics]
    front = set(
        pareto_front(runs[columns].to_dict("records"), {c: higher_is_better(m) for c, m in
                                                        zip(columns, metrics, strict=True)})
    )  # fmt: skip
    return [i in front for i in range(len(runs))]


def _paired_change(runs: pd.DataFrame, opt: str, lever: str, value: str) -> np.ndarray:
    """Δm(reference) - Δm(cell) per seed (positive: the lever's setting helps)."""
    part = runs[runs["optimizer"] == opt]
    ref = part[part["lever"] == "reference"].set_index("seed")["test_dm"]
    cell = part[(part["lever"] == lever) & (part["setting"] == value)].set_index("seed")["test_dm"]
    return (ref - cell).dropna().to_numpy()


def lever_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per optimizer, lever and value: test Δm (mean and 95% bootstrap interval over seeds), its
    paired change against the reference, and the fraction of its seeds on the Pareto front."""
    rows = []
    for (opt, lever, value), part in runs.groupby(["optimizer", "lever", "setting"], sort=False):
        mean, lo, hi = _bootstrap(part["test_dm"].to_numpy())
        row = {"optimizer": opt, "lever": lever, "setting": value, "seeds": len(part)}
        row |= {"delta_m": mean, "delta_m_lo": lo, "delta_m_hi": hi}
        change = _paired_change(runs, opt, lever, value)
        if lever != "reference" and len(change):
            row |= dict(zip(("gain", "gain_lo", "gain_hi"), _bootstrap(change), strict=True))
        else:
            row |= {"gain": np.nan, "gain_lo": np.nan, "gain_hi": np.nan}
        row["front_fraction"] = float(part["on_front"].mean())
        row["val_dm"] = float(part["val_dm"].mean())
        rows.append(row)
    order = {name: i for i, name in enumerate(LEVERS)}
    table = pd.DataFrame(rows)
    return table.sort_values(
        ["optimizer", "lever"], key=lambda c: c.map(order) if c.name == "lever" else c,
        kind="stable",
    ).reset_index(drop=True)  # fmt: skip


def lever_verdicts(runs: pd.DataFrame, opt: str, scale: str, data: str) -> list[Verdict]:
    """For each lever: does its best setting (chosen on validation Δm) beat the reference
    (full sharing, published head, EW, one lr) on test Δm? Paired over seeds."""
    part = runs[runs["optimizer"] == opt]
    out = []
    for lever in LEVERS[1:]:
        claim = f"{lever}-improves-on-full-sharing-ew-{opt}"
        cells = part[part["lever"] == lever]
        if cells.empty or not (part["lever"] == "reference").any():
            out.append(Verdict(claim, "not run", scale, data, f"no {lever} runs with {opt}"))
            continue
        best = cells.groupby("setting")["val_dm"].mean().idxmin()
        change = _paired_change(runs, opt, lever, best)
        mean, lo, hi = _bootstrap(change)
        evidence = (
            f"best {lever} setting on validation: {best}; Δm(reference) - Δm({best}) on test = "
            f"{mean:+.2f} points, 95% interval [{lo:+.2f}, {hi:+.2f}] over {len(change)} seeds"
        )
        out.append(Verdict(claim, _from_interval(lo, hi, len(change)), scale, data, evidence))
    out.append(_head_lr_versus_weighting(part, opt, scale, data))
    return out


def _head_lr_versus_weighting(part: pd.DataFrame, opt: str, scale: str, data: str) -> Verdict:
    """Per-task head lrs (best on validation) reach a lower test Δm than the best weighting."""
    claim = f"head-lr-beats-weighting-{opt}"
    best = {}
    for lever in ("head-lr", "weighting"):
        cells = part[part["lever"] == lever]
        if cells.empty:
            return Verdict(claim, "not run", scale, data, f"no {lever} runs with {opt}")
        value = cells.groupby("setting")["val_dm"].mean().idxmin()
        best[lever] = (value, cells[cells["setting"] == value].set_index("seed")["test_dm"])
    diff = (best["weighting"][1] - best["head-lr"][1]).dropna().to_numpy()
    mean, lo, hi = _bootstrap(diff)
    evidence = (
        f"Δm({best['weighting'][0]}) - Δm(head lr {best['head-lr'][0]}) on test = {mean:+.2f} "
        f"points, 95% interval [{lo:+.2f}, {hi:+.2f}] over {len(diff)} seeds"
    )
    return Verdict(claim, _from_interval(lo, hi, len(diff)), scale, data, evidence)


def interchangeability_verdict(
    runs: pd.DataFrame, test_base: dict[str, float], metrics: list[str], scale: str, data: str
) -> Verdict:
    """ "A task weight and a head learning rate are interchangeable under SGD but not under Adam".

    For each task, factor and seed, the distance between the task-weight run and the head-lr
    run of the same factor: the mean over the test metrics of |difference| in % of the
    single-task value. Confirmed when distance(Adam) - distance(SGD), paired over task, factor
    and seed, has a 95% interval above 0; refuted below 0.
    """
    claim = "task-weight-and-head-lr-interchangeable-under-sgd-not-adam"
    if not (runs["lever"] == "task-weight").any():
        return Verdict(
            claim, "not run", scale, data,
            f"no task-weight runs: mtl.methods needs a fixed weighting {FIXED_WEIGHTING!r} "
            "with option weights (one float per task)",
        )  # fmt: skip
    columns = [f"test/{m}" for m in metrics]
    scale_of = np.array([abs(test_base[m]) or 1.0 for m in metrics])

    def distances(opt: str) -> pd.Series:
        part = runs[runs["optimizer"] == opt]
        key = ["setting", "seed"]
        w = part[part["lever"] == "task-weight"].set_index(key)[columns]
        h = part[part["lever"] == "head-lr"].set_index(key)[columns]
        w, h = w.align(h, join="inner")
        return pd.Series(
            (np.abs(w.to_numpy() - h.to_numpy()) / scale_of).mean(axis=1) * 100, index=w.index
        )

    adam, sgd = distances("adam").align(distances("sgd"), join="inner")
    if adam.empty:
        return Verdict(claim, "not run", scale, data, "no task-weight/head-lr pairs in both")
    mean, lo, hi = _bootstrap((adam - sgd).to_numpy())
    evidence = (
        f"metric distance between a task weight and the head lr of the same factor: SGD "
        f"{sgd.mean():.2f}%, Adam {adam.mean():.2f}% of the single-task values; Adam - SGD = "
        f"{mean:+.2f} points, 95% interval [{lo:+.2f}, {hi:+.2f}] over {len(adam)} pairs"
    )
    return Verdict(claim, _from_interval(lo, hi, len(adam)), scale, data, evidence)


def _markdown(table: pd.DataFrame, data: str, source: str) -> str:
    head = ["optimizer", "lever", "setting", "Δm (%) ↓", "95% interval", "gain vs reference",
            "95% interval", "on front", "seeds"]  # fmt: skip
    lines = [f"# Capacity levers, {data}", "", f"_{source}_", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table.to_dict("records"):
        gain = "" if np.isnan(r["gain"]) else f"{r['gain']:+.2f}"
        gain_ci = "" if np.isnan(r["gain"]) else f"[{r['gain_lo']:+.2f}, {r['gain_hi']:+.2f}]"
        cells = [r["optimizer"], r["lever"], r["setting"], f"{r['delta_m']:.2f}",
                 f"[{r['delta_m_lo']:.2f}, {r['delta_m_hi']:.2f}]", gain, gain_ci,
                 f"{r['front_fraction']:.2f}", str(r["seeds"])]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Δm against the single-task Adam baselines (test split); gain: Δm(reference) - Δm, "
        "paired over seeds; on front: fraction of seeds on the Pareto front of all runs over "
        "the test metrics. Intervals: 95% bootstrap over seeds.",
    ]
    return "\n".join(lines) + "\n"


def _figure(table: pd.DataFrame, data: str, source: str):
    import matplotlib.pyplot as plt

    levers = [lv for lv in LEVERS[1:] if (table["lever"] == lv).any()]
    fig, axes = plt.subplots(
        2, max(1, len(levers)), figsize=(3.2 * max(1, len(levers)), 5.4), squeeze=False
    )
    for j, lever in enumerate(levers):
        top, bottom = axes[0, j], axes[1, j]
        for k, (opt, part) in enumerate(table.groupby("optimizer", sort=False)):
            ref = part[part["lever"] == "reference"]
            cells = pd.concat([ref, part[part["lever"] == lever]])
            x = np.arange(len(cells)) + 0.12 * (k - 0.5)
            err = [cells["delta_m"] - cells["delta_m_lo"], cells["delta_m_hi"] - cells["delta_m"]]
            colour = OPTIMIZER_COLOURS.get(opt)
            top.errorbar(x, cells["delta_m"], yerr=err, fmt="o", ms=4, capsize=2, color=colour,
                         label=opt)  # fmt: skip
            bottom.bar(x, cells["front_fraction"], width=0.12, color=colour, label=opt)
            labels = ["ref", *cells["setting"].iloc[1:]]
        for ax in (top, bottom):
            ax.set_xticks(np.arange(len(labels)), labels, rotation=30, fontsize=7, ha="right")
            ax.grid(alpha=0.3)
        top.set_title(lever, fontsize=9)
        top.legend(fontsize=7)
    axes[0, 0].set_ylabel("test Δm (%) ↓")
    axes[1, 0].set_ylabel("fraction on Pareto front")
    fig.suptitle(f"Capacity levers, {data}", fontsize=10)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.text(0.01, 0.005, source, fontsize=7, color="0.35", ha="left", va="bottom")
    return fig
