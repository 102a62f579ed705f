"""Small solvers on the T x T Gramian ``G = J J^T``, in float64 numpy.

* :func:`min_norm_weights`: MGDA's min-norm point of the convex hull of the task gradients,
  ``argmin_{w in simplex} w^T G w``, solved exactly as a least-distance problem with
  Lawson-Hanson NNLS (``scipy.optimize.nnls``) instead of LibMTL's Frank-Wolfe iterations.
* :func:`cagrad_weights`: CAGrad's dual, ``argmin_{w in simplex} w^T G 1/T + c sqrt(w^T G w)``
  with ``c = alpha ||g_0||``, by SLSQP as LibMTL and the original code do (with analytic
  gradients, falling back to SLSQP's finite differences where those stall).
* :func:`nash_weights`: Nash-MTL's bargaining solution, the ``w > 0`` with ``G w = 1/w``,
  found as the minimiser of the convex ``f(w) = w^T G w / 2 - sum_t log w_t`` by damped Newton
  (the original solves a sequence of convex problems with cvxpy towards the same point).

Each raises :class:`~mtl.methods.base.SolverError` instead of returning a degraded answer.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize
from threadpoolctl import ThreadpoolController

from mtl.methods.base import SolverError

#: The BLAS libraries loaded with numpy and scipy. SLSQP's T x T subproblems gain nothing from
#: BLAS threads and lose much to them on busy cores (a CAGrad solve at T = 40: 390 ms with two
#: OpenBLAS threads beside torch's, 2.5 ms with one), so :func:`cagrad_weights` runs serially.
_BLAS = ThreadpoolController()


def _normalised(gramian: np.ndarray) -> tuple[np.ndarray, float]:
    scale = float(np.max(np.abs(np.diag(gramian))))
    return (gramian / scale if scale > 0 else gramian), scale


def _factor(gramian: np.ndarray) -> np.ndarray:
    """A T x T matrix ``R`` with ``R^T R = G`` (G symmetrised, negative rounding clipped)."""
    vals, vecs = np.linalg.eigh((gramian + gramian.T) / 2)
    return np.sqrt(np.clip(vals, 0, None))[:, None] * vecs.T


def min_norm_weights(gramian: np.ndarray) -> np.ndarray:
    """Simplex weights of the min-norm point of conv{g_t}; ``T = 2`` in closed form.

    Least distance via NNLS: ``u = argmin_{u >= 0} ||[R; 1^T] u - e_{T+1}||`` gives
    ``w = u / sum(u)`` (Lawson & Hanson 1974, ch. 23), for any factor ``R^T R = G``.
    """
    g, scale = _normalised(np.asarray(gramian, dtype=np.float64))
    t = g.shape[0]
    if scale == 0 or t == 1:
        return np.full(t, 1.0 / t)
    if t == 2:
        denom = g[0, 0] + g[1, 1] - 2 * g[0, 1]
        w0 = 0.5 if denom <= 0 else float(np.clip((g[1, 1] - g[0, 1]) / denom, 0.0, 1.0))
        return np.array([w0, 1.0 - w0])
    e = np.vstack([_factor(g), np.ones((1, t))])
    f = np.zeros(t + 1)
    f[-1] = 1.0
    u, _ = scipy.optimize.nnls(e, f, maxiter=50 * t)
    total = u.sum()
    if not np.isfinite(total) or total <= 0:
        raise SolverError(f"MGDA min-norm solver failed (NNLS returned {u})")
    return u / total


def cagrad_weights(gramian: np.ndarray, c: float) -> np.ndarray:
    """CAGrad's dual weights; the Gramian is divided by ``||g_0||^2`` first (same argmin)."""
    g = np.asarray(gramian, dtype=np.float64)
    t = g.shape[0]
    g0_sq = float(g.mean())
    if g0_sq <= 0:
        return np.full(t, 1.0 / t)
    a = g / g0_sq
    b = np.full(t, 1.0 / t)
    radius = c  # c ||g_0|| after the division by ||g_0||^2

    ab = a @ b

    def objective(x: np.ndarray) -> float:
        return float(x @ a @ b + radius * np.sqrt(max(x @ a @ x, 0.0) + 1e-8))

    def with_gradient(x: np.ndarray) -> tuple[float, np.ndarray]:
        """The objective and its gradient ``a b + radius a x / sqrt(x^T a x + 1e-8)``."""
        ax = a @ x
        root = np.sqrt(max(float(x @ ax), 0.0) + 1e-8)
        return float(x @ ab + radius * root), ab + (radius / root) * ax

    constraint = {"type": "eq", "fun": lambda x: 1.0 - x.sum()}
    exact = {"jac": lambda x: -np.ones((1, t)), **constraint}
    # Analytic gradients first (at T = 40, 13x fewer solver seconds); SLSQP's line search can
    # stall on them for Gramians whose scales spread over many decades, where the original
    # finite-difference form still converges: it is the fallback.
    for fun, jac, cons in ((with_gradient, True, exact), (objective, None, constraint)):
        with _BLAS.limit(limits=1, user_api="blas"):
            res = scipy.optimize.minimize(
                fun,
                b,
                jac=jac,
                bounds=[(0.0, 1.0)] * t,
                constraints=cons,
                method="SLSQP",
                options={"ftol": 1e-12, "maxiter": 500},
            )
        if res.success and np.all(np.isfinite(res.x)):
            break
    else:
        raise SolverError(f"CAGrad dual solver failed: {res.message}")
    return np.clip(res.x, 0.0, 1.0)


