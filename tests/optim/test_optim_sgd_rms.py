"""SGD-RMS: SGD at ``lr / (sqrt(mean v_hat) + eps)``, v Adam's second moment over the group.

Its formula written out, the pure backends, and the point of it: on a task's own head group a
loss scale leaves the head trajectory unchanged (eps = 0; with eps it is the eps/a run), where
plain SGD's trajectory changes, and one group mixing two tasks' heads is not invariant.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mtl.optim
from mtl.optim import NUMPY

SHAPES = ((3, 2), (4,))


def _formula(x0, grads, lr, momentum, dampening, nesterov, beta2, eps, weight_decay):
    """The docstring's maths on the flattened vector, step by step."""
    x, v, buf, out = x0.copy(), np.zeros_like(x0), None, []
    for k, g in enumerate(grads, start=1):
        d = g + weight_decay * x
        v = beta2 * v + (1 - beta2) * d**2
        rate = lr / (np.sqrt(np.mean(v / (1 - beta2**k))) + eps)
        buf = d.copy() if buf is None else momentum * buf + (1 - dampening) * d
        step = (d + momentum * buf if nesterov else buf) if momentum else d
        x = x - rate * step
        out.append(x)
    return np.array(out)


@st.composite
def hyperparameters(draw):
    nesterov = draw(st.booleans())
    momentum = draw(st.sampled_from([0.5, 0.9])) if nesterov else draw(st.sampled_from([0, 0.9]))
    return {
        "lr": draw(st.floats(1e-4, 0.1)),
        "momentum": momentum,
        "dampening": 0.0 if nesterov else draw(st.sampled_from([0.0, 0.3])),
        "nesterov": nesterov,
        "beta2": draw(st.floats(0.0, 0.9999)),
        "eps": draw(st.sampled_from([0.0, 1e-8, 1e-2])),
        "weight_decay": draw(st.sampled_from([0.0, 1e-2])),
    }


def _grads(seed: int, steps: int = 25) -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    n = sum(int(np.prod(s)) for s in SHAPES)
    scale = 10.0 ** rng.uniform(-3, 3)
    return rng.normal(size=n), [scale * rng.normal(size=n) for _ in range(steps)]


def _unflatten(x: np.ndarray) -> list[np.ndarray]:
    sizes = np.cumsum([int(np.prod(s)) for s in SHAPES])[:-1]
    return [c.reshape(s) for c, s in zip(np.split(x, sizes), SHAPES, strict=True)]


@settings(deadline=None)
@given(hp=hyperparameters(), seed=st.integers(0, 2**16))
def test_the_optimizer_and_the_numpy_backend_equal_the_formula(hp, seed):
    """Two tensors of one group are one vector: the mean runs over both."""
    x0, grads = _grads(seed)
    want = _formula(x0, grads, **hp)
    params = [torch.nn.Parameter(torch.from_numpy(c.copy())) for c in _unflatten(x0)]
    opt = mtl.optim.build("sgd-rms", params, **hp)
    rule, x = mtl.optim.get_rule("sgd-rms"), x0.copy()
    state = rule.init_state(NUMPY, x, **hp)
    for k, g in enumerate(grads, start=1):
        for p, gp in zip(params, _unflatten(g), strict=True):
            p.grad = torch.from_numpy(gp.copy())
        opt.step()
        x = rule.step(NUMPY, x, g, state, k, **hp)
        got = np.concatenate([p.detach().numpy().ravel() for p in params])
        np.testing.assert_allclose(got, want[k - 1], rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(x, want[k - 1], rtol=1e-10, atol=1e-13)


# --- loss-scale invariance of a head --------------------------------------------------------


def _head_runs(name: str, scale: float, steps: int = 30, per_task: bool = True, **hp):
    """Two linear heads on frozen features, loss ``scale L_1 + L_2``; task 1's head after each
    step. ``per_task``: one group per head (else both heads in one group)."""
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(64, 5, generator=gen, dtype=torch.float64)
    targets = torch.randn(2, 64, generator=gen, dtype=torch.float64) * torch.tensor([[1.0], [3.0]])
    heads = [
        [torch.nn.Parameter(torch.full((5,), 0.1, dtype=torch.float64)),
         torch.nn.Parameter(torch.zeros((), dtype=torch.float64))]
        for _ in range(2)
    ]  # fmt: skip
    groups = [{"params": h} for h in heads] if per_task else [{"params": heads[0] + heads[1]}]
    opt = mtl.optim.build(name, groups, **hp)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        pairs = zip(heads, targets, strict=True)
        losses = [((feats @ w + b - y) ** 2).mean() for (w, b), y in pairs]
        (scale * losses[0] + losses[1]).backward()
        opt.step()
        out.append(torch.cat([heads[0][0].detach(), heads[0][1].detach()[None]]).clone())
    return torch.stack(out)


scales = st.floats(1e-3, 1e3).filter(lambda a: abs(np.log10(a)) > 0.3)
momenta = st.sampled_from([0.0, 0.9])


@settings(deadline=None)
@given(scale=scales, momentum=momenta, beta2=st.floats(0.5, 0.9999))
def test_a_loss_scale_leaves_the_sgd_rms_head_trajectory_unchanged(scale, momentum, beta2):
    hp = {"lr": 0.01, "momentum": momentum, "beta2": beta2}
    exact = _head_runs("sgd-rms", scale, eps=0.0, **hp)
    torch.testing.assert_close(exact, _head_runs("sgd-rms", 1.0, eps=0.0, **hp), rtol=1e-9, atol=0)
    eps = 1e-3  # large enough to matter: the scaled run is the unscaled one with eps / scale
    scaled = _head_runs("sgd-rms", scale, eps=eps, **hp)
    torch.testing.assert_close(
        scaled, _head_runs("sgd-rms", 1.0, eps=eps / scale, **hp), rtol=1e-9, atol=0
    )


@settings(deadline=None)
@given(scale=st.floats(0.05, 20.0).filter(lambda a: abs(np.log10(a)) > 0.3), momentum=momenta)
def test_a_loss_scale_changes_the_plain_sgd_head_trajectory(scale, momentum):
    hp = {"lr": 1e-3, "momentum": momentum}
    scaled, plain = _head_runs("sgd", scale, **hp), _head_runs("sgd", 1.0, **hp)
    assert not torch.allclose(scaled, plain, rtol=1e-3, atol=0)


def test_one_group_for_two_heads_mixes_their_scales():
    """The RMS of a group holding both heads is not proportional to task 1's scale."""
    hp = {"lr": 0.01, "momentum": 0.9, "eps": 0.0}
    mixed = _head_runs("sgd-rms", 10.0, per_task=False, **hp)
    assert not torch.allclose(mixed, _head_runs("sgd-rms", 1.0, per_task=False, **hp), rtol=1e-3)


def test_invalid_beta2_is_named():
    w = torch.nn.Parameter(torch.ones(2))
    with pytest.raises(ValueError, match="beta2"):
        mtl.optim.build("sgd-rms", [w], beta2=1.0)
