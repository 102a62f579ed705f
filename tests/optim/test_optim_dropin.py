"""mtl.optim as a drop-in for torch.optim: bit-identical long runs, torch's options (amsgrad,
maximize, decoupled weight decay, foreach, fused), complex parameters, torch state dicts."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from _optim_helpers import SIGN_RULES, TORCH_CLASSES

import mtl.optim
from mtl.optim import FOREACH

LONG = 2000

LONG_RUN_HP = {
    # beta2 = 0.95 and 0.995: 1 - beta2^k has steps k where math.sqrt and ** 0.5 differ
    "sgd": {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.01, "nesterov": True},
    "adam": {"lr": 0.01, "betas": (0.8, 0.95), "weight_decay": 0.01, "amsgrad": True},
    "adamw": {"lr": 0.01, "betas": (0.9, 0.995), "maximize": True},
    "rmsprop": {"lr": 1e-3, "momentum": 0.5, "centered": True, "weight_decay": 0.01},
    "adagrad": {"lr": 0.05, "lr_decay": 0.01, "initial_accumulator_value": 0.1},
}


def _gradient(p: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """A nonlinear gradient field: the trajectory feeds back, so one differing bit grows."""
    return torch.sin(3 * p) + (p - target)


def _long_run(make, dtype: torch.dtype, steps: int = LONG, complex_: bool = False, shapes=((6,),)):
    gen = torch.Generator().manual_seed(0)
    kind = (torch.complex128 if dtype == torch.float64 else torch.complex64) if complex_ else dtype
    params = [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=kind)) for s in shapes]
    targets = [torch.randn(p.shape, generator=gen, dtype=kind) for p in params]
    opt = make(params)
    for _ in range(steps):
        for p, t in zip(params, targets, strict=True):
            p.grad = _gradient(p.detach(), t)
        opt.step()
    return [p.detach() for p in params], opt


def _bitwise_equal(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name", list(TORCH_CLASSES))
def test_long_runs_are_bit_identical_to_torch(name: str, dtype: torch.dtype):
    hp = LONG_RUN_HP[name]
    ours, _ = _long_run(lambda ps: mtl.optim.build(name, ps, **hp), dtype)
    theirs, _ = _long_run(lambda ps: TORCH_CLASSES[name](ps, **hp), dtype)
    assert _bitwise_equal(ours, theirs)
    start, _ = _long_run(lambda ps: TORCH_CLASSES[name](ps, **hp), dtype, steps=0)
    assert not _bitwise_equal(ours, start)


def test_math_sqrt_bias_correction_would_drift(monkeypatch):
    """The long-run check can fail: with ``math.sqrt`` for sqrt(1 - beta2^k) (one ulp off
    ``** 0.5`` at some k), Adam leaves torch's trajectory."""
    monkeypatch.setattr(FOREACH, "scalar_sqrt", math.sqrt)
    hp = {"lr": 0.01, "betas": (0.8, 0.95)}
    ours, _ = _long_run(lambda ps: mtl.optim.build("adam", ps, **hp), torch.float64)
    theirs, _ = _long_run(lambda ps: torch.optim.Adam(ps, **hp), torch.float64)
    assert not _bitwise_equal(ours, theirs)


# --- foreach and fused ------------------------------------------------------------------------

FUSED_HP = [
    ("adam", {"lr": 0.01, "weight_decay": 0.01, "amsgrad": True}),
    ("adam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True}),
    ("adamw", {"lr": 0.01, "betas": (0.8, 0.95)}),
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("name", "hp"), FUSED_HP)
def test_fused_equals_torch_fused(name: str, hp: dict, dtype: torch.dtype):
    ours, _ = _long_run(lambda ps: mtl.optim.build(name, ps, fused=True, **hp), dtype, 300)
    theirs, _ = _long_run(lambda ps: TORCH_CLASSES[name](ps, fused=True, **hp), dtype, 300)
    assert _bitwise_equal(ours, theirs)


@pytest.mark.parametrize("name", ["adam", "rmsprop", "signum"])
def test_foreach_false_steps_each_tensor_alone_with_the_same_result(name: str):
    grouped, _ = _long_run(lambda ps: mtl.optim.build(name, ps, lr=0.01), torch.float64, 200)
    alone, opt = _long_run(
        lambda ps: mtl.optim.build(name, ps, lr=0.01, foreach=False), torch.float64, 200
    )
    assert _bitwise_equal(grouped, alone)
    assert opt.param_groups[0]["foreach"] is False


def test_fused_outside_torch_kernels_is_refused_with_the_valid_rules():
    w = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"exists for adam, adamw only, not 'sgd'"):
        mtl.optim.build("sgd", [w], fused=True)
    with pytest.raises(ValueError, match="one state per task"):
        mtl.optim.build("adam", [{"params": [w], "tasks": 2}], fused=True)
    with pytest.raises(ValueError, match="bias"):
        mtl.optim.build("adam", [w], fused=True, bias_correction=False)
    with pytest.raises(ValueError, match="foreach=True and fused=True"):
        mtl.optim.build("adam", [w], fused=True, foreach=True)
    with pytest.raises(ValueError, match="invalid foreach='yes'"):
        mtl.optim.build("adam", [w], foreach="yes")
    with pytest.raises(ValueError, match="invalid amsgrad=1"):
        mtl.optim.build("adam", [w], amsgrad=1)


