"""Loss weightings: T task losses (a (T,) tensor) to the scalar that is backpropagated.

The shared update is then ``sum_t w_t g_t`` with ``w = weights(losses)``. Scale conventions:
``ew`` sums (LibMTL), ``mean`` and ``rlw`` have weights summing to one, ``dwa`` to T, the
others are scale-free by construction (``uw-o``, ``si``, ``famo``) or learn the scale (``uw``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from mtl.methods.base import Weighting, check_tasks, task_count
from mtl.methods.registry import register


class ConstantWeighting(Weighting):
    """Fixed weights ``c_T``: also an aggregator, ``d = sum_t c_t g_t``."""

    def constant(self, tasks: int, like: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, losses: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        return (self.constant(losses.shape[-1], losses) * losses).sum(-1)

    def aggregate_jacobian(self, jacobian: Tensor) -> tuple[Tensor, Tensor]:
        """``(d, w)`` for a (..., T, P) Jacobian."""
        w = self.constant(jacobian.shape[-2], jacobian)
        return (w.unsqueeze(-1) * jacobian).sum(-2), w.expand(jacobian.shape[:-1])


@register("ew")
class EW(ConstantWeighting):
    """Equal weighting, LibMTL's sum: ``L = sum_t L_t``, ``d = sum_t g_t``."""

    def constant(self, tasks: int, like: Tensor) -> Tensor:
        return torch.ones(tasks, dtype=like.dtype, device=like.device)


@register("mean")
class Mean(ConstantWeighting):
    """``L = (1/T) sum_t L_t``: the EW of the CAGrad toy (``mean_grad``)."""

    def constant(self, tasks: int, like: Tensor) -> Tensor:
        return torch.full((tasks,), 1.0 / tasks, dtype=like.dtype, device=like.device)


@register("fixed")
class Fixed(ConstantWeighting):
    """Fixed task weights, ``L = sum_t w_t L_t`` (``weights``: one number per task; unset: all
    ones, i.e. EW); the task-weight lever of the capacity study."""

    defaults: ClassVar[dict[str, Any]] = {"weights": None}

    def constant(self, tasks: int, like: Tensor) -> Tensor:
        w = self.hp["weights"]
        if w is None:
            return torch.ones(tasks, dtype=like.dtype, device=like.device)
        if len(w) != tasks:
            raise ValueError(f"fixed: weights must list {tasks} numbers, one per task, got {w!r}")
        return torch.tensor([float(v) for v in w], dtype=like.dtype, device=like.device)


