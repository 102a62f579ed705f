"""Aggregators that first transform the losses: IMTL (learned scales) and DB-MTL (log losses).

:func:`mtl.backward` takes the Jacobian of ``transform_losses(losses)``, aggregates it, and
gives the task-specific parameters (and the method's own parameters) the gradients of the
summed transformed losses, as LibMTL's per-task ``backward`` does.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from mtl.methods.aggregators import IMTLG
from mtl.methods.base import Aggregator, check_tasks, task_count
from mtl.methods.registry import register


@register("imtl")
class IMTL(IMTLG):
    """IMTL (Liu et al. 2021) as LibMTL runs it: IMTL-L scales the losses to
    ``e^{s_t} L_t - s_t`` with ``s`` an ``nn.Parameter`` (zeros) learned by the training
    optimizer (add ``method.parameters()``), then IMTL-G combines the gradients of the scaled
    losses. IMTL-G's pseudo-inverse replaces LibMTL's inverse (see :class:`IMTLG`).
    """

    defaults: ClassVar[dict[str, Any]] = {"tasks": None}
    stateful: ClassVar[bool] = True

    def __init__(self, **hp: Any) -> None:
        super().__init__(**hp)
        self.log_scales = torch.nn.Parameter(torch.zeros(task_count(self.hp, self.name)))

    def transform_losses(self, losses: Tensor) -> Tensor:
        s = self.log_scales.to(losses.dtype)
        return s.exp() * losses - s


@register("db-mtl")
class DBMTL(Aggregator):
    """DB-MTL (Lin et al. 2023), LibMTL form: gradients of ``log(L_t + 1e-8)``, an EMA buffer
    ``b <- g + beta/k^sigma (b - g)`` starting at ``b = 0`` as the authors' code does (so
    ``b = (1 - beta) g`` at step k = 1; ``beta = 0.9``, ``sigma = 0``),
    then every task is rescaled to the largest norm: ``d = sum_t (max_s ||b_s|| / ||b_t||) b_t``
    (``+1e-8`` in the divisor as LibMTL). One (T, P) Jacobian per step.
    """

    defaults: ClassVar[dict[str, Any]] = {"beta": 0.9, "beta_sigma": 0.0}
    stateful: ClassVar[bool] = True

    def __init__(self, **hp: Any) -> None:
        super().__init__(**hp)
        self.steps = 0
        self.buffer: Tensor | None = None

    def transform_losses(self, losses: Tensor) -> Tensor:
        return torch.log(losses + 1e-8)

    def aggregate(self, jacobian: Tensor, generator: torch.Generator | None) -> Tensor:
        if jacobian.dim() != 2:
            raise ValueError("db-mtl is stateful: pass one (T, P) Jacobian per step")
        self.steps += 1
        if self.buffer is None:
            self.buffer = torch.zeros_like(jacobian)
        check_tasks(self.buffer.shape[0], jacobian.shape[0], self.name)
        rate = self.hp["beta"] / self.steps ** self.hp["beta_sigma"]
        self.buffer = jacobian + rate * (self.buffer - jacobian)
        norms = self.buffer.norm(dim=-1)
        alpha = norms.max() / (norms + 1e-8)
        self.last_weights = alpha
        return alpha @ self.buffer
