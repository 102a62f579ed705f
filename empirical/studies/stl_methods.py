"""``mtlp empirical stl-methods``: do MTL methods help inside single-task learning?

The paper's outlook: if gradient conflicts between samples are as large as between tasks, a
method built for task conflicts could be applied to groups of samples of one task. Each batch's
samples are split into ``groups`` "tasks" (the trainer's ``sample_groups``: ``random``, a
balanced random partition of each batch drawn from the run's seeded generator, or ``class``, the
label modulo the group count, for classification tasks), each group's mean loss is one row of the
Jacobian, and PCGrad, CAGrad, IMTL or UW-O
combine them; ``ew`` (the plain summed loss, i.e. ordinary training) is the reference. Every
method gets the same learning-rate grid and seeds; the selected epoch is chosen on validation
loss (the single-task rule), the best lr on the validation score. The verdict per method:
its test score minus the reference's at their best learning rates, with a bootstrap interval
over seeds (confirmed: the method helps beyond tuning the learning rate).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pandas as pd

from empirical.analysis import Verdict, best_learning_rates, bootstrap, interval_from_direction
from empirical.studies.common import (
    add_common_arguments,
    dry_run,
    run_phase,
    with_data_root,
    write_verdicts,
)
from empirical.studies.scales import DATA_LABELS, Setup, setups
from mtl.io import atomic_write_text, write_csv
from mtl.metrics import higher_is_better

STUDY = "stl-methods"
METHODS = ("ew", "pcgrad", "cagrad", "imtl", "uw-o")
TASK = {"synthetic-scenes": ("segmentation", "miou"), "multi-digits": ("left", "left/acc")}
TASK |= {"cityscapes": ("segmentation", "miou"), "nyuv2": ("segmentation", "miou")}
GROUPINGS = {"synthetic-scenes": ("random",), "multi-digits": ("random", "class")}
GROUPINGS |= {"cityscapes": ("random",), "nyuv2": ("random",)}
GRIDS: dict[str, dict[str, Any]] = {
    "quick": {"methods": ("ew", "pcgrad"), "lrs": (0.001,), "seeds": 2, "groups": 2},
    "cpu": {"methods": METHODS, "lrs": (0.01, 0.001, 0.0001), "seeds": 3, "groups": 4},
    "full": {"methods": METHODS, "lrs": (0.005, 0.001, 0.0005, 0.0001), "seeds": 3, "groups": 4},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)


def configs(setup: Setup, grid: dict[str, Any]) -> list[dict[str, Any]]:
    task, _ = TASK[setup.dataset]
    out = []
    for grouping in GROUPINGS[setup.dataset]:
        for method in grid["methods"]:
            for lr in grid["lrs"]:
                for seed in range(grid["seeds"]):
                    groups = {"count": grid["groups"], "by": grouping}
                    out.append(
                        setup.config(
                            tasks=[task],
                            method=method,
                            optimizer="adam",
                            lr=lr,
                            seed=seed,
                            sample_groups=groups,
                        )
                    )
    return out


def record(args: argparse.Namespace) -> dict[str, Any]:
    """The study's configuration record (``config.json`` of its folder)."""
    grid = dict(GRIDS[args.scale])
    grid["seeds"] = args.seeds or grid["seeds"]
    return json.loads(json.dumps({"study": STUDY, "scale": args.scale, **grid}))


def run(args: argparse.Namespace) -> int:
    grid = dict(GRIDS[args.scale])
    grid["seeds"] = args.seeds or grid["seeds"]
    chosen = tuple(s for s in setups(args.scale) if s.dataset in TASK)
    phases = {
        s.name: [with_data_root(c, s, args.data_root) for c in configs(s, grid)] for s in chosen
    }
    if args.dry_run:
        return dry_run(phases, chosen, args)
    root = Path(args.out)
    verdicts = []
    for setup in chosen:
        table = run_phase(root / setup.name, "runs", phases[setup.name], args)
        verdicts += analyse(root / setup.name, setup, args.scale, table)
    write_verdicts(root, verdicts, STUDY)
    return 0


def analyse(out: Path, setup: Setup, scale: str, table: pd.DataFrame) -> list[Verdict]:
    _, metric = TASK[setup.dataset]
    data = f"{DATA_LABELS[setup.data]} ({setup.name})"
    if table.empty:
        return [Verdict("mtl-methods-help-stl", "not run", scale, data, "no finished runs")]
    sign = 1.0 if higher_is_better(metric) else -1.0
    table = table.assign(val_score=-sign * table[f"val/{metric}"])  # lower is better
    best = best_learning_rates(table, ["sample_groups.by", "method"], "val_score")
    rows, verdicts = [], []
    for grouping, part in best.groupby("sample_groups.by"):
        reference = part[part["method"] == "ew"].set_index("seed")[f"test/{metric}"]
        for method, runs in part[part["method"] != "ew"].groupby("method"):
            gains = sign * (runs.set_index("seed")[f"test/{metric}"] - reference).dropna()
            if gains.empty:
                continue
            mean, lo, hi = bootstrap(gains.to_numpy())
            rows.append((grouping, method, float(runs["lr"].iloc[0]), len(gains), mean, lo, hi))
            evidence = (
                f"{method} on {grouping} sample groups: test {metric} gain over plain training "
                f"{mean:+.4f}, 95% interval [{lo:+.4f}, {hi:+.4f}] ({len(gains)} seeds)"
            )
            verdict = interval_from_direction(lo, hi)
            verdicts.append(Verdict("mtl-methods-help-stl", verdict, scale, data, evidence))
    header = ["grouping", "method", "best_lr", "seeds", "gain", "lo", "hi"]
    write_csv(out / "gains.csv", header, rows)
    lines = [f"# MTL methods on sample groups of one task, {setup.name}", ""]
    lines += [f"Test {metric}: gain over plain training at each one's best learning rate.", ""]
    lines += [
        "| grouping | method | best lr | seeds | gain | 95% interval |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {g} | {m} | {lr:g} | {n} | {v:+.4f} | [{a:+.4f}, {b:+.4f}] |"
              for g, m, lr, n, v, a, b in rows]  # fmt: skip
    atomic_write_text(out / "gains.md", "\n".join(lines) + "\n")
    return verdicts or [Verdict("mtl-methods-help-stl", "not run", scale, data, "no method ran")]
