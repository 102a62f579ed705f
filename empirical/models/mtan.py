"""MTAN (Liu et al. 2019): the SegNet encoder-decoder shared, one attention network per task.

At encoder block j, task t's soft mask ``a = att(cat(u_j, prev))`` (two conv1x1-BN layers,
ReLU then sigmoid; ``u_j`` the block's first-conv features, ``prev`` the task's previous
attended features) gates the block's output, ``a * p_j``; a conv3x3-BN-ReLU layer ``f_j`` and a
2x2 max-pool carry the result to block j + 1. The decoder mirrors it: bilinear x2 upsampling,
``f``, then the mask ``att(cat(up_j, .))`` gates the decoder block's output ``d_j``. The last
gated decoder features feed the task's prediction layer (conv3x3 then conv1x1, as SegNet's).

Representation: the 20 shared tensors the attention reads, ``(u_0, p_0, ..., u_4, p_4, up_0,
d_0, ..., up_4, d_4)``, returned as aliases so that the gradient w.r.t. each is the partial
derivative of the heads (see :mod:`mtl.model`).

Deviation from MTAN's code, needed for hard parameter sharing: its ``encoder_block_att`` /
``decoder_block_att`` layers ``f`` are one set of weights used by every task's attention path;
they act after the task-specific masks, so they cannot be part of a shared representation.
Here every task has its own ``f``: the attention networks are wholly task-specific. This adds
``(T - 1)`` copies of ``f`` to MTAN's count (about 10.2M parameters each at width 64).

Inputs: height and width divisible by 32. ``nn.MaxUnpool2d`` refuses
``torch.use_deterministic_algorithms(True)``, even on the CPU, whose kernel is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from empirical.datasets import DatasetSpec
from empirical.models.common import (
    DENSE_KINDS,
    check_divisible,
    check_kinds,
    check_width,
    dense_channels,
)
from empirical.models.segnet import (
    DEFAULT_WIDTH,
    SegNetBackbone,
    check_capacity,
    conv_bn_relu,
    dense_head,
    filters,
    init_weights,
)
from mtl.model import MultiTaskModel

KINDS = DENSE_KINDS
BLOCKS = 5
OPTIONS = ("head_width",)


def attention_mask(c_in: int, c_mid: int, c_out: int) -> nn.Sequential:
    """MTAN's mask: conv1x1-BN-ReLU, conv1x1-BN-sigmoid."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_mid, kernel_size=1),
        nn.BatchNorm2d(c_mid),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_mid, c_out, kernel_size=1),
        nn.BatchNorm2d(c_out),
        nn.Sigmoid(),
    )


class TaskAttention(nn.Module):
    """One task's attention network over the shared SegNet features, and its prediction layer."""

    def __init__(self, width: int, out: int, head_width: int | None = None):
        super().__init__()
        f = filters(width)
        self.enc_mask = nn.ModuleList(
            [attention_mask(f[0], f[0], f[0])]
            + [attention_mask(2 * f[j], f[j], f[j]) for j in range(1, BLOCKS)]
        )
        self.enc_f = nn.ModuleList(
            [conv_bn_relu(f[j], f[j + 1]) for j in range(BLOCKS - 1)] + [conv_bn_relu(f[4], f[4])]
        )
        # decoder step i (0 = deepest) works at the resolution of encoder block 4 - i
        dec_in = [f[4], f[3], f[2], f[1], f[0]]
        dec_out = [f[3], f[2], f[1], f[0], f[0]]
        self.dec_f = nn.ModuleList(
            [conv_bn_relu(f[4], f[4])] + [conv_bn_relu(dec_in[i], dec_out[i]) for i in range(1, 5)]
        )
        self.dec_mask = nn.ModuleList(
            [attention_mask(2 * f[4], f[3], f[3])]
            + [attention_mask(dec_in[i] + dec_out[i], dec_out[i], dec_out[i]) for i in range(1, 5)]
        )
        self.head = dense_head(f[0], out, head_width)
        init_weights(self)

    def forward(self, u, p, up, d) -> Tensor:
        h = None
        for j in range(BLOCKS):
            mask = self.enc_mask[j](u[j] if h is None else torch.cat((u[j], h), dim=1))
            h = F.max_pool2d(self.enc_f[j](mask * p[j]), kernel_size=2, stride=2)
        for i in range(BLOCKS):
            h = F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=True)
            h = self.dec_f[i](h)
            h = self.dec_mask[i](torch.cat((up[i], h), dim=1)) * d[i]
        return self.head(h)


class MTAN(MultiTaskModel):
    """Shared :class:`SegNetBackbone`, one :class:`TaskAttention` per task."""

    def __init__(
        self, in_channels: int, width: int, outputs: dict[str, int], head_width: int | None = None
    ):
        super().__init__()
        if not outputs:
            raise ValueError("MTAN needs at least one task")
        self.backbone = SegNetBackbone(in_channels, width)
        self.attention = nn.ModuleDict(
            {t: TaskAttention(width, c, head_width) for t, c in outputs.items()}
        )

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(self.attention.keys())

    def encode(self, x: Tensor) -> tuple[Tensor, ...]:
        feats = self.backbone.features(x)
        enc = [t for j in range(BLOCKS) for t in (feats["u"][j], feats["p"][j])]
        dec = [t for i in range(BLOCKS) for t in (feats["up"][i], feats["d"][i])]
        return tuple(t.view_as(t) for t in enc + dec)

    def decode(self, representation: Sequence[Tensor]) -> dict[str, Tensor]:
        if isinstance(representation, Tensor) or len(representation) != 4 * BLOCKS:
            raise ValueError(
                f"MTAN decodes the {4 * BLOCKS} tensors that its encode returns, got "
                f"{type(representation).__name__}"
            )
        representation = tuple(representation)
        enc, dec = representation[: 2 * BLOCKS], representation[2 * BLOCKS :]
        u, p, up, d = enc[0::2], enc[1::2], dec[0::2], dec[1::2]
        return {t: att(u, p, up, d) for t, att in self.attention.items()}

    def named_shared_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return list(self.backbone.named_parameters(prefix="backbone"))

    def named_task_parameters(self, task: str | int) -> list[tuple[str, nn.Parameter]]:
        name = self.task_name(task)
        return list(self.attention[name].named_parameters(prefix=f"attention.{name}"))


def build(spec: DatasetSpec, *, width: int | None = None, head_width: int | None = None) -> MTAN:
    """MTAN with one attention network and prediction layer per task of ``spec``; ``head_width``
    is the channels of the prediction layer's conv3x3 (default: the width)."""
    check_kinds("mtan", spec, KINDS)
    check_divisible("mtan", spec.image_shape[-2:], 32)
    w = check_width("mtan", width, DEFAULT_WIDTH)
    check_capacity("mtan", None, head_width)
    outputs = {t.name: dense_channels(t) for t in spec.tasks}
    return MTAN(spec.image_shape[0], w, outputs, head_width)
