"""TorchJD aggregators by name (optional extra ``torchjd``, pinned to :data:`TORCHJD_VERSION`).

``torchjd_aggregator("UPGrad")(J)`` maps a (T, P) Jacobian to a (P,) direction like the
methods here. TorchJD is imported only when called.
"""

from __future__ import annotations

import importlib
from typing import Any

from torch import Tensor

TORCHJD_VERSION = "0.18.0"


class TorchJDAggregator:
    """Wraps a ``torchjd.aggregation`` aggregator as a (T, P) -> (P,) callable."""

    def __init__(self, name: str, aggregator: Any) -> None:
        self.name = name
        self.aggregator = aggregator

    def __call__(self, jacobian: Tensor) -> Tensor:
        if jacobian.dim() != 2:
            raise ValueError(
                f"torchjd {self.name}: expected a (T, P) Jacobian, got {tuple(jacobian.shape)}"
            )
        return self.aggregator(jacobian)


def torchjd_aggregator(name: str, **hyperparameters: Any) -> TorchJDAggregator:
    """The TorchJD aggregator class ``name`` (e.g. ``"UPGrad"``, ``"MGDA"``, ``"PCGrad"``)."""
    try:
        aggregation = importlib.import_module("torchjd.aggregation")
    except ImportError:
        raise ImportError(
            f"TorchJD is an optional extra: pip install torchjd=={TORCHJD_VERSION}"
        ) from None
    valid = sorted(
        n
        for n in dir(aggregation)
        if isinstance(getattr(aggregation, n), type) and n[0].isupper() and "Weighting" not in n
    )
    if name not in valid:
        raise ValueError(f"unknown TorchJD aggregator {name!r}; valid: {', '.join(valid)}")
    return TorchJDAggregator(name, getattr(aggregation, name)(**hyperparameters))
