"""Per-sample tasks: binary attributes (accuracy and F1) and multi-class labels (accuracy).

Counts are exact integers over the whole set.

- Binary: the prediction is 1 where the logit is > 0 (probability > 0.5). With the counts
  ``tp, fp, fn, tn`` of the positive class 1: ``acc = (tp + tn) / n`` and
  ``f1 = 2 tp / (2 tp + fp + fn)``, defined as 0 when no sample is positive in the targets nor in
  the predictions (scikit-learn's ``f1_score`` convention).
- Classification: the prediction is the arg-max class; ``acc = correct / n``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mtl.metrics._checks import check, nothing_seen, shapes


class BinaryMetric:
    """Accuracy and F1 of one binary attribute from its logits (B,) and 0/1 targets (B,)."""

    keys = ("acc", "f1")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.counts: Tensor | None = None  # tp, fp, fn, tn

    @torch.no_grad()
    def update(self, logits: Tensor, target: Tensor) -> None:
        check(
            logits.shape == target.shape
            and logits.dim() in (1, 2)
            and logits.shape[1:] in ((), (1,)),
            "binary",
            f"logits and targets of equal shape (B,) or (B, 1), got {shapes(logits, target)}",
        )
        truth = target.reshape(-1)
        check(bool(((truth == 0) | (truth == 1)).all()), "binary", "targets in {0, 1}")
        truth = truth == 1
        pred = logits.reshape(-1) > 0
        counts = torch.stack(
            [
                (pred & truth).sum(),
                (pred & ~truth).sum(),
                (~pred & truth).sum(),
                (~pred & ~truth).sum(),
            ]
        )
        self.counts = counts if self.counts is None else self.counts + counts.to(self.counts.device)

    def compute(self) -> dict[str, float]:
        if self.counts is None or int(self.counts.sum()) == 0:
            raise nothing_seen("binary")
        tp, fp, fn, tn = (int(c) for c in self.counts)
        f1_denominator = 2 * tp + fp + fn
        return {
            "acc": (tp + tn) / (tp + fp + fn + tn),
            "f1": 2 * tp / f1_denominator if f1_denominator else 0.0,
        }


class ClassificationMetric:
    """Accuracy of a ``num_classes``-way task from logits (B, C) and int labels (B,)."""

    keys = ("acc",)

    def __init__(self, num_classes: int) -> None:
        check(
            isinstance(num_classes, int) and num_classes >= 2,
            "classification",
            f"an integer number of classes >= 2, got {num_classes!r}",
        )
        self.num_classes = num_classes
        self.reset()

    def reset(self) -> None:
        self.correct: Tensor | None = None
        self.count = 0

    @torch.no_grad()
    def update(self, logits: Tensor, labels: Tensor) -> None:
        n = self.num_classes
        check(
            logits.dim() == 2 and logits.shape[1] == n and labels.shape == logits.shape[:1],
            "classification",
            f"logits (B, {n}) and labels (B,), got {shapes(logits, labels)}",
        )
        check(
            labels.numel() == 0 or bool(labels.min() >= 0 and labels.max() < n),
            "classification",
            f"labels in [0, {n})",
        )
        correct = (logits.argmax(dim=1) == labels.long()).sum()
        self.correct = (
            correct if self.correct is None else self.correct + correct.to(self.correct.device)
        )
        self.count += labels.numel()

    def compute(self) -> dict[str, float]:
        if self.count == 0:
            raise nothing_seen("classification")
        return {"acc": int(self.correct) / self.count}
