"""synthetic-attributes: rendered scenes with binary attributes (CelebA-like), correlation tunable.

Each sample is one scene of ``_scenes`` rendered by ``_render`` (the renderer of
synthetic-scenes) and the attributes of that scene, one binary task each (``ATTRIBUTES``):

- ``more_than_two_objects``: the scene holds three shapes or more;
- ``has_sphere``, ``has_box``, ``has_cylinder``, ``has_wall``: the class is visible (>= 1 pixel);
- ``large_object``: some shape rises more than ``LARGE`` metres above the ground;
- ``objects_left``: the shapes' centres lie left of the image centre on average (``x/z < 0``);
- ``objects_near``: some shape comes nearer than ``NEAR`` metres (z-depth of its footprint);
- ``red_dominant``: the shapes' mean albedo has more red than green and than blue;
- ``light_overhead``: the light stands higher than ``OVERHEAD`` degrees;
- ``lit_from_left``: the light comes from the left (its x-component is negative);
- ``looking_down``: the camera is pitched down more than ``STEEP`` degrees.
Scenes without shapes have the shape attributes (objects_left, objects_near, red_dominant) 0.

Correlation. Twelve scene choices are driven by uniforms ``u_k = Phi(sqrt(c) z + sqrt(1 - c)
e_k)`` with one standard normal ``z`` shared by the whole scene and independent ``e_k``
(a Gaussian copula; ``c = correlation`` in [0, 1]): the number of shapes (1-5), the presence of
each shape kind (``u > 1/2``), and the ``_scenes.Factors`` (size, lateral offset, distance,
redness, light elevation and side, camera pitch, wall ``u > 1/2``), oriented so that a large
``z`` means more, larger, nearer, redder shapes further left, a higher light from the right, a
steeper view and a wall. Each attribute is monotone in mainly one of them, so ``c = 0`` leaves
only the scene's own couplings (e.g. a scene with three kinds has more than two shapes) and a
larger ``c`` makes the attributes move together: the normals have correlation ``c``, the
uniforms ``(6/pi) asin(c/2)``.

Options and defaults: ``size=(64, 64)``, ``num_train=1024``, ``num_val=256``, ``num_test=256``,
``correlation=0.5``, ``attributes=ATTRIBUTES`` (any subset, as tasks in that order),
``cache=True``. Sample ``i`` of split ``s`` is a pure function of ``(seed, s, i)``. The image is
float32 (3, H, W) in [0, 1]; targets float32 0/1. ``augment`` has no effect: a mirror image
would change ``objects_left`` and ``lit_from_left``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.special import ndtr

from empirical.datasets import DatasetSpec, TaskSpec
from empirical.datasets._generated import (
    GeneratedDataset,
    Sample,
    image_size,
    parse_options,
    positive_int,
    sample_rng,
)
from empirical.datasets._render import CLASSES, Rendering, Scene, render
from empirical.datasets._scenes import SHAPES, Factors, footprint, sample_scene, top_height

NAME = "synthetic-attributes"
ATTRIBUTES = (
    "more_than_two_objects",
    "has_sphere",
    "has_box",
    "has_cylinder",
    "has_wall",
    "large_object",
    "objects_left",
    "objects_near",
    "red_dominant",
    "light_overhead",
    "lit_from_left",
    "looking_down",
)
LARGE = 1.2  # metres
NEAR = 3.5  # metres
OVERHEAD = 55.0  # degrees
STEEP = 17.5  # degrees
MAX_OBJECTS = 5
_CHOICES = ("count", *SHAPES, *Factors.names())


@dataclass(frozen=True)
class Options:
    """The dataset's options (see the module docstring)."""

    size: tuple[int, int] = (64, 64)
    num_train: int = 1024
    num_val: int = 256
    num_test: int = 256
    correlation: float = 0.5
    attributes: tuple[str, ...] = ATTRIBUTES
    cache: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", image_size(self.size))
        for name in ("num_train", "num_val", "num_test"):
            positive_int(name, getattr(self, name))
        if not 0.0 <= float(self.correlation) <= 1.0:
            raise ValueError(f"correlation must lie in [0, 1], got {self.correlation!r}")
        names = tuple(self.attributes)
        unknown = [a for a in names if a not in ATTRIBUTES]
        if unknown or not names or len(set(names)) != len(names):
            raise ValueError(
                f"attributes must be distinct names among {', '.join(ATTRIBUTES)}; got {names!r}"
            )
        object.__setattr__(self, "attributes", names)

    def length(self, split: str) -> int:
        return getattr(self, f"num_{split}")


