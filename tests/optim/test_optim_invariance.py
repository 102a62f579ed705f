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
# eps -> 0 is left out: with a zero gradient coordinate, beta2 = 0 and beta1 > 0 Adam divides
# a nonzero m by eps and overflows (in torch as here)
_eps = st.floats(1e-12, 1e-4)
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


LIBS_NORMALISING = [
    (lib, n) for n in ("adam", "adamw", "rmsprop", "adagrad") for lib in ("mtl", "torch")
]


@pytest.mark.parametrize(("lib", "name"), LIBS_NORMALISING)
@settings(deadline=None, max_examples=10)
@given(
    data=st.data(),
    kind=st.sampled_from(["quadratic", "two_units"]),
    seed=st.integers(0, 2**16),
    scales=_scales,
)
def test_normalising_rules_are_head_invariant_within_the_eps_bound(
    lib, name, data, kind, seed, scales
):
    """Teacher-forced: ``|psi^c_k - psi^1_k| <= D_k`` at every step k, per coordinate, with

        D_k = rho D_{k-1} + b_k + f_k,   D_0 = 0,

    where ``b_k`` is :func:`eps_deviation_bound` of step k, ``rho = 1 - lr wd`` for AdamW
    (its decoupled decay shrinks both runs' difference alike) and 1 otherwise, and
    ``f_k = 1e-13 (|u^1_k| + |u^c_k|) + 4 ulp (1 + |c - 1|) (|psi_{k-1}| + |psi_k|, both runs)``
    allows for rounding in both updates (a few operations, relative ulp each) and in the
    parameters, from which ``u^1_k`` (and so ``b_k``, up to the factor ``|c - 1|``) is read
    back. The bound is attained when ``s = d`` (RMSprop with alpha = 0), so this term matters.
    """
    hp = data.draw(_normalising(name), label="hyperparameters")
    rho = 1 - hp["lr"] * hp["weight_decay"] if name == "adamw" else 1.0
    bounds: dict[int, torch.Tensor] = {}
    moved = 0.0
    for step in _teacher_forced(_problem(kind, seed), lib, name, hp, scales, steps=STEPS):
        for i, (g, c, p0, p1, q0, q1) in enumerate(step):
            update = p1 - rho * p0
            b = eps_deviation_bound(update, _lower_bound(name, g, hp), c, hp["eps"])
            size = p0.abs() + p1.abs() + q0.abs() + q1.abs()
            f = 1e-13 * (update.abs() + (q1 - rho * q0).abs()) + 4 * ULP * (1 + abs(c - 1)) * size
            bounds[i] = rho * bounds.get(i, torch.zeros_like(p1)) + b + f
            assert bool(((q1 - p1).abs() <= bounds[i]).all()), (i, (q1 - p1).abs().max())
            moved = max(moved, update.abs().max().item())
    assert moved > 0  # the runs did move


@pytest.mark.parametrize("name", ["signsgd", "signum"])
@settings(deadline=None)
@given(
    kind=st.sampled_from(["quadratic", "two_units"]),
    seed=st.integers(0, 2**16),
    scales=_scales,
    lr=st.floats(1e-4, 0.05),
    momentum=st.sampled_from([0.0, 0.5, 0.9]),
)
def test_sign_methods_are_exactly_head_invariant(name, kind, seed, scales, lr, momentum):
    """sign(c m) = sign(m) for c > 0, and the momentum buffer of c g is c times that of g."""
    hp = {"lr": lr, "momentum": momentum}
    for step in _teacher_forced(_problem(kind, seed), "mtl", name, hp, scales, steps=STEPS):
        for _, _, _, p1, _, q1 in step:
            assert torch.equal(p1, q1)


@pytest.mark.parametrize("lib", ["mtl", "torch"])
@settings(deadline=None)
@given(
    kind=st.sampled_from(["quadratic", "two_units"]),
    seed=st.integers(0, 2**16),
    scales=_scales,
    lr=st.floats(1e-4, 0.05),
    momentum=st.sampled_from([0.0, 0.5, 0.9]),
    nesterov=st.booleans(),
)
def test_sgd_head_updates_scale_exactly_by_the_loss_scale(
    lib, kind, seed, scales, lr, momentum, nesterov
):
    """``u^c_k = c u^1_k`` (a task weight is a task learning rate, paper Eq. 14), up to
    ``1e-12 c |u^1_k| + 4 ulp (|psi^c| + c |psi^1|)`` for rounding."""
    hp = {
        "lr": lr,
        "momentum": momentum if not nesterov else max(momentum, 0.5),
        "nesterov": nesterov,
    }
    for step in _teacher_forced(_problem(kind, seed), lib, "sgd", hp, scales, steps=STEPS):
        for _, c, p0, p1, q0, q1 in step:
            expected = c * (p1 - p0)
            tol = 1e-12 * expected.abs() + 4 * ULP * (
                q1.abs() + c * p1.abs() + q0.abs() + c * p0.abs()
            )
            assert bool(((q1 - q0 - expected).abs() <= tol).all())