# --- complex parameters -----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(TORCH_CLASSES))
def test_complex_parameters_match_torch(name: str):
    hp = LONG_RUN_HP[name]
    shapes = ((3,), (2, 2))
    ours, opt = _long_run(
        lambda ps: mtl.optim.build(name, ps, **hp), torch.float64, 300, True, shapes
    )
    theirs, _ = _long_run(
        lambda ps: TORCH_CLASSES[name](ps, **hp), torch.float64, 300, True, shapes
    )
    assert _bitwise_equal(ours, theirs)
    for state in opt.state.values():  # buffers stay complex, as torch keeps them
        assert all(v.is_complex() for k, v in state.items() if k != "step")


def test_complex_second_moment_is_per_part_square_not_complex_square():
    """Adam, one step from zero state, beta2 = 0: v = Re(g)^2 + i Im(g)^2 (parts apart);
    the complex square g^2 = Re^2 - Im^2 + 2i Re Im would give another value."""
    w = torch.nn.Parameter(torch.zeros(1, dtype=torch.complex128))
    opt = mtl.optim.build("adam", [w], betas=(0.0, 0.0), lr=0.1)
    w.grad = torch.tensor([3.0 + 4.0j], dtype=torch.complex128)
    opt.step()
    assert torch.equal(
        opt.state[w]["exp_avg_sq"], torch.tensor([9.0 + 16.0j], dtype=torch.complex128)
    )


@pytest.mark.parametrize("name", SIGN_RULES)
def test_complex_sign_methods_act_on_the_real_view(name: str):
    z = torch.nn.Parameter(torch.zeros(2, dtype=torch.complex128))
    r = torch.nn.Parameter(torch.zeros(2, 2, dtype=torch.float64))
    opts = [mtl.optim.build(name, [p], lr=0.5) for p in (z, r)]
    grad = torch.tensor([1.0 - 2.0j, -3.0 + 0.5j], dtype=torch.complex128)
    for _ in range(3):
        z.grad, r.grad = grad, torch.view_as_real(grad).clone()
        for o in opts:
            o.step()
    assert torch.equal(torch.view_as_real(z.detach()), r.detach())


# --- torch state dicts ------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(TORCH_CLASSES))
def test_loading_a_torch_state_dict_continues_torch_run(name: str):
    """Train with torch.optim, switch to mtl.optim mid-run: the continuation is torch's."""
    hp = LONG_RUN_HP[name]
    gen = torch.Generator().manual_seed(3)
    init = torch.randn(4, generator=gen, dtype=torch.float64)
    target = torch.randn(4, generator=gen, dtype=torch.float64)
    straight, switched = torch.nn.Parameter(init.clone()), torch.nn.Parameter(init.clone())
    ref = TORCH_CLASSES[name]([straight], **hp)
    first = TORCH_CLASSES[name]([switched], **hp)
    for k in range(60):
        for p, o in [(straight, ref), *([(switched, first)] if k < 25 else [])]:
            p.grad = _gradient(p.detach(), target)
            o.step()
        if k == 24:
            ours = mtl.optim.build(name, [switched], lr=123.0)  # replaced by the loaded groups
            ours.load_state_dict(copy.deepcopy(first.state_dict()))
            assert ours.param_groups[0]["lr"] == hp["lr"]
            assert isinstance(ours.state[switched]["step"], int)
        if k >= 25:
            switched.grad = _gradient(switched.detach(), target)
            ours.step()
    assert torch.equal(straight, switched)
