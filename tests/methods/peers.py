"""LibMTL 1.1.5 as a parity peer: its import shim and a driver for its weighting classes, beside
the same method of ``mtl.methods`` run on the same inputs through :func:`mtl.backward`.

The inputs are linear losses, so every task gradient is known exactly. On the parameter level,
``theta = 0`` (P,) and ``L_t = J_t theta + c_t``: the task gradients are the rows of J and the
loss values are ``c``. On the representation level (GradDrop, MGDA-UB), ``rep = X theta + r``
((B, F) from X of shape (B, F, P)) and ``L_t = <H_t, rep> + c_t``: ``dL_t/d rep = H_t`` and
``sign(rep) = sign(r)``. Either side returns, per step, the gradient it writes into ``theta``.
A method's own parameters (learned loss scales, GradNorm's logits) take one SGD step of rate
``lr`` on both sides after each step, so their gradients are compared too.

LibMTL 1.1.5 needs three things on current torch, all applied here and nowhere else:

* its import reads ``torchvision.models.utils.load_state_dict_from_url`` (removed from
  torchvision), so :func:`import_weighting` installs a stand-in module holding torch.hub's
  function for the duration of the import only;
* it builds its gradient buffers with ``torch.zeros`` in the default dtype, so its steps run
  with the default dtype set to the Jacobian's (restored afterwards);
* its ``_reset_grad`` writes into ``param.grad.data``, so the shared parameter's gradient is
  reset to zeros, never to None, between its per-task backward passes.

Its random draws (Python's ``random`` in PCGrad and GradVac, torch's global generator in RLW
and GradDrop) are seeded per step and the global states restored; with ``seed`` the draws of
``torch.rand``/``torch.randn`` equal ours from ``torch.Generator().manual_seed(seed)``.
"""

from __future__ import annotations

import contextlib
import random
import sys
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

import mtl
import mtl.methods

LIBMTL_VERSION = "1.1.5"


@dataclass(frozen=True)
class Step:
    """One step's inputs. Parameter level: ``jacobian`` (T, P) and ``losses`` (T,). With
    ``heads`` (T, B, F) the representation level: ``jacobian`` is X (B, F, P) and
    ``representation`` the offset r (B, F)."""

    jacobian: Tensor
    losses: Tensor
    heads: Tensor | None = None
    representation: Tensor | None = None

    @property
    def tasks(self) -> int:
        return self.losses.shape[0]

    def build(self) -> tuple[torch.nn.Parameter, Tensor | None, list[Tensor]]:
        """``(theta, rep, [L_t])``: the shared parameter (zeros), the representation (None on
        the parameter level) and the losses as functions of ``theta`` (or of ``rep``)."""
        dim = self.jacobian.shape[-1]
        theta = torch.nn.Parameter(torch.zeros(dim, dtype=self.jacobian.dtype))
        if self.heads is None:
            return theta, None, list(self.jacobian @ theta + self.losses)
        rep = self.jacobian @ theta + self.representation
        return theta, rep, self.head_losses(rep)

    def head_losses(self, rep: Tensor) -> list[Tensor]:
        return [(h * rep).sum() + c for h, c in zip(self.heads, self.losses, strict=True)]


def import_weighting() -> types.ModuleType:
    """``LibMTL.weighting``, imported with the ``torchvision.models.utils`` stand-in."""
    name = "torchvision.models.utils"
    installed = name not in sys.modules
    if installed:
        stand_in = types.ModuleType(name)
        stand_in.load_state_dict_from_url = torch.hub.load_state_dict_from_url
        sys.modules[name] = stand_in
    try:
        import LibMTL.weighting as weighting
    finally:
        if installed:
            del sys.modules[name]
    return weighting


@contextlib.contextmanager
def _libmtl_run(dtype: torch.dtype, seed: int) -> Iterator[None]:
    """Default dtype ``dtype`` and seeded global generators, all restored on exit."""
    old_dtype, old_random = torch.get_default_dtype(), random.getstate()
    torch.set_default_dtype(dtype)
    random.seed(seed)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_default_dtype(old_dtype)
        random.setstate(old_random)