def nash_weights(gramian: np.ndarray, *, max_iter: int = 100, tol: float = 1e-6) -> np.ndarray:
    """The ``w > 0`` solving ``N w = 1/w`` for ``N = G/||G||_F`` (LibMTL's normalisation).

    Solved on the correlation matrix ``C = D^-1 G D^-1`` (``D = sqrt(diag G)``): if ``C v = 1/v``
    then ``w = sqrt(||G||_F) D^-1 v``, which removes the tasks' scale spread from the Newton
    iterations. A zero task gradient has no solution (``g_t . d = 1/w_t > 0`` is impossible).
    """
    g = np.asarray(gramian, dtype=np.float64)
    diag = np.diag(g).copy()
    if not np.all(np.isfinite(g)) or np.any(diag <= 0):
        raise SolverError("Nash-MTL is undefined when a task gradient is zero (or not finite)")
    d = np.sqrt(diag)
    c = g / np.outer(d, d)
    t = c.shape[0]
    v = np.ones(t) / np.sqrt(max(float(c.sum()), 1e-12))

    def f(x: np.ndarray) -> float:
        return 0.5 * x @ c @ x - np.log(x).sum()

    for _ in range(max_iter):
        grad = c @ v - 1.0 / v
        try:
            step = np.linalg.solve(c + np.diag(1.0 / v**2), grad)
        except np.linalg.LinAlgError:
            break
        decrement = float(grad @ step)  # Newton decrement squared: f(v) - min f ~ decrement/2
        if decrement < 1e-20:
            if np.linalg.norm(v * (c @ v) - 1.0) > tol:
                break
            return np.sqrt(np.linalg.norm(g)) * v / d
        size = 1.0
        if decrement > 0.0625:  # outside the quadratic zone of a self-concordant f: backtrack
            value = f(v)
            while (
                np.any(v - size * step <= 0) or f(v - size * step) > value - 0.25 * size * decrement
            ):
                size /= 2
                if size < 1e-12:
                    raise SolverError("Nash-MTL line search stalled; C v = 1/v has no solution")
        v = v - size * step
        if v.max() > 1e12 or np.any(v <= 0):
            break
    raise SolverError(
        "Nash-MTL found no w > 0 with G w = 1/w (for example, two opposite task gradients): "
        "the bargaining problem is unbounded or the solver did not converge"
    )
