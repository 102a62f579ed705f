"""Base classes of the MTL methods: loss weightings, gradient aggregators, optimizer-level methods.

Every method is a ``torch.nn.Module`` (so standard forward hooks see its inputs and outputs)
with a registry ``name``, a ``kind`` and ``defaults`` (its hyperparameters, with the defaults of
LibMTL, the variant the paper ran). Besides forward hooks, ``register_log_hook(fn)`` receives
``fn(method, record)`` for each step :func:`mtl.backward` takes, where ``record`` holds the task
weights (when the method has them), gradient statistics and events (solver trouble, clipping).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor

KINDS = ("weighting", "aggregator", "optimizer")

LogHook = Callable[["Method", dict[str, Any]], None]


class SolverError(RuntimeError):
    """An inner solver (CAGrad, MGDA, Nash-MTL) failed; the step is not silently degraded."""


class NonFiniteError(ValueError):
    """A task loss or task gradient is NaN or infinite; ``tasks`` are the indices of the
    affected tasks and ``task`` the first (None: unknown).

    Raised before any method sees the value, so no method turns it into a silent zero or NaN
    update; a trainer catches it to end the run in a ``failed`` state.
    """

    def __init__(self, message: str, tasks: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.tasks = tasks
        self.task = tasks[0] if tasks else None


class Method(torch.nn.Module):
    """A named MTL method with validated hyperparameters ``self.hp``."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    #: Whether the method carries state between steps (learned scales, EMAs, epoch histories).
    stateful: ClassVar[bool] = False
    #: Which gradients an aggregator consumes: ``"shared"`` parameters or the ``"representation"``.
    gradient_of: ClassVar[str] = "shared"
    #: Whether :func:`mtl.backward` must hand the step's losses to ``observe(losses)`` first.
    observes_losses: ClassVar[bool] = False

    def __init__(self, **hyperparameters: Any) -> None:
        super().__init__()
        unknown = sorted(set(hyperparameters) - set(self.defaults))
        if unknown:
            valid = ", ".join(sorted(self.defaults)) or "none"
            raise ValueError(
                f"unknown hyperparameter(s) {unknown} for method {self.name!r}; valid: {valid}"
            )
        self.hp: dict[str, Any] = {**self.defaults, **hyperparameters}
        self._log_hooks: list[LogHook] = []

    def register_log_hook(self, hook: LogHook) -> Callable[[], None]:
        """Call ``hook(method, record)`` after each step; returns a function that removes it."""
        self._log_hooks.append(hook)
        return lambda: self._log_hooks.remove(hook)

    def emit(self, record: dict[str, Any]) -> None:
        """Hand one step's record to the log hooks."""
        for hook in self._log_hooks:
            hook(self, record)

    def transform_losses(self, losses: Tensor) -> Tensor:
        """The losses whose gradients the method consumes (identity unless overridden)."""
        return losses

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.hp.items())


