"""``mtl.backward``: one drop-in call that turns T task losses into ``.grad`` for any MTL method.

>>> import torch, mtl, mtl.methods
>>> w = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
>>> head = torch.nn.Parameter(torch.tensor(2.0))
>>> losses = [w[0] * head, -w[0] + w[1]]
>>> record = mtl.backward(losses, mtl.methods.get("pcgrad"), shared=[w], task_params=[head])
>>> w.grad.tolist(), head.grad.item()
([1.0, 2.0], 1.0)

What each kind of method gets (gradients *accumulate* into ``.grad`` as with ``Tensor.backward``;
call ``optimizer.zero_grad()`` first):

* weighting: one backward of ``method(losses)`` (the weighted loss) into every parameter,
  including the method's own (UW's scales: add ``method.parameters()`` to the optimizer);
* aggregator: the (T, P) Jacobian of ``method.transform_losses(losses)`` w.r.t. ``shared``
  (or, for ``gradient_of == "representation"``, w.r.t. ``representation``, whose aggregated
  gradient is then backpropagated into ``shared``) is aggregated into the shared ``.grad``; the
  task-specific parameters (and the method's own) get the gradient of the summed transformed
  losses, i.e. each head the gradient of its own loss. A representation may be a tuple of
  tensors (:data:`mtl.model.Representation`): MGDA-UB and every other representation-level
  method see the Jacobian w.r.t. all of them concatenated, the gradient w.r.t. the whole
  representation; GradDrop, whose sign-purity rule is defined on one activation tensor, is
  applied to each tensor separately (for a coordinate-wise rule that is the concatenation
  again, up to the order of the random draws); the tensors must be aliases that only the heads
  read (see :mod:`mtl.model`);
* optimizer-level: as an aggregator without aggregation; the record's ``task_grads`` maps each
  shared parameter to its T per-task gradients for ``optimizer.step(task_grads=...)`` of a
  :mod:`mtl.optim` group with ``"tasks": T``. The shared ``.grad`` gets the summed task
  gradients as well, so that an optimizer without per-task groups still moves the backbone
  (as EW with that optimizer, not as the method); the first such step records an event saying so.

A NaN or infinite task loss (or, where the method computes them, task gradient) raises
:class:`mtl.methods.NonFiniteError` naming the task, before the shared ``.grad`` is written.

``task_params`` (all non-shared trainable parameters) makes the aggregator paths cheaper; without
it, the heads' gradients come from one extra full backward pass. ``max_norm`` clips the shared
gradient's norm (off by default: clipping breaks loss-scale invariance; Nash-MTL's and FAMO's
own code clip at 1.0); every clip is reported in the record's ``events``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from mtl.methods.base import (
    Aggregator,
    Method,
    NonFiniteError,
    OptimizerLevel,
    Weighting,
    check_finite,
)
from mtl.model import Representation

#: Representation-level methods applied to each tensor of a tuple representation on its own.
PER_TENSOR_METHODS = frozenset({"graddrop"})


@dataclass
class StepRecord:
    """What one :func:`backward` call computed, also handed to the method's log hooks."""

    method: str
    losses: Tensor
    weights: Tensor | None = None
    stats: dict[str, Tensor] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    task_grads: dict[Tensor, list[Tensor]] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "losses": self.losses,
            "weights": self.weights,
            "stats": self.stats,
            "events": self.events,
        }


