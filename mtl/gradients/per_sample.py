"""Per-sample, per-task gradients of the shared parameters: a (T, B, P) tensor.

Entry ``[t, i]`` is the flattened gradient of task t's loss on sample i with respect to the
shared parameters (``model.shared_parameters()`` unless ``params`` are given). Two definitions
differ exactly where samples interact, through BatchNorm's batch statistics; choose one:

- ``mode="in-batch"``: one forward pass of the whole batch in train mode (BatchNorm normalises
  with the batch's statistics, as in the training step the paper measured during), then the
  Jacobian of the (T, B) matrix of per-sample losses ``L_t(x_i)``. The gradient of sample i
  includes its effect, through the batch statistics, on the other samples' features.
- ``mode="independent"``: each sample as a batch of one in eval mode (BatchNorm uses its running
  statistics; dropout is off), ``torch.func.vmap`` over samples of ``jacrev`` of the T losses.

For a model without batch coupling and without dropout both give the same numbers. Both leave
the model as they found it: its train/eval flags and buffers (BatchNorm running statistics).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, jacrev, vmap

from mtl.gradients.jacobian import jacobian
from mtl.losses import Loss
from mtl.model import MultiTaskModel

MODES = ("in-batch", "independent")


def per_sample_losses(
    model: MultiTaskModel,
    inputs: Tensor,
    targets: Mapping[str, Tensor],
    losses: Mapping[str, Loss],
    tasks: Sequence[str] | None = None,
) -> Tensor:
    """The (T, B) matrix ``L_t(x_i)`` of one forward pass (in the model's current mode)."""
    tasks = _tasks(model, losses, targets, tasks)
    outputs = model(inputs)
    return torch.stack([losses[t](outputs[t], targets[t], reduction="none") for t in tasks])


def per_sample_gradients(
    model: MultiTaskModel,
    inputs: Tensor,
    targets: Mapping[str, Tensor],
    losses: Mapping[str, Loss],
    *,
    mode: str,
    tasks: Sequence[str] | None = None,
    samples: Sequence[int] | None = None,
    params: Sequence[nn.Parameter] | None = None,
    method: str = "auto",
) -> Tensor:
    """The (T, S, P) per-sample gradients for ``tasks`` (default: all) and ``samples`` (indices
    into the batch, default: all), with respect to ``params`` (default: the shared parameters).

    ``method`` is the Jacobian path of the in-batch mode (see :func:`mtl.gradients.jacobian`).
    """
    if mode not in MODES:
        raise ValueError(f"unknown per-sample mode {mode!r}; valid modes: {', '.join(MODES)}")
    tasks = _tasks(model, losses, targets, tasks)
    params = list(model.shared_parameters() if params is None else params)
    batch = inputs.shape[0]
    samples = list(range(batch)) if samples is None else [int(i) for i in samples]
    if not samples or any(not 0 <= i < batch for i in samples):
        raise ValueError(
            f"samples must be a non-empty list of indices in [0, {batch}), got {samples}"
        )
    with _restored(model):
        if mode == "in-batch":
            model.train()
            matrix = per_sample_losses(model, inputs, targets, losses, tasks)[:, samples]
            flat = jacobian(list(matrix.reshape(-1)), params, method=method)
            return flat.reshape(len(tasks), len(samples), -1)
        model.eval()
        return _independent(
            model, inputs[samples], {t: targets[t][samples] for t in tasks}, losses, tasks, params
        )


def _independent(
    model: nn.Module,
    inputs: Tensor,
    targets: dict[str, Tensor],
    losses: Mapping[str, Loss],
    tasks: list[str],
    params: list[nn.Parameter],
) -> Tensor:
    by_id = {id(p): name for name, p in model.named_parameters()}
    missing = [k for k, p in enumerate(params) if id(p) not in by_id]
    if missing:
        raise ValueError(f"params[{missing[0]}] is not a parameter of the model")
    names = [by_id[id(p)] for p in params]

    def sample_losses(values: dict[str, Tensor], x: Tensor, y: dict[str, Tensor]) -> Tensor:
        out = functional_call(model, values, (x.unsqueeze(0),))
        return torch.stack(
            [losses[t](out[t], y[t].unsqueeze(0), reduction="none")[0] for t in tasks]
        )

    values = {name: p.detach() for name, p in zip(names, params, strict=True)}
    grads = vmap(jacrev(sample_losses), in_dims=(None, 0, 0))(values, inputs, targets)
    flat = torch.cat([grads[name].flatten(start_dim=2) for name in names], dim=2)  # (S, T, P)
    return flat.transpose(0, 1).contiguous()


class _restored:
    """Context that restores a module's train/eval flags and its buffers on exit."""

    def __init__(self, model: nn.Module):
        self.model = model

    def __enter__(self) -> None:
        self.flags = [(m, m.training) for m in self.model.modules()]
        self.buffers = [(b, b.detach().clone()) for b in self.model.buffers()]

    def __exit__(self, *exc: object) -> None:
        for module, flag in self.flags:
            module.training = flag
        with torch.no_grad():
            for buffer, saved in self.buffers:
                buffer.copy_(saved)


def _tasks(
    model: MultiTaskModel,
    losses: Mapping[str, Loss],
    targets: Mapping[str, Tensor],
    tasks: Sequence[str] | None,
) -> list[str]:
    tasks = list(model.task_names if tasks is None else (model.task_name(t) for t in tasks))
    for t in tasks:
        if t not in losses or t not in targets:
            where = "losses" if t not in losses else "targets"
            raise ValueError(f"task {t!r} has no entry in {where}; give one per task in {tasks}")
    return tasks
