"""The optimizer configurations of the atlas, with symbolic hyperparameters.

Names and hyperparameters are those of :mod:`mtl.optim` (torch's); every rule runs with a
positive ``eps`` where it has one, as in practice. ``eps = 0`` variants idealise Adam as the
paper's derivation does (Eq. 19 drops the ``eps`` of Eq. 16).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import sympy

from theory import symbols as S
from theory.engine import Config

ADAM_HP = {
    "lr": S.LR,
    "betas": (S.BETA1, S.BETA2),
    "eps": S.EPS,
    "weight_decay": 0,
    "bias_correction": True,
}

SGD = Config("SGD", "sgd", {"lr": S.LR})
SGD_MOMENTUM = Config("SGD+momentum", "sgd", {"lr": S.LR, "momentum": S.MU, "dampening": S.TAU})
NESTEROV = Config(
    "Nesterov", "sgd", {"lr": S.LR, "momentum": S.MU, "dampening": 0, "nesterov": True}
)
ADAM = Config("Adam", "adam", ADAM_HP)
ADAMW = Config("AdamW", "adamw", {**ADAM_HP, "weight_decay": S.WD})
ADAM_L2 = Config("Adam+L2", "adam", {**ADAM_HP, "weight_decay": S.WD})
RMSPROP = Config("RMSprop", "rmsprop", {"lr": S.LR, "alpha": S.RHO, "eps": S.EPS})
ADAGRAD = Config(
    "Adagrad",
    "adagrad",
    {"lr": S.LR, "lr_decay": S.LR_DECAY, "eps": S.EPS, "initial_accumulator_value": 0},
)
SIGNSGD = Config("signSGD", "signsgd", {"lr": S.LR})
SIGNUM = Config("Signum", "signum", {"lr": S.LR, "momentum": S.MU})
PER_TASK_ADAM = Config("per-task Adam", "adam", ADAM_HP, per_task=True)

ATLAS_OPTIMIZERS = (
    SGD,
    SGD_MOMENTUM,
    NESTEROV,
    ADAM,
    ADAMW,
    ADAM_L2,
    RMSPROP,
    ADAGRAD,
    SIGNSGD,
    SIGNUM,
    PER_TASK_ADAM,
)

PER_TASK_SGD_MOMENTUM = Config("per-task SGD+momentum", "sgd", SGD_MOMENTUM.hp, per_task=True)
SGD_RMS = Config(
    "SGD-RMS", "sgd-rms", {**SGD_MOMENTUM.hp, "beta2": S.BETA2, "eps": S.EPS, "weight_decay": 0}
)
"""SGD at ``lr / (sqrt(mean v_hat) + eps)``; its group is one task's head (the atlas's hybrid)."""

HYBRIDS = (
    replace(ADAM, label="Adam heads + SGD+momentum backbone", backbone=SGD_MOMENTUM),
    replace(SGD_MOMENTUM, label="SGD+momentum heads + Adam backbone", backbone=ADAM),
    replace(SGD_RMS, label="SGD-RMS heads + SGD+momentum backbone", backbone=SGD_MOMENTUM),
)
"""One rule on the heads (one group per task head), another on the backbone."""
ATLAS_ROWS = ATLAS_OPTIMIZERS + HYBRIDS
LEVER_OPTIMIZERS = (*ATLAS_OPTIMIZERS, PER_TASK_SGD_MOMENTUM)

ADAM_EPS0 = Config("Adam (eps=0)", "adam", {**ADAM_HP, "eps": 0})
ADAM_BETA0 = Config("Adam (beta1=beta2=0, eps=0)", "adam", {**ADAM_EPS0.hp, "betas": (0, 0)})


def eps_over_scale(hp: Mapping[str, Any], scale: sympy.Expr) -> dict[str, Any]:
    """Reference hyperparameters ``eps -> eps / a`` (scaling a loss by a is Adam with eps/a)."""
    return {**hp, "eps": hp["eps"] / scale}


def lr_times_scale(hp: Mapping[str, Any], scale: sympy.Expr) -> dict[str, Any]:
    """Reference hyperparameters ``lr -> a lr`` (scaling an SGD loss by a is a learning rate)."""
    return {**hp, "lr": hp["lr"] * scale}


def lr_times_scale_wd_over_scale(hp: Mapping[str, Any], scale: sympy.Expr) -> dict[str, Any]:
    """SGD + L2 with loss scale a: ``lr -> a lr``, ``wd -> wd / a``."""
    return {**hp, "lr": hp["lr"] * scale, "weight_decay": hp["weight_decay"] / scale}


def wd_and_eps_over_scale(hp: Mapping[str, Any], scale: sympy.Expr) -> dict[str, Any]:
    """Adam + L2 with loss scale a: ``wd -> wd / a``, ``eps -> eps / a``."""
    return {**hp, "weight_decay": hp["weight_decay"] / scale, "eps": hp["eps"] / scale}


def accumulator_over_scale_squared(hp: Mapping[str, Any], scale: sympy.Expr) -> dict[str, Any]:
    """Adagrad with loss scale a: its accumulator starts at ``s_0 / a^2`` (eps: ``eps / a``)."""
    s0 = hp["initial_accumulator_value"]
    return {**hp, "initial_accumulator_value": s0 / scale**2, "eps": hp["eps"] / scale}


ACCUMULATOR = sympy.Symbol("s_0", positive=True)
"""Adagrad's initial accumulator value, positive."""
ADAGRAD_INIT = Config(
    "Adagrad (s_0 > 0, eps=0)",
    "adagrad",
    {**ADAGRAD.hp, "eps": 0, "initial_accumulator_value": ACCUMULATOR},
)
