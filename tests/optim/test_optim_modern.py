"""The modern rules: Adamax, NAdam, RAdam, Adafactor and Muon bit-identical to torch.optim over
300 float64 steps; Lion, LAMB, LARS and Shampoo equal to their papers' algorithms written out in
numpy here, and to known special cases; every rule runs on sympy (2x2 symbolic matrices for the
tensor rules) and agrees there with numpy."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
import torch
from _optim_helpers import max_abs_diff, regression_data, stepped, tiny_net, train
from hypothesis import given, settings
from hypothesis import strategies as st

import mtl.optim
from mtl.optim import NUMPY, SYMPY, TORCH

STEPS = 300
TORCH_PEERS = {
    "adamax": torch.optim.Adamax,
    "nadam": torch.optim.NAdam,
    "radam": torch.optim.RAdam,
    "adafactor": torch.optim.Adafactor,
    "muon": torch.optim.Muon,
}
MATRIX_ONLY = ("muon", "shampoo")

_wd = st.one_of(st.just(0.0), st.floats(0.0, 0.1))
_betas = st.tuples(st.floats(0.0, 0.99), st.floats(0.5, 0.999))


@st.composite
def _torch_hp(draw: st.DrawFn, name: str) -> dict:
    if name == "muon":
        return {
            "lr": draw(st.floats(1e-3, 0.05)),
            "weight_decay": draw(_wd),
            "momentum": draw(st.floats(0.0, 0.99)),
            "nesterov": draw(st.booleans()),
            "ns_steps": draw(st.integers(0, 6)),
            "adjust_lr_fn": draw(st.sampled_from([None, "match_rms_adamw", "spectral_unclamped"])),
        }
    hp = {"lr": draw(st.floats(1e-4, 0.05)), "weight_decay": draw(_wd)}
    hp["maximize"] = draw(st.booleans())
    if name == "adafactor":
        eps1 = draw(st.one_of(st.none(), st.floats(1e-30, 1e-3)))
        hp.update(eps=(eps1, draw(st.floats(0.0, 1e-2))), d=draw(st.floats(1.0, 2.0)))
        hp["beta2_decay"] = draw(st.floats(-1.0, -0.1))
        return hp
    hp.update(betas=draw(_betas), eps=draw(st.floats(1e-12, 1e-3)))
    if name in ("nadam", "radam"):
        hp["decoupled_weight_decay"] = draw(st.booleans())
    if name == "nadam":
        hp["momentum_decay"] = draw(st.floats(0.0, 0.05))
    return hp


def _params(net: torch.nn.Module, name: str) -> list[torch.nn.Parameter]:
    return [p for p in net.parameters() if p.ndim == 2 or name not in MATRIX_ONLY]


@pytest.fixture
def float64_default():
    """torch keeps NAdam's ``mu_product`` and the step counts in the default dtype (float32
    otherwise); this rule keeps Python floats, i.e. float64."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


@pytest.mark.usefixtures("float64_default")
@pytest.mark.parametrize("name", list(TORCH_PEERS))
@settings(deadline=None, max_examples=6)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_parameters_match_torch_optim(name: str, data: st.DataObject, seed: int):
    """Every parameter equals torch's bit for bit after 300 steps (Muon on the matrices, as
    torch.optim.Muon only takes 2-D parameters; its Newton-Schulz in bfloat16 as torch's)."""
    hp = data.draw(_torch_hp(name), label="hyperparameters")
    ours, theirs = tiny_net(seed), tiny_net(seed)
    x, y = regression_data(seed)
    train(ours, mtl.optim.build(name, _params(ours, name), **hp), x, y, STEPS)
    train(theirs, TORCH_PEERS[name](_params(theirs, name), **hp), x, y, STEPS)
    assert max_abs_diff(ours, theirs) == 0
    assert max_abs_diff(ours, tiny_net(seed)) > 1e-6  # not vacuous: the run moved


