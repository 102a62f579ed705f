"""Ray casting of a small 3-D scene: a ground plane, an optional back wall, spheres, boxes and
upright cylinders, seen by a pinhole camera and lit by one directional light.

Frames. The *world* frame has X right, Y down and Z forward (horizontal), the camera at its
origin and the ground plane at ``Y = height``. The camera frame (OpenCV convention: x right,
y down, z forward) is the world frame pitched down by ``pitch`` about X: its axes in world
coordinates are ``x = (1, 0, 0)``, ``y = (0, cos p, -sin p)``, ``z = (0, sin p, cos p)``.

Pixel (i, j) of an H x W image casts the ray ``t * (u, v, 1)`` in camera coordinates with
``u = (j + 1/2 - W/2) / f``, ``v = (i + 1/2 - H/2) / f``, ``f = W / (2 tan(fov/2))``; because
the ray's z-component is 1, its parameter t at a hit is the hit's metric z-depth. Each pixel keeps
the nearest hit (smallest t > 0) within ``FAR`` metres; a pixel with none is sky.

Per pixel the renderer returns the class of the primitive hit, its depth, its unit normal in
camera coordinates (facing the camera) and a shaded colour: Lambertian,
``albedo * (ambient + (1 - ambient) * max(0, n . l)) * (1 + texture)`` plus Gaussian noise, with
a smooth sinusoidal texture in world coordinates per surface. Sky is class -1, depth 0, normal 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CLASSES = ("ground", "wall", "sphere", "box", "cylinder")
SKY = -1
FAR = 25.0
FOV_DEGREES = 60.0


@dataclass(frozen=True)
class Material:
    """An RGB albedo in [0, 1] and a texture ``amplitude * sin(2 pi k1.p + phi1) sin(2 pi k2.p +
    phi2)`` of the world point p (k1, k2 in cycles per metre)."""

    albedo: tuple[float, float, float]
    amplitude: float = 0.0
    k1: tuple[float, float, float] = (0.0, 0.0, 0.0)
    k2: tuple[float, float, float] = (0.0, 0.0, 0.0)
    phase: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class Sphere:
    """Centre (world) and radius."""

    centre: tuple[float, float, float]
    radius: float
    material: Material
    kind: str = field(default="sphere", init=False)


@dataclass(frozen=True)
class Box:
    """A box turned by ``yaw`` about the vertical axis: centre (world) and half extents along its
    own axes (X, Y, Z before the turn)."""

    centre: tuple[float, float, float]
    half_extents: tuple[float, float, float]
    yaw: float
    material: Material
    kind: str = field(default="box", init=False)


@dataclass(frozen=True)
class Cylinder:
    """An upright cylinder standing on the ground: axis at (x, z), radius, height; its top cap
    lies at ``Y = ground - height``."""

    x: float
    z: float
    radius: float
    height: float
    material: Material
    kind: str = field(default="cylinder", init=False)


Shape = Sphere | Box | Cylinder


@dataclass(frozen=True)
class Scene:
    """Everything the renderer needs. ``light`` is the unit world direction towards the light;
    ``wall`` the world Z of the back wall (None: no wall, the horizon is sky)."""

    height: float
    pitch: float
    light: tuple[float, float, float]
    ambient: float
    ground: Material
    wall: float | None
    wall_material: Material
    sky: tuple[float, float, float]
    shapes: tuple[Shape, ...]
    noise: float = 0.02


@dataclass(frozen=True)
class Rendering:
    """Rendered arrays: image (H, W, 3) float32 in [0, 1], label (H, W) int64, depth (H, W)
    float32 (0 = sky), normal (H, W, 3) float32 in camera coordinates (0 = sky)."""

    image: np.ndarray
    label: np.ndarray
    depth: np.ndarray
    normal: np.ndarray


def focal_length(width: int) -> float:
    """Focal length in pixels for the horizontal field of view ``FOV_DEGREES``."""
    return width / (2.0 * np.tan(np.radians(FOV_DEGREES) / 2.0))


def camera_rays(size: tuple[int, int]) -> np.ndarray:
    """Ray directions (H*W, 3) in camera coordinates, row-major over pixels, z-component 1."""
    h, w = size
    f = focal_length(w)
    v, u = np.meshgrid(
        (np.arange(h) + 0.5 - h / 2) / f, (np.arange(w) + 0.5 - w / 2) / f, indexing="ij"
    )
    return np.stack([u.ravel(), v.ravel(), np.ones(h * w)], axis=1)


def camera_axes(pitch: float) -> np.ndarray:
    """Rotation R (3, 3) with ``world = R @ camera``: its columns are the camera axes in world
    coordinates."""
    c, s = np.cos(pitch), np.sin(pitch)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]])


def _yaw(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _safe(d: np.ndarray) -> np.ndarray:
    """Directions with exact zeros nudged, so slab divisions stay finite."""
    return np.where(np.abs(d) < 1e-12, 1e-12, d)


def _plane(rays: np.ndarray, axis: int, offset: float, normal: np.ndarray):
    """Hits of rays from the origin with the plane ``p[axis] = offset``."""
    d = _safe(rays[:, axis])
    t = offset / d
    t = np.where(t > 0, t, np.inf)
    return t, np.broadcast_to(normal, rays.shape)


def _sphere(rays: np.ndarray, shape: Sphere):
    c = np.asarray(shape.centre)
    a = np.einsum("ij,ij->i", rays, rays)
    b = rays @ c
    disc = b * b - a * (c @ c - shape.radius**2)
    t = (b - np.sqrt(np.maximum(disc, 0.0))) / a
    t = np.where((disc >= 0) & (t > 0), t, np.inf)
    normal = (t[:, None] * rays - c) / shape.radius
    return t, normal


def _box(rays: np.ndarray, shape: Box):
    turn = _yaw(shape.yaw)
    e = np.asarray(shape.half_extents)
    origin = turn.T @ -np.asarray(shape.centre)
    d = _safe(rays @ turn)  # the rays in box coordinates: turn.T @ ray, row-wise
    t1, t2 = (-e - origin) / d, (e - origin) / d
    near, far = np.minimum(t1, t2), np.maximum(t1, t2)
    t_near, t_far = near.max(axis=1), far.min(axis=1)
    t = np.where((t_near <= t_far) & (t_near > 0), t_near, np.inf)
    axis = near.argmax(axis=1)
    local = np.zeros_like(rays)
    rows = np.arange(len(rays))
    local[rows, axis] = -np.sign(d[rows, axis])
    return t, local @ turn.T


def _cylinder(rays: np.ndarray, shape: Cylinder, ground: float):
    cx, cz, r = shape.x, shape.z, shape.radius
    dx, dy, dz = rays[:, 0], rays[:, 1], rays[:, 2]
    a = dx * dx + dz * dz
    b = dx * cx + dz * cz
    disc = b * b - a * (cx * cx + cz * cz - r * r)
    t_side = (b - np.sqrt(np.maximum(disc, 0.0))) / np.maximum(a, 1e-12)
    top = ground - shape.height
    y = t_side * dy
    t_side = np.where((disc >= 0) & (t_side > 0) & (y >= top) & (y <= ground), t_side, np.inf)
    t_cap = top / _safe(dy)
    inside = (t_cap * dx - cx) ** 2 + (t_cap * dz - cz) ** 2 <= r * r
    t_cap = np.where((t_cap > 0) & inside & (top > 0), t_cap, np.inf)
    side_normal = np.stack([(t_side * dx - cx) / r, np.zeros_like(dx), (t_side * dz - cz) / r], 1)
    use_cap = t_cap < t_side
    normal = np.where(use_cap[:, None], np.array([0.0, -1.0, 0.0]), side_normal)
    return np.minimum(t_side, t_cap), normal


def _shade(
    scene: Scene,
    materials: list[Material],
    nearest: np.ndarray,
    points: np.ndarray,
    normals: np.ndarray,
) -> np.ndarray:
    """Lambertian colour (N, 3) of each pixel's hit, material ``materials[nearest]``."""
    albedo = np.array([m.albedo for m in materials])[nearest]
    amplitude = np.array([m.amplitude for m in materials])[nearest]
    k1 = np.array([m.k1 for m in materials])[nearest]
    k2 = np.array([m.k2 for m in materials])[nearest]
    phase = np.array([m.phase for m in materials])[nearest]
    texture = amplitude * (
        np.sin(2 * np.pi * np.einsum("ij,ij->i", points, k1) + phase[:, 0])
        * np.sin(2 * np.pi * np.einsum("ij,ij->i", points, k2) + phase[:, 1])
    )
    lambert = np.maximum(normals @ np.asarray(scene.light), 0.0)
    shade = scene.ambient + (1 - scene.ambient) * lambert
    return albedo * (shade * (1 + texture))[:, None]


