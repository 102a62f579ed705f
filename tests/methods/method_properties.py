"""Reusable assertions about MTL methods, a Jacobian sampler, and the table of declared properties.

Each method declares which properties hold (:data:`DECLARED`); the test modules check exactly
those. A direction ``d = A(J)``; scaling task t by ``a_t > 0`` multiplies row t of J (and loss t).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

Aggregate = Callable[[Tensor], Tensor]

# scale: "output" (same update), "direction" (same direction, another length), "line" (same
# line: the direction may flip, e.g. IMTL-G for T >= 3 when a weight is negative; same direction
# for T = 2), None (neither: shown by a counterexample). nonconflicting: J d >= 0.
# permutation: "exact" or "t2" (exact for T = 2 only; random order otherwise).
# hard: "finite" or "raises" on degenerate Jacobians.
DECLARED: dict[str, dict] = {
    "ew": {"scale": None, "nonconflicting": False, "permutation": "exact", "hard": "finite"},
    "mean": {"scale": None, "nonconflicting": False, "permutation": "exact", "hard": "finite"},
    "fixed": {"scale": None, "nonconflicting": False, "permutation": "exact", "hard": "finite"},
    "pcgrad": {"scale": None, "nonconflicting": "t2", "permutation": "t2", "hard": "finite"},
    "cagrad": {"scale": None, "nonconflicting": False, "permutation": "exact", "hard": "finite"},
    "imtl-g": {"scale": "line", "nonconflicting": False, "permutation": "exact", "hard": "finite"},
    "mgda": {"scale": None, "nonconflicting": True, "permutation": "exact", "hard": "finite"},
    "mgda-l2": {
        "scale": "output",
        "nonconflicting": True,
        "permutation": "exact",
        "hard": "finite",
    },
    "aligned-mtl": {
        "scale": None,
        "nonconflicting": False,
        "permutation": "exact",
        "hard": "finite",
    },
    "nash-mtl": {
        "scale": "output",
        "nonconflicting": True,
        "permutation": "exact",
        "hard": "raises",
    },
    "graddrop": {"scale": None, "nonconflicting": False, "permutation": "exact", "hard": "finite"},
    "upgrad": {"scale": None, "nonconflicting": True, "permutation": "exact", "hard": "finite"},
    "dualproj": {"scale": None, "nonconflicting": True, "permutation": "exact", "hard": "finite"},
    "config": {
        "scale": "direction",
        "nonconflicting": True,
        "permutation": "exact",
        "hard": "finite",
    },
    "fairgrad": {
        "scale": "output",
        "nonconflicting": True,
        "permutation": "exact",
        "hard": "raises",
    },
}


def sample_jacobian(seed: int, tasks: int, dim: int, rank: int | None = None, scale: float = 1.0):
    """A float64 (T, P) Jacobian of the given rank (default full), entries ~ scale * N(0, 1)."""
    gen = torch.Generator().manual_seed(seed)
    rank = min(tasks, dim) if rank is None else rank
    left = torch.randn(tasks, rank, generator=gen, dtype=torch.float64)
    right = torch.randn(rank, dim, generator=gen, dtype=torch.float64)
    return scale * (left @ right) / rank**0.5


def hard_jacobians(seed: int, tasks: int, dim: int) -> dict[str, Tensor]:
    """Degenerate inputs: zero, collinear (same or mixed sign), rank 1, extreme scales."""
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(dim, generator=gen, dtype=torch.float64)
    pos = torch.rand(tasks, 1, generator=gen, dtype=torch.float64) + 0.1
    signs = torch.where(torch.arange(tasks) % 2 == 0, 1.0, -1.0).to(torch.float64)[:, None]
    base = sample_jacobian(seed, tasks, dim)
    mixed = base * torch.logspace(-10, 10, tasks, dtype=torch.float64)[:, None]
    return {
        "zero": torch.zeros(tasks, dim, dtype=torch.float64),
        "collinear": pos * v,
        "opposite": signs * pos * v,
        "rank1": sample_jacobian(seed, tasks, dim, rank=1),
        "tiny": 1e-10 * base,
        "huge": 1e10 * base,
        "mixed-scales": mixed,
    }


def _close(a: Tensor, b: Tensor, rtol: float) -> bool:
    scale = max(float(a.norm()), float(b.norm()), 1e-300)
    return float((a - b).norm()) <= rtol * scale


def assert_output_invariant(
    agg: Aggregate, jac: Tensor, scales: Tensor, rtol: float = 1e-6
) -> None:
    """``A(diag(a) J) == A(J)``."""
    d, ds = agg(jac), agg(scales[:, None] * jac)
    assert _close(d, ds, rtol), f"not output invariant: {d} vs {ds}"


def assert_direction_invariant(
    agg: Aggregate, jac: Tensor, scales: Tensor, rtol: float = 1e-6, allow_flip: bool = False
) -> None:
    """``A(diag(a) J) = k A(J)`` with ``k > 0`` (any ``k != 0`` with ``allow_flip``)."""
    d, ds = agg(jac), agg(scales[:, None] * jac)
    k = float(ds @ d) / float(d @ d)
    assert k > 0 or (allow_flip and k < 0), f"direction flipped (k = {k})"
    assert _close(ds, k * d, rtol), f"not direction invariant: {d} vs {ds}"


def assert_not_scale_invariant(agg: Aggregate, jac: Tensor, scales: Tensor) -> None:
    """A counterexample: the scaled direction is not parallel to the unscaled one."""
    d, ds = agg(jac), agg(scales[:, None] * jac)
    cos = float(d @ ds) / (float(d.norm()) * float(ds.norm()))
    assert cos < 1 - 1e-6, f"expected a change of direction, cos = {cos}"


def assert_non_conflicting(agg: Aggregate, jac: Tensor, atol: float = 1e-9) -> None:
    """``J A(J) >= 0`` componentwise (up to rounding relative to ``||J||^2``)."""
    d = agg(jac)
    tol = atol * float(jac.norm()) ** 2
    assert bool(((jac @ d) >= -tol).all()), f"conflicting: J d = {jac @ d}"


def assert_permutation_invariant(agg: Aggregate, jac: Tensor, seed: int, rtol: float = 1e-6):
    """Reordering the tasks leaves the direction unchanged."""
    perm = torch.randperm(jac.shape[0], generator=torch.Generator().manual_seed(seed))
    d, dp = agg(jac), agg(jac[perm])
    assert _close(d, dp, rtol), f"not permutation invariant: {d} vs {dp}"


def assert_finite(agg: Aggregate, jac: Tensor) -> None:
    d = agg(jac)
    assert d.shape == jac.shape[-1:], d.shape
    assert bool(torch.isfinite(d).all()), f"non-finite output {d}"


def cos(a: Tensor, b: Tensor) -> float:
    return float(a @ b) / float(np.sqrt(float(a @ a) * float(b @ b)))
