"""Gradient statistics of one training batch, through :mod:`mtl.gradients`.

- ``inter_task``: from the (T, P) task Jacobian of the batch's mean losses w.r.t. the shared
  parameters, every task pair (``pairs``: index pairs into ``tasks``): cosine, magnitude
  similarity, conflict ratio (coordinates of opposite sign among those nonzero in both), dot,
  norms;
- ``per_sample``: per-sample gradients (``mode="in-batch"``: one train-mode forward of the whole
  batch, as the training step sees it) of ``samples`` samples drawn with the run's statistics
  generator, and the statistics of each pair kind of :func:`mtl.gradients.conflict_study` (for a
  single task, only inter-sample pairs);
- ``by_layer``: for every layer of the shared parameters (a parameter name without its last
  component, :func:`mtl.gradients.layer_slices`), the mean over the inter-task and over the
  inter-sample pairs of the same per-sample gradients restricted to that layer's columns
  (:data:`LAYER_STATISTICS` only).

Values are lists per statistic (undefined values as ``null``), so epoch summaries
(:func:`mtl.gradients.summarize_epoch`) can be computed from the file later.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from mtl.gradients import (
    all_pairs,
    conflict_study,
    draw,
    inter_sample_pairs,
    inter_task_pairs,
    jacobian,
    layer_slices,
    pair_statistics,
    per_sample_gradients,
)

LAYER_STATISTICS = ("cosine", "magnitude_similarity", "conflict_ratio")


def _lists(stats: Mapping[str, Tensor]) -> dict[str, list[float | None]]:
    return {
        k: [None if math.isnan(v) else v for v in t.double().cpu().tolist()]
        for k, t in stats.items()
    }


def measure(
    trainer: Any,
    x: Tensor,
    targets: Mapping[str, Tensor],
    *,
    samples: int,
    generator: torch.Generator,
) -> dict[str, Any]:
    """The statistics record of one batch (see the module docstring)."""
    model = trainer.model
    tasks = list(trainer.tasks)
    shared = trainer.shared
    record: dict[str, Any] = {"tasks": tasks}
    if len(tasks) >= 2:
        stacked, _ = trainer.compute_losses(x, targets)
        jac = jacobian(list(stacked.float()), shared)
        pairs = all_pairs(len(tasks))
        record["pairs"] = pairs.tolist()
        record["inter_task"] = _lists(pair_statistics(jac, pairs))
    chosen = draw(x.shape[0], k=samples, generator=generator)
    if len(chosen) < 2:
        return record
    grads = per_sample_gradients(
        model, x, targets, trainer.losses, mode="in-batch", samples=chosen, params=shared
    )
    record["samples"] = chosen
    if len(tasks) >= 2:
        record["per_sample"] = {k: _lists(v) for k, v in conflict_study(grads).items()}
    else:
        flat = grads.reshape(len(chosen), -1)
        record["per_sample"] = {
            "inter_sample": _lists(pair_statistics(flat, inter_sample_pairs(1, len(chosen))))
        }
    names = [name for name, _ in model.named_shared_parameters()]
    record["by_layer"] = by_layer(grads.reshape(len(tasks), len(chosen), -1), names, shared)
    return record


def by_layer(
    grads: Tensor, names: list[str], params: list[Tensor]
) -> dict[str, dict[str, dict[str, float | None]]]:
    """``{layer: {kind: {statistic: mean over the pairs}}}`` of the (T, B, P) per-sample
    gradients ``grads`` restricted to each layer's columns: inter-sample pairs, and inter-task
    pairs when T >= 2. Means, not every pair's value: a deep network has a hundred layers."""
    tasks, samples, _ = grads.shape
    flat = grads.reshape(tasks * samples, -1)
    kinds = {"inter_sample": inter_sample_pairs(tasks, samples)}
    if tasks >= 2:
        kinds["inter_task"] = inter_task_pairs(tasks, samples)
    out = {}
    for layer, spans in layer_slices(names, [p.numel() for p in params]).items():
        columns = torch.cat([flat[:, s] for s in spans], dim=1)
        out[layer] = {
            kind: {
                name: _mean(values)
                for name, values in pair_statistics(columns, pairs).items()
                if name in LAYER_STATISTICS
            }
            for kind, pairs in kinds.items()
        }
    return out


def _mean(values: Tensor) -> float | None:
    """The mean of the defined (finite) values; ``None`` when there is none."""
    finite = values[torch.isfinite(values)]
    return float(finite.double().mean()) if finite.numel() else None
