"""Small solvers on the T x T Gramian ``G = J J^T``, in float64 numpy.

* :func:`min_norm_weights`: MGDA's min-norm point of the convex hull of the task gradients,
  ``argmin_{w in simplex} w^T G w``, solved exactly as a least-distance problem with
  Lawson-Hanson NNLS (``scipy.optimize.nnls``) instead of LibMTL's Frank-Wolfe iterations.
* :func:`cagrad_weights`: CAGrad's conflict-averse direction, the optimum of the primal
  ``max_{||d - g_0|| <= c||g_0||} min_t g_t . d`` by root finding over least-distance problems
  (LibMTL and the original code run SLSQP on the dual, which stalls on spread scales).
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

#: The BLAS libraries loaded with numpy and scipy. T x T subproblems gain nothing from BLAS
#: threads and lose much to them on busy cores (an SLSQP CAGrad solve at T = 40: 390 ms with two
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

    Least distance via NNLS (Lawson & Hanson 1974, ch. 23) in unit-gradient coordinates
    ``x_t = w_t ||g_t|| / min_s ||g_s||``: ``u = argmin_{u >= 0} ||[R; a^T] u - e_{T+1}||`` for
    a factor ``R^T R = C`` of the cosine matrix and ``a_t = min_s ||g_s|| / ||g_t||``, then
    ``x = u / a^T u``. Solving on C rather than on G keeps the weights of tasks whose scales
    differ by many decades exact (on G, 25 decades of spread broke ``J d >= 0``). A zero task
    gradient makes 0 the min-norm point: its weight is 1 (shared among zero gradients).
    """
    g, scale = _normalised(np.asarray(gramian, dtype=np.float64))
    t = g.shape[0]
    if scale == 0 or t == 1:
        return np.full(t, 1.0 / t)
    norms = np.sqrt(np.clip(np.diag(g), 0, None))
    if np.any(norms == 0):
        return (norms == 0) / float(np.sum(norms == 0))
    if t == 2:  # each weight on its own: 1 - w0 would lose a weight far below w0 to rounding
        denom = g[0, 0] + g[1, 1] - 2 * g[0, 1]
        if denom <= 0:
            return np.array([0.5, 0.5])
        w = np.clip(np.array([g[1, 1] - g[0, 1], g[0, 0] - g[0, 1]]) / denom, 0.0, None)
        return w / w.sum()
    a = norms.min() / norms
    e = np.vstack([_factor(g / np.outer(norms, norms)), a[None, :]])
    f = np.zeros(t + 1)
    f[-1] = 1.0
    u, _ = scipy.optimize.nnls(e, f, maxiter=50 * t)
    total = float(a @ u)
    if not np.isfinite(total) or total <= 0:
        raise SolverError(f"MGDA min-norm solver failed (NNLS returned {u})")
    w = (u / total) * a
    return w / w.sum()


def least_distance(factor: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, float]:
    """``min ||z|| s.t. factor^T z >= h`` (Lawson & Hanson's LDP, ch. 23, by one NNLS).

    Returns ``(u, norm)``: the solution is ``z = factor @ u`` with multipliers ``u >= 0``
    (so ``e = J^T u`` in parameter space when ``factor^T factor = J J^T``), and its norm.
    Infeasible (no z) raises SolverError.
    """
    t = factor.shape[1]
    e = np.vstack([factor, h[None, :]])
    f = np.zeros(t + 1)
    f[-1] = 1.0
    u, _ = scipy.optimize.nnls(e, f, maxiter=50 * t)
    residual_last = float(h @ u) - 1.0
    if residual_last >= 0:
        raise SolverError("CAGrad's least-distance subproblem is infeasible")
    multipliers = -u / residual_last
    return multipliers, float(np.linalg.norm(factor @ multipliers))


