"""Small multi-task networks and batches for the gradient tests (float64, seeded)."""

import torch
from torch import nn

from mtl.losses import binary_loss, depth_loss, segmentation_loss
from mtl.model import HardParameterSharing

LOSSES = {"seg": segmentation_loss, "depth": depth_loss, "attr": binary_loss}


class _Attribute(nn.Module):
    """Pool the feature map and predict one logit per image: (B,)."""

    def __init__(self, channels: int):
        super().__init__()
        self.linear = nn.Linear(channels, 1)

    def forward(self, rep: torch.Tensor) -> torch.Tensor:
        return self.linear(rep.mean(dim=(2, 3))).squeeze(1)


def tiny_cnn(seed: int, batchnorm: bool, channels: int = 3) -> HardParameterSharing:
    """A two-conv shared encoder (optionally with BatchNorm) and three heads."""
    torch.manual_seed(seed)
    norm = nn.BatchNorm2d(channels) if batchnorm else nn.Identity()
    encoder = nn.Sequential(
        nn.Conv2d(2, channels, 3, padding=1), norm, nn.ReLU(), nn.Conv2d(channels, channels, 1)
    )
    heads = {
        "seg": nn.Conv2d(channels, 3, 1),
        "depth": nn.Conv2d(channels, 1, 1),
        "attr": _Attribute(channels),
    }
    return HardParameterSharing(encoder, heads).double()


def tiny_batch(
    seed: int, batch: int, size: int = 4
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 2, size, size, generator=gen, dtype=torch.float64)
    targets = {
        "seg": torch.randint(-1, 3, (batch, size, size), generator=gen),
        "depth": torch.rand(batch, 1, size, size, generator=gen, dtype=torch.float64).round(),
        "attr": torch.randint(0, 2, (batch,), generator=gen).double(),
    }
    return x, targets
