"""Parity with torch.optim: every parameter bit-identical to torch's, over 100 steps on random
tiny networks (hypothesis) and 2,000 steps in float64 and float32."""

from __future__ import annotations

import pytest
import torch
from _optim_helpers import (
    HYPERPARAMETERS,
    TORCH_CLASSES,
    max_abs_diff,
    regression_data,
    tiny_net,
    train,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import mtl.optim

STEPS = 100


@pytest.mark.parametrize("name", list(TORCH_CLASSES))
@settings(deadline=None)
@given(data=st.data(), seed=st.integers(0, 2**16), foreach=st.booleans())
def test_parameters_match_torch_optim(name: str, data: st.DataObject, seed: int, foreach: bool):
    """Same network, data and hyperparameters (amsgrad, maximize, decoupled weight decay
    included): every parameter equals torch's bit for bit, for both of torch's code paths."""
    hp = data.draw(HYPERPARAMETERS[name], label="hyperparameters")
    ours, theirs = tiny_net(seed), tiny_net(seed)
    x, y = regression_data(seed)
    train(ours, mtl.optim.build(name, ours.parameters(), **hp), x, y, STEPS)
    train(theirs, TORCH_CLASSES[name](theirs.parameters(), foreach=foreach, **hp), x, y, STEPS)
    assert max_abs_diff(ours, theirs) == 0
    if hp["lr"] > 0:  # the comparison is not vacuous: training moved the parameters
        assert max_abs_diff(ours, tiny_net(seed)) > 1e-6


@pytest.mark.parametrize("name", list(TORCH_CLASSES))
def test_defaults_equal_torch_defaults(name: str):
    """Every hyperparameter torch.optim also has defaults to torch's value."""
    p = torch.nn.Parameter(torch.zeros(2))
    theirs = TORCH_CLASSES[name]([p]).defaults
    ours = mtl.optim.build(name, [torch.nn.Parameter(torch.zeros(2))]).param_groups[0]
    shared = set(theirs) & set(ours)
    assert {"lr", "weight_decay"} <= shared
    assert {k: ours[k] for k in shared} == {k: theirs[k] for k in shared}
    assert set(mtl.optim.get_rule(name).defaults) <= set(theirs) | {"bias_correction"}


def test_sign_defaults_and_names():
    assert dict(mtl.optim.get_rule("signsgd").defaults) == {
        "lr": 1e-3,
        "momentum": 0.0,
        "weight_decay": 0.0,
        "maximize": False,
    }
    assert mtl.optim.get_rule("signum").defaults["momentum"] == 0.9
    assert set(mtl.optim.NAMES) == {
        "sgd",
        "adam",
        "adamw",
        "rmsprop",
        "adagrad",
        "signsgd",
        "signum",
        "swats",
        "sgd-rms",
        "adamax",
        "nadam",
        "radam",
        "adafactor",
        "muon",
        "lion",
        "lamb",
        "lars",
        "shampoo",
    }


def test_golden_adam_first_steps():
    """Hand-computed Adam (lr 0.1, defaults): the first step moves by lr sign(g) up to eps."""
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    opt = mtl.optim.build("adam", [w], lr=0.1)
    grads = [
        torch.tensor([0.5, -4.0], dtype=torch.float64),
        torch.tensor([1.0, 2.0], dtype=torch.float64),
    ]
    expected = w.detach().clone()
    m = torch.zeros(2, dtype=torch.float64)
    v = torch.zeros(2, dtype=torch.float64)
    for k, g in enumerate(grads, start=1):
        w.grad = g
        opt.step()
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        expected -= 0.1 * (m / (1 - 0.9**k)) / ((v / (1 - 0.999**k)).sqrt() + 1e-8)
        if k == 1:  # m_hat = g and sqrt(v_hat) = |g|: a step of lr sign(g), 1e-8 aside
            assert torch.allclose(
                w.detach(), torch.tensor([0.9, -1.9], dtype=torch.float64), atol=1e-8
            )
    assert torch.allclose(w.detach(), expected, rtol=0, atol=1e-14)


def test_hybrid_groups_equal_separate_torch_optimizers():
    """Adam on the heads and SGD on the backbone as one optimizer = torch Adam + torch SGD."""
    ours, theirs = tiny_net(3, (3, 6, 4, 2)), tiny_net(3, (3, 6, 4, 2))
    x, y = regression_data(3, widths=(3, 6, 4, 2))
    opt = mtl.optim.build(
        "adam",
        [
            {"params": ours[0].parameters(), "optimizer": "sgd", "lr": 0.05, "momentum": 0.9},
            {"params": ours[2:].parameters(), "betas": (0.8, 0.99)},
        ],
        lr=3e-3,
    )
    adam = torch.optim.Adam(theirs[2:].parameters(), lr=3e-3, betas=(0.8, 0.99))
    sgd = torch.optim.SGD(theirs[0].parameters(), lr=0.05, momentum=0.9)
    assert [g["optimizer"] for g in opt.param_groups] == ["sgd", "adam"]
    for _ in range(STEPS):
        for o in (opt, adam, sgd):
            o.zero_grad()
        torch.nn.functional.mse_loss(ours(x), y).backward()
        torch.nn.functional.mse_loss(theirs(x), y).backward()
        for o in (opt, adam, sgd):
            o.step()
    assert max_abs_diff(ours, theirs) <= 1e-12
