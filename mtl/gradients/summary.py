"""Per-epoch summaries of pair statistics: mean, std, 2.5 % and 97.5 % percentiles (the paper's
Fig. 4 plots these over all pair values within an epoch), and the share of negative values."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import Tensor


def summarize(values: Tensor | Iterable[Tensor]) -> dict[str, float]:
    """Summary of the finite values pooled from ``values``; NaNs (undefined pairs) are counted
    separately. ``std`` is the population standard deviation; percentiles interpolate linearly."""
    pooled = _pool(values)
    finite = pooled[torch.isfinite(pooled)]
    summary = {"count": float(finite.numel()), "undefined": float(pooled.numel() - finite.numel())}
    if finite.numel() == 0:
        nan = float("nan")
        return {**summary, "mean": nan, "std": nan, "p2.5": nan, "p97.5": nan, "negative": nan}
    q = torch.quantile(finite, torch.tensor([0.025, 0.975], dtype=finite.dtype))
    return {
        **summary,
        "mean": float(finite.mean()),
        "std": float(finite.std(correction=0)),
        "p2.5": float(q[0]),
        "p97.5": float(q[1]),
        "negative": float((finite < 0).double().mean()),
    }


def summarize_epoch(
    steps: Iterable[Mapping[str, Mapping[str, Tensor]]],
) -> dict[str, dict[str, dict[str, float]]]:
    """Pool the :func:`mtl.gradients.conflict_study` results of an epoch's measured steps and
    summarise each (kind, statistic)."""
    pooled: dict[tuple[str, str], list[Tensor]] = {}
    for step in steps:
        for kind, stats in step.items():
            for name, values in stats.items():
                pooled.setdefault((kind, name), []).append(values)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for (kind, name), values in pooled.items():
        out.setdefault(kind, {})[name] = summarize(values)
    return out


def _pool(values: Tensor | Iterable[Tensor]) -> Tensor:
    tensors = [values] if isinstance(values, Tensor) else list(values)
    if not tensors:
        raise ValueError("summarize needs at least one tensor of values")
    return torch.cat([t.detach().reshape(-1).double().cpu() for t in tensors])
