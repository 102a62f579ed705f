"""The 15 common corruptions of Hendrycks and Dietterich (2019) x 5 severities, on dataset images.

The corruptions are those of the maintained ``imagecorruptions-imaug`` package (import name
``imagecorruptions``), grouped as in the paper's Fig. A8. A corruption acts on the image only:
labels, depth and normals stay as they are. Images are float tensors (C, H, W) in [0, 1] (at least
32 x 32 pixels, as the package requires); they are quantised to 8 bits, corrupted and mapped back.
Every draw is seeded: the same (seed, index) gives the same corrupted image in every process.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

FAMILIES: dict[str, tuple[str, ...]] = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"),
    "weather": ("snow", "frost", "fog", "brightness"),
    "digital": ("contrast", "elastic_transform", "pixelate", "jpeg_compression"),
}
CORRUPTIONS: tuple[str, ...] = tuple(c for names in FAMILIES.values() for c in names)
SEVERITIES = (1, 2, 3, 4, 5)
_TAKES_SEED = ("glass_blur", "impulse_noise")


def family(corruption: str) -> str:
    for name, members in FAMILIES.items():
        if corruption in members:
            return name
    raise ValueError(f"unknown corruption {corruption!r}; valid: {', '.join(CORRUPTIONS)}")


def corrupt_image(image: Tensor, corruption: str, severity: int, seed: int) -> Tensor:
    """``image`` (C, H, W) in [0, 1] with ``corruption`` at ``severity``, seeded by ``seed``."""
    from imagecorruptions import corrupt

    family(corruption)
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
    if image.dim() != 3 or image.shape[0] not in (1, 3) or min(image.shape[1:]) < 32:
        raise ValueError(
            f"corruptions need an image (1 or 3, H, W) with H, W >= 32, got {tuple(image.shape)}"
        )
    pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (the package draws from the global generator)
    extra = {"seed": seed % 2**32} if corruption in _TAKES_SEED else {}
    out = corrupt(pixels, severity=severity, corruption_name=corruption, **extra)
    result = torch.from_numpy(np.array(out, dtype=np.uint8)).permute(2, 0, 1).float() / 255
    return result[: image.shape[0]].to(image.dtype)


class CorruptedDataset(Dataset):
    """``base`` with every image corrupted: one fixed (corruption, severity), or, with
    ``corruption=None``, a corruption and severity drawn per sample (the paper's fine-tuning)."""

    def __init__(
        self,
        base: Dataset,
        corruption: str | None,
        severity: int | None,
        seed: int = 0,
        choices: Sequence[str] = CORRUPTIONS,
    ) -> None:
        if corruption is not None:
            family(corruption)
        self.base, self.corruption, self.severity = base, corruption, severity
        self.seed, self.choices, self.epoch = seed, tuple(choices), 0

    def set_epoch(self, epoch: int) -> None:
        """A new draw of random corruptions per epoch (deterministic in seed and epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int):
        image, targets = self.base[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        corruption = self.corruption or self.choices[rng.integers(len(self.choices))]
        severity = self.severity or int(rng.choice(SEVERITIES))
        seed = int(rng.integers(2**31))
        return corrupt_image(image, corruption, severity, seed), targets
