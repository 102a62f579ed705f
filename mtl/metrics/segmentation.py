"""Semantic segmentation: mIoU and pixel accuracy from one confusion matrix over the whole set.

Every valid pixel (label != -1) of every ``update`` adds one count to ``confusion[label, pred]``
(an int64 ``torch.bincount``, so batching never changes the result). With ``tp_c`` the diagonal,
``union_c = row_c + col_c - tp_c``:

- ``miou = mean over classes with union_c > 0 of tp_c / union_c``. A class absent from both the
  ground truth and the predictions of the whole set has no IoU and is skipped (LibMTL's
  ``torch.mean`` would return NaN there). A class present in only one of them counts with IoU 0.
- ``pix_acc = sum_c tp_c / number of valid pixels``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mtl.metrics._checks import check, nothing_seen, shapes

IGNORE_LABEL = -1


class SegmentationMetric:
    """Confusion-matrix accumulator of a ``num_classes``-way segmentation task."""

    keys = ("miou", "pix_acc")

    def __init__(self, num_classes: int) -> None:
        check(
            isinstance(num_classes, int) and num_classes >= 1,
            "segmentation",
            f"a positive integer number of classes, got {num_classes!r}",
        )
        self.num_classes = num_classes
        self.reset()

    def reset(self) -> None:
        self.confusion: Tensor | None = None

    @torch.no_grad()
    def update(self, logits: Tensor, labels: Tensor) -> None:
        """Add a batch: logits (B, C, H, W), labels (B, H, W) in [0, C) or -1 (ignored)."""
        n = self.num_classes
        check(
            logits.dim() == 4
            and logits.shape[1] == n
            and labels.shape == logits.shape[:1] + logits.shape[2:],
            "segmentation",
            f"logits (B, {n}, H, W) and labels (B, H, W), got {shapes(logits, labels)}",
        )
        labels = labels.long()
        valid = labels != IGNORE_LABEL
        kept = labels[valid]
        check(
            kept.numel() == 0 or bool(kept.min() >= 0 and kept.max() < n),
            "segmentation",
            f"labels in [0, {n}) or {IGNORE_LABEL} (ignored)",
        )
        pred = logits.argmax(dim=1)[valid]
        counts = torch.bincount(kept * n + pred, minlength=n * n).reshape(n, n)
        self.confusion = (
            counts if self.confusion is None else self.confusion + counts.to(self.confusion.device)
        )

    def compute(self) -> dict[str, float]:
        if self.confusion is None or int(self.confusion.sum()) == 0:
            raise nothing_seen("segmentation")
        h = self.confusion.double()
        tp = h.diag()
        union = h.sum(dim=0) + h.sum(dim=1) - tp
        present = union > 0
        return {
            "miou": (tp[present] / union[present]).mean().item(),
            "pix_acc": (tp.sum() / h.sum()).item(),
        }
