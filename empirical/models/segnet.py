"""SegNet as in MTAN's and CAGrad's split model (hard parameter sharing).

Shared encoder-decoder: 5 encoder blocks with (2, 2, 3, 3, 3) conv3x3-BatchNorm-ReLU layers and
filters ``[w, 2w, 4w, 8w, 8w]`` (``w = 64``: ``[64, 128, 256, 512, 512]``), each followed by a
2x2 max-pool that keeps its indices; 5 decoder blocks mirror them, each starting with a
max-unpool at those indices. The representation is the last decoder block's output (B, w, H, W).
Each task head is conv3x3 (w -> w) then conv1x1 (w -> out), with no nonlinearity between them,
as in MTAN's ``model_segnet_split.py``. Weights: Xavier-normal convolutions, zero biases.

Capacity options (defaults: the architecture above). ``head_width=c``: the head's conv3x3 maps
w -> c and its conv1x1 c -> out. ``shared_blocks=s`` (1 <= s <= 10): the ten blocks in order of
computation (encoder 0-4, decoder 0-4 deep to shallow) are shared up to block s - 1; blocks s to
9 are copied per task as the head's trunk (:class:`SplitSegNet`). Moving the split from s to
s - 1 moves one block's parameters, ``n``, from phi to each psi_t: phi loses n, the heads gain
T n. A task trunk that contains decoder blocks whose encoder block is shared unpools with the
shared 0/1 max-location masks ``m_j``: ``unpool(h, idx_j) = m_j * nearest_up(h)`` exactly, so
the representation is ``(h, m_0, ..., m_{k-1})``. Each ``m_j`` is piecewise constant in phi; it
is returned as ``m_j + 0 * p_j`` so that autograd sees it (its gradient into phi is zero), and
representation-level methods see its entries as coordinates of the representation.

Inputs: height and width divisible by 32 (five poolings). ``nn.MaxUnpool2d`` refuses
``torch.use_deterministic_algorithms(True)``, even on the CPU, whose kernel is deterministic.
"""

from __future__ import annotations

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
from mtl.model import HardParameterSharing, MultiTaskModel

DEFAULT_WIDTH = 64
KINDS = DENSE_KINDS
BLOCKS = 10  # five encoder blocks, then five decoder blocks
OPTIONS = ("shared_blocks", "head_width")


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


def dense_head(channels: int, out: int, hidden: int | None = None) -> nn.Sequential:
    """MTAN's prediction layer: conv3x3 (channels -> hidden, default channels), conv1x1 (-> out)."""
    hidden = channels if hidden is None else hidden
    return nn.Sequential(
        nn.Conv2d(channels, hidden, kernel_size=3, padding=1),
        nn.Conv2d(hidden, out, kernel_size=1),
    )


class SegNetStage(nn.Module):
    """Blocks ``start`` to ``stop - 1`` of the ten (encoder 0-4, decoder 0-4), SegNet's layers.

    ``forward(h, masks)`` carries ``h`` through them; an encoder block j max-pools and appends its
    0/1 max-location mask ``m_j`` to ``masks``; decoder block i unpools with ``m_{4-i}``.
    """

    def __init__(self, in_channels: int, width: int, start: int, stop: int):
        super().__init__()
        full = SegNetBackbone(in_channels, width)  # the layers, initialised as in SegNet
        encoder = zip(full.enc_first, full.enc_rest, strict=True)
        decoder = zip(full.dec_first, full.dec_rest, strict=True)
        pairs = [*encoder, *decoder]
        self.start, self.stop = start, stop
        self.blocks = nn.ModuleList(nn.Sequential(*pairs[k]) for k in range(start, stop))

    def forward(self, h: Tensor, masks: list[Tensor]) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """``(h, masks, pre_pool)``: the output, the masks so far, and this stage's pre-pool
        features (one per encoder block run here)."""
        masks, pre_pool = list(masks), []
        for k, block in zip(range(self.start, self.stop), self.blocks, strict=True):
            if k < 5:
                p = block(h)
                h, idx = F.max_pool2d(p, kernel_size=2, stride=2, return_indices=True)
                masks.append(F.max_unpool2d(torch.ones_like(h), idx, 2, output_size=p.shape[-2:]))
                pre_pool.append(p)
            else:
                up = F.interpolate(h, scale_factor=2, mode="nearest") * masks[BLOCKS - 1 - k]
                h = block(up)
        return h, masks, pre_pool


