"""Cityscapes in MTAN's preprocessed format: 7-class segmentation and inverse depth, 128x256.

Splits (``build``): ``train`` = the official training images (``ROOT/train/``) minus a fixed
hold-out of ``val_size`` (595, as the paper) ranked by ``holdout_seed`` (see
:mod:`empirical.datasets.npy_folders`), or minus the explicit ``val_indices``; ``val`` = that
hold-out; ``test`` = the official 500 validation images (``ROOT/val/``).

The depth labels are inverse depth (disparity-like), 0 where invalid. The reference augmentation
divides them by the zoom, which is the rule for metric depth; ``depth_scaling="multiply"`` is the
corrected one for inverse depth (see :mod:`empirical.datasets.transforms`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from empirical.datasets import DatasetSpec
from empirical.datasets.npy_folders import ArrayField, NpyDenseDataset, NpyLayout, build_split
from empirical.datasets.transforms import check_depth_scaling

SOURCE = (
    "The preprocessed archives come from MTAN (Liu, Johns and Davison, 'End-to-End Multi-Task "
    "Learning with Attention', CVPR 2019), linked from its repository's README; LibMTL's "
    "examples/cityscapes README links a copy whose label folder is named label/."
)

LAYOUT = NpyLayout(
    dataset="Cityscapes",
    name="cityscapes",
    fields=(
        ArrayField("image", "image", ("image",), 3, "float RGB in [0, 1]"),
        ArrayField(
            "segmentation", "segmentation", ("label_7", "label"), None, "classes 0..6, -1 ignored"
        ),
        ArrayField("depth", "depth", ("depth",), 1, "float inverse depth, 0 invalid"),
    ),
    num_classes=7,
    official_size=(128, 256),
    folder_contents=(
        "the 2975 official training images (N = 0..2974)",
        "the 500 official validation images (the test split)",
    ),
    default_val_size=595,
    source=SOURCE,
    official_counts=(2975, 500),
)


def spec(
    *,
    size: tuple[int, int] | None = None,
    val_size: int | None = None,
    holdout_seed: int = 0,
    val_indices: Sequence[int] | None = None,
    depth_scaling: str = "divide",
) -> DatasetSpec:
    """Tasks ``segmentation`` (7 classes) and ``depth``; image (3, 128, 256) unless ``size``.

    Takes ``build``'s options (one option dict serves both); only ``size`` changes the spec.
    """
    check_depth_scaling(depth_scaling)
    return LAYOUT.spec(size)


def split_size(
    split: str,
    *,
    val_size: int | None = None,
    val_indices: Sequence[int] | None = None,
    **_: Any,
) -> int:
    """The split's length in the official release (``val_size`` or ``val_indices`` held out of
    training)."""
    return LAYOUT.split_size(split, len(val_indices) if val_indices is not None else val_size)


def build(
    split: str,
    *,
    root: str | Path | None,
    augment: bool = False,
    seed: int = 0,
    size: tuple[int, int] | None = None,
    val_size: int | None = None,
    holdout_seed: int = 0,
    val_indices: Sequence[int] | None = None,
    depth_scaling: str = "divide",
) -> NpyDenseDataset:
    """Split ``split`` read from ``root``; ``size`` (H, W), if given, must match the files."""
    return build_split(
        LAYOUT,
        split,
        root=root,
        augment=augment,
        seed=seed,
        size=size,
        val_size=val_size,
        holdout_seed=holdout_seed,
        val_indices=val_indices,
        depth_scaling=depth_scaling,
    )
