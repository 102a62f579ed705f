"""The pure backends (numpy, torch) and the foreach optimizer run the same rules identically;
sign methods equal a sign update written out by hand."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
import torch
from _optim_helpers import ALL_RULES, HYPERPARAMETERS, SIGN_RULES, stepped
from hypothesis import given, settings
from hypothesis import strategies as st

import mtl.optim
from mtl.optim import NUMPY, SYMPY, TORCH

STEPS = 40


def _sequence(seed: int, shape: tuple[int, ...]) -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    scale = 10.0 ** rng.uniform(-3, 3)
    return rng.normal(size=shape), [scale * rng.normal(size=shape) for _ in range(STEPS)]


def _run_pure(ops, name: str, p0, grads, hp: dict, convert):
    rule = mtl.optim.get_rule(name)
    p = convert(p0)
    state = rule.init_state(ops, p, **hp)
    for k, g in enumerate(grads, start=1):
        p = rule.step(ops, p, convert(g), state, k, **hp)
    return np.asarray(p)


@pytest.mark.parametrize("name", ALL_RULES)
@settings(deadline=None)
@given(data=st.data(), seed=st.integers(0, 2**16), shape=st.sampled_from([(3,), (2, 3), (4, 1, 2)]))
def test_pure_backends_agree_with_the_foreach_optimizer(name, data, seed, shape):
    hp = data.draw(HYPERPARAMETERS[name], label="hyperparameters")
    p0, grads = _sequence(seed, shape)
    foreach = stepped(name, p0, grads, **hp)
    by_numpy = _run_pure(NUMPY, name, p0, grads, hp, np.array)
    by_torch = _run_pure(TORCH, name, p0, grads, hp, torch.from_numpy)
    # rounding differs only in the order of operations: relative to the largest magnitude seen
    tol = 1e-12 * (1 + np.abs(p0).max() + np.abs(foreach).max())
    np.testing.assert_allclose(by_numpy, foreach, rtol=1e-12, atol=tol)
    np.testing.assert_allclose(by_torch, foreach, rtol=1e-12, atol=tol)


def _sign_by_hand(
    p0, grads, lr: float, momentum: float, weight_decay: float, maximize: bool = False
) -> np.ndarray:
    """signSGD / Signum written out: d = +-g + wd p (- when maximising);
    m = mu m + (1 - mu) d (m = d if mu = 0); p <- p - lr sign(m)."""
    p, m = p0.copy(), np.zeros_like(p0)
    for g in grads:
        d = (-g if maximize else g) + weight_decay * p
        m = momentum * m + (1 - momentum) * d if momentum else d
        p = p - lr * np.sign(m)
    return p


@pytest.mark.parametrize("name", SIGN_RULES)
@settings(deadline=None)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_sign_methods_equal_the_hand_written_update(name, data, seed):
    hp = data.draw(HYPERPARAMETERS[name], label="hyperparameters")
    p0, grads = _sequence(seed, (6,))
    expected = _sign_by_hand(p0, grads, **hp)
    np.testing.assert_allclose(stepped(name, p0, grads, **hp), expected, rtol=0, atol=1e-13)
    np.testing.assert_allclose(
        _run_pure(NUMPY, name, p0, grads, hp, np.array), expected, atol=1e-13
    )


def test_sign_methods_move_every_coordinate_by_lr():
    """Golden values: each step moves each coordinate by exactly lr against the sign."""
    p0 = np.array([0.5, -1.0, 2.0])
    grads = [np.array([3.0, -1e-9, 0.0]), np.array([-1.0, 2.0, 0.0])]
    out = stepped("signsgd", p0, grads, lr=0.25)
    # coordinate 0: -0.25 then +0.25; coordinate 1: +0.25 then -0.25; sign(0) = 0
    np.testing.assert_array_equal(out, [0.5, -1.0, 2.0])
    out = stepped("signum", p0, grads, lr=0.25, momentum=0.5)
    # m_1 = 0.5 g_1 = (1.5, -5e-10, 0); m_2 = 0.5 m_1 + 0.5 g_2 = (0.25, 1 - 2.5e-10, 0):
    # coordinate 0 keeps its sign through the momentum and moves by -0.25 twice
    np.testing.assert_array_equal(out, [0.0, -1.0, 2.0])


def test_sympy_backend_gives_the_textbook_formulas():
    """On symbols the rules are the formulas of the module docstring (golden, by hand)."""
    p, g1, g2, lr, mu, eps = sympy.symbols("p g1 g2 lr mu epsilon", positive=True)
    sgd = mtl.optim.get_rule("sgd")
    state: dict = {}
    p1 = sgd.step(SYMPY, p, g1, state, 1, lr=lr, momentum=mu)
    p2 = sgd.step(SYMPY, p1, g2, state, 2, lr=lr, momentum=mu)
    assert sympy.simplify(p2 - (p - lr * g1 - lr * (mu * g1 + g2))) == 0
    adam = mtl.optim.get_rule("adam")
    state = adam.init_state(SYMPY, p)
    p1 = adam.step(SYMPY, p, g1, state, 1, lr=lr, eps=eps)
    assert sympy.simplify(p1 - (p - lr * g1 / (g1 + eps))) == 0
