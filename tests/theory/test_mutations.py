"""The verdicts can fail: deliberate faults in the rules flip exactly the verdicts they affect.

Each fault replaces one rule of the registry for the duration of a test (monkeypatch); the
statements are derived afresh (not from the cache) on the faulty rule.
"""

from __future__ import annotations

import dataclasses
import importlib

import pytest
import sympy

from mtl.optim import rules
from theory import clipping, precision, schedules
from theory import configs as C
from theory.engine import Proof

statements = importlib.import_module("theory.statements")


def _patch(monkeypatch, name: str, update) -> None:
    monkeypatch.setitem(rules.RULES, name, dataclasses.replace(rules.RULES[name], update=update))


def _adam_without_root(ops, *args, **hp):
    """Fault: Adam's denominator is v_hat, not sqrt(v_hat)."""
    return rules.adam(dataclasses.replace(ops, sqrt=lambda x: x), *args, **hp)


def _adam_eps_inside_root(ops, param, grad, state, step, *, lr, betas, eps, **_):
    """Fault: m_hat / sqrt(v_hat + eps) (TF-style eps placement) instead of sqrt(v_hat) + eps."""
    beta1, beta2 = betas
    m = state["exp_avg"] = ops.lerp_(state["exp_avg"], grad, 1 - beta1)
    v = state["exp_avg_sq"] = ops.addcmul_(
        ops.mul_(state["exp_avg_sq"], beta2), grad, grad, 1 - beta2
    )
    v_hat = ops.div_(v, 1 - beta2**step)
    return ops.addcdiv_(param, m, ops.sqrt(ops.add_scalar_(v_hat, eps)), -lr / (1 - beta1**step))


def _adam_decoupled(ops, *args, **hp):
    """Fault: Adam's coupled L2 applied as decoupled decay (AdamW)."""
    return rules.adam(ops, *args, **{**hp, "decoupled_weight_decay": True})


def _sign_without_momentum(ops, *args, **hp):
    """Fault: the sign rule ignores its momentum."""
    return rules.sign_descent(ops, *args, **{**hp, "momentum": 0})


def _sign_as_identity(ops, *args, **hp):
    """Fault: sign(m) replaced by m (plain SGD)."""
    return rules.sign_descent(dataclasses.replace(ops, sign=lambda x: x), *args, **hp)


def _sgd_rms_without_root(ops, *args, **hp):
    """Fault: SGD-RMS divides by the mean second moment, not its root."""
    return rules.sgd_rms(dataclasses.replace(ops, scalar_sqrt=lambda x: x), *args, **hp)


def _sgd_rms_heads():
    return statements.HYBRIDS[2]()


def _sgd_head_lever():
    return statements.LEVERS[0]()


def _adam_head_lever():
    return statements.LEVERS[2]()


def _sgd_lr_squared(ops, *args, lr, **hp):
    """Fault: SGD steps by lr^2 (the learning rate no longer enters linearly)."""
    return rules.sgd(ops, *args, lr=lr * lr, **hp)


def _sgd_normalised(ops, param, grad, *args, **hp):
    """Fault: SGD on sign(g) (no longer linear in the gradient)."""
    return rules.sgd(ops, param, ops.sign(grad), *args, **hp)


def _schedule(slug):
    return schedules._case(*next(c for c in schedules.CASES if c[0] == slug))


def _signsgd_head():
    return statements._sign(C.SIGNSGD, "signsgd", "head-per-task-scale")()


def _signum_time_varying():
    return statements._time_varying(C.SIGNUM, "signum")()


FAULTS = [
    # (fault, rule, statement builder, verdict with the fault, verdict of the real rule)
    ("no square root", "adam", _adam_without_root, statements.adam_head, "fails", "holds"),
    (
        "eps inside the root",
        "adam",
        _adam_eps_inside_root,
        statements.adam_eps_rescaling,
        "fails",
        "holds",
    ),
    ("L2 made decoupled", "adam", _adam_decoupled, statements.adam_l2, "holds", "fails"),
    (
        "momentum ignored",
        "signum",
        _sign_without_momentum,
        _signum_time_varying,
        "holds",
        "fails",
    ),
    ("sign replaced by identity", "signsgd", _sign_as_identity, _signsgd_head, "fails", "holds"),
    ("RMS without the root", "sgd-rms", _sgd_rms_without_root, _sgd_rms_heads, "fails", "holds"),
    ("learning rate squared", "sgd", _sgd_lr_squared, _sgd_head_lever, "fails", "holds"),
    # without the root the weight is the factor 1/alpha_t, not the claimed 1
    ("no square root (lever)", "adam", _adam_without_root, _adam_head_lever, "fails", "holds"),
    # the T-task, clipping, mixed-precision and schedule statements
    (
        "no square root: per-task Adam, T tasks",
        "adam",
        _adam_without_root,
        statements.per_task_adam,
        "fails",
        "holds",
    ),
    (
        "SGD on sign(g): backbone, T tasks",
        "sgd",
        _sgd_normalised,
        statements._sgd_linear(C.SGD_MOMENTUM, "sgd-momentum"),
        "fails",
        "holds",
    ),
    (
        "no square root: schedule",
        "adam",
        _adam_without_root,
        _schedule("adam.head.per-task-scale"),
        "fails",
        "holds",
    ),
    (
        "lr squared: schedule",
        "sgd",
        _sgd_lr_squared,
        _schedule("sgd-momentum.head.loss-scale-is-lr"),
        "fails",
        "holds",
    ),
    (
        "no square root: per-task clipping",
        "adam",
        _adam_without_root,
        clipping.per_task_threshold,
        "fails",
        "holds",
    ),
    (
        "sign replaced by identity: global clipping",
        "signsgd",
        _sign_as_identity,
        clipping._global(C.SIGNSGD, "signsgd", "per-task-scale"),
        "fails",
        "holds",
    ),
    (
        "eps inside the root: eps regime, torch numbers",
        "adam",
        _adam_eps_inside_root,
        precision.eps_dominates,
        "fails",
        "holds",
    ),
]


@pytest.mark.parametrize(
    ("fault", "rule", "faulty", "build", "with_fault", "without"),
    FAULTS,
    ids=[f[0] for f in FAULTS],
)
def test_a_fault_in_the_rule_flips_the_verdict(
    monkeypatch, fault, rule, faulty, build, with_fault, without
):
    assert build().verdict == without
    _patch(monkeypatch, rule, faulty)
    flipped = build()
    assert flipped.verdict == with_fault, fault
    if with_fault == "fails":
        assert flipped.counterexample


def test_a_proof_without_induction_step_proves_nothing():
    zero = sympy.S.Zero
    assert not Proof((zero, zero), ()).holds
    assert not Proof((), (zero,)).holds
    assert Proof((zero,), (zero,)).holds
    assert not Proof((zero,), (sympy.Symbol("r"),)).holds


def test_a_bound_too_small_is_refuted_by_the_bound_check():
    """The bound check is not vacuous: halving Adam's eps bound leaves a nonzero residual."""
    from theory import symbols as S
    from theory.bounds import bound_residuals

    a, eps, s = S.ALPHAS[0], S.EPS, statements.SQRT_V_HAT
    deviation = (eps - eps / a) / (s + eps / a)
    bound = sympy.Max(eps, eps / a) / (s + sympy.Min(eps, eps / a))
    assert all(r == 0 for r in bound_residuals(deviation, bound, a))
    assert any(r != 0 for r in bound_residuals(deviation, bound / 2, a, [(sympy.S.One, 0)]))
