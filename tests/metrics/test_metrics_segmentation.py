"""Segmentation: golden confusion-matrix values, the laws of mIoU, scikit-learn as a peer."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import jaccard_score

from mtl.metrics.segmentation import SegmentationMetric


def _logits(pred: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Logits (B, C, H, W) whose arg-max is ``pred`` (B, H, W)."""
    return 5.0 * torch.nn.functional.one_hot(pred, num_classes).permute(0, 3, 1, 2).float()


def _scores(pred, labels, num_classes):
    metric = SegmentationMetric(num_classes)
    metric.update(_logits(pred, num_classes), labels)
    return metric.compute()


def test_golden_values_by_hand():
    labels = torch.tensor([[[0, 0, 1, 1, 2, -1]]])
    pred = torch.tensor([[[0, 1, 1, 1, 0, 2]]])
    # Valid pixels 0..4. IoU: class 0: 1 / (2 + 2 - 1); class 1: 2 / (2 + 3 - 2); class 2: 0 / 1.
    scores = _scores(pred, labels, 3)
    assert scores["miou"] == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)
    assert scores["pix_acc"] == pytest.approx(3 / 5)
    # A fourth class absent from labels and predictions is skipped (LibMTL: NaN), not counted 0.
    assert _scores(pred, labels, 4) == pytest.approx(scores)


def test_ignored_pixels_never_count():
    labels = torch.tensor([[[0, 1, -1, -1]]])
    pred = torch.tensor([[[0, 1, 0, 1]]])
    assert _scores(pred, labels, 2) == {"miou": 1.0, "pix_acc": 1.0}


seeds = st.integers(0, 2**31 - 1)


@given(seeds, st.integers(2, 6))
def test_perfect_prediction_gives_one(seed, num_classes):
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(-1, num_classes, (2, 3, 5), generator=gen)
    labels[0, 0, 0] = 0  # at least one valid pixel
    assert _scores(labels.clamp(min=0), labels, num_classes) == {"miou": 1.0, "pix_acc": 1.0}


@given(seeds, st.integers(2, 6))
def test_relabelling_classes_in_prediction_and_truth_keeps_the_scores(seed, num_classes):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, num_classes, 3, 4, generator=gen, dtype=torch.float64)
    labels = torch.randint(-1, num_classes, (2, 3, 4), generator=gen)
    labels[0, 0, 0] = 1
    perm = torch.randperm(num_classes, generator=gen)
    relabelled = torch.where(labels >= 0, perm[labels.clamp(min=0)], labels)
    before, after = SegmentationMetric(num_classes), SegmentationMetric(num_classes)
    before.update(logits, labels)
    after.update(logits[:, torch.argsort(perm)], relabelled)  # new class perm[c] <- old class c
    assert after.compute() == pytest.approx(before.compute(), rel=1e-12)


@given(seeds, st.integers(2, 5))
def test_agrees_with_scikit_learn_jaccard_over_present_classes(seed, num_classes):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, num_classes, 2, 5, generator=gen)
    labels = torch.randint(-1, num_classes, (3, 2, 5), generator=gen)
    labels[0, 0, 0] = 0
    metric = SegmentationMetric(num_classes)
    metric.update(logits, labels)
    valid = labels >= 0
    truth, pred = labels[valid].numpy(), logits.argmax(1)[valid].numpy()
    present = np.union1d(truth, pred)
    expected = jaccard_score(truth, pred, labels=present, average="macro", zero_division=0)
    assert metric.compute()["miou"] == pytest.approx(expected, rel=1e-12)
    assert metric.compute()["pix_acc"] == pytest.approx(np.mean(truth == pred), rel=1e-12)


def test_bad_input_is_named():
    metric = SegmentationMetric(3)
    with pytest.raises(ValueError, match=r"logits \(B, 3, H, W\) and labels \(B, H, W\)"):
        metric.update(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels in \[0, 3\) or -1"):
        metric.update(torch.zeros(1, 3, 1, 2), torch.tensor([[[0, 3]]]))
    with pytest.raises(ValueError, match="no valid element"):
        metric.compute()
    with pytest.raises(ValueError, match="positive integer number of classes"):
        SegmentationMetric(0)
