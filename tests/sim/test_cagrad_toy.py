"""The CAGrad 2-D toy: analytic gradients, optima, the toy's method conventions, the batched runs.

References are independent: torch autograd on the original expressions, a transcription of the
original toy's solvers (scipy ``minimize_scalar`` for CAGrad), per-run ``torch.optim`` loops,
and the optima quoted in the paper's notes.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

from sim.problems import cagrad as toy
from sim.studies import cagrad_toy as study

coords = st.floats(-12, 12, allow_nan=False)
points = st.lists(st.tuples(coords, coords), min_size=1, max_size=16).map(np.array)


def torch_losses(x: torch.Tensor) -> torch.Tensor:
    """The original toy's ``batch_forward``, verbatim up to names."""
    x1, x2 = x[:, 0], x[:, 1]
    f1 = torch.clamp((0.5 * (-x1 - 7) - torch.tanh(-x2)).abs(), toy.LOWER).log() + 6
    f2 = torch.clamp((0.5 * (-x1 + 3) + torch.tanh(-x2) + 2).abs(), toy.LOWER).log() + 6
    c1 = torch.clamp(torch.tanh(x2 * 0.5), 0)
    f1_sq = ((-x1 + 7).pow(2) + 0.1 * (-x2 - 8).pow(2)) / 10 - 20
    f2_sq = ((-x1 - 7).pow(2) + 0.1 * (-x2 - 8).pow(2)) / 10 - 20
    c2 = torch.clamp(torch.tanh(-x2 * 0.5), 0)
    return torch.stack([f1 * c1 + f1_sq * c2, f2 * c1 + f2_sq * c2], -1)


