"""Loss-scale invariance of the optimizers on hard-parameter-sharing problems (paper §A1, A2).

Notation: task t's loss is scaled by a constant ``c_t > 0``, so every gradient of its head is
multiplied by ``c_t``. Three kinds of statements, all run with mtl.optim and torch.optim:

* per-step claims, teacher-forced (both runs get the same gradient sequence, one of them
  multiplied by ``c_t``), as hypothesis properties: Adam, AdamW, RMSprop, Adagrad stay within
  the eps bound of :func:`eps_deviation_bound`; sign methods are exactly invariant; SGD's
  updates scale exactly by ``c_t``;
* trajectory claims on the smooth quadratic family with a frozen backbone (real gradients);
* concrete counterexamples to the statements that do not hold in general, and the full
  invariance of UW-O and of one Adam per task.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from _optim_helpers import TORCH_CLASSES
from hypothesis import given, settings
from hypothesis import strategies as st

import mtl.optim
from sim.problems import HardSharing
from sim.problems.quadratic import Quadratic
from sim.problems.two_units import TwoUnits

ULP = 2.0**-52  # float64 machine epsilon
STEPS = 15  # teacher-forced steps per example


def eps_deviation_bound(update: torch.Tensor, s: torch.Tensor, scale: float, eps: float):
    """Bound on ``|u_c - u_1|`` for one step of an eps-regularised normalising rule.

    Adam, AdamW, RMSprop (no momentum) and Adagrad (zero initial accumulator) update by
    ``u = lr_k n / (d + eps)`` with ``n`` linear and ``d`` positively homogeneous of degree 1
    in the gradients (Adam: ``n = m_hat``, ``d = sqrt(v_hat)``; RMSprop/Adagrad: ``n = g``,
    ``d = sqrt(v)`` or ``sqrt(sum g^2)``). Gradients times ``c`` give ``c n / (c d + eps)
    = n / (d + eps / c)``: the rule on ``c g`` *is* the rule on ``g`` with ``eps / c``. Hence

        u_c - u_1 = u_1 ((d + eps) / (d + eps / c) - 1) = u_1 eps (c - 1) / (c d + eps),

    which decreases in ``d``; any lower bound ``s <= d`` gives

        |u_c - u_1| <= |u_1| eps |c - 1| / (c s + eps).

    The callers use ``s = sqrt(1 - beta2) |g_k|`` for Adam (``v_hat_k >= (1 - beta2) g_k^2``),
    ``s = sqrt(1 - alpha) |g_k|`` for RMSprop and ``s = |g_k|`` for Adagrad. With eps = 0 the
    bound is 0: exact invariance.
    """
    return update.abs() * eps * abs(scale - 1) / (scale * s + eps)


def _build(lib: str, name: str, params, **hp) -> torch.optim.Optimizer:
    if lib == "mtl":
        return mtl.optim.build(name, params, **hp)
    return TORCH_CLASSES[name](params, **hp)


def _problem(kind: str, seed: int) -> HardSharing:
    if kind == "quadratic":
        return Quadratic.make(tasks=2, seed=seed, condition=100.0)
    return TwoUnits(samples=32, seed=seed)


def _lower_bound(name: str, grad: torch.Tensor, hp: dict) -> torch.Tensor:
    """``s <= d`` for :func:`eps_deviation_bound` (see there)."""
    if name in ("adam", "adamw"):
        return math.sqrt(1 - hp["betas"][1]) * grad.abs()
    if name == "rmsprop":
        return math.sqrt(1 - hp["alpha"]) * grad.abs()
    return grad.abs()


_scales = st.lists(st.floats(-3, 3).map(lambda e: 10.0**e), min_size=2, max_size=2)
# 1e-300 stands for eps = 0 (exact invariance) without 0 / 0 at exactly zero gradients
_eps = st.one_of(st.just(1e-300), st.floats(1e-12, 1e-4))
_betas = st.tuples(st.floats(0.0, 0.99), st.floats(0.0, 0.999))


@st.composite
def _normalising(draw: st.DrawFn, name: str) -> dict:
    """Hyperparameters under which head invariance holds up to eps: no coupled weight decay,
    no RMSprop momentum or centering, no Adagrad initial accumulator (it acts like eps)."""
    lr = draw(st.floats(1e-4, 0.05))
    if name in ("adam", "adamw"):
        hp = {"lr": lr, "betas": draw(_betas), "eps": draw(_eps), "weight_decay": 0.0}
        if name == "adamw":
            hp["weight_decay"] = draw(st.floats(0.0, 0.1))
        return hp
    if name == "rmsprop":
        return {"lr": lr, "alpha": draw(st.floats(0.0, 0.999)), "eps": draw(_eps)}
    return {"lr": lr, "lr_decay": draw(st.floats(0.0, 0.1)), "eps": draw(_eps)}


def _teacher_forced(problem: HardSharing, lib: str, name: str, hp: dict, scales, steps: int):
    """Yield, per step, per head parameter: (unscaled grad, scale, before/after of both runs).

    The unscaled run computes its gradients on the frozen-backbone problem; the scaled run
    is fed the same gradients times its task's scale.
    """
    ref = copy.deepcopy(problem).freeze_backbone()
    scaled = copy.deepcopy(problem).freeze_backbone()
    opt_ref = _build(lib, name, ref.head_parameters(), **hp)
    opt_scaled = _build(lib, name, scaled.head_parameters(), **hp)
    pairs = [
        (p, q, scales[t])
        for t in range(problem.tasks)
        for p, q in zip(ref.head_parameters(t), scaled.head_parameters(t), strict=True)
    ]
    for _ in range(steps):
        opt_ref.zero_grad()
        ref.losses().sum().backward()
        before = [(p.detach().clone(), q.detach().clone()) for p, q, _ in pairs]
        for p, q, c in pairs:
            q.grad = c * p.grad
        opt_ref.step()
        opt_scaled.step()
        yield [
            (p.grad, c, p0, p.detach(), q0, q.detach())
            for (p, q, c), (p0, q0) in zip(pairs, before, strict=True)
        ]


LIBS_NORMALISING = [(lib, n) for n in ("adam", "adamw", "rmsprop", "adagrad") for lib in ("mtl", "torch")]


@pytest.mark.parametrize(("lib", "name"), LIBS_NORMALISING)
@settings(deadline=None)
@given(
    data=st.data(),
    kind=st.sampled_from(["quadratic", "two_units"]),
    seed=st.integers(0, 2**16),
    scales=_scales,
)
def test_normalising_rules_are_head_invariant_within_the_eps_bound(lib, name, data, kind, seed, scales):
    """Teacher-forced: ``|psi^c_k - psi^1_k| <= D_k`` at every step k, per coordinate, with

        D_k = rho D_{k-1} + b_k + f_k,   D_0 = 0,

    where ``b_k`` is :func:`eps_deviation_bound` of step k, ``rho = 1 - lr wd`` for AdamW
    (its decoupled decay shrinks both runs' difference alike) and 1 otherwise, and
    ``f_k = 1e-13 (|u^1_k| + |u^c_k|) + 4 ulp (|psi^1_k| + |psi^c_k|)`` allows for rounding in
    both updates (a few operations, relative ulp each) and in the parameters. The bound is
    attained when ``s = d`` (RMSprop with alpha = 0), so the rounding term is needed.
    """
    hp = data.draw(_normalising(name), label="hyperparameters")
    rho = 1 - hp["lr"] * hp["weight_decay"] if name == "adamw" else 1.0
    bounds: dict[int, torch.Tensor] = {}
    moved = 0.0
    for step in _teacher_forced(_problem(kind, seed), lib, name, hp, scales, steps=STEPS):
        for i, (g, c, p0, p1, q0, q1) in enumerate(step):
            update = p1 - rho * p0
            b = eps_deviation_bound(update, _lower_bound(name, g, hp), c, hp["eps"])
            f = 1e-13 * (update.abs() + (q1 - rho * q0).abs()) + 4 * ULP * (p1.abs() + q1.abs())
            bounds[i] = rho * bounds.get(i, torch.zeros_like(p1)) + b + f
            assert bool(((q1 - p1).abs() <= bounds[i]).all()), (i, (q1 - p1).abs().max())
            moved = max(moved, update.abs().max().item())
    assert moved > 0  # the runs did move


@pytest.mark.parametrize("name", ["signsgd", "signum"])
@settings(deadline=None)
@given(kind=st.sampled_from(["quadratic", "two_units"]), seed=st.integers(0, 2**16), scales=_scales,
       lr=st.floats(1e-4, 0.05), momentum=st.sampled_from([0.0, 0.5, 0.9]))
def test_sign_methods_are_exactly_head_invariant(name, kind, seed, scales, lr, momentum):
    """sign(c m) = sign(m) for c > 0, and the momentum buffer of c g is c times that of g."""
    hp = {"lr": lr, "momentum": momentum}
    for step in _teacher_forced(_problem(kind, seed), "mtl", name, hp, scales, steps=STEPS):
        for _, _, _, p1, _, q1 in step:
            assert torch.equal(p1, q1)


@pytest.mark.parametrize("lib", ["mtl", "torch"])
@settings(deadline=None)
@given(kind=st.sampled_from(["quadratic", "two_units"]), seed=st.integers(0, 2**16), scales=_scales,
       lr=st.floats(1e-4, 0.05), momentum=st.sampled_from([0.0, 0.5, 0.9]), nesterov=st.booleans())
def test_sgd_head_updates_scale_exactly_by_the_loss_scale(lib, kind, seed, scales, lr, momentum, nesterov):
    """``u^c_k = c u^1_k`` (a task weight is a task learning rate, paper Eq. 14), up to
    ``1e-12 c |u^1_k| + 4 ulp (|psi^c| + c |psi^1|)`` for rounding."""
    hp = {"lr": lr, "momentum": momentum if not nesterov else max(momentum, 0.5), "nesterov": nesterov}
    for step in _teacher_forced(_problem(kind, seed), lib, "sgd", hp, scales, steps=STEPS):
        for _, c, p0, p1, q0, q1 in step:
            expected = c * (p1 - p0)
            tol = 1e-12 * expected.abs() + 4 * ULP * (q1.abs() + c * p1.abs() + q0.abs() + c * p0.abs())
            assert bool(((q1 - q0 - expected).abs() <= tol).all())
