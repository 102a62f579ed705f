"""The generated datasets: contract, determinism, the rendered geometry, attribute correlation and
the MultiMNIST construction on scikit-learn's digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.data import DataLoader

import empirical.datasets as datasets
from empirical.datasets import multi_digits as md
from empirical.datasets import synthetic_attributes as sa
from empirical.datasets import synthetic_scenes as ss
from empirical.datasets._render import Sphere

SMALL = {"size": (24, 32), "num_train": 6, "num_val": 3, "num_test": 3}
CLASS = {"ground": 0, "wall": 1, "sphere": 2, "box": 3, "cylinder": 4}
TOL = 2e-4  # metres / unit-vector components; the targets are float32


# --- geometry of the camera, written out independently of the renderer -------------------------


def camera_rays(h: int, w: int) -> np.ndarray:
    """(H, W, 3) rays (u, v, 1) through the pixel centres, horizontal field of view 60 degrees."""
    f = w / (2 * np.tan(np.pi / 6))
    v = (np.arange(h)[:, None] + 0.5 - h / 2) / f * np.ones((1, w))
    u = (np.arange(w)[None, :] + 0.5 - w / 2) / f * np.ones((h, 1))
    return np.stack([u, v, np.ones((h, w))], axis=-1)


def world_to_camera(p: np.ndarray, pitch: float) -> np.ndarray:
    """World X right, Y down, Z forward; the camera pitched down by ``pitch`` about X."""
    c, s = np.cos(pitch), np.sin(pitch)
    x, y, z = np.moveaxis(np.asarray(p, dtype=float), -1, 0)
    return np.stack([x, c * y - s * z, s * y + c * z], axis=-1)


def camera_to_world(p: np.ndarray, pitch: float) -> np.ndarray:
    c, s = np.cos(pitch), np.sin(pitch)
    x, y, z = np.moveaxis(np.asarray(p, dtype=float), -1, 0)
    return np.stack([x, c * y + s * z, -s * y + c * z], axis=-1)


def rendered(seed: int, index: int, **options):
    opts = ss.Options(**{**SMALL, **options})
    scene, _ = ss.scene(seed, "train", index, opts)
    image, targets = ss.sample(seed, "train", index, opts)
    label = targets["segmentation"].numpy()
    depth = targets["depth"][0].numpy().astype(float)
    normal = targets["normal"].numpy().transpose(1, 2, 0).astype(float)
    rays = camera_rays(*label.shape)
    points = camera_to_world(depth[..., None] * rays, scene.pitch)
    return scene, image, label, depth, normal, rays, points


def sphere_hit(rays_world: np.ndarray, sphere: Sphere) -> np.ndarray:
    """Nearest positive t of ``t * d`` on the sphere (inf where the ray misses)."""
    c = np.asarray(sphere.centre)
    a = (rays_world**2).sum(-1)
    b = rays_world @ c
    disc = b**2 - a * (c @ c - sphere.radius**2)
    t = (b - np.sqrt(np.clip(disc, 0, None))) / a
    return np.where((disc >= 0) & (t > 0), t, np.inf)


# --- synthetic-scenes ---------------------------------------------------------------------------


def test_scenes_follow_the_dataset_contract():
    spec = datasets.spec("synthetic-scenes", size=(24, 32))
    assert spec.task_names == ("segmentation", "depth", "normal")
    assert spec.task("segmentation").num_classes == 5 and spec.image_shape == (3, 24, 32)
    data = datasets.build("synthetic-scenes", "train", **SMALL)
    assert len(data) == 6
    for image, targets in data:
        assert image.dtype == torch.float32 and image.shape == (3, 24, 32)
        assert image.min() >= 0 and image.max() <= 1
        label, depth, normal = targets["segmentation"], targets["depth"], targets["normal"]
        assert label.dtype == torch.int64 and label.shape == (24, 32)
        assert depth.dtype == torch.float32 and depth.shape == (1, 24, 32)
        assert normal.dtype == torch.float32 and normal.shape == (3, 24, 32)
        assert label.min() >= -1 and label.max() <= 4
        valid = label >= 0
        assert torch.equal(depth[0] > 0, valid)
        norms = normal.norm(dim=0)
        assert torch.allclose(norms[valid], torch.ones(()), atol=1e-5)
        assert torch.all(normal[:, ~valid] == 0)
    batch = next(iter(DataLoader(data, batch_size=4)))
    assert batch[0].shape == (4, 3, 24, 32) and batch[1]["normal"].shape == (4, 3, 24, 32)


def test_scenes_are_a_pure_function_of_seed_split_and_index():
    first = datasets.build("synthetic-scenes", "train", seed=3, **SMALL)
    again = datasets.build("synthetic-scenes", "train", seed=3, **{**SMALL, "cache": False})
    other_seed = datasets.build("synthetic-scenes", "train", seed=4, **SMALL)
    other_split = datasets.build("synthetic-scenes", "val", seed=3, **SMALL)
    for i in range(3):
        (x, t), (y, u) = first[i], again[i]
        assert torch.equal(x, y) and all(torch.equal(t[k], u[k]) for k in t)
        assert not torch.equal(x, other_seed[i][0])
        assert not torch.equal(x, other_split[i][0])
    assert not torch.equal(first[0][0], first[1][0])


@given(seed=st.integers(0, 2**31 - 1), index=st.integers(0, 1000))
def test_rendered_geometry_is_consistent(seed, index):
    scene, _, label, depth, normal, rays, points = rendered(seed, index)
    valid = label >= 0
    # every visible surface faces the camera
    assert np.all((normal * rays).sum(-1)[valid] < 0)

    # ground: the plane's normal, and the depth of the analytic ray-plane intersection
    c, s = np.cos(scene.pitch), np.sin(scene.pitch)
    ground = label == CLASS["ground"]
    up = world_to_camera(np.array([0.0, -1.0, 0.0]), scene.pitch)
    assert np.allclose(normal[ground], up, atol=TOL)
    v = rays[..., 1]
    assert np.allclose(depth[ground], (scene.height / (c * v + s))[ground], rtol=1e-5)

    wall = label == CLASS["wall"]
    if scene.wall is None:
        assert not wall.any()
    else:
        assert np.allclose(points[wall][:, 2], scene.wall, rtol=1e-5)
        assert np.allclose(normal[wall], world_to_camera([0.0, 0.0, -1.0], scene.pitch), atol=TOL)

    world_normal = camera_to_world(normal, scene.pitch)
    for kind, check in (("sphere", _on_sphere), ("box", _on_box), ("cylinder", _on_cylinder)):
        mask = label == CLASS[kind]
        shapes = [x for x in scene.shapes if x.kind == kind]
        assert shapes or not mask.any()
        if mask.any():
            check(points[mask], world_normal[mask], shapes, scene.height)

    # nearest hit: no sphere lies in front of what a pixel shows (sky: in front of infinity)
    rays_world = camera_to_world(rays, scene.pitch)
    shown = np.where(valid, depth, np.inf)
    for sphere in (x for x in scene.shapes if isinstance(x, Sphere)):
        assert np.all(sphere_hit(rays_world, sphere) >= shown * (1 - 1e-5) - TOL)


def _on_sphere(points, normals, spheres, _):
    """Each point lies on some sphere and its normal points from that sphere's centre."""
    centres = np.array([s.centre for s in spheres])
    radii = np.array([s.radius for s in spheres])
    offset = np.linalg.norm(points[:, None] - centres[None], axis=-1) - radii
    best = np.abs(offset).argmin(axis=1)
    assert np.abs(offset[np.arange(len(points)), best]).max() < 1e-3
    expected = (points - centres[best]) / radii[best, None]
    assert np.allclose(normals, expected, atol=1e-3)


