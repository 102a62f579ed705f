"""Gradient clipping: torch's arithmetic, and the counterexamples recomputed with torch."""

import numpy as np
import pytest
import sympy
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import theory
from mtl.optim import NUMPY, get_rule
from theory import clipping


def _f(values, name):
    return float(sympy.Rational(values[name]))


@settings(deadline=None)
@given(
    grads=st.lists(st.floats(-10, 10), min_size=1, max_size=6),
    max_norm=st.floats(0.01, 5.0),
)
def test_the_clip_coefficient_is_torchs(grads, max_norm):
    g = torch.tensor(grads, dtype=torch.float64)
    p = torch.zeros_like(g, requires_grad=True)
    p.grad = g.clone()
    norm = torch.nn.utils.clip_grad_norm_([p], max_norm)
    c = float(clipping.coefficient(sympy.Float(norm.item(), 30), sympy.Float(max_norm, 30)))
    np.testing.assert_allclose(p.grad.numpy(), g.numpy() * c, rtol=1e-12, atol=0)


def _torch_head_updates(alphas, values, steps, max_norm, per_task):
    """Head 1's Adam (eps = 0) updates with the backbone and one-coordinate heads clipped by
    torch: all together (global) or head 1 alone (per task)."""
    n = len(alphas)
    phi = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    heads = [torch.zeros(1, dtype=torch.float64, requires_grad=True) for _ in range(n)]
    betas = (_f(values, "beta_1"), _f(values, "beta_2"))
    opt = torch.optim.Adam([phi, *heads], lr=_f(values, "lr"), betas=betas, eps=0.0)
    out, coefficients = [], []
    for k in range(1, steps + 1):
        b = [_f(values, f"b_{t}_{k}") if not per_task else 0.0 for t in range(1, n + 1)]
        g = [_f(values, f"g_{t}_{k}") if (t == 1 or not per_task) else 1.0 for t in range(1, n + 1)]
        phi.grad = torch.tensor(
            [sum(a * x for a, x in zip(alphas, b, strict=True))], dtype=torch.float64
        )
        for head, a, x in zip(heads, alphas, g, strict=True):
            head.grad = torch.tensor([a * x], dtype=torch.float64)
        clipped = [heads[0]] if per_task else [phi, *heads]
        norm = torch.nn.utils.clip_grad_norm_(clipped, max_norm).item()
        coefficients.append(min(1.0, max_norm / (norm + 1e-6)))
        before = heads[0].item()
        opt.step()
        out.append(heads[0].item() - before)
    return out, coefficients


@pytest.mark.parametrize(
    "sid",
    ["clip.global-norm.adam.head.per-task-scale", "clip.global-norm.adam.head.other-task-scale"],
)
def test_global_clipping_counterexamples_recomputed_with_torch_for_each_t(sid):
    top = theory.get(sid).counterexample
    assert [cx["tasks"] for cx in [top, *top["more_tasks"]]] == [2, 3, 4, 5]
    for cx in [top, *top["more_tasks"]]:
        v, n, k = cx["values"], cx["tasks"], cx["step"]
        alphas = [_f(v, f"alpha_{t}") if f"alpha_{t}" in v else 1.0 for t in range(1, n + 1)]
        scaled, c_scaled = _torch_head_updates(alphas, v, k, _f(v, "M"), per_task=False)
        plain, c_plain = _torch_head_updates([1.0] * n, v, k, _f(v, "M"), per_task=False)
        assert scaled[-1] == pytest.approx(cx["update_scaled"], rel=1e-9)
        assert plain[-1] == pytest.approx(cx["update_reference"], rel=1e-9)
        assert abs(scaled[-1] - plain[-1]) > 1e-4 * abs(plain[-1])
        assert c_scaled == pytest.approx(cx["clip_coefficients_scaled"], rel=1e-9)
        assert c_plain == pytest.approx(cx["clip_coefficients_reference"], rel=1e-9)
        assert min(c_scaled + c_plain) < 0.5  # clipping acts, and strongly


def test_per_task_clipping_counterexample_recomputed_with_torch():
    cx = theory.get("clip.per-task.adam.head.per-task-scale").counterexample
    v, k = cx["values"], cx["step"]
    scaled, c_scaled = _torch_head_updates([_f(v, "alpha_1")], v, k, _f(v, "M"), per_task=True)
    plain, c_plain = _torch_head_updates([1.0], v, k, _f(v, "M"), per_task=True)
    assert scaled[-1] == pytest.approx(cx["update_scaled"], rel=1e-9)
    assert plain[-1] == pytest.approx(cx["update_reference"], rel=1e-9)
    assert c_plain[0] < 1 == c_scaled[0]  # the clipping acts in the unscaled run only
    assert c_plain == pytest.approx(cx["clip_coefficients_reference"], rel=1e-9)


def test_per_task_clipping_does_not_couple_the_heads_in_torch():
    values = {"beta_1": "9/10", "beta_2": "999/1000", "lr": "1/100"}
    values |= {f"g_{t}_{k}": str(x) for t in (1, 2) for k, x in enumerate((3, -0.5, 2), 1)}
    first, _ = _torch_head_updates([1.0, 1.0], values, 3, 0.75, per_task=True)
    other, _ = _torch_head_updates([1.0, 1000.0], values, 3, 0.75, per_task=True)
    assert first == other  # bitwise: head 1 never sees alpha_2


@settings(deadline=None)
@given(
    a=st.floats(1e-3, 1e3),
    grads=st.lists(
        st.floats(0.01, 10.0).flatmap(lambda m: st.sampled_from([m, -m])), min_size=3, max_size=3
    ),
    max_norm=st.floats(0.05, 5.0),
)
def test_per_task_clipping_with_a_scale_is_a_rescaled_threshold(a, grads, max_norm):
    """Adam (eps = 0) on clip_(M, 1e-6)(a g) equals Adam on clip_(M/a, 1e-6/a)(g)."""

    def clip(g, m, delta):
        return g * min(1.0, m / (abs(g) + delta))

    rule = get_rule("adam")
    hp = {**rule.defaults, "lr": 0.01, "eps": 0.0}

    def run(inputs):
        p, state, out = np.array(0.0), rule.init(NUMPY, np.array(0.0), **hp), []
        for k, g in enumerate(inputs, start=1):
            new = rule.step(NUMPY, p, np.array(g), state, k, **hp)
            out.append(float(new - p))
            p = new
        return np.array(out)

    scaled = run([clip(a * g, max_norm, 1e-6) for g in grads])
    rescaled = run([clip(g, max_norm / a, 1e-6 / a) for g in grads])
    np.testing.assert_allclose(scaled, rescaled, rtol=1e-9)


def test_shared_only_clipping_leaves_the_heads_exact():
    checks = clipping._shared_clipping_residuals()
    assert checks and all(r == 0 for r in checks)
    clipped = clipping._tiny_backward(clipping.SHARED_SCALES, 0.5)
    free = clipping._tiny_backward(clipping.SHARED_SCALES, None)
    assert torch.linalg.vector_norm(clipped[0]).item() == pytest.approx(0.5)
    assert torch.linalg.vector_norm(free[0]).item() > 0.5
