"""Aggregators that set task weights from gradient magnitudes or risks: FairGrad, ExcessMTL,
GradNorm. Each returns ``d = sum_t w_t g_t``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from mtl.methods.aggregators import _combine, _gramian_np
from mtl.methods.base import Aggregator, check_finite, check_tasks, task_count
from mtl.methods.registry import register
from mtl.methods.solvers import power_weights


@register("fairgrad")
class FairGrad(Aggregator):
    """FairGrad (Ban & Ji 2024): ``w > 0`` with ``G w = w^(-1/alpha)``, the alpha-fair
    allocation; alpha = 1 (LibMTL's default) is Nash-MTL's ``w ⊙ G w = 1``. Solved exactly by
    Newton's method (:func:`~mtl.methods.solvers.power_weights`) where LibMTL and TorchJD run
    ``scipy.optimize.least_squares`` from 1/T; no solution raises SolverError.
    """

    defaults: ClassVar[dict[str, Any]] = {"alpha": 1.0}

    def __init__(self, **hp: Any) -> None:
        super().__init__(**hp)
        if not self.hp["alpha"] > 0:
            raise ValueError(f"fairgrad: alpha must be > 0, got {self.hp['alpha']!r}")

    def aggregate(self, jacobian: Tensor, generator: torch.Generator | None) -> Tensor:
        if jacobian.dim() != 2:
            raise ValueError("fairgrad takes one (T, P) Jacobian")
        weights = power_weights(_gramian_np(jacobian), float(self.hp["alpha"]))
        direction, self.last_weights = _combine(weights, jacobian)
        return direction


@register("excessmtl")
class ExcessMTL(Aggregator):
    """ExcessMTL (He et al. 2024), the authors' and LibMTL's form: with the running sum of
    squared gradients ``S <- S + J ⊙ J``, the excess-risk estimate ``r_t = sum_p J_tp^2 /
    sqrt(S_tp + 1e-7)``; the first step stores ``r^0 = r`` and keeps ``w = 1``; later steps
    ``w <- w exp(eta r / r^0)``, rescaled to ``sum_t w_t = T`` (eta = ``robust_step_size`` =
    1e-2, LibMTL). TorchJD starts from 1/T, updates at the first step too and defaults eta to 1.
    A task with ``r^0 = 0`` (a zero first gradient) keeps its weight instead of dividing by 0.
    """

    defaults: ClassVar[dict[str, Any]] = {"robust_step_size": 1e-2}
    stateful: ClassVar[bool] = True

    def __init__(self, **hp: Any) -> None:
        super().__init__(**hp)
        self.squares: Tensor | None = None
        self.initial: Tensor | None = None
        self.weights: Tensor | None = None

    def aggregate(self, jacobian: Tensor, generator: torch.Generator | None) -> Tensor:
        if jacobian.dim() != 2:
            raise ValueError("excessmtl is stateful: pass one (T, P) Jacobian per step")
        j = jacobian.detach()
        if self.squares is None:
            self.squares = torch.zeros_like(j)
            self.weights = torch.ones(j.shape[0], dtype=j.dtype, device=j.device)
        check_tasks(self.squares.shape[0], j.shape[0], self.name)
        self.squares = self.squares + j * j
        risk = (j * j / torch.sqrt(self.squares + 1e-7)).sum(1)
        if self.initial is None:
            self.initial = risk
        else:
            ratio = torch.where(self.initial > 0, risk / self.initial, 0)
            w = self.weights * torch.exp(self.hp["robust_step_size"] * ratio)
            self.weights = w / w.sum() * w.shape[0]
        self.last_weights = self.weights
        return self.weights @ jacobian


@register("gradnorm")
class GradNorm(Aggregator):
    """GradNorm (Chen et al. 2018), ``alpha = 1.5``: weights ``w = T softmax(s)`` (LibMTL's
    parametrisation, ``s`` an ``nn.Parameter`` from 0 learned by the training optimizer: add
    ``method.parameters()``), ``d = sum_t w_t g_t``. Each step writes into ``s.grad`` the
    gradient of ``sum_t |w_t ||g_t|| - sg[mean_s(w_s ||g_s||) r_t^alpha]|`` with the inverse
    training rates ``r_t = (L_t/L_t(0)) / mean_s(L_s/L_s(0))``. As the paper, ``L(0)`` are the
    losses of the first step (LibMTL: the mean losses of a first epoch trained with EW); the
    norms are those of the gradients handed over (all shared parameters, as LibMTL, or the last
    shared layer, the paper's cheaper choice, when ``shared=[...]`` is that layer). Needs
    ``tasks`` (its parameter must reach the optimizer) and the losses (:func:`mtl.backward`).
    """

    defaults: ClassVar[dict[str, Any]] = {"tasks": None, "alpha": 1.5}
    stateful: ClassVar[bool] = True
    observes_losses: ClassVar[bool] = True

    def __init__(self, **hp: Any) -> None:
        super().__init__(**hp)
        self.logits = torch.nn.Parameter(torch.zeros(task_count(self.hp, self.name)))
        self.initial_losses: Tensor | None = None
        self._losses: Tensor | None = None

    def observe(self, losses: Tensor) -> None:
        check_finite(losses.detach(), self.name, "loss")
        self._losses = losses.detach().to(torch.float64)
        if self.initial_losses is None:
            if bool((self._losses <= 0).any()):
                raise ValueError("gradnorm divides by the first losses: every L_t(0) must be > 0")
            self.initial_losses = self._losses

    def aggregate(self, jacobian: Tensor, generator: torch.Generator | None) -> Tensor:
        if jacobian.dim() != 2:
            raise ValueError("gradnorm is stateful: pass one (T, P) Jacobian per step")
        if self._losses is None:
            raise ValueError("gradnorm needs the losses: call observe(losses) first")
        t = check_tasks(self.logits.shape[0], jacobian.shape[0], self.name)
        norms = jacobian.detach().to(torch.float64).norm(dim=1)
        ratio = self._losses / self.initial_losses
        rate = ratio / ratio.mean()
        with torch.enable_grad():
            w = t * torch.softmax(self.logits.to(torch.float64), -1)
            scaled = w * norms
            target = (scaled.mean() * rate ** self.hp["alpha"]).detach()
            (grad,) = torch.autograd.grad((scaled - target).abs().sum(), self.logits)
        self.logits.grad = grad if self.logits.grad is None else self.logits.grad + grad
        weights = w.detach().to(jacobian.dtype)
        self._losses = None
        self.last_weights = weights
        return weights @ jacobian
