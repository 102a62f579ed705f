"""A smooth quadratic multi-task family with hard parameter sharing.

Task t has a design ``[A_t B_t]`` (n x (d + k)) and targets ``y_t``; its loss is

    L_t(phi, psi_t) = alpha_t / (2 n) * || A_t phi + B_t psi_t - y_t ||^2,

with shared parameters ``phi`` (dim d), a head ``psi_t`` (dim k) per task and a constant loss
scale ``alpha_t`` (``scales``). The design has singular values spaced geometrically from 1 to
``1 / sqrt(condition)`` (times ``sqrt(n)``), so the Hessian of one unscaled task loss in
``(phi, psi_t)``, ``[A_t B_t]^T [A_t B_t] / n``, has eigenvalues from 1 down to
``1 / condition`` (see :meth:`Quadratic.make`).
Targets are ``[A_t B_t] theta*_t + noise`` for a random
optimum ``theta*_t``, so ``noise`` controls how much the tasks conflict in ``phi``.
Everything is a deterministic function of ``seed``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from sim.problems import HardSharing, check_scales


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
    ) -> Quadratic:
        """A random instance; ``samples >= shared_dim + head_dim`` keeps every design full rank.

        ``[A_t B_t] = sqrt(n) U_t diag(s) V_t^T`` with orthonormal ``U_t``, ``V_t`` and
        ``s_i = condition^(-i / (2 (r - 1)))``, so ``[A_t B_t]^T [A_t B_t] / n`` has eigenvalues
        from 1 down to ``1 / condition``. Initial parameters are standard normal.
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
        gen = torch.Generator().manual_seed(seed)
        exponents = torch.arange(width, dtype=torch.float64) / max(width - 1, 1)
        s = condition ** (-exponents / 2)
        designs, targets = [], []
        for _ in range(tasks):
            u, _ = torch.linalg.qr(torch.randn(samples, width, generator=gen, dtype=torch.float64))
            v, _ = torch.linalg.qr(torch.randn(width, width, generator=gen, dtype=torch.float64))
            design = math.sqrt(samples) * (u * s) @ v.T
            optimum = torch.randn(width, generator=gen, dtype=torch.float64)
            eps = noise * torch.randn(samples, generator=gen, dtype=torch.float64)
            designs.append(design)
            targets.append(design @ optimum + eps)
        design = torch.stack(designs)
        phi = torch.randn(shared_dim, generator=gen, dtype=torch.float64)
        psi = torch.randn(tasks, head_dim, generator=gen, dtype=torch.float64)
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

    def gradients(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Closed-form full-batch gradients of the scaled losses: ``dL_t/dphi`` (T, d) and
        ``dL_t/dpsi_t`` (T, k), i.e. ``scales_t / n [A_t B_t]^T r_t``."""
        with torch.no_grad():
            r = self.residuals() * (self.scales / self.y.shape[1])[:, None]
            return torch.einsum("tnd,tn->td", self.A, r), torch.einsum("tnk,tn->tk", self.B, r)


__all__ = ["Quadratic"]
