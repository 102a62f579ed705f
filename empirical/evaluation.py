"""Evaluation of a finished run's selected model on the test split under image corruptions.

``evaluate_corruptions(run_dir, corruptions, severities)`` rebuilds the run's model from its
``config.json``, loads its ``best.pt`` (the model at the selected epoch) and evaluates, with the
trainer's evaluation code and the run's batch size, the clean test split and the test split under
every (corruption, severity) of the grid (:class:`empirical.corruptions.CorruptedDataset`, seeded
by the run's ``data_seed``). It writes ``corruptions.jsonl`` atomically, one line per condition:
``{"corruption": name | "clean", "severity": int | 0, "metrics": {metric: value}}`` (metrics
only, no losses); a run that already has the file is skipped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from empirical.corruptions import CorruptedDataset, family
from empirical.training import components, rundir
from empirical.training.config import RunConfig
from empirical.training.loop import resolve_device
from empirical.training.trainer import evaluate
from mtl.io import CONFIG_NAME, atomic_write_text

RESULTS = "corruptions.jsonl"


def run_config(run_dir: str | os.PathLike) -> RunConfig:
    """The :class:`RunConfig` recorded in ``run_dir/config.json`` (environment aside)."""
    path = Path(run_dir) / CONFIG_NAME
    if not path.is_file():
        raise ValueError(f"{str(path)!r} does not exist: expected a run directory of the trainer")
    values = json.loads(path.read_text())
    values.pop(rundir.ENVIRONMENT, None)
    return RunConfig.from_dict(values)


def evaluate_corruptions(
    run_dir: str | os.PathLike, corruptions: Sequence[str], severities: Sequence[int]
) -> Path:
    """Write ``run_dir/corruptions.jsonl`` (unless present) and return its path."""
    out = Path(run_dir) / RESULTS
    if out.is_file():
        return out
    for name in corruptions:
        family(name)
    config = run_config(run_dir)
    spec = components.dataset_spec(config)
    device = resolve_device(config.device)
    model = components.model_of(config, spec)
    model.load_state_dict(rundir.load_best_model(run_dir), strict=True)
    model = model.to(device)
    losses = components.task_losses(spec)
    accumulator = components.metrics_for(spec)
    tasks = tuple(model.task_names)

    def prepare(x: torch.Tensor, targets: dict[str, torch.Tensor]):
        return x.to(device), {t: targets[t].to(device) for t in tasks}

    def metrics_of(dataset: Dataset) -> dict[str, Any]:
        loader = DataLoader(dataset, batch_size=config.batch_size)
        values = evaluate(model, losses, loader, accumulator, prepare=prepare)
        return {k: v for k, v in values.items() if k != "loss" and not k.endswith("_loss")}

    test = components.build_split(config, "test")
    lines = [{"corruption": "clean", "severity": 0, "metrics": metrics_of(test)}]
    for name in corruptions:
        for severity in severities:
            corrupted = CorruptedDataset(test, name, int(severity), seed=config.data_seed)
            lines.append(
                {"corruption": name, "severity": int(severity), "metrics": metrics_of(corrupted)}
            )
    atomic_write_text(out, "".join(json.dumps(line) + "\n" for line in lines))
    return out
