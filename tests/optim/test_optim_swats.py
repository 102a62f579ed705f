"""SWATS: Keskar & Socher's Algorithm 1 written out here, Adam bit for bit until the switch,
torch's SGD with momentum after it, and the switch recorded (and kept in a state dict)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mtl.optim

N, STEPS, NOISE = 8, 200, 0.5


def problem(seed: int = 2):
    """A noisy quadratic ``f(x) = x'Ax/2 - b'x`` (eigenvalues 0.5..5) with a fixed noise
    sequence, so that every run sees the same gradient function at step k."""
    rng = np.random.default_rng(seed)
    q = np.linalg.qr(rng.normal(size=(N, N)))[0]
    a = q @ np.diag(np.linspace(0.5, 5, N)) @ q.T
    b = rng.normal(size=N)
    noise = NOISE * rng.normal(size=(STEPS + 1, N))
    return rng.normal(size=N), lambda x, k: a @ x - b + noise[k]


def algorithm_1(grad, x0, steps, lr, beta1, beta2, eps, switch_eps):
    """Algorithm 1 of the paper, line by line, on the single vector x (no weight decay).

    Returns the iterates, the step after which SGD runs (None if never) and Lambda."""
    x, m, a, lam = x0.copy(), np.zeros_like(x0), np.zeros_like(x0), 0.0
    phase, v, big_lambda, switched, out = "adam", None, None, None, []
    for k in range(1, steps + 1):
        g = grad(x, k)
        if phase == "sgd":
            v = beta1 * v + g
            x = x - (1 - beta1) * big_lambda * v
            out.append(x)
            continue
        m = beta1 * m + (1 - beta1) * g
        a = beta2 * a + (1 - beta2) * g**2
        p = -lr * np.sqrt(1 - beta2**k) / (1 - beta1**k) * m / (np.sqrt(a) + eps)
        x = x + p
        if p @ g != 0:
            gamma = (p @ p) / -(p @ g)
            lam = beta2 * lam + (1 - beta2) * gamma
            if k > 1 and abs(lam / (1 - beta2**k) - gamma) < switch_eps:
                phase, v, big_lambda, switched = "sgd", np.zeros_like(x), lam / (1 - beta2**k), k
        out.append(x)
    return np.array(out), switched, big_lambda


def run(name, grad, x0, steps, split=(5,), groups=None, **hp):
    """``name`` on x split into tensors (one group), closed loop on ``grad``: the iterates."""
    parts = [torch.nn.Parameter(torch.from_numpy(c.copy())) for c in np.split(x0, split)]
    opt = mtl.optim.build(name, groups(parts) if groups else parts, **hp)
    out = []
    for k in range(1, steps + 1):
        g = grad(torch.cat([p.detach() for p in parts]).numpy(), k)
        for p, gp in zip(parts, np.split(g, split), strict=True):
            p.grad = torch.from_numpy(gp)
        opt.step()
        out.append(torch.cat([p.detach() for p in parts]).numpy().copy())
    return np.array(out), opt


HP = {"lr": 0.05, "betas": (0.9, 0.999), "eps": 0.0, "switch_eps": 1e-4}


def test_equals_algorithm_1_of_the_paper():
    """At eps = 0 (where Algorithm 1's eps placement and Adam's agree) the same switch step,
    the same Lambda and the same iterates, to rounding; the switch is late and not marginal."""
    x0, grad = problem()
    want, step, big_lambda = algorithm_1(grad, x0, STEPS, 0.05, 0.9, 0.999, 0.0, 1e-4)
    got, opt = run("swats", grad, x0, STEPS, **HP)
    assert step is not None and 2 < step < STEPS - 50  # a switch, with many SGD steps after
    (record,) = opt.switches()
    assert record == {"group": 0, "switch_step": step, "sgd_lr": pytest.approx(big_lambda)}
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    adam, _ = run("adam", grad, x0, STEPS, lr=0.05, eps=0.0)
    assert np.abs(got[-1] - adam[-1]).max() > 1e-3  # after the switch it is no longer Adam


def _torch_adam(grad, x0, steps, hp):
    w = torch.nn.Parameter(torch.from_numpy(x0.copy()))
    opt = torch.optim.Adam([w], **hp)
    out = []
    for k in range(1, steps + 1):
        w.grad = torch.from_numpy(grad(w.detach().numpy(), k))
        opt.step()
        out.append(w.detach().numpy().copy())
    return np.array(out)


@settings(deadline=None)
@given(
    seed=st.integers(0, 2**16),
    lr=st.floats(1e-4, 0.1),
    betas=st.tuples(st.floats(0.0, 0.99), st.floats(0.9, 0.9999)),
    eps=st.sampled_from([0.0, 1e-8, 1e-3]),
    weight_decay=st.sampled_from([0.0, 1e-2]),
    switch_eps=st.sampled_from([0.0, 1e-9, 1e-4, 1e-2]),
)
def test_before_the_switch_it_is_adam_bit_for_bit(seed, lr, betas, eps, weight_decay, switch_eps):
    x0, grad = problem(seed)
    adam_hp = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
    got, opt = run("swats", grad, x0, 60, split=(), switch_eps=switch_eps, **adam_hp)
    want = _torch_adam(grad, x0, 60, adam_hp)
    step = opt.switches()[0]["switch_step"] or 60
    assert np.array_equal(got[:step], want[:step])  # the switch step itself is an Adam step
    if switch_eps == 0.0:  # |Lambda - gamma| < 0 never holds: Adam throughout
        assert opt.switches()[0]["switch_step"] is None


def test_after_the_switch_it_is_torch_sgd_with_momentum_beta1_at_the_estimated_rate():
    """From the switch on: torch SGD (momentum beta1, no dampening, a fresh buffer) at
    (1 - beta1) Lambda, bit for bit; a later change of the group's lr scales that rate."""
    x0, grad = problem()
    got, opt = run("swats", grad, x0, STEPS, split=(), **HP)
    record = opt.switches()[0]
    step = record["switch_step"]
    w = torch.nn.Parameter(torch.from_numpy(got[step - 1].copy()))
    sgd = torch.optim.SGD([w], lr=(1 - 0.9) * record["sgd_lr"], momentum=0.9)
    for k in range(step + 1, STEPS + 1):
        w.grad = torch.from_numpy(grad(w.detach().numpy(), k))
        sgd.step()
        assert np.array_equal(w.detach().numpy(), got[k - 1])
    opt.param_groups[0]["lr"] = HP["lr"] / 2
    sgd.param_groups[0]["lr"] = (1 - 0.9) * record["sgd_lr"] / 2
    (p,) = opt.param_groups[0]["params"]
    p.grad = w.grad = torch.from_numpy(grad(w.detach().numpy(), STEPS))
    opt.step()
    sgd.step()
    torch.testing.assert_close(p.detach(), w.detach(), rtol=1e-15, atol=0)


