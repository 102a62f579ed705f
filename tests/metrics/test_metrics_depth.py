"""Depth: golden values, invalid pixels, and the whole-set mean against per-batch averaging."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from mtl.metrics.depth import DepthMetric


def _compute(*batches):
    metric = DepthMetric()
    for pred, target in batches:
        metric.update(pred, target)
    return metric.compute()


def test_golden_values_by_hand():
    pred = torch.tensor([1.0, 5.0, 2.0, 3.0]).reshape(1, 1, 2, 2)
    target = torch.tensor([2.0, 0.0, 4.0, 1.0]).reshape(1, 1, 2, 2)  # pixel 1 invalid
    # Errors 1, 2, 2 over targets 2, 4, 1: abs 5/3, rel (1/2 + 2/4 + 2/1) / 3 = 1.
    assert _compute((pred, target)) == pytest.approx({"abs_err": 5 / 3, "rel_err": 1.0})


def test_prediction_at_invalid_pixels_never_counts():
    target = torch.tensor([2.0, 0.0]).reshape(1, 1, 1, 2)
    a = _compute((torch.tensor([1.0, 0.0]).reshape(1, 1, 1, 2), target))
    b = _compute((torch.tensor([1.0, 1e6]).reshape(1, 1, 1, 2), target))
    assert a == b == {"abs_err": 1.0, "rel_err": 0.5}


def _libmtl_style(batches):
    """LibMTL 1.1's DepthMetric: per-batch means weighted by the batch's valid-pixel count."""
    means, weights = [], []
    for pred, target in batches:
        valid = target != 0
        means.append((pred[valid] - target[valid]).abs().double().mean())
        weights.append(valid.sum())
    return float(sum(m * w for m, w in zip(means, weights, strict=True)) / sum(weights))


def _equal_batch_weights(batches):
    """MTAN's / CAGrad's trainers: per-batch means averaged with equal weights."""
    means = [(p[t != 0] - t[t != 0]).abs().double().mean() for p, t in batches]
    return float(sum(means) / len(means))


@given(st.integers(0, 2**31 - 1))
def test_whole_set_mean_is_libmtl_valid_pixel_weighting_not_the_batch_average(seed):
    gen = torch.Generator().manual_seed(seed)
    # Two batches with very different valid-pixel counts (8 and 1) and errors.
    first = (torch.zeros(1, 1, 2, 4), torch.full((1, 1, 2, 4), 1.0))
    second = (torch.zeros(1, 1, 2, 4), torch.zeros(1, 1, 2, 4))
    second[1][0, 0, 0, 0] = 5.0 + torch.rand((), generator=gen)
    ours = _compute(first, second)["abs_err"]
    assert ours == pytest.approx(_libmtl_style([first, second]), rel=1e-12)
    assert ours == pytest.approx((8 * 1.0 + second[1].sum().item()) / 9, rel=1e-12)
    assert abs(ours - _equal_batch_weights([first, second])) > 1.0


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"depth metric expects .* \(B, 1, H, W\)"):
        DepthMetric().update(torch.ones(1, 2, 2, 2), torch.ones(1, 2, 2, 2))
    with pytest.raises(ValueError, match="no valid element"):
        _compute((torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)))
