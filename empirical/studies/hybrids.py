"""``mtlp empirical hybrids``: can SGD and Adam be combined, and is head invariance the cause?

Hybrid optimizers as parameter groups of :mod:`mtl.optim` (the trainer's ``heads_optimizer`` /
``backbone_optimizer``): Adam on the task heads with SGD+momentum on the shared backbone, and the
reverse, beside plain Adam and plain SGD+momentum; SWATS (Adam, then SGD at an estimated rate,
per parameter group); and SGD-RMS on the heads (SGD at ``lr / sqrt(mean v_hat)`` per task head,
``v`` Adam's second moment: loss-scale-invariant SGD heads, theory statement
``hybrid.sgd-rms-heads-sgd-momentum-backbone.head.per-task-scale``) with SGD+momentum on the
backbone. Each is tuned on the same grids: a hybrid tunes its two learning rates jointly, SWATS
its one (Adam's; its SGD rate is estimated) on the Adam grid, SGD-RMS its heads' normalised rate
on the Adam grid. Then the optimizer study's analysis (Δm at the best learning rates).

A causal test of the paper's explanation, stated before any run (``prediction.md``): if Adam
helps MTL through its loss-scale invariance in the heads, Adam-on-heads with SGD-on-backbone
keeps most of Adam's gain over SGD, and SGD-on-heads with Adam-on-backbone loses most of it; and
SGD made invariant in the heads (SGD-RMS heads, SGD backbone) keeps most of it too. With
gain(X) = Δm(SGD) - Δm(X) the verdicts compare the retained fractions gain(X) / gain(adam) with
0.5, with bootstrap intervals over methods and seeds. SWATS's fraction is reported beside them
(no prediction), with the step at which each of its groups switched (``swats.md``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from empirical.analysis import (
    Verdict,
    best_learning_rates,
    bootstrap,
    grid_edges,
    guard_grid_edges,
    metric_columns,
    with_delta_m,
)
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
from empirical.sweep import read_sweep
from mtl.io import atomic_write_text, write_csv

STUDY = "hybrids"
ADAM = {"optimizer": "adam"}
SGD = {"optimizer": "sgd", "momentum": 0.9}
PREDICTION = (
    "Prediction (written before the runs): if Adam's advantage in MTL comes from its loss-scale "
    "invariance in the task heads, then Adam on the heads with SGD+momentum on the backbone "
    "keeps at least half of Adam's Δm gain over SGD+momentum, and SGD+momentum on the heads "
    "with Adam on the backbone keeps less than half of it; and SGD-RMS on the heads (SGD at a "
    "per-task-head rate lr / RMS of Adam's second moment, loss-scale invariant) with "
    "SGD+momentum on the backbone keeps at least half of it."
)
ADAM_HEADS, SGD_HEADS = "adam-heads+sgd-backbone", "sgd-heads+adam-backbone"
RMS_HEADS, SWATS = "sgd-rms-heads+sgd-backbone", "swats"
RETAINED = (ADAM_HEADS, SGD_HEADS, RMS_HEADS, SWATS)
"""The settings whose retained fraction of Adam's gain is reported."""
GRIDS: dict[str, dict[str, Any]] = {
    "quick": {
        "methods": ("ew",), "adam_lrs": (0.001,), "sgd_lrs": (0.01,), "stl_lrs": (0.001,),
        "seeds": 2,
    },
    "cpu": {
        "methods": ("ew", "pcgrad"), "adam_lrs": (0.01, 0.001, 0.0001),
        "sgd_lrs": (0.3, 0.1, 0.01), "stl_lrs": (0.01, 0.001, 0.0001), "seeds": 3,
    },
    "full": {
        "methods": ("ew", "uw", "rlw", "imtl", "pcgrad", "cagrad", "aligned-mtl"),
        "adam_lrs": (0.005, 0.001, 0.0005, 0.0001), "sgd_lrs": (0.1, 0.05, 0.01, 0.005),
        "stl_lrs": (0.01, 0.005, 0.001, 0.0005, 0.0001, 0.00005), "seeds": 3,
    },
}  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)


