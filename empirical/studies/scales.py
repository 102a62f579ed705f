"""What the three scales of a vision study mean: the setups (dataset x architecture) and the
training protocol each runs at.

``full`` is the paper's protocol on the real datasets (``../paper.md`` §2.1-2.4: Cityscapes 300
epochs at batch 64, NYUv2 200 epochs at batch 8, lr x0.5 every 100 epochs, weight decay 1e-5).
``cpu`` and ``quick`` train on generated scenes and on the multi-digits real-data row at a size a
2-core machine finishes (``cpu``: about an hour for a study; ``quick``: seconds to a minute).
The ``data`` label names what a verdict rests on, so a result from generated images never reads
as a confirmation of a Cityscapes or NYUv2 number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCALES = ("quick", "cpu", "full")
DATA_LABELS = {"full": "full datasets", "generated": "generated images", "digits": "multi-digits"}


@dataclass(frozen=True)
class Setup:
    """One dataset x architecture with its training protocol (trainer config fields)."""

    dataset: str
    arch: str
    data: str  # a key of DATA_LABELS
    protocol: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.dataset}-{self.arch}"

    def config(self, **changes: Any) -> dict[str, Any]:
        """A trainer config of this setup, with ``changes`` on top of the protocol."""
        return {"dataset": self.dataset, "arch": self.arch, **self.protocol, **changes}


def _paper(epochs: int, batch_size: int) -> dict[str, Any]:
    return {
        "epochs": epochs,
        "batch_size": batch_size,
        "weight_decay": 1e-5,
        "schedule": "step",
        "step_size": 100,
        "gamma": 0.5,
        "augment": True,
        "device": "auto",
    }


def _cpu(epochs: int, batch_size: int, options: dict[str, Any], width: int) -> dict[str, Any]:
    return {
        "epochs": epochs,
        "batch_size": batch_size,
        "weight_decay": 1e-5,
        "schedule": "none",
        "dataset_options": options,
        "width": width,
        "device": "cpu",
    }


FULL_SETUPS = tuple(
    Setup(dataset, arch, "full", _paper(epochs, bs))
    for dataset, epochs, bs in (("cityscapes", 300, 64), ("nyuv2", 200, 8))
    for arch in ("segnet", "deeplabv3")
)

CPU_SETUPS = (
    Setup(
        "synthetic-scenes",
        "segnet",
        "generated",
        _cpu(6, 16, {"size": [32, 32], "num_train": 256, "num_val": 64, "num_test": 128}, 4),
    ),
    Setup(
        "multi-digits",
        "small-cnn",
        "digits",
        _cpu(6, 64, {}, 8),
    ),
)

QUICK_SETUPS = (
    Setup(
        "synthetic-scenes",
        "segnet",
        "generated",
        _cpu(1, 8, {"size": [32, 32], "num_train": 16, "num_val": 8, "num_test": 8}, 2),
    ),
    Setup(
        "multi-digits",
        "small-cnn",
        "digits",
        _cpu(1, 64, {}, 4),
    ),
)

SETUPS = {"quick": QUICK_SETUPS, "cpu": CPU_SETUPS, "full": FULL_SETUPS}


def setups(scale: str) -> tuple[Setup, ...]:
    if scale not in SETUPS:
        raise ValueError(f"unknown scale {scale!r}; valid scales: {', '.join(SCALES)}")
    return SETUPS[scale]