@pytest.mark.parametrize("name", list(TORCH_PEERS))
def test_defaults_equal_torch_defaults(name: str):
    p = torch.nn.Parameter(torch.zeros(2, 2))
    theirs = TORCH_PEERS[name]([p]).defaults
    ours = mtl.optim.get_rule(name).defaults
    assert set(ours) <= set(theirs)
    assert {k: theirs[k] for k in ours} == dict(ours)


# --- the papers' algorithms, written out in numpy ------------------------------------------


def _lion_numpy(p, grads, lr, betas, wd):
    m = np.zeros_like(p)
    for g in grads:
        c = np.sign(betas[0] * m + (1 - betas[0]) * g)
        p = p - lr * (c + wd * p)
        m = betas[1] * m + (1 - betas[1]) * g
    return p


def _lamb_numpy(p, grads, lr, betas, eps, wd):
    m, v = np.zeros_like(p), np.zeros_like(p)
    for k, g in enumerate(grads, start=1):
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        r = (m / (1 - betas[0] ** k)) / (np.sqrt(v / (1 - betas[1] ** k)) + eps) + wd * p
        p = p - lr * np.linalg.norm(p) / np.linalg.norm(r) * r
    return p


def _lars_numpy(p, grads, lr, momentum, eta, eps, wd):
    b = np.zeros_like(p)
    for g in grads:
        local = eta * np.linalg.norm(p) / (np.linalg.norm(g) + wd * np.linalg.norm(p) + eps)
        b = momentum * b + lr * local * (g + wd * p)
        p = p - b
    return p


def _inverse_fourth_root(a):
    w, v = np.linalg.eigh(a)
    return v @ np.diag(w**-0.25) @ v.T


def _shampoo_numpy(p, grads, lr, eps):
    left, right = eps * np.eye(p.shape[0]), eps * np.eye(p.shape[1])
    for g in grads:
        left, right = left + g @ g.T, right + g.T @ g
        p = p - lr * _inverse_fourth_root(left) @ g @ _inverse_fourth_root(right)
    return p


