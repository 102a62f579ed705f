"""``torch.optim.Optimizer`` that runs the rules of :mod:`mtl.optim.rules` with foreach kernels.

Each parameter group names its rule (``"optimizer"``), so hybrids such as Adam on the heads and
SGD on the backbone are one optimizer. A group with ``"tasks": T`` keeps one rule state per task
for its parameters (AdaTask, MTL-IO): it is stepped with per-task gradients and applies the sum
of the T per-task updates, ``p <- p + sum_t (rule(p, g_t; state_t) - p)``.

Options as in torch.optim: ``foreach`` (``None``/``True``: one foreach kernel per buffer over
all parameters; ``False``: each parameter alone; the arithmetic, hence the result, is the same)
and ``fused=True`` (Adam and AdamW only, without per-task state: torch's fused kernel runs on
this optimizer's state). Complex parameters are stepped as their real views (real and imaginary
parts as two real coordinates), as torch.optim does: a second moment is ``Re(g)^2`` and
``Im(g)^2`` per part, never the complex square ``g^2``; SGD, linear in g, runs on complex
values. :meth:`Optimizer.load_state_dict` also accepts a state dict saved by the torch.optim
optimizer of the same rule.

A rule that reduces over its input (``Rule.vector``: SWATS, SGD-RMS) steps the parameters of a
group that share a step count as one vector, with ``foreach=False`` too; its scalar state
(Python numbers) is kept, the same value, in each of those parameters' states.
:meth:`Optimizer.switches` reports where SWATS groups switched from Adam to SGD. A rule that
acts on whole tensors (``Rule.tensor``: LAMB, LARS, Adafactor, Muon, Shampoo) steps each
parameter alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch

from mtl.optim.ops import FOREACH
from mtl.optim.rules import RULES, Rule, get_rule

_GROUP_KEYS = {"params", "optimizer", "tasks", "name"}
_OPTIONS = {"foreach": None, "fused": None}
"""Execution options (no effect on the maths), with torch.optim's defaults."""
FUSED = ("adam", "adamw")
"""Rules that ``fused=True`` runs with torch's fused kernel."""


def _task_key(key: str, task: int) -> str:
    return f"{key}@task{task}"


