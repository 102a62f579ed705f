"""ResNet backbones built from torchvision's blocks, with a base width ``w`` (torchvision: 64).

Stages of ``w, 2w, 4w, 8w`` planes (times the block's expansion: 1 for ResNet-18's basic block,
4 for ResNet-50's bottleneck); the module names, layer order and initialisation (Kaiming-normal
fan-out convolutions, BatchNorm at identity) are torchvision's, so at ``w = 64`` the state dict
is exactly torchvision's ``resnet18()`` / ``resnet50(replace_stride_with_dilation=...)`` without
``fc``, and ImageNet weights load into it. ``dilate=(False, True, True)`` replaces the strides of
stages 2-4 marked True by dilation as torchvision does (output stride 8 for ResNet-50).
"""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck

DEPTHS: dict[int, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    50: (Bottleneck, (3, 4, 6, 3)),
}


class ResNetBackbone(nn.Module):
    """Stem and four stages; ``forward`` gives the last stage's features (B, 8 w e, h, w')."""

    def __init__(
        self,
        depth: int,
        width: int = 64,
        in_channels: int = 3,
        dilate: tuple[bool, bool, bool] = (False, False, False),
    ):
        super().__init__()
        block, counts = DEPTHS[depth]
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self._inplanes, self._dilation = width, 1
        stages = zip((1, 2, 4, 8), counts, (False, *dilate), strict=True)
        for i, (mult, count, dilated) in enumerate(stages, start=1):
            stride = 1 if i == 1 else 2
            setattr(self, f"layer{i}", self._stage(block, width * mult, count, stride, dilated))
        self.out_channels = self._inplanes
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _stage(self, block, planes: int, count: int, stride: int, dilated: bool) -> nn.Sequential:
        previous = self._dilation
        if dilated:
            self._dilation *= stride
            stride = 1
        out = planes * block.expansion
        downsample = None
        if stride != 1 or self._inplanes != out:
            downsample = nn.Sequential(
                nn.Conv2d(self._inplanes, out, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out),
            )
        layers = [block(self._inplanes, planes, stride, downsample, dilation=previous)]
        self._inplanes = out
        layers += [block(out, planes, dilation=self._dilation) for _ in range(1, count)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))
