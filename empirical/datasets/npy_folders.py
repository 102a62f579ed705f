"""MTAN's preprocessed ``.npy`` folders (Cityscapes, NYUv2): one reader for both layouts.

A data root holds ``train/`` (the official training images) and ``val/`` (the official
validation images, which the studies use as the test set). Each holds one folder per array kind
(``image/``, a label folder, ``depth/``, ``normal/``) with one file ``N.npy`` per image, N an
integer; the same N in every folder is the same image. Arrays are channels-last:

- image (H, W, 3) float, RGB in [0, 1] (used as stored, no normalisation);
- label (H, W), integer-valued (float or int dtype), class index or -1 (ignored);
- depth (H, W, 1) float, 0 where invalid;
- normal (H, W, 3) float, unit vectors, all-zero where invalid (used as stored).

``H, W`` are read from the first image; every file of a split folder must agree (headers are
checked when a dataset is built, label values when a sample is read). Samples are converted to
the package contract: image float32 (3, H, W), segmentation int64 (H, W), depth float32
(1, H, W), normal float32 (3, H, W).

The validation split is a fixed hold-out of the official training images: each index N is
ranked by a hash of ``(holdout_seed, N)`` (BLAKE2b, independent of library versions) and the
``val_size`` first are held out, so the hold-out depends only on the seed and the files present.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.lib.format as npy_format
import torch
from torch import Tensor
from torch.utils.data import Dataset

from empirical.datasets import DatasetSpec, TaskSpec
from empirical.datasets.transforms import RandomScaleCropFlip, check_depth_scaling, sample_generator

SPLIT_FOLDERS = {"train": "train", "val": "train", "test": "val"}


@dataclass(frozen=True)
class ArrayField:
    """One array per image: its key in a sample (``image`` or a task), folder, channel count."""

    key: str
    kind: str
    folders: tuple[str, ...]
    channels: int | None
    meaning: str

    def shape(self, size: tuple[int, int]) -> tuple[int, ...]:
        return size if self.channels is None else (*size, self.channels)

    def shape_text(self) -> str:
        return "(H, W)" if self.channels is None else f"(H, W, {self.channels})"


@dataclass(frozen=True)
class NpyLayout:
    """A dataset in MTAN's format: its arrays (image first), classes, official size, source."""

    dataset: str
    name: str
    fields: tuple[ArrayField, ...]
    num_classes: int
    official_size: tuple[int, int]
    folder_contents: tuple[str, str]
    default_val_size: int
    source: str
    official_counts: tuple[int, int]  # images in the official train/ and val/ folders

    def split_size(self, split: str, val_size: int | None = None) -> int:
        """The split's length in the official release: train less the hold-out, the hold-out,
        and the official validation images as the test split."""
        n_val = self.default_val_size if val_size is None else val_size
        train, test = self.official_counts
        return {"train": train - n_val, "val": n_val, "test": test}[split]

    @property
    def tasks(self) -> tuple[ArrayField, ...]:
        return tuple(f for f in self.fields if f.key != "image")

    def spec(self, size: tuple[int, int] | None = None) -> DatasetSpec:
        height, width = self.official_size if size is None else size
        tasks = tuple(
            TaskSpec(f.key, f.kind, self.num_classes if f.kind == "segmentation" else None)
            for f in self.tasks
        )
        return DatasetSpec(self.name, tasks, (3, height, width), real=True)

    def describe(self) -> str:
        """The expected layout and where the preprocessed archives come from."""
        h, w = self.official_size
        lines = [f"Expected layout ({self.dataset} in MTAN's preprocessed format, {h}x{w}):"]
        for split, contents in zip(("train", "val"), self.folder_contents, strict=True):
            for f in self.fields:
                path = f"ROOT/{split}/{f.folders[0]}/N.npy"
                others = "".join(f" (or {name}/)" for name in f.folders[1:])
                lines.append(f"  {path:<26} {f.shape_text():<12} {f.meaning}{others}")
            lines.append(f"  ROOT/{split}/ holds {contents}")
        lines.append(self.source)
        return "\n".join(lines)


