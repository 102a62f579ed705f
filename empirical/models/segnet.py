"""SegNet as in MTAN's and CAGrad's split model (hard parameter sharing).

Shared encoder-decoder: 5 encoder blocks with (2, 2, 3, 3, 3) conv3x3-BatchNorm-ReLU layers and
filters ``[w, 2w, 4w, 8w, 8w]`` (``w = 64``: ``[64, 128, 256, 512, 512]``), each followed by a
2x2 max-pool that keeps its indices; 5 decoder blocks mirror them, each starting with a
max-unpool at those indices. The representation is the last decoder block's output (B, w, H, W).
Each task head is conv3x3 (w -> w) then conv1x1 (w -> out), with no nonlinearity between them,
as in MTAN's ``model_segnet_split.py``. Weights: Xavier-normal convolutions, zero biases.

Inputs: height and width divisible by 32 (five poolings). ``nn.MaxUnpool2d`` refuses
``torch.use_deterministic_algorithms(True)``, even on the CPU, whose kernel is deterministic.
"""

from __future__ import annotations

from torch import Tensor, nn

from empirical.datasets import DatasetSpec
from empirical.models.common import (
    DENSE_KINDS,
    check_divisible,
    check_kinds,
    check_width,
    dense_channels,
)
from mtl.model import HardParameterSharing

DEFAULT_WIDTH = 64
KINDS = DENSE_KINDS


def filters(width: int) -> list[int]:
    """Channels of the five encoder blocks: ``[w, 2w, 4w, 8w, 8w]``."""
    return [width, 2 * width, 4 * width, 8 * width, 8 * width]


def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def _stack(channels: int, layers: int) -> nn.Sequential:
    return nn.Sequential(*(conv_bn_relu(channels, channels) for _ in range(layers)))


def init_weights(module: nn.Module) -> None:
    """MTAN's initialisation: Xavier-normal conv/linear weights, zero biases, BN at identity."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.xavier_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class SegNetBackbone(nn.Module):
    """The shared encoder-decoder; ``forward`` gives the last decoder features (B, w, H, W)."""

    def __init__(self, in_channels: int = 3, width: int = DEFAULT_WIDTH):
        super().__init__()
        f = filters(width)
        extra = [1, 1, 2, 2, 2]  # layers after a block's first conv: (2, 2, 3, 3, 3) in all
        self.enc_first = nn.ModuleList(
            [conv_bn_relu(in_channels, f[0])] + [conv_bn_relu(f[i], f[i + 1]) for i in range(4)]
        )
        self.enc_rest = nn.ModuleList(_stack(f[i], extra[i]) for i in range(5))
        # decoder block i (0 = deepest) maps f[4 - i] -> f[max(3 - i, 0)] at the resolution of
        # encoder block 4 - i
        outs = [f[3], f[2], f[1], f[0], f[0]]
        ins = [f[4], f[3], f[2], f[1], f[0]]
        self.dec_first = nn.ModuleList(conv_bn_relu(ins[i], outs[i]) for i in range(5))
        self.dec_rest = nn.ModuleList(_stack(outs[i], extra[4 - i]) for i in range(5))
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(kernel_size=2, stride=2)
        self.out_channels = f[0]
        init_weights(self)

    def features(self, x: Tensor) -> dict[str, list[Tensor]]:
        """Every block's features: encoder ``u`` (after the first conv) and ``p`` (before the
        pooling); decoder ``up`` (after the unpooling) and ``d`` (the block's output), each a
        list of 5 (encoder shallow to deep, decoder deep to shallow)."""
        check_divisible("SegNet", x.shape[-2:], 32)
        u, p, indices = [], [], []
        h = x
        for first, rest in zip(self.enc_first, self.enc_rest, strict=True):
            u.append(first(h))
            p.append(rest(u[-1]))
            h, idx = self.pool(p[-1])
            indices.append(idx)
        up, d = [], []
        for i, (first, rest) in enumerate(zip(self.dec_first, self.dec_rest, strict=True)):
            up.append(self.unpool(h, indices[4 - i]))
            d.append(rest(first(up[-1])))
            h = d[-1]
        return {"u": u, "p": p, "up": up, "d": d}

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)["d"][-1]


def dense_head(channels: int, out: int) -> nn.Sequential:
    """MTAN's prediction layer: conv3x3 (channels -> channels), then conv1x1 (-> out)."""
    return nn.Sequential(
        nn.Conv2d(channels, channels, kernel_size=3, padding=1),
        nn.Conv2d(channels, out, kernel_size=1),
    )


def build(spec: DatasetSpec, *, width: int | None = None) -> HardParameterSharing:
    """SegNet with one :func:`dense_head` per task of ``spec``."""
    check_kinds("segnet", spec, KINDS)
    check_divisible("segnet", spec.image_shape[-2:], 32)
    w = check_width("segnet", width, DEFAULT_WIDTH)
    backbone = SegNetBackbone(spec.image_shape[0], w)
    heads = {t.name: dense_head(w, dense_channels(t)) for t in spec.tasks}
    for head in heads.values():
        init_weights(head)
    return HardParameterSharing(backbone, heads)
