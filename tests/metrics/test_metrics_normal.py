"""Normals: golden angles, an independent numpy reference (LibMTL's formulas), invariances."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from mtl.metrics.normal import NormalMetric

THRESHOLD_KEYS = ("within_11_25", "within_22_5", "within_30")


def _compute(pred, target):
    metric = NormalMetric()
    metric.update(pred, target)
    return metric.compute()


def _pixels(vectors):
    """(1, 3, 1, N) from N 3-vectors."""
    return torch.tensor(vectors, dtype=torch.float64).T.reshape(1, 3, 1, -1)


def test_golden_angles_by_hand():
    c, s = math.cos(math.radians(20)), math.sin(math.radians(20))
    # Angles 0, 20, 45, 90 (a zero prediction too: 90), 180; the last target is zero (invalid).
    pred = _pixels([[3, 0, 0], [c, s, 0], [1, 1, 0], [0, 2, 0], [0, 0, 0], [-1, 0, 0], [1, 0, 0]])
    target = _pixels([[1, 0, 0]] * 6 + [[0, 0, 0]])
    scores = _compute(pred, target)
    assert scores["normal_mean"] == pytest.approx((0 + 20 + 45 + 90 + 90 + 180) / 6)
    assert scores["normal_median"] == pytest.approx((45 + 90) / 2)
    assert [scores[k] for k in THRESHOLD_KEYS] == pytest.approx([1 / 6, 2 / 6, 2 / 6])


def _numpy_reference(pred, target):
    """LibMTL's NormalMetric, written with numpy: acos of the clamped dot product."""
    p = pred.double().numpy()
    p = p / np.linalg.norm(p, axis=1, keepdims=True)
    t = target.double().numpy()
    valid = np.abs(t).sum(axis=1) != 0
    angles = np.degrees(np.arccos(np.clip((p * t).sum(axis=1)[valid], -1, 1)))
    return {
        "normal_mean": angles.mean(),
        "normal_median": np.median(angles),
        **{k: np.mean(angles < b) for k, b in zip(THRESHOLD_KEYS, (11.25, 22.5, 30), strict=True)},
    }


def _random(seed, batch=2, h=3, w=5):
    gen = torch.Generator().manual_seed(seed)
    pred = torch.randn(batch, 3, h, w, generator=gen, dtype=torch.float64)
    target = torch.nn.functional.normalize(
        pred + 0.6 * torch.randn(batch, 3, h, w, generator=gen, dtype=torch.float64), dim=1
    )
    target = target * (torch.rand(batch, 1, h, w, generator=gen) < 0.7)
    target[0, :, 0, 0] = torch.tensor([0.0, 0.0, 1.0])  # at least one valid pixel
    return pred, target


seeds = st.integers(0, 2**31 - 1)


@given(seeds)
def test_agrees_with_the_numpy_reference(seed):
    pred, target = _random(seed)
    ours, reference = _compute(pred, target), _numpy_reference(pred, target)
    assert ours.keys() == reference.keys()
    for key, value in reference.items():
        assert ours[key] == pytest.approx(value, abs=1e-5), key


@given(seeds, st.floats(1e-3, 1e3))
def test_invariant_to_scaling_the_prediction_per_pixel(seed, scale):
    pred, target = _random(seed)
    factor = scale * (1 + torch.rand(pred.shape[0], 1, *pred.shape[2:], dtype=torch.float64))
    assert _compute(pred * factor, target) == pytest.approx(_compute(pred, target), rel=1e-9)


@given(seeds)
def test_within_fractions_grow_with_the_threshold(seed):
    scores = _compute(*_random(seed))
    fractions = [scores[k] for k in THRESHOLD_KEYS]
    assert all(0 <= f <= 1 for f in fractions)
    assert fractions == sorted(fractions)


@given(seeds)
def test_invalid_pixels_never_count(seed):
    pred, target = _random(seed)
    other = torch.where((target != 0).any(1, keepdim=True), pred, 1e3 * torch.randn_like(pred))
    assert _compute(other, target) == _compute(pred, target)


def test_median_of_an_odd_count_is_the_middle_angle():
    pred = _pixels([[1, 0, 0], [1, 1, 0], [0, 1, 0]])  # 0, 45, 90 degrees
    scores = _compute(pred, _pixels([[1, 0, 0]] * 3))
    assert scores["normal_median"] == pytest.approx(45.0)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"normal metric expects .* \(B, 3, H, W\)"):
        NormalMetric().update(torch.ones(1, 2, 2, 2), torch.ones(1, 2, 2, 2))
    with pytest.raises(ValueError, match="no valid element"):
        _compute(torch.ones(1, 3, 1, 1), torch.zeros(1, 3, 1, 1))