def _sgd(params: Sequence[Tensor], lr: float) -> None:
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p -= lr * p.grad
                p.grad = None


def wire(
    cls_name: str, tasks: int, shared: Callable[[], list[Tensor]], *, rep_grad: bool = False
) -> torch.nn.Module:
    """An instance of LibMTL's weighting ``cls_name`` with the attributes its Trainer and
    architecture set (``task_num``, ``device``, ``epoch``, ``rep_grad``, the shared parameters
    ``shared()``), after its ``init_param``."""
    weighting = import_weighting()

    class Wired(getattr(weighting, cls_name)):
        def __init__(self) -> None:
            super().__init__()
            self.task_num, self.task_name = tasks, [f"t{t}" for t in range(tasks)]
            self.device, self.epoch, self.rep_grad = torch.device("cpu"), 0, rep_grad

        def get_share_params(self) -> list[Tensor]:
            return shared()

        def zero_grad_share_params(self) -> None:
            for p in shared():
                p.grad = torch.zeros_like(p) if p.grad is None else p.grad.zero_()

    wired = Wired()
    wired.init_param()
    return wired


def libmtl(
    cls_name: str,
    steps: Sequence[Step],
    kwargs: Mapping[str, Any] | None = None,
    *,
    attributes: Mapping[str, Any] | None = None,
    lr: float = 0.0,
    seed: int = 0,
) -> tuple[list[Tensor], list[Any]]:
    """LibMTL's weighting ``cls_name`` over ``steps`` (one instance, state kept): the shared
    gradients and what its ``backward(losses, **kwargs)`` returned, per step. ``attributes``
    are set on the instance first (its Trainer's ``epoch``, ``train_loss_buffer``)."""
    holder: dict[str, Tensor] = {}
    rep_grad = steps[0].heads is not None
    with _libmtl_run(steps[0].jacobian.dtype, seed):
        method = wire(cls_name, steps[0].tasks, lambda: [holder["theta"]], rep_grad=rep_grad)
    for key, value in (attributes or {}).items():
        setattr(method, key, value)
    directions, returned = [], []
    for k, step in enumerate(steps):
        with _libmtl_run(step.jacobian.dtype, seed + k):
            theta, rep, losses = step.build()
            holder["theta"] = theta
            theta.grad = torch.zeros_like(theta)
            if rep_grad:  # as LibMTL's architecture: each head reads its own detached copy
                method.rep = rep
                method.rep_tasks = {
                    t: rep.detach().clone().requires_grad_(True) for t in method.task_name
                }
                losses = [
                    step.head_losses(method.rep_tasks[t])[i] for i, t in enumerate(method.task_name)
                ]
            returned.append(method.backward(torch.stack(losses), **dict(kwargs or {})))
        directions.append(theta.grad.detach().clone())
        _sgd(list(method.parameters()), lr)
    return directions, returned


def ours(
    method: mtl.methods.Method, steps: Sequence[Step], *, lr: float = 0.0, seed: int = 0
) -> list[Tensor]:
    """``method`` over ``steps`` through :func:`mtl.backward`: the shared gradient per step."""
    directions = []
    for k, step in enumerate(steps):
        theta, rep, losses = step.build()
        mtl.backward(
            losses,
            method,
            shared=[theta],
            task_params=[],
            representation=rep,
            generator=torch.Generator().manual_seed(seed + k),
        )
        directions.append(theta.grad.detach().clone())
        _sgd(list(method.parameters()), lr)
    return directions


def cosine_and_ratio(mine: Tensor, peer: Tensor) -> tuple[float, float]:
    """``(cos(mine, peer), ||mine|| / ||peer||)``; both must be non-zero."""
    a, b = float(mine.norm()), float(peer.norm())
    if a == 0 or b == 0:
        raise ValueError(f"zero direction (ours {a:.3g}, peer {b:.3g}): no cosine")
    return float(mine @ peer) / (a * b), a / b
