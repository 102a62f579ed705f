"""Relative multi-task performance against single-task baselines: the paper's Δm and LibMTL's Δp.

With ``M_{m,k}`` the multi-task model's and ``M_{b,k}`` the baseline's value of metric ``k`` and
``l_k = 1`` when higher is better for ``k`` (else 0):

- Δm (Maninis et al. 2019, as the paper uses it) is the flat mean over *all* ``K`` metrics, in %:
  ``Δm = 100/K * sum_k (-1)^{l_k} (M_{m,k} - M_{b,k}) / M_{b,k}``; lower is better, 0 for the
  baseline itself, negative when the model beats it on average.
- Δp (LibMTL's ``count_improvement``) averages per task first, in %:
  ``Δp = 100/T * sum_t 1/K_t * sum_{k in t} (-1)^{l_k} (M_{b,k} - M_{m,k}) / M_{b,k}``;
  *higher* is better. Each term is the negative of the matching Δm term, so with the same number
  of metrics in every task ``Δp = -Δm``; otherwise tasks with many metrics (NYUv2's five normal
  metrics) weigh less in Δp than in Δm.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mtl.metrics.directions import higher_is_better, task_of


def relative_terms(
    metrics: Mapping[str, float], baseline: Mapping[str, float], keys: Iterable[str] | None = None
) -> dict[str, float]:
    """Per-metric Δm terms ``(-1)^{l_k} (M_{m,k} - M_{b,k}) / M_{b,k}`` (fractions, not %).

    ``keys=None`` takes every key, and then both sides must hold the same keys.
    """
    if keys is None:
        only_model, only_base = (
            sorted(set(metrics) - set(baseline)),
            sorted(set(baseline) - set(metrics)),
        )
        if only_model or only_base:
            raise ValueError(
                f"metrics and baseline hold different keys (only in metrics: {only_model}; only "
                f"in baseline: {only_base}); pass keys=[...] to choose the metrics to compare"
            )
        keys = list(baseline)
    keys = list(keys)
    if not keys:
        raise ValueError("no metrics to compare: keys is empty")
    missing = [
        (side, k)
        for side, d in (("metrics", metrics), ("baseline", baseline))
        for k in keys
        if k not in d
    ]
    if missing:
        raise ValueError(f"keys missing: {', '.join(f'{k!r} in {side}' for side, k in missing)}")
    terms = {}
    for key in keys:
        base = float(baseline[key])
        if base == 0:
            raise ValueError(f"baseline value of {key!r} is 0: a relative change is undefined")
        sign = -1.0 if higher_is_better(key) else 1.0
        terms[key] = sign * (float(metrics[key]) - base) / base
    return terms


def delta_m(
    metrics: Mapping[str, float], baseline: Mapping[str, float], keys: Iterable[str] | None = None
) -> float:
    """The paper's Δm in %: the flat mean of :func:`relative_terms` over all metrics (lower is
    better). Here (-10% + 25%) / 2:

    >>> round(delta_m({"miou": 0.55, "abs_err": 0.5}, {"miou": 0.5, "abs_err": 0.4}), 9)
    7.5
    """
    terms = relative_terms(metrics, baseline, keys)
    return 100.0 * sum(terms.values()) / len(terms)


def delta_p(
    metrics: Mapping[str, float],
    baseline: Mapping[str, float],
    keys: Iterable[str] | None = None,
    tasks: Mapping[str, Iterable[str]] | None = None,
) -> float:
    """LibMTL's Δp in %: per-task mean of the relative improvements, then mean over tasks;
    *higher* is better. ``tasks`` maps a task to its metric keys (default: :func:`task_of`).

    Here ((10% + 0%) / 2 - 25%) / 2:

    >>> model = {"miou": 0.55, "pix_acc": 0.5, "abs_err": 0.5}
    >>> round(delta_p(model, {"miou": 0.5, "pix_acc": 0.5, "abs_err": 0.4}), 9)
    -10.0
    """
    if tasks is not None:
        if keys is not None:
            raise ValueError("pass either keys or tasks, not both")
        keys = [k for group in tasks.values() for k in group]
        groups = {task: list(group) for task, group in tasks.items()}
    terms = relative_terms(metrics, baseline, keys)
    if tasks is None:
        groups = {}
        for key in terms:
            groups.setdefault(task_of(key), []).append(key)
    if any(not group for group in groups.values()):
        raise ValueError(f"every task needs at least one metric, got {groups}")
    per_task = [sum(-terms[k] for k in group) / len(group) for group in groups.values()]
    return 100.0 * sum(per_task) / len(per_task)
