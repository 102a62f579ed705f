"""One training step and one evaluation pass of a multi-task model with an MTL method.

A step: forward (under autocast when AMP is on), the T task losses, a check that they are finite,
``mtl.backward`` with the method (wrapped so that it sees the unscaled, rank-averaged losses and
Jacobian, see :mod:`empirical.training.adapters`), the averaging of the remaining gradients over
ranks, optional clipping of the shared gradient (after unscaling; logged as an event), and the
optimizer step (``task_grads=`` for optimizer-level methods).

``groups`` (single-task runs, :mod:`empirical.training.groups`): the losses the method sees are
the k sample groups' mean losses instead of the task losses. ``frozen_backbone``: the shared
parameters take no gradient; the heads (and the method's own parameters) get one backward of the
weighted loss ``method(L)`` for a weighting, of the summed (transformed) task losses for an
aggregator, which has no shared Jacobian to aggregate.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor

import mtl
from empirical.training.adapters import adapt
from empirical.training.distributed import Context
from empirical.training.groups import SampleGroups
from mtl.losses import Loss
from mtl.methods.base import Method, OptimizerLevel, Weighting
from mtl.methods.weightings import FAMO
from mtl.model import MultiTaskModel


class NonFiniteLoss(RuntimeError):
    """A task loss was NaN or infinite; the run stops."""

    def __init__(self, step: int, losses: dict[str, float]):
        super().__init__(f"non-finite loss at step {step}: {losses}")
        self.step = step
        self.losses = losses


@dataclass
class StepOutput:
    losses: Tensor  # (T,) detached, this rank's
    weights: Tensor | None
    events: list[str] = field(default_factory=list)


class Trainer:
    """Owns the model, method, optimizer and (optional) GradScaler of a run."""

    def __init__(
        self,
        model: MultiTaskModel,
        losses: Mapping[str, Loss],
        method: Method,
        optimizer: torch.optim.Optimizer,
        *,
        device: torch.device,
        ctx: Context | None = None,
        amp: bool = False,
        scaler: torch.amp.GradScaler | None = None,
        channels_last: bool = False,
        grad_clip: float | None = None,
        generator: torch.Generator | None = None,
        groups: SampleGroups | None = None,
        frozen_backbone: bool = False,
    ):
        self.model = model
        self.tasks = tuple(model.task_names)
        self.losses = {t: losses[t] for t in self.tasks}
        self.method = method
        self.optimizer = optimizer
        self.device = device
        self.ctx = ctx or Context()
        self.amp = amp
        self.scaler = scaler
        self.channels_last = channels_last
        self.grad_clip = grad_clip
        self.generator = generator
        self.groups = groups
        self.frozen_backbone = frozen_backbone
        self.loss_names = groups.names if groups is not None else self.tasks
        self.shared = [] if frozen_backbone else model.shared_parameters()
        self.heads = [p for t in self.tasks for p in model.task_parameters(t)]
        self.others = self.heads + list(method.parameters())
        self.scale = 1.0  # the GradScaler's scale of the current step
        self.adapted = adapt(method, None if scaler is None else self._current_scale, self.ctx)
        self.wants_representation = getattr(method, "gradient_of", "shared") == "representation"
        self.step_count = 0

    # -- pieces of a step ------------------------------------------------------------------

    def autocast(self) -> contextlib.AbstractContextManager:
        if not self.amp:
            return contextlib.nullcontext()
        dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        return torch.autocast(self.device.type, dtype=dtype)

    def to_device(self, x: Tensor, targets: Mapping[str, Tensor]) -> tuple[Tensor, dict]:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, {t: targets[t].to(self.device, non_blocking=True) for t in self.tasks}

    def compute_losses(self, x: Tensor, targets: Mapping[str, Tensor]):
        with self.autocast():
            if self.wants_representation:
                outputs, representation = self.model(x, return_representation=True)
            else:
                outputs, representation = self.model(x), None
            if self.groups is not None:
                (task,) = self.tasks
                per_sample = self.losses[task](
                    outputs[task].float(), targets[task], reduction="none"
                )
                assigned = self.groups.assign(targets[task], self.generator)
                return self.groups.losses(per_sample, assigned), representation
            losses = [self.losses[t](outputs[t].float(), targets[t]) for t in self.tasks]
        return torch.stack([loss.reshape(()) for loss in losses]), representation

    # -- the step ------------------------------------------------------------------------------

    def step(self, x: Tensor, targets: Mapping[str, Tensor]) -> StepOutput:
        self.step_count += 1
        self.train_mode()
        stacked, representation = self.compute_losses(x, targets)
        self._check_finite(stacked)
        if self.frozen_backbone:
            return self._apply_heads_only(stacked, x, targets)
        return self.apply(stacked, representation, x, targets)

    def train_mode(self) -> None:
        """``model.train()``; with a frozen backbone its BatchNorm layers stay in eval mode
        (running statistics of the pretrained backbone are used and not updated)."""
        self.model.train()
        if self.frozen_backbone:
            shared = {id(p) for p in self.model.shared_parameters()}
            for module in self.model.modules():
                own = list(module.parameters(recurse=False))
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and (
                    not own or all(id(p) in shared for p in own)
                ):
                    module.eval()

    def _apply_heads_only(self, stacked: Tensor, x: Tensor, targets) -> StepOutput:
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scale = float(self.scaler.scale(torch.ones((), device=self.device)))
        weights = None
        if isinstance(self.method, Weighting):
            if hasattr(self.adapted, "observe"):
                self.adapted.observe(stacked.detach())
            total = self.adapted(stacked, generator=self.generator)
            (weights,) = torch.autograd.grad(total, stacked, retain_graph=True)
            weights = weights / self.scale
        else:
            total = self.adapted.transform_losses(stacked).sum()
        total.backward()
        self.ctx.average_grads(self.others)
        if self.scaler is None:
            self.optimizer.step()
        else:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        self._famo_update(x, targets)
        return StepOutput(stacked.detach(), weights, [])

    def _famo_update(self, x: Tensor, targets) -> None:
        if isinstance(self.method, FAMO):
            with torch.no_grad():
                new, _ = self.compute_losses(x, targets)
            self.method.update(self.ctx.mean(new))

    def apply(self, stacked: Tensor, representation, x: Tensor, targets) -> StepOutput:
        """The backward pass and update for losses already computed (and checked)."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scale = float(self.scaler.scale(torch.ones((), device=self.device)))
        scale = self.scale
        optimizer_level = isinstance(self.method, OptimizerLevel)
        record = mtl.backward(
            stacked * scale if optimizer_level and scale != 1.0 else stacked,
            self.adapted,
            shared=self.shared,
            task_params=self.heads,
            representation=representation,
            generator=self.generator,
        )
        events = list(record.events)
        task_grads = None
        if isinstance(self.method, Weighting):
            self.ctx.average_grads(self.shared + self.others)
        else:
            self.ctx.average_grads(self.others)
        if optimizer_level:
            task_grads = {
                p: [self.ctx.mean(g) / scale for g in grads]
                for p, grads in record.task_grads.items()
            }
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        events += self._clip()
        kwargs = {} if task_grads is None else {"task_grads": task_grads}
        if self.scaler is None:
            self.optimizer.step(**kwargs)
        elif task_grads is not None and not _finite(g for gs in task_grads.values() for g in gs):
            self.scaler.update(new_scale=scale * self.scaler.get_backoff_factor())
            events.append(f"step {self.step_count}: non-finite scaled gradients, step skipped")
        else:
            self.scaler.step(self.optimizer, **kwargs)
            self.scaler.update()
        self._famo_update(x, targets)
        weights = record.weights
        if weights is not None and isinstance(self.method, Weighting):
            weights = weights / scale  # d(s f(L))/dL
        return StepOutput(
            stacked.detach(), weights, [f"step {self.step_count}: {e}" for e in events]
        )

    def _current_scale(self) -> float:
        return self.scale

    def _check_finite(self, stacked: Tensor) -> None:
        values = self.ctx.mean(stacked.detach()) if self.ctx.active else stacked.detach()
        if not bool(torch.isfinite(values).all()):
            raise NonFiniteLoss(
                self.step_count,
                dict(zip(self.loss_names, map(float, values.tolist()), strict=True)),
            )

    def _clip(self) -> list[str]:
        if self.grad_clip is None:
            return []
        grads = [p.grad for p in self.shared if p.grad is not None]
        if not grads:
            return []
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        if norm > self.grad_clip:
            torch._foreach_mul_(grads, self.grad_clip / float(norm))
            return [f"clipped shared gradient norm {float(norm):.4g} to {self.grad_clip}"]
        return []

    # -- evaluation ----------------------------------------------------------------------------

    def evaluate(self, loader: Iterable, accumulator) -> dict[str, float]:
        """Mean task losses (``loss``: their sum, ``<task>_loss``) and the metrics of a split."""
        return evaluate(
            self.model, self.losses, loader, accumulator, prepare=self.to_device,
            autocast=self.autocast,
        )  # fmt: skip


