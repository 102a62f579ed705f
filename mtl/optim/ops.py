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

Tensor operations (``matmul``, ``addmm``, ``transpose``, ``norm``, ``sq_norm_mean``, ``mean_at``,
``clamp_min``, ``rsqrt``, ``matrix_power``, ``low_precision``) act on one whole tensor: a numpy
array, a torch tensor, a FOREACH list of one tensor, or on sympy a numpy object array of
expressions (a small symbolic matrix; ``matrix_power`` there is the closed form for 2x2).
Element-wise sympy functions map over such arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy
import torch

Value = Any


def _each(f: Callable[..., Value]) -> Callable[..., Value]:
    """``f`` on a sympy scalar, element-wise on a numpy object array of sympy expressions."""
    mapped = np.frompyfunc(f, 2, 1) if f in (sympy.Max, sympy.Min) else np.frompyfunc(f, 1, 1)

    def apply(*args: Value) -> Value:
        return mapped(*args) if any(isinstance(a, np.ndarray) for a in args) else f(*args)

    return apply


def _sympy_zeros(a: Value) -> Value:
    return np.full(a.shape, sympy.S.Zero, dtype=object) if isinstance(a, np.ndarray) else 0 * a


def _sympy_total(a: Value) -> Value:
    return sympy.Add(*a.ravel()) if isinstance(a, np.ndarray) else a


def _sympy_root_2x2(a: np.ndarray) -> np.ndarray:
    """The principal square root of a symmetric positive definite 2x2 matrix:
    ``(A + s I) / sqrt(tr A + 2 s)``, ``s = sqrt(det A)``."""
    s = sympy.sqrt(a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0])
    return (a + s * np.eye(2, dtype=object)) / sympy.sqrt(a[0, 0] + a[1, 1] + 2 * s)


def _sympy_matrix_power(a: np.ndarray, exponent: Value) -> np.ndarray:
    """``A^exponent`` for a symmetric positive definite 1x1 or 2x2 matrix (2x2: exponent
    ``+-1/2^j``)."""
    if a.shape == (1, 1):
        return a ** sympy.Rational(exponent)
    if a.shape != (2, 2):
        raise ValueError(f"symbolic matrix powers are closed forms up to 2x2, not {a.shape}")
    inverse, power = exponent < 0, abs(sympy.Rational(exponent))
    while power < 1:
        if power.q % 2:
            raise ValueError(f"symbolic matrix powers need exponent +-1/2^j, not {exponent}")
        a, power = _sympy_root_2x2(a), power * 2
    if inverse:
        det = a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]
        a = np.array([[a[1, 1], -a[0, 1]], [-a[1, 0], a[0, 0]]], dtype=object) / det
    return a


def _eigh_power(eigh, a: Value, exponent: float) -> Value:
    """``A^exponent`` of a symmetric positive definite matrix through its eigendecomposition."""
    w, v = eigh(a)
    return (v * w**exponent) @ v.T


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
    rsqrt: Callable[[Value], Value] = lambda a: 1 / a**0.5
    matrix_power: Callable[[Value, Value], Value] = _sympy_matrix_power
    """``A^e`` of a symmetric positive definite matrix."""
    low_precision: Callable[[Value], Value] = lambda a: a
    """Where torch.optim computes in bfloat16 (Muon's Newton-Schulz): bfloat16 on torch."""
    eye: Callable[[Value, int], Value] = lambda a, n: np.eye(n, dtype=object)
    """The n x n identity, of ``a``'s dtype."""
    machine_eps: Callable[[Value], float] = lambda a: float(np.finfo(a.dtype).eps)
    """The machine epsilon of ``a``'s dtype."""

    def shape(self, a: Value) -> tuple[int, ...]:
        return tuple(np.shape(a))

    def matmul(self, a: Value, b: Value) -> Value:
        return a @ b

    def addmm(self, c: Value, a: Value, b: Value, beta: Value = 1, alpha: Value = 1) -> Value:
        """beta c + alpha a b (matrix product)."""
        return beta * c + alpha * (a @ b)

    def transpose(self, a: Value) -> Value:
        return a.T

    def norm(self, a: Value) -> Value:
        """The Frobenius norm sqrt(sum_i a_i^2), a scalar."""
        return self.scalar_sqrt(self.dot(a, a))

    def sq_norm_mean(self, a: Value, dim: int) -> Value:
        """sum_j a_j^2 / n along ``dim`` (kept, size 1): a mean square per row or column."""
        return (a * a).sum(axis=dim, keepdims=True) / np.shape(a)[dim]

    def mean_at(self, a: Value, dim: int) -> Value:
        """The mean along ``dim`` (kept, size 1)."""
        return a.sum(axis=dim, keepdims=True) / np.shape(a)[dim]

    def clamp_min(self, a: Value, low: Value) -> Value:
        """max(a, low) element-wise."""
        return self.maximum(a, low)

    def minimum(self, a: Value, b: Value) -> Value:
        """min(a, b) of scalars."""
        return min(a, b)

    def max_scalar(self, a: Value, b: Value) -> Value:
        """max(a, b) of scalars."""
        return max(a, b)

    def normalize_frobenius(self, a: Value, eps: Value) -> Value:
        """a / max(||a||_F, eps)."""
        return a / self.max_scalar(self.norm(a), eps)

    def div(self, a: Value, b: Value) -> Value:
        """a / b element-wise."""
        return a / b

    def mul(self, a: Value, b: Value) -> Value:
        """a b element-wise."""
        return a * b

    def scalar_div(self, s: Value, a: Value) -> Value:
        """s / a element-wise."""
        return s / a

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


