"""``torch.optim.Optimizer`` that runs the rules of :mod:`mtl.optim.rules` with foreach kernels.

Each parameter group names its rule (``"optimizer"``), so hybrids such as Adam on the heads and
SGD on the backbone are one optimizer. A group with ``"tasks": T`` keeps one rule state per task
for its parameters (AdaTask, MTL-IO): it is stepped with per-task gradients and applies the sum
of the T per-task updates, ``p <- p + sum_t (rule(p, g_t; state_t) - p)``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch

from mtl.optim.ops import FOREACH
from mtl.optim.rules import RULES, Rule, get_rule

_GROUP_KEYS = {"params", "optimizer", "tasks", "name"}


def _task_key(key: str, task: int) -> str:
    return f"{key}@task{task}"


class Optimizer(torch.optim.Optimizer):
    """Runs ``mtl.optim`` rules; see :func:`build` for the usual entry point."""

    def __init__(self, params: Iterable[Any], optimizer: str = "adam", **hyperparameters: Any):
        self._rule = get_rule(optimizer)
        self._rule.hyperparameters(**hyperparameters)  # validate eagerly, name the culprit
        self._overrides = hyperparameters
        super().__init__(params, {})

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        rule = get_rule(param_group.get("optimizer", self._rule.name))
        own = {k: v for k, v in param_group.items() if k not in _GROUP_KEYS}
        inherited = {k: v for k, v in self._overrides.items() if k in rule.defaults}
        group = {k: v for k, v in param_group.items() if k in _GROUP_KEYS}
        group.update(rule.hyperparameters(**{**inherited, **own}), optimizer=rule.name)
        tasks = group.get("tasks")
        if tasks is not None and (not isinstance(tasks, int) or tasks < 1):
            raise ValueError(f"invalid tasks={tasks!r}: a per-task group needs an integer >= 1")
        super().add_param_group(group)

    @torch.no_grad()
    def step(
        self,
        closure: Callable[[], torch.Tensor] | None = None,
        *,
        task_grads: Mapping[torch.Tensor, Sequence[torch.Tensor | None]] | None = None,
    ) -> torch.Tensor | None:
        """One update of every parameter with a gradient.

        ``task_grads`` maps each parameter of a per-task group to its T per-task gradients.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            rule = RULES[group["optimizer"]]
            hp = {k: group[k] for k in rule.defaults}
            if group.get("tasks") is None:
                self._step_shared(rule, hp, group["params"])
            else:
                self._step_per_task(rule, hp, group["params"], group["tasks"], task_grads)
        return loss

    def _advance(
        self, rule: Rule, hp: dict[str, Any], param: torch.Tensor, suffixes: Sequence[str]
    ) -> int:
        """Increment the parameter's step count, creating its state on the first step."""
        state = self.state[param]
        if not state:
            state["step"] = 0
            for suffix in suffixes:
                for name, buf in rule.init(FOREACH, [param], **hp).items():
                    state[name + suffix] = buf[0]
        state["step"] += 1
        return state["step"]

    def _apply(self, rule, hp, owners, targets, grads, step: int, suffix: str = "") -> None:
        """Run the rule in place on ``targets`` with the state ``owners`` hold under ``suffix``.

        Buffers a rule creates on its first step (SGD's momentum) are stored back as well.
        """
        first = self.state[owners[0]]
        names = [k[: len(k) - len(suffix)] for k in first if k != "step" and k.endswith(suffix)]
        state = {n: [self.state[p][n + suffix] for p in owners] for n in names}
        rule.update(FOREACH, targets, grads, state, step, **hp)
        for n, bufs in state.items():
            for p, buf in zip(owners, bufs, strict=True):
                self.state[p][n + suffix] = buf

    def _step_shared(self, rule: Rule, hp: dict[str, Any], params: list[torch.Tensor]) -> None:
        buckets: dict[int, list[torch.Tensor]] = defaultdict(list)
        for p in params:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise ValueError("mtl.optim does not support sparse gradients")
            buckets[self._advance(rule, hp, p, [""])].append(p)
        for step, bucket in buckets.items():
            self._apply(rule, hp, bucket, bucket, [p.grad for p in bucket], step)

    def _step_per_task(
        self, rule: Rule, hp: dict[str, Any], params, tasks: int, task_grads
    ) -> None:
        if task_grads is None:
            raise ValueError(
                f"a parameter group with tasks={tasks} keeps one state per task and needs "
                "per-task gradients: call step(task_grads={param: [g_1, ..., g_T]})"
            )
        suffixes = [f"@task{t}" for t in range(tasks)]
        buckets: dict[int, list[torch.Tensor]] = defaultdict(list)
        for p in params:
            grads = task_grads.get(p)
            if grads is None:
                continue
            if len(grads) != tasks:
                raise ValueError(
                    f"expected {tasks} per-task gradients for a parameter, got {len(grads)}"
                )
            buckets[self._advance(rule, hp, p, suffixes)].append(p)
        for step, bucket in buckets.items():
            total = torch._foreach_mul(bucket, 1 - tasks)  # p + sum_t (p_t - p)
            for t, suffix in enumerate(suffixes):
                moved = [p.clone() for p in bucket]
                grads = [_or_zeros(task_grads[p][t], p) for p in bucket]
                self._apply(rule, hp, bucket, moved, grads, step, suffix)
                torch._foreach_add_(total, moved)
            for p, new in zip(bucket, total, strict=True):
                p.copy_(new)


def _or_zeros(grad: torch.Tensor | None, param: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(param) if grad is None else grad


def build(name: str, params: Iterable[Any], **hyperparameters: Any) -> Optimizer:
    """An optimizer running rule ``name`` (``sgd``, ``adam``, ``adamw``, ``rmsprop``, ``adagrad``,
    ``signsgd``, ``signum``) with torch.optim's hyperparameter names and defaults.

    A parameter group may name its own rule: ``{"params": ..., "optimizer": "sgd", "lr": 0.1}``;
    ``{"params": ..., "tasks": T}`` keeps one state per task (see :class:`Optimizer`).
    """
    return Optimizer(params, name, **hyperparameters)