def backward(
    losses: Sequence[Tensor] | Tensor,
    method: Method,
    *,
    shared: Iterable[Tensor],
    task_params: Iterable[Tensor] | None = None,
    representation: Representation | None = None,
    generator: torch.Generator | None = None,
    max_norm: float | None = None,
    retain_graph: bool = False,
) -> StepRecord:
    """Write the ``.grad`` that ``method`` prescribes for ``losses``; see the module docstring."""
    stacked = _stack(losses)
    # Each task's own graph: differentiating the stacked vector instead would send every task's
    # backward through every other loss with zero weights, and 0 * inf = NaN in a task whose
    # gradient is finite would hide which task is broken.
    rows = list(stacked) if isinstance(losses, Tensor) else [x.reshape(()) for x in losses]
    shared = list(shared)
    if not shared:
        raise ValueError("mtl.backward needs the shared parameters: pass shared=[...]")
    if not isinstance(method, Method):
        raise ValueError(
            f"method must come from mtl.methods.get(name), got {type(method).__name__}"
        )
    if max_norm is not None and not max_norm > 0:
        raise ValueError(f"max_norm must be > 0 (or None for no clipping), got {max_norm!r}")
    check_finite(stacked.detach(), method.name, "loss")
    others = None if task_params is None else list(task_params) + list(method.parameters())
    record = StepRecord(method.name, stacked.detach())
    if isinstance(method, Weighting):
        _weighting(stacked, method, record, generator, retain_graph)
        _check_written(shared, method)
    elif isinstance(method, Aggregator):
        _aggregator(
            stacked, method, shared, others, representation, record, generator, retain_graph, rows
        )
    elif isinstance(method, OptimizerLevel):
        jac = _jacobian(rows, shared)
        check_finite(jac, method.name)
        _stats(jac, record)
        _heads(stacked, shared, others, retain_graph)
        record.task_grads = {
            p: [_unflatten(row, shared)[i] for row in jac] for i, p in enumerate(shared)
        }
        _summed_fallback(jac, shared, method, record)
    else:
        raise ValueError(f"method {method.name!r} has unknown kind {method.kind!r}")
    if max_norm is not None:
        _clip(shared, max_norm, record)
    method.emit(record.as_dict())
    return record


def _stack(losses: Sequence[Tensor] | Tensor) -> Tensor:
    if isinstance(losses, Tensor):
        if losses.dim() != 1:
            raise ValueError(
                f"losses must be T scalars or a (T,) tensor, got shape {tuple(losses.shape)}"
            )
        return losses
    if len(losses) == 0:
        raise ValueError("mtl.backward needs at least one task loss")
    bad = [i for i, loss in enumerate(losses) if loss.numel() != 1]
    if bad:
        raise ValueError(
            f"task losses {bad} are not scalars: reduce each task's loss to one number"
        )
    return torch.stack([loss.reshape(()) for loss in losses])


def _check_written(shared: list[Tensor], method: Method) -> None:
    """A weighting never sees the task gradients: a non-finite shared gradient names no task."""
    grads = [p.grad for p in shared if p.grad is not None]
    if grads and not all(bool(torch.isfinite(g).all()) for g in grads):
        raise NonFiniteError(
            f"{method.name}: the gradient of the weighted loss is not finite although every task "
            "loss is (a weighting does not compute per-task gradients, so the task is unknown); "
            "lower the learning rate or check the losses' definitions"
        )


def _summed_fallback(jac: Tensor, shared: list[Tensor], method: Method, record) -> None:
    """Write ``sum_t g_t`` into the shared ``.grad`` for optimizers without per-task groups."""
    for p, g in zip(shared, _unflatten(jac.sum(0), shared), strict=True):
        p.grad = g.to(p.dtype) if p.grad is None else p.grad + g
    if not getattr(method, "_fallback_noted", False):
        method._fallback_noted = True
        record.events.append(
            f"{method.name}: the shared .grad holds the summed task gradients; the method acts "
            "only through a mtl.optim group with tasks=T stepped with task_grads="
        )


def _weighting(stacked, method, record, generator, retain_graph) -> None:
    if hasattr(method, "observe"):
        method.observe(stacked)
    total = method(stacked, generator=generator)
    (record.weights,) = torch.autograd.grad(total, stacked, retain_graph=True)
    if not bool(torch.isfinite(record.weights).all()):
        check_finite(record.weights, method.name, "loss weight")
    total.backward(retain_graph=retain_graph)