@register("uw")
class UW(Weighting):
    """Uncertainty weighting (Kendall et al. 2018), LibMTL form:
    ``L = sum_t L_t / (2 e^{s_t}) + s_t / 2`` with ``s`` an ``nn.Parameter`` initialised to
    ``init = -0.5`` and learned by the training optimizer (add ``method.parameters()`` to it;
    :func:`mtl.backward` writes their gradients). Under SGD this form matters: the step on ``s``
    is ``lr (1 - L_t e^{-s_t}) / 2``.
    """

    defaults: ClassVar[dict[str, Any]] = {"tasks": None, "init": -0.5}
    stateful: ClassVar[bool] = True

    def __init__(self, **hp: Any) -> None:
        super().__init__(**hp)
        tasks = task_count(self.hp, "uw")
        self.log_scales = torch.nn.Parameter(torch.full((tasks,), float(self.hp["init"])))

    def forward(self, losses: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        s = self.log_scales.to(losses.dtype)
        return (losses / (2 * s.exp()) + s / 2).sum(-1)


@register("uw-o")
class UWO(Weighting):
    """Optimal uncertainty weighting (paper Eq. 10): ``L = sum_t L_t / sg[L_t + eps]``.
    ``eps = 0`` is the paper's equation (fully loss-scale invariant); the co-author's code uses
    ``eps = 1e-8``, which breaks the invariance for losses near ``eps``.
    """

    defaults: ClassVar[dict[str, Any]] = {"eps": 0.0}

    def forward(self, losses: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        denom = losses.detach() + self.hp["eps"]
        if bool((denom <= 0).any()):
            raise ValueError("uw-o divides by the losses: every L_t + eps must be > 0")
        return (losses / denom).sum(-1)


@register("rlw")
class RLW(Weighting):
    """Random loss weighting (Lin et al. 2022), LibMTL form: ``w = softmax(z)``, ``z ~ N(0, I)``
    drawn afresh each call (``generator=``); weights sum to one.
    """

    def forward(self, losses: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        z = torch.randn(losses.shape[-1], generator=generator, dtype=losses.dtype)
        return (torch.softmax(z, -1).to(losses.device) * losses).sum(-1)


@register("dwa")
class DWA(Weighting):
    """Dynamic weight average (Liu et al. 2019, MTAN), LibMTL form with ``temperature = 2``:
    from the third epoch, ``w = T softmax(r / temperature)`` with ``r_t = Lbar_t(e-1)/Lbar_t(e-2)``
    the ratio of the last two epochs' mean losses; before that ``w = 1``. Call ``observe(losses)``
    each step (``mtl.backward`` does) and ``end_epoch()`` after each epoch.
    """

    defaults: ClassVar[dict[str, Any]] = {"temperature": 2.0}
    stateful: ClassVar[bool] = True

    def __init__(self, **hp: Any) -> None:
        super().__init__(**hp)
        self.history: list[Tensor] = []
        self._running: list[Tensor] = []

    def observe(self, losses: Tensor) -> None:
        self._running.append(losses.detach().to(torch.float64).cpu())

    def end_epoch(self) -> None:
        if not self._running:
            raise ValueError("dwa.end_epoch(): no losses were observed in this epoch")
        self.history.append(torch.stack(self._running).mean(0))
        self._running = []

    def forward(self, losses: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        t = losses.shape[-1]
        if len(self.history) < 2:
            w = torch.ones(t, dtype=losses.dtype)
        else:
            ratio = self.history[-1] / self.history[-2]
            w = t * torch.softmax(ratio / self.hp["temperature"], -1).to(losses.dtype)
        return (w.to(losses.device) * losses).sum(-1)


@register("gls")
class GLS(Weighting):
    """Geometric loss strategy (Chennupati et al. 2019): ``L = (prod_t L_t)^(1/T)``, computed as
    ``exp(mean_t log L_t)``; ``w_t = L / (T L_t)``. Losses must be positive.
    """

    def forward(self, losses: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        _positive(losses, self.name)
        return losses.log().mean(-1).exp()


@register("si")
class SI(Weighting):
    """Scale-invariant loss (Nash-MTL's ``scaleinvls``): ``L = sum_t log L_t``; ``w_t = 1/L_t``.
    (Aligned-MTL's ``si`` is ``sum_t log(1 + L_t)``, which is not scale invariant.)
    """

    def forward(self, losses: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        _positive(losses, self.name)
        return losses.log().sum(-1)


@register("famo")
class FAMO(Weighting):
    """FAMO (Liu et al. 2023), LibMTL/original form: logits ``xi`` (zeros), ``z = softmax(xi)``,
    ``D_t = L_t - min_loss + 1e-8``, ``L = sum_t z_t log D_t / c`` with ``c = sg[sum_t z_t/D_t]``.
    After the optimizer step, call ``update(new_losses)`` with the losses of a second forward on
    the same batch: ``xi`` takes one Adam step (``w_lr``, weight decay ``gamma``) along
    ``dz/dxi^T (log D_old - log D_new)``. The logits live in the method, not in the training
    optimizer; T is taken from the first call unless ``tasks`` is given. (FAMO's own code clips
    the shared gradient at 1: :func:`mtl.backward`'s ``max_norm``.)
    """

    defaults: ClassVar[dict[str, Any]] = {
        "tasks": None,
        "w_lr": 0.025,
        "gamma": 1e-3,
        "min_loss": 0.0,
    }
    stateful: ClassVar[bool] = True

    def __init__(self, **hp: Any) -> None:
        super().__init__(**hp)
        self.logits: Tensor | None = None
        if self.hp["tasks"] is not None:
            self._start(task_count(self.hp, "famo"))
        self._previous: Tensor | None = None

    def _start(self, tasks: int) -> None:
        """Zero logits and their Adam state for ``tasks`` tasks (at the first call unless given)."""
        self.logits = torch.zeros(tasks, requires_grad=True)
        self._opt = torch.optim.Adam(
            [self.logits], lr=self.hp["w_lr"], weight_decay=self.hp["gamma"]
        )

    def _gap(self, losses: Tensor) -> Tensor:
        gap = losses - self.hp["min_loss"] + 1e-8
        if bool((gap.detach() <= 0).any()):
            raise ValueError("famo takes logs of L_t - min_loss: every loss must exceed min_loss")
        return gap

    def forward(self, losses: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        if self.logits is None:
            self._start(losses.shape[-1])
        check_tasks(self.logits.shape[0], losses.shape[-1], "famo")
        z = torch.softmax(self.logits.detach(), -1).to(losses.dtype)
        gap = self._gap(losses)
        c = (z / gap.detach()).sum()
        self._previous = losses.detach()
        return (z * gap.log()).sum(-1) / c

    def update(self, new_losses: Tensor) -> None:
        """One Adam step on the logits from the loss change since the last ``forward``."""
        if self._previous is None:
            raise ValueError("famo.update() needs a previous forward(losses) on this batch")
        delta = self._gap(self._previous).log() - self._gap(new_losses.detach()).log()
        with torch.enable_grad():
            z = torch.softmax(self.logits, -1)
            (grad,) = torch.autograd.grad(z, self.logits, grad_outputs=delta.to(z.dtype))
        self._opt.zero_grad()
        self.logits.grad = grad
        self._opt.step()
        self._previous = None


@register("stch")
class STCH(Weighting):
    """Smooth Tchebycheff scalarisation (Lin et al. 2024), LibMTL form (mu = 1, warm-up of 4
    epochs): before epoch ``warmup_epoch`` the loss is ``sum_t log L_t``; during it, the same,
    while the mean losses are recorded as the nadir point ``z``; afterwards
    ``L = T mu log sum_t exp(log(L_t/z_t)/mu)`` (LibMTL subtracts the detached max inside the
    exponent, a constant that changes no gradient). Call ``end_epoch()`` after each epoch
    (``mtl.backward`` calls ``observe``); without epoch boundaries it stays in the warm-up.
    """

    defaults: ClassVar[dict[str, Any]] = {"mu": 1.0, "warmup_epoch": 4}
    stateful: ClassVar[bool] = True

    def __init__(self, **hp: Any) -> None:
        super().__init__(**hp)
        self.epoch = 0
        self.nadir: Tensor | None = None
        self._sum: Tensor | None = None
        self._count = 0

    def observe(self, losses: Tensor) -> None:
        if self.epoch == self.hp["warmup_epoch"]:
            values = losses.detach().to(torch.float64).cpu()
            self._sum = values if self._sum is None else self._sum + values
            self._count += 1

    def end_epoch(self) -> None:
        if self.epoch == self.hp["warmup_epoch"]:
            if not self._count:
                raise ValueError("stch.end_epoch(): no losses were observed in the nadir epoch")
            self.nadir = self._sum / self._count
        self.epoch += 1

    def forward(self, losses: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        _positive(losses, self.name)
        if self.nadir is None:
            return torch.log(losses + 1e-20).sum(-1)
        mu = float(self.hp["mu"])
        ratios = torch.log(losses / self.nadir.to(losses) + 1e-20)
        return losses.shape[-1] * mu * torch.logsumexp(ratios / mu, -1)


def _positive(losses: Tensor, name: str) -> None:
    if bool((losses.detach() <= 0).any()):
        raise ValueError(f"{name} takes logs of the losses: every task loss must be > 0")
