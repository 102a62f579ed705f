"""Datasets of the vision studies behind one registry: ``spec(name)`` and ``build(name, split)``.

Every dataset yields ``(image, targets)``: ``image`` a float tensor (C, H, W), ``targets`` a dict
task name -> tensor, with one entry per task of its :class:`DatasetSpec`:

- ``segmentation``: int64 (H, W), class indices, -1 ignored;
- ``depth``: float32 (1, H, W), 0 where invalid;
- ``normal``: float32 (3, H, W), unit vectors, all-zero where invalid;
- ``binary``: float32 (), 0 or 1 (one attribute per task);
- ``classification``: int64 (), a class index.

A dataset module is imported only when named, so ``import empirical.datasets`` stays light. Each
module offers ``spec(**options) -> DatasetSpec``,
``build(split, *, root, augment, seed, **options) -> torch.utils.data.Dataset`` and
``split_size(split, **options) -> int`` (the split's length without reading or rendering it; for
a real dataset, that of its official release).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

TASK_KINDS = ("segmentation", "depth", "normal", "binary", "classification")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class TaskSpec:
    """One task: its name in every output, its kind (one of ``TASK_KINDS``), its class count."""

    name: str
    kind: str
    num_classes: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in TASK_KINDS:
            raise ValueError(f"unknown task kind {self.kind!r}; valid: {', '.join(TASK_KINDS)}")


@dataclass(frozen=True)
class DatasetSpec:
    """What a model and the metrics need to know of a dataset, without reading it."""

    name: str
    tasks: tuple[TaskSpec, ...]
    image_shape: tuple[int, int, int]
    real: bool

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tasks)

    def task(self, name: str) -> TaskSpec:
        for t in self.tasks:
            if t.name == name:
                return t
        raise ValueError(f"unknown task {name!r} of {self.name}; valid: {self.task_names}")


DATASETS: dict[str, tuple[str, str]] = {
    "cityscapes": ("empirical.datasets.cityscapes", "Cityscapes, MTAN's 128x256 .npy folders"),
    "nyuv2": ("empirical.datasets.nyuv2", "NYUv2, MTAN's 288x384 .npy folders"),
    "celeba": ("empirical.datasets.celeba", "CelebA aligned images, 40 attributes, 64x64"),
    "synthetic-scenes": (
        "empirical.datasets.synthetic_scenes",
        "rendered 3-D scenes: segmentation, depth, normals (generated, no download)",
    ),
    "synthetic-attributes": (
        "empirical.datasets.synthetic_attributes",
        "rendered scenes with many binary attributes, CelebA-like (generated)",
    ),
    "multi-digits": (
        "empirical.datasets.multi_digits",
        "MultiMNIST construction from scikit-learn's bundled handwritten digits",
    ),
}


def names() -> tuple[str, ...]:
    return tuple(DATASETS)


def _module(name: str) -> Any:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid datasets: {', '.join(DATASETS)}")
    return importlib.import_module(DATASETS[name][0])


def spec(name: str, **options: Any) -> DatasetSpec:
    """The :class:`DatasetSpec` of dataset ``name`` (with its options, e.g. image size)."""
    return _module(name).spec(**options)


def build(
    name: str,
    split: str,
    *,
    root: str | Path | None = None,
    augment: bool = False,
    seed: int = 0,
    **options: Any,
) -> Dataset:
    """Split ``split`` of dataset ``name``; real ones read ``root``, generated ones ignore it."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    return _module(name).build(split, root=root, augment=augment, seed=seed, **options)


def split_size(name: str, split: str, **options: Any) -> int:
    """The number of samples of split ``split`` of ``name`` with ``options``, without reading
    or rendering anything (a real dataset: its official release, e.g. Cityscapes' 2975 training
    images less the 595 held out for validation). Dry runs count training steps with it."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    return _module(name).split_size(split, **options)


__all__ = [
    "DATASETS",
    "SPLITS",
    "TASK_KINDS",
    "DatasetSpec",
    "TaskSpec",
    "build",
    "names",
    "spec",
    "split_size",
]
