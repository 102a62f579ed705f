"""mtl.optim.build: bad input, state_dict round trip, schedulers, closures, per-task groups."""

from __future__ import annotations

import copy

import pytest
import torch
from _optim_helpers import (
    ALL_RULES,
    HYPERPARAMETERS,
    TORCH_CLASSES,
    regression_data,
    tiny_net,
    train,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import mtl.optim


def _param(n: int = 3) -> torch.nn.Parameter:
    return torch.nn.Parameter(torch.ones(n, dtype=torch.float64))


# --- bad input --------------------------------------------------------------------------------


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown optimizer 'adadelta'") as info:
        mtl.optim.build("adadelta", [_param()])
    for name in ALL_RULES:
        assert name in str(info.value)


def test_unknown_name_in_a_group_lists_valid_names():
    with pytest.raises(ValueError, match="valid names: sgd, adam"):
        mtl.optim.build("adam", [{"params": [_param()], "optimizer": "adadelta"}])


@pytest.mark.parametrize(
    ("name", "hp", "culprit"),
    [
        ("adam", {"lr": -1e-3}, "lr"),
        ("sgd", {"lr": -0.1}, "lr"),
        ("adam", {"betas": (1.0, 0.999)}, "beta1"),
        ("adamw", {"betas": (0.9, -0.1)}, "beta2"),
        ("adam", {"betas": (0.9, 1.5)}, "beta2"),
        ("adam", {"eps": -1e-8}, "eps"),
        ("rmsprop", {"eps": -1.0}, "eps"),
        ("adagrad", {"eps": -1e-10}, "eps"),
        ("sgd", {"weight_decay": -1.0}, "weight_decay"),
        ("sgd", {"momentum": -0.5}, "momentum"),
        ("signum", {"momentum": 1.0}, "momentum"),
        ("rmsprop", {"alpha": 1.5}, "alpha"),
        ("adagrad", {"lr_decay": -0.1}, "lr_decay"),
        ("adagrad", {"initial_accumulator_value": -1.0}, "initial_accumulator_value"),
        ("sgd", {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, "nesterov"),
        ("sgd", {"nesterov": True}, "nesterov"),
    ],
)
def test_invalid_hyperparameter_names_the_parameter(name: str, hp: dict, culprit: str):
    with pytest.raises(ValueError, match=culprit):
        mtl.optim.build(name, [_param()], **hp)
    with pytest.raises(ValueError, match=culprit):  # the same check in a parameter group
        mtl.optim.build(name, [{"params": [_param()], **hp}])


def test_torch_rejects_the_same_values():
    """The domains agree with torch's own checks (where torch checks)."""
    for cls, hp in [
        (torch.optim.Adam, {"lr": -1e-3}),
        (torch.optim.Adam, {"betas": (1.0, 0.999)}),
        (torch.optim.Adam, {"eps": -1e-8}),
        (torch.optim.SGD, {"nesterov": True, "momentum": 0.9, "dampening": 0.1}),
    ]:
        with pytest.raises(ValueError):
            cls([_param()], **hp)


def test_unknown_hyperparameter_lists_valid_ones():
    with pytest.raises(ValueError, match="no hyperparameter nesterov; valid: lr, betas, eps"):
        mtl.optim.build("adam", [_param()], nesterov=True)


@pytest.mark.parametrize("name", ALL_RULES)
def test_zero_learning_rate_is_allowed_and_does_nothing(name: str):
    w = _param()
    opt = mtl.optim.build(name, [w], lr=0.0)
    for _ in range(3):
        w.grad = torch.randn(3, dtype=torch.float64)
        opt.step()
    assert torch.equal(w.detach(), torch.ones(3, dtype=torch.float64))


def test_invalid_tasks_and_missing_task_grads():
    with pytest.raises(ValueError, match="tasks=0"):
        mtl.optim.build("adam", [{"params": [_param()], "tasks": 0}])
    w = _param()
    opt = mtl.optim.build("adam", [{"params": [w], "tasks": 2}])
    with pytest.raises(ValueError, match="task_grads"):
        opt.step()
    with pytest.raises(ValueError, match="expected 2 per-task gradients"):
        opt.step(task_grads={w: [torch.ones(3, dtype=torch.float64)]})


def test_sparse_gradients_are_rejected():
    w = _param()
    w.grad = torch.ones(3, dtype=torch.float64).to_sparse()
    with pytest.raises(ValueError, match="sparse"):
        mtl.optim.build("adam", [w]).step()


# --- state_dict, schedulers, closures ---------------------------------------------------------


def _hybrid(net: torch.nn.Sequential) -> mtl.optim.Optimizer:
    return mtl.optim.build(
        "adam",
        [
            {"params": net[0].parameters(), "optimizer": "sgd", "momentum": 0.9, "lr": 0.05},
            {"params": net[2].parameters(), "optimizer": "rmsprop", "centered": True},
            {"params": net[4].parameters()},
        ],
        lr=2e-3,
    )


@settings(deadline=None)
@given(seed=st.integers(0, 2**16), k=st.integers(1, 20))
def test_state_dict_round_trip_continues_the_run(seed: int, k: int):
    """Save after k steps, load into a fresh optimizer on copied parameters, continue: the
    result equals the uninterrupted run bit for bit."""
    widths = (3, 6, 5, 2)
    x, y = regression_data(seed, widths=widths)
    straight = tiny_net(seed, widths)
    train(straight, _hybrid(straight), x, y, k + 10)
    interrupted = tiny_net(seed, widths)
    opt = _hybrid(interrupted)
    train(interrupted, opt, x, y, k)
    saved = copy.deepcopy(opt.state_dict())
    resumed_net = copy.deepcopy(interrupted)
    resumed = _hybrid(resumed_net)
    resumed.load_state_dict(saved)
    train(resumed_net, resumed, x, y, 10)
    for p, q in zip(straight.parameters(), resumed_net.parameters(), strict=True):
        assert torch.equal(p, q)


def test_state_dict_round_trip_keeps_per_task_states():
    w = _param()
    opt = mtl.optim.build("adam", [{"params": [w], "tasks": 2}], lr=0.1)
    grads = [
        torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64),
        torch.full((3,), 0.5, dtype=torch.float64),
    ]
    opt.step(task_grads={w: grads})
    saved = copy.deepcopy(opt.state_dict())
    w2 = torch.nn.Parameter(w.detach().clone())
    opt2 = mtl.optim.build("adam", [{"params": [w2], "tasks": 2}], lr=0.1)
    opt2.load_state_dict(saved)
    assert {"exp_avg@task0", "exp_avg@task1", "exp_avg_sq@task0"} <= set(opt2.state[w2])
    opt.step(task_grads={w: grads[::-1]})
    opt2.step(task_grads={w2: grads[::-1]})
    assert torch.equal(w, w2)


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_step_lr_scheduler_matches_torch(name: str):
    ours, theirs = tiny_net(5), tiny_net(5)
    x, y = regression_data(5)
    kwargs = {"lr": 0.05, "momentum": 0.9} if name == "sgd" else {"lr": 0.05}
    opt = mtl.optim.build(name, ours.parameters(), **kwargs)
    ref = TORCH_CLASSES[name](theirs.parameters(), **kwargs)
    schedulers = [torch.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.5) for o in (opt, ref)]
    for _ in range(30):
        train(ours, opt, x, y, 1)
        train(theirs, ref, x, y, 1)
        for s in schedulers:
            s.step()
    assert opt.param_groups[0]["lr"] == ref.param_groups[0]["lr"] == 0.05 * 0.5**4
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.allclose(p, q, rtol=0, atol=1e-12)


