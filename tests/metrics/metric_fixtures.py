"""Random multi-task batches with invalid targets, for the metric tests."""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import Tensor

# One task of every kind the accumulator knows.
TASKS = {
    "segmentation": ("segmentation", 4),
    "depth": ("depth", None),
    "normal": ("normal", None),
    "smiling": ("binary", None),
    "digit": ("classification", 3),
}


def random_batch(seed: int, batch: int, h: int = 3, w: int = 4) -> tuple[dict, dict]:
    """Outputs and targets of every task in ``TASKS``; about a third of the pixels invalid."""
    gen = torch.Generator().manual_seed(seed)

    def invalid() -> Tensor:
        return torch.rand(batch, 1, h, w, generator=gen) < 0.3

    seg_labels = torch.randint(0, 4, (batch, h, w), generator=gen)
    seg_labels[invalid()[:, 0]] = -1
    depth = torch.rand(batch, 1, h, w, generator=gen) + 0.1
    depth[invalid()] = 0
    normal = torch.nn.functional.normalize(torch.randn(batch, 3, h, w, generator=gen), dim=1)
    normal = normal * ~invalid()
    outputs = {
        "segmentation": torch.randn(batch, 4, h, w, generator=gen),
        "depth": torch.rand(batch, 1, h, w, generator=gen),
        "normal": torch.randn(batch, 3, h, w, generator=gen),
        "smiling": torch.randn(batch, generator=gen),
        "digit": torch.randn(batch, 3, generator=gen),
    }
    targets = {
        "segmentation": seg_labels,
        "depth": depth,
        "normal": normal,
        "smiling": torch.randint(0, 2, (batch,), generator=gen).float(),
        "digit": torch.randint(0, 3, (batch,), generator=gen),
    }
    return outputs, targets


def chunks(data: dict, bounds: list[int]) -> list[dict]:
    """``data`` (task -> tensor) cut along the batch at ``bounds`` (sorted, inside the batch)."""
    edges = [0, *bounds, len(next(iter(data.values())))]
    return [{k: v[a:b] for k, v in data.items()} for a, b in pairwise(edges)]
