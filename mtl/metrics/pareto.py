"""Pareto dominance over any set of metrics, each with its direction.

``directions`` maps each metric key to True when higher is better (False: lower is better); an
iterable of keys instead takes each key's direction from :func:`higher_is_better`. Point ``a``
dominates ``b`` when ``a`` is at least as good as ``b`` on every metric and strictly better on
one. Equal points do not dominate each other, so duplicates are all on the front.

The paper's Table 2 counts, per optimizer, its runs on the front of the pool of all runs
("PO (full)") and its runs dominated by no run of the other optimizer ("PO w.r.t. SGD").
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence

from mtl.metrics.directions import higher_is_better

Point = Mapping[str, float]
Directions = Mapping[str, bool] | Iterable[str]


def resolve_directions(directions: Directions) -> dict[str, bool]:
    """``{key: higher_is_better}`` from a mapping, or from keys via :func:`higher_is_better`."""
    if isinstance(directions, Mapping):
        resolved = {key: bool(up) for key, up in directions.items()}
    elif isinstance(directions, str):
        raise ValueError(f"directions must be keys or a mapping, got the string {directions!r}")
    else:
        resolved = {key: higher_is_better(key) for key in directions}
    if not resolved:
        raise ValueError("no metrics given: directions is empty")
    return resolved


def dominates(a: Point, b: Point, directions: Directions) -> bool:
    """True when ``a`` is at least as good as ``b`` on every metric and better on one.

    >>> dominates({"miou": 0.6, "abs_err": 0.4}, {"miou": 0.5, "abs_err": 0.4}, ["miou", "abs_err"])
    True
    """
    return _dominates(a, b, resolve_directions(directions))


def pareto_front(points: Sequence[Point], directions: Directions) -> list[int]:
    """Indices (ascending) of the points that no other point dominates."""
    resolved = resolve_directions(directions)
    return not_dominated_by(points, points, resolved)


def not_dominated_by(
    candidates: Sequence[Point], others: Sequence[Point], directions: Directions
) -> list[int]:
    """Indices of ``candidates`` that no member of ``others`` dominates."""
    resolved = resolve_directions(directions)
    for point in (*candidates, *others):
        _check_keys(point, resolved)
    return [
        i for i, c in enumerate(candidates) if not any(_dominates(o, c, resolved) for o in others)
    ]


def pareto_counts(
    points: Sequence[Point], groups: Sequence[Hashable], directions: Directions
) -> dict[Hashable, dict[str, int]]:
    """Per group: ``"full"``, its members on the front of all points, and ``"versus_others"``,
    its members that no point of another group dominates (the paper's Table 2 columns)."""
    if len(points) != len(groups):
        raise ValueError(f"one group per point: {len(points)} points, {len(groups)} groups")
    resolved = resolve_directions(directions)
    front = set(pareto_front(points, resolved))
    counts = {}
    for group in dict.fromkeys(groups):
        members = [i for i, g in enumerate(groups) if g == group]
        others = [points[i] for i, g in enumerate(groups) if g != group]
        counts[group] = {
            "full": sum(i in front for i in members),
            "versus_others": len(not_dominated_by([points[i] for i in members], others, resolved)),
        }
    return counts


def _dominates(a: Point, b: Point, directions: dict[str, bool]) -> bool:
    _check_keys(a, directions)
    _check_keys(b, directions)
    strictly = False
    for key, up in directions.items():
        better, worse = (
            (a[key] > b[key], a[key] < b[key]) if up else (a[key] < b[key], a[key] > b[key])
        )
        if worse:
            return False
        strictly = strictly or better
    return strictly


def _check_keys(point: Point, directions: dict[str, bool]) -> None:
    missing = [key for key in directions if key not in point]
    if missing:
        raise ValueError(f"point lacks metrics {missing}; it holds {sorted(point)}")
