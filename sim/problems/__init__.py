"""Hard-parameter-sharing problems: shared parameters ``phi`` and one head ``psi_t`` per task.

Every problem is a :class:`HardSharing` module: ``losses(batch)`` returns the T per-task losses
``scales_t * L_t`` as one tensor, ``shared`` and ``heads`` hold the parameters, and
``freeze_backbone()`` turns the shared parameters into constants (the paper's frozen-backbone
setting). ``with_scales(scales)`` copies a problem (same data, same initial parameters) with
other constant loss scales, which is how loss-scale invariance is checked:
``sim.problems.quadratic`` and ``sim.problems.two_units`` are the two families.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn


class HardSharing(nn.Module):
    """Base of the problems: ``shared`` (a module), ``heads`` (one module per task), ``scales``."""

    shared: nn.Module
    heads: nn.ModuleList
    scales: torch.Tensor

    @property
    def tasks(self) -> int:
        """Number of tasks T."""
        return len(self.heads)

    def shared_parameters(self) -> list[nn.Parameter]:
        """The backbone's parameters phi."""
        return list(self.shared.parameters())

    def head_parameters(self, task: int | None = None) -> list[nn.Parameter]:
        """The parameters psi_task of one head, or of all heads when ``task`` is None."""
        heads = self.heads if task is None else [self.heads[task]]
        return [p for head in heads for p in head.parameters()]

    def freeze_backbone(self, frozen: bool = True) -> HardSharing:
        """Make the shared parameters constants (``requires_grad=False``) or trainable again."""
        for p in self.shared.parameters():
            p.requires_grad_(not frozen)
        return self

    def with_scales(self, scales: Sequence[float] | torch.Tensor) -> HardSharing:
        """A copy (same data, same current parameters) whose losses are scaled by ``scales``."""
        clone = copy.deepcopy(self)
        clone.scales.copy_(check_scales(scales, self.tasks, self.scales.dtype))
        return clone

    def losses(self, batch: torch.Tensor | None = None) -> torch.Tensor:
        """The T scaled per-task losses on the sample indices ``batch`` (all samples if None)."""
        raise NotImplementedError


def check_scales(
    scales: Sequence[float] | torch.Tensor | None, tasks: int, dtype: torch.dtype
) -> torch.Tensor:
    """Per-task loss scales as a tensor (ones when None); there must be T of them, all > 0."""
    out = torch.ones(tasks, dtype=dtype) if scales is None else torch.as_tensor(scales, dtype=dtype)
    if out.shape != (tasks,) or not bool((out > 0).all()):
        raise ValueError(
            f"scales must be {tasks} positive numbers (one per task), got {out.tolist()}"
        )
    return out


__all__ = ["HardSharing", "check_scales"]
