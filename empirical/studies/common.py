"""What every vision study shares: its command-line options, sweeps run in phases, single-task
baselines, dry runs with a cost estimate, and verdict files.

A study folder holds ``config.json`` (the study's configuration, guarded by
:func:`mtl.io.prepare_output_dir`), one sweep folder per phase (``stl/``, ``mtl/``, ...; see
:mod:`empirical.sweep`), the analysis outputs, and ``verdicts.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from empirical.analysis import Verdict, single_task_baselines
from empirical.datasets import split_size
from empirical.results import selected_table
from empirical.studies.scales import SCALES, Setup
from empirical.sweep import (
    Run,
    execute,
    parse_filters,
    run_id,
    select,
    select_configs,
    to_do,
    write_sweep,
)
from empirical.sweep_cli import add_execution_arguments, slurm_parameters
from mtl.io import atomic_write_text

STL_LRS_FULL = (0.01, 0.005, 0.001, 0.0005, 0.0001, 0.00005)
PAPER_LRS = (0.5, 0.1, 0.05, 0.01, 0.005, 0.001, 0.0005, 0.0001, 0.00005, 0.00001)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale", choices=SCALES, default="quick")
    parser.add_argument("--out", type=Path, required=True, help="the study's folder")
    parser.add_argument("--data-root", type=Path, help="root of the real datasets (--scale full)")
    parser.add_argument(
        "--dry-run", action="store_true", help="list the runs and their cost, train nothing"
    )
    parser.add_argument(
        "--step-seconds",
        type=float,
        help="seconds per training step for the dry run's cost (measured on the target GPU)",
    )
    parser.add_argument("--seeds", type=int, help="number of seeds (default: the scale's)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch and BLAS threads (default: torch's)"
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bars (also off when stdout or stderr is not a terminal)",
    )
    add_execution_arguments(parser)


def with_data_root(config: dict[str, Any], setup: Setup, data_root: Path | None) -> dict:
    """Real datasets read ``data_root/<dataset>``; generated ones need no root."""
    if setup.data != "full":
        return config
    if data_root is None:
        raise ValueError(
            f"--scale full trains on {setup.dataset}: pass --data-root DIR holding "
            f"DIR/{setup.dataset}/ in its standard layout"
        )
    return {**config, "data_root": str(Path(data_root) / setup.dataset)}


def stl_configs(
    setup: Setup, tasks: Sequence[str], lrs: Sequence[float], seeds: Sequence[int], **extra: Any
) -> list[dict[str, Any]]:
    """Single-task Adam runs of every task, lr and seed (the paper's baselines)."""
    return [
        setup.config(tasks=[t], method="ew", optimizer="adam", lr=lr, seed=s, **extra)
        for t in tasks
        for lr in lrs
        for s in seeds
    ]


def execute_phase(
    root: Path, name: str, configs: list[dict[str, Any]], args: argparse.Namespace
) -> list[Run]:
    """Record the phase's sweep under ``root/name`` and run what is left of it (narrowed by
    ``--where``; finished runs are skipped, interrupted ones resumed)."""
    runs = write_sweep(root / name, name, configs)
    chosen = to_do(select(runs, parse_filters(args.where)), stale_after=args.stale_after)
    if chosen:
        print(f"== {name}: {len(chosen)} of {len(runs)} run(s) to start or resume", flush=True)
    execute(chosen, executor=args.executor, processes=args.processes, slurm=slurm_parameters(args))
    return runs


def run_phase(
    root: Path, name: str, configs: list[dict[str, Any]], args: argparse.Namespace
) -> pd.DataFrame:
    """:func:`execute_phase`, then one row per finished run at its selected epoch."""
    execute_phase(root, name, configs, args)
    table = selected_table(root / name)
    if "tasks" in table:
        table["task"] = table["tasks"].map(lambda t: "+".join(json.loads(t)) if t else "all")
    return table


def baselines(
    root: Path, stl: pd.DataFrame, setup: Setup
) -> tuple[dict[str, float], dict[str, float]]:
    """The setup's single-task baseline (val and test metrics of every task's best-lr STL runs),
    also written to ``root/baselines/<setup>.json`` for the trainer's Δm selection."""
    rows = single_task_baselines(stl[stl["dataset"] == setup.dataset], ["dataset"])
    if rows.empty:
        raise ValueError(f"no finished single-task runs for {setup.name}; see `mtlp sweep status`")
    row = rows.iloc[0].to_dict()
    val = {k[len("val/") :]: v for k, v in row.items() if k.startswith("val/")}
    test = {k[len("test/") :]: v for k, v in row.items() if k.startswith("test/")}
    path = root / "baselines" / f"{setup.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(val, indent=1, sort_keys=True) + "\n")
    return val, test


def baselines_path(root: Path, setup: Setup) -> str:
    return str((root / "baselines" / f"{setup.name}.json").resolve())


def training_steps(config: Mapping[str, Any]) -> int:
    """Optimizer steps of a run: epochs x batches of its training split (counted, not read)."""
    size = split_size(config["dataset"], "train", **config.get("dataset_options", {}))
    return config["epochs"] * -(-size // config["batch_size"])


def dry_run(
    phases: Mapping[str, list[dict[str, Any]]],
    setups: Sequence[Setup],
    args: argparse.Namespace,
) -> int:
    """One line per run (its id and the settings that differ from its setup's protocol) of the
    runs ``--where`` keeps, the run count and, given ``--step-seconds``, the cost in GPU-hours."""
    protocol = {s.dataset: s.config() for s in setups}
    every = [(phase, config) for phase, configs in phases.items() for config in configs]
    keep = select_configs([config for _, config in every], parse_filters(args.where))
    steps = 0
    total = 0
    for (phase, config), kept in zip(every, keep, strict=True):
        if kept:
            base = protocol[config["dataset"]]
            differs = {k: v for k, v in config.items() if base.get(k) != v}
            print(f"{phase}/{run_id(config)} {json.dumps(differs, sort_keys=True)}")
            steps += training_steps(config)
            total += 1
    print(f"{total} runs, {steps} training steps")
    if args.step_seconds is None:
        print("cost: pass --step-seconds S (one training step measured on the target GPU)")
    else:
        hours = steps * args.step_seconds / 3600
        print(f"cost: {hours:.1f} GPU-hours at {args.step_seconds} s per step")
    return 0


def write_verdicts(out: Path, verdicts: Sequence[Verdict], study: str) -> None:
    """``verdicts.json`` (read by the report) and a Markdown list of the same."""
    record = {"study": study, "written": time.strftime("%Y-%m-%d %H:%M:%S")}
    record["verdicts"] = [v.as_dict() for v in verdicts]
    atomic_write_text(out / "verdicts.json", json.dumps(record, indent=1) + "\n")
    lines = [f"# Verdicts: {study}", ""]
    lines += [f"- **{v.claim}** ({v.data}, {v.scale}): {v.verdict}. {v.evidence}" for v in verdicts]
    atomic_write_text(out / "verdicts.md", "\n".join(lines) + "\n")
    for v in verdicts:
        print(f"{v.verdict:>12}  {v.claim} [{v.data}, {v.scale}]")
