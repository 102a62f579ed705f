"""The paper's "depth in two units" toy (App. A2): two tasks that measure the same quantity.

Inputs are scalars ``x ~ U(low, high)``; task t predicts ``y_t = units_t * x`` from a shared
backbone (two ``Linear`` layers of 20 units with LeakyReLU) through its own two-layer head
(``Linear(20, 20)``, LeakyReLU, ``Linear(20, 1)``), with an L1 loss scaled by ``scales_t``:
``L_t = scales_t * mean_i |head_t(backbone(x_i)) - y_t,i|``.

The paper leaves the data and training details open; the choices here, and why:

* ``x ~ U(0, 1)`` and ``units = (1, 1)``: both tasks see the same targets in the same unit, the
  paper's setting (a). Its setting (b) ("L1 scaled by 10x and L2 by 0.1") is a *loss* scaling,
  ``with_scales((10, 0.1))``, not a change of the target's unit: with an L1 loss a change of
  unit equals a loss scale only if the prediction changes unit too, and the invariance
  statements are about constant loss scales. ``units`` stays a parameter for studies that want
  genuinely different targets.
* 256 samples, full batch: every step sees the same data, so two runs differ only through the
  optimizer, which is what the invariance checks isolate. One full-batch step is one "epoch",
  so the paper's 100 epochs are 100 steps.
* Learning rates are the caller's: 1e-3 for Adam and 1e-2 for SGD with momentum 0.9 train this
  network without diverging; the paper did not tune them either ("we only care about the
  invariance").
* Weights use torch's default ``Linear`` initialisation from ``seed``, in float64 by default so
  that the comparison of scaled and unscaled runs is not dominated by float32 rounding.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from sim.problems import HardSharing, check_scales

WIDTH = 20


def _mlp(inputs: int, outputs: int, final_activation: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(inputs, WIDTH), nn.LeakyReLU(), nn.Linear(WIDTH, outputs)]
    if final_activation:
        layers.append(nn.LeakyReLU())
    return nn.Sequential(*layers)


class TwoUnits(HardSharing):
    """Shared 2-layer LeakyReLU MLP, one 2-layer head per task, L1 losses (see the module)."""

    def __init__(
        self,
        samples: int = 256,
        low: float = 0.0,
        high: float = 1.0,
        units: Sequence[float] = (1.0, 1.0),
        scales: Sequence[float] | None = None,
        seed: int = 0,
        dtype: torch.dtype = torch.float64,
    ):
        super().__init__()
        if samples < 1:
            raise ValueError(f"samples={samples} must be >= 1")
        if not low < high:
            raise ValueError(f"the input range needs low < high, got [{low}, {high}]")
        tasks = len(units)
        if tasks < 1:
            raise ValueError("units needs one factor per task (at least one task)")
        gen = torch.Generator().manual_seed(seed)
        x = low + (high - low) * torch.rand(samples, 1, generator=gen, dtype=torch.float64)
        y = x.T * torch.as_tensor(units, dtype=torch.float64)[:, None]
        self.register_buffer("x", x.to(dtype))
        self.register_buffer("y", y.to(dtype))
        self.register_buffer("scales", check_scales(scales, tasks, dtype))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.shared = _mlp(1, WIDTH, final_activation=True).to(dtype)
            self.heads = nn.ModuleList(
                _mlp(WIDTH, 1, final_activation=False).to(dtype) for _ in range(tasks)
            )

    def predictions(self, batch: torch.Tensor | None = None) -> torch.Tensor:
        """Every head's prediction, shape (T, n) (or (T, len(batch)))."""
        x = self.x if batch is None else self.x[batch]
        z = self.shared(x)
        return torch.stack([head(z)[:, 0] for head in self.heads])

    def losses(self, batch: torch.Tensor | None = None) -> torch.Tensor:
        y = self.y if batch is None else self.y[:, batch]
        return self.scales * (self.predictions(batch) - y).abs().mean(dim=1)


__all__ = ["TwoUnits"]
