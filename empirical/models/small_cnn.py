"""MultiLeNet (Sener and Koltun 2018, MultiMNIST): a small CNN shared, two-layer heads.

Encoder: conv5x5 (C -> w) - maxpool 2 - ReLU - conv5x5 (w -> 2w) - Dropout2d(0.5) - maxpool 2 -
ReLU - flatten - Linear(-> 5w) - ReLU, with ``w = 10`` as published (their 28x28 inputs give
2w x 4 x 4 = 320 features, Linear(320, 50)). Head per task: Linear(5w, 5w) - ReLU -
Dropout(0.5) - Linear(5w, out) (binary: one logit squeezed to (B,); classification: C logits).
The linear layer's input size follows the spec's image size, which inputs must then have
(at least 16x16).
"""

from __future__ import annotations

from torch import Tensor, nn

from empirical.datasets import DatasetSpec
from empirical.models.common import LABEL_KINDS, check_kinds, check_width
from empirical.models.heads import label_heads
from mtl.model import HardParameterSharing

DEFAULT_WIDTH = 10
KINDS = LABEL_KINDS


def _side(n: int) -> int:
    """Spatial size after conv5 - pool2 - conv5 - pool2."""
    return ((n - 4) // 2 - 4) // 2


class MultiLeNetEncoder(nn.Module):
    """The shared part; ``forward`` gives (B, 5 w)."""

    def __init__(self, image_shape: tuple[int, int, int], width: int = DEFAULT_WIDTH):
        super().__init__()
        c, h, w = image_shape
        if min(h, w) < 16:
            raise ValueError(f"small-cnn needs images of at least 16x16, got {h}x{w}")
        self.image_shape = tuple(image_shape)
        self.features = nn.Sequential(
            nn.Conv2d(c, width, kernel_size=5),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, kernel_size=5),
            nn.Dropout2d(0.5),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(2 * width * _side(h) * _side(w), 5 * width),
            nn.ReLU(),
        )
        self.out_channels = 5 * width

    def forward(self, x: Tensor) -> Tensor:
        if tuple(x.shape[-3:]) != self.image_shape:
            raise ValueError(
                f"small-cnn was built for images {self.image_shape}, got {tuple(x.shape[-3:])}: "
                "build it from the spec of the data it reads"
            )
        return self.features(x)


def build(spec: DatasetSpec, *, width: int | None = None) -> HardParameterSharing:
    """MultiLeNet with one two-layer head per task of ``spec``."""
    check_kinds("small-cnn", spec, KINDS)
    w = check_width("small-cnn", width, DEFAULT_WIDTH)
    encoder = MultiLeNetEncoder(spec.image_shape, w)
    return HardParameterSharing(encoder, label_heads(spec, encoder.out_channels, hidden=5 * w))
