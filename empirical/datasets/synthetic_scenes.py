"""synthetic-scenes: rendered 3-D scenes with segmentation, depth and surface normals (NYUv2-like).

Each sample is one random scene (``_scenes``: a few spheres, boxes and upright cylinders on a
textured ground plane, a back wall in half of the scenes, sky above the horizon otherwise, one
directional light) ray-cast by ``_render``; all three targets come from the same hits, so the
tasks are related as in NYUv2.

- ``image``: float32 (3, H, W), Lambertian shading with per-surface random albedo (drawn alike
  for every class, so colour alone does not tell the class) and texture, plus noise; in [0, 1],
  not normalised further (as MTAN's real data is used).
- ``segmentation``: int64 (H, W), classes 0 ground, 1 wall, 2 sphere, 3 box, 4 cylinder; -1 sky.
- ``depth``: float32 (1, H, W), metric z-depth in metres (at most 25), 0 for sky.
- ``normal``: float32 (3, H, W), unit normals in camera coordinates (x right, y down,
  z forward), facing the camera; 0 for sky.

Sample ``i`` of split ``s`` is a pure function of ``(seed, s, i)``. Options and defaults:
``size=(64, 64)`` (divisible by SegNet's 32), ``num_train=256``, ``num_val=64``,
``num_test=64``, ``num_objects=(2, 5)`` (an inclusive range drawn per scene, or one number),
``cache=True`` (render a split once when it is built; rendering is a pure function, so
``cache=False`` gives the same samples). ``augment=True`` mirrors a sample left-right with
probability 1/2 (the normal's x negated), a mirrored scene being as valid as the original.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from empirical.datasets import DatasetSpec, TaskSpec
from empirical.datasets._generated import (
    GeneratedDataset,
    Sample,
    flip_dense,
    image_size,
    parse_options,
    positive_int,
    sample_rng,
)
from empirical.datasets._render import CLASSES, Rendering, Scene, render
from empirical.datasets._scenes import SHAPES, Factors, sample_scene

NAME = "synthetic-scenes"


@dataclass(frozen=True)
class Options:
    """The dataset's options (see the module docstring)."""

    size: tuple[int, int] = (64, 64)
    num_train: int = 256
    num_val: int = 64
    num_test: int = 64
    num_objects: int | tuple[int, int] = (2, 5)
    cache: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", image_size(self.size))
        for name in ("num_train", "num_val", "num_test"):
            positive_int(name, getattr(self, name))
        counts = self.num_objects
        bounds = (counts, counts) if isinstance(counts, int) else tuple(counts)
        if (
            len(bounds) != 2
            or not all(isinstance(c, int) and not isinstance(c, bool) for c in bounds)
            or not 0 <= bounds[0] <= bounds[1]
        ):
            raise ValueError(
                f"num_objects must be an integer >= 0 or a range (lo, hi), 0 <= lo <= hi; "
                f"got {counts!r}"
            )
        object.__setattr__(self, "num_objects", bounds)

    def length(self, split: str) -> int:
        return getattr(self, f"num_{split}")


def spec(**options: Any) -> DatasetSpec:
    size = parse_options(Options, NAME, options).size
    return DatasetSpec(
        name=NAME,
        tasks=(
            TaskSpec("segmentation", "segmentation", len(CLASSES)),
            TaskSpec("depth", "depth"),
            TaskSpec("normal", "normal"),
        ),
        image_shape=(3, *size),
        real=False,
    )


def scene(seed: int, split: str, index: int, options: Options) -> tuple[Scene, np.random.Generator]:
    """The scene of sample ``index`` and the generator, advanced past it, that draws its noise."""
    rng = sample_rng(seed, split, index)
    lo, hi = options.num_objects
    kinds = [SHAPES[k] for k in rng.integers(0, len(SHAPES), size=rng.integers(lo, hi + 1))]
    return sample_scene(rng, Factors.uniform(rng), kinds), rng


def to_sample(rendering: Rendering) -> Sample:
    """The dataset's tensors of a rendering."""
    return torch.from_numpy(rendering.image.transpose(2, 0, 1).copy()), {
        "segmentation": torch.from_numpy(rendering.label),
        "depth": torch.from_numpy(rendering.depth[None]),
        "normal": torch.from_numpy(rendering.normal.transpose(2, 0, 1).copy()),
    }


def sample(seed: int, split: str, index: int, options: Options) -> Sample:
    """Sample ``index`` of ``split``: its scene rendered at ``options.size``."""
    s, rng = scene(seed, split, index, options)
    return to_sample(render(s, options.size, rng))


def split_size(split: str, **options: Any) -> int:
    """``num_<split>`` of the options."""
    return parse_options(Options, NAME, options).length(split)


def build(
    split: str,
    *,
    root: str | Path | None = None,
    augment: bool = False,
    seed: int = 0,
    **options: Any,
) -> GeneratedDataset:
    """Split ``split`` (``root`` is ignored: nothing is read)."""
    opts = parse_options(Options, NAME, options)
    sample_rng(seed, split, 0)  # validates split and seed before any rendering
    return GeneratedDataset(
        lambda i: sample(seed, split, i, opts),
        opts.length(split),
        cache=opts.cache,
        augment=flip_dense if augment else None,
    )