def _on_box(points, normals, boxes, _):
    """Each point lies on a face of some box and its normal is that face's outward normal."""
    matched = np.zeros(len(points), dtype=bool)
    for box in boxes:
        c, s = np.cos(box.yaw), np.sin(box.yaw)
        turn = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
        local = (points - np.asarray(box.centre)) @ turn  # turn.T @ (p - centre), row-wise
        ratio = np.abs(local) / np.asarray(box.half_extents)
        on = (np.abs(ratio.max(axis=1) - 1) < 1e-3) & ~matched
        face = ratio.argmax(axis=1)
        second = np.sort(ratio, axis=1)[:, -2]
        clear = on & (second < 1 - 1e-3)  # off the edges, where the face is unambiguous
        outward = np.zeros_like(local)
        outward[np.arange(len(local)), face] = np.sign(local[np.arange(len(local)), face])
        assert np.allclose(normals[clear], (outward @ turn.T)[clear], atol=1e-3)
        matched |= on
    assert matched.all()


def _on_cylinder(points, normals, cylinders, ground):
    """Each point lies on some cylinder's side (radial normal) or top cap (upward normal)."""
    matched = np.zeros(len(points), dtype=bool)
    for cyl in cylinders:
        dx, dz = points[:, 0] - cyl.x, points[:, 2] - cyl.z
        radial = np.hypot(dx, dz)
        top = ground - cyl.height
        within = (points[:, 1] >= top - 1e-3) & (points[:, 1] <= ground + 1e-3)
        side = (np.abs(radial - cyl.radius) < 1e-3) & within & ~matched
        cap = (np.abs(points[:, 1] - top) < 1e-3) & (radial <= cyl.radius + 1e-3) & ~matched
        side_normal = np.stack([dx / cyl.radius, np.zeros_like(dx), dz / cyl.radius], axis=1)
        only_side, only_cap = side & ~cap, cap & ~side
        assert np.allclose(normals[only_side], side_normal[only_side], atol=1e-3)
        assert np.allclose(normals[only_cap], [0.0, -1.0, 0.0], atol=1e-3)
        matched |= side | cap
    assert matched.all()