class _SympyOps(PureOps):
    """Sympy scalars, or numpy object arrays of them (small symbolic tensors)."""

    def minimum(self, a: Value, b: Value) -> Value:
        return sympy.Min(a, b)

    def max_scalar(self, a: Value, b: Value) -> Value:
        return sympy.Max(a, b)


SYMPY = _SympyOps(
    name="sympy",
    sqrt=_each(sympy.sqrt),
    sign=_each(sympy.sign),
    zeros_like=_sympy_zeros,
    scalar_sqrt=sympy.sqrt,
    maximum=_each(sympy.Max),
    abs=_each(sympy.Abs),
    total=_sympy_total,
    size=np.size,
    rsqrt=_each(lambda a: 1 / sympy.sqrt(a)),
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
    matrix_power=lambda a, e: _eigh_power(np.linalg.eigh, a, e),
    eye=lambda a, n: np.eye(n, dtype=a.dtype),
)


class _TorchOps(PureOps):
    """Torch tensors: reductions along a dimension and clamps by torch's names."""

    def sq_norm_mean(self, a: Value, dim: int) -> Value:
        return (a * a).sum(dim=dim, keepdim=True) / a.shape[dim]

    def mean_at(self, a: Value, dim: int) -> Value:
        return a.mean(dim=dim, keepdim=True)

    def clamp_min(self, a: Value, low: Value) -> Value:
        return torch.clamp_min(a, low)


TORCH = _TorchOps(
    name="torch",
    sqrt=torch.sqrt,
    sign=torch.sign,
    zeros_like=torch.zeros_like,
    scalar_sqrt=lambda s: s**0.5,
    maximum=torch.maximum,
    abs=torch.abs,
    total=torch.sum,
    size=torch.numel,
    rsqrt=torch.rsqrt,
    matrix_power=lambda a, e: _eigh_power(torch.linalg.eigh, a, e),
    low_precision=torch.Tensor.bfloat16,
    eye=lambda a, n: torch.eye(n, dtype=a.dtype, device=a.device),
    machine_eps=lambda a: torch.finfo(a.dtype).eps,
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

    # tensor operations: a list of one tensor, torch.optim's kernels

    minimum = staticmethod(min)
    max_scalar = staticmethod(max)

    @staticmethod
    def shape(a: list[torch.Tensor]) -> tuple[int, ...]:
        (t,) = a
        return tuple(t.shape)

    @staticmethod
    def norm(a: list[torch.Tensor]) -> float:
        """The Frobenius norm of the one tensor, ``t.norm(2).item()`` as torch.optim has it."""
        (t,) = a
        return t.norm(2).item()

    @staticmethod
    def matmul(a: list[torch.Tensor], b: list[torch.Tensor]) -> list[torch.Tensor]:
        return [x @ y for x, y in zip(a, b, strict=True)]

    @staticmethod
    def addmm(c, a, b, beta: float = 1, alpha: float = 1) -> list[torch.Tensor]:
        triples = zip(c, a, b, strict=True)
        return [torch.addmm(z, x, y, beta=beta, alpha=alpha) for z, x, y in triples]

    @staticmethod
    def transpose(a: list[torch.Tensor]) -> list[torch.Tensor]:
        return [t.T for t in a]

    @staticmethod
    def sq_norm_mean(a: list[torch.Tensor], dim: int) -> list[torch.Tensor]:
        return [
            torch.linalg.vector_norm(t, dim=dim, keepdim=True).square_().div_(t.size(dim))
            for t in a
        ]

    @staticmethod
    def mean_at(a: list[torch.Tensor], dim: int) -> list[torch.Tensor]:
        return [t.mean(dim=dim, keepdim=True) for t in a]

    @staticmethod
    def clamp_min(a: list[torch.Tensor], low: float) -> list[torch.Tensor]:
        return torch._foreach_clamp_min(a, low)

    @staticmethod
    def rsqrt(a: list[torch.Tensor]) -> list[torch.Tensor]:
        return [t.rsqrt() for t in a]

    @staticmethod
    def normalize_frobenius(a: list[torch.Tensor], eps: float) -> list[torch.Tensor]:
        return [t.div(t.norm().clamp(min=eps)) for t in a]

    @staticmethod
    def low_precision(a: list[torch.Tensor]) -> list[torch.Tensor]:
        return [t.bfloat16() for t in a]

    @staticmethod
    def matrix_power(a: list[torch.Tensor], exponent: float) -> list[torch.Tensor]:
        return [_eigh_power(torch.linalg.eigh, t, exponent) for t in a]

    @staticmethod
    def div(a: list[torch.Tensor], b: list[torch.Tensor]) -> list[torch.Tensor]:
        return [x / y for x, y in zip(a, b, strict=True)]

    @staticmethod
    def mul(a: list[torch.Tensor], b: list[torch.Tensor]) -> list[torch.Tensor]:
        return [x * y for x, y in zip(a, b, strict=True)]

    @staticmethod
    def scalar_div(s: float, a: list[torch.Tensor]) -> list[torch.Tensor]:
        """s / a element-wise, as torch evaluates ``s / tensor``."""
        return [s / t for t in a]

    @staticmethod
    def size(a: list[torch.Tensor]) -> int:
        return sum(t.numel() for t in a)

    @staticmethod
    def eye(a: list[torch.Tensor], n: int) -> list[torch.Tensor]:
        return [torch.eye(n, dtype=t.dtype, device=t.device) for t in a]

    @staticmethod
    def machine_eps(a: list[torch.Tensor]) -> float:
        return torch.finfo(a[0].dtype).eps


FOREACH = ForeachOps()