def optimizer_settings(grid: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label, trainer fields) of every optimizer setting and learning rate(s) of the grid."""
    out = [("adam", {**ADAM, "lr": lr}) for lr in grid["adam_lrs"]]
    out += [("sgd", {**SGD, "lr": lr}) for lr in grid["sgd_lrs"]]
    out += [(SWATS, {"optimizer": "swats", "lr": lr}) for lr in grid["adam_lrs"]]
    for head_lr in grid["adam_lrs"]:
        for body_lr in grid["sgd_lrs"]:
            out.append((
                ADAM_HEADS,
                {**ADAM, "lr": head_lr, "backbone_optimizer": "sgd", "backbone_lr": body_lr,
                 "backbone_options": {"momentum": 0.9}},
            ))  # fmt: skip
            out.append((
                SGD_HEADS,
                {**SGD, "lr": body_lr, "backbone_optimizer": "adam", "backbone_lr": head_lr,
                 "backbone_options": {}},
            ))  # fmt: skip
            out.append((
                RMS_HEADS,
                {"optimizer": "sgd-rms", "momentum": 0.9, "lr": head_lr,
                 "backbone_optimizer": "sgd", "backbone_lr": body_lr,
                 "backbone_options": {"momentum": 0.9}},
            ))  # fmt: skip
    return out


def label(config: dict[str, Any]) -> str:
    body = config.get("backbone_optimizer")
    heads, body = config["optimizer"], body if isinstance(body, str) else config["optimizer"]
    if heads == body:
        return heads
    return f"{heads}-heads+{body}-backbone"


def record(args: argparse.Namespace) -> dict[str, Any]:
    """The study's configuration record (``config.json`` of its folder)."""
    return {"study": STUDY, "scale": args.scale, "seeds": args.seeds or GRIDS[args.scale]["seeds"]}


def run(args: argparse.Namespace) -> int:
    grid = dict(GRIDS[args.scale])
    grid["seeds"] = args.seeds or grid["seeds"]
    chosen = setups(args.scale)
    root = Path(args.out)
    stl, mtl = {}, {}
    for s in chosen:
        tasks = sweep_study.TASKS[s.dataset]
        stl[s.name] = [
            with_data_root(c, s, args.data_root)
            for c in stl_configs(s, tasks, grid["stl_lrs"], range(grid["seeds"]))
        ]
        mtl[s.name] = [
            with_data_root(
                s.config(method=m, seed=seed, baselines=baselines_path(root, s), **fields),
                s,
                args.data_root,
            )
            for m in grid["methods"]
            for _, fields in optimizer_settings(grid)
            for seed in range(grid["seeds"])
        ]
    if args.dry_run:
        phases = {f"{n}/stl": c for n, c in stl.items()} | {f"{n}/mtl": c for n, c in mtl.items()}
        return dry_run(phases, chosen, args)
    if not (root / "prediction.md").is_file():
        atomic_write_text(root / "prediction.md", f"# Prediction\n\n{PREDICTION}\n")
    verdicts = []
    for setup in chosen:
        out = root / setup.name
        val_base, test_base = baselines(root, run_phase(out, "stl", stl[setup.name], args), setup)
        table = run_phase(out, "mtl", mtl[setup.name], args)
        verdicts += analyse(out, setup, args.scale, table, val_base, test_base)
    write_verdicts(root, verdicts, STUDY)
    return 0


