"""Gradient aggregators: a (..., T, P) task Jacobian to a (..., P) shared direction.

Scale conventions (``g_t`` the rows of J, ``G = J J^T``), all as in LibMTL 1.1.5:

* ``pcgrad``, ``gradvac``, ``graddrop``, ``mgda``, ``aligned-mtl``, ``nash-mtl``: sums of the
  (modified or weighted) task gradients, see each class;
* ``cagrad`` is built on the *mean* ``g_0`` and divides by ``1 + c^2`` (``rescale=1``);
* ``imtl-g`` has weights summing to one.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from mtl.methods.base import Aggregator, rowwise
from mtl.methods.registry import register
from mtl.methods.solvers import cagrad_weights, min_norm_weights, nash_weights


def _gramian_np(jacobian: Tensor) -> np.ndarray:
    j = jacobian.detach().to(torch.float64)
    return (j @ j.T).cpu().numpy()


def _combine(weights: np.ndarray, jacobian: Tensor) -> tuple[Tensor, Tensor]:
    w = torch.as_tensor(weights, dtype=jacobian.dtype, device=jacobian.device)
    return w @ jacobian, w


def _permutation(t: int, generator: torch.Generator | None) -> list[int]:
    return torch.randperm(t, generator=generator).tolist()


@register("pcgrad")
class PCGrad(Aggregator):
    """PCGrad (Yu et al. 2020), LibMTL form: for each task i, in a random order of tasks j,
    ``g_i <- g_i - min(0, g_i . g_j) g_j / ||g_j||^2`` with the *original* g_j; ``d = sum_i g_i``.
    Zero task gradients are skipped (LibMTL would divide by zero). Random: ``generator=``.
    """

    def aggregate(self, jacobian: Tensor, generator: torch.Generator | None) -> Tensor:
        def one(j: Tensor) -> tuple[Tensor, Tensor]:
            t = j.shape[0]
            # The T^2 steps run on float64 numpy scalars: as tiny tensor ops they took 8x longer
            # (23 ms against 3 ms at T = 40).
            gram = (j @ j.T).detach().cpu().double().numpy()
            coef = np.eye(t)  # row i: g_i^pc = coef[i] @ j
            for i in range(t):
                for k in _permutation(t, generator):
                    dot = coef[i] @ gram[:, k]
                    if dot < 0 and gram[k, k] > 0:
                        coef[i, k] -= dot / gram[k, k]
            return _combine(coef.sum(0), j)

        direction, self.last_weights = rowwise(one, jacobian)
        return direction


@register("cagrad")
class CAGrad(Aggregator):
    """CAGrad (Liu et al. 2021), LibMTL form with ``c = 0.5``, ``rescale = 1``:
    ``w = argmin_{simplex} w^T G 1/T + c||g_0|| ||J^T w||``, ``g_w = J^T w``,
    ``d = (g_0 + c||g_0|| g_w / ||g_w||) / (1 + c^2)`` with ``g_0`` the *mean* gradient
    (``rescale`` 0: no division, 2: ``/(1 + c)``). Solver failure raises SolverError.
    """

    defaults: ClassVar[dict[str, Any]] = {"c": 0.5, "rescale": 1}

    def __init__(self, **hp: Any) -> None:
        super().__init__(**hp)
        if self.hp["rescale"] not in (0, 1, 2):
            raise ValueError(f"cagrad: rescale must be 0, 1 or 2, got {self.hp['rescale']!r}")
        if self.hp["c"] < 0:
            raise ValueError(f"cagrad: c must be >= 0, got {self.hp['c']!r}")

    def aggregate(self, jacobian: Tensor, generator: torch.Generator | None) -> Tensor:
        c, rescale = float(self.hp["c"]), self.hp["rescale"]

        def one(j: Tensor) -> tuple[Tensor, Tensor]:
            t = j.shape[0]
            gram = _gramian_np(j)
            w = cagrad_weights(gram, c)
            g0_norm = float(np.sqrt(max(gram.mean(), 0.0)))
            gw_norm = float(np.sqrt(max(w @ gram @ w, 0.0)))
            lam = c * g0_norm / gw_norm if gw_norm > 0 else 0.0
            total = np.full(t, 1.0 / t) + lam * w
            total = total / {0: 1.0, 1: 1.0 + c**2, 2: 1.0 + c}[rescale]
            return _combine(total, j)

        direction, self.last_weights = rowwise(one, jacobian)
        return direction


@register("imtl-g")
class IMTLG(Aggregator):
    """IMTL-G (Liu et al. 2021): ``d = sum_t a_t g_t`` with ``sum_t a_t = 1`` and equal
    projections ``d . u_t`` on the unit vectors ``u_t = g_t/||g_t||``:
    ``a_{2:T} = g_1 U^T (D U^T)^+`` with ``D = g_1 - g_{2:T}``, ``U = u_1 - u_{2:T}``.
    LibMTL inverts ``D U^T``; here the pseudo-inverse keeps collinear and rank-deficient inputs
    finite (it equals the inverse where that exists). A zero gradient has ``u_t = 0``.
    """

    def aggregate(self, jacobian: Tensor, generator: torch.Generator | None) -> Tensor:
        norms = jacobian.norm(dim=-1, keepdim=True)
        units = torch.where(norms > 0, jacobian / torch.where(norms > 0, norms, 1), 0)
        d = jacobian[..., :1, :] - jacobian[..., 1:, :]
        u = units[..., :1, :] - units[..., 1:, :]
        rhs = jacobian[..., :1, :] @ u.transpose(-1, -2)  # (..., 1, T-1)
        alpha = rhs @ torch.linalg.pinv(d @ u.transpose(-1, -2))
        alpha = alpha.squeeze(-2)
        weights = torch.cat([1 - alpha.sum(-1, keepdim=True), alpha], dim=-1)
        self.last_weights = weights
        return (weights.unsqueeze(-2) @ jacobian).squeeze(-2)


@register("mgda")
class MGDA(Aggregator):
    """MGDA (Sener & Koltun 2018): ``d = J^T w`` for the min-norm point of conv{g_t / n_t}
    (``w`` on the simplex, so ``d`` is a convex combination), normalisers ``n_t = 1`` (LibMTL's
    ``mgda_gn='none'``) or ``||g_t||`` (``'l2'``). Non-conflicting: ``J d >= ||d||^2 n``.
    """

    defaults: ClassVar[dict[str, Any]] = {"gn": "none"}

    def __init__(self, **hp: Any) -> None:
        super().__init__(**hp)
        if self.hp["gn"] not in ("none", "l2"):
            raise ValueError(f"{self.name}: gn must be 'none' or 'l2', got {self.hp['gn']!r}")

    def aggregate(self, jacobian: Tensor, generator: torch.Generator | None) -> Tensor:
        def one(j: Tensor) -> tuple[Tensor, Tensor]:
            if self.hp["gn"] == "l2":
                n = j.norm(dim=-1, keepdim=True)
                j = torch.where(n > 0, j / torch.where(n > 0, n, 1), 0)
            return _combine(min_norm_weights(_gramian_np(j)), j)

        direction, self.last_weights = rowwise(one, jacobian)
        return direction


@register("mgda-ub")
class MGDAUB(MGDA):
    """MGDA-UB: MGDA on the gradients w.r.t. the shared representation (LibMTL's MGDA with
    ``rep_grad=True``). Contract: :func:`mtl.backward` takes the (T, R) Jacobian of the losses
    w.r.t. ``representation`` (R = all its elements, batch included), computes MGDA's weights
    ``w`` there, and backpropagates ``sum_t w_t dL_t/d rep`` into the shared parameters.
    """

    gradient_of: ClassVar[str] = "representation"


@register("aligned-mtl")
class AlignedMTL(Aggregator):
    """Aligned-MTL (Senushkin et al. 2023), LibMTL form: eigendecompose ``G = V L V^T``, keep
    the eigenvalues above ``max(L) T eps`` (eps of the dtype), ``B = sqrt(l_min) V L^{-1/2} V^T``,
    weights ``w = B^T 1``, ``d = J^T w`` (a sum convention). All-zero J gives d = 0.
    """

    def aggregate(self, jacobian: Tensor, generator: torch.Generator | None) -> Tensor:
        def one(j: Tensor) -> tuple[Tensor, Tensor]:
            t = j.shape[0]
            gram = j @ j.T
            vals, vecs = torch.linalg.eigh(gram)
            tol = vals.max() * t * torch.finfo(j.dtype).eps
            keep = vals > tol
            if not bool(keep.any()):
                weights = torch.zeros(t, dtype=j.dtype, device=j.device)
                return weights @ j, weights
            vals, vecs = vals[keep], vecs[:, keep]
            b = vals.min().sqrt() * (vecs / vals.sqrt()) @ vecs.T
            weights = b.sum(0)
            return weights @ j, weights

        direction, self.last_weights = rowwise(one, jacobian)
        return direction


@register("nash-mtl")
class NashMTL(Aggregator):
    """Nash-MTL (Navon et al. 2022): ``d = J^T w`` with ``w > 0`` solving ``N w = 1/w`` for the
    Gramian normalised by its Frobenius norm, ``N = G/||G||_F`` (as LibMTL). Solved exactly by
    Newton's method (:func:`~mtl.methods.solvers.nash_weights`), not by cvxpy's CCCP sequence;
    no solution (e.g. opposite gradients) raises SolverError instead of LibMTL's silent reuse of
    the previous weights. ``update_weights_every`` reuses the weights between solves (state).
    Gradient clipping (LibMTL's ``max_norm=1``) is :func:`mtl.backward`'s explicit option.
    """

    defaults: ClassVar[dict[str, Any]] = {"update_weights_every": 1, "max_iter": 100}

    def __init__(self, **hp: Any) -> None:
        super().__init__(**hp)
        self.steps = 0
        self._weights: np.ndarray | None = None
        self.stateful = self.hp["update_weights_every"] > 1

    def aggregate(self, jacobian: Tensor, generator: torch.Generator | None) -> Tensor:
        if jacobian.dim() > 2 and self.stateful:
            raise ValueError("nash-mtl with update_weights_every > 1 takes one (T, P) Jacobian")

        def one(j: Tensor) -> tuple[Tensor, Tensor]:
            if self._weights is None or self.steps % self.hp["update_weights_every"] == 0:
                self._weights = nash_weights(_gramian_np(j), max_iter=self.hp["max_iter"])
            return _combine(self._weights, j)

        direction, self.last_weights = rowwise(one, jacobian)
        self.steps += 1
        return direction


@register("graddrop")
class GradDrop(Aggregator):
    """GradDrop (Chen et al. 2020), LibMTL form with ``leak = 0``: per coordinate, the sign
    purity ``P = (1 + sum_t g_t / sum_t |g_t|)/2``; with ``U ~ Uniform(0, 1)`` keep the positive
    entries where ``P > U`` and the negative ones where ``P < U``; ``d = sum_t (leak + (1 - leak)
    M_t) g_t``. LibMTL applies it to the gradients w.r.t. the representation (per element, batch
    included): that is what :func:`mtl.backward` passes. Random: ``generator=``.
    """

    defaults: ClassVar[dict[str, Any]] = {"leak": 0.0}
    gradient_of: ClassVar[str] = "representation"

    def aggregate(self, jacobian: Tensor, generator: torch.Generator | None) -> Tensor:
        leak = float(self.hp["leak"])
        total = jacobian.abs().sum(-2)
        purity = 0.5 * (1 + jacobian.sum(-2) / torch.where(total > 0, total, 1))
        u = torch.rand(purity.shape, generator=generator, dtype=jacobian.dtype).to(jacobian.device)
        keep = (purity > u).unsqueeze(-2) & (jacobian > 0) | (purity < u).unsqueeze(-2) & (
            jacobian < 0
        )
        self.last_weights = None
        return (jacobian * (leak + (1 - leak) * keep.to(jacobian.dtype))).sum(-2)


@register("gradvac")
class GradVac(Aggregator):
    """Gradient Vaccine (Wang et al. 2021), LibMTL form (``beta = 0.5``, whole model): for each
    task i and, in random order, each j != i with ``rho_ij = cos(g_i^pc, g_j) < phi_ij``:
    ``g_i^pc += g_j ||g_i^pc|| (phi sqrt(1 - rho^2) - rho sqrt(1 - phi^2)) /
    (||g_j|| sqrt(1 - phi^2))``; then ``phi_ij <- (1 - beta) phi_ij + beta rho_ij`` (EMA state,
    starting at 0, where the first step is PCGrad). ``d = sum_i g_i^pc``. One (T, P) at a time.
    """

    defaults: ClassVar[dict[str, Any]] = {"beta": 0.5}
    stateful: ClassVar[bool] = True

    def __init__(self, **hp: Any) -> None:
        super().__init__(**hp)
        self.targets: Tensor | None = None

    def reset(self) -> None:
        """Forget the EMA of the pairwise cosines."""
        self.targets = None

    def aggregate(self, jacobian: Tensor, generator: torch.Generator | None) -> Tensor:
        if jacobian.dim() != 2:
            raise ValueError("gradvac is stateful: pass one (T, P) Jacobian per step")
        t, beta = jacobian.shape[0], float(self.hp["beta"])
        if self.targets is None or self.targets.shape[0] != t:
            self.targets = torch.zeros(t, t, dtype=jacobian.dtype, device=jacobian.device)
        # In Gramian space (g_i^pc = coef[i] @ J, so every dot product is coef[i] @ G @ ...):
        # T^2 steps on T-vectors instead of on P-vectors (7x faster at T = 40, P = 7000).
        phi = self.targets.detach().cpu().double().numpy().copy()
        gram = _gramian_np(jacobian)
        norms = np.sqrt(np.clip(np.diag(gram), 0.0, None))
        coef = np.eye(t)
        for i in range(t):
            for k in _permutation(t, generator):
                if k == i:
                    continue
                pc_norm = float(np.sqrt(max(coef[i] @ gram @ coef[i], 0.0)))
                if pc_norm == 0 or norms[k] == 0:
                    continue
                rho = float(np.clip((coef[i] @ gram[:, k]) / (pc_norm * norms[k]), -1.0, 1.0))
                if rho < phi[i, k]:
                    coef[i, k] += (
                        pc_norm
                        * (phi[i, k] * np.sqrt(1 - rho**2) - rho * np.sqrt(1 - phi[i, k] ** 2))
                        / (norms[k] * np.sqrt(1 - phi[i, k] ** 2))
                    )
                phi[i, k] = (1 - beta) * phi[i, k] + beta * rho
        self.targets = torch.as_tensor(phi, dtype=self.targets.dtype, device=jacobian.device)
        direction, self.last_weights = _combine(coef.sum(0), jacobian)
        return direction
