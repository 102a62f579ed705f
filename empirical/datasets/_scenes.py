"""Random scenes for the renderer: camera, light, materials and non-overlapping shapes on the
ground, driven by a few named factors in [0, 1] (so a caller can correlate them) and a generator
for everything else.

Ranges: camera height 1.2-1.8 m, pitch 10-25 degrees (factor ``pitch``), light elevation 25-85
degrees (``elevation``) and side from left (``azimuth`` 0) over behind the camera (0.5) to right
(1); a back wall 9-14 m away when ``wall`` > 0.5; shapes 2.5-10 m away around the distance
``2.5 + 4 * distance`` m, laterally around ``offset`` (0 left edge of the view, 1 right edge),
sized by ``0.8 + 1.0 * scale``; object colours redder for ``warmth`` above 1/2, less red below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from empirical.datasets._render import (
    FOV_DEGREES,
    Box,
    Cylinder,
    Material,
    Scene,
    Shape,
    Sphere,
)

SHAPES = ("sphere", "box", "cylinder")
_GAP = 0.05  # metres between the footprints of two shapes
_TRIES = 30


@dataclass(frozen=True)
class Factors:
    """The scene choices a caller controls, each a number in [0, 1]."""

    scale: float
    offset: float
    distance: float
    warmth: float
    elevation: float
    azimuth: float
    pitch: float
    wall: float

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def uniform(cls, rng: np.random.Generator) -> Factors:
        """Independent uniform factors."""
        return cls(*rng.uniform(size=len(cls.names())))


def _material(rng: np.random.Generator, warmth: float = 0.5) -> Material:
    """A random albedo in [0.15, 0.9]^3, shifted by ``(warmth - 1/2) * (0.8, -0.4, -0.4)``."""
    shift = (warmth - 0.5) * np.array([0.8, -0.4, -0.4])
    albedo = np.clip(rng.uniform(0.15, 0.9, size=3) + shift, 0.05, 0.95)

    def wave() -> tuple[float, float, float]:
        k = rng.standard_normal(3)
        return tuple(k / np.linalg.norm(k) * rng.uniform(0.5, 3.0))

    return Material(
        albedo=tuple(float(a) for a in albedo),
        amplitude=float(rng.uniform(0.1, 0.35)),
        k1=wave(),
        k2=wave(),
        phase=tuple(rng.uniform(0, 2 * np.pi, size=2)),
    )


def footprint(shape: Shape) -> tuple[float, float, float]:
    """(x, z, radius) of a circle on the ground that covers the shape."""
    if isinstance(shape, Sphere):
        return shape.centre[0], shape.centre[2], shape.radius
    if isinstance(shape, Box):
        ex, _, ez = shape.half_extents
        return shape.centre[0], shape.centre[2], float(np.hypot(ex, ez))
    return shape.x, shape.z, shape.radius


def top_height(shape: Shape) -> float:
    """Height of the shape's highest point above the ground."""
    if isinstance(shape, Sphere):
        return 2 * shape.radius
    if isinstance(shape, Box):
        return 2 * shape.half_extents[1]
    return shape.height


def _shape(kind: str, x: float, z: float, ground: float, size: float, rng, material) -> Shape:
    if kind == "sphere":
        r = size * rng.uniform(0.3, 0.6)
        return Sphere((x, ground - r, z), r, material)
    if kind == "box":
        ex, hy, ez = size * rng.uniform([0.25, 0.2, 0.25], [0.5, 0.6, 0.5])
        return Box((x, ground - hy, z), (ex, hy, ez), float(rng.uniform(0, np.pi / 2)), material)
    if kind == "cylinder":
        return Cylinder(x, z, size * rng.uniform(0.2, 0.45), size * rng.uniform(0.5, 1.4), material)
    raise ValueError(f"unknown shape {kind!r}; valid: {', '.join(SHAPES)}")


def _overlaps(shape: Shape, placed: list[Shape]) -> bool:
    x, z, r = footprint(shape)
    for other in placed:
        ox, oz, orad = footprint(other)
        if np.hypot(x - ox, z - oz) < r + orad + _GAP:
            return True
    return False


def sample_scene(rng: np.random.Generator, factors: Factors, kinds: Sequence[str]) -> Scene:
    """A scene with one shape per entry of ``kinds`` (a shape that finds no free place in
    ``_TRIES`` draws is left out)."""
    height = float(rng.uniform(1.2, 1.8))
    elevation = np.radians(25 + 60 * factors.elevation)
    side = np.pi * (1 - factors.azimuth)
    light = (
        float(np.cos(elevation) * np.cos(side)),
        float(-np.sin(elevation)),
        float(-np.cos(elevation) * np.sin(side)),
    )
    wall = float(rng.uniform(9, 14)) if factors.wall > 0.5 else None
    far = 10.0 if wall is None else min(10.0, wall - 1.5)
    half_view = np.tan(np.radians(FOV_DEGREES) / 2)
    size = 0.8 + 1.0 * factors.scale
    shapes: list[Shape] = []
    for kind in kinds:
        material = _material(rng, factors.warmth)
        for _ in range(_TRIES):
            z = float(np.clip(2.5 + 4 * factors.distance + rng.normal(0, 0.8), 2.5, far))
            lateral = np.clip(1.2 * (factors.offset - 0.5) + rng.normal(0, 0.3), -0.85, 0.85)
            shape = _shape(kind, float(lateral * z * half_view), z, height, size, rng, material)
            if not _overlaps(shape, shapes):
                shapes.append(shape)
                break
    sky = np.clip(np.array([0.55, 0.7, 0.9]) + rng.normal(0, 0.05, size=3), 0, 1)
    return Scene(
        height=height,
        pitch=float(np.radians(10 + 15 * factors.pitch)),
        light=light,
        ambient=float(rng.uniform(0.2, 0.35)),
        ground=_material(rng),
        wall=wall,
        wall_material=_material(rng),
        sky=tuple(float(c) for c in sky),
        shapes=tuple(shapes),
    )