class Optimizer(torch.optim.Optimizer):
    """Runs ``mtl.optim`` rules; see :func:`build` for the usual entry point."""

    def __init__(self, params: Iterable[Any], optimizer: str = "adam", **hyperparameters: Any):
        self._rule = get_rule(optimizer)
        # validate eagerly, name the culprit
        self._rule.hyperparameters(
            **{k: v for k, v in hyperparameters.items() if k not in _OPTIONS}
        )
        self._overrides = hyperparameters
        super().__init__(params, {})

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        rule = get_rule(param_group.get("optimizer", self._rule.name))
        given = {**self._overrides, **param_group}
        options = {k: given.get(k, default) for k, default in _OPTIONS.items()}
        own = {k: v for k, v in param_group.items() if k not in _GROUP_KEYS | set(_OPTIONS)}
        inherited = {k: v for k, v in self._overrides.items() if k in rule.defaults}
        group = {k: v for k, v in param_group.items() if k in _GROUP_KEYS}
        group.update(rule.hyperparameters(**{**inherited, **own}), optimizer=rule.name)
        group.update(options)
        tasks = group.get("tasks")
        if tasks is not None and (not isinstance(tasks, int) or tasks < 1):
            raise ValueError(f"invalid tasks={tasks!r}: a per-task group needs an integer >= 1")
        _check_options(group)
        super().add_param_group(group)

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load a state dict of this optimizer, or of the torch.optim optimizer of the same
        rule (e.g. ``torch.optim.Adam`` for ``adam``): its groups keep their rule, take the
        saved hyperparameters this rule knows, and tensor step counts become integers."""
        rules = [group["optimizer"] for group in self.param_groups]
        super().load_state_dict(state_dict)
        for group, name in zip(self.param_groups, rules, strict=True):
            rule = get_rule(group.get("optimizer", name))
            hp = rule.hyperparameters(**{k: v for k, v in group.items() if k in rule.defaults})
            kept = {k: group[k] for k in _GROUP_KEYS | set(_OPTIONS) if k in group}
            group.clear()
            group.update(kept, **hp, optimizer=rule.name)
            for key, default in _OPTIONS.items():
                group.setdefault(key, default)
            _check_options(group)
        for state in self.state.values():
            if isinstance(state.get("step"), torch.Tensor):
                state["step"] = int(state["step"].item())
            for key in [k for k, v in state.items() if v is None]:  # torch SGD, no momentum
                del state[key]
            if state and "step" not in state:  # torch SGD counts no steps: its buffer exists
                state["step"] = 1

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
            if group["fused"]:
                self._step_fused(rule, hp, group["params"])
            elif group.get("tasks") is None:
                self._step_shared(rule, hp, group["params"], group["foreach"] is not False)
            else:
                self._step_per_task(rule, hp, group["params"], group["tasks"], task_grads)
        return loss

    def switches(self) -> list[dict[str, Any]]:
        """Per SWATS group (its ``name``, else its index): ``switch_step``, the step k after
        which it runs SGD (None while in the Adam phase; per-task groups: the first task's
        state), and ``sgd_lr``, the estimated rate Lambda (None before the switch)."""
        out = []
        for index, group in enumerate(self.param_groups):
            if group["optimizer"] != "swats":
                continue
            suffix = "" if group.get("tasks") is None else _task_key("", 0)
            states = [self.state[p] for p in group["params"] if self.state.get(p)]
            step = states[0][f"switch_step{suffix}"] if states else 0
            out.append({
                "group": group.get("name", index),
                "switch_step": step or None,
                "sgd_lr": states[0][f"sgd_lr{suffix}"] if step else None,
            })  # fmt: skip
        return out

    def _advance(
        self, rule: Rule, hp: dict[str, Any], param: torch.Tensor, suffixes: Sequence[str]
    ) -> int:
        """Increment the parameter's step count, creating its state on the first step."""
        state = self.state[param]
        if not state:
            state["step"] = 0
            for suffix in suffixes:
                for name, buf in rule.init(FOREACH, [param], **hp).items():
                    state[name + suffix] = buf[0] if isinstance(buf, list) else buf
        state["step"] += 1
        return state["step"]

    def _apply(self, rule, hp, owners, targets, grads, step: int, suffix: str = "") -> None:
        """Run the rule in place on ``targets`` with the state ``owners`` hold under ``suffix``.

        Buffers a rule creates on its first step (SGD's momentum) are stored back as well; a
        scalar (a Python number) is read from the first owner and stored in every owner.
        """
        first = self.state[owners[0]]
        names = [k[: len(k) - len(suffix)] for k in first if k != "step" and k.endswith(suffix)]
        real = _real if rule.complex_as_real else _same
        state = {
            n: [real(self.state[p][n + suffix]) for p in owners]
            if isinstance(first[n + suffix], torch.Tensor)
            else first[n + suffix]
            for n in names
        }
        rule.update(
            FOREACH, [real(t) for t in targets], [real(g) for g in grads], state, step, **hp
        )
        for n, bufs in state.items():
            if not isinstance(bufs, list):
                for p in owners:
                    self.state[p][n + suffix] = bufs
                continue
            for p, buf in zip(owners, bufs, strict=True):
                as_real = p.is_complex() and not buf.is_complex()
                self.state[p][n + suffix] = torch.view_as_complex(buf) if as_real else buf

    def _buckets(self, rule: Rule, hp: dict[str, Any], params) -> dict[int, list[torch.Tensor]]:
        """The parameters with a gradient, grouped by their step count after this step."""
        buckets: dict[int, list[torch.Tensor]] = defaultdict(list)
        for p in params:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise ValueError("mtl.optim does not support sparse gradients")
            buckets[self._advance(rule, hp, p, [""])].append(p)
        return buckets

    def _step_shared(self, rule: Rule, hp: dict[str, Any], params, foreach: bool) -> None:
        for step, bucket in self._buckets(rule, hp, params).items():
            for part in _parts(rule, bucket, foreach):
                self._apply(rule, hp, part, part, [p.grad for p in part], step)

    def _step_fused(self, rule: Rule, hp: dict[str, Any], params) -> None:
        """torch's fused Adam/AdamW kernel on this optimizer's buffers (torch's state names)."""
        decoupled = rule.name == "adamw" or hp["decoupled_weight_decay"]
        kernel = torch._fused_adamw_ if decoupled else torch._fused_adam_
        for step, bucket in self._buckets(rule, hp, params).items():
            if any(p.is_complex() for p in bucket):
                raise ValueError("fused=True does not support complex parameters: use fused=None")
            states = [self.state[p] for p in bucket]
            amsgrad = hp["amsgrad"]
            kernel(
                bucket,
                [p.grad for p in bucket],
                [s["exp_avg"] for s in states],
                [s["exp_avg_sq"] for s in states],
                [s["max_exp_avg_sq"] for s in states] if amsgrad else [],
                [torch.tensor(float(step), device=p.device) for p in bucket],
                amsgrad=amsgrad,
                lr=hp["lr"],
                beta1=hp["betas"][0],
                beta2=hp["betas"][1],
                weight_decay=hp["weight_decay"],
                eps=hp["eps"],
                maximize=hp["maximize"],
                grad_scale=None,
                found_inf=None,
            )

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
            for part in _parts(rule, bucket, foreach=True):
                total = torch._foreach_mul(part, 1 - tasks)  # p + sum_t (p_t - p)
                for t, suffix in enumerate(suffixes):
                    moved = [p.clone() for p in part]
                    grads = [_or_zeros(task_grads[p][t], p) for p in part]
                    self._apply(rule, hp, part, moved, grads, step, suffix)
                    torch._foreach_add_(total, moved)
                for p, new in zip(part, total, strict=True):
                    p.copy_(new)