def read_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a ``.npy`` file from its header, without reading the data."""
    readers = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}
    try:
        with open(path, "rb") as f:
            version = npy_format.read_magic(f)
            if version in readers:
                shape, _, dtype = readers[version](f)
                return tuple(shape), dtype
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as error:
        raise ValueError(f"{path} is not a readable .npy array ({error})") from None
    return tuple(array.shape), array.dtype


def _integer_stems(folder: Path, layout: NpyLayout) -> dict[int, Path]:
    stems: dict[int, Path] = {}
    for path in folder.glob("*.npy"):
        if not path.stem.isdigit():
            raise ValueError(
                f"unexpected file {path}: {layout.dataset} files are named N.npy, N an integer\n"
                + layout.describe()
            )
        if int(path.stem) in stems:
            raise ValueError(f"{path} and {stems[int(path.stem)]} both hold index {int(path.stem)}")
        stems[int(path.stem)] = path
    return stems


def _field_folder(split_dir: Path, field: ArrayField, layout: NpyLayout) -> Path:
    for name in field.folders:
        if (split_dir / name).is_dir():
            return split_dir / name
    wanted = " or ".join(str(split_dir / name) for name in field.folders)
    raise FileNotFoundError(f"{layout.dataset}: missing folder {wanted}\n" + layout.describe())


@dataclass(frozen=True)
class NpyFolder:
    """A checked split folder (``ROOT/train`` or ``ROOT/val``): its indices, size and files."""

    layout: NpyLayout
    path: Path
    stems: tuple[int, ...]
    size: tuple[int, int]
    files: dict[str, dict[int, Path]]

    @classmethod
    def scan(
        cls, split_dir: Path, layout: NpyLayout, size: tuple[int, int] | None = None
    ) -> NpyFolder:
        """Find and check every file of ``split_dir``; ``size`` (H, W), if given, must match."""
        folders = {f.key: _field_folder(split_dir, f, layout) for f in layout.fields}
        files = {f.key: _integer_stems(folders[f.key], layout) for f in layout.fields}
        stems = sorted(files["image"])
        if not stems:
            raise FileNotFoundError(
                f"{layout.dataset}: no N.npy files in {folders['image']}\n" + layout.describe()
            )
        for f in layout.tasks:
            missing = sorted(set(stems) - set(files[f.key]))
            if missing:
                shown = ", ".join(f"{n}.npy" for n in missing[:5])
                more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
                raise FileNotFoundError(
                    f"{layout.dataset}: {folders[f.key]} lacks {shown}{more} "
                    f"(present in {folders['image']})\n" + layout.describe()
                )
        first_shape, _ = read_header(files["image"][stems[0]])
        found = first_shape[:2] if len(first_shape) == 3 else None
        if size is not None and found is not None and tuple(size) != found:
            raise ValueError(
                f"{layout.dataset}: images in {folders['image']} are {found[0]}x{found[1]}, "
                f"but size={tuple(size)} was asked for"
            )
        expected_size = found if found is not None else layout.official_size
        reference = f"H, W = {expected_size} as in {files['image'][stems[0]]}"
        for f in layout.fields:
            want = f.shape(expected_size)
            for n in stems:
                shape, dtype = read_header(files[f.key][n])
                _check_array(files[f.key][n], shape, dtype, want, f, layout, reference)
        return cls(layout, split_dir, tuple(stems), expected_size, files)

    def load(self, stem: int) -> dict[str, np.ndarray]:
        arrays = {}
        for key, paths in self.files.items():
            path = paths[stem]
            try:
                arrays[key] = np.load(path, allow_pickle=False)
            except Exception as error:
                raise ValueError(f"{path} is not a readable .npy array ({error})") from None
        return arrays


def _check_array(
    path: Path,
    shape: tuple[int, ...],
    dtype: np.dtype,
    want: tuple[int, ...],
    field: ArrayField,
    layout: NpyLayout,
    reference: str,
) -> None:
    if shape != want:
        raise ValueError(
            f"{layout.dataset}: {path} has shape {shape}, expected {want} "
            f"({field.key}: {field.shape_text()} {field.meaning}; {reference}, the first image; "
            "every file of a folder must agree)\n" + layout.describe()
        )
    allowed = "f" if field.kind != "segmentation" else "fiu"
    if dtype.kind not in allowed:
        raise ValueError(
            f"{layout.dataset}: {path} has dtype {dtype}, expected a "
            f"{'float' if allowed == 'f' else 'numeric'} array ({field.key}: {field.meaning})"
        )


def holdout(stems: Sequence[int], val_size: int, seed: int) -> tuple[list[int], list[int]]:
    """Split ``stems`` into (train, val): the ``val_size`` smallest hashes of ``(seed, N)``."""
    if not 0 <= val_size < len(stems):
        raise ValueError(
            f"val_size={val_size} must be in [0, {len(stems)}): the training folder holds "
            f"{len(stems)} images; pass a smaller val_size (the default is the paper's hold-out "
            "of the full dataset)"
        )

    def rank(n: int) -> bytes:
        return hashlib.blake2b(f"{seed}/{n}".encode(), digest_size=16).digest()

    val = sorted(sorted(stems, key=rank)[:val_size])
    held = set(val)
    return [n for n in stems if n not in held], val


def _explicit_holdout(
    stems: Sequence[int], val_indices: Sequence[int]
) -> tuple[list[int], list[int]]:
    val = sorted({int(n) for n in val_indices})
    unknown = sorted(set(val) - set(stems))
    if unknown or len(val) != len(val_indices):
        raise ValueError(
            "val_indices must be distinct indices N of files in the training folder; "
            f"unknown: {unknown[:5]}, duplicates: {len(val_indices) - len(val)}"
        )
    held = set(val)
    return [n for n in stems if n not in held], val


class NpyDenseDataset(Dataset):
    """One split of an MTAN-format dataset; samples ``(image, {task: target})``.

    With an augmentation, sample ``i`` of epoch ``e`` is augmented with
    ``sample_generator(seed, e, N)`` (N the file index of sample ``i``); call
    :meth:`set_epoch` before each epoch (as with a ``DistributedSampler``). DataLoader workers
    receive a copy of the dataset when an epoch's iterator is created, so with
    ``persistent_workers=True`` the epoch must be set before the first iteration and never changes.
    """

    def __init__(
        self,
        folder: NpyFolder,
        stems: Sequence[int],
        augmentation: RandomScaleCropFlip | None = None,
        seed: int = 0,
    ) -> None:
        self.folder = folder
        self.stems = tuple(stems)
        self.augmentation = augmentation
        self.seed = seed
        self.epoch = 0
        self.spec = folder.layout.spec(folder.size)
        self.kinds = {t.name: t.kind for t in self.spec.tasks}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.stems)

    def __getitem__(self, i: int) -> tuple[Tensor, dict[str, Tensor]]:
        stem = self.stems[i]
        arrays = self.folder.load(stem)
        image = torch.from_numpy(np.ascontiguousarray(np.moveaxis(arrays["image"], -1, 0)))
        targets = {t.name: self._target(t.name, arrays[t.name], stem) for t in self.spec.tasks}
        image = image.to(torch.float32)
        if self.augmentation is not None:
            rng = sample_generator(self.seed, self.epoch, stem)
            image, targets = self.augmentation(image, targets, self.kinds, rng)
        return image, targets

    def _target(self, task: str, array: np.ndarray, stem: int) -> Tensor:
        if self.kinds[task] == "segmentation":
            return torch.from_numpy(self._labels(array, self.folder.files[task][stem]))
        channels_first = np.ascontiguousarray(np.moveaxis(array, -1, 0), dtype=np.float32)
        return torch.from_numpy(channels_first)

    def _labels(self, array: np.ndarray, path: Path) -> np.ndarray:
        num_classes = self.folder.layout.num_classes
        labels = array.astype(np.int64)
        if not (np.all(labels == array) and labels.min() >= -1 and labels.max() < num_classes):
            raise ValueError(
                f"{self.folder.layout.dataset}: {path} holds labels outside the integers "
                f"-1..{num_classes - 1} (-1 ignored, {num_classes} classes); "
                f"values found: {np.unique(array)[:10]}"
            )
        return labels


def build_split(
    layout: NpyLayout,
    split: str,
    *,
    root: str | Path | None,
    augment: bool,
    seed: int,
    size: tuple[int, int] | None,
    val_size: int | None,
    holdout_seed: int,
    val_indices: Sequence[int] | None,
    depth_scaling: str,
) -> NpyDenseDataset:
    """Split ``split`` of ``layout`` in ``root``: train/val from ``train/``, test from ``val/``."""
    check_depth_scaling(depth_scaling)
    if split not in SPLIT_FOLDERS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLIT_FOLDERS)}")
    if root is None:
        raise ValueError(
            f"{layout.name} is read from disk: give its data root (--data-root DIR)\n"
            + layout.describe()
        )
    root = Path(root).expanduser()
    split_dir = root / SPLIT_FOLDERS[split]
    if not split_dir.is_dir():
        raise FileNotFoundError(
            f"{layout.dataset}: missing folder {split_dir}\n" + layout.describe()
        )
    if augment and split != "train":
        raise ValueError(f"augment=True is for the train split only, not {split!r}")
    folder = NpyFolder.scan(split_dir, layout, size)
    stems: Sequence[int] = folder.stems
    if split != "test":
        if val_indices is not None:
            train, val = _explicit_holdout(folder.stems, val_indices)
        else:
            n_val = layout.default_val_size if val_size is None else val_size
            train, val = holdout(folder.stems, n_val, holdout_seed)
        stems = train if split == "train" else val
    augmentation = RandomScaleCropFlip(depth_scaling=depth_scaling) if augment else None
    return NpyDenseDataset(folder, stems, augmentation, seed)


class MtanDataset:
    """The dataset-module interface (``spec``, ``split_size``, ``build``, see
    :mod:`empirical.datasets`) of one dataset in MTAN's format. Options shared by the three:
    ``size`` (H, W) of the files, ``val_size`` or ``val_indices`` (the hold-out),
    ``holdout_seed`` and ``depth_scaling`` (``"divide"`` as the reference code, or
    ``"multiply"``)."""

    def __init__(self, layout: NpyLayout) -> None:
        self.layout = layout

    def spec(
        self,
        *,
        size: tuple[int, int] | None = None,
        val_size: int | None = None,
        holdout_seed: int = 0,
        val_indices: Sequence[int] | None = None,
        depth_scaling: str = "divide",
    ) -> DatasetSpec:
        """The tasks and the image shape (official unless ``size``); takes ``build``'s options,
        of which only ``size`` changes the spec."""
        check_depth_scaling(depth_scaling)
        return self.layout.spec(size)

    def split_size(
        self,
        split: str,
        *,
        val_size: int | None = None,
        val_indices: Sequence[int] | None = None,
        **_: Any,
    ) -> int:
        """The split's length in the official release, the hold-out taken out of training."""
        n_val = len(val_indices) if val_indices is not None else val_size
        return self.layout.split_size(split, n_val)

    def build(
        self,
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
            self.layout,
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
