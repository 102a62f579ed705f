"""The (T, P) Jacobian: loop == batched, rows are the per-task gradients, errors are clear."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mtl.gradients import choose_method, jacobian


def _problem(seed: int, tasks: int, width: int, batch: int):
    """A random two-layer shared trunk with one linear head per task, in float64."""
    gen = torch.Generator().manual_seed(seed)
    trunk = torch.nn.Sequential(
        torch.nn.Linear(3, width), torch.nn.Tanh(), torch.nn.Linear(width, width)
    )
    heads = [torch.nn.Linear(width, 1) for _ in range(tasks)]
    for p in [*trunk.parameters(), *(q for h in heads for q in h.parameters())]:
        with torch.no_grad():
            p.copy_(torch.randn(p.shape, generator=gen))
    trunk.double()
    for h in heads:
        h.double()
    x = torch.randn(batch, 3, generator=gen, dtype=torch.float64)
    rep = trunk(x)
    losses = [(h(rep) ** 2).mean() * (t + 1) for t, h in enumerate(heads)]
    return losses, list(trunk.parameters())


@settings(deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    tasks=st.integers(2, 6),
    width=st.integers(1, 6),
    batch=st.integers(1, 5),
)
def test_loop_equals_batched_and_rows_are_task_gradients(seed, tasks, width, batch):
    losses, params = _problem(seed, tasks, width, batch)
    loop = jacobian(losses, params, retain_graph=True, method="loop")
    batched = jacobian(losses, params, retain_graph=True, method="batched")
    assert loop.shape == (tasks, sum(p.numel() for p in params))
    torch.testing.assert_close(loop, batched, rtol=1e-12, atol=1e-12)
    for t in (0, tasks - 1):  # row t is what backward() of loss t leaves in .grad
        for p in params:
            p.grad = None
        losses[t].backward(retain_graph=True)
        expected = torch.cat([p.grad.reshape(-1) for p in params])
        torch.testing.assert_close(loop[t], expected, rtol=1e-12, atol=1e-12)


def test_golden_values_by_hand():
    # L0 = w0^2 + w1^2 + 3 v, L1 = w0 w1: dL0 = (2 w0, 2 w1, 3), dL1 = (w1, w0, 0).
    w = torch.tensor([1.0, -2.0], requires_grad=True)
    v = torch.tensor(5.0, requires_grad=True)
    losses = [(w**2).sum() + 3 * v, w[0] * w[1]]
    for method in ("loop", "batched"):
        got = jacobian(losses, [w, v], retain_graph=True, method=method)
        assert got.tolist() == [[2.0, -4.0, 3.0], [-2.0, 1.0, 0.0]]


@pytest.mark.parametrize("method", ["loop", "batched"])
def test_unreached_parameters_and_constant_losses_give_zero_rows(method):
    w = torch.tensor([2.0], requires_grad=True)
    unused = torch.ones(2, requires_grad=True)
    losses = [3 * w.sum(), torch.tensor(7.0), (w * w).sum()]
    got = jacobian(losses, [w, unused], method=method)
    assert got.tolist() == [[3.0, 0.0, 0.0], [0.0, 0.0, 0.0], [4.0, 0.0, 0.0]]


@pytest.mark.parametrize("method", ["loop", "batched"])
def test_retain_graph_false_frees_the_graph(method):
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    h = torch.sin(w)  # sin saves its input: a second pass through a freed graph raises
    losses = [h.sum(), (h * h).sum()]
    jacobian(losses, [w], method=method)
    with pytest.raises(RuntimeError, match="second time"):
        losses[0].backward()


def test_retain_graph_true_keeps_the_graph():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    h = torch.sin(w)
    losses = [h.sum(), (h * h).sum()]
    first = jacobian(losses, [w], retain_graph=True)
    torch.testing.assert_close(jacobian(losses, [w]), first)


def test_auto_takes_the_measured_path_on_cpu():
    assert choose_method("cpu") == "loop"


@pytest.mark.parametrize(
    ("losses", "params", "kwargs", "message"),
    [
        ([], "w", {}, "at least one loss"),
        (["vec"], "w", {}, r"losses\[0\] must be a scalar"),
        (["sum"], [], {}, "at least one parameter"),
        (["sum"], "w", {"method": "vmap"}, "valid methods: auto, loop, batched"),
        (["sum"], "frozen", {}, "requires_grad=True"),
    ],
)
def test_bad_input_is_named(losses, params, kwargs, message):
    w = torch.ones(3, requires_grad=True)
    made = {"vec": w * 2, "sum": w.sum()}
    params = (
        {"w": [w], "frozen": [torch.ones(2)]}.get(params, params)
        if isinstance(params, str)
        else params
    )
    with pytest.raises(ValueError, match=message):
        jacobian([made[name] for name in losses], params, **kwargs)