def torch_jacobian(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    loss = torch_losses(xt)
    rows = [torch.autograd.grad(loss[:, t].sum(), xt, retain_graph=True)[0] for t in range(2)]
    return loss.detach().numpy(), torch.stack(rows, 1).numpy()


# --- the problem -----------------------------------------------------------------------------


@given(points)
def test_losses_and_jacobian_equal_torch_autograd(x):
    loss, jac = toy.losses_and_jacobian(x)
    ref_loss, ref_jac = torch_jacobian(x)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(jac, ref_jac, rtol=1e-11, atol=1e-11)


def test_jacobian_matches_autograd_at_the_kinks():
    x2 = 0.3
    kinks = np.array(
        [
            [1.0, 0.0],  # c1 = c2 = 0: clamp passes no gradient at its bound
            [-7.0, -0.0],
            [-7 + 2 * np.tanh(x2), x2],  # |u1| = 0 < LOWER: clamped log valley of f1
            [7 - 2 * np.tanh(x2), x2],  # |u2| = 0
        ]
    )
    _, jac = toy.losses_and_jacobian(kinks)
    np.testing.assert_allclose(jac, torch_jacobian(kinks)[1], atol=1e-12)
    assert np.all(jac[:2] == 0)


def test_bad_points_are_rejected():
    with pytest.raises(ValueError, match="last axis of length 2"):
        toy.losses(np.zeros((3, 3)))


def test_global_minimum_matches_the_quoted_point_and_is_stationary():
    x_star, value = toy.mean_loss_minimum()
    np.testing.assert_allclose(x_star, (0.0, -8.3551), atol=1e-4)  # paper notes, 5.1
    _, jac = toy.losses_and_jacobian(np.array(x_star))
    assert np.linalg.norm(jac.mean(0)) < toy.GRAD_TOL
    rng = np.random.default_rng(0)
    nearby = np.array(x_star) + rng.normal(scale=0.05, size=(200, 2))
    assert np.all(toy.mean_loss(nearby) > value)


def test_pareto_front_is_the_curve_quoted_and_weighted_stationary():
    weights = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    front = toy.pareto_front(weights)
    quoted = [(-7, -8.4345), (-3.5, -8.376), (0, -8.3551), (3.5, -8.376), (7, -8.4345)]
    np.testing.assert_allclose(front, quoted, atol=6e-4)  # paper notes, 5.1
    assert not np.allclose(front[:, 1], -8.3552, atol=1e-2)  # not the plotted straight line
    _, jac = toy.losses_and_jacobian(front)
    combo = weights[:, None] * jac[:, 0] + (1 - weights[:, None]) * jac[:, 1]
    assert np.abs(combo).max() < toy.GRAD_TOL


def test_pareto_front_trades_one_loss_for_the_other():
    w = np.linspace(0, 1, 21)
    values = toy.losses(toy.pareto_front(w))
    assert np.all(np.diff(values[:, 0]) < 0) and np.all(np.diff(values[:, 1]) > 0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        toy.pareto_front(np.array([1.5]))


# --- the methods: closed forms vs a transcription of the original solvers ---------------------


def original(method: str, g: np.ndarray, x: float | None = None) -> np.ndarray:
    """The original toy's solver on grads of shape (dim, tasks), transcribed.

    For CAGrad, ``x`` replaces scipy's solution of the inner problem when given.
    """
    g1, g2 = g[:, 0], g[:, 1]
    g11, g12, g22 = g1 @ g1, g1 @ g2, g2 @ g2
    if method == "ew":
        return g.mean(1)
    if method == "pcgrad":
        return ((1 - g12 / g11) * g1 + (1 - g12 / g22) * g2) / 2 if g12 < 0 else (g1 + g2) / 2
    if method == "mgda":
        if g12 < min(g11, g22):
            x = (g22 - g12) / (g11 + g22 - 2 * g12 + 1e-8)
        else:
            x = 1.0 if g11 < g22 else 0.0
        return x * g1 + (1 - x) * g2
    c = 0.5
    coef = c * 0.5 * np.sqrt(g11 + g22 + 2 * g12 + 1e-4)
    if x is None:
        objective = lambda t: cagrad_objective(t, coef, g11, g12, g22)  # noqa: E731
        x = minimize_scalar(objective, bounds=(0, 1), method="bounded").x
    gw = x * g1 + (1 - x) * g2
    gw_norm = np.sqrt(x**2 * g11 + (1 - x) ** 2 * g22 + 2 * x * (1 - x) * g12 + 1e-4)
    return ((g1 + g2) / 2 + coef / (gw_norm + 1e-4) * gw) / (1 + c)


def cagrad_objective(x, coef, g11, g12, g22):
    return coef * np.sqrt(x**2 * (g11 + g22 - 2 * g12) + 2 * x * (g12 - g22) + g22 + 1e-4) + (
        0.5 * x * (g11 + g22 - 2 * g12) + (0.5 + x) * (g12 - g22) + g22
    )


jacobians = st.builds(
    lambda seed, log_scales: (
        np.random.default_rng(seed).normal(size=(2, 3)) * (10.0 ** np.array(log_scales))[:, None]
    ),
    st.integers(0, 2**32 - 1),
    st.tuples(st.floats(-2, 2), st.floats(-2, 2)),
)


def direction(method: str, jac: np.ndarray) -> np.ndarray:
    gram = jac @ jac.T
    return study.METHODS[method](gram[None])[0] @ jac


@pytest.mark.parametrize("method", ["ew", "pcgrad", "mgda"])
@given(jac=jacobians)
def test_closed_forms_equal_the_original_solvers(method, jac):
    np.testing.assert_allclose(
        direction(method, jac), original(method, jac.T), rtol=1e-10, atol=1e-12
    )


@given(jac=jacobians)
def test_cagrad_closed_form_beats_scipy_bounded_minimiser(jac):
    gram = jac @ jac.T
    g11, g12, g22 = gram[0, 0], gram[0, 1], gram[1, 1]
    coef = 0.5 * 0.5 * np.sqrt(g11 + g22 + 2 * g12 + 1e-4)
    x = study.cagrad_inner(gram[None])[0]
    res = minimize_scalar(
        lambda t: cagrad_objective(t, coef, g11, g12, g22), bounds=(0, 1), method="bounded"
    )
    scale = abs(res.fun) + coef + 1
    assert 0 <= x <= 1
    assert cagrad_objective(x, coef, g11, g12, g22) <= res.fun + 1e-12 * scale
    grid = np.linspace(0, 1, 1001)
    assert (
        cagrad_objective(x, coef, g11, g12, g22)
        <= cagrad_objective(grid, coef, g11, g12, g22).min() + 1e-12 * scale
    )
    # given the same inner solution, the update is the original's outer formula exactly (scipy's
    # x differs by its tolerance xatol=1e-5, which moves d a lot where the objective is flat)
    ours = direction("cagrad", jac)
    np.testing.assert_allclose(ours, original("cagrad", jac.T, x), rtol=1e-10, atol=1e-12)


@given(jac=jacobians)
def test_pcgrad_and_mgda_do_not_conflict_with_either_task(jac):
    for method in ("pcgrad", "mgda"):
        d = direction(method, jac)
        assert np.all(jac @ d >= -1e-9 * np.abs(jac @ jac.T).max())


@given(jac=jacobians)
def test_mgda_is_the_min_norm_convex_combination(jac):
    d = direction("mgda", jac)
    grid = np.linspace(0, 1, 2001)[:, None]
    combos = grid * jac[0] + (1 - grid) * jac[1]
    assert np.linalg.norm(d) <= np.linalg.norm(combos, axis=1).min() * (1 + 1e-6) + 1e-9


def test_cagrad_of_equal_gradients_is_that_gradient_times_a_known_factor():
    g = np.array([[3.0, -4.0], [3.0, -4.0]])  # g1 = g2, A = 0: the flat inner problem
    gram = g @ g.T
    w = study.cagrad_weights(gram[None])[0]
    k = 0.5 * np.sqrt(4 * 25 + 1e-4) / 2
    lam = k / (np.sqrt(25 + 1e-4) + 1e-4)
    np.testing.assert_allclose(w.sum(), (1 + lam) / 1.5, rtol=1e-14)


# --- the batched runs ----------------------------------------------------------------------------


def torch_run(optimizer: str, method: str, lr: float, init: int, steps: int) -> np.ndarray:
    """Original-style loop: per-step autograd, the transcribed solver, a torch optimizer."""
    x = torch.tensor(toy.INITS[init], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([x], lr=lr) if optimizer == "adam" else torch.optim.SGD([x], lr=lr)
    points = [x.detach().numpy().copy()]
    for _ in range(steps):
        loss = torch_losses(x[None])[0]
        grads = [torch.autograd.grad(loss[t], x, retain_graph=True)[0] for t in range(2)]
        g = original(method, torch.stack(grads, 1).numpy())
        opt.zero_grad()
        x.grad = torch.tensor(g)
        opt.step()
        points.append(x.detach().numpy().copy())
    return np.array(points)


@pytest.mark.parametrize(
    ("optimizer", "method", "lr", "init"),
    [
        ("adam", "cagrad", 0.05, 1),
        ("gd", "pcgrad", 0.5, 0),
        ("adam", "mgda", 1.0, 2),
        ("gd", "ew", 0.1, 1),
    ],
)
def test_batched_runs_follow_the_original_per_run_loop(optimizer, method, lr, init):
    steps = 300
    cfg = study.Config(
        optimizers=(optimizer,),
        methods=(method,),
        lrs=(lr, 0.001),
        inits=(init, 0),
        max_steps=steps,
        loss_tol=1e-12,
        radius=1e-12,
    )
    result = study.simulate(cfg)
    ref = torch_run(optimizer, method, lr, init, steps)
    traj = result.trajectories[study.Run(optimizer, method, lr, init).key]
    tol = 1e-3 if method == "cagrad" else 1e-9  # scipy's bounded minimiser stops at xatol=1e-5
    np.testing.assert_allclose(
        traj, ref[:: cfg.record_every].astype(np.float32), atol=tol, rtol=1e-5
    )


SMALL = study.Config(lrs=(5.0, 1.0, 0.05), max_steps=1500)


@pytest.fixture(scope="module")
def small_result() -> study.Result:
    return study.simulate(SMALL)


def test_a_run_does_not_depend_on_the_other_runs_in_its_batch(small_result):
    sub = dataclasses.replace(
        SMALL, optimizers=("adam",), methods=("cagrad", "ew"), lrs=(1.0,), inits=(2, 0)
    )
    alone = study.simulate(sub)
    ours = dict(zip([r.key for r in small_result.runs], small_result.iterations, strict=True))
    for run, it in zip(alone.runs, alone.iterations, strict=True):
        assert ours[run.key] == it
        np.testing.assert_array_equal(
            alone.trajectories[run.key], small_result.trajectories[run.key]
        )


def test_iterations_are_the_first_step_meeting_the_criterion(small_result):
    reached = [
        (r, int(it))
        for r, it in zip(small_result.runs, small_result.iterations, strict=True)
        if it > 0
    ]
    assert len(reached) >= 10
    x_star, l_star = toy.mean_loss_minimum()
    for run, it in reached[:: max(1, len(reached) // 4)]:
        one = dataclasses.replace(
            SMALL,
            optimizers=(run.optimizer,),
            methods=(run.method,),
            lrs=(run.lr,),
            inits=(run.init,),
        )
        assert study.simulate(dataclasses.replace(one, max_steps=it - 1)).iterations[0] == -1
        end = study.simulate(dataclasses.replace(one, max_steps=it))
        assert end.iterations[0] == it
        last = end.trajectories[run.key][-1].astype(float)
        assert np.linalg.norm(last - x_star) <= SMALL.radius + 1e-6
        assert toy.mean_loss(last) - l_star <= SMALL.loss_tol + 1e-5


def test_trajectories_are_float32_every_100_steps_until_the_stop(small_result):
    for run, it in zip(small_result.runs, small_result.iterations, strict=True):
        traj = small_result.trajectories[run.key]
        stop = SMALL.max_steps if it < 0 else it
        assert traj.dtype == np.float32
        assert len(traj) == stop // 100 + 1 + (stop % 100 != 0)
        np.testing.assert_array_equal(traj[0], toy.INITS[run.init].astype(np.float32))


def test_diverging_runs_stop_and_count_as_not_reached():
    cfg = study.Config(optimizers=("gd",), methods=("ew",), lrs=(1e100,), inits=(1,), max_steps=500)
    result = study.simulate(cfg)
    assert result.iterations.tolist() == [-1]
    (traj,) = result.trajectories.values()
    assert len(traj) == 2 and not np.isfinite(traj[-1]).any()  # stopped at the first check


def test_table_takes_the_max_over_inits_and_dash_unless_all_reached():
    cfg = study.Config(optimizers=("adam",), methods=("ew",), lrs=(1.0, 0.1), max_steps=10)
    runs = cfg.runs()
    fake = study.Result(cfg, runs, np.array([5, 9, 7, 3, -1, 4]), {})
    assert study.table(fake) == {("adam", "ew"): {1.0: 9, 0.1: None}}
    md = study.table_markdown(fake)
    assert "| adam | ew | 9 / 22 |" in md  # paper: 22 at lr 1
    assert "- / 709 (cap) |" in md  # 709 at lr 0.1 lies beyond the 10-step cap: expected miss
    assert "Agreement: 0 of 1 cells with a published value (1 expected misses" in md
    assert "were fitted" in md and "float32 rounding of tanh" in md
    assert study.agrees(None, None) and study.agrees(30, 59) and not study.agrees(30, 61)
    assert not study.agrees(None, 5)


def test_paper_table_has_one_value_per_learning_rate():
    assert all(len(row) == len(study.LRS) for row in study.PAPER_TABLE_A3.values())


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("methods", ("ew", "nash"), "unknown method 'nash'; valid: ew, pcgrad, cagrad, mgda"),
        ("optimizers", ("sgdm",), "unknown optimizer 'sgdm'; valid: gd, adam"),
        ("lrs", (0.1, -1.0), "learning rates must be finite and > 0"),
        ("inits", (3,), "inits must be indices in 0..2"),
        ("max_steps", 0, "max_steps"),
        ("dtype", "float16", "valid: float32, float64"),
    ],
)
def test_bad_configuration_is_rejected_by_name(field, value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        study.Config(**{field: value})


def test_float32_runs_in_float32_and_stays_close_to_float64():
    cfg = study.Config(
        optimizers=("adam",), methods=("cagrad",), lrs=(0.1,), inits=(1,), max_steps=300
    )
    ref = study.simulate(cfg).trajectories
    low = study.simulate(dataclasses.replace(cfg, dtype="float32")).trajectories
    key = next(iter(ref))
    np.testing.assert_allclose(low[key], ref[key], atol=1e-3)
    assert not np.array_equal(low[key], ref[key])  # the precision did change


# --- the toy's conventions vs the library's general methods -----------------------------------

well_scaled = st.builds(
    lambda seed, log_scales: (
        np.random.default_rng(seed).normal(size=(2, 4)) * (10.0 ** np.array(log_scales))[:, None]
    ),
    st.integers(0, 2**32 - 1),
    st.tuples(st.floats(0, 1), st.floats(0, 1)),
)


@given(jac=well_scaled)
def test_toy_conventions_equal_the_general_methods_up_to_scale(jac):
    """EW and PCGrad are the library's sums divided by T = 2; MGDA is the same min-norm point;
    CAGrad is LibMTL's form with the (1 + c) division, up to the toy's 1e-4 regularisers."""
    import mtl.methods

    J = torch.tensor(jac)

    def general(name: str, **hp) -> np.ndarray:
        return mtl.methods.aggregate(name, J, **hp).numpy()

    np.testing.assert_allclose(direction("ew", jac), general("ew") / 2, rtol=1e-12)
    np.testing.assert_allclose(
        direction("pcgrad", jac), general("pcgrad") / 2, rtol=1e-10, atol=1e-12
    )
    np.testing.assert_allclose(direction("mgda", jac), general("mgda"), rtol=1e-6, atol=1e-8)
    ours, lib = direction("cagrad", jac), general("cagrad", rescale=2)
    assert np.linalg.norm(ours - lib) <= 1e-3 * np.linalg.norm(lib)
