"""Whole-set metrics of the vision tasks, Δm / Δp against baselines, and Pareto fronts.

- :func:`for_tasks` / :func:`for_dataset` build an accumulator: ``update(outputs, targets)`` per
  batch, ``compute()`` -> ``{key: float}``, ``reset()``. Keys: ``miou``, ``pix_acc``
  (:mod:`~mtl.metrics.segmentation`), ``abs_err``, ``rel_err`` (:mod:`~mtl.metrics.depth`),
  ``normal_mean``, ``normal_median``, ``within_11_25``, ``within_22_5``, ``within_30``
  (:mod:`~mtl.metrics.normal`; angles in degrees, fractions in [0, 1]), ``"{task}/acc"``,
  ``"{task}/f1"`` and ``mean_acc`` (:mod:`~mtl.metrics.attributes`).
- :func:`higher_is_better`, :func:`delta_m` (the paper's), :func:`delta_p` (LibMTL's).
- :func:`dominates`, :func:`pareto_front`, :func:`not_dominated_by`, :func:`pareto_counts`.
"""

from mtl.metrics.accumulator import KINDS, MultiTaskMetrics, for_tasks
from mtl.metrics.delta import delta_m, delta_p, relative_terms
from mtl.metrics.directions import higher_is_better, task_of
from mtl.metrics.layouts import CELEBA_ATTRIBUTES, DATASET_TASKS, for_dataset
from mtl.metrics.pareto import dominates, not_dominated_by, pareto_counts, pareto_front

__all__ = [
    "CELEBA_ATTRIBUTES",
    "DATASET_TASKS",
    "KINDS",
    "MultiTaskMetrics",
    "delta_m",
    "delta_p",
    "dominates",
    "for_dataset",
    "for_tasks",
    "higher_is_better",
    "not_dominated_by",
    "pareto_counts",
    "pareto_front",
    "relative_terms",
    "task_of",
]
