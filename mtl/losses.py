"""Task losses as in the paper's code base (LibMTL), each with a batch and a per-sample form.

With ``reduction="mean"`` a loss averages over every valid element of the batch (LibMTL's
convention); with ``reduction="none"`` it returns one loss per sample, the average over that
sample's valid elements, i.e. the loss the sample would have as a batch of one. A batch or sample
without any valid element has loss 0 (LibMTL divides by zero there).

- ``segmentation``: cross-entropy of logits (B, C, H, W) against labels (B, H, W); label -1 is
  ignored.
- ``depth``: L1, ``|pred - target|``, over pixels whose target is valid; a pixel is invalid when
  its target channels sum to 0 (depth 0 marks a missing measurement).
- ``normal``: ``1 - <pred / |pred|, target>`` over valid pixels (same mask; targets are unit
  normals, so this is 1 - cos).
- ``binary``: binary cross-entropy with logits, one CelebA attribute per task; pred and target
  have shape (B,) or (B, 1).
- ``classification``: cross-entropy of logits (B, C) against int64 class labels (B,) (one digit of
  MultiMNIST per task).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

REDUCTIONS = ("mean", "none")

Loss = Callable[..., Tensor]


def segmentation_loss(pred: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Cross-entropy over pixels whose label is not -1."""
    _check(
        pred.dim() >= 2 and target.shape == pred.shape[:1] + pred.shape[2:],
        "segmentation",
        f"logits (B, C, ...) and labels (B, ...), got {tuple(pred.shape)} and "
        f"{tuple(target.shape)}",
    )
    per_pixel = F.cross_entropy(pred, target.long(), ignore_index=-1, reduction="none")
    return _masked_mean(per_pixel, target != -1, reduction)


def depth_loss(pred: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """L1 over valid pixels; a pixel is valid when its target channels do not sum to 0."""
    _check_dense("depth", pred, target)
    mask = _valid_pixels(target).expand_as(target)
    return _masked_mean((pred - target).abs(), mask, reduction)


def normal_loss(pred: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """1 - cos between the normalised prediction and the (unit) target over valid pixels."""
    _check_dense("normal", pred, target)
    cos = (F.normalize(pred, dim=1) * target).sum(dim=1, keepdim=True)
    return _masked_mean(1 - cos, _valid_pixels(target), reduction)


def binary_loss(pred: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy with logits (one attribute per task)."""
    _check(
        pred.shape == target.shape and pred.dim() in (1, 2) and pred.shape[1:] in ((), (1,)),
        "binary",
        f"logits and targets of equal shape (B,) or (B, 1), got {tuple(pred.shape)} "
        f"and {tuple(target.shape)}",
    )
    per_sample = F.binary_cross_entropy_with_logits(pred, target.to(pred.dtype), reduction="none")
    return _masked_mean(per_sample, torch.ones_like(per_sample, dtype=torch.bool), reduction)


def classification_loss(pred: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Cross-entropy of logits (B, C) against class labels (B,)."""
    _check(
        pred.dim() == 2 and target.shape == pred.shape[:1] and not target.is_floating_point(),
        "classification",
        f"logits (B, C) and integer labels (B,), got {tuple(pred.shape)} and "
        f"{tuple(target.shape)} ({target.dtype})",
    )
    per_sample = F.cross_entropy(pred, target.long(), reduction="none")
    return _masked_mean(per_sample, torch.ones_like(per_sample, dtype=torch.bool), reduction)


LOSSES: dict[str, Loss] = {
    "segmentation": segmentation_loss,
    "depth": depth_loss,
    "normal": normal_loss,
    "binary": binary_loss,
    "classification": classification_loss,
}


def get_loss(name: str) -> Loss:
    """The loss registered as ``name``; unknown names raise and list the valid ones."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid losses: {', '.join(LOSSES)}")
    return LOSSES[name]


def _valid_pixels(target: Tensor) -> Tensor:
    """(B, 1, H, W) mask of pixels whose target channels do not sum to 0 (LibMTL's mask)."""
    return target.sum(dim=1, keepdim=True) != 0


def _masked_mean(values: Tensor, mask: Tensor, reduction: str) -> Tensor:
    """Mean of ``values`` over ``mask``: over the batch ("mean") or per sample ("none")."""
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"unknown reduction {reduction!r}; valid reductions: {', '.join(REDUCTIONS)}"
        )
    mask = mask.expand_as(values)
    kept = torch.where(mask, values, torch.zeros((), dtype=values.dtype, device=values.device))
    if reduction == "mean":
        return kept.sum() / mask.sum().clamp(min=1)
    batch = values.shape[0]
    return kept.reshape(batch, -1).sum(dim=1) / mask.reshape(batch, -1).sum(dim=1).clamp(min=1)


def _check_dense(task: str, pred: Tensor, target: Tensor) -> None:
    _check(
        pred.dim() == 4 and pred.shape == target.shape,
        task,
        f"prediction and target of equal shape (B, C, H, W), got {tuple(pred.shape)} and "
        f"{tuple(target.shape)}",
    )


def _check(ok: bool, task: str, expected: str) -> None:
    if not ok:
        raise ValueError(f"{task} loss expects {expected}")
