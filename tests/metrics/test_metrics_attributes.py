"""Binary and multi-class accuracy / F1: golden values and scikit-learn as a peer."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, f1_score

from mtl.metrics.attributes import BinaryMetric, ClassificationMetric


def _binary(logits, target):
    metric = BinaryMetric()
    metric.update(torch.tensor(logits), torch.tensor(target))
    return metric.compute()


def test_binary_golden_values_by_hand():
    # Predictions (logit > 0): 1, 0, 1, 0, 0 (a logit of exactly 0 is negative).
    # tp = 1, fn = 1, fp = 1, tn = 2: acc 3/5, f1 = 2 / (2 + 1 + 1).
    scores = _binary([2.0, -1.0, 0.5, -3.0, 0.0], [1.0, 1.0, 0.0, 0.0, 0.0])
    assert scores == pytest.approx({"acc": 0.6, "f1": 0.5})


def test_binary_f1_without_any_positive_is_zero():
    assert _binary([-1.0, -2.0], [0.0, 0.0]) == {"acc": 1.0, "f1": 0.0}


@given(st.integers(0, 2**31 - 1), st.integers(1, 30))
def test_binary_agrees_with_scikit_learn(seed, n):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, generator=gen)
    target = torch.randint(0, 2, (n,), generator=gen)
    scores = _binary(logits.tolist(), target.float().tolist())
    pred = (logits > 0).int().numpy()
    assert scores["acc"] == pytest.approx(accuracy_score(target.numpy(), pred))
    assert scores["f1"] == pytest.approx(f1_score(target.numpy(), pred, zero_division=0))


def test_binary_accepts_a_trailing_unit_dimension_and_int_targets():
    metric = BinaryMetric()
    metric.update(torch.tensor([[1.0], [-1.0]]), torch.tensor([[1], [1]]))
    assert metric.compute() == pytest.approx({"acc": 0.5, "f1": 2 / 3})


def test_classification_golden_values_by_hand():
    metric = ClassificationMetric(3)
    metric.update(torch.tensor([[0.0, 2.0, 1.0], [3.0, 0.0, 0.0]]), torch.tensor([1, 2]))
    metric.update(torch.tensor([[0.0, 0.0, 1.0]]), torch.tensor([2]))
    assert metric.compute() == {"acc": 2 / 3}


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"targets in \{0, 1\}"):
        _binary([1.0, 2.0], [1.0, -1.0])
    with pytest.raises(ValueError, match="logits and targets of equal shape"):
        BinaryMetric().update(torch.ones(3, 2), torch.ones(3, 2))
    with pytest.raises(ValueError, match=r"logits \(B, 3\) and labels \(B,\)"):
        ClassificationMetric(3).update(torch.ones(2, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels in \[0, 3\)"):
        ClassificationMetric(3).update(torch.ones(1, 3), torch.tensor([3]))
    with pytest.raises(ValueError, match="no valid element"):
        BinaryMetric().compute()
