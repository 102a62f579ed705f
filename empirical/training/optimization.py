"""Parameter groups, the optimizer and the per-epoch learning-rate schedule of a run.

Groups: ``backbone`` (the shared parameters), ``heads`` (every task's parameters), ``method``
(a method's own parameters, UW's log-variances); frozen parameters (``requires_grad=False``, a
frozen backbone) are left out. ``backbone_*`` / ``heads_*`` settings give a
group its own rule or hyperparameters (hybrids: Adam on the heads, SGD on the backbone); what a
group does not set it inherits from the main optimizer when its rule has that hyperparameter.
Optimizer-level methods (AdaTask, MTL-IO) supply their own groups. A task named in
``task_lrs`` gets its own head group (``heads/<task>``); so does every task when the heads' rule
reduces over its group (``Rule.vector``: SWATS, SGD-RMS), so that its statistics (SGD-RMS's
RMS, SWATS's switch) stay those of one task's head.

Weight decay applies to every parameter unless ``decay_norms_and_biases`` is false; then every
parameter with at most one dimension (biases, norm scales and shifts) gets ``weight_decay = 0``.

Schedule, for the epoch index ``e`` (0-based) with ``w`` warm-up epochs: ``(e + 1) / w`` for
``e < w``; then with ``k = e - w``: ``none`` 1; ``step`` ``gamma ** (k // step_size)`` (the paper:
x0.5 every 100 epochs); ``cosine`` ``(1 + cos(pi k / (epochs - w))) / 2``.
"""

from __future__ import annotations

import math
from typing import Any

import torch

import mtl.optim
from empirical.training.config import RunConfig
from mtl.methods.base import Method, OptimizerLevel
from mtl.model import MultiTaskModel

_MAIN = ("lr", "momentum", "betas", "eps", "weight_decay")


def main_hyperparameters(config: RunConfig) -> dict[str, Any]:
    hp = {k: getattr(config, k) for k in _MAIN if getattr(config, k) is not None}
    if "betas" in hp:
        hp["betas"] = tuple(hp["betas"])
    return {**hp, **config.optimizer_options}


def _group_settings(config: RunConfig, prefix: str) -> dict[str, Any]:
    settings: dict[str, Any] = dict(getattr(config, f"{prefix}_options"))
    if getattr(config, f"{prefix}_optimizer") is not None:
        settings["optimizer"] = getattr(config, f"{prefix}_optimizer")
    if getattr(config, f"{prefix}_lr") is not None:
        settings["lr"] = getattr(config, f"{prefix}_lr")
    return settings


def param_groups(config: RunConfig, model: MultiTaskModel, method: Method) -> list[dict]:
    shared = [p for p in model.shared_parameters() if p.requires_grad]  # frozen ones left out
    heads = [p for t in model.task_names for p in model.task_parameters(t)]
    own = list(method.parameters())
    if isinstance(method, OptimizerLevel):
        hybrid = [k for k in ("backbone", "heads") if _group_settings(config, k)]
        if hybrid:
            raise ValueError(
                f"{method.name} keeps its own per-task optimizer states and sets the groups "
                f"itself: remove the {', '.join(k + '_*' for k in hybrid)} settings"
            )
        groups = method.param_groups(shared, heads + own, len(model.task_names))
    else:
        groups = [{"params": shared, "name": "backbone", **_group_settings(config, "backbone")}]
        unknown = sorted(set(config.task_lrs) - set(model.task_names))
        if unknown:
            raise ValueError(
                f"task_lrs names unknown task(s) {unknown}; tasks: {', '.join(model.task_names)}"
            )
        heads_rule = mtl.optim.get_rule(config.heads_optimizer or config.optimizer)
        separate = [t for t in model.task_names if heads_rule.vector or t in config.task_lrs]
        for t in separate:
            settings = _group_settings(config, "heads")
            if t in config.task_lrs:
                settings["lr"] = config.task_lrs[t]
            groups.append({"params": model.task_parameters(t), "name": f"heads/{t}", **settings})
        rest = [p for t in model.task_names if t not in separate for p in model.task_parameters(t)]
        groups.append({"params": rest, "name": "heads", **_group_settings(config, "heads")})
        if own:
            groups.append({"params": own, "name": "method"})
    if not config.decay_norms_and_biases:
        groups = [part for g in groups for part in _split_decay(g, config.optimizer)]
    return [g for g in groups if g["params"]]


def _split_decay(group: dict[str, Any], main: str) -> list[dict[str, Any]]:
    rule = mtl.optim.get_rule(group.get("optimizer", main))
    if "weight_decay" not in rule.defaults:
        return [group]
    params = list(group["params"])
    decayed = {**group, "params": [p for p in params if p.dim() > 1]}
    exempt = {**group, "params": [p for p in params if p.dim() <= 1], "weight_decay": 0.0}
    if "name" in group:
        exempt["name"] = f"{group['name']}/no_decay"
    return [decayed, exempt]


def build_optimizer(
    config: RunConfig, model: MultiTaskModel, method: Method
) -> torch.optim.Optimizer:
    groups = param_groups(config, model, method)
    return mtl.optim.build(config.optimizer, groups, **main_hyperparameters(config))


def lr_factor(config: RunConfig, epoch: int) -> float:
    """The multiplier of every group's base learning rate in epoch ``epoch`` (0-based)."""
    warm = config.warmup_epochs
    if epoch < warm:
        return (epoch + 1) / warm
    k = epoch - warm
    if config.schedule == "step":
        return config.gamma ** (k // config.step_size)
    if config.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * k / max(1, config.epochs - warm)))
    return 1.0


def set_epoch_lr(
    optimizer: torch.optim.Optimizer, base: list[float], config: RunConfig, epoch: int
) -> None:
    factor = lr_factor(config, epoch)
    for group, lr in zip(optimizer.param_groups, base, strict=True):
        group["lr"] = lr * factor