def analyse(out: Path, setup: Setup, scale: str, runs: pd.DataFrame, val_base, test_base):
    data = f"{DATA_LABELS[setup.data]} ({setup.name})"
    runs = runs.copy()
    runs["optimizer"] = [label(r) for r in runs.to_dict("records")]
    runs["backbone_lr"] = runs.get("backbone_lr", pd.Series(np.nan, index=runs.index)).fillna(-1)
    runs["val_dm"] = with_delta_m(runs, {f"val/{k}": v for k, v in val_base.items()}, "val")
    runs["test_dm"] = with_delta_m(runs, {f"test/{k}": v for k, v in test_base.items()}, "test")
    keys = ["method", "optimizer"]
    best = best_learning_rates(runs, keys, "val_dm", ("lr", "backbone_lr"))
    edges = grid_edges(runs, best, keys)
    metrics = [m for m in metric_columns(runs, "test") if m in test_base]
    table = sweep_study._results_table(best, metrics, edges)
    write_csv(out / "table.csv", list(table.columns), table.itertuples(index=False))
    source = f"mtlp empirical {STUDY} --scale {scale}; setup {setup.name}; {len(runs)} runs"
    atomic_write_text(
        out / "table.md", sweep_study._markdown(table, setup, test_base, metrics, source)
    )
    if (out / "mtl").is_dir():
        swats_report(out, out / "mtl")
    wide = best.pivot_table(index=["method", "seed"], columns="optimizer", values="test_dm")
    needed = {"adam", "sgd", ADAM_HEADS, SGD_HEADS}
    if not needed <= set(wide.columns):
        return [
            Verdict(claim, "not run", scale, data, "grid incomplete")
            for claim in ("head-invariance-explains-adam", "invariant-sgd-heads-keep-adam-gain")
        ]
    gain = {k: (wide["sgd"] - wide[k]).to_numpy() for k in wide.columns if k != "sgd"}
    rows = {h: retained_fraction(gain[h], gain["adam"]) for h in RETAINED if h in gain}
    write_csv(
        out / "retained_gain.csv",
        ["hybrid", "retained", "lo", "hi"],
        [(h, *values) for h, values in rows.items()],
    )
    adam_gain = bootstrap(gain["adam"])
    significant = adam_gain[1] > 0
    no_gain = " (Adam's gain itself is not significantly positive, so nothing to explain)"

    def fraction(h: str) -> str:
        point, lo, hi = rows[h]
        return f"{h}: {point:.2f} [{lo:.2f}, {hi:.2f}]"

    (_, a_lo, a_hi), (_, s_lo, s_hi) = rows[ADAM_HEADS], rows[SGD_HEADS]
    evidence = (
        f"Adam's gain over SGD {adam_gain[0]:+.2f} Δm points [{adam_gain[1]:+.2f}, "
        f"{adam_gain[2]:+.2f}]; retained by {fraction(ADAM_HEADS)}, by {fraction(SGD_HEADS)}; "
        "prediction: first >= 0.5, second < 0.5"
    )
    if not significant:
        verdict, evidence = "inconclusive", evidence + no_gain
    elif a_lo >= 0.5 and s_hi < 0.5:
        verdict = "confirmed"
    elif a_hi < 0.5 or s_lo >= 0.5:
        verdict = "refuted"
    else:
        verdict = "inconclusive"
    verdicts = [Verdict("head-invariance-explains-adam", verdict, scale, data, evidence)]
    # every retained fraction is measured from SGD's Δm: an untuned SGD inflates them all
    claim = "invariant-sgd-heads-keep-adam-gain"
    if RMS_HEADS not in rows:
        verdicts.append(Verdict(claim, "not run", scale, data, f"no {RMS_HEADS} runs"))
        return [guard_grid_edges(v, edges, "sgd") for v in verdicts]
    _, r_lo, r_hi = rows[RMS_HEADS]
    evidence = f"retained by {fraction(RMS_HEADS)}; prediction: >= 0.5"
    if SWATS in rows:
        evidence += f" (beside it, no prediction: {fraction(SWATS)})"
    if not significant:
        verdict, evidence = "inconclusive", evidence + no_gain
    else:
        verdict = "confirmed" if r_lo >= 0.5 else "refuted" if r_hi < 0.5 else "inconclusive"
    verdicts.append(Verdict(claim, verdict, scale, data, evidence))
    return [guard_grid_edges(v, edges, "sgd") for v in verdicts]


def retained_fraction(
    gain: np.ndarray, adam_gain: np.ndarray, resamples: int = 1000
) -> tuple[float, float, float]:
    """``mean(gain) / mean(adam_gain)`` over (method, seed) cells, with a 95% bootstrap
    interval from resampling the cells (NaN where Adam's mean gain is 0)."""

    def ratio(index: np.ndarray) -> float:
        total = adam_gain[index].mean()
        return float(gain[index].mean() / total) if total != 0 else float("nan")

    n = len(adam_gain)
    rng = np.random.default_rng(0)
    draws = [ratio(rng.integers(0, n, n)) for _ in range(resamples)]
    lo, hi = np.nanpercentile(draws, [2.5, 97.5]) if np.isfinite(draws).any() else (np.nan,) * 2
    return ratio(np.arange(n)), float(lo), float(hi)


def swats_report(out: Path, sweep: Path) -> None:
    """``swats_switches.csv`` (per SWATS run and group: the step after which it ran SGD, empty
    if never, and the estimated rate) and ``swats.md`` (how many groups switched), from each
    finished run's last metrics line."""
    from empirical.results import read_metrics

    rows = []
    for run in read_sweep(sweep)[1]:
        if run.config.get("optimizer") != "swats":
            continue
        lines = read_metrics(run.directory)
        for record in lines[-1].get("optimizer_switches", []) if lines else []:
            rows.append((
                run.id, run.config["method"], run.config["lr"], run.config["seed"],
                record["group"], record["switch_step"], record["sgd_lr"],
            ))  # fmt: skip
    if not rows:
        return
    header = ["run_id", "method", "lr", "seed", "group", "switch_step", "sgd_lr"]
    write_csv(out / "swats_switches.csv", header, rows)
    steps = sorted(r[5] for r in rows if r[5] is not None)
    runs = len({r[0] for r in rows})
    text = (
        f"SWATS: {len(steps)} of {len(rows)} parameter groups (in {runs} runs) switched from "
        "Adam to SGD"
        + (f", after steps {steps[0]} to {steps[-1]} (median {steps[len(steps) // 2]})." if steps
           else "; every group stayed in its Adam phase (the switch criterion never held).")
    )  # fmt: skip
    atomic_write_text(out / "swats.md", f"# SWATS switches\n\n{text}\n")
