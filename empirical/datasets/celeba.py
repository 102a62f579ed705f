"""CelebA from its on-disk layout: 40 binary attributes, one task each, the official split.

``ROOT`` (or ``ROOT/celeba``, torchvision's folder) holds:

- ``img_align_celeba/NNNNNN.jpg``: the aligned and cropped 178x218 face images;
- ``list_attr_celeba.txt``: the image count, the 40 attribute names, then one line per image
  (file name and 40 values -1 or 1);
- ``list_eval_partition.txt``: one line per image, file name and 0 (train), 1 (val) or 2 (test).

Each image is decoded lazily when a sample is read and resized as a whole to ``size x size``
(default 64, the paper's size, which it takes from RLW without stating the exact operation) with
PIL's bilinear filter (antialiased when shrinking), without crop, so the faces are squeezed
vertically (aspect 178:218 -> 1:1). Values are RGB in [0, 1], float32 (3, size, size), not
normalised. Targets: one float32 scalar per attribute, -1/1 mapped to 0/1. ``cache=True`` keeps
the decoded uint8 images in memory (12 KiB each at 64x64, about 2 GiB for the training split);
each DataLoader worker holds its own cache, which lasts across epochs only with
``persistent_workers=True`` (or without workers). There is no augmentation (the paper trains
CelebA without one).

This reader replaces torchvision's ``CelebA`` class, whose integrity checks (MD5 sums of the
archives) tiny test fixtures cannot pass.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from empirical.datasets import DatasetSpec, TaskSpec
from mtl.metrics.layouts import CELEBA_ATTRIBUTES

ATTRIBUTES = CELEBA_ATTRIBUTES  # the header order of list_attr_celeba.txt
IMAGE_FOLDER = "img_align_celeba"
ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
PARTITIONS = {"train": 0, "val": 1, "test": 2}
OFFICIAL_SPLIT_SIZES = {"train": 162770, "val": 19867, "test": 19962}
"""Images per split in the official ``list_eval_partition.txt`` (202,599 in all)."""

LAYOUT = f"""Expected layout (CelebA, aligned images):
  ROOT/{IMAGE_FOLDER}/NNNNNN.jpg   aligned 178x218 face images
  ROOT/{ATTR_FILE}          line 1: image count; line 2: the 40 attribute names;
                                     then per image: file name and 40 values -1 or 1
  ROOT/{PARTITION_FILE}     per image: file name and 0 (train), 1 (val) or 2 (test)
