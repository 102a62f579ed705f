"""The quadratic family: planted relatedness, per-sample noise and the exact Pareto front."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from sim.problems.quadratic import Quadratic, vectors_at_cosine

seeds = st.integers(0, 2**16)
conditions = st.floats(1, 1e3)


@st.composite
def instances(draw, tasks: st.SearchStrategy[int] | None = None) -> Quadratic:
    """Random small instances over tasks (1 to 4 unless given), dims, conditioning, noise and
    loss scales."""
    t = draw(st.integers(1, 4) if tasks is None else tasks)
    d, k = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    scales = draw(st.lists(st.floats(-3, 3).map(lambda e: 10.0**e), min_size=t, max_size=t))
    return Quadratic.make(
        tasks=t,
        shared_dim=d,
        head_dim=k,
        samples=d + k + draw(st.integers(0, 6)),
        condition=draw(conditions),
        noise=draw(st.floats(0, 3)),
        scales=scales,
        seed=draw(seeds),
    )


def weighted_gradient(q: Quadratic, weights: torch.Tensor, phi, psi) -> torch.Tensor:
    """Autograd gradient of ``sum_t w_t L_t`` at ``(phi, psi)``, flat ``(phi, psi_1..psi_T)``."""
    phi = phi.clone().requires_grad_(True)
    psi = psi.clone().requires_grad_(True)
    (weights * q.losses_at(phi, psi)).sum().backward()
    return torch.cat([phi.grad, psi.grad.flatten()])


def test_default_instances_are_unchanged():
    # regression values recorded from the family before cosine / magnitudes existed (seed 5)
    q = Quadratic.make(seed=5)
    expected_y = [1.0734355518375276, 0.2481406556471577, -0.9319697126810983]
    assert q.y[0, :3].tolist() == expected_y
    assert q.y[1, -1].item() == -3.2010712985432113
    assert q.psi(1).detach().tolist() == [
        -1.727048416644511,
        -0.14521085747635992,
        0.16181963346027795,
    ]
    assert q.A[1, 2, 3].item() == -1.0652543652691266


@given(
    tasks=st.integers(2, 4),
    fraction=st.floats(0, 1),
    logs=st.lists(st.floats(-2, 2), min_size=4, max_size=4),
    extra=st.integers(0, 3),
    noise=st.floats(0, 3),
    condition=conditions,
    seed=seeds,
)
def test_planted_optima_have_the_cosine_and_magnitudes(
    tasks, fraction, logs, extra, noise, condition, seed
):
    lowest = -1 / (tasks - 1)
    cosine = lowest + fraction * (1 - lowest)
    magnitudes = [10.0**e for e in logs[:tasks]]
    kwargs = dict(
        tasks=tasks, shared_dim=tasks + extra, condition=condition, noise=noise, seed=seed
    )
    q = Quadratic.make(cosine=cosine, magnitudes=magnitudes, **kwargs)
    phi_star = q.task_optima()[:, : q.shared_dim]  # measured: least squares on the targets
    norms = phi_star.norm(dim=1)
    np.testing.assert_allclose(norms, magnitudes, rtol=1e-8)
    for s, t in itertools.combinations(range(tasks), 2):
        assert float(phi_star[s] @ phi_star[t] / (norms[s] * norms[t])) == pytest.approx(
            cosine, abs=1e-8
        )
    plain = Quadratic.make(**{**kwargs, "noise": 0.0})  # same design, heads' optima, start
    for name in ("A", "B", "phi"):
        torch.testing.assert_close(getattr(q, name), getattr(plain, name), rtol=0, atol=0)
    heads = q.task_optima()[:, q.shared_dim :]
    torch.testing.assert_close(heads, plain.task_optima()[:, q.shared_dim :], rtol=1e-8, atol=1e-8)


@settings(deadline=None)
@given(cosine=st.floats(-1, 1), dim=st.integers(2, 12), seed=seeds)
def test_two_vectors_at_cosine_are_a_rotated_pair(cosine, dim, seed):
    v = vectors_at_cosine(cosine, (2.0, 0.5), dim, torch.Generator().manual_seed(seed))
    np.testing.assert_allclose(v.norm(dim=1), [2.0, 0.5], rtol=1e-12)
    assert float(v[0] @ v[1]) == pytest.approx(cosine, abs=1e-12)


@given(q=instances(), data=st.data())
def test_pareto_point_is_stationary_for_the_weighted_sum(q, data):
    w = torch.tensor(data.draw(st.lists(st.floats(0, 1), min_size=q.tasks, max_size=q.tasks)))
    w[data.draw(st.integers(0, q.tasks - 1))] += 0.1  # not all zero
    phi, psi = q.pareto_point(w)
    g = weighted_gradient(q, w, phi, psi)
    # the weighted gradient at the start sets the scale of rounding
    start = torch.stack([q.psi(t).detach() for t in range(q.tasks)])
    g0 = weighted_gradient(q, w, q.phi.detach(), start)
    assert float(g.abs().max()) <= 1e-9 * (1 + float(g0.abs().max()))


@given(q=instances(tasks=st.just(2)))
def test_each_front_point_is_best_for_its_weights_and_none_dominates_another(q):
    # effective weights u = w alpha_1 / (w alpha_1 + (1 - w) alpha_2) spread over (0, 1)
    u = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)
    a1, a2 = q.scales.tolist()
    front = q.pareto_front((u / a1) / (u / a1 + (1 - u) / a2))
    loss = front.losses
    objective = front.weights @ loss.T  # [i, j]: weights of point i at point j
    own = objective.diagonal()[:, None]
    assert bool((own <= objective + 1e-12 * objective.abs()).all())
    assert bool((loss[1:, 0] < loss[:-1, 0]).all())  # L_1 falls as its weight grows
    assert bool((loss[1:, 1] > loss[:-1, 1]).all())  # L_2 rises
    for i, j in itertools.permutations(range(len(loss)), 2):
        assert not (bool((loss[i] <= loss[j]).all()) and bool((loss[i] < loss[j]).any()))


@given(q=instances(tasks=st.just(2)))
def test_the_ends_of_the_front_are_the_single_task_optima(q):
    front = q.pareto_front([0.0, 1.0])
    task1, task2 = q.task_optima()
    d = q.shared_dim
    torch.testing.assert_close(front.flat()[1, : task1.numel()], task1)  # w = 1: task 1 alone
    torch.testing.assert_close(front.phi[0], task2[:d])  # w = 0: task 2 alone
    torch.testing.assert_close(front.psi[0, 1], task2[d:])


@settings(deadline=None, max_examples=10)
@given(q=instances(tasks=st.integers(1, 3)), fraction=st.floats(0.05, 0.95))
def test_pareto_point_agrees_with_a_numerical_minimiser(q, fraction):
    w = torch.full((q.tasks,), 1.0, dtype=torch.float64)
    w[0] = fraction
    d, k = q.shared_dim, q.B.shape[2]

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        t = torch.tensor(x, requires_grad=True)
        value = (w * q.losses_at(t[:d], t[d:].reshape(q.tasks, k))).sum()
        value.backward()
        return value.item(), t.grad.numpy()

    x0 = np.zeros(d + q.tasks * k)
    found = minimize(objective, x0, jac=True, method="BFGS", options={"gtol": 1e-12})
    phi, psi = q.pareto_point(w)
    best = objective(torch.cat([phi, psi.flatten()]).numpy())[0]
    assert best <= found.fun + 1e-12 * (1 + abs(found.fun))  # the exact point is no worse
    assert found.fun == pytest.approx(best, rel=1e-8, abs=1e-12)


def test_golden_pareto_point_of_a_tiny_instance_equals_sympy():
    A = [[[1], [2]], [[3], [-1]]]
    B = [[[1], [0]], [[1], [2]]]
    y = [[1, 2], [0, 3]]
    scales, weights = (1, 2), (sp.Rational(1, 3), sp.Rational(2, 3))
    phi, p1, p2 = sp.symbols("phi psi1 psi2")
    heads = (p1, p2)
    total = sum(
        weights[t]
        * scales[t]
        * sum((A[t][i][0] * phi + B[t][i][0] * heads[t] - y[t][i]) ** 2 for i in range(2))
        / 4
        for t in range(2)
    )
    exact = sp.solve([sp.diff(total, v) for v in (phi, p1, p2)], (phi, p1, p2))
    f64 = torch.float64
    q = Quadratic(
        torch.tensor(A, dtype=f64),
        torch.tensor(B, dtype=f64),
        torch.tensor(y, dtype=f64),
        torch.zeros(1, dtype=f64),
        torch.zeros(2, 1, dtype=f64),
        scales,
    )
    got_phi, got_psi = q.pareto_point([1 / 3, 2 / 3])
    assert got_phi.item() == pytest.approx(float(exact[phi]), rel=1e-13)
    assert got_psi.flatten().tolist() == pytest.approx(
        [float(exact[p1]), float(exact[p2])], rel=1e-13
    )


@given(q=instances())
def test_per_sample_gradients_average_to_the_full_gradient_and_match_autograd(q):
    g_phi, g_psi = q.per_sample_gradients()
    full_phi, full_psi = q.gradients()
    torch.testing.assert_close(g_phi.mean(1), full_phi, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(g_psi.mean(1), full_psi, rtol=1e-10, atol=1e-12)
    t, i = q.tasks - 1, q.y.shape[1] - 1
    (q.scales[t] / 2 * q.residuals()[t, i] ** 2).backward()
    torch.testing.assert_close(g_phi[t, i], q.phi.grad)
    torch.testing.assert_close(g_psi[t, i], q.psi(t).grad)


@given(noise=st.floats(0.01, 10), extra=st.integers(1, 6), seed=seeds, condition=conditions)
def test_per_sample_conflicts_at_the_task_optimum_grow_with_the_noise(
    noise, extra, seed, condition
):
    """At a task's (planted) optimum its per-sample gradients sum to zero, so their mean
    pairwise inner product is ``-sum_i ||g_i||^2 / (n (n - 1)) < 0``; they are ``noise`` times
    those at noise 1 (same seed), so the disagreement grows as ``noise^2``; none at noise 0."""

    def spread(level: float) -> tuple[torch.Tensor, float]:
        q = Quadratic.make(
            samples=7 + extra, noise=level, cosine=0.2, condition=condition, seed=seed
        )
        optimum = q.task_optima()[0]
        with torch.no_grad():
            q.phi.copy_(optimum[: q.shared_dim])
            q.psi(0).copy_(optimum[q.shared_dim :])
        g = torch.cat(q.per_sample_gradients(), dim=2)[0]  # task 1: (n, d + k)
        n = g.shape[0]
        pairs = (g @ g.T).sum() - (g**2).sum()
        return g, float(pairs) / (n * (n - 1))

    g0, _ = spread(0.0)
    g1, pair1 = spread(1.0)
    g, pair = spread(noise)
    assert float(g0.abs().max()) < 1e-12  # noise-free samples agree: all gradients vanish
    torch.testing.assert_close(g, noise * g1, rtol=1e-8, atol=1e-12)
    assert pair1 < 0
    assert pair == pytest.approx(noise**2 * pair1, rel=1e-7)
    torch.testing.assert_close(g.sum(0), torch.zeros_like(g[0]), rtol=0, atol=1e-10 * noise)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: Quadratic.make(magnitudes=(1.0, 2.0)), "pass cosine too"),
        (lambda: Quadratic.make(cosine=0.5, magnitudes=(1.0,)), "one norm per task"),
        (lambda: Quadratic.make(tasks=3, cosine=-0.9), r"must lie in \[-0.5, 1\]"),
        (lambda: Quadratic.make(tasks=5, shared_dim=4, cosine=0.0), "raise the dimension"),
        (lambda: Quadratic.make(noise=-1.0), "noise=-1.0 must be >= 0"),
        (lambda: Quadratic.make(tasks=3).pareto_front(), "pareto_front is for 2 tasks"),
        (lambda: Quadratic.make().pareto_front([0.5, 1.5]), r"numbers in \[0, 1\]"),
        (lambda: Quadratic.make().pareto_point([0.0, 0.0]), "not all zero"),
        (lambda: Quadratic.make().pareto_point([1.0, 1.0, 1.0]), r"shape \(\.\.\., 2\)"),
    ],
)
def test_bad_input_is_rejected_by_name(call, message):
    with pytest.raises(ValueError, match=message):
        call()
