"""mtl.backward on a tiny two-head model, checked against hand-computed gradients."""

from __future__ import annotations

import pytest
import torch

import mtl.methods
import mtl.optim
from mtl import backward

D = torch.float64


def model(seed=0):
    gen = torch.Generator().manual_seed(seed)
    shared = torch.nn.Parameter(torch.randn(3, 4, generator=gen, dtype=D))
    heads = [torch.nn.Parameter(torch.randn(3, generator=gen, dtype=D)) for _ in range(2)]
    x = torch.randn(5, 4, generator=gen, dtype=D)

    def losses():
        rep = torch.tanh(x @ shared.T)
        return [((rep @ h) ** 2).mean() + 0.1 for h in heads], rep

    return shared, heads, losses


def per_task(shared, heads, losses):
    ls, _ = losses()
    return [
        torch.autograd.grad(l, [shared, *heads], retain_graph=True, materialize_grads=True)
        for l in ls
    ]


@pytest.mark.parametrize("with_task_params", [True, False])
def test_aggregator_writes_direction_and_head_grads(with_task_params):
    shared, heads, losses = model()
    grads = per_task(shared, heads, losses)
    jac = torch.stack([g[0].reshape(-1) for g in grads])
    expected = mtl.methods.aggregate("mgda", jac).view_as(shared)
    ls, _ = losses()
    rec = backward(
        ls,
        mtl.methods.get("mgda"),
        shared=[shared],
        task_params=heads if with_task_params else None,
    )
    torch.testing.assert_close(shared.grad, expected)
    torch.testing.assert_close(heads[0].grad, grads[0][1])
    torch.testing.assert_close(heads[1].grad, grads[1][2])
    assert rec.weights.shape == (2,) and rec.stats["cosine"].shape == (2, 2)


def test_weighting_uw_learns_its_scales():
    shared, _heads, losses = model()
    uw = mtl.methods.get("uw", tasks=2)
    ls, _ = losses()
    rec = backward(ls, uw, shared=[shared])
    values = torch.stack([l.detach() for l in ls]).float()
    # d/ds (L e^{-s}/2 + s/2) = (1 - L e^{-s})/2 at s = -0.5
    torch.testing.assert_close(uw.log_scales.grad, (1 - values * torch.e**0.5) / 2)
    torch.testing.assert_close(rec.weights, torch.full((2,), torch.e**0.5 / 2, dtype=D))


def test_mgda_ub_uses_representation():
    shared, heads, losses = model()
    ls, rep = losses()
    jac = torch.stack([torch.autograd.grad(l, rep, retain_graph=True)[0].reshape(-1) for l in ls])
    weights = mtl.methods.get("mgda")
    weights(jac)
    expected = torch.autograd.grad(
        sum(wt * l for wt, l in zip(weights.last_weights, ls, strict=False)),
        shared,
        retain_graph=True,
    )[0]
    backward(ls, mtl.methods.get("mgda-ub"), shared=[shared], task_params=heads, representation=rep)
    torch.testing.assert_close(shared.grad, expected)


def test_optimizer_level_returns_task_grads_for_per_task_groups():
    shared, heads, losses = model()
    method = mtl.methods.get("adatask")
    opt = mtl.optim.build("adam", method.param_groups([shared], heads, tasks=2), lr=0.1)
    grads = per_task(shared, heads, losses)
    ls, _ = losses()
    rec = backward(ls, method, shared=[shared], task_params=heads)
    torch.testing.assert_close(rec.task_grads[shared][1], grads[1][0])
    before = shared.detach().clone()
    opt.step(task_grads=rec.task_grads)
    # first Adam step per task moves each coordinate by lr * sign(g_t): the sum of two of them
    expected = before - 0.1 * (grads[0][0].sign() + grads[1][0].sign())
    torch.testing.assert_close(shared.detach(), expected, atol=1e-6, rtol=0)


def test_clipping_is_explicit_and_logged():
    shared, heads, losses = model()
    seen = []
    method = mtl.methods.get("ew")
    method.register_log_hook(lambda m, record: seen.append(record))
    ls, _ = losses()
    rec = backward(ls, method, shared=[shared], task_params=heads, max_norm=1e-3)
    assert float(shared.grad.norm()) == pytest.approx(1e-3)
    assert rec.events and "clipped" in rec.events[0] and seen[0]["events"] == rec.events


def test_errors():
    shared, _heads, losses = model()
    ls, _ = losses()
    with pytest.raises(ValueError, match="representation="):
        backward(ls, mtl.methods.get("graddrop"), shared=[shared])
    with pytest.raises(ValueError, match="shared"):
        backward(ls, mtl.methods.get("ew"), shared=[])


