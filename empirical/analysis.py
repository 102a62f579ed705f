"""What the vision studies compute from the tidy tables: baselines, best learning rates, Δm,
bootstrap intervals over seeds, Pareto counts and verdicts.

Every function takes plain ``pandas`` tables (one row per run at its selected epoch, from
:func:`empirical.results.selected_table`), so a user can rerun any analysis on stored results.
Selections use validation columns (``val/...``) only; test columns (``test/...``) are reported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from mtl.metrics import delta_m, higher_is_better, pareto_counts

VERDICTS = ("confirmed", "refuted", "inconclusive", "not run")


@dataclass(frozen=True)
class Verdict:
    """A claim's verdict computed from results, with the scale and the data it rests on."""

    claim: str
    verdict: str
    scale: str
    data: str
    evidence: str

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {self.verdict!r}; valid: {', '.join(VERDICTS)}")

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def metric_columns(table: pd.DataFrame, split: str) -> list[str]:
    """The metric names logged for ``split`` (``val/miou`` -> ``miou``); losses, Δm and the
    aggregate ``mean_acc`` (a mean of other metrics) aside."""
    prefix = f"{split}/"
    derived = {f"{prefix}delta_m", f"{prefix}mean_acc"}
    return [
        c[len(prefix) :]
        for c in table.columns
        if c.startswith(prefix) and not c.endswith("loss") and c not in derived
    ]


def interval_from_direction(lo: float, hi: float) -> str:
    """``confirmed`` when the interval lies above 0, ``refuted`` below, else ``inconclusive``."""
    if lo > 0:
        return "confirmed"
    if hi < 0:
        return "refuted"
    return "inconclusive"


def bootstrap(
    values: Sequence[float] | np.ndarray,
    statistic: Callable[[np.ndarray], float] = np.mean,
    *,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``(statistic(values), lo, hi)``: a percentile bootstrap interval over the values."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise ValueError("bootstrap of no values")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, values.size, size=(resamples, values.size))
    stats = np.array([statistic(values[d]) for d in draws])
    tail = (1 - level) / 2 * 100
    return float(statistic(values)), *map(float, np.percentile(stats, [tail, 100 - tail]))


def single_task_baselines(stl: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Per ``keys`` group (e.g. dataset, arch) and task: the learning rate whose runs have the
    lowest mean validation loss (the paper's rule for its baselines), and the seed-mean of every
    val/test metric at it; one row per group with the tasks' metrics side by side."""
    rows = []
    for group, runs in stl.groupby(list(keys), dropna=False):
        row = dict(zip(keys, group if isinstance(group, tuple) else (group,), strict=True))
        for task, task_runs in runs.groupby("task"):
            means = task_runs.groupby("lr")["val/loss"].mean()
            best = task_runs[task_runs["lr"] == means.idxmin()]
            row[f"lr.{task}"] = float(means.idxmin())
            for split in ("val", "test"):
                for metric in metric_columns(best.dropna(axis=1, how="all"), split):
                    row[f"{split}/{metric}"] = float(best[f"{split}/{metric}"].mean())
        rows.append(row)
    return pd.DataFrame(rows)


def with_delta_m(runs: pd.DataFrame, baseline: Mapping[str, float], split: str) -> pd.Series:
    """Each run's Δm (%) on ``split`` against the baseline's values of the same metrics."""
    keys = [k for k in metric_columns(runs, split) if f"{split}/{k}" in baseline]
    base = {k: baseline[f"{split}/{k}"] for k in keys}
    return runs.apply(
        lambda r: delta_m({k: r[f"{split}/{k}"] for k in keys}, base, keys=keys), axis=1
    )


def best_learning_rates(
    runs: pd.DataFrame, keys: Sequence[str], score: str, lr_keys: Sequence[str] = ("lr",)
) -> pd.DataFrame:
    """The runs at each group's best learning rate(s): the value(s) of ``lr_keys`` with the
    lowest seed-mean ``score``."""
    lr_keys = list(lr_keys)
    means = runs.groupby([*keys, *lr_keys], dropna=False)[score].mean().reset_index()
    best = means.loc[means.groupby(list(keys), dropna=False)[score].idxmin()]
    return runs.merge(best[[*keys, *lr_keys]], on=[*keys, *lr_keys])


def grid_edges(
    runs: pd.DataFrame, best: pd.DataFrame, keys: Sequence[str], lr_key: str = "lr"
) -> dict[tuple, str]:
    """Groups whose best learning rate is the ``largest`` or ``smallest`` of the two or more
    they ran: their optimum may lie outside the grid, so a comparison they lose is not settled."""
    keys = list(keys)
    tried = runs.groupby(keys)[lr_key].agg(["min", "max", "nunique"])
    edges = {}
    for group, lr in best.groupby(keys)[lr_key].first().items():
        low, high, count = tried.loc[group, ["min", "max", "nunique"]]
        if count >= 2 and lr in (low, high):
            edges[group if isinstance(group, tuple) else (group,)] = (
                "largest" if lr == high else "smallest"
            )
    return edges


def guard_grid_edges(verdict: Verdict, edges: dict[tuple, str], optimizer: str) -> Verdict:
    """``verdict``, made ``inconclusive`` when it is decided against ``optimizer`` while that
    optimizer's best learning rate sits at the edge of its grid for some method (``edges``
    keyed by ``(method, optimizer)``, as :func:`grid_edges`): a wider grid could reverse it."""
    at_edge = sorted(f"{key[0]} ({edge})" for key, edge in edges.items() if key[1] == optimizer)
    if verdict.verdict not in ("confirmed", "refuted") or not at_edge:
        return verdict
    evidence = (
        f"{verdict.evidence}; would be {verdict.verdict}, but the best lr of {optimizer} is at "
        f"the edge of its grid for {', '.join(at_edge)}: widen the grid"
    )
    return replace(verdict, verdict="inconclusive", evidence=evidence)


def pareto_table(
    pool: pd.DataFrame, group: str, metrics: Sequence[str], *, resamples: int = 500, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Pareto counts per ``group`` value over the test metrics of the pool (each run a point),
    with a bootstrap interval from resampling the seeds of every (method, group) cell."""
    directions = {f"test/{m}": higher_is_better(m) for m in metrics}

    def counts(frame: pd.DataFrame) -> dict:
        points = frame[list(directions)].to_dict("records")
        return pareto_counts(points, list(frame[group]), directions)

    observed = counts(pool)
    rng = np.random.default_rng(seed)
    cells = [c for _, c in pool.groupby(["method", group])]
    draws: dict[str, dict[str, list[int]]] = {
        g: {"full": [], "versus_others": []} for g in observed
    }
    for _ in range(resamples):
        sample = pd.concat([c.iloc[rng.integers(0, len(c), len(c))] for c in cells])
        result = counts(sample)
        for g in observed:
            for kind in ("full", "versus_others"):
                draws[g][kind].append(result.get(g, {}).get(kind, 0))
    out: dict[str, dict[str, Any]] = {}
    for g, kinds in observed.items():
        out[g] = {"pool": int((pool[group] == g).sum())}
        for kind, value in kinds.items():
            lo, hi = np.percentile(draws[g][kind], [2.5, 97.5])
            out[g][kind] = {"count": int(value), "lo": float(lo), "hi": float(hi)}
    return out


__all__ = [
    "VERDICTS",
    "Verdict",
    "best_learning_rates",
    "bootstrap",
    "grid_edges",
    "guard_grid_edges",
    "interval_from_direction",
    "metric_columns",
    "pareto_table",
    "single_task_baselines",
    "with_delta_m",
]
