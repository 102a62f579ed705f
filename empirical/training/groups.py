"""Groups of samples of one task treated as "tasks" (the trainer's ``sample_groups``).

The task's per-sample losses ``l_j`` (``reduction="none"``: each sample's mean over its valid
elements) are split into ``k`` groups ``G_1..G_k`` and group ``i`` contributes the loss
``L_i = (1/|G_i|) Σ_{j in G_i} l_j``; an empty group contributes 0 with a zero gradient.

- ``random``: a balanced random partition of the batch (group ``i`` holds the positions
  ``perm[i::k]`` of a permutation drawn from the trainer's seeded generator, which the checkpoint
  saves, so a resumed run draws the same groups);
- ``class``: the integer label modulo ``k`` (classification tasks only).

With equal weights (``ew``) the update is ``Σ_i ∇L_i``; for balanced groups of ``m = B/k``
samples that is ``k`` times the gradient of the mean per-sample loss ``(1/B) Σ_j l_j``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from empirical.datasets import DatasetSpec


@dataclass(frozen=True)
class SampleGroups:
    count: int
    by: str

    @classmethod
    def for_task(cls, options: dict[str, Any], spec: DatasetSpec) -> SampleGroups:
        """Checked against the run's tasks: one task, and a classification one for ``class``."""
        if len(spec.tasks) != 1:
            raise ValueError(
                "sample_groups applies to single-task runs only: set tasks to one of "
                f"{', '.join(spec.task_names)} (got {len(spec.tasks)} tasks)"
            )
        task = spec.tasks[0]
        if options["by"] == "class" and task.kind != "classification":
            raise ValueError(
                f'sample_groups by "class" needs a classification task; {task.name!r} is '
                f'{task.kind}: use by "random"'
            )
        return cls(int(options["count"]), str(options["by"]))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f"group{i}" for i in range(self.count))

    def assign(self, target: Tensor, generator: torch.Generator | None) -> Tensor:
        """The group index (B,) of every sample of the batch."""
        batch = target.shape[0]
        if self.by == "class":
            return target.long().reshape(batch) % self.count
        perm = torch.randperm(batch, generator=generator)
        groups = torch.empty(batch, dtype=torch.long)
        groups[perm] = torch.arange(batch) % self.count
        return groups.to(target.device)

    def losses(self, per_sample: Tensor, groups: Tensor) -> Tensor:
        """``(k,)``: each group's mean per-sample loss (0, with zero gradient, when empty)."""
        rows = []
        for i in range(self.count):
            mask = (groups == i).to(per_sample.dtype)
            count = mask.sum()
            rows.append((per_sample * mask).sum() / count.clamp(min=1))
        return torch.stack(rows)
