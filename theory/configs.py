"""The optimizer configurations of the atlas, with symbolic hyperparameters.

Names and hyperparameters are those of :mod:`mtl.optim` (torch's); every rule runs with a
positive ``eps`` where it has one, as in practice. ``eps = 0`` variants idealise Adam as the
paper's derivation does (Eq. 19 drops the ``eps`` of Eq. 16).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
AMSGRAD = Config("AMSGrad", "adam", {**ADAM_HP, "amsgrad": True})
_BETAS_HP = {"lr": S.LR, "betas": (S.BETA1, S.BETA2), "eps": S.EPS, "weight_decay": 0}
ADAMAX = Config("Adamax", "adamax", _BETAS_HP)
NADAM = Config("NAdam", "nadam", {**_BETAS_HP, "momentum_decay": S.PSI})
RADAM = Config("RAdam", "radam", {**_BETAS_HP, "betas": (S.BETA1, sympy.Rational(999, 1000))})
"""beta2 = 0.999 (torch's): the rectification switches on at ``rho_k > 5``, which a symbolic
beta2 leaves undecided; at any beta2 ``rho_1 = 1``, so the first steps are plain SGD steps."""
LION = Config("Lion", "lion", {"lr": S.LR, "betas": (S.BETA1, S.BETA2), "weight_decay": 0})
LAMB = Config("LAMB", "lamb", {**ADAM_HP, "weight_decay": S.WD}, shape=(1,))
"""On a symbolic 1-vector (the trust ratio is a ratio of the tensor's norms; a 2-vector is
proven the same way, in about 35 s instead of 3)."""
LARS = Config(
    "LARS",
    "lars",
    {"lr": S.LR, "momentum": S.MU, "trust_coefficient": S.TRUST, "eps": S.EPS, "weight_decay": 0},
    shape=(2,),
)
ADAFACTOR = Config(
    "Adafactor",
    "adafactor",
    {
        "lr": S.LR,
        "beta2_decay": sympy.Rational(-4, 5),
        "eps": (S.EPS, S.EPS2),
        "d": 1,
        "weight_decay": 0,
    },
    shape=(1,),
)
"""On a symbolic 1-vector (its unfactored second moment, bounded at eps1^2: eps1 -> eps1/a),
with torch's beta2 decay -0.8 (a symbolic exponent leaves ``k^c`` powers sympy does not merge)."""
MUON = Config(
    "Muon",
    "muon",
    {
        "lr": S.LR,
        "weight_decay": 0,
        "momentum": S.MU,
        "nesterov": True,
        "ns_coefficients": tuple(sympy.Rational(c) for c in ("3.4445", "-4.7750", "2.0315")),
        "eps": S.EPS,
        "ns_steps": 0,
        "adjust_lr_fn": None,
    },
    shape=(1, 2),
)
"""On a symbolic 1x2 matrix with ns_steps = 0: the update is then the normalised momentum
``M / max(||M||_F, eps)``; every Newton-Schulz step is a fixed polynomial of it, so what the
proof shows for it holds for any number of steps (symbolic steps are too costly for sympy)."""
SHAMPOO = Config("Shampoo", "shampoo", {"lr": S.LR, "eps": S.EPS, "weight_decay": 0}, shape=(1, 1))
"""On a symbolic 1x1 matrix: ``L^{-1/4} g R^{-1/4} = g / (eps + sum g^2)^{1/2}`` (the 2x2
closed-form roots are too costly for sympy over three steps); eps sits on the factors: eps/a^2."""

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
MODERN_OPTIMIZERS = (
    AMSGRAD,
    ADAMAX,
    NADAM,
    RADAM,
    LION,
    LAMB,
    LARS,
    ADAFACTOR,
    MUON,
    SHAMPOO,
)
"""Atlas rows of the later optimizers (the tensor rules on small symbolic tensors); the
statements and levers range over :data:`ATLAS_OPTIMIZERS`."""

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
ATLAS_ROWS = ATLAS_OPTIMIZERS + MODERN_OPTIMIZERS + HYBRIDS
LEVER_OPTIMIZERS = (*ATLAS_OPTIMIZERS, PER_TASK_SGD_MOMENTUM)

ADAM_EPS0 = Config("Adam (eps=0)", "adam", {**ADAM_HP, "eps": 0})
ADAM_BETA0 = Config("Adam (beta1=beta2=0, eps=0)", "adam", {**ADAM_EPS0.hp, "betas": (0, 0)})


def eps_over_scale(hp: Mapping[str, Any], scale: sympy.Expr) -> dict[str, Any]:
    """Reference hyperparameters ``eps -> eps / a`` (scaling a loss by a is Adam with eps/a)."""
    return {**hp, "eps": hp["eps"] / scale}


def eps_over_scale_power(power: int) -> Callable[[Mapping[str, Any], sympy.Expr], dict]:
    """Reference hyperparameters ``eps -> eps / a^power`` (a pair ``(eps1, eps2)``: eps1)."""

    def reference(hp: Mapping[str, Any], scale: sympy.Expr) -> dict[str, Any]:
        eps = hp["eps"]
        if isinstance(eps, tuple):
            return {**hp, "eps": (eps[0] / scale**power, *eps[1:])}
        return {**hp, "eps": eps / scale**power}

    return reference


def eps_map(config: Config) -> Callable[[Mapping[str, Any], sympy.Expr], dict]:
    """The reference map the configuration's eps placement implies (:attr:`Config.eps_scaling`):
    ``eps / a`` outside a root, ``eps / a^2`` on a quantity quadratic in g."""
    return eps_over_scale_power(config.eps_scaling)


def without_eps(config: Config) -> Config:
    """The configuration at eps = 0 (a pair ``(eps1, eps2)``: eps1 = 0)."""
    eps = config.hp["eps"]
    return config.with_hp(eps=(0, *eps[1:]) if isinstance(eps, tuple) else 0)


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
