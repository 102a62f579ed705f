"""One accumulator over all tasks of a model: ``update`` per batch, ``compute`` once per split.

Dense tasks report flat keys (``miou``, ``pix_acc``, ``abs_err``, ``rel_err``, ``normal_*``,
``within_*``), so a model has at most one task of each dense kind. Per-sample tasks report
``"{task}/acc"`` (and ``"{task}/f1"`` for binary ones) and, together, ``mean_acc``: the unweighted
mean of their accuracies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from torch import Tensor

from mtl.metrics.attributes import BinaryMetric, ClassificationMetric
from mtl.metrics.depth import DepthMetric
from mtl.metrics.normal import NormalMetric
from mtl.metrics.segmentation import SegmentationMetric

DENSE_KINDS = ("segmentation", "depth", "normal")
PER_SAMPLE_KINDS = ("binary", "classification")
KINDS = DENSE_KINDS + PER_SAMPLE_KINDS
WITH_CLASSES = ("segmentation", "classification")


class TaskMetric(Protocol):
    keys: tuple[str, ...]

    def update(self, pred: Tensor, target: Tensor) -> None: ...

    def compute(self) -> dict[str, float]: ...

    def reset(self) -> None: ...


def task_metric(task: str, kind: str, num_classes: int | None) -> TaskMetric:
    """The metric of one task of ``kind``; class counts only for segmentation/classification."""
    if kind not in KINDS:
        raise ValueError(f"task {task!r}: unknown kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    if (kind in WITH_CLASSES) != (num_classes is not None):
        need = "needs a number of classes" if kind in WITH_CLASSES else "takes num_classes=None"
        raise ValueError(f"task {task!r} of kind {kind!r} {need}, got {num_classes!r}")
    if kind == "segmentation":
        return SegmentationMetric(num_classes)
    if kind == "classification":
        return ClassificationMetric(num_classes)
    return {"depth": DepthMetric, "normal": NormalMetric, "binary": BinaryMetric}[kind]()


class MultiTaskMetrics:
    """Whole-set metrics of several tasks; build it with :func:`for_tasks`."""

    def __init__(self, tasks: Mapping[str, tuple[str, int | None]]) -> None:
        if not tasks:
            raise ValueError("no tasks given: pass {task_name: (kind, num_classes_or_None)}")
        layouts = {task: _layout(task, spec) for task, spec in tasks.items()}
        self.kinds = {task: kind for task, (kind, _) in layouts.items()}
        for kind in DENSE_KINDS:
            same = [t for t, k in self.kinds.items() if k == kind]
            if len(same) > 1:
                raise ValueError(
                    f"tasks {same} are all of kind {kind!r}, whose metric keys are flat: "
                    "at most one task of each dense kind"
                )
        self.metrics = {task: task_metric(task, kind, n) for task, (kind, n) in layouts.items()}

    def update(self, outputs: Mapping[str, Tensor], targets: Mapping[str, Tensor]) -> None:
        """Add one batch: ``outputs`` and ``targets`` map every task name to a tensor."""
        for name, given in (("outputs", outputs), ("targets", targets)):
            if set(given) != set(self.metrics):
                missing, extra = (
                    sorted(set(self.metrics) - set(given)),
                    sorted(set(given) - set(self.metrics)),
                )
                raise ValueError(
                    f"{name} must hold exactly the tasks {sorted(self.metrics)}; "
                    f"missing {missing}, unknown {extra}"
                )
        for task, metric in self.metrics.items():
            metric.update(outputs[task], targets[task])

    def compute(self) -> dict[str, float]:
        """All metrics of all tasks over everything seen since the last ``reset``."""
        result: dict[str, float] = {}
        accuracies = []
        for task, metric in self.metrics.items():
            values = metric.compute()
            if self.kinds[task] in DENSE_KINDS:
                result.update(values)
            else:
                result.update({f"{task}/{key}": value for key, value in values.items()})
                accuracies.append(values["acc"])
        if accuracies:
            result["mean_acc"] = sum(accuracies) / len(accuracies)
        return result

    def reset(self) -> None:
        for metric in self.metrics.values():
            metric.reset()


def for_tasks(tasks: Mapping[str, tuple[str, int | None]]) -> MultiTaskMetrics:
    """An accumulator for ``{task_name: (kind, num_classes_or_None)}``.

    >>> import torch
    >>> metrics = for_tasks({"smiling": ("binary", None)})
    >>> metrics.update({"smiling": torch.tensor([2.0, -1.0])}, {"smiling": torch.tensor([1, 1])})
    >>> metrics.compute()
    {'smiling/acc': 0.5, 'smiling/f1': 0.6666666666666666, 'mean_acc': 0.5}
    """
    return MultiTaskMetrics(tasks)


def _layout(task: str, spec: tuple[str, int | None]) -> tuple[str, int | None]:
    if not (isinstance(spec, tuple | list) and len(spec) == 2):
        raise ValueError(f"task {task!r}: expected (kind, num_classes_or_None), got {spec!r}")
    return spec[0], spec[1]
