"""Laws of the scale-crop-flip augmentation of the dense datasets."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from empirical.datasets.transforms import (
    DEFAULT_SCALES,
    CropParams,
    RandomScaleCropFlip,
    apply_params,
    crop_size,
    draw_params,
    sample_generator,
)

KINDS = {"segmentation": "segmentation", "depth": "depth", "normal": "normal"}


def make_sample(height: int, width: int, seed: int):
    """A sample whose invalid pixels coincide: label -1 <=> depth 0 <=> normal all-zero."""
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(3, height, width, generator=g)
    invalid = torch.rand(height, width, generator=g) < 0.2
    labels = torch.randint(0, 7, (height, width), generator=g)
    labels[invalid] = -1
    depth = torch.rand(1, height, width, generator=g) + 0.5
    depth[0, invalid] = 0.0
    normal = torch.randn(3, height, width, generator=g)
    normal = normal / normal.norm(dim=0, keepdim=True)
    normal[:, invalid] = 0.0
    return image, {"segmentation": labels, "depth": depth, "normal": normal}


sizes = st.tuples(st.integers(2, 12), st.integers(2, 12))


@st.composite
def params_for(draw, height: int, width: int):
    scale = draw(st.sampled_from(DEFAULT_SCALES))
    h, w = crop_size(height, width, scale)
    top = draw(st.integers(0, height - h))
    left = draw(st.integers(0, width - w))
    return CropParams(scale, top, left, draw(st.booleans()))


@st.composite
def sample_and_params(draw):
    height, width = draw(sizes)
    sample = make_sample(height, width, draw(st.integers(0, 2**16)))
    return sample, draw(params_for(height, width))


@given(st.integers(0, 2**16), sizes)
def test_zoom_one_without_flip_is_identity(seed, size):
    image, targets = make_sample(*size, seed)
    out_image, out = apply_params(image, targets, KINDS, CropParams(1.0, 0, 0, False))
    assert torch.equal(out_image, image)
    for task, target in targets.items():
        assert torch.equal(out[task], target) and out[task].dtype == target.dtype


@given(st.integers(0, 2**16), sizes)
def test_flip_twice_is_identity(seed, size):
    image, targets = make_sample(*size, seed)
    flip = CropParams(1.0, 0, 0, True)
    once_image, once = apply_params(image, targets, KINDS, flip)
    twice_image, twice = apply_params(once_image, once, KINDS, flip)
    assert not torch.equal(once_image, image)
    assert torch.equal(twice_image, image)
    for task, target in targets.items():
        assert torch.equal(twice[task], target)


@given(st.integers(0, 2**16), sizes)
def test_flip_mirrors_the_width_and_negates_normal_x(seed, size):
    image, targets = make_sample(*size, seed)
    out_image, out = apply_params(image, targets, KINDS, CropParams(1.0, 0, 0, True))
    assert torch.equal(out_image, image.flip(-1))
    assert torch.equal(out["segmentation"], targets["segmentation"].flip(-1))
    assert torch.equal(out["normal"][0], -targets["normal"][0].flip(-1))
    assert torch.equal(out["normal"][1:], targets["normal"][1:].flip(-1))


@given(sample_and_params())
def test_shapes_dtypes_and_validity_are_preserved(case):
    (image, targets), params = case
    out_image, out = apply_params(image, targets, KINDS, params)
    assert out_image.shape == image.shape and out_image.dtype == image.dtype
    for task, target in targets.items():
        assert out[task].shape == target.shape and out[task].dtype == target.dtype
    labels = out["segmentation"]
    assert set(labels.unique().tolist()) <= set(targets["segmentation"].unique().tolist())
    # every target is resampled at the same pixels, so the invalid masks still coincide
    invalid = labels == -1
    assert torch.equal(out["depth"][0] == 0, invalid)
    norms = out["normal"].norm(dim=0)
    assert torch.equal(norms == 0, invalid)
    assert torch.allclose(norms[~invalid], torch.ones(()), atol=1e-5)


@given(sample_and_params())
def test_the_crop_corners_map_to_the_output_corners(case):
    (image, targets), params = case
    params = CropParams(params.scale, params.top, params.left, False)
    out_image, out = apply_params(image, targets, KINDS, params)
    h, w = crop_size(*image.shape[-2:], params.scale)
    top, left = params.top, params.left
    assert torch.allclose(out_image[:, 0, 0], image[:, top, left], atol=1e-6)
    assert torch.allclose(out_image[:, -1, -1], image[:, top + h - 1, left + w - 1], atol=1e-6)
    assert out["segmentation"][0, 0] == targets["segmentation"][top, left]


@pytest.mark.parametrize(
    ("depth_scaling", "factor"), [("divide", 1 / 1.5), ("multiply", 1.5), ("none", 1.0)]
)
def test_depth_scaling_rules(depth_scaling, factor):
    image, targets = make_sample(6, 8, 0)
    _, out = apply_params(
        image, targets, KINDS, CropParams(1.5, 1, 2, False), depth_scaling=depth_scaling
    )
    _, unscaled = apply_params(
        image, targets, KINDS, CropParams(1.5, 1, 2, False), depth_scaling="none"
    )
    assert torch.allclose(out["depth"], unscaled["depth"] * factor)
    assert set(unscaled["depth"].flatten().tolist()) <= set(targets["depth"].flatten().tolist())


def test_inputs_are_not_modified():
    image, targets = make_sample(6, 8, 1)
    copies = image.clone(), {k: v.clone() for k, v in targets.items()}
    apply_params(image, targets, KINDS, CropParams(1.2, 1, 0, True))
    assert torch.equal(image, copies[0])
    assert all(torch.equal(targets[k], copies[1][k]) for k in targets)


@given(st.integers(0, 2**16), sizes)
def test_draws_stay_inside_the_image(seed, size):
    params = draw_params(*size, np.random.default_rng(seed))
    h, w = crop_size(*size, params.scale)
    assert params.scale in DEFAULT_SCALES
    assert 0 <= params.top <= size[0] - h and 0 <= params.left <= size[1] - w


def test_a_sample_generator_depends_on_seed_epoch_and_index_only():
    def draws(seed, epoch, index):
        return [draw_params(64, 64, sample_generator(seed, epoch, index)) for _ in range(2)]

    first, second = draws(0, 3, 5)
    assert first == second
    per_index = {draw_params(64, 64, sample_generator(0, 0, i)) for i in range(30)}
    per_epoch = {draw_params(64, 64, sample_generator(0, e, 0)) for e in range(30)}
    per_seed = {draw_params(64, 64, sample_generator(s, 0, 0)) for s in range(30)}
    assert min(len(per_index), len(per_epoch), len(per_seed)) > 10


def test_the_augmentation_draws_every_scale_and_both_flips():
    augment = RandomScaleCropFlip()
    image, targets = make_sample(10, 10, 2)
    seen = set()
    for i in range(60):
        params = draw_params(10, 10, sample_generator(0, 0, i))
        seen.add((params.scale, params.flip))
        out_image, _ = augment(image, targets, KINDS, sample_generator(0, 0, i))
        expected, _ = apply_params(image, targets, KINDS, params)
        assert torch.equal(out_image, expected)
    assert seen == {(s, f) for s in DEFAULT_SCALES for f in (False, True)}


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="divide, multiply, none"):
        RandomScaleCropFlip(depth_scaling="inverse")
    with pytest.raises(ValueError, match=">= 1"):
        RandomScaleCropFlip(scales=(0.5,))
    image, _ = make_sample(4, 4, 0)
    with pytest.raises(ValueError, match="dense kinds"):
        apply_params(image, {"a": torch.zeros(())}, {"a": "binary"}, CropParams(1.0, 0, 0, False))