# --- trajectories on the quadratic family, frozen backbone -------------------------------------


def _head_trajectory(problem: HardSharing, name: str, groups: list[dict], steps: int):
    """Train the heads of a frozen-backbone problem with real gradients; per-head groups."""
    problem = copy.deepcopy(problem).freeze_backbone()
    opt = mtl.optim.build(
        name, [{"params": problem.head_parameters(t), **g} for t, g in enumerate(groups)]
    )
    out = []
    for _ in range(steps):
        opt.zero_grad()
        problem.losses().sum().backward()
        opt.step()
        out.append(torch.cat([p.detach().flatten() for p in problem.head_parameters()]))
    return torch.stack(out)


TRAJECTORY_STEPS = 150


@settings(deadline=None, max_examples=10)
@given(
    seed=st.integers(0, 2**16),
    scales=_scales,
    lr=st.floats(1e-3, 0.05),
    betas=st.tuples(st.floats(0.5, 0.95), st.floats(0.9, 0.999)),
    eps=st.sampled_from([1e-8, 1e-6]),
)
def test_adam_head_trajectory_equals_the_unscaled_one_with_eps_over_c(seed, scales, lr, betas, eps):
    """Adam on ``c_t L_t`` with eps is Adam on ``L_t`` with ``eps / c_t`` (the identity of
    :func:`eps_deviation_bound`, now along real trajectories). Tolerance: rounding only, a few
    ulp of the parameters per step, ``K * 16 ulp * (1 + max |psi|)`` over K steps, i.e. no
    amplification of rounding by the dynamics. With beta1 = 0 and a small beta2 Adam is close to
    sign descent and does amplify rounding (seen: 3e-12 after 150 steps), so the betas are
    drawn from the usual range."""
    problem = Quadratic.make(tasks=2, seed=seed, condition=100.0)
    hp = {"lr": lr, "betas": betas}
    scaled = _head_trajectory(
        problem.with_scales(scales), "adam", [{**hp, "eps": eps}] * 2, TRAJECTORY_STEPS
    )
    unscaled = _head_trajectory(
        problem, "adam", [{**hp, "eps": eps / c} for c in scales], TRAJECTORY_STEPS
    )
    tol = TRAJECTORY_STEPS * 16 * ULP * (1 + unscaled.abs().max())
    assert (scaled - unscaled).abs().max() <= tol


@settings(deadline=None, max_examples=10)
@given(seed=st.integers(0, 2**16), scales=_scales, momentum=st.sampled_from([0.0, 0.9]))
def test_sgd_head_trajectory_equals_sgd_with_the_scaled_head_learning_rate(seed, scales, momentum):
    """SGD on ``c_t L_t`` = SGD on ``L_t`` with head learning rate ``c_t lr`` (paper Eq. 14).
    ``lr = 0.5 / max c`` keeps both runs stable (head Hessians have eigenvalues <= 1);
    tolerance as for Adam: rounding, ``K * 16 ulp * (1 + max |psi|)``."""
    problem = Quadratic.make(tasks=2, seed=seed, condition=100.0)
    lr = 0.5 / max(scales)
    scaled = _head_trajectory(
        problem.with_scales(scales), "sgd", [{"lr": lr, "momentum": momentum}] * 2, TRAJECTORY_STEPS
    )
    unscaled = _head_trajectory(
        problem, "sgd", [{"lr": lr * c, "momentum": momentum} for c in scales], TRAJECTORY_STEPS
    )
    tol = TRAJECTORY_STEPS * 16 * ULP * (1 + unscaled.abs().max())
    assert (scaled - unscaled).abs().max() <= tol
    assert (unscaled[-1] - unscaled[0]).abs().max() > 1e-3  # the heads did move


# --- counterexamples and full invariance (paper App. A2, free backbone) -------------------------

PAPER_SCALES = (10.0, 0.1)


