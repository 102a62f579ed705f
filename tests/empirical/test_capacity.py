"""The capacity study: SegNet's split point and head width, the study's configurations, and its
analysis (Δm, Pareto position and verdicts) on tables built here."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from empirical import models
from empirical.datasets import DatasetSpec, TaskSpec
from mtl.model import HardParameterSharing, split_parameters

TASKS = (
    TaskSpec("segmentation", "segmentation", 5),
    TaskSpec("depth", "depth"),
    TaskSpec("normal", "normal"),
)
SPEC = DatasetSpec("scenes", TASKS, (3, 32, 32), real=False)
OUTS = {"segmentation": 5, "depth": 1, "normal": 3}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These networks are tiny: one thread is several times faster than two on a busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def conv_bn(c_in: int, c_out: int) -> int:
    return 9 * c_in * c_out + c_out + 2 * c_out  # conv3x3 weight and bias, BN scale and shift


def block_counts(w: int, c_in: int = 3) -> list[int]:
    """SegNet's ten blocks counted from its description: encoder channels [w, 2w, 4w, 8w, 8w]
    with (2, 2, 3, 3, 3) layers; the decoder mirrors it (deepest first) down to w channels."""
    f = [w, 2 * w, 4 * w, 8 * w, 8 * w]
    layers = [2, 2, 3, 3, 3]
    enc = [conv_bn([c_in, *f][k], f[k]) + (layers[k] - 1) * conv_bn(f[k], f[k]) for k in range(5)]
    ins, outs = f[::-1], [f[3], f[2], f[1], f[0], f[0]]
    dec = [
        conv_bn(ins[i], outs[i]) + (layers[4 - i] - 1) * conv_bn(outs[i], outs[i]) for i in range(5)
    ]
    return enc + dec


def head_count(w: int, hidden: int, out: int) -> int:
    return 9 * w * hidden + hidden + hidden * out + out


def count(params) -> int:
    return sum(p.numel() for p in params)


def test_the_default_segnet_is_unchanged_and_counted_analytically():
    for options in ({}, {"shared_blocks": None, "head_width": None}, {"shared_blocks": 10}):
        model = models.build("segnet", SPEC, width=4, **options)
        assert isinstance(model, HardParameterSharing)
        assert count(model.shared_parameters()) == sum(block_counts(4))
        for t, out in OUTS.items():
            assert count(model.task_parameters(t)) == head_count(4, 4, out)
    published = models.build("segnet", SPEC)  # width 64: the count of MTAN's split SegNet
    assert count(published.parameters()) == sum(block_counts(64)) + sum(
        head_count(64, 64, o) for o in OUTS.values()
    )


@given(st.integers(1, 10), st.sampled_from([None, 1, 3, 8]))
@settings(max_examples=12)
def test_the_split_moves_whole_blocks_from_phi_to_every_psi(shared_blocks, head_width):
    model = models.build(
        "segnet", SPEC, width=2, shared_blocks=shared_blocks, head_width=head_width
    )
    split = split_parameters(model)  # every parameter shared or of exactly one task
    blocks = block_counts(2)
    assert count(p for _, p in split.shared) == sum(blocks[:shared_blocks])
    for t, out in OUTS.items():
        expected = sum(blocks[shared_blocks:]) + head_count(2, head_width or 2, out)
        assert count(p for _, p in split.tasks[t]) == expected
    assert count(model.parameters()) == sum(blocks[:shared_blocks]) + sum(
        count(p for _, p in split.tasks[t]) for t in OUTS
    )


@pytest.mark.parametrize("shared_blocks", [2, 5, 8])
def test_a_split_segnet_with_copied_weights_computes_the_default_segnet(shared_blocks):
    """Unpooling by the shared max-location masks is MaxUnpool2d exactly: with every trunk a copy
    of the default network's tail, the outputs agree."""
    torch.manual_seed(0)
    default = models.build("segnet", SPEC, width=2).eval()
    split = models.build("segnet", SPEC, width=2, shared_blocks=shared_blocks).eval()
    b = default.encoder
    pairs = [*zip(b.enc_first, b.enc_rest, strict=True), *zip(b.dec_first, b.dec_rest, strict=True)]
    flat = [torch.nn.Sequential(*pair) for pair in pairs]
    for k, block in enumerate(split.shared.blocks):
        block.load_state_dict(flat[k].state_dict())
    for t in OUTS:
        for k, block in enumerate(split.trunks[t].blocks):
            block.load_state_dict(flat[shared_blocks + k].state_dict())
        split.heads[t].load_state_dict(default.heads[t].state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        want, got = default(x), split(x)
    for t, c in OUTS.items():
        assert got[t].shape == (2, c, 32, 32)
        torch.testing.assert_close(got[t], want[t], rtol=1e-5, atol=1e-6)


def test_each_output_reaches_its_own_task_parameters_and_phi_only():
    model = models.build("segnet", SPEC, width=2, shared_blocks=4)
    outputs = model(torch.randn(2, 3, 32, 32))
    for t in OUTS:
        grads = torch.autograd.grad(
            outputs[t].square().mean(), list(model.parameters()), allow_unused=True,
            retain_graph=True,
        )  # fmt: skip
        reached = {id(p) for p, g in zip(model.parameters(), grads, strict=True) if g is not None}
        own = {id(p) for p in model.task_parameters(t)}
        others = {id(p) for u in OUTS if u != t for p in model.task_parameters(u)}
        assert own <= reached and not reached & others
        assert {id(p) for p in model.shared_parameters()} <= reached


def test_mtl_backward_runs_a_representation_method_on_the_split_network():
    import mtl.methods
    from mtl import backward
    from mtl.losses import depth_loss

    model = models.build("segnet", SPEC, width=2, shared_blocks=7)
    x = torch.randn(2, 3, 32, 32)
    outputs, rep = model(x, return_representation=True)
    assert isinstance(rep, tuple) and len(rep) == 1 + 3  # h and the masks of encoder blocks 0-2
    losses = torch.stack([depth_loss(outputs[t][:, :1], torch.rand(2, 1, 32, 32)) for t in OUTS])
    backward(
        losses, mtl.methods.get("mgda-ub"), shared=model.shared_parameters(),
        task_params=[p for t in OUTS for p in model.task_parameters(t)], representation=rep,
    )  # fmt: skip
    assert all(p.grad is not None for p in model.shared_parameters())


def test_head_width_on_mtan_and_clear_errors():
    mtan = models.build("mtan", SPEC, width=2, head_width=5)
    assert count(mtan.attention["depth"].head.parameters()) == head_count(2, 5, 1)
    with pytest.raises(ValueError, match=r"no option.*'shared_blocks'.*head_width"):
        models.build("mtan", SPEC, width=2, shared_blocks=3)
    with pytest.raises(ValueError, match="options: none"):
        models.build("small-cnn", DatasetSpec("d", (TaskSpec("a", "binary"),), (1, 28, 28), False),
                     head_width=3)  # fmt: skip
    for bad in (0, 11, 2.5, True):
        with pytest.raises(ValueError, match="shared_blocks must be an integer from 1"):
            models.build("segnet", SPEC, width=2, shared_blocks=bad)
    with pytest.raises(ValueError, match="head_width must be a positive integer"):
        models.build("segnet", SPEC, width=2, head_width=0)
