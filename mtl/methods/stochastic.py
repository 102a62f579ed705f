"""Stochastic multi-objective aggregators with state across steps: MoCo, MoDo, SDMGrad.

MoDo and SDMGrad are defined on three independent mini-batches per step (Jacobians ``J_1, J_2``
for the weight update, ``J_3`` for the direction): ``method.aggregate_batches(j1, j2, j3)``
is that exact algorithm. Through :func:`mtl.backward`, which sees one batch, ``forward(J)`` is
the single-batch variant ``J_1 = J_2 = J_3 = J`` (biased in the weight update; the authors'
``three_grads=False`` splits one draw into two, which the caller would do with two batches).
Defaults are LibMTL ``main``'s.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from mtl.methods.base import Aggregator, check_finite, check_tasks
from mtl.methods.registry import register


def project_to_simplex(y: Tensor) -> Tensor:
    """Euclidean projection onto ``{w >= 0, sum w = 1}`` (sort-based, Held et al. 1974), after
    subtracting ``max(y)`` (the projection is shift-invariant), so huge entries cannot round the
    constraint away."""
    y = y - y.max()
    s, _ = torch.sort(y, descending=True)
    cumsum = s.cumsum(0) - 1
    index = torch.arange(1, y.numel() + 1, dtype=y.dtype, device=y.device)
    count = int((s - cumsum / index > 0).sum())
    theta = cumsum[count - 1] / count
    return (y - theta).clamp_min(0)


def _single(jacobian: Tensor, name: str) -> None:
    if jacobian.dim() != 2:
        raise ValueError(f"{name} is stateful: pass one (T, P) Jacobian per step")


@register("moco")
class MoCo(Aggregator):
    """MoCo (Fernando et al. 2023), LibMTL form: tracked gradients ``y <- y - beta_k (y - h)``
    of ``h_t = L_t g_t / ||g_t||`` (``beta_k = beta/k^beta_sigma``), weights
    ``lambda <- softmax(lambda - gamma_k (y y^T + rho I) lambda)`` (``gamma_k`` alike, lambda
    from 1/T), ``d = y^T lambda``. Defaults beta = 0.5, beta_sigma = 0.5, gamma = 0.1,
    gamma_sigma = 0.5, rho = 0. Needs the losses (:func:`mtl.backward` hands them over; else
    call ``observe(losses)`` first). LibMTL's ``+1e-8`` beside ``||g_t||`` is dropped (it
    shrinks gradients of norm ~1e-8 and below); zero gradients give ``h_t = 0``.
    """

    defaults: ClassVar[dict[str, Any]] = {
        "beta": 0.5,
        "beta_sigma": 0.5,
        "gamma": 0.1,
        "gamma_sigma": 0.5,
        "rho": 0.0,
    }
    stateful: ClassVar[bool] = True
    observes_losses: ClassVar[bool] = True

    def __init__(self, **hp: Any) -> None:
        super().__init__(**hp)
        self.steps = 0
        self.y: Tensor | None = None
        self.weights: Tensor | None = None
        self._losses: Tensor | None = None

    def observe(self, losses: Tensor) -> None:
        check_finite(losses.detach(), self.name, "loss")
        self._losses = losses.detach()

    def aggregate(self, jacobian: Tensor, generator: torch.Generator | None) -> Tensor:
        _single(jacobian, self.name)
        if self._losses is None:
            raise ValueError("moco scales the gradients by the losses: call observe(losses) first")
        t = jacobian.shape[0]
        if self.y is None:
            self.y = torch.zeros_like(jacobian)
            self.weights = torch.full((t,), 1.0 / t, dtype=jacobian.dtype, device=jacobian.device)
        check_tasks(self.y.shape[0], t, self.name)
        self.steps += 1
        hp = self.hp
        norms = jacobian.norm(dim=1, keepdim=True)
        h = torch.where(norms > 0, jacobian / torch.where(norms > 0, norms, 1), 0)
        h = h * self._losses.to(jacobian.dtype)[:, None]
        self.y = self.y - hp["beta"] / self.steps ** hp["beta_sigma"] * (self.y - h)
        gamma = hp["gamma"] / self.steps ** hp["gamma_sigma"]
        curvature = self.y @ self.y.T + hp["rho"] * torch.eye(t, dtype=jacobian.dtype)
        self.weights = torch.softmax(self.weights - gamma * curvature @ self.weights, -1)
        self._losses = None
        self.last_weights = self.weights
        return self.weights @ self.y


class _ThreeBatch(Aggregator):
    """A weight vector on the simplex from ``J_1 J_2^T``, kept across steps from 1/T, and the
    direction from ``J_3`` (one Jacobian serves as all three in ``aggregate``)."""

    stateful: ClassVar[bool] = True

    def __init__(self, **hp: Any) -> None:
        super().__init__(**hp)
        self.weights: Tensor | None = None

    def aggregate(self, jacobian: Tensor, generator: torch.Generator | None) -> Tensor:
        _single(jacobian, self.name)
        return self.aggregate_batches(jacobian, jacobian, jacobian)

    def aggregate_batches(self, j1: Tensor, j2: Tensor, j3: Tensor) -> Tensor:
        """The three-batch algorithm: the weight update on ``J_1 J_2^T``, the direction on J_3."""
        for j in (j1, j2, j3):
            check_finite(j, self.name)
        t = j1.shape[0]
        if self.weights is None:
            self.weights = torch.full((t,), 1.0 / t, dtype=j1.dtype, device=j1.device)
        check_tasks(self.weights.shape[0], t, self.name)
        self.weights, combination = self.update(j1 @ j2.T, self.weights)
        self.last_weights = combination
        return combination @ j3

    def update(self, gram: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
        """``(new weights, the combination of J_3's rows)`` from ``J_1 J_2^T``."""
        raise NotImplementedError


@register("modo")
class MoDo(_ThreeBatch):
    """MoDo (Chen et al. 2023, JMLR 2024), LibMTL form: ``lambda <- Proj_simplex(lambda -
    gamma (J_1 J_2^T lambda + rho lambda))`` from 1/T, ``d = J_3^T lambda``; gamma = 1e-3,
    rho = 0.1 (LibMTL; TorchJD's default gamma is 0.1). See the module docstring for batches.
    """

    defaults: ClassVar[dict[str, Any]] = {"gamma": 1e-3, "rho": 0.1}

    def update(self, gram: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
        step = gram @ weights + self.hp["rho"] * weights
        new = project_to_simplex(weights - self.hp["gamma"] * step)
        return new, new


@register("sdmgrad")
class SDMGrad(_ThreeBatch):
    """SDMGrad (Xiao et al. 2023), LibMTL form: ``A = J_1 J_2^T / s^2`` with ``s`` the mean of
    ``sqrt(max(A_tt, 0))``; ``n_iter = 20`` steps of SGD (lr 5, momentum 0.5) on the weights,
    gradient ``A (w + lamda/T 1)``, each followed by the projection onto the simplex (w kept
    across steps, from 1/T); ``d = (J_3^T w + lamda mean_t g_t) / (1 + lamda)``, lamda = 0.3.
    LibMTL's ``+1e-8`` beside ``s^2`` is dropped (it froze the weights for gradients of norm
    1e-4 and below). TorchJD's default inner lr is 10. See the module docstring for batches.
    """

    defaults: ClassVar[dict[str, Any]] = {"lamda": 0.3, "n_iter": 20, "lr": 5.0, "momentum": 0.5}

    def update(self, gram: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
        lamda = float(self.hp["lamda"])
        scale = gram.diagonal().clamp_min(0).sqrt().mean()
        a = gram / scale**2 if scale > 0 else gram
        pull = a.mean(1) * lamda
        w, velocity = weights, None
        for _ in range(self.hp["n_iter"]):
            grad = a @ w + pull
            velocity = grad if velocity is None else self.hp["momentum"] * velocity + grad
            w = project_to_simplex(w - self.hp["lr"] * velocity)
        return w, (w + lamda / len(w)) / (1 + lamda)
