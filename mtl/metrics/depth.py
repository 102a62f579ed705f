"""Depth: absolute and relative error over the valid pixels of the whole set.

A pixel is valid when its target is not 0 (0 marks a missing measurement; Cityscapes' targets are
inverse depths, NYUv2's metric depths). Over all valid pixels ``i`` of every ``update``:

- ``abs_err = sum_i |pred_i - gt_i| / n``;
- ``rel_err = sum_i |pred_i - gt_i| / gt_i / n`` (a raw ratio, not a percentage).

Sums are float64 and the count is an exact integer, so any split into batches gives the same
result up to float64 rounding. LibMTL's ``DepthMetric`` stores one mean per batch and weights it
by ``pred.size()[0]`` taken *after* masking, i.e. by the batch's valid-pixel count, which is this
same whole-set mean (computed in float32). MTAN's and CAGrad's trainers instead average the
per-batch means with equal weights (``cost / test_batch``), which depends on the batching; that
variant is not offered.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mtl.metrics._checks import check, nothing_seen, shapes


class DepthMetric:
    """Whole-set L1 and relative depth error over valid (non-zero target) pixels."""

    keys = ("abs_err", "rel_err")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.abs_sum: Tensor | None = None
        self.rel_sum: Tensor | None = None
        self.count: Tensor | None = None

    @torch.no_grad()
    def update(self, pred: Tensor, target: Tensor) -> None:
        """Add a batch: prediction and target (B, 1, H, W); target 0 marks an invalid pixel."""
        check(
            pred.dim() == 4 and pred.shape[1] == 1 and pred.shape == target.shape,
            "depth",
            f"prediction and target of shape (B, 1, H, W), got {shapes(pred, target)}",
        )
        valid = target != 0
        gt = target[valid].double()
        err = (pred[valid].double() - gt).abs()
        abs_sum, rel_sum, count = err.sum(), (err / gt).sum(), valid.sum()
        if self.count is None:
            self.abs_sum, self.rel_sum, self.count = abs_sum, rel_sum, count
        else:
            device = self.count.device
            self.abs_sum = self.abs_sum + abs_sum.to(device)
            self.rel_sum = self.rel_sum + rel_sum.to(device)
            self.count = self.count + count.to(device)

    def compute(self) -> dict[str, float]:
        if self.count is None or int(self.count) == 0:
            raise nothing_seen("depth")
        n = int(self.count)
        return {"abs_err": self.abs_sum.item() / n, "rel_err": self.rel_sum.item() / n}