@torch.no_grad()
def evaluate(
    model: MultiTaskModel,
    losses: Mapping[str, Loss],
    loader: Iterable,
    accumulator,
    *,
    prepare: Callable[[Tensor, Mapping[str, Tensor]], tuple[Tensor, dict]],
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> dict[str, float]:
    """``model`` in eval mode over ``loader``: each task's mean loss over the samples
    (``<task>_loss``; ``loss`` their sum) and the accumulator's metrics. ``prepare`` moves a
    batch to the model's device."""
    tasks = tuple(model.task_names)
    model.eval()
    accumulator.reset()
    totals = torch.zeros(len(tasks), dtype=torch.float64)
    count = 0
    for x, targets in loader:
        x, targets = prepare(x, targets)
        with autocast():
            outputs = model(x)
        outputs = {t: outputs[t].float() for t in tasks}
        batch = x.shape[0]
        values = [losses[t](outputs[t], targets[t]) for t in tasks]
        totals += torch.stack(values).double().cpu() * batch
        count += batch
        accumulator.update(outputs, targets)
    means = (totals / max(count, 1)).tolist()
    result = {"loss": float(sum(means))}
    result.update({f"{t}_loss": m for t, m in zip(tasks, means, strict=True)})
    result.update({k: float(v) for k, v in accumulator.compute().items()})
    return result


def _finite(tensors: Iterable[Tensor]) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors)
