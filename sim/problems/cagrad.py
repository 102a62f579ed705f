"""The CAGrad 2-D toy problem: the two losses of the original code, analytic gradients, optima.

The objective is copied from the toy of Liu et al. (CAGrad, NeurIPS 2021; ``toy.py`` of
``Cranial-XIX/CAGrad``), for ``x = (x1, x2)``, with ``t(z) = tanh(z)`` and ``LOWER = 5e-6``::

    f1 = log(max(|0.5(-x1 - 7) - t(-x2)|, LOWER)) + 6      c1 = max(t(0.5 x2), 0)
    f2 = log(max(|0.5(-x1 + 3) + t(-x2) + 2|, LOWER)) + 6  c2 = max(t(-0.5 x2), 0)
    f1sq = ((-x1 + 7)^2 + 0.1(-x2 - 8)^2) / 10 - 20
    f2sq = ((-x1 - 7)^2 + 0.1(-x2 - 8)^2) / 10 - 20
    L1 = f1 c1 + f1sq c2,  L2 = f2 c1 + f2sq c2.

Gradients are written by hand, vectorised over a batch of points, with torch autograd's
conventions at the kinks (``d|u|/du = sign(u)``, ``sign(0) = 0``; ``max(u, a)`` passes the
gradient only where ``u > a``, as ``torch.clamp`` does), so they equal ``torch.autograd`` on the
original expressions.

The global minimiser of the mean loss and the Pareto set are computed numerically
(:func:`mean_loss_minimum`, :func:`pareto_front`); the original plots' straight line
``x2 = -8.3552`` is only a plotting shortcut: the Pareto set is a curve through
``(-7, -8.4345)``, ``(0, -8.3551)`` and ``(7, -8.4345)``.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from scipy.optimize import minimize

LOWER = 0.000005
INITS = np.array([[-8.5, 7.5], [-8.5, -5.0], [9.0, 9.0]])
"""The three initial points ("seeds") of the original toy and of the paper's Table A3."""
GRAD_TOL = 1e-7
"""Numerical optima are accepted when the gradient norm is below this (float64 losses ~ 15)."""


def _points(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.shape[-1:] != (2,):
        raise ValueError(f"points must have a last axis of length 2, got shape {x.shape}")
    return x


def losses(x: np.ndarray) -> np.ndarray:
    """The task losses ``(L1, L2)`` at points ``x`` of shape ``(..., 2)``: shape ``(..., 2)``."""
    return losses_and_jacobian(x)[0]


def mean_loss(x: np.ndarray) -> np.ndarray:
    """``(L1 + L2) / 2`` at points of shape ``(..., 2)``."""
    return losses(x).mean(axis=-1)


def losses_and_jacobian(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Losses ``(..., 2)`` and Jacobian ``J[..., t, i] = dL_t/dx_i`` of shape ``(..., 2, 2)``."""
    x = _points(x)
    x1, x2 = x[..., 0], x[..., 1]
    th = np.tanh(-x2)
    dth = 1 - th * th  # d tanh(-x2) / d(-x2); so d tanh(-x2)/dx2 = -dth
    u1 = 0.5 * (-x1 - 7) - th
    u2 = 0.5 * (-x1 + 3) + th + 2
    m1, m2 = np.maximum(np.abs(u1), LOWER), np.maximum(np.abs(u2), LOWER)
    f1, f2 = np.log(m1) + 6, np.log(m2) + 6
    # df/du = sign(u) [|u| > LOWER] / max(|u|, LOWER) = [|u| > LOWER] / u;
    # du1 = (-0.5, dth), du2 = (-0.5, -dth)
    k1 = np.divide(1, u1, out=np.zeros_like(u1), where=m1 > LOWER)
    k2 = np.divide(1, u2, out=np.zeros_like(u2), where=m2 > LOWER)
    h = np.tanh(0.5 * x2)  # tanh(-0.5 x2) = -h exactly: tanh is odd, negation is exact
    c1, c2 = np.maximum(h, 0), np.maximum(-h, 0)
    s = 0.5 * (1 - h * h)
    dc1, dc2 = s * (h > 0), -s * (h < 0)
    q = 0.1 * (-x2 - 8) ** 2
    f1sq = ((-x1 + 7) ** 2 + q) / 10 - 20
    f2sq = ((-x1 - 7) ** 2 + q) / 10 - 20
    dq = 0.02 * (x2 + 8) * c2  # d(q / 10)/dx2, times c2
    loss = np.stack([f1 * c1 + f1sq * c2, f2 * c1 + f2sq * c2], axis=-1)
    kc1, kc2 = k1 * c1, k2 * c1
    jac = np.stack(
        [
            -0.5 * kc1 + (x1 - 7) * 0.2 * c2,
            kc1 * dth + f1 * dc1 + dq + f1sq * dc2,
            -0.5 * kc2 + (x1 + 7) * 0.2 * c2,
            -kc2 * dth + f2 * dc1 + dq + f2sq * dc2,
        ],
        axis=-1,
    ).reshape((*x.shape[:-1], 2, 2))
    return loss, jac


def _weighted(w: float):
    """``w L1 + (1 - w) L2`` and its gradient at one point, for scipy."""
    weights = np.array([w, 1 - w])

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        loss, jac = losses_and_jacobian(x)
        return float(weights @ loss), weights @ jac

    return fun


def _minimise(w: float, start: np.ndarray) -> np.ndarray:
    res = minimize(_weighted(w), start, jac=True, method="BFGS", options={"gtol": 1e-12})
    if not np.all(np.isfinite(res.x)) or np.linalg.norm(_weighted(w)(res.x)[1]) > GRAD_TOL:
        raise RuntimeError(f"weighted-sum minimisation failed at w={w}: {res.message}")
    return res.x


@cache
def mean_loss_minimum() -> tuple[tuple[float, float], float]:
    """The global minimiser of the mean loss near ``(0, -8.3551)`` and its value (numerical).

    The minimiser solves ``grad (L1 + L2)/2 = 0`` with BFGS to a gradient norm below ``GRAD_TOL``,
    started at the point quoted by the original code.
    """
    x = _minimise(0.5, np.array([0.0, -8.3552]))
    return (float(x[0]), float(x[1])), float(mean_loss(x))


def pareto_front(weights: np.ndarray) -> np.ndarray:
    """Minimisers of ``w L1 + (1 - w) L2`` for each ``w`` in ``weights`` (numerical): ``(n, 2)``.

    For ``x2 < 0`` the losses are ``f_tsq c2``, so the minimiser has ``x1 = 7(2w - 1)`` exactly;
    BFGS starts there and solves for both coordinates. ``w = 1`` gives the minimiser of
    ``L1`` at ``(7, -8.4345)``, ``w = 0`` that of ``L2`` at ``(-7, -8.4345)``.
    """
    weights = np.asarray(weights, dtype=float)
    if weights.ndim != 1 or np.any((weights < 0) | (weights > 1)):
        raise ValueError("weights must be a 1-D array of values in [0, 1]")
    return np.array([_minimise(w, np.array([7 * (2 * w - 1), -8.4])) for w in weights])