def test_closure_is_evaluated_and_its_loss_returned():
    ours, theirs = tiny_net(6), tiny_net(6)
    x, y = regression_data(6)
    opt = mtl.optim.build("adam", ours.parameters(), lr=0.01)
    ref = torch.optim.Adam(theirs.parameters(), lr=0.01)

    def closure_for(net, o):
        def closure():
            o.zero_grad()
            loss = torch.nn.functional.mse_loss(net(x), y)
            loss.backward()
            return loss

        return closure

    for _ in range(20):
        loss = opt.step(closure_for(ours, opt))
        loss_ref = ref.step(closure_for(theirs, ref))
        assert loss.item() == pytest.approx(loss_ref.item(), rel=0, abs=1e-12)
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.allclose(p, q, rtol=0, atol=1e-12)


# --- per-task groups --------------------------------------------------------------------------


def _per_task_reference(cls, init: torch.Tensor, task_grads, **hp) -> torch.Tensor:
    """T independent torch optimizers, each fed its task's gradient at the shared current
    point; the parameter moves by the sum of their updates."""
    tasks = len(task_grads[0])
    copies = [torch.nn.Parameter(init.clone()) for _ in range(tasks)]
    optimizers = [cls([c], **hp) for c in copies]
    current = init.clone()
    for grads in task_grads:
        total = torch.zeros_like(current)
        for c, o, g in zip(copies, optimizers, grads, strict=True):
            with torch.no_grad():
                c.copy_(current)
            c.grad = g.clone()
            o.step()
            total += c.detach() - current
        current = current + total
    return current


