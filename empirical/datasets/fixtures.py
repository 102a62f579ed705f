"""Writers of tiny datasets in exactly the on-disk formats the real readers expect.

Tests (and smoke runs) write them to a temporary folder and read them back through
``empirical.datasets.build``. Contents are random but deterministic from ``seed``: about a tenth
of the labels are -1 (ignored), of the depths 0 (invalid) and of the normals all-zero (invalid).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from empirical.datasets.celeba import ATTR_FILE, ATTRIBUTES, IMAGE_FOLDER, PARTITION_FILE

INVALID_FRACTION = 0.1


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array)


def _labels(rng: np.random.Generator, size: tuple[int, int], num_classes: int) -> np.ndarray:
    labels = rng.integers(num_classes, size=size).astype(np.float32)
    labels[rng.random(size) < INVALID_FRACTION] = -1.0
    return labels


def _depth(rng: np.random.Generator, size: tuple[int, int], low: float, high: float) -> np.ndarray:
    depth = rng.uniform(low, high, size=(*size, 1)).astype(np.float32)
    depth[rng.random((*size, 1)) < INVALID_FRACTION] = 0.0
    return depth


def _normals(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    normals = rng.normal(size=(*size, 3))
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
    normals[rng.random(size) < INVALID_FRACTION] = 0.0
    return normals.astype(np.float32)


def write_cityscapes(
    root: str | Path,
    n_train: int = 8,
    n_val: int = 4,
    *,
    size: tuple[int, int] = (16, 32),
    seed: int = 0,
    label_folder: str = "label_7",
) -> Path:
    """``root/{train,val}/{image,label_7,depth}/N.npy`` as MTAN's Cityscapes, ``size`` (H, W).

    ``label_folder="label"`` writes LibMTL's variant of the folder name.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, count in (("train", n_train), ("val", n_val)):
        for n in range(count):
            _save(root / split / "image" / f"{n}.npy", rng.random((*size, 3), dtype=np.float32))
            _save(root / split / label_folder / f"{n}.npy", _labels(rng, size, 7))
            _save(root / split / "depth" / f"{n}.npy", _depth(rng, size, 0.01, 0.3))
    return root


def write_nyuv2(
    root: str | Path,
    n_train: int = 8,
    n_val: int = 4,
    *,
    size: tuple[int, int] = (12, 16),
    seed: int = 0,
) -> Path:
    """``root/{train,val}/{image,label,depth,normal}/N.npy`` as MTAN's NYUv2, ``size`` (H, W)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, count in (("train", n_train), ("val", n_val)):
        for n in range(count):
            _save(root / split / "image" / f"{n}.npy", rng.random((*size, 3), dtype=np.float32))
            _save(root / split / "label" / f"{n}.npy", _labels(rng, size, 13))
            _save(root / split / "depth" / f"{n}.npy", _depth(rng, size, 0.5, 10.0))
            _save(root / split / "normal" / f"{n}.npy", _normals(rng, size))
    return root


def write_celeba(
    root: str | Path,
    n_train: int = 6,
    n_val: int = 2,
    n_test: int = 2,
    *,
    image_size: tuple[int, int] = (27, 22),
    seed: int = 0,
) -> Path:
    """CelebA's image folder, attribute and partition files; JPEGs of ``image_size`` (H, W).

    Partitions are interleaved (not train first), so a reader must use the partition file.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    partitions = [0] * n_train + [1] * n_val + [2] * n_test
    partitions = [partitions[i] for i in rng.permutation(len(partitions))]
    (root / IMAGE_FOLDER).mkdir(parents=True, exist_ok=True)
    attr_lines = [str(len(partitions)), " ".join(ATTRIBUTES) + " "]
    partition_lines = []
    for n, part in enumerate(partitions, start=1):
        name = f"{n:06d}.jpg"
        pixels = rng.integers(256, size=(*image_size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / IMAGE_FOLDER / name, quality=95)
        values = rng.choice([-1, 1], size=len(ATTRIBUTES))
        attr_lines.append(name + " " + " ".join(f"{v:2d}" for v in values))
        partition_lines.append(f"{name} {part}")
    (root / ATTR_FILE).write_text("\n".join(attr_lines) + "\n")
    (root / PARTITION_FILE).write_text("\n".join(partition_lines) + "\n")
    return root
