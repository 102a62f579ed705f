"""Shape and value checks shared by the task metrics: each failure names the task and the fix."""

from __future__ import annotations

from torch import Tensor


def check(ok: bool, metric: str, expected: str) -> None:
    """Raise ``ValueError`` saying what ``metric`` expects when ``ok`` is false."""
    if not ok:
        raise ValueError(f"{metric} metric expects {expected}")


def shapes(*tensors: Tensor) -> str:
    return " and ".join(str(tuple(t.shape)) for t in tensors)


def nothing_seen(metric: str) -> ValueError:
    return ValueError(
        f"{metric} metric has no valid element to summarise: call update() with at least one "
        "valid target before compute()"
    )