def test_the_switch_is_per_group_and_foreach_false_keeps_the_vector():
    x0, grad = problem()
    together, _ = run("swats", grad, x0, STEPS, split=(3, 5), **HP)
    alone, _ = run("swats", grad, x0, STEPS, split=(3, 5), foreach=False, **HP)
    assert np.array_equal(together, alone)  # one vector per group either way

    def two_groups(parts):
        return [{"params": parts[:1], "name": "a"}, {"params": parts[1:], "switch_eps": 0.0}]

    _, opt = run("swats", grad, x0, STEPS, split=(5,), groups=two_groups, **HP)
    first, second = opt.switches()
    assert first["group"] == "a" and first["switch_step"] is not None
    assert second == {"group": 1, "switch_step": None, "sgd_lr": None}


def test_a_state_dict_keeps_the_phase_and_the_run_continues_identically():
    x0, grad = problem()
    straight, opt = run("swats", grad, x0, STEPS, split=(5,), **HP)
    step = opt.switches()[0]["switch_step"]
    k = step + 10
    first, interrupted = run("swats", grad, x0, k, split=(5,), **HP)
    saved = copy.deepcopy(interrupted.state_dict())
    parts = [torch.nn.Parameter(torch.from_numpy(c.copy())) for c in np.split(first[-1], (5,))]
    resumed = mtl.optim.build("swats", parts, **HP)
    resumed.load_state_dict(saved)
    assert resumed.switches() == opt.switches()
    for j in range(k + 1, STEPS + 1):
        g = grad(torch.cat([p.detach() for p in parts]).numpy(), j)
        for p, gp in zip(parts, np.split(g, (5,)), strict=True):
            p.grad = torch.from_numpy(gp)
        resumed.step()
    assert np.array_equal(torch.cat([p.detach() for p in parts]).numpy(), straight[-1])


@settings(deadline=None)
@given(scale=st.floats(1e-3, 1e3))
def test_a_loss_scale_is_a_switch_eps_scale(scale):
    """Gradients times a (a task's loss scale, on its head group): at eps = 0 and switch_eps /
    a the trajectory is the unscaled one, switch step included, and Lambda is divided by a."""
    x0, grad = problem()
    plain, opt = run("swats", grad, x0, STEPS, **HP)
    hp = {**HP, "switch_eps": HP["switch_eps"] / scale}
    scaled, opt_a = run("swats", lambda x, k: scale * grad(x, k), x0, STEPS, **hp)
    np.testing.assert_allclose(scaled, plain, rtol=1e-9, atol=1e-12)
    (record,), (record_a,) = opt.switches(), opt_a.switches()
    assert record_a["switch_step"] == record["switch_step"]
    assert record_a["sgd_lr"] == pytest.approx(record["sgd_lr"] / scale, rel=1e-9)


def test_invalid_switch_eps_is_named():
    w = torch.nn.Parameter(torch.ones(2))
    with pytest.raises(ValueError, match="switch_eps"):
        mtl.optim.build("swats", [w], switch_eps=-1.0)
    with pytest.raises(ValueError, match="no hyperparameter momentum"):
        mtl.optim.build("swats", [w], momentum=0.9)
