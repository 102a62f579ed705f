"""What the generated datasets share: option parsing, per-sample seeding, an in-memory dataset."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any, TypeVar

import numpy as np
import torch
from torch.utils.data import Dataset

from empirical.datasets import SPLITS

Sample = tuple[torch.Tensor, dict[str, torch.Tensor]]
T = TypeVar("T")


def parse_options(cls: type[T], dataset: str, options: Mapping[str, Any]) -> T:
    """``cls(**options)``, with an error naming the valid options for an unknown one."""
    valid = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(map(repr, unknown))} of dataset {dataset!r}; "
            f"valid options: {', '.join(valid)}"
        )
    return cls(**options)


def positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def image_size(value: Any, minimum: int = 8) -> tuple[int, int]:
    """``size`` as (H, W): two integers >= ``minimum`` (a list from a config file is accepted)."""
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"size must be (H, W), two integers, got {value!r}") from None
    if min(h, w) < minimum or (h, w) != tuple(value):
        raise ValueError(f"size must be two integers >= {minimum}, got {value!r}")
    return h, w


def sample_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of sample ``index`` of ``split``: a pure function of the three."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.default_rng([int(seed), SPLITS.index(split), int(index)])


def flip_dense(image: torch.Tensor, targets: dict[str, torch.Tensor]) -> Sample:
    """Mirror an image and its dense targets left-right; a normal's x-component changes sign."""
    flipped = {name: t.flip(-1) for name, t in targets.items()}
    if "normal" in flipped:
        flipped["normal"] = flipped["normal"] * torch.tensor([-1.0, 1.0, 1.0]).view(3, 1, 1)
    return image.flip(-1), flipped


class GeneratedDataset(Dataset):
    """Samples ``make(index)`` for ``index < length``, all made once at construction when
    ``cache`` (else on every access: the same values, since ``make`` is pure). ``augment``, when
    given, is applied with probability 1/2 per access, drawn from torch's global generator (so a
    DataLoader's per-worker seeding and a saved RNG state govern it). Cached tensors are handed
    out as they are: a caller must not modify a sample in place."""

    def __init__(
        self,
        make: Callable[[int], Sample],
        length: int,
        *,
        cache: bool,
        augment: Callable[[torch.Tensor, dict[str, torch.Tensor]], Sample] | None = None,
    ) -> None:
        self._make = make
        self._length = length
        self._augment = augment
        self._cache = [make(i) for i in range(length)] if cache else None

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < self._length:
            raise IndexError(f"index {index} out of range for {self._length} samples")
        image, targets = self._cache[index] if self._cache is not None else self._make(index)
        if self._augment is not None and bool(torch.rand(()) < 0.5):
            return self._augment(image, targets)
        return image, dict(targets)
