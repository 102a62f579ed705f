"""Backends on which the update rules of :mod:`mtl.optim.rules` are evaluated.

A rule is written once over the small vocabulary below. Names ending in ``_`` may act in place
on their first argument and always return the result, so a rule reads
``m = ops.lerp_(m, g, 1 - beta1)`` on every backend:

* :data:`SYMPY`, :data:`NUMPY`, :data:`TORCH` are pure: they build new values (sympy
  expressions, numpy arrays, torch tensors; hyperparameters may be broadcastable arrays, so
  many independent runs advance as one batched computation).
* :data:`FOREACH` acts in place on lists of tensors through ``torch._foreach_*`` kernels; it is
  what :class:`mtl.optim.Optimizer` runs.

A rule may only act in place on buffers it owns (its state, or values it created); gradients
are read-only, so the first operation on a gradient is always a pure one (``add``, ``addcmul``,
``sqrt``, ``sign``, ``abs``, ``neg``, ``clone``).

Two reductions, ``dot(a, b) = sum_i a_i b_i`` and ``mean(a) = sum_i a_i / n``, run over every
coordinate of a value (every tensor of a FOREACH list; the one coordinate a sympy symbol stands
for) and return a scalar (a Python float on FOREACH). A rule that uses them treats what it is
given as one vector, so a batched numpy run is no longer a set of independent runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy
import torch

Value = Any


@dataclass(frozen=True)
class PureOps:
    """Pure arithmetic over any type with ``+ - * /``; ``sqrt``/``sign`` come from a namespace."""

    name: str
    sqrt: Callable[[Value], Value]
    sign: Callable[[Value], Value]
    zeros_like: Callable[[Value], Value]
    scalar_sqrt: Callable[[Value], Value]
    maximum: Callable[[Value, Value], Value] = max
    abs: Callable[[Value], Value] = abs
    total: Callable[[Value], Value] = lambda a: a
    """The sum of every coordinate (a symbol is one coordinate)."""
    size: Callable[[Value], int] = lambda a: 1
    """The number of coordinates."""

    def dot(self, a: Value, b: Value) -> Value:
        """sum_i a_i b_i over every coordinate."""
        return self.total(a * b)

    def mean(self, a: Value) -> Value:
        """sum_i a_i / n over every coordinate."""
        return self.total(a) / self.size(a)

    def neg(self, a: Value) -> Value:
        """-a."""
        return -a

    def maximum_(self, a: Value, b: Value) -> Value:
        """The element-wise maximum of a and b."""
        return self.maximum(a, b)

    def add(self, a: Value, b: Value, alpha: Value = 1) -> Value:
        """a + alpha b."""
        return a + alpha * b

    add_ = add

    def add_scalar_(self, a: Value, s: Value) -> Value:
        """a + s for a scalar s."""
        return a + s

    def mul_(self, a: Value, s: Value) -> Value:
        """a s for a scalar s."""
        return a * s

    def div_(self, a: Value, s: Value) -> Value:
        """a / s for a scalar s."""
        return a / s

    def lerp_(self, a: Value, b: Value, weight: Value) -> Value:
        """a + weight (b - a)."""
        return a + weight * (b - a)

    def addcmul(self, a: Value, b: Value, c: Value, value: Value = 1) -> Value:
        """a + value b c."""
        return a + value * b * c

    addcmul_ = addcmul

    def addcdiv_(self, a: Value, b: Value, c: Value, value: Value = 1) -> Value:
        """a + value b / c."""
        return a + value * b / c

    def clone(self, a: Value) -> Value:
        return a * 1

    def full_like(self, a: Value, fill: Value) -> Value:
        return self.zeros_like(a) + fill


SYMPY = PureOps(
    name="sympy",
    sqrt=sympy.sqrt,
    sign=sympy.sign,
    zeros_like=lambda a: sympy.S.Zero,
    scalar_sqrt=sympy.sqrt,
    maximum=sympy.Max,
    abs=sympy.Abs,
)
NUMPY = PureOps(
    name="numpy",
    sqrt=np.sqrt,
    sign=np.sign,
    zeros_like=np.zeros_like,
    scalar_sqrt=lambda s: s**0.5,
    maximum=np.maximum,
    abs=np.abs,
    total=np.sum,
    size=np.size,
)
TORCH = PureOps(
    name="torch",
    sqrt=torch.sqrt,
    sign=torch.sign,
    zeros_like=torch.zeros_like,
    scalar_sqrt=lambda s: s**0.5,
    maximum=torch.maximum,
    abs=torch.abs,
    total=torch.sum,
    size=torch.numel,
)


class ForeachOps:
    """In-place arithmetic on lists of tensors with ``torch._foreach_*`` (scalars are floats)."""

    name = "foreach"

    @staticmethod
    def add(a: list[torch.Tensor], b: list[torch.Tensor], alpha: float = 1) -> list[torch.Tensor]:
        return torch._foreach_add(a, b, alpha=alpha)

    @staticmethod
    def add_(a: list[torch.Tensor], b: list[torch.Tensor], alpha: float = 1) -> list[torch.Tensor]:
        torch._foreach_add_(a, b, alpha=alpha)
        return a

    @staticmethod
    def add_scalar_(a: list[torch.Tensor], s: float) -> list[torch.Tensor]:
        torch._foreach_add_(a, s)
        return a

    @staticmethod
    def mul_(a: list[torch.Tensor], s: float) -> list[torch.Tensor]:
        torch._foreach_mul_(a, s)
        return a

    @staticmethod
    def div_(a: list[torch.Tensor], s: float) -> list[torch.Tensor]:
        torch._foreach_div_(a, s)
        return a

    @staticmethod
    def lerp_(a: list[torch.Tensor], b: list[torch.Tensor], weight: float) -> list[torch.Tensor]:
        torch._foreach_lerp_(a, b, weight)
        return a

    @staticmethod
    def addcmul(a, b, c, value: float = 1) -> list[torch.Tensor]:
        return torch._foreach_addcmul(a, b, c, value=value)

    @staticmethod
    def addcmul_(a, b, c, value: float = 1) -> list[torch.Tensor]:
        torch._foreach_addcmul_(a, b, c, value=value)
        return a

    @staticmethod
    def addcdiv_(a, b, c, value: float = 1) -> list[torch.Tensor]:
        torch._foreach_addcdiv_(a, b, c, value=value)
        return a

    @staticmethod
    def neg(a: list[torch.Tensor]) -> list[torch.Tensor]:
        return torch._foreach_neg(a)

    @staticmethod
    def abs(a: list[torch.Tensor]) -> list[torch.Tensor]:
        return torch._foreach_abs(a)

    @staticmethod
    def maximum_(a: list[torch.Tensor], b: list[torch.Tensor]) -> list[torch.Tensor]:
        torch._foreach_maximum_(a, b)
        return a

    @staticmethod
    def sqrt(a: list[torch.Tensor]) -> list[torch.Tensor]:
        return torch._foreach_sqrt(a)

    @staticmethod
    def sign(a: list[torch.Tensor]) -> list[torch.Tensor]:
        return torch._foreach_sign(a)

    @staticmethod
    def clone(a: list[torch.Tensor]) -> list[torch.Tensor]:
        return [t.clone(memory_format=torch.preserve_format) for t in a]

    @staticmethod
    def zeros_like(a: list[torch.Tensor]) -> list[torch.Tensor]:
        return [torch.zeros_like(t, memory_format=torch.preserve_format) for t in a]

    @staticmethod
    def full_like(a: list[torch.Tensor], fill: float) -> list[torch.Tensor]:
        """``fill`` everywhere; in both parts of a complex tensor (each part is a coordinate)."""
        return [torch.full_like(t, complex(fill, fill) if t.is_complex() else fill) for t in a]

    @staticmethod
    def dot(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
        """sum_i a_i b_i over every coordinate of every tensor, accumulated in float64."""
        if not a:
            return 0.0
        parts = [t.sum(dtype=torch.float64).to(a[0].device) for t in torch._foreach_mul(a, b)]
        return torch.stack(parts).sum().item()

    @staticmethod
    def mean(a: list[torch.Tensor]) -> float:
        """The mean of every coordinate of every tensor, accumulated in float64."""
        if not a:
            return 0.0
        parts = [t.sum(dtype=torch.float64).to(a[0].device) for t in a]
        return torch.stack(parts).sum().item() / sum(t.numel() for t in a)

    @staticmethod
    def scalar_sqrt(s: float) -> float:
        """``s ** 0.5`` as torch.optim computes it (``math.sqrt`` differs in the last bit)."""
        return s**0.5


FOREACH = ForeachOps()
