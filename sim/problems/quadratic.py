"""A smooth quadratic multi-task family with hard parameter sharing and a known Pareto front.

Task t has a design ``M_t = [A_t B_t]`` (n x (d + k)) and targets ``y_t``; its loss is

    L_t(phi, psi_t) = alpha_t / (2 n) * || A_t phi + B_t psi_t - y_t ||^2
                    = alpha_t * (theta_t^T H_t theta_t / 2 - c_t^T theta_t + e_t),

with ``theta_t = (phi, psi_t)``, shared parameters ``phi`` (dim d), a head ``psi_t`` (dim k) per
task, a constant loss scale ``alpha_t`` (``scales``) and the normal form ``H_t = M_t^T M_t / n``,
``c_t = M_t^T y_t / n``, ``e_t = ||y_t||^2 / (2 n)`` (:meth:`Quadratic.normal_form`). The design
has singular values spaced geometrically from 1 to ``1 / sqrt(condition)`` (times ``sqrt(n)``),
so ``H_t`` has eigenvalues from 1 down to ``1 / condition`` (see :meth:`Quadratic.make`).

Targets are ``M_t theta*_t + eps_t`` with per-sample noise ``eps_{t,i} ~ N(0, noise^2)``. The
noise is the source of inter-sample conflicts: the per-sample losses
``alpha_t / 2 (m_{t,i}^T theta_t - y_{t,i})^2`` have different minimisers, so their gradients
(:meth:`Quadratic.per_sample_gradients`) disagree even where the task's full-batch gradient
vanishes. By default ``theta*_t`` is standard normal and the noise also moves each task's
optimum away from it. With ``cosine`` (and ``magnitudes``) the tasks' optimal shared parameters
``phi*_t`` are planted exactly: pairwise cosine ``cosine`` and norms ``magnitudes``
(:func:`vectors_at_cosine`), and the noise is projected onto the orthogonal complement of the
design's column space, so the noise still separates the samples but leaves every task's
optimum at ``theta*_t`` (:meth:`Quadratic.task_optima`).

Pareto front: ``sum_t w_t L_t`` (w_t >= 0, not all 0) is a convex quadratic; eliminating the
heads (``psi_t = K_t^{-1} (c_t^psi - H_t^{psi phi} phi)``, the head's best response) leaves
``(sum_t w_t alpha_t S_t) phi = sum_t w_t alpha_t s_t`` with the Schur complements ``S_t``
(positive definite for a full-rank design), one d x d linear solve per weight vector
(:meth:`Quadratic.pareto_point`, :meth:`Quadratic.pareto_front`).
Everything is a deterministic function of ``seed``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from sim.problems import HardSharing, check_scales


def vectors_at_cosine(
    cosine: float, magnitudes: Sequence[float], dim: int, generator: torch.Generator
) -> torch.Tensor:
    """(T, dim) vectors with norms ``magnitudes`` (T of them) and pairwise cosine ``cosine``.

    Gram-Schmidt: a random orthonormal frame ``q_1..q_T`` (QR of a Gaussian dim x T matrix) and
    the lower-triangular ``L`` with ``L L^T = (1 - c) I + c 1 1^T`` give
    ``v_t = m_t sum_j L_tj q_j``, so ``<v_s, v_t> = m_s m_t c`` for s != t.
    Needs ``-1 / (T - 1) <= c <= 1`` and ``dim >= T``.
    """
    tasks = len(magnitudes)
    lowest = -1 / (tasks - 1) if tasks > 1 else -1.0
    if not lowest <= cosine <= 1:
        raise ValueError(
            f"cosine={cosine} is impossible for {tasks} vectors: it must lie in [{lowest:g}, 1]"
        )
    if not all(math.isfinite(m) and m >= 0 for m in magnitudes):
        raise ValueError(f"magnitudes must be finite numbers >= 0, got {list(magnitudes)}")
    if dim < tasks:
        raise ValueError(f"dim={dim} < {tasks} vectors: raise the dimension (shared_dim)")
    q, _ = torch.linalg.qr(torch.randn(dim, tasks, generator=generator, dtype=torch.float64))
    gram = [[1.0 if s == t else cosine for t in range(tasks)] for s in range(tasks)]
    low = [[0.0] * tasks for _ in range(tasks)]
    for j in range(tasks):  # Cholesky of a positive semidefinite matrix; zero pivots stay zero
        low[j][j] = math.sqrt(max(gram[j][j] - sum(low[j][i] ** 2 for i in range(j)), 0.0))
        for s in range(j + 1, tasks):
            dot = gram[s][j] - sum(low[s][i] * low[j][i] for i in range(j))
            low[s][j] = dot / low[j][j] if low[j][j] > 1e-12 else 0.0
    rows = []
    for t in range(tasks):
        v = low[t][0] * q[:, 0]
        for j in range(1, t + 1):
            v = v + low[t][j] * q[:, j]
        rows.append(magnitudes[t] * v)
    return torch.stack(rows)


@dataclass(frozen=True)
class ParetoFront:
    """Minimisers of ``sum_t w_t L_t`` for W weight vectors: ``weights`` (W, T), ``phi`` (W, d),
    ``psi`` (W, T, k) and the scaled ``losses`` (W, T) there."""

    weights: torch.Tensor
    phi: torch.Tensor
    psi: torch.Tensor
    losses: torch.Tensor

    def flat(self) -> torch.Tensor:
        """(W, d + T k) parameters in the order ``(phi, psi_1, ..., psi_T)``."""
        return torch.cat([self.phi, self.psi.flatten(1)], dim=1)


class Quadratic(HardSharing):
    """Per-task losses ``scales_t / (2 n) ||A_t phi + B_t psi_t - y_t||^2`` (see the module)."""

    def __init__(
        self,
        A: torch.Tensor,
        B: torch.Tensor,
        y: torch.Tensor,
        phi: torch.Tensor,
        psi: torch.Tensor,
        scales: Sequence[float] | torch.Tensor | None = None,
    ):
        """``A``: (T, n, d), ``B``: (T, n, k), ``y``: (T, n), ``phi``: (d,), ``psi``: (T, k)."""
        super().__init__()
        tasks, n, d = A.shape
        k = B.shape[2]
        if B.shape[:2] != (tasks, n) or y.shape != (tasks, n):
            raise ValueError(
                f"shapes disagree: A {tuple(A.shape)}, B {tuple(B.shape)}, y {tuple(y.shape)}; "
                "expected A (T, n, d), B (T, n, k), y (T, n)"
            )
        if phi.shape != (d,) or psi.shape != (tasks, k):
            raise ValueError(f"phi must have shape ({d},) and psi ({tasks}, {k})")
        self.register_buffer("A", A)
        self.register_buffer("B", B)
        self.register_buffer("y", y)
        self.register_buffer("scales", check_scales(scales, tasks, A.dtype))
        self.shared = nn.ParameterList([nn.Parameter(phi.clone())])
        self.heads = nn.ModuleList(nn.ParameterList([nn.Parameter(p.clone())]) for p in psi)

    @classmethod
    def make(
        cls,
        tasks: int = 2,
        shared_dim: int = 4,
        head_dim: int = 3,
        samples: int = 16,
        condition: float = 10.0,
        noise: float = 0.5,
        scales: Sequence[float] | None = None,
        seed: int = 0,
        dtype: torch.dtype = torch.float64,
        cosine: float | None = None,
        magnitudes: Sequence[float] | None = None,
    ) -> Quadratic:
        """A random instance; ``samples >= shared_dim + head_dim`` keeps every design full rank.

        ``[A_t B_t] = sqrt(n) U_t diag(s) V_t^T`` with orthonormal ``U_t``, ``V_t`` and
        ``s_i = condition^(-i / (2 (r - 1)))``, so ``[A_t B_t]^T [A_t B_t] / n`` has eigenvalues
        from 1 down to ``1 / condition``. Initial parameters are standard normal.

        ``cosine`` plants the tasks' optimal shared parameters at that pairwise cosine, with
        norms ``magnitudes`` (ones by default; needs ``shared_dim >= tasks``), and removes the
        noise's component in the span of ``U_t`` (its per-sample variance becomes
        ``noise^2 (n - d - k) / n`` on average). The design, head optima and initial parameters
        are those of the instance without ``cosine`` (same seed).
        """
        width = shared_dim + head_dim
        if tasks < 1 or shared_dim < 1 or head_dim < 1:
            raise ValueError("tasks, shared_dim and head_dim must be >= 1")
        if samples < width:
            raise ValueError(
                f"samples={samples} < shared_dim + head_dim = {width}: "
                "the design would be rank deficient; raise samples"
            )
        if condition < 1:
            raise ValueError(f"condition={condition} must be >= 1")
        if noise < 0:
            raise ValueError(f"noise={noise} must be >= 0")
        if magnitudes is not None and cosine is None:
            raise ValueError("magnitudes plant the optima together with cosine: pass cosine too")
        if magnitudes is not None and len(magnitudes) != tasks:
            raise ValueError(f"magnitudes needs one norm per task ({tasks}), got {magnitudes}")
        gen = torch.Generator().manual_seed(seed)
        exponents = torch.arange(width, dtype=torch.float64) / max(width - 1, 1)
        s = condition ** (-exponents / 2)
        bases, designs, optima, noises = [], [], [], []
        for _ in range(tasks):
            u, _ = torch.linalg.qr(torch.randn(samples, width, generator=gen, dtype=torch.float64))
            v, _ = torch.linalg.qr(torch.randn(width, width, generator=gen, dtype=torch.float64))
            bases.append(u)
            designs.append(math.sqrt(samples) * (u * s) @ v.T)
            optima.append(torch.randn(width, generator=gen, dtype=torch.float64))
            noises.append(noise * torch.randn(samples, generator=gen, dtype=torch.float64))
        phi = torch.randn(shared_dim, generator=gen, dtype=torch.float64)
        psi = torch.randn(tasks, head_dim, generator=gen, dtype=torch.float64)
        if cosine is not None:
            norms = [1.0] * tasks if magnitudes is None else [float(m) for m in magnitudes]
            planted = vectors_at_cosine(float(cosine), norms, shared_dim, gen)
            for t in range(tasks):
                optima[t] = torch.cat([planted[t], optima[t][shared_dim:]])
                noises[t] = noises[t] - bases[t] @ (bases[t].T @ noises[t])
        design = torch.stack(designs)
        targets = [m @ o + e for m, o, e in zip(designs, optima, noises, strict=True)]
        return cls(
            design[:, :, :shared_dim].to(dtype),
            design[:, :, shared_dim:].to(dtype),
            torch.stack(targets).to(dtype),
            phi.to(dtype),
            psi.to(dtype),
            scales,
        )

    @property
    def phi(self) -> nn.Parameter:
        """The shared parameters."""
        return self.shared[0]

    def psi(self, task: int) -> nn.Parameter:
        """The head of task ``task``."""
        return self.heads[task][0]

    @property
    def shared_dim(self) -> int:
        """d, the number of shared parameters."""
        return self.A.shape[2]

    def residuals(self, batch: torch.Tensor | None = None) -> torch.Tensor:
        """``A_t phi + B_t psi_t - y_t`` for every task, shape (T, n) (or (T, len(batch)))."""
        psi = torch.stack([self.psi(t) for t in range(self.tasks)])
        A, B, y = self.A, self.B, self.y
        if batch is not None:
            A, B, y = A[:, batch], B[:, batch], y[:, batch]
        return A @ self.phi + torch.einsum("tnk,tk->tn", B, psi) - y

    def losses(self, batch: torch.Tensor | None = None) -> torch.Tensor:
        r = self.residuals(batch)
        return self.scales * 0.5 * (r**2).mean(dim=1)

    def losses_at(self, phi: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        """Scaled losses (..., T) at parameters ``phi`` (..., d) and ``psi`` (..., T, k)."""
        r = (
            torch.einsum("tnd,...d->...tn", self.A, phi)
            + torch.einsum("tnk,...tk->...tn", self.B, psi)
            - self.y
        )
        return self.scales * 0.5 * (r**2).mean(dim=-1)

    def gradients(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Closed-form full-batch gradients of the scaled losses: ``dL_t/dphi`` (T, d) and
        ``dL_t/dpsi_t`` (T, k), i.e. ``scales_t / n [A_t B_t]^T r_t``."""
        with torch.no_grad():
            r = self.residuals() * (self.scales / self.y.shape[1])[:, None]
            return torch.einsum("tnd,tn->td", self.A, r), torch.einsum("tnk,tn->tk", self.B, r)

    def per_sample_gradients(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Gradients of the per-sample losses ``scales_t / 2 r_{t,i}^2``: ``scales_t r_{t,i}
        a_{t,i}`` (T, n, d) and ``scales_t r_{t,i} b_{t,i}`` (T, n, k); their means over the
        samples are :meth:`gradients`."""
        with torch.no_grad():
            r = self.residuals() * self.scales[:, None]
            return self.A * r[..., None], self.B * r[..., None]

    def normal_form(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Unscaled ``H`` (T, d+k, d+k), ``c`` (T, d+k), ``e`` (T,) with
        ``L_t / scales_t = theta_t^T H_t theta_t / 2 - c_t^T theta_t + e_t``."""
        M = torch.cat([self.A, self.B], dim=2)
        n = self.y.shape[1]
        H = torch.einsum("tni,tnj->tij", M, M) / n
        return H, torch.einsum("tni,tn->ti", M, self.y) / n, (self.y**2).sum(1) / (2 * n)

    def task_optima(self) -> torch.Tensor:
        """(T, d + k): the minimiser ``(phi, psi_t)`` of each task's own loss (least squares)."""
        H, c, _ = self.normal_form()
        return torch.linalg.solve(H, c)

    def _head_elimination(self) -> tuple[torch.Tensor, ...]:
        """Schur complements ``S`` (T, d, d), ``s`` (T, d) and the heads' best responses
        ``psi_t(phi) = k_t - K_t phi`` as ``K`` (T, k, d), ``k`` (T, k)."""
        H, c, _ = self.normal_form()
        d = self.shared_dim
        Hpp, Hph, Hhh = H[:, :d, :d], H[:, :d, d:], H[:, d:, d:]
        K = torch.linalg.solve(Hhh, H[:, d:, :d])
        k = torch.linalg.solve(Hhh, c[:, d:])
        return Hpp - Hph @ K, c[:, :d] - torch.einsum("tij,tj->ti", Hph, k), K, k

    def pareto_point(
        self, weights: Sequence[float] | torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The exact minimiser ``(phi (..., d), psi (..., T, k))`` of ``sum_t w_t L_t`` for
        weights (..., T), ``w_t >= 0`` and not all zero (a task with weight 0 keeps its head's
        best response)."""
        w = torch.as_tensor(weights, dtype=self.A.dtype)
        if w.ndim < 1 or w.shape[-1] != self.tasks:
            raise ValueError(f"weights must have shape (..., {self.tasks}), got {tuple(w.shape)}")
        if not bool(torch.isfinite(w).all() & (w >= 0).all() & (w.sum(-1) > 0).all()):
            raise ValueError("weights must be finite, >= 0 and not all zero for each point")
        S, s, K, k = self._head_elimination()
        a = w * self.scales
        phi = torch.linalg.solve(
            torch.einsum("...t,tij->...ij", a, S), torch.einsum("...t,ti->...i", a, s)
        )
        return phi, k - torch.einsum("tkd,...d->...tk", K, phi)

    def pareto_front(self, weights: int | Sequence[float] | torch.Tensor = 101) -> ParetoFront:
        """Two tasks: minimisers of ``w L_1 + (1 - w) L_2`` for first-task weights ``w`` in
        [0, 1] (a tensor or list), or for ``n`` weights ``sigmoid(linspace(-10, 10, n))`` (an
        int: dense near both ends of the front)."""
        if self.tasks != 2:
            raise ValueError(
                f"pareto_front is for 2 tasks (this problem has {self.tasks}); "
                "use pareto_point with weight vectors"
            )
        if isinstance(weights, int):
            if weights < 2:
                raise ValueError(f"need at least 2 points on the front, got {weights}")
            w = torch.sigmoid(torch.linspace(-10, 10, weights, dtype=self.A.dtype))
        else:
            w = torch.as_tensor(weights, dtype=self.A.dtype)
        if w.ndim != 1 or not bool(((w >= 0) & (w <= 1)).all()):
            raise ValueError("first-task weights must be a 1-D list of numbers in [0, 1]")
        both = torch.stack([w, 1 - w], dim=1)
        phi, psi = self.pareto_point(both)
        with torch.no_grad():
            return ParetoFront(both, phi, psi, self.losses_at(phi, psi))


__all__ = ["ParetoFront", "Quadratic", "vectors_at_cosine"]
