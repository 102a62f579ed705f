"""Optimizer-level methods: one optimizer state per task for the shared parameters.

Both build on :mod:`mtl.optim`'s per-task groups (``"tasks": T``), which apply
``p <- p + sum_t (rule(p, g_t; state_t) - p)``: the sum of T independent updates.
"""

from __future__ import annotations

from typing import Any, ClassVar

import mtl.optim
from mtl.methods.base import OptimizerLevel
from mtl.methods.registry import register


@register("adatask")
class AdaTask(OptimizerLevel):
    """AdaTask (Yang et al. 2023): Adam moments of the shared parameters kept per task; the
    task-specific parameters use one ordinary Adam.
    """

    rule: ClassVar[str] = "adam"


@register("mtl-io")
class MTLIO(OptimizerLevel):
    """MTL-IO (independent optimizers): one state of any :mod:`mtl.optim` rule per task for the
    shared parameters (``optimizer``, default ``sgd`` as the paper ran it), updates summed.
    """

    defaults: ClassVar[dict[str, Any]] = {"optimizer": "sgd"}

    def __init__(self, **hp: Any) -> None:
        super().__init__(**hp)
        mtl.optim.get_rule(self.hp["optimizer"])  # raises with the valid names

    def rule_name(self) -> str:
        return self.hp["optimizer"]
