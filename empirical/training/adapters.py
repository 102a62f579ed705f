"""Wrappers that let a method see the true losses and Jacobian under AMP loss scaling and DDP.

With a loss scale ``s`` (a GradScaler's) the wrapper hands the method unscaled values and scales
only what is backpropagated: a weighting's output ``s f(L)``; an aggregator's transformed losses
``s h(L)`` (so the Jacobian computed from them is ``s J``), which the wrapper divides by ``s``
before the method aggregates, multiplying the direction by ``s`` again for the scaler to undo.
The method's output is therefore independent of ``s``; a non-finite scaled Jacobian skips the
method (its state stays untouched) and yields a non-finite direction so the scaler skips the step.

Under data parallelism (a :class:`Context` with several ranks) the wrapper averages over the
ranks what the method consumes: the loss values (``L + sg[mean_r L_r - L]``: the global value,
this rank's gradient), and an aggregator's Jacobian before aggregation. Representation-level
methods consume per-sample gradients that differ between ranks and are refused in that case.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from empirical.training.distributed import Context
from mtl.methods.base import Aggregator, Method, OptimizerLevel, Weighting

Scale = Callable[[], float]


def _unit() -> float:
    return 1.0


def _globalize(losses: Tensor, ctx: Context) -> Tensor:
    if not ctx.active:
        return losses
    return losses + (ctx.mean(losses) - losses.detach())


class _Adapted:
    inner: Method
    _scale: Scale
    _ctx: Context

    def _setup(self, inner: Method, scale: Scale | None, ctx: Context) -> None:
        self.inner = inner  # a submodule: the inner method's parameters stay visible
        self._scale = scale or _unit
        self._ctx = ctx
        object.__setattr__(self, "name", inner.name)


class AdaptedWeighting(_Adapted, Weighting):
    def __init__(self, inner: Weighting, scale: Scale | None, ctx: Context) -> None:
        Weighting.__init__(self)
        self._setup(inner, scale, ctx)

    def observe(self, losses: Tensor) -> None:
        if hasattr(self.inner, "observe"):
            self.inner.observe(self._ctx.mean(losses.detach()))

    def forward(self, losses: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        return self._scale() * self.inner(_globalize(losses, self._ctx), generator=generator)


class AdaptedAggregator(_Adapted, Aggregator):
    def __init__(self, inner: Aggregator, scale: Scale | None, ctx: Context) -> None:
        Aggregator.__init__(self)
        if ctx.active and inner.gradient_of == "representation":
            raise ValueError(
                f"{inner.name} aggregates per-sample representation gradients, which differ "
                "between ranks: run it in one process or choose a shared-parameter method"
            )
        self._setup(inner, scale, ctx)
        object.__setattr__(self, "gradient_of", inner.gradient_of)

    def transform_losses(self, losses: Tensor) -> Tensor:
        return self._scale() * self.inner.transform_losses(_globalize(losses, self._ctx))

    def forward(self, jacobian: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        scale = self._scale()
        if not bool(torch.isfinite(jacobian).all()):
            self.last_weights = None
            return jacobian.sum(0)  # non-finite: the scaler skips this step
        true = self._ctx.mean(jacobian) / scale
        direction = self.inner(true, generator=generator)
        self.last_weights = self.inner.last_weights
        return direction * scale


def adapt(method: Method, scale: Scale | None, ctx: Context) -> Method:
    """``method`` itself when nothing is scaled or reduced, else its wrapper."""
    if isinstance(method, OptimizerLevel) or (scale is None and not ctx.active):
        return method
    if isinstance(method, Weighting):
        return AdaptedWeighting(method, scale, ctx)
    if isinstance(method, Aggregator):
        return AdaptedAggregator(method, scale, ctx)
    raise ValueError(f"method {method.name!r} has unknown kind {method.kind!r}")