PAPERS = {
    "lion": (_lion_numpy, {"lr": 0.01, "betas": (0.9, 0.99), "wd": 0.1}),
    "lamb": (_lamb_numpy, {"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-6, "wd": 0.01}),
    "lars": (
        _lars_numpy,
        {"lr": 1.0, "momentum": 0.9, "eta": 0.01, "eps": 1e-8, "wd": 0.001},
    ),
    "shampoo": (_shampoo_numpy, {"lr": 0.1, "eps": 1e-4}),
}
_OUR_NAMES = {"wd": "weight_decay", "eta": "trust_coefficient"}


def _sequence(seed: int, shape=(3, 2), steps: int = 100):
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape), [rng.normal(size=shape) for _ in range(steps)]


@pytest.mark.parametrize("name", list(PAPERS))
@given(seed=st.integers(0, 2**16))
@settings(deadline=None, max_examples=10)
def test_rules_equal_their_papers_algorithm(name: str, seed: int):
    """100 steps of the optimizer equal the paper's algorithm in numpy (float64 rounding)."""
    reference, hp = PAPERS[name]
    p0, grads = _sequence(seed)
    ours = stepped(name, p0, grads, **{_OUR_NAMES.get(k, k): v for k, v in hp.items()})
    np.testing.assert_allclose(ours, reference(p0, grads, **hp), rtol=1e-10, atol=1e-12)
    assert np.abs(ours - p0).max() > 1e-3


def test_lion_without_momentum_is_sign_sgd():
    p0, grads = _sequence(1)
    lion = stepped("lion", p0, grads, lr=0.01, betas=(0.0, 0.0))
    sign = stepped("signsgd", p0, grads, lr=0.01)
    np.testing.assert_array_equal(lion, sign)


def test_lars_first_step_moves_by_the_trust_ratio():
    """From zero momentum: p - lr eta ||p|| / ||g|| g (eps, wd = 0), a step of norm lr eta ||p||."""
    p0, grads = _sequence(2, steps=1)
    ours = stepped("lars", p0, grads, trust_coefficient=0.1, eps=0.0)
    assert np.linalg.norm(ours - p0) == pytest.approx(0.1 * np.linalg.norm(p0), rel=1e-12)


def test_shampoo_on_a_rank_one_gradient_is_normalised():
    """L = g g^T, R = g^T g at eps -> 0: L^{-1/4} g R^{-1/4} = g / ||g|| for g = u v^T."""
    g = np.outer([1.0, 2.0, 2.0], [3.0, 4.0])  # ||g||_F = 15
    ours = stepped("shampoo", np.zeros((3, 2)), [g], lr=1.0, eps=1e-12)
    np.testing.assert_allclose(ours, -g / 15, atol=1e-5)


@pytest.mark.parametrize("name", MATRIX_ONLY)
def test_matrix_rules_reject_other_shapes(name: str):
    w = torch.nn.Parameter(torch.ones(3))
    w.grad = torch.ones(3)
    with pytest.raises(ValueError, match="2-D parameters"):
        mtl.optim.build(name, [w]).step()


def test_invalid_options_name_the_valid_ones():
    p = [torch.nn.Parameter(torch.ones(2, 2))]
    with pytest.raises(ValueError, match="valid: None, 'original'"):
        mtl.optim.build("muon", p, adjust_lr_fn="bogus")
    with pytest.raises(ValueError, match="ns_steps"):
        mtl.optim.build("muon", p, ns_steps=1.5)
    with pytest.raises(ValueError, match="eps1"):
        mtl.optim.build("adafactor", p, eps=(-1.0, 1e-3))
    with pytest.raises(ValueError, match="valid: lr, betas, weight_decay, maximize"):
        mtl.optim.build("lion", p, eps=1e-8)


# --- every backend --------------------------------------------------------------------------

_SYMPY_HP = {
    "adafactor": {"eps": (1e-6, 1e-3)},
    "muon": {"ns_steps": 2},
}


@pytest.mark.parametrize(
    "name", ["adamax", "nadam", "radam", "adafactor", "muon", "lion", "lamb", "lars", "shampoo"]
)
def test_sympy_run_on_a_2x2_matrix_equals_numpy(name: str):
    """Three steps on exact rationals (a 2x2 object array on sympy) equal the numpy run."""
    rule = mtl.optim.get_rule(name)
    rng = np.random.default_rng(3)
    p0, grads = rng.integers(1, 9, (2, 2)) / 4, [rng.integers(-9, 9, (2, 2)) / 4 for _ in range(3)]
    exact = np.vectorize(sympy.nsimplify, otypes=[object])
    hp = _SYMPY_HP.get(name, {})
    runs = []
    for ops, convert in ((SYMPY, exact), (NUMPY, np.asarray)):
        p = convert(p0)
        state = rule.init_state(ops, p, **hp)
        for k, g in enumerate(grads, start=1):
            p = rule.step(ops, p, convert(g), state, k, **hp)
        runs.append(np.asarray(p, dtype=float) if ops is SYMPY else p)
    np.testing.assert_allclose(*runs, rtol=1e-9)


@pytest.mark.parametrize(
    "name", ["adamax", "nadam", "radam", "adafactor", "muon", "lion", "lamb", "lars", "shampoo"]
)
def test_torch_backend_equals_numpy(name: str):
    """Ten float64 steps on a 3x2 tensor: the pure torch backend equals numpy to rounding
    (Muon's Newton-Schulz runs in bfloat16 on torch, as torch.optim.Muon's, exactly elsewhere)."""
    rule = mtl.optim.get_rule(name)
    p0, grads = _sequence(4, steps=10)
    runs = []
    for ops, convert in ((TORCH, torch.from_numpy), (NUMPY, np.asarray)):
        p = convert(p0.copy())
        state = rule.init_state(ops, p)
        for k, g in enumerate(grads, start=1):
            p = rule.step(ops, p, convert(g), state, k)
        runs.append(np.asarray(p))
    np.testing.assert_allclose(*runs, rtol=1e-2 if name == "muon" else 1e-10, atol=1e-12)
    assert np.abs(runs[1] - p0).max() > 1e-4
