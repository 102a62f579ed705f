"""The vision networks behind one registry: ``build(arch, spec)`` -> a ``MultiTaskModel``.

Every network is hard parameter sharing: a shared encoder and one head per task of the
:class:`~empirical.datasets.DatasetSpec` (any subset of a dataset's tasks, so a single-task
baseline is a spec with one task). Outputs per task kind: segmentation logits (B, C, H, W) and
depth (B, 1, H, W) and normals (B, 3, H, W, not normalised) at the input size; binary logits
(B,); classification logits (B, C). ``width`` is each architecture's base channel count (the
first block's; the others scale with it), ``None`` for the published one. ``pretrained`` is a
local file of ImageNet weights for the ResNet backbones; nothing is ever downloaded.

Capacity options, ``build(arch, spec, **options)``, where an architecture's ``OPTIONS`` lists
them: ``shared_blocks`` (segnet: how many of its ten blocks are shared; the rest are copied per
task into the heads) and ``head_width`` (segnet, mtan: channels of the head's conv3x3). Unset,
each architecture is the published one.

An architecture module is imported only when named (torchvision stays out of light imports).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from empirical.datasets import DatasetSpec
from mtl.model import MultiTaskModel

ARCHS: dict[str, tuple[str, str]] = {
    "segnet": ("empirical.models.segnet", "SegNet (MTAN's split model), dense tasks, width 64"),
    "mtan": ("empirical.models.mtan", "SegNet with task attention networks, dense tasks, width 64"),
    "deeplabv3": (
        "empirical.models.deeplab",
        "dilated ResNet-50 + one ASPP head per task (LibMTL's), dense tasks, width 64",
    ),
    "resnet18": ("empirical.models.resnet18", "ResNet-18 + linear heads, label tasks, width 64"),
    "small-cnn": (
        "empirical.models.small_cnn",
        "MultiLeNet (Sener and Koltun), label tasks, width 10",
    ),
}

#: Architectures whose encoder can start from ImageNet weights (``pretrained=PATH``).
PRETRAINABLE = ("deeplabv3", "resnet18")


def names() -> tuple[str, ...]:
    return tuple(ARCHS)


def module(arch: str) -> Any:
    """The module implementing ``arch`` (its ``KINDS``, ``DEFAULT_WIDTH`` and ``build``)."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; valid architectures: {', '.join(ARCHS)}")
    return importlib.import_module(ARCHS[arch][0])


def build(
    arch: str,
    spec: DatasetSpec,
    *,
    width: int | None = None,
    pretrained: str | Path | None = None,
    **options: Any,
) -> MultiTaskModel:
    """Network ``arch`` with one head per task of ``spec``; see the module docstring."""
    mod = module(arch)
    valid = getattr(mod, "OPTIONS", ())
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"{arch} has no option(s) {', '.join(map(repr, unknown))}; its options: "
            f"{', '.join(valid) or 'none'}"
        )
    options = {k: v for k, v in options.items() if v is not None}
    if pretrained is None:
        return mod.build(spec, width=width, **options)
    if arch not in PRETRAINABLE:
        raise ValueError(
            f"{arch} has no ImageNet backbone to load; pretrained= applies to "
            f"{', '.join(PRETRAINABLE)}"
        )
    if width not in (None, mod.DEFAULT_WIDTH):
        raise ValueError(
            f"ImageNet weights fit {arch} at width {mod.DEFAULT_WIDTH} only, got width={width}"
        )
    return mod.build(spec, width=width, pretrained=pretrained, **options)


__all__ = ["ARCHS", "PRETRAINABLE", "build", "module", "names"]