def _aggregator(
    stacked, method, shared, others, representation, record, generator, retain_graph, rows
):
    if method.observes_losses:
        method.observe(stacked.detach())
    transformed = method.transform_losses(stacked)
    if transformed is not stacked:
        rows = list(transformed)
    if method.gradient_of == "representation":
        if representation is None:
            raise ValueError(
                f"{method.name} aggregates gradients w.r.t. the shared representation: pass "
                "representation=<the encoder output the task heads consume>"
            )
        parts = _representation_parts(method, representation)
        if method.name in PER_TENSOR_METHODS:
            jacs = [_jacobian(rows, [part]) for part in parts]
            directions = [
                method.aggregate_at(j, part, generator) for j, part in zip(jacs, parts, strict=True)
            ]
            jac = torch.cat(jacs, dim=1)
        elif len(parts) == 1:
            jac = _jacobian(rows, parts)
            directions = [method.aggregate_at(jac, parts[0], generator)]
        else:
            jac = _jacobian(rows, parts)
            directions = _unflatten(method(jac, generator=generator), parts)
        torch.autograd.backward(
            parts,
            [d.view_as(part) for d, part in zip(directions, parts, strict=True)],
            inputs=shared,
            retain_graph=True,
        )
    else:
        jac = _jacobian(rows, shared)
        direction = method(jac, generator=generator)
        saved = [p.grad for p in shared]
        _heads(transformed, shared, others, retain_graph)
        for p, g, old in zip(shared, _unflatten(direction, shared), saved, strict=True):
            p.grad = g.to(p.dtype) if old is None else old + g
        record.weights = method.last_weights
        _stats(jac, record)
        return
    record.weights = method.last_weights
    _stats(jac, record)
    _heads(transformed, shared, others, retain_graph)


def _representation_parts(method: Method, representation: Representation) -> list[Tensor]:
    """The representation as a list of tensors (one for a plain tensor), checked."""
    parts = [representation] if isinstance(representation, Tensor) else list(representation)
    if not parts or not all(isinstance(p, Tensor) for p in parts):
        raise ValueError(
            f"{method.name}: representation must be a tensor or a non-empty tuple of tensors "
            f"(what encode(x) returned), got {type(representation).__name__}"
        )
    return parts


def _jacobian(losses: list[Tensor], params: list[Tensor]) -> Tensor:
    from mtl.gradients import jacobian

    return jacobian(list(losses), params, retain_graph=True)


def _heads(losses: Tensor, shared, others, retain_graph: bool) -> None:
    """Gradients of the summed losses into the non-shared parameters only."""
    total = losses.sum()
    if others is not None:
        if others:
            torch.autograd.backward(total, inputs=others, retain_graph=retain_graph)
        return
    saved = [p.grad for p in shared]
    for p in shared:  # backward accumulates in place: keep the shared gradients out of its reach
        p.grad = None
    total.backward(retain_graph=retain_graph)
    for p, old in zip(shared, saved, strict=True):
        p.grad = old


def _unflatten(flat: Tensor, params: list[Tensor]) -> list[Tensor]:
    out, start = [], 0
    for p in params:
        out.append(flat[start : start + p.numel()].view_as(p))
        start += p.numel()
    return out


def _stats(jac: Tensor, record: StepRecord) -> None:
    """Per-task gradient norms and the pairwise cosine matrix (0 where a norm is 0)."""
    gram = (jac @ jac.T).detach()
    norms = gram.diagonal().clamp_min(0).sqrt()
    outer = norms[:, None] * norms[None, :]
    record.stats = {
        "task_norms": norms,
        "cosine": torch.where(outer > 0, gram / torch.where(outer > 0, outer, 1), 0),
    }


def _clip(shared: list[Tensor], max_norm: float, record: StepRecord) -> None:
    grads = [p.grad for p in shared if p.grad is not None]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    if norm > max_norm:
        for g in grads:
            g.mul_(max_norm / norm)
        record.events.append(f"clipped shared gradient norm {float(norm):.4g} to {max_norm}")
