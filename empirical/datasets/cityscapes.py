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

from empirical.datasets.npy_folders import ArrayField, MtanDataset, NpyLayout

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


_DATASET = MtanDataset(LAYOUT)
spec = _DATASET.spec
split_size = _DATASET.split_size
build = _DATASET.build