class Weighting(Method):
    """Loss level: ``forward(losses)`` is the scalar to backpropagate.

    ``weights(losses)`` gives ``dL/dL_t`` at the current losses, so the shared update direction
    is ``sum_t w_t g_t`` for the task gradients ``g_t``.
    """

    kind = "weighting"

    def forward(self, losses: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError

    def weights(self, losses: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """The (T,) weights ``d forward(L) / dL_t``, detached."""
        probe = losses.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(self(probe, generator=generator), probe)
        return grad


class Aggregator(Method):
    """Gradient level: ``forward(jacobian)`` maps a (..., T, P) tensor to a (..., P) direction.

    After each call ``last_weights`` holds the (..., T) weights ``w`` with ``d = w J`` where the
    method is a weighted combination (else ``None``).
    """

    kind = "aggregator"

    def __init__(self, **hyperparameters: Any) -> None:
        super().__init__(**hyperparameters)
        self.last_weights: Tensor | None = None

    def forward(self, jacobian: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        check_jacobian(jacobian, self.name)
        check_finite(jacobian, self.name)
        return self.aggregate(jacobian, generator)

    def observe(self, losses: Tensor) -> None:
        """Receive the step's (T,) losses before ``forward`` (when ``observes_losses``)."""

    def aggregate_at(
        self, jacobian: Tensor, representation: Tensor, generator: torch.Generator | None
    ) -> Tensor:
        """The direction for gradients w.r.t. ``representation`` (a (T, R) Jacobian, R its
        elements); the default ignores the representation's values."""
        return self(jacobian, generator=generator)

    def aggregate(self, jacobian: Tensor, generator: torch.Generator | None) -> Tensor:
        raise NotImplementedError


class OptimizerLevel(Method):
    """Optimizer level: one optimizer state per task for the shared parameters.

    ``param_groups(shared, others, tasks)`` gives the groups for :func:`mtl.optim.build`;
    :func:`mtl.backward` returns the per-task gradients that ``optimizer.step(task_grads=...)``
    takes.
    """

    kind = "optimizer"
    rule: ClassVar[str] = "adam"

    def rule_name(self) -> str:
        return self.rule

    def param_groups(
        self, shared: list[Tensor], others: list[Tensor], tasks: int
    ) -> list[dict[str, Any]]:
        """A per-task group (``"tasks": T``) for ``shared`` and a plain group for ``others``."""
        groups: list[dict[str, Any]] = [
            {"params": list(shared), "tasks": tasks, "optimizer": self.rule_name()}
        ]
        if others:
            groups.append({"params": list(others), "optimizer": self.rule_name()})
        return groups


def check_jacobian(jacobian: Tensor, name: str) -> None:
    """Raise a ValueError unless ``jacobian`` is a floating (..., T, P) tensor with T >= 1."""
    if not isinstance(jacobian, Tensor) or not jacobian.is_floating_point():
        raise ValueError(
            f"{name}: the Jacobian must be a floating-point tensor of shape (..., T, P)"
        )
    if jacobian.dim() < 2 or jacobian.shape[-2] < 1:
        raise ValueError(
            f"{name}: expected a Jacobian of shape (..., T, P) with T >= 1, got "
            f"{tuple(jacobian.shape)}; stack the task gradients as rows"
        )


def check_finite(values: Tensor, name: str, what: str = "gradient") -> None:
    """Raise :class:`NonFiniteError` naming the tasks whose row (or entry) is not finite."""
    finite = torch.isfinite(values)
    if bool(finite.all()):
        return
    rows = finite if values.dim() == 1 else finite.all(-1)
    bad = (~rows).reshape(-1, rows.shape[-1]).any(0)
    tasks = tuple(int(t) for t in bad.nonzero().reshape(-1))
    listed = ", ".join(map(str, tasks))
    raise NonFiniteError(
        f"{name}: the {what} of task {listed} is not finite (NaN or inf); lower the learning "
        "rate, check that task's loss and data, or clip its loss",
        tasks,
    )


def rowwise(fn: Callable[[Tensor], tuple[Tensor, Tensor | None]], jacobian: Tensor):
    """Apply a (T, P) -> (direction, weights) function over the leading batch dimensions."""
    if jacobian.dim() == 2:
        return fn(jacobian)
    flat = jacobian.reshape(-1, *jacobian.shape[-2:])
    outs = [fn(j) for j in flat]
    lead = jacobian.shape[:-2]
    direction = torch.stack([d for d, _ in outs]).reshape(*lead, jacobian.shape[-1])
    if any(w is None for _, w in outs):
        return direction, None
    weights = torch.stack([w for _, w in outs]).reshape(*lead, jacobian.shape[-2])
    return direction, weights


def task_count(hp: dict[str, Any], name: str) -> int:
    """The ``tasks`` hyperparameter of a method with learned per-task parameters (an int >= 1).

    These methods need T when built, before the first step, because the training optimizer must
    be given their parameters (``method.parameters()``) when it is created.
    """
    tasks = hp["tasks"]
    if not isinstance(tasks, int) or tasks < 1:
        raise ValueError(
            f"{name} learns one parameter per task, which the training optimizer must receive "
            f"when it is built: pass tasks=T (an int >= 1), got {tasks!r}"
        )
    return tasks


def check_tasks(known: int | None, tasks: int, name: str) -> int:
    """The task count of a stateful method: inferred at the first call, then fixed."""
    if known is not None and known != tasks:
        raise ValueError(
            f"{name} keeps per-task state for {known} tasks but got {tasks}; build a new method "
            "(or call reset()) for another task count"
        )
    return tasks