(ROOT/celeba/... is accepted too.) The files come from the CelebA project page of the
Multimedia Laboratory, CUHK (Liu et al., 'Deep Learning Face Attributes in the Wild', ICCV 2015):
Img/img_align_celeba.zip, Anno/list_attr_celeba.txt, Eval/list_eval_partition.txt; the CSV
variants of other mirrors are not read."""


def spec(*, size: int = 64, cache: bool = False) -> DatasetSpec:
    """40 binary tasks named as in ``list_attr_celeba.txt``; image (3, size, size)."""
    _check_size(size)
    tasks = tuple(TaskSpec(name, "binary") for name in ATTRIBUTES)
    return DatasetSpec("celeba", tasks, (3, size, size), real=True)


def _check_size(size: int) -> None:
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int (pixels of the square image), got {size!r}")


def _data_root(root: str | Path | None) -> Path:
    if root is None:
        raise ValueError(
            "celeba is read from disk: give its data root (--data-root DIR)\n" + LAYOUT
        )
    root = Path(root).expanduser()
    if not (root / ATTR_FILE).is_file() and (root / "celeba" / ATTR_FILE).is_file():
        root = root / "celeba"
    if not (root / IMAGE_FOLDER).is_dir():
        raise FileNotFoundError(f"CelebA: missing folder {root / IMAGE_FOLDER}\n" + LAYOUT)
    for name in (ATTR_FILE, PARTITION_FILE):
        if not (root / name).is_file():
            raise FileNotFoundError(f"CelebA: missing file {root / name}\n" + LAYOUT)
    return root


def read_attributes(path: Path) -> tuple[list[str], np.ndarray]:
    """File names and their 0/1 attributes (N, 40) uint8 from ``list_attr_celeba.txt``."""
    lines = path.read_text().splitlines()
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise ValueError(f"CelebA: {path} must start with the image count\n" + LAYOUT)
    names = tuple(lines[1].split())
    if names != ATTRIBUTES:
        raise ValueError(
            f"CelebA: {path} line 2 must name the 40 attributes {', '.join(ATTRIBUTES)}; "
            f"found {len(names)}: {' '.join(names[:5])} ..."
        )
    rows = [(number, line) for number, line in enumerate(lines[2:], 3) if line.strip()]
    if len(rows) != int(lines[0]):
        raise ValueError(
            f"CelebA: {path} announces {lines[0].strip()} images but lists {len(rows)}"
        )
    parts = [line.split(None, 1) for _, line in rows]
    try:
        values = np.loadtxt([p[1] if len(p) == 2 else "" for p in parts], dtype=np.int8, ndmin=2)
        valid = values.shape == (len(rows), len(ATTRIBUTES)) and bool(
            np.isin(values, (-1, 1)).all()
        )
    except ValueError:
        valid = False
    if not valid:
        raise _bad_attribute_row(path, rows)
    return [p[0] for p in parts], ((values + 1) // 2).astype(np.uint8)


def _bad_attribute_row(path: Path, rows: list[tuple[int, str]]) -> ValueError:
    """The error naming the first malformed line (the slow check, run only on failure)."""
    for number, line in rows:
        row = line.split()
        if len(row) != 1 + len(ATTRIBUTES) or any(v not in ("-1", "1") for v in row[1:]):
            return ValueError(
                f"CelebA: {path} line {number} must be a file name and 40 values -1 or 1, "
                f"got {' '.join(row[:6])} ..."
            )
    return ValueError(f"CelebA: {path} holds rows that are not 40 values -1 or 1")


def read_partition(path: Path) -> dict[str, int]:
    """File name -> 0 (train), 1 (val) or 2 (test), from ``list_eval_partition.txt``."""
    partition = {}
    for i, line in enumerate(path.read_text().splitlines()):
        row = line.split()
        if not row:
            continue
        if len(row) != 2 or row[1] not in ("0", "1", "2"):
            raise ValueError(
                f"CelebA: {path} line {i + 1} must be a file name and 0, 1 or 2, got {line!r}"
            )
        partition[row[0]] = int(row[1])
    return partition


def _metadata(attr_path: Path, partition_path: Path) -> tuple[list[str], np.ndarray, dict]:
    """Both files, parsed once per process while they stay unchanged (the splits share them)."""
    stamps = tuple((p.stat().st_mtime_ns, p.stat().st_size) for p in (attr_path, partition_path))
    return _parsed(attr_path, partition_path, stamps)


@functools.lru_cache(maxsize=2)
def _parsed(
    attr_path: Path, partition_path: Path, stamps: tuple
) -> tuple[list[str], np.ndarray, dict]:
    return (*read_attributes(attr_path), read_partition(partition_path))


class CelebADataset(Dataset):
    """One split: ``(image float32 (3, size, size) in [0, 1], {attribute: float32 0/1})``."""

    def __init__(
        self,
        image_dir: Path,
        files: list[str],
        labels: np.ndarray,
        size: int = 64,
        cache: bool = False,
    ) -> None:
        self.image_dir = image_dir
        self.files = files
        self.labels = torch.from_numpy(labels.astype(np.float32))
        self.size = size
        self.spec = spec(size=size)
        self._cache: dict[int, Tensor] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.files)

    def _decode(self, i: int) -> Tensor:
        path = self.image_dir / self.files[i]
        try:
            with Image.open(path) as img:
                rgb = img.convert("RGB").resize((self.size, self.size), Image.Resampling.BILINEAR)
        except OSError as error:
            raise ValueError(f"CelebA: cannot decode {path} ({error})") from None
        return torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1).contiguous()

    def image_uint8(self, i: int) -> Tensor:
        """Image ``i`` as uint8 (3, size, size), decoded once when the cache is on."""
        if self._cache is None:
            return self._decode(i)
        if i not in self._cache:
            self._cache[i] = self._decode(i)
        return self._cache[i]

    def __getitem__(self, i: int) -> tuple[Tensor, dict[str, Tensor]]:
        image = self.image_uint8(i).to(torch.float32) / 255.0
        row = self.labels[i].clone()
        return image, {name: row[k] for k, name in enumerate(ATTRIBUTES)}


def split_size(split: str, **_: Any) -> int:
    """The split's length in the official partition."""
    return OFFICIAL_SPLIT_SIZES[split]


def build(
    split: str,
    *,
    root: str | Path | None,
    augment: bool = False,
    seed: int = 0,
    size: int = 64,
    cache: bool = False,
) -> CelebADataset:
    """The official ``split`` (train/val/test = partition 0/1/2); ``seed`` is unused."""
    _check_size(size)
    if split not in PARTITIONS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(PARTITIONS)}")
    if augment:
        raise ValueError("celeba has no augmentation (the paper trains it without); augment=False")
    root = _data_root(root)
    files, labels, partition = _metadata(root / ATTR_FILE, root / PARTITION_FILE)
    unlisted = [f for f in files if f not in partition]
    if unlisted:
        raise ValueError(
            f"CelebA: {len(unlisted)} images of {ATTR_FILE} lack a line in {PARTITION_FILE}, "
            f"e.g. {', '.join(unlisted[:3])}"
        )
    keep = [i for i, f in enumerate(files) if partition[f] == PARTITIONS[split]]
    present = {p.name for p in (root / IMAGE_FOLDER).iterdir()}
    missing = [files[i] for i in keep if files[i] not in present]
    if missing:
        raise FileNotFoundError(
            f"CelebA: {len(missing)} images of the {split} split are missing from "
            f"{root / IMAGE_FOLDER}, e.g. {', '.join(missing[:5])}\n" + LAYOUT
        )
    return CelebADataset(
        root / IMAGE_FOLDER, [files[i] for i in keep], labels[keep], size=size, cache=cache
    )