def test_every_shape_kind_is_rendered_and_checked():
    """The geometry checks above see all three kinds and both walled and open scenes."""
    seen, walls = set(), set()
    for index in range(12):
        scene, _, label, *_ = rendered(0, index)
        seen |= {k for k, c in CLASS.items() if (label == c).any()}
        walls.add(scene.wall is None)
    assert seen == set(CLASS) and walls == {True, False}


def test_num_objects_sets_the_shapes_of_a_scene():
    empty = ss.Options(**SMALL, num_objects=0)
    for i in range(3):
        scene, _ = ss.scene(0, "train", i, empty)
        assert scene.shapes == ()
        assert ss.sample(0, "train", i, empty)[1]["segmentation"].max() <= CLASS["wall"]
    three = ss.Options(**SMALL, num_objects=(3, 3))
    counts = [len(ss.scene(0, "train", i, three)[0].shapes) for i in range(6)]
    assert max(counts) == 3 and min(counts) >= 2  # a shape without a free place is left out


def test_augmentation_mirrors_image_and_targets():
    plain = datasets.build("synthetic-scenes", "train", **SMALL)
    augmented = datasets.build("synthetic-scenes", "train", augment=True, **SMALL)
    torch.manual_seed(0)
    outcomes = set()
    for _ in range(12):
        (x, t), (y, u) = plain[0], augmented[0]
        mirrored = torch.equal(y, x.flip(-1))
        outcomes.add(mirrored)
        if mirrored:
            assert torch.equal(u["segmentation"], t["segmentation"].flip(-1))
            assert torch.equal(u["depth"], t["depth"].flip(-1))
            assert torch.equal(u["normal"][0], -t["normal"][0].flip(-1))
            assert torch.equal(u["normal"][1:], t["normal"][1:].flip(-1))
        else:
            assert torch.equal(y, x) and all(torch.equal(u[k], t[k]) for k in t)
    assert outcomes == {True, False}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"colour": 1}, "valid options: size, num_train"),
        ({"size": (4, 4)}, "size must be"),
        ({"size": 64}, "size must be"),
        ({"num_train": 0}, "num_train must be a positive integer"),
        ({"num_objects": (3, 1)}, "num_objects"),
        ({"num_objects": "3"}, "num_objects"),
        ({"num_objects": (1, 2, 3)}, "num_objects"),
    ],
)
def test_bad_scene_options_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        datasets.spec("synthetic-scenes", **options)


