"""MTL methods behind one registry: loss weightings, gradient aggregators, optimizer-level.

>>> import torch, mtl.methods
>>> J = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
>>> [round(x, 6) for x in mtl.methods.aggregate("mgda", J).tolist()]
[0.2, 0.4]
>>> mtl.methods.get("uw", tasks=2).kind
'weighting'
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mtl.methods import (
    aggregators,
    balancing,
    optimizer_level,
    projections,
    stochastic,
    transformed,
    weightings,
)
from mtl.methods.base import (
    KINDS,
    Aggregator,
    Method,
    NonFiniteError,
    OptimizerLevel,
    SolverError,
    Weighting,
    check_finite,
    check_jacobian,
)
from mtl.methods.interop import TORCHJD_VERSION, torchjd_aggregator
from mtl.methods.registry import REGISTRY, get, method_class, register

NAMES = tuple(sorted(REGISTRY))


def aggregate(
    name: str, jacobian: Tensor, *, generator: torch.Generator | None = None, **hyperparameters: Any
) -> Tensor:
    """Map a (T, P) (or (..., T, P)) Jacobian to a (P,) (or (..., P)) direction with method
    ``name``. Stateful methods (GradVac, DB-MTL, IMTL, MoCo, ...) raise here: they need the
    object API (:func:`get`, then one call per step); so do loss-level methods other than
    constant weightings. A non-finite row raises :class:`NonFiniteError` naming the task.
    """
    cls = method_class(name)
    method = cls(**hyperparameters)
    if isinstance(method, weightings.ConstantWeighting):
        check_jacobian(jacobian, name)
        check_finite(jacobian, name)
        return method.aggregate_jacobian(jacobian)[0]
    if not isinstance(method, Aggregator):
        raise ValueError(
            f"{name!r} is a {method.kind}-level method, not a gradient aggregator: use "
            f"mtl.methods.get({name!r}) with mtl.backward; aggregators: "
            + ", ".join(n for n in NAMES if issubclass(REGISTRY[n], Aggregator))
        )
    if method.stateful:
        raise ValueError(
            f"{name!r} keeps state between steps: create it once with "
            f"mtl.methods.get({name!r}, ...) and call it on each step's Jacobian"
        )
    return method(jacobian, generator=generator)


__all__ = [
    "KINDS",
    "NAMES",
    "REGISTRY",
    "TORCHJD_VERSION",
    "Aggregator",
    "Method",
    "NonFiniteError",
    "OptimizerLevel",
    "SolverError",
    "Weighting",
    "aggregate",
    "aggregators",
    "balancing",
    "get",
    "method_class",
    "optimizer_level",
    "projections",
    "register",
    "stochastic",
    "torchjd_aggregator",
    "transformed",
    "weightings",
]