def render(scene: Scene, size: tuple[int, int], rng: np.random.Generator) -> Rendering:
    """Render ``scene`` at ``size`` (H, W); ``rng`` draws the pixel noise only."""
    h, w = size
    rays_cam = camera_rays(size)
    axes = camera_axes(scene.pitch)
    rays = rays_cam @ axes.T  # world directions
    hits = [_plane(rays, 1, scene.height, np.array([0.0, -1.0, 0.0]))]
    classes = [CLASSES.index("ground")]
    materials = [scene.ground]
    if scene.wall is not None:
        hits.append(_plane(rays, 2, scene.wall, np.array([0.0, 0.0, -1.0])))
        classes.append(CLASSES.index("wall"))
        materials.append(scene.wall_material)
    for shape in scene.shapes:
        if isinstance(shape, Sphere):
            hits.append(_sphere(rays, shape))
        elif isinstance(shape, Box):
            hits.append(_box(rays, shape))
        else:
            hits.append(_cylinder(rays, shape, scene.height))
        classes.append(CLASSES.index(shape.kind))
        materials.append(shape.material)

    t_all = np.stack([t for t, _ in hits])
    nearest = t_all.argmin(axis=0)
    pixels = np.arange(h * w)
    t = t_all[nearest, pixels]
    valid = t <= FAR
    normals = np.stack([n for _, n in hits])[nearest, pixels]
    normals[~valid] = 0.0
    label = np.where(valid, np.asarray(classes)[nearest], SKY)
    colour = np.where(
        valid[:, None],
        _shade(scene, materials, nearest, np.where(valid, t, 0.0)[:, None] * rays, normals),
        scene.sky,
    )
    colour = np.clip(colour + scene.noise * rng.standard_normal(colour.shape), 0.0, 1.0)
    normals_cam = normals @ axes  # camera = R.T @ world, row-wise
    return Rendering(
        image=colour.reshape(h, w, 3).astype(np.float32),
        label=label.reshape(h, w),
        depth=np.where(valid, t, 0.0).reshape(h, w).astype(np.float32),
        normal=normals_cam.reshape(h, w, 3).astype(np.float32),
    )
