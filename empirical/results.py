"""Every run of a sweep as one tidy table that the analyses and users' own plots read.

:func:`epochs_table` has one row per run and epoch: ``run_id``, ``state``, the run's
configuration flattened (nested keys joined by ``.``, e.g. ``method_options.c``), then the
epoch's logged values as the trainer wrote them (``epoch``, ``train/loss``, ``val/miou``,
``test/abs_err``, ...; wall-clock figures as ``time.<key>``). :func:`selected_table` has one row
per finished run: the configuration and the metrics of the epoch the trainer selected on validation
(``best.json``), so test metrics never take part in a selection here; :func:`diverged_table`
one row per run stopped by a non-finite value (diverged).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from empirical.sweep import RunState, read_sweep, run_state

METRICS_FILE = "metrics.jsonl"
BEST_FILE = "best.json"


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}, "c": [1, 2]}`` -> ``{"a.b": 1, "c": "[1, 2]"}`` (lists as JSON text)."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, list | tuple):
            flat[name] = json.dumps(list(value))
        else:
            flat[name] = value
    return flat


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The run's ``metrics.jsonl`` as a list of dicts (a torn last line, if any, is dropped)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


def selected(path: Path) -> dict[str, Any]:
    """``best.json`` as one flat record: ``epoch``, ``criterion``, ``value`` and the selected
    epoch's metrics as ``val/<metric>`` and ``test/<metric>``."""
    best = json.loads(Path(path).read_text())
    record = {k: v for k, v in best.items() if not isinstance(v, Mapping)}
    for split, metrics in best.items():
        if isinstance(metrics, Mapping):
            record.update({f"{split}/{k}": v for k, v in metrics.items()})
    return record


def epochs_table(root: str | Path) -> pd.DataFrame:
    """One row per run and epoch of the sweep in ``root``."""
    _, runs = read_sweep(root)
    rows = []
    for run in runs:
        head = {"run_id": run.id, "state": run_state(run.directory).state, **flatten(run.config)}
        for record in read_metrics(run.directory):
            rows.append({**head, **flatten(record)})
    return pd.DataFrame(rows)


def selected_table(root: str | Path) -> pd.DataFrame:
    """One row per finished run: its configuration and the metrics of its selected epoch."""
    _, runs = read_sweep(root)
    rows = []
    for run in runs:
        path = run.directory / BEST_FILE
        if run_state(run.directory).state != "finished" or not path.is_file():
            continue
        rows.append({"run_id": run.id, **flatten(run.config), **selected(path)})
    return pd.DataFrame(rows)


DIVERGED = "non-finite"
"""How the reason of a run stopped by a NaN or infinite loss begins (the trainer's status)."""


def diverged(state: RunState) -> bool:
    """A ``failed`` run stopped by a NaN or infinite loss, gradient or loss weight (the
    trainer's reason begins ``non-finite``): an outcome of its settings, not a fault."""
    return state.state == "failed" and str(state.reason or "").startswith(DIVERGED)


def diverged_table(root: str | Path) -> pd.DataFrame:
    """One row per diverged run of the sweep in ``root``: its configuration, ``diverged`` True
    and no metrics (a learning rate that diverges is a result of the sweep, never its best)."""
    _, runs = read_sweep(root)
    rows = [
        {"run_id": run.id, **flatten(run.config), "diverged": True}
        for run in runs
        if diverged(run_state(run.directory))
    ]
    return pd.DataFrame(rows)


__all__ = [
    "DIVERGED",
    "diverged",
    "diverged_table",
    "epochs_table",
    "flatten",
    "read_metrics",
    "selected",
    "selected_table",
]
