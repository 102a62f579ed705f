"""The model contract: which parameters are shared, which belong to task t, what is shared.

Hard parameter sharing splits the parameters into a shared backbone phi and one head psi_t per
task: ``representation = encode(x)`` uses phi only, ``outputs[t] = decode(representation)[t]``
uses psi_t only. Everything that needs the split (the Jacobian of the shared parameters,
per-task optimizer states, the head/backbone theory, representation-level methods such as
MGDA-UB and GradDrop, per-layer statistics) asks a :class:`MultiTaskModel` for it:

- ``task_names``: the tasks, in order (task index t is ``task_names[t]``);
- ``named_shared_parameters()`` / ``shared_parameters()``: phi;
- ``named_task_parameters(t)`` / ``task_parameters(t)``: psi_t (t a name or an index);
- ``encode(x)``: the shared representation, one tensor or a tuple of tensors
  (:data:`Representation`; e.g. MTAN's features at several depths); ``decode(rep)``:
  ``{task: output}``;
- ``forward(x, return_representation=False)``: ``decode(encode(x))``, and the representation
  too when asked (methods that work on the representation detach it and call ``decode``).

:func:`split_parameters` checks that every parameter belongs to exactly one of phi, psi_1..T.

A tuple representation ``(r_1, ..., r_K)`` must be what the heads read, and only the heads: the
encoder carries on from its own tensors and returns aliases (``r.view_as(r)``). Then the gradient
of a loss w.r.t. ``r_k`` is the partial derivative of ``decode`` in its k-th argument, and not a
total derivative that also runs through the deeper ``r_j`` computed from ``r_k``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from torch import Tensor, nn

#: What ``encode`` returns and ``decode`` reads: one tensor or several (multi-depth features).
Representation = Tensor | tuple[Tensor, ...]


class MultiTaskModel(nn.Module):
    """Base class of hard-parameter-sharing models; subclasses define the five members below."""

    @property
    def task_names(self) -> tuple[str, ...]:
        raise NotImplementedError

    def encode(self, x: Tensor) -> Representation:
        """The shared representation of ``x`` (depends on the shared parameters only)."""
        raise NotImplementedError

    def decode(self, representation: Representation) -> dict[str, Tensor]:
        """One output per task; output t depends on the representation and psi_t only."""
        raise NotImplementedError

    def named_shared_parameters(self) -> list[tuple[str, nn.Parameter]]:
        raise NotImplementedError

    def named_task_parameters(self, task: str | int) -> list[tuple[str, nn.Parameter]]:
        raise NotImplementedError

    def forward(
        self, x: Tensor, return_representation: bool = False
    ) -> dict[str, Tensor] | tuple[dict[str, Tensor], Representation]:
        representation = self.encode(x)
        outputs = self.decode(representation)
        return (outputs, representation) if return_representation else outputs

    def shared_parameters(self) -> list[nn.Parameter]:
        return [p for _, p in self.named_shared_parameters()]

    def task_parameters(self, task: str | int) -> list[nn.Parameter]:
        return [p for _, p in self.named_task_parameters(task)]

    def task_name(self, task: str | int) -> str:
        """The name of ``task`` given as a name or an index; unknown tasks raise."""
        names = self.task_names
        if isinstance(task, int) and not isinstance(task, bool):
            if not -len(names) <= task < len(names):
                raise ValueError(f"task index {task} out of range for {len(names)} tasks {names}")
            return names[task]
        if task not in names:
            raise ValueError(f"unknown task {task!r}; valid tasks: {', '.join(names)}")
        return task


class HardParameterSharing(MultiTaskModel):
    """``encoder`` shared by all tasks, one ``heads[task]`` module per task on its output."""

    def __init__(self, encoder: nn.Module, heads: Mapping[str, nn.Module]):
        super().__init__()
        if not heads:
            raise ValueError("HardParameterSharing needs at least one task head")
        self.encoder = encoder
        self.heads = nn.ModuleDict(dict(heads))

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(self.heads.keys())

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def decode(self, representation: Tensor) -> dict[str, Tensor]:
        return {name: head(representation) for name, head in self.heads.items()}

    def named_shared_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return list(self.encoder.named_parameters(prefix="encoder"))

    def named_task_parameters(self, task: str | int) -> list[tuple[str, nn.Parameter]]:
        name = self.task_name(task)
        return list(self.heads[name].named_parameters(prefix=f"heads.{name}"))


@dataclass(frozen=True)
class ParameterSplit:
    """phi and psi_t as lists of parameters, with their names as in ``model.named_parameters()``."""

    shared: list[tuple[str, nn.Parameter]]
    tasks: dict[str, list[tuple[str, nn.Parameter]]]


def split_parameters(model: MultiTaskModel) -> ParameterSplit:
    """The model's split, checked: each trainable parameter is shared or belongs to one task.

    Raises ``ValueError`` naming a parameter that is claimed twice or by nobody.
    """
    if not isinstance(model, MultiTaskModel):
        raise ValueError(
            f"{type(model).__name__} is not a MultiTaskModel; wrap it as "
            "HardParameterSharing(encoder, heads) or subclass MultiTaskModel"
        )
    shared = model.named_shared_parameters()
    tasks = {t: model.named_task_parameters(t) for t in model.task_names}
    owner: dict[int, str] = {}
    for group, named in [("shared", shared), *((f"task {t!r}", n) for t, n in tasks.items())]:
        for name, p in named:
            if id(p) in owner:
                raise ValueError(
                    f"parameter {name!r} is claimed by both {owner[id(p)]} and {group}; "
                    "each parameter must be shared or belong to exactly one task"
                )
            owner[id(p)] = group
    for name, p in model.named_parameters():
        if p.requires_grad and id(p) not in owner:
            raise ValueError(
                f"parameter {name!r} is neither shared nor task-specific; assign it in "
                "named_shared_parameters() or named_task_parameters(), or freeze it"
            )
    return ParameterSplit(shared=shared, tasks=tasks)


__all__ = [
    "HardParameterSharing",
    "MultiTaskModel",
    "ParameterSplit",
    "Representation",
    "split_parameters",
]