def cagrad_weights(gramian: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """CAGrad's direction ``d = g_0 + r e``, ``r = c ||g_0||``, with ``||e|| <= 1`` maximising
    ``min_t g_t . d``, as ``(u, r)`` with ``e = J^T u`` (``u >= 0``, ``||J^T u|| = 1``).

    The dual ``min_{w in simplex} w^T G 1/T + r ||J^T w||`` that LibMTL hands to SLSQP becomes
    ill-conditioned when the task scales spread over decades (SLSQP then reports success at
    suboptimal points). Here the primal is solved instead: for a target value tau, the
    shortest e with ``g_t . (g_0 + r e) >= tau`` for all t is a least-distance problem (one
    NNLS on a T x T factor of G, :func:`least_distance`), its length grows with tau, and the
    optimal tau is the root of ``length(tau) = 1`` (Brent's method). The Gramian is divided by
    its largest diagonal entry first. Afterwards the duality gap between the primal value and
    the dual objective at ``w = u/sum(u)`` must vanish (to 1e-7 of the problem's scale), else
    SolverError.
    """
    g, scale = _normalised(np.asarray(gramian, dtype=np.float64))
    t = g.shape[0]
    v = g.mean(1)  # g_t . g_0
    g0_sq = float(v.mean())
    if scale == 0 or g0_sq <= 0 or c == 0:
        return np.zeros(t), 0.0
    r = c * np.sqrt(g0_sq)
    factor = _factor(g)
    norms = np.sqrt(np.clip(np.diag(g), 0, None))

    with _BLAS.limit(limits=1, user_api="blas"):
        u, length = _cagrad_root(factor, v, r, norms)
    if length > 0:
        u = u / length
    primal = float((v + r * (g @ u)).min())
    total = u.sum()
    w = u / total if total > 0 else np.full(t, 1.0 / t)
    dual = float(w @ v + r * np.sqrt(max(float(w @ g @ w), 0.0)))
    # an upper bound on the primal: the dual value, or min_t g_t . (g_0 + r g_t/||g_t||)
    bound = min(dual, float((v + r * norms).min()))
    if not (bound - primal <= 1e-7 * (abs(bound) + r * norms.max())):
        raise SolverError(
            f"CAGrad solve is not optimal: primal value {primal:.6g}, dual value {dual:.6g}"
        )
    return u / np.sqrt(scale), r * np.sqrt(scale)


def _cagrad_root(factor, v, r, norms) -> tuple[np.ndarray, float]:
    """The least-distance multipliers at the largest attainable ``tau`` (see cagrad_weights).

    Safeguarded Newton on ``length(tau) = 1``: on the active set S of the last solve,
    ``u_S = G_SS^+ (tau 1 - v_S) / r`` and ``length^2 = (tau 1 - v)^T G_SS^+ (tau 1 - v) / r^2``
    is a quadratic in tau whose root is the next iterate; bisection on the bracket otherwise.
    """
    g = factor.T @ factor

    def solve(tau: float) -> tuple[np.ndarray, float] | None:
        try:
            return least_distance(factor, (tau - v) / r)
        except SolverError:  # beyond the attainable values: no e at all
            return None

    low, high = float(v.min()), float((v + r * norms).min())
    found = solve(high)
    if found is not None and found[1] <= 1.0:
        return found
    best = (np.zeros_like(v), 0.0)  # at tau = low: e = 0
    tau = 0.5 * (low + high)
    tol = 1e-13 * max(1.0, abs(high), abs(low))
    for _ in range(100):
        found = solve(tau)
        if found is None or found[1] > 1.0:
            high = tau
        else:
            low, best = tau, found
        if high - low <= tol:
            return best
        nxt = 0.5 * (low + high)
        if found is not None:
            active = found[0] > 0
            p = np.linalg.pinv(g[np.ix_(active, active)], hermitian=True)
            va = v[active]
            qa, qb, qc = p.sum(), (p @ va).sum(), va @ p @ va - r**2
            disc = qb * qb - qa * qc
            if qa > 0 and disc >= 0:
                root = (qb + np.sqrt(disc)) / qa
                if low < root < high:
                    nxt = root
                elif abs(root - tau) <= tol:
                    return found
        tau = nxt
    return best


def nash_weights(gramian: np.ndarray, *, max_iter: int = 100, tol: float = 1e-6) -> np.ndarray:
    """The ``w > 0`` solving ``w ⊙ (G w) = 1`` (Nash-MTL's bargaining solution).

    Solved on the correlation matrix ``C = D^-1 G D^-1`` (``D = sqrt(diag G)``): if ``C v = 1/v``
    then ``w = D^-1 v``, which removes the tasks' scale spread from the Newton
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
            return v / d
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


def dual_cone_weights(gramian: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``argmin_{v >= u} v^T G v``: the weights of the projection of ``J^T u`` onto the dual
    cone ``{x : J x >= 0}`` (Quinton & Rey 2024, Prop. 1).

    Solved by one NNLS in unit-gradient coordinates ``y = D v`` (``D = diag ||g_t||``, ``C`` the
    cosine matrix, ``R^T R = C``): ``y = D u + x`` with ``x = argmin_{x >= 0} ||R x + R D u||``.
    Rows with a zero gradient keep ``v_t = u_t`` (they cost nothing).
    """
    g = np.asarray(gramian, dtype=np.float64)
    u = np.asarray(u, dtype=np.float64)
    norms = np.sqrt(np.clip(np.diag(g), 0, None))
    live = norms > 0
    v = u.copy()
    if not live.any():
        return v
    n = norms[live]
    factor = _factor(g[np.ix_(live, live)] / np.outer(n, n))
    b = n * u[live]
    x, _ = scipy.optimize.nnls(factor, -factor @ b, maxiter=50 * len(n))
    v[live] = (b + x) / n
    if not np.all(np.isfinite(v)):
        raise SolverError("dual-cone projection failed (NNLS returned non-finite weights)")
    return v


def power_weights(gramian: np.ndarray, alpha: float, *, max_iter: int = 100) -> np.ndarray:
    """FairGrad's ``w > 0`` with ``G w = w^(-1/alpha)`` (alpha-fair allocation).

    ``alpha = 1`` is Nash-MTL's equation (:func:`nash_weights`). Otherwise damped Newton on the
    convex ``f(w) = w^T A w / 2 - sum_t phi(w_t)``, ``phi' = w^(-1/alpha)``, for ``A = G/s``
    (``s`` the largest diagonal entry); then ``w = s^(-alpha/(1+alpha)) w_A``. No solution (a
    zero task gradient, 0 in the cone of the gradients) raises SolverError.
    """
    if alpha == 1:
        return nash_weights(gramian, max_iter=max_iter)
    g = np.asarray(gramian, dtype=np.float64)
    if not np.all(np.isfinite(g)) or np.any(np.diag(g) <= 0):
        raise SolverError("FairGrad is undefined when a task gradient is zero (or not finite)")
    s = float(np.max(np.diag(g)))
    a = g / s
    k = 1.0 / alpha
    power = 1.0 - k

    def f(x: np.ndarray) -> float:
        phi = np.log(x) if power == 0 else x**power / power
        return 0.5 * x @ a @ x - phi.sum()

    w = np.ones(a.shape[0]) / np.sqrt(max(float(a.sum()), 1e-12))
    for _ in range(max_iter):
        grad = a @ w - w ** (-k)
        hess = a + np.diag(k * w ** (-k - 1))
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            break
        decrement = float(grad @ step)
        if decrement < 1e-20:
            if np.linalg.norm(w ** (1 + k) * (a @ w) - w) <= 1e-6 * np.linalg.norm(w):
                return w * s ** (-alpha / (1 + alpha))
            break
        size, value = 1.0, f(w)
        while np.any(w - size * step <= 0) or f(w - size * step) > value - 0.25 * size * decrement:
            size /= 2
            if size < 1e-12:
                raise SolverError(
                    "FairGrad line search stalled: G w = w^(-1/alpha) has no solution"
                )
        w = w - size * step
        if w.max() > 1e12:
            break
    raise SolverError(
        "FairGrad found no w > 0 with G w = w^(-1/alpha) (for example, opposite task gradients)"
    )
