"""Corruptions: the paper's 15 x 5, seeded, image-only, shapes and ranges kept."""

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from empirical.corruptions import (
    CORRUPTIONS,
    FAMILIES,
    SEVERITIES,
    CorruptedDataset,
    corrupt_image,
    family,
)

FAST = [c for c in CORRUPTIONS if c != "glass_blur"]  # glass blur compiles with numba (~30 s)


def test_fifteen_corruptions_in_four_families():
    assert len(CORRUPTIONS) == 15 and len(set(CORRUPTIONS)) == 15
    assert sorted(FAMILIES) == ["blur", "digital", "noise", "weather"]
    assert family("fog") == "weather"
    with pytest.raises(ValueError, match="unknown corruption"):
        family("rain")


@settings(max_examples=10)
@given(st.sampled_from(FAST), st.sampled_from(SEVERITIES), st.integers(0, 2**31))
def test_seeded_shape_and_range_preserved(corruption, severity, seed):
    image = torch.rand(3, 32, 40, generator=torch.Generator().manual_seed(seed % 1000))
    a = corrupt_image(image, corruption, severity, seed)
    b = corrupt_image(image, corruption, severity, seed)
    assert a.shape == image.shape and a.dtype == image.dtype
    assert torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1


def test_severity_moves_the_image_further():
    image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    errors = [
        (corrupt_image(image, "gaussian_noise", s, 1) - image).abs().mean() for s in SEVERITIES
    ]
    assert all(a < b for a, b in itertools.pairwise(errors))


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="H, W >= 32"):
        corrupt_image(torch.rand(3, 16, 16), "fog", 1, 0)
    with pytest.raises(ValueError, match="severity"):
        corrupt_image(torch.rand(3, 32, 32), "fog", 6, 0)


def test_dataset_corrupts_images_only_and_draws_per_sample():
    images = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(6)
    base = [(images[i], {"y": labels[i]}) for i in range(6)]
    fixed = CorruptedDataset(base, "contrast", 3)
    image, targets = fixed[2]
    assert targets["y"] == 2 and not torch.equal(image, images[2])
    random = CorruptedDataset(base, None, None, seed=1, choices=FAST)
    first = [random[i][0] for i in range(6)]
    assert all(torch.equal(a, random[i][0]) for i, a in enumerate(first))
    random.set_epoch(1)
    assert any(not torch.equal(a, random[i][0]) for i, a in enumerate(first))
    assert len(random) == 6
