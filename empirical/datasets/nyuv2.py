"""NYUv2 in MTAN's preprocessed format: 13-class segmentation, depth and normals, 288x384.

Splits (``build``): ``train`` = the 795 official training images (``ROOT/train/``) minus a fixed
hold-out of ``val_size`` (159, as the paper and LibMTL) ranked by ``holdout_seed`` (see
:mod:`empirical.datasets.npy_folders`), or minus the explicit ``val_indices`` (for instance
LibMTL's own list); ``val`` = that hold-out; ``test`` = the official 654 test images, which
MTAN's layout stores in ``ROOT/val/``.

Depth is metric, 0 where invalid; normals are unit vectors, all-zero where invalid, both used as
stored. The reference augmentation divides depth by the zoom, right for metric depth.
"""

from __future__ import annotations

from empirical.datasets.npy_folders import ArrayField, MtanDataset, NpyLayout

SOURCE = (
    "The preprocessed archives come from MTAN (Liu, Johns and Davison, 'End-to-End Multi-Task "
    "Learning with Attention', CVPR 2019), linked from its repository's README; LibMTL's "
    "examples/nyu README links the same data."
)

LAYOUT = NpyLayout(
    dataset="NYUv2",
    name="nyuv2",
    fields=(
        ArrayField("image", "image", ("image",), 3, "float RGB in [0, 1]"),
        ArrayField("segmentation", "segmentation", ("label",), None, "classes 0..12, -1 ignored"),
        ArrayField("depth", "depth", ("depth",), 1, "float depth, 0 invalid"),
        ArrayField("normal", "normal", ("normal",), 3, "float unit normals, all-zero invalid"),
    ),
    num_classes=13,
    official_size=(288, 384),
    folder_contents=(
        "the 795 official training images (N = 0..794)",
        "the 654 official test images (the test split)",
    ),
    default_val_size=159,
    source=SOURCE,
    official_counts=(795, 654),
)


_DATASET = MtanDataset(LAYOUT)
spec = _DATASET.spec
split_size = _DATASET.split_size
build = _DATASET.build