class SplitSegNet(MultiTaskModel):
    """SegNet shared up to block ``shared_blocks - 1``; each task its own trunk and head."""

    def __init__(
        self, in_channels: int, width: int, outputs: dict[str, int], shared_blocks: int,
        head_width: int | None = None,
    ):  # fmt: skip
        super().__init__()
        s = shared_blocks
        self.shared = SegNetStage(in_channels, width, 0, s)
        # masks the task trunks read: m_j of a shared encoder block j whose decoder is a trunk's
        self.passed = min(s, BLOCKS - s)
        self.trunks = nn.ModuleDict(
            {t: SegNetStage(in_channels, width, s, BLOCKS) for t in outputs}
        )
        self.heads = nn.ModuleDict(
            {t: dense_head(width, c, head_width) for t, c in outputs.items()}
        )
        for head in self.heads.values():
            init_weights(head)

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(self.heads.keys())

    def encode(self, x: Tensor) -> Tensor | tuple[Tensor, ...]:
        check_divisible("SegNet", x.shape[-2:], 32)
        h, masks, pre_pool = self.shared(x, [])
        if not self.passed:
            return h
        linked = [m + 0 * p for m, p in zip(masks[: self.passed], pre_pool, strict=False)]
        return (h, *linked)

    def decode(self, representation: Tensor | tuple[Tensor, ...]) -> dict[str, Tensor]:
        if isinstance(representation, Tensor):
            h, masks = representation, []
        else:
            h, *masks = representation
        return {t: self.heads[t](trunk(h, masks)[0]) for t, trunk in self.trunks.items()}

    def named_shared_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return list(self.shared.named_parameters(prefix="shared"))

    def named_task_parameters(self, task: str | int) -> list[tuple[str, nn.Parameter]]:
        name = self.task_name(task)
        return [
            *self.trunks[name].named_parameters(prefix=f"trunks.{name}"),
            *self.heads[name].named_parameters(prefix=f"heads.{name}"),
        ]


def check_capacity(arch: str, shared_blocks: int | None, head_width: int | None) -> None:
    """Raise unless ``shared_blocks`` is None or in 1..10 and ``head_width`` None or >= 1."""
    if shared_blocks is not None and (
        isinstance(shared_blocks, bool)
        or not isinstance(shared_blocks, int)
        or not 1 <= shared_blocks <= BLOCKS
    ):
        raise ValueError(
            f"{arch}: shared_blocks must be an integer from 1 (the first encoder block shared) "
            f"to {BLOCKS} (every block shared, the default), got {shared_blocks!r}"
        )
    if head_width is not None and (
        isinstance(head_width, bool) or not isinstance(head_width, int) or head_width < 1
    ):
        raise ValueError(
            f"{arch}: head_width must be a positive integer or None, got {head_width!r}"
        )


def build(
    spec: DatasetSpec,
    *,
    width: int | None = None,
    shared_blocks: int | None = None,
    head_width: int | None = None,
) -> MultiTaskModel:
    """SegNet with one :func:`dense_head` per task of ``spec``; see the module docstring for
    ``shared_blocks`` and ``head_width``."""
    check_kinds("segnet", spec, KINDS)
    check_divisible("segnet", spec.image_shape[-2:], 32)
    w = check_width("segnet", width, DEFAULT_WIDTH)
    check_capacity("segnet", shared_blocks, head_width)
    outputs = {t.name: dense_channels(t) for t in spec.tasks}
    if shared_blocks is not None and shared_blocks < BLOCKS:
        return SplitSegNet(spec.image_shape[0], w, outputs, shared_blocks, head_width)
    backbone = SegNetBackbone(spec.image_shape[0], w)
    heads = {t: dense_head(w, c, head_width) for t, c in outputs.items()}
    for head in heads.values():
        init_weights(head)
    return HardParameterSharing(backbone, heads)
