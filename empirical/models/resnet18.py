"""ResNet-18 with one linear head per task (CelebA's 40 attributes; any binary or
classification tasks).

Encoder: torchvision's ResNet-18 without ``fc`` (base width ``w``, 64 as published; see
:mod:`empirical.models.resnets`), global average pooling; the representation is (B, 8 w). Head:
one ``Linear(8 w, 1)`` per binary task (logits squeezed to (B,)) or ``Linear(8 w, C)`` per
classification task. ``pretrained=PATH`` loads a local torchvision ImageNet state dict
(``fc.`` ignored, every other key checked). Any input of at least 32x32.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn

from empirical.datasets import DatasetSpec
from empirical.models.common import LABEL_KINDS, check_kinds, check_width, load_backbone
from empirical.models.heads import label_heads
from empirical.models.resnets import ResNetBackbone
from mtl.model import HardParameterSharing

DEFAULT_WIDTH = 64
KINDS = LABEL_KINDS


class PooledResNet18(nn.Module):
    """ResNet-18's stages, then global average pooling: (B, 8 w)."""

    def __init__(self, width: int = DEFAULT_WIDTH, in_channels: int = 3):
        super().__init__()
        self.resnet = ResNetBackbone(18, width, in_channels)
        self.out_channels = self.resnet.out_channels

    def forward(self, x: Tensor) -> Tensor:
        if min(x.shape[-2:]) < 32:
            raise ValueError(f"resnet18 needs inputs of at least 32x32, got {tuple(x.shape[-2:])}")
        return self.resnet(x).mean(dim=(-2, -1))


def build(
    spec: DatasetSpec, *, width: int | None = None, pretrained: str | Path | None = None
) -> HardParameterSharing:
    """ResNet-18 with one linear head per task of ``spec``."""
    check_kinds("resnet18", spec, KINDS)
    w = check_width("resnet18", width, DEFAULT_WIDTH)
    encoder = PooledResNet18(w, spec.image_shape[0])
    if pretrained is not None:
        load_backbone(encoder.resnet, pretrained, ignore=("fc.",))
    return HardParameterSharing(encoder, label_heads(spec, encoder.out_channels))