def test_bad_split_and_seed_are_named():
    with pytest.raises(ValueError, match="valid splits"):
        ss.build("training")
    with pytest.raises(ValueError, match="seed must be"):
        ss.build("train", seed=-1, **SMALL)


# --- synthetic-attributes -----------------------------------------------------------------------


def test_attributes_follow_the_dataset_contract_and_are_deterministic():
    options = {"size": (16, 16), "num_train": 5, "num_val": 2, "num_test": 2}
    spec = datasets.spec("synthetic-attributes", **options)
    assert spec.task_names == sa.ATTRIBUTES and len(sa.ATTRIBUTES) == 12
    assert {t.kind for t in spec.tasks} == {"binary"}
    data = datasets.build("synthetic-attributes", "train", seed=1, **options)
    again = datasets.build("synthetic-attributes", "train", seed=1, **options)
    other = datasets.build("synthetic-attributes", "train", seed=2, **options)
    for i in range(len(data)):
        (x, t), (y, u) = data[i], again[i]
        assert x.dtype == torch.float32 and x.shape == (3, 16, 16)
        assert set(t) == set(sa.ATTRIBUTES)
        for name, value in t.items():
            assert value.dtype == torch.float32 and value.shape == () and value.item() in (0, 1)
            assert torch.equal(value, u[name])
        assert torch.equal(x, y) and not torch.equal(x, other[i][0])
    subset = sa.build("val", attributes=("has_wall", "has_sphere"), **options)
    assert list(subset[0][1]) == ["has_wall", "has_sphere"]
    with pytest.raises(ValueError, match="attributes must be distinct names"):
        sa.spec(attributes=("has_wings",))
    with pytest.raises(ValueError, match=r"correlation must lie in \[0, 1\]"):
        sa.spec(correlation=1.5)


def test_visible_kinds_are_in_the_scene():
    options = sa.Options(size=(16, 16))
    for i in range(20):
        scene, _ = sa.scene(0, "train", i, options)
        targets = sa.sample(0, "train", i, options)[1]
        kinds = {s.kind for s in scene.shapes}
        for kind in ("sphere", "box", "cylinder"):
            assert targets[f"has_{kind}"] <= (kind in kinds)
        assert targets["more_than_two_objects"] == (len(scene.shapes) > 2)
        assert targets["has_wall"] <= (scene.wall is not None)


def test_copula_uniforms_have_the_stated_rank_correlation():
    rng = np.random.default_rng(0)
    for c in (0.0, 0.3, 0.8):
        u = np.array([sa.correlated_uniforms(rng, 2, c) for _ in range(20000)])
        assert u.min() >= 0 and u.max() <= 1
        measured = np.corrcoef(u.T)[0, 1]  # Pearson of uniforms = Spearman of the normals
        assert abs(measured - 6 / np.pi * np.arcsin(c / 2)) < 0.03


def test_attribute_correlation_grows_with_the_option():
    def mean_abs_correlation(c: float) -> float:
        options = sa.Options(size=(8, 8), correlation=c)
        values = np.array(
            [[v.item() for v in sa.sample(5, "train", i, options)[1].values()] for i in range(150)]
        )
        corr = np.corrcoef(values.T)
        return float(np.abs(corr[~np.eye(len(corr), dtype=bool)]).mean())

    low, middle, high = (mean_abs_correlation(c) for c in (0.0, 0.5, 0.9))
    assert low < middle < high
    assert high > low + 0.2


# --- multi-digits -------------------------------------------------------------------------------


