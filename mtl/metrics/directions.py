"""Which way each metric improves, and which task it belongs to.

A key may carry prefixes separated by ``/`` (a split such as ``val/miou``, a task such as
``Smiling/acc``); its last component names the metric.
"""

from __future__ import annotations

# metric name -> (higher is better, task kind it measures)
METRICS: dict[str, tuple[bool, str]] = {
    "miou": (True, "segmentation"),
    "pix_acc": (True, "segmentation"),
    "abs_err": (False, "depth"),
    "rel_err": (False, "depth"),
    "normal_mean": (False, "normal"),
    "normal_median": (False, "normal"),
    "within_11_25": (True, "normal"),
    "within_22_5": (True, "normal"),
    "within_30": (True, "normal"),
}
PER_TASK_METRICS = ("acc", "f1")  # keyed "{task}/acc", "{task}/f1"; higher is better
SUMMARY_METRICS = ("mean_acc",)  # higher is better


def higher_is_better(key: str) -> bool:
    """True when a larger value of metric ``key`` is better (mIoU, accuracies), False for errors."""
    name = key.rsplit("/", 1)[-1]
    if name in METRICS:
        return METRICS[name][0]
    if (name in PER_TASK_METRICS and "/" in key) or name in SUMMARY_METRICS:
        return True
    raise ValueError(
        f"unknown metric {key!r}; known: {', '.join(METRICS)}, mean_acc and '<task>/acc', "
        "'<task>/f1' (each optionally prefixed, e.g. 'val/miou')"
    )


def task_of(key: str) -> str:
    """The task a metric key measures, for per-task averages: the kind of a dense metric (with
    its prefix: ``val/miou`` -> ``val/segmentation``), the task of ``"{task}/acc"``, else the
    key itself."""
    higher_is_better(key)  # rejects unknown keys
    prefix, _, name = key.rpartition("/")
    if name in METRICS:
        kind = METRICS[name][1]
        return f"{prefix}/{kind}" if prefix else kind
    return prefix if name in PER_TASK_METRICS else key
