"""``mtlp empirical hybrids``: can SGD and Adam be combined, and is head invariance the cause?

Hybrid optimizers as parameter groups of :mod:`mtl.optim` (the trainer's ``heads_optimizer`` /
``backbone_optimizer``): Adam on the task heads with SGD+momentum on the shared backbone, and the
reverse, beside plain Adam and plain SGD+momentum, each with its learning rate(s) tuned on the
same grids (a hybrid tunes its two learning rates jointly), then the optimizer study's analysis
(Δm at the best learning rates, Pareto counts).

A causal test of the paper's explanation, stated before any run (``prediction.md``): if Adam
helps MTL through its loss-scale invariance in the heads, Adam-on-heads with SGD-on-backbone
keeps most of Adam's gain over SGD, and SGD-on-heads with Adam-on-backbone loses most of it.
With gain(X) = Δm(SGD) - Δm(X) the verdict compares the retained fractions
gain(adam-heads) / gain(adam) and gain(sgd-heads) / gain(adam), with bootstrap intervals over
methods and seeds.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from empirical.analysis import Verdict, best_learning_rates, bootstrap, metric_columns, with_delta_m
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
from mtl.io import atomic_write_text, write_csv

STUDY = "hybrids"
ADAM = {"optimizer": "adam"}
SGD = {"optimizer": "sgd", "momentum": 0.9}
PREDICTION = (
    "Prediction (written before the runs): if Adam's advantage in MTL comes from its loss-scale "
    "invariance in the task heads, then Adam on the heads with SGD+momentum on the backbone "
    "keeps at least half of Adam's Δm gain over SGD+momentum, and SGD+momentum on the heads "
    "with Adam on the backbone keeps less than half of it."
)
GRIDS: dict[str, dict[str, Any]] = {
    "quick": {
        "methods": ("ew",), "adam_lrs": (0.001,), "sgd_lrs": (0.01,), "stl_lrs": (0.001,),
        "seeds": 2,
    },
    "cpu": {
        "methods": ("ew", "uw", "pcgrad"), "adam_lrs": (0.01, 0.001, 0.0001),
        "sgd_lrs": (0.1, 0.01, 0.001), "stl_lrs": (0.01, 0.001, 0.0001), "seeds": 3,
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
    for head_lr in grid["adam_lrs"]:
        for body_lr in grid["sgd_lrs"]:
            out.append((
                "adam-heads+sgd-backbone",
                {**ADAM, "lr": head_lr, "backbone_optimizer": "sgd", "backbone_lr": body_lr,
                 "backbone_options": {"momentum": 0.9}},
            ))  # fmt: skip
            out.append((
                "sgd-heads+adam-backbone",
                {**SGD, "lr": body_lr, "backbone_optimizer": "adam", "backbone_lr": head_lr,
                 "backbone_options": {}},
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
    best = best_learning_rates(runs, ["method", "optimizer"], "val_dm", ("lr", "backbone_lr"))
    metrics = [m for m in metric_columns(runs, "test") if m in test_base]
    table = sweep_study._results_table(best, metrics)
    write_csv(out / "table.csv", list(table.columns), table.itertuples(index=False))
    source = f"mtlp empirical {STUDY} --scale {scale}; setup {setup.name}; {len(runs)} runs"
    atomic_write_text(
        out / "table.md", sweep_study._markdown(table, setup, test_base, metrics, source)
    )
    wide = best.pivot_table(index=["method", "seed"], columns="optimizer", values="test_dm")
    needed = {"adam", "sgd", "adam-heads+sgd-backbone", "sgd-heads+adam-backbone"}
    if not needed <= set(wide.columns):
        return [Verdict("head-invariance-explains-adam", "not run", scale, data, "grid incomplete")]
    gain = {k: (wide["sgd"] - wide[k]).to_numpy() for k in needed - {"sgd"}}

    def retained(values: np.ndarray, index: np.ndarray) -> float:
        total = gain["adam"][index].mean()
        return float(values[index].mean() / total) if total != 0 else float("nan")

    rows = []
    for hybrid in ("adam-heads+sgd-backbone", "sgd-heads+adam-backbone"):
        n = len(gain["adam"])
        idx = np.arange(n)
        point = retained(gain[hybrid], idx)
        rng = np.random.default_rng(0)
        draws = [retained(gain[hybrid], rng.integers(0, n, n)) for _ in range(1000)]
        lo, hi = np.nanpercentile(draws, [2.5, 97.5])
        rows.append((hybrid, point, float(lo), float(hi)))
    write_csv(out / "retained_gain.csv", ["hybrid", "retained", "lo", "hi"], rows)
    (a, a_pt, a_lo, a_hi), (s, s_pt, s_lo, s_hi) = rows
    adam_gain = bootstrap(gain["adam"])
    evidence = (
        f"Adam's gain over SGD {adam_gain[0]:+.2f} Δm points [{adam_gain[1]:+.2f}, "
        f"{adam_gain[2]:+.2f}]; retained by {a}: {a_pt:.2f} [{a_lo:.2f}, {a_hi:.2f}], by {s}: "
        f"{s_pt:.2f} [{s_lo:.2f}, {s_hi:.2f}]; prediction: first >= 0.5, second < 0.5"
    )
    if adam_gain[1] <= 0:
        verdict = "inconclusive"  # no gain of Adam to explain at this scale
        evidence += " (Adam's gain itself is not significantly positive, so nothing to explain)"
    elif a_lo >= 0.5 and s_hi < 0.5:
        verdict = "confirmed"
    elif a_hi < 0.5 or s_lo >= 0.5:
        verdict = "refuted"
    else:
        verdict = "inconclusive"
    return [Verdict("head-invariance-explains-adam", verdict, scale, data, evidence)]