def _train(problem: HardSharing, name: str, steps: int, method: str = "ew", **hp):
    """All parameters after each step. ``method``: "ew" (sum of losses), "uwo" (sum of
    ``L_t / sg[L_t]``) or "per_task" (one state per task for the shared parameters)."""
    problem = copy.deepcopy(problem)
    shared, heads = problem.shared_parameters(), problem.head_parameters()
    tasks = problem.tasks if method == "per_task" else None
    opt = mtl.optim.build(name, [{"params": shared, "tasks": tasks}, {"params": heads}], **hp)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        losses = problem.losses()
        task_grads = None
        if method == "per_task":
            per_task = [torch.autograd.grad(loss, shared, retain_graph=True) for loss in losses]
            task_grads = {p: [g[i] for g in per_task] for i, p in enumerate(shared)}
        total = (losses / losses.detach()).sum() if method == "uwo" else losses.sum()
        total.backward()
        opt.step(task_grads=task_grads)
        out.append(
            (
                torch.cat([p.detach().flatten() for p in shared]),
                torch.cat([p.detach().flatten() for p in heads]),
            )
        )
    return out


def _gap(a, b, k: int) -> tuple[float, float]:
    """(backbone, heads) max deviation after step k + 1."""
    return tuple((x - y).abs().max().item() for x, y in zip(a[k], b[k], strict=True))


@pytest.mark.parametrize("kind", ["quadratic", "two_units"])
def test_free_backbone_adam_is_invariant_only_at_the_first_step(kind: str):
    problem = _problem(kind, 0)
    a = _train(problem, "adam", 10, lr=1e-3, eps=1e-12)
    b = _train(problem.with_scales(PAPER_SCALES), "adam", 10, lr=1e-3, eps=1e-12)
    backbone, heads = _gap(a, b, 0)
    assert heads <= 1e-9  # step 1: the heads see c_t times the same gradient
    assert backbone > 1e-6  # but the backbone sees sum_t c_t g_t, no scaling of sum_t g_t
    assert min(_gap(a, b, 9)) > 1e-6  # afterwards the heads follow a different backbone


def test_coupled_l2_breaks_head_invariance_decoupled_decay_does_not():
    problem = Quadratic.make(tasks=2, seed=1, condition=100.0)
    runs = {}
    for name in ("adam", "adamw"):
        groups = [{"lr": 1e-2, "eps": 1e-30, "weight_decay": 0.1}] * 2
        runs[name] = (
            _head_trajectory(problem, name, groups, 100),
            _head_trajectory(problem.with_scales(PAPER_SCALES), name, groups, 100),
        )
    assert (runs["adam"][0] - runs["adam"][1]).abs().max() > 1e-3
    assert (runs["adamw"][0] - runs["adamw"][1]).abs().max() <= 100 * 16 * ULP * 10


@pytest.mark.parametrize("kind", ["quadratic", "two_units"])
def test_sgd_per_task_is_not_invariant(kind: str):
    problem = _problem(kind, 0)
    a = _train(problem, "sgd", 10, method="per_task", lr=1e-2, momentum=0.9)
    b = _train(
        problem.with_scales(PAPER_SCALES), "sgd", 10, method="per_task", lr=1e-2, momentum=0.9
    )
    assert min(_gap(a, b, 9)) > 1e-4


@pytest.mark.parametrize("kind", ["quadratic", "two_units"])
@pytest.mark.parametrize(
    ("method", "name", "hp"),
    [
        ("uwo", "sgd", {"lr": 1e-3, "momentum": 0.9}),
        ("uwo", "adam", {"lr": 1e-3}),
        ("per_task", "adam", {"lr": 1e-3, "eps": 1e-30}),
    ],
)
def test_uwo_and_per_task_adam_leave_all_parameters_invariant(kind, method, name, hp):
    """Paper runs 5-8: every parameter, backbone included, equals the unscaled run. The
    identity is exact (UW-O: ``c L / (c sg[L])``; per-task Adam: each state sees ``c_t g_t``,
    eps = 1e-30 makes the eps effect negligible); tolerance: rounding over 50 steps,
    ``50 * 16 ulp * (1 + max |theta|)``. EW with Adam on the same problem is the contrast."""
    problem = _problem(kind, 0)
    a = _train(problem, name, 50, method=method, **hp)
    b = _train(problem.with_scales(PAPER_SCALES), name, 50, method=method, **hp)
    size = 1 + max(max(x.abs().max().item(), y.abs().max().item()) for x, y in a)
    for k in range(50):
        assert max(_gap(a, b, k)) <= 50 * 16 * ULP * size
    ew_a = _train(problem, "adam", 50, lr=1e-3)
    ew_b = _train(problem.with_scales(PAPER_SCALES), "adam", 50, lr=1e-3)
    assert max(_gap(ew_a, ew_b, 49)) > 1e-6