def chain_model(seed=0):
    """Two shared layers in a chain; both layers' outputs feed both heads (as MTAN's features)."""
    gen = torch.Generator().manual_seed(seed)
    w1 = torch.nn.Parameter(torch.randn(3, 4, generator=gen, dtype=D))
    w2 = torch.nn.Parameter(torch.randn(2, 3, generator=gen, dtype=D))
    heads = [torch.nn.Parameter(torch.randn(5, generator=gen, dtype=D)) for _ in range(2)]
    x = torch.randn(6, 4, generator=gen, dtype=D)

    def encode():
        c1 = torch.tanh(x @ w1.T)
        c2 = torch.tanh(c1 @ w2.T)
        return c1.view_as(c1), c2.view_as(c2)

    def decode(rep):
        feats = torch.cat(rep, dim=1)
        return [((feats @ h) ** 2).mean() + 0.1 * t for t, h in enumerate(heads)]

    return [w1, w2], heads, encode, decode


def partial_jacobian(encode, decode):
    """Rows: gradients of each loss w.r.t. the representation tensors as independent inputs."""
    leaves = [r.detach().requires_grad_(True) for r in encode()]
    losses = decode(leaves)
    return torch.stack(
        [torch.cat([g.reshape(-1) for g in torch.autograd.grad(l, leaves)]) for l in losses]
    )


def test_mgda_ub_on_a_tuple_representation_uses_the_concatenated_partial_jacobian():
    shared, heads, encode, decode = chain_model()
    jac = partial_jacobian(encode, decode)
    g1, g2 = jac
    gamma = float(((g2 - g1) @ g2 / (g1 - g2).pow(2).sum()).clamp(0, 1))  # T = 2 min-norm point
    direction = gamma * g1 + (1 - gamma) * g2
    rep = encode()
    pieces = torch.split(direction, [r.numel() for r in rep])
    expected = torch.autograd.grad(
        rep, shared, [p.view_as(r) for p, r in zip(pieces, rep, strict=True)]
    )
    rep = encode()
    record = backward(
        decode(rep),
        mtl.methods.get("mgda-ub"),
        shared=shared,
        task_params=heads,
        representation=rep,
    )
    torch.testing.assert_close(record.weights, torch.tensor([gamma, 1 - gamma], dtype=D))
    for p, e in zip(shared, expected, strict=True):
        torch.testing.assert_close(p.grad, e)
    # without the aliases, the gradient w.r.t. the first tensor would be a total derivative
    # (also through the second): another Jacobian, which the test above would reject
    c1, c2 = (r._base for r in encode())
    total = torch.stack(
        [
            torch.cat([g.reshape(-1) for g in torch.autograd.grad(l, (c1, c2), retain_graph=True)])
            for l in decode((c1, c2))
        ]
    )
    assert not torch.allclose(total, jac)


def test_graddrop_on_a_tuple_representation_is_applied_per_tensor():
    shared, heads, encode, decode = chain_model()
    leaves = [r.detach().requires_grad_(True) for r in encode()]
    losses = decode(leaves)
    jacs = [
        torch.stack(
            [torch.autograd.grad(l, leaf, retain_graph=True)[0].reshape(-1) for l in losses]
        )
        for leaf in leaves
    ]
    gen = torch.Generator().manual_seed(3)
    drop = mtl.methods.get("graddrop")
    directions = [drop.aggregate_at(j, leaf, gen) for j, leaf in zip(jacs, leaves, strict=True)]
    rep = encode()
    expected = torch.autograd.grad(
        rep, shared, [d.view_as(r) for d, r in zip(directions, rep, strict=True)]
    )
    rep = encode()
    backward(
        decode(rep),
        mtl.methods.get("graddrop"),
        shared=shared,
        task_params=heads,
        representation=rep,
        generator=torch.Generator().manual_seed(3),
    )
    for p, e in zip(shared, expected, strict=True):
        torch.testing.assert_close(p.grad, e)


def test_graddrop_of_one_task_on_a_tuple_representation_is_the_plain_gradient():
    shared, _heads, encode, decode = chain_model()
    rep = encode()
    loss = decode(rep)[0]
    expected = torch.autograd.grad(loss, shared, retain_graph=True)
    backward([loss], mtl.methods.get("graddrop"), shared=shared, representation=rep)
    for p, e in zip(shared, expected, strict=True):
        torch.testing.assert_close(p.grad, e)


def test_a_representation_must_be_tensors():
    shared, _heads, encode, decode = chain_model()
    rep = encode()
    with pytest.raises(ValueError, match="non-empty tuple of tensors"):
        backward(decode(rep), mtl.methods.get("mgda-ub"), shared=shared, representation=())


@pytest.mark.parametrize("name", ["mgda", "mgda-ub"])
def test_without_task_params_gradients_accumulate_once_per_call(name):
    shared, _heads, encode, decode = chain_model()
    expected = torch.autograd.grad(decode(encode())[0], shared)
    for _ in range(2):
        rep = encode()
        backward([decode(rep)[0]], mtl.methods.get(name), shared=shared, representation=rep)
    for p, e in zip(shared, expected, strict=True):
        torch.testing.assert_close(p.grad, 2 * e)
