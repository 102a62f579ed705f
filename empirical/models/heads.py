"""Heads for label tasks: a binary task's logit (B,) or a classification task's logits (B, C)."""

from __future__ import annotations

from torch import Tensor, nn

from empirical.datasets import DatasetSpec
from empirical.models.common import label_outputs


class LabelHead(nn.Module):
    """``body`` (features -> logits); a binary task's single logit is squeezed to (B,)."""

    def __init__(self, body: nn.Module, binary: bool):
        super().__init__()
        self.body = body
        self.binary = binary

    def forward(self, features: Tensor) -> Tensor:
        logits = self.body(features)
        return logits.squeeze(-1) if self.binary else logits


def label_heads(
    spec: DatasetSpec, features: int, hidden: int | None = None
) -> dict[str, nn.Module]:
    """One head per task: ``Linear(features, out)``, or with ``hidden`` units first
    ``Linear(features, hidden)``-ReLU-Dropout(0.5)-``Linear(hidden, out)`` (MultiLeNet's)."""
    heads = {}
    for t in spec.tasks:
        out = label_outputs(t)
        if hidden is None:
            body: nn.Module = nn.Linear(features, out)
        else:
            body = nn.Sequential(
                nn.Linear(features, hidden), nn.ReLU(), nn.Dropout(0.5), nn.Linear(hidden, out)
            )
        heads[t.name] = LabelHead(body, t.kind == "binary")
    return heads
