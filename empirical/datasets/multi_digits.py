"""multi-digits: the MultiMNIST construction of Sener and Koltun (2018) on scikit-learn's digits.

Sener and Koltun overlay two 28x28 MNIST digits on a 36x36 canvas, the *left* one at the top-left
corner (rows and columns 0-27) and the *right* one shifted by 6 pixels down and right (6-33),
keep the pixel-wise maximum where they overlap and resize the canvas back to 28x28 (nearest
neighbour); every image of a split is the left digit once, its partner drawn uniformly from the
same split. Tasks: ``left`` and ``right``, the two digits' classes (10 each).

Here the digits are scikit-learn's bundled ``load_digits`` (1797 real 8x8 handwritten digits,
values 0-16; nothing is downloaded), scaled to [0, 1] and upsampled to 28x28 bilinearly, then
placed exactly as above; the nearest-neighbour resize takes canvas pixel
``floor((i + 1/2) * 36 / 28)`` for output pixel ``i``. Images are float32 (1, 28, 28) in [0, 1],
targets int64.

Split: the 1797 digit images are split once, by a fixed permutation (independent of ``seed``),
into disjoint sets of 1257 train, 180 validation and 360 test images; both digits of a sample come
from its split. ``seed`` draws the partners (a pure function of seed and split). Option
``pairs_per_image=1`` (Sener and Koltun's one) gives each image that many partners. ``augment``
has no effect: a mirror image would change the digits and swap their corners.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from empirical.datasets import SPLITS, DatasetSpec, TaskSpec
from empirical.datasets._generated import Sample, parse_options, positive_int, sample_rng

NAME = "multi-digits"
DIGIT = 28  # side of one upsampled digit
SHIFT = 6  # offset of the right digit on the canvas
CANVAS = 36  # the canvas side of Sener and Koltun's code
SPLIT_SEED = 2018
SPLIT_SIZES = {"val": 180, "test": 360}  # train: the remaining 1257


@dataclass(frozen=True)
class Options:
    """The dataset's options (see the module docstring)."""

    pairs_per_image: int = 1

    def __post_init__(self) -> None:
        positive_int("pairs_per_image", self.pairs_per_image)


def spec(**options: Any) -> DatasetSpec:
    parse_options(Options, NAME, options)
    return DatasetSpec(
        name=NAME,
        tasks=(
            TaskSpec("left", "classification", 10),
            TaskSpec("right", "classification", 10),
        ),
        image_shape=(1, DIGIT, DIGIT),
        real=False,  # real handwriting, but nothing to read from a data root
    )


@lru_cache(maxsize=1)
def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits: images (1797, 8, 8) float32 in [0, 1] and labels (1797,) int64."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.images / 16.0).astype(np.float32), data.target.astype(np.int64)


def split_indices(split: str) -> np.ndarray:
    """Indices into :func:`digits` of the images of ``split`` (fixed, disjoint across splits)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    order = np.random.default_rng(SPLIT_SEED).permutation(len(digits()[1]))
    val, test = SPLIT_SIZES["val"], SPLIT_SIZES["test"]
    parts = {"test": order[:test], "val": order[test : test + val], "train": order[test + val :]}
    return np.sort(parts[split])


def upsample(images: np.ndarray) -> np.ndarray:
    """(N, 8, 8) -> (N, 28, 28), bilinear (half-pixel centres, edges clamped)."""
    batch = torch.from_numpy(images)[:, None]
    up = torch.nn.functional.interpolate(batch, size=(DIGIT, DIGIT), mode="bilinear")
    return up[:, 0].numpy()


def overlay(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two (N, 28, 28) digit batches placed on the 36x36 canvas (maximum where they overlap) and
    resized back to 28x28 by nearest neighbour."""
    n = len(left)
    canvas = np.zeros((n, CANVAS, CANVAS), dtype=left.dtype)
    canvas[:, :DIGIT, :DIGIT] = left
    shifted = canvas[:, SHIFT : SHIFT + DIGIT, SHIFT : SHIFT + DIGIT]
    np.maximum(shifted, right, out=shifted)
    pick = np.floor((np.arange(DIGIT) + 0.5) * CANVAS / DIGIT).astype(int)
    return canvas[:, pick][:, :, pick]


class MultiDigits(Dataset):
    """The samples of one split; ``pairs`` (N, 2) holds the indices into :func:`digits` of each
    sample's left and right digit."""

    def __init__(self, pairs: np.ndarray) -> None:
        images, labels = digits()
        up = upsample(images)
        self.pairs = pairs
        self.images = torch.from_numpy(overlay(up[pairs[:, 0]], up[pairs[:, 1]]))[:, None]
        self.labels = torch.from_numpy(labels[pairs])

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Sample:
        return self.images[index], {"left": self.labels[index, 0], "right": self.labels[index, 1]}


def split_size(split: str, **options: Any) -> int:
    """``pairs_per_image`` samples per digit image of the split."""
    return len(split_indices(split)) * parse_options(Options, NAME, options).pairs_per_image


def build(
    split: str,
    *,
    root: str | Path | None = None,
    augment: bool = False,
    seed: int = 0,
    **options: Any,
) -> MultiDigits:
    """Split ``split`` (``root`` and ``augment`` are ignored: the digits come with scikit-learn)."""
    opts = parse_options(Options, NAME, options)
    members = split_indices(split)
    rng = sample_rng(seed, split, 0)
    left = np.repeat(np.arange(len(members)), opts.pairs_per_image)
    right = rng.integers(0, len(members), size=len(left))
    return MultiDigits(np.stack([members[left], members[right]], axis=1))
