"""LibMTL's DeepLabV3 model (the paper's "DeepLabV3+"): a dilated ResNet-50 shared, one ASPP
head per task.

Encoder: ResNet-50 with the strides of stages 3 and 4 replaced by dilation (torchvision's
``replace_stride_with_dilation=[False, True, True]``, output stride 8); the representation is
stage 4's output (B, 32 w, H/8, W/8), 2048 channels at the paper's width ``w = 64``. Head:
torchvision's ``DeepLabHead(32 w, out)`` (ASPP with rates 12, 24, 36 and image pooling, 256
channels, then conv3x3-BN-ReLU and conv1x1), its output bilinearly upsampled (align_corners,
as LibMTL) by 8 to the input size. Inputs: height and width divisible by 8. The image-pooling
branch has BatchNorm on 1x1 maps: training needs batches of at least 2.

``pretrained=PATH`` loads ImageNet weights from a local torchvision ResNet-50 state dict
(its ``fc.`` classifier ignored, every other key checked); nothing is ever downloaded.
``width`` scales the ResNet's base channels (64 as published) for tests and CPU runs; the ASPP
heads keep their 256 channels.
"""

from __future__ import annotations

from pathlib import Path

import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.segmentation.deeplabv3 import DeepLabHead

from empirical.datasets import DatasetSpec
from empirical.models.common import (
    DENSE_KINDS,
    check_divisible,
    check_kinds,
    check_width,
    dense_channels,
    load_backbone,
)
from empirical.models.resnets import ResNetBackbone
from mtl.model import HardParameterSharing

DEFAULT_WIDTH = 64
KINDS = DENSE_KINDS
OUTPUT_STRIDE = 8


class DilatedResNet50(ResNetBackbone):
    """ResNet-50 at output stride 8; checks that the input size is divisible by 8."""

    def __init__(self, width: int = DEFAULT_WIDTH, in_channels: int = 3):
        super().__init__(50, width, in_channels, dilate=(False, True, True))

    def forward(self, x: Tensor) -> Tensor:
        check_divisible("deeplabv3", x.shape[-2:], OUTPUT_STRIDE)
        return super().forward(x)


class UpsampledHead(nn.Module):
    """``DeepLabHead`` whose logits are upsampled bilinearly by the encoder's output stride."""

    def __init__(self, in_channels: int, out: int):
        super().__init__()
        self.head = DeepLabHead(in_channels, out)

    def forward(self, features: Tensor) -> Tensor:
        h, w = features.shape[-2:]
        size = (h * OUTPUT_STRIDE, w * OUTPUT_STRIDE)
        return F.interpolate(self.head(features), size, mode="bilinear", align_corners=True)


def build(
    spec: DatasetSpec, *, width: int | None = None, pretrained: str | Path | None = None
) -> HardParameterSharing:
    """Dilated ResNet-50 with one upsampled ``DeepLabHead`` per task of ``spec``."""
    check_kinds("deeplabv3", spec, KINDS)
    check_divisible("deeplabv3", spec.image_shape[-2:], OUTPUT_STRIDE)
    w = check_width("deeplabv3", width, DEFAULT_WIDTH)
    encoder = DilatedResNet50(w, spec.image_shape[0])
    if pretrained is not None:
        load_backbone(encoder, pretrained, ignore=("fc.",))
    heads = {t.name: UpsampledHead(encoder.out_channels, dense_channels(t)) for t in spec.tasks}
    return HardParameterSharing(encoder, heads)
