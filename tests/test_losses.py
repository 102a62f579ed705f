"""Task losses: golden values by hand, invalid pixels never matter, per-sample == batch of one."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mtl.losses import (
    LOSSES,
    binary_loss,
    classification_loss,
    depth_loss,
    get_loss,
    normal_loss,
    segmentation_loss,
)


def test_segmentation_golden_value_ignores_label_minus_one():
    # Pixel 0: logits (0, 0), label 1 -> log 2. Pixel 1: logits (ln 3, 0), label 0 -> ln(4/3).
    # Pixel 2 is ignored (label -1) although its logits are extreme.
    pred = torch.tensor([[[[0.0, math.log(3.0), 100.0]], [[0.0, 0.0, -100.0]]]])
    target = torch.tensor([[[1, 0, -1]]])
    expected = (math.log(2.0) + math.log(4.0 / 3.0)) / 2
    assert segmentation_loss(pred, target).item() == pytest.approx(expected, rel=1e-6)
    assert segmentation_loss(pred, target, reduction="none").tolist() == pytest.approx([expected])


def test_depth_golden_value_ignores_zero_depth():
    pred = torch.tensor([[[[1.0, 5.0], [2.0, -7.0]]]])
    target = torch.tensor([[[[2.0, 0.0], [4.0, 0.0]]]])  # two valid pixels: errors 1 and 2
    assert depth_loss(pred, target).item() == pytest.approx(1.5)


def test_normal_golden_value():
    # Valid pixel 0: pred (0, 2, 0) normalised is (0, 1, 0); target (0, 1, 0): 1 - cos = 0.
    # Valid pixel 1: pred (1, 1, 0) -> (1, 1, 0)/sqrt 2, target (1, 0, 0): 1 - 1/sqrt 2.
    # Pixel 2 has target 0 (invalid).
    pred = torch.tensor([[0.0, 1.0, 3.0], [2.0, 1.0, 3.0], [0.0, 0.0, 3.0]]).reshape(1, 3, 1, 3)
    target = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]).reshape(1, 3, 1, 3)
    expected = (0.0 + 1 - 1 / math.sqrt(2)) / 2
    assert normal_loss(pred, target).item() == pytest.approx(expected, rel=1e-6)


def test_binary_golden_value():
    pred = torch.tensor([0.0, math.log(3.0)])
    target = torch.tensor([1.0, 0.0])  # -log sigmoid(0) = ln 2; -log(1 - 3/4) = ln 4
    assert binary_loss(pred, target).item() == pytest.approx(math.log(8.0) / 2, rel=1e-6)
    assert binary_loss(pred, target, reduction="none").tolist() == pytest.approx(
        [math.log(2.0), math.log(4.0)]
    )


def test_classification_golden_value():
    # Sample 0: logits (0, 0, 0), label 2 -> ln 3. Sample 1: logits (ln 2, 0, 0), label 0 -> ln 2.
    pred = torch.tensor([[0.0, 0.0, 0.0], [math.log(2.0), 0.0, 0.0]])
    target = torch.tensor([2, 0])
    assert classification_loss(pred, target).item() == pytest.approx(math.log(6.0) / 2, rel=1e-6)
    assert classification_loss(pred, target, reduction="none").tolist() == pytest.approx(
        [math.log(3.0), math.log(2.0)]
    )


def test_classification_matches_torch_cross_entropy():
    gen = torch.Generator().manual_seed(0)
    pred = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    target = torch.randint(0, 5, (6,), generator=gen)
    torch.testing.assert_close(
        classification_loss(pred, target), torch.nn.functional.cross_entropy(pred, target)
    )


def _batch(task: str, gen: torch.Generator, batch: int, h: int, w: int):
    """A random prediction, a target and a mask of the elements that count (True = valid)."""
    if task == "segmentation":
        pred = torch.randn(batch, 4, h, w, generator=gen, dtype=torch.float64)
        target = torch.randint(-1, 4, (batch, h, w), generator=gen)
        return pred, target, (target != -1).unsqueeze(1).expand_as(pred)
    if task == "classification":
        pred = torch.randn(batch, 3, generator=gen, dtype=torch.float64)
        target = torch.randint(0, 3, (batch,), generator=gen)
        return pred, target, torch.ones_like(pred, dtype=torch.bool)
    if task == "binary":
        pred = torch.randn(batch, generator=gen, dtype=torch.float64)
        target = torch.randint(0, 2, (batch,), generator=gen).double()
        return pred, target, torch.ones_like(pred, dtype=torch.bool)
    channels = 1 if task == "depth" else 3
    pred = torch.randn(batch, channels, h, w, generator=gen, dtype=torch.float64)
    target = torch.randn(batch, channels, h, w, generator=gen, dtype=torch.float64)
    if task == "normal":
        target = torch.nn.functional.normalize(target, dim=1)
    valid = torch.rand(batch, 1, h, w, generator=gen) < 0.6
    target = target * valid
    return pred, target, valid.expand_as(pred)


cases = st.tuples(
    st.sampled_from(sorted(LOSSES)),
    st.integers(0, 2**31 - 1),
    st.integers(1, 4),
    st.integers(1, 3),
    st.integers(1, 3),
)


@settings(deadline=None)
@given(cases)
def test_invalid_elements_never_change_the_loss_or_get_a_gradient(case):
    task, seed, batch, h, w = case
    gen = torch.Generator().manual_seed(seed)
    pred, target, valid = _batch(task, gen, batch, h, w)
    other = torch.where(valid, pred, 1e3 * torch.randn(pred.shape, generator=gen, dtype=pred.dtype))
    other.requires_grad_(True)
    loss = get_loss(task)
    assert loss(other, target).item() == pytest.approx(loss(pred, target).item(), rel=1e-12)
    torch.testing.assert_close(loss(other, target, "none"), loss(pred, target, "none"))
    loss(other, target).backward()
    assert torch.all(other.grad[~valid] == 0)


@settings(deadline=None)
@given(cases)
def test_per_sample_loss_is_the_loss_of_a_batch_of_one(case):
    task, seed, batch, h, w = case
    pred, target, _ = _batch(task, torch.Generator().manual_seed(seed), batch, h, w)
    loss = get_loss(task)
    per_sample = loss(pred, target, reduction="none")
    assert per_sample.shape == (batch,)
    ones = torch.stack([loss(pred[i : i + 1], target[i : i + 1]) for i in range(batch)])
    torch.testing.assert_close(per_sample, ones)


@settings(deadline=None)
@given(cases)
def test_batch_mean_weights_samples_by_their_valid_elements(case):
    task, seed, batch, h, w = case
    pred, target, valid = _batch(task, torch.Generator().manual_seed(seed), batch, h, w)
    loss = get_loss(task)
    counts = valid.reshape(batch, -1).sum(dim=1).double()
    expected = (loss(pred, target, "none") * counts).sum() / counts.sum().clamp(min=1)
    torch.testing.assert_close(loss(pred, target), expected)


def test_all_invalid_gives_zero_loss_not_nan():
    pred = torch.ones(2, 1, 2, 2, requires_grad=True)
    assert depth_loss(pred, torch.zeros(2, 1, 2, 2)).item() == 0.0
    assert segmentation_loss(torch.ones(1, 3, 2), -torch.ones(1, 2, dtype=torch.long)).item() == 0


def test_bad_input_is_named():
    with pytest.raises(
        ValueError, match="valid losses: segmentation, depth, normal, binary, classification"
    ):
        get_loss("disparity")
    with pytest.raises(ValueError, match="valid reductions: mean, none"):
        depth_loss(torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 2), reduction="sum")
    with pytest.raises(ValueError, match="depth loss expects"):
        depth_loss(torch.ones(1, 1, 2, 2), torch.ones(1, 2, 2))
    with pytest.raises(ValueError, match="segmentation loss expects"):
        segmentation_loss(torch.ones(1, 3, 2, 2), torch.ones(1, 3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="binary loss expects"):
        binary_loss(torch.ones(3, 2), torch.ones(3, 2))
    with pytest.raises(ValueError, match="classification loss expects"):
        classification_loss(torch.ones(3, 2), torch.ones(3))  # float labels
    with pytest.raises(ValueError, match="classification loss expects"):
        classification_loss(torch.ones(3, 2, 2), torch.ones(3, dtype=torch.long))