@pytest.mark.parametrize("name", list(TORCH_CLASSES))
@settings(deadline=None)
@given(data=st.data(), tasks=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_per_task_group_equals_sum_of_independent_torch_runs(name, data, tasks, seed):
    hp = data.draw(HYPERPARAMETERS[name], label="hyperparameters")
    gen = torch.Generator().manual_seed(seed)
    init = torch.randn(4, generator=gen, dtype=torch.float64)
    scales = torch.logspace(-2, 2, tasks, dtype=torch.float64)
    task_grads = [
        [s * torch.randn(4, generator=gen, dtype=torch.float64) for s in scales] for _ in range(30)
    ]
    w = torch.nn.Parameter(init.clone())
    opt = mtl.optim.build(name, [{"params": [w], "tasks": tasks}], **hp)
    for grads in task_grads:
        opt.step(task_grads={w: grads})
    expected = _per_task_reference(TORCH_CLASSES[name], init, task_grads, **hp)
    assert torch.allclose(w.detach(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ALL_RULES)
def test_per_task_group_with_one_task_is_the_plain_rule(name: str):
    gen = torch.Generator().manual_seed(7)
    grads = [torch.randn(5, generator=gen, dtype=torch.float64) for _ in range(25)]
    a, b = _param(5), _param(5)
    per_task = mtl.optim.build(name, [{"params": [a], "tasks": 1}], lr=0.01)
    plain = mtl.optim.build(name, [b], lr=0.01)
    for g in grads:
        per_task.step(task_grads={a: [g]})
        b.grad = g
        plain.step()
    assert torch.equal(a, b)
    assert not torch.equal(a.detach(), torch.ones(5, dtype=torch.float64))


def test_per_task_and_plain_groups_in_one_optimizer():
    """Shared parameters per task, heads plain, one step() call: each group as if alone."""
    shared, head = _param(3), _param(2)
    ref_shared, ref_head = _param(3), _param(2)
    opt = mtl.optim.build("adam", [{"params": [shared], "tasks": 2}, {"params": [head]}], lr=0.1)
    ref_shared_opt = mtl.optim.build("adam", [{"params": [ref_shared], "tasks": 2}], lr=0.1)
    ref_head_opt = mtl.optim.build("adam", [ref_head], lr=0.1)
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        gs = [torch.randn(3, generator=gen, dtype=torch.float64) for _ in range(2)]
        gh = torch.randn(2, generator=gen, dtype=torch.float64)
        head.grad, ref_head.grad = gh.clone(), gh.clone()
        opt.step(task_grads={shared: gs})
        ref_shared_opt.step(task_grads={ref_shared: gs})
        ref_head_opt.step()
    assert torch.equal(shared, ref_shared) and torch.equal(head, ref_head)