def _parts(rule: Rule, bucket: list[torch.Tensor], foreach: bool) -> list[list[torch.Tensor]]:
    """The lists one rule call steps: the bucket at once (foreach, or a rule over the group's
    vector), else one parameter per call (always for a rule over one whole tensor)."""
    together = (foreach or rule.vector) and not rule.tensor
    return [bucket] if together else [[p] for p in bucket]


def _check_options(group: Mapping[str, Any]) -> None:
    """``foreach`` and ``fused`` are None or booleans; fused needs a rule of :data:`FUSED`."""
    for key in _OPTIONS:
        if group[key] not in (None, True, False):
            raise ValueError(f"invalid {key}={group[key]!r}: it must be None, True or False")
    if not group["fused"]:
        return
    rule = group["optimizer"]
    if rule not in FUSED:
        raise ValueError(
            f"fused=True runs torch's fused kernel, which exists for {', '.join(FUSED)} only, "
            f"not {rule!r}: use fused=None"
        )
    if group.get("tasks") is not None:
        raise ValueError(
            "fused=True cannot keep one state per task (tasks=...): use fused=None for this group"
        )
    if not group.get("bias_correction", True):
        raise ValueError("fused=True always bias-corrects: use fused=None with bias_correction")
    if group["foreach"]:
        raise ValueError("choose one of foreach=True and fused=True")


def _real(t: torch.Tensor) -> torch.Tensor:
    """A complex tensor's real view (last dimension: real, imaginary part); others as they are."""
    return torch.view_as_real(t) if t.is_complex() else t


def _same(t: torch.Tensor) -> torch.Tensor:
    return t


def _or_zeros(grad: torch.Tensor | None, param: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(param) if grad is None else grad


def build(name: str, params: Iterable[Any], **hyperparameters: Any) -> Optimizer:
    """An optimizer running rule ``name`` (one of :data:`mtl.optim.NAMES`) with torch.optim's
    hyperparameter names and defaults, and its ``foreach``/``fused`` options.

    A parameter group may name its own rule: ``{"params": ..., "optimizer": "sgd", "lr": 0.1}``;
    ``{"params": ..., "tasks": T}`` keeps one state per task (see :class:`Optimizer`).
    """
    return Optimizer(params, name, **hyperparameters)