def spec(**options: Any) -> DatasetSpec:
    opts = parse_options(Options, NAME, options)
    return DatasetSpec(
        name=NAME,
        tasks=tuple(TaskSpec(a, "binary") for a in opts.attributes),
        image_shape=(3, *opts.size),
        real=False,
    )


def correlated_uniforms(rng: np.random.Generator, count: int, correlation: float) -> np.ndarray:
    """``count`` uniforms ``Phi(sqrt(c) z + sqrt(1 - c) e_k)`` sharing one normal ``z``."""
    shared = rng.standard_normal()
    own = rng.standard_normal(count)
    return ndtr(np.sqrt(correlation) * shared + np.sqrt(1 - correlation) * own)


def scene(seed: int, split: str, index: int, options: Options) -> tuple[Scene, np.random.Generator]:
    """The scene of sample ``index`` and the generator, advanced past it, that draws its noise."""
    rng = sample_rng(seed, split, index)
    u = dict(
        zip(_CHOICES, correlated_uniforms(rng, len(_CHOICES), options.correlation), strict=True)
    )
    present = [kind for kind in SHAPES if u[kind] > 0.5]
    kinds: list[str] = []
    if present:
        count = max(1 + min(int(u["count"] * MAX_OBJECTS), MAX_OBJECTS - 1), len(present))
        kinds = present + list(rng.choice(present, size=count - len(present)))
    u["offset"], u["distance"] = 1 - u["offset"], 1 - u["distance"]  # a large z: left, near
    factors = Factors(**{name: float(u[name]) for name in Factors.names()})
    return sample_scene(rng, factors, kinds), rng


def attributes(scene: Scene, rendering: Rendering) -> dict[str, bool]:
    """Every attribute of ``ATTRIBUTES`` of a scene and its rendering."""
    visible = {name: bool((rendering.label == CLASSES.index(name)).any()) for name in CLASSES}
    shapes = scene.shapes
    prints = [footprint(s) for s in shapes]
    red = False
    if shapes:
        albedo = np.mean([s.material.albedo for s in shapes], axis=0)
        red = bool(albedo[0] > max(albedo[1], albedo[2]))
    return {
        "more_than_two_objects": len(shapes) > 2,
        "has_sphere": visible["sphere"],
        "has_box": visible["box"],
        "has_cylinder": visible["cylinder"],
        "has_wall": visible["wall"],
        "large_object": any(top_height(s) > LARGE for s in shapes),
        "objects_left": bool(shapes) and float(np.mean([x / z for x, z, _ in prints])) < 0,
        "objects_near": any(z - r < NEAR for _, z, r in prints),
        "red_dominant": red,
        "light_overhead": -scene.light[1] > np.sin(np.radians(OVERHEAD)),
        "lit_from_left": scene.light[0] < 0,
        "looking_down": scene.pitch > np.radians(STEEP),
    }


def sample(seed: int, split: str, index: int, options: Options) -> Sample:
    """Sample ``index`` of ``split``: the rendered image and the chosen attributes."""
    s, rng = scene(seed, split, index, options)
    rendering = render(s, options.size, rng)
    values = attributes(s, rendering)
    image = torch.from_numpy(rendering.image.transpose(2, 0, 1).copy())
    return image, {
        a: torch.tensor(float(values[a]), dtype=torch.float32) for a in options.attributes
    }


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
    """Split ``split`` (``root`` and ``augment`` are ignored: nothing is read or mirrored)."""
    opts = parse_options(Options, NAME, options)
    sample_rng(seed, split, 0)
    return GeneratedDataset(
        lambda i: sample(seed, split, i, opts), opts.length(split), cache=opts.cache
    )