def independent_upsample(image: np.ndarray, size: int = 28) -> np.ndarray:
    """Bilinear resize with half-pixel centres and clamped edges, one axis after the other."""
    n = image.shape[0]
    src = np.clip((np.arange(size) + 0.5) * n / size - 0.5, 0, n - 1)
    rows = np.array([np.interp(src, np.arange(n), image[:, j]) for j in range(n)]).T
    return np.array([np.interp(src, np.arange(n), rows[i]) for i in range(size)])


def test_upsampling_is_bilinear():
    from sklearn.datasets import load_digits

    images = load_digits().images[:5] / 16
    ours = md.upsample(images.astype(np.float32))
    for mine, image in zip(ours, images, strict=True):
        assert np.allclose(mine, independent_upsample(image), atol=1e-5)


def test_multi_digits_are_built_from_the_recorded_sklearn_digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    spec = datasets.spec("multi-digits")
    assert spec.task_names == ("left", "right") and spec.image_shape == (1, 28, 28)
    assert {t.num_classes for t in spec.tasks} == {10}
    test = datasets.build("multi-digits", "test", seed=0)
    pick = (np.arange(28) + 0.5) * 36 / 28  # nearest neighbour of the 36x36 canvas
    r, c = np.floor(pick).astype(int)[:, None], np.floor(pick).astype(int)[None, :]
    for i in range(0, len(test), 37):
        image, targets = test[i]
        left, right = test.pairs[i]
        assert targets["left"].dtype == torch.int64
        assert targets["left"].item() == data.target[left]
        assert targets["right"].item() == data.target[right]
        a, b = (
            independent_upsample(data.images[left] / 16),
            independent_upsample(data.images[right] / 16),
        )
        from_left = np.where((r < 28) & (c < 28), a[np.minimum(r, 27), np.minimum(c, 27)], 0)
        shifted = (r >= 6) & (r < 34) & (c >= 6) & (c < 34)
        from_right = np.where(shifted, b[np.clip(r - 6, 0, 27), np.clip(c - 6, 0, 27)], 0)
        assert np.allclose(image[0].numpy(), np.maximum(from_left, from_right), atol=1e-5)


def test_multi_digit_splits_are_fixed_and_disjoint():
    members = {s: set(md.split_indices(s)) for s in datasets.SPLITS}
    assert [len(members[s]) for s in datasets.SPLITS] == [1257, 180, 360]
    assert set.union(*members.values()) == set(range(1797))
    assert sum(len(m) for m in members.values()) == 1797
    for split in datasets.SPLITS:
        data = md.build(split, seed=7)
        assert len(data) == len(members[split])
        assert set(data.pairs.ravel()) <= members[split]
        assert sorted(data.pairs[:, 0]) == sorted(members[split])
    a, b, other = md.build("val", seed=1), md.build("val", seed=1), md.build("val", seed=2)
    assert np.array_equal(a.pairs, b.pairs) and torch.equal(a.images, b.images)
    assert not np.array_equal(a.pairs, other.pairs)
    assert np.array_equal(a.pairs[:, 0], other.pairs[:, 0])
    triple = md.build("val", seed=1, pairs_per_image=3)
    assert len(triple) == 3 * 180
    assert np.array_equal(np.unique(triple.pairs[:, 0], return_counts=True)[1], np.full(180, 3))
    with pytest.raises(ValueError, match="valid options: pairs_per_image"):
        md.spec(size=16)


@given(
    split=st.sampled_from(datasets.SPLITS),
    counts=st.tuples(st.integers(1, 40), st.integers(1, 40), st.integers(1, 40)),
    pairs=st.integers(1, 3),
)
def test_split_size_is_the_built_length_without_building(split, counts, pairs):
    """Dry runs count steps with ``split_size``; it must equal the built dataset's length."""
    sizes = dict(zip(("num_train", "num_val", "num_test"), counts, strict=True))
    for name, options in (
        ("synthetic-scenes", {"size": (32, 32), **sizes}),
        ("synthetic-attributes", sizes),
        ("multi-digits", {"pairs_per_image": pairs}),
    ):
        built = datasets.build(name, split, **options)
        assert datasets.split_size(name, split, **options) == len(built), name
