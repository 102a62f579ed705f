"""What every architecture shares: task-kind checks, output channels, input-size checks, loading
a backbone's weights from a local file.

Output channels of a dense head: segmentation ``num_classes`` logits, depth 1, normal 3 (not
normalised: :func:`mtl.losses.normal_loss` and the metrics normalise the prediction themselves).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from empirical.datasets import DatasetSpec, TaskSpec

DENSE_KINDS = ("segmentation", "depth", "normal")
LABEL_KINDS = ("binary", "classification")


def check_kinds(arch: str, spec: DatasetSpec, allowed: tuple[str, ...]) -> None:
    """Raise unless every task of ``spec`` is of a kind in ``allowed`` (and has its classes)."""
    if not spec.tasks:
        raise ValueError(f"{arch}: dataset spec {spec.name!r} has no tasks; give at least one")
    bad = [f"{t.name} ({t.kind})" for t in spec.tasks if t.kind not in allowed]
    if bad:
        raise ValueError(
            f"architecture {arch!r} serves task kinds {', '.join(allowed)} only; "
            f"{spec.name!r} has {', '.join(bad)}: choose an architecture for those kinds"
        )
    for t in spec.tasks:
        if t.kind in ("segmentation", "classification") and (t.num_classes or 0) < 2:
            raise ValueError(
                f"task {t.name!r} of kind {t.kind} needs num_classes >= 2, got {t.num_classes}"
            )


def dense_channels(task: TaskSpec) -> int:
    """Channels of a dense head's output: class logits, 1 for depth, 3 for normals."""
    return {"segmentation": task.num_classes or 0, "depth": 1, "normal": 3}[task.kind]


def label_outputs(task: TaskSpec) -> int:
    """Logits of a label head: 1 for a binary task (squeezed to (B,)), C for classification."""
    return 1 if task.kind == "binary" else int(task.num_classes or 0)


def check_divisible(arch: str, shape: Iterable[int], factor: int) -> None:
    """Raise unless the spatial size ``shape`` (H, W) is divisible by ``factor``."""
    h, w = shape
    if h % factor or w % factor or h == 0 or w == 0:
        raise ValueError(
            f"{arch} needs an input height and width divisible by {factor}, got {h}x{w}: "
            f"resize or crop the images (e.g. to {max(factor, h // factor * factor)}x"
            f"{max(factor, w // factor * factor)})"
        )


def check_width(arch: str, width: int | None, default: int) -> int:
    """The width to build with: ``default`` for None, else a positive int."""
    if width is None:
        return default
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"{arch}: width must be a positive integer or None, got {width!r}")
    return width


def load_backbone(module: nn.Module, path: str | Path, ignore: tuple[str, ...] = ()) -> None:
    """Load a state dict from the local file ``path`` into ``module``, every key checked.

    Keys starting with one of ``ignore`` (e.g. ImageNet's classifier ``fc.``) are dropped first;
    then a missing key, an unexpected key or a shape mismatch is an error that lists them.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"pretrained weights file {str(path)!r} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path.name}: expected a state dict (name -> tensor), got {type(state)}")
    state = {k: v for k, v in state.items() if not k.startswith(ignore)}
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if tuple(state[k].shape) != tuple(own[k].shape)
    )
    if missing or unexpected or shapes:
        raise ValueError(
            f"{path.name} does not fit the {type(module).__name__} backbone: "
            f"missing keys {_few(missing)}; unexpected keys {_few(unexpected)}; "
            f"shape mismatches {_few(shapes)} (expected a torchvision ImageNet state dict of "
            "the same ResNet at width 64)"
        )
    module.load_state_dict(state, strict=True)


def _few(items: list[str], shown: int = 8) -> str:
    if not items:
        return "none"
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return f"{len(items)} [{', '.join(items[:shown])}{more}]"
