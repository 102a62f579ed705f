"""What a run is built from, looked up by name in the project's registries.

Datasets come from :mod:`empirical.datasets`, architectures from :mod:`empirical.models`, methods
from :mod:`mtl.methods`, optimizer rules from :mod:`mtl.optim`, metrics from :mod:`mtl.metrics`
and losses from :mod:`mtl.losses` (task kind -> loss of the same name).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

import mtl.methods
import mtl.optim
from empirical import datasets
from empirical.datasets import DatasetSpec
from empirical.training.config import RunConfig
from mtl.losses import Loss, get_loss
from mtl.methods.base import Method
from mtl.model import MultiTaskModel


def _models() -> Any:
    try:
        return importlib.import_module("empirical.models")
    except ModuleNotFoundError as err:
        raise ValueError(f"the architectures (empirical.models) are not available: {err}") from err


def arch_names() -> tuple[str, ...]:
    return tuple(_models().names())


def build_model(
    arch: str,
    spec: DatasetSpec,
    *,
    width: int | None,
    pretrained: str | None,
    options: dict[str, Any] | None = None,
) -> MultiTaskModel:
    """``empirical.models.build`` with ``options`` as keywords (the models check their names)."""
    return _models().build(arch, spec, width=width, pretrained=pretrained, **(options or {}))


#: ``width`` of an unset ``--width`` on generated data: a CPU-sized network (the published
#: widths, 64 for SegNet, train at about 8 CPU-seconds per step on 64x64 scenes).
GENERATED_WIDTHS = {"segnet": 16, "mtan": 16, "deeplabv3": 16, "resnet18": 16}


def model_of(config: RunConfig, spec: DatasetSpec) -> MultiTaskModel:
    """The run's freshly built model (its weights as initialised, not trained); ``options``
    is passed only when the config sets some, so builders without options stay usable. An unset
    width is the published one on real datasets and :data:`GENERATED_WIDTHS` on generated ones."""
    extra = {"options": config.model_options} if config.model_options else {}
    width = config.width
    if width is None and not spec.real and config.pretrained is None:
        width = GENERATED_WIDTHS.get(config.arch)
    return build_model(config.arch, spec, width=width, pretrained=config.pretrained, **extra)


def load_initial_weights(model: MultiTaskModel, run_dir: str) -> None:
    """Load ``run_dir/best.pt`` into ``model`` (strict: every key and shape must match)."""
    from empirical.training.rundir import BEST_MODEL, load_best_model

    state = load_best_model(run_dir)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(
            f"init_from: {str(Path(run_dir) / BEST_MODEL)!r} does not fit this run's model "
            f"(architecture, width, model_options and tasks must match the run that wrote it): "
            f"{err}"
        ) from err


def metrics_for(spec: DatasetSpec) -> Any:
    """A metric accumulator (``update``, ``compute``, ``reset``) for the tasks of ``spec``."""
    import mtl.metrics

    return mtl.metrics.for_tasks({t.name: (t.kind, t.num_classes) for t in spec.tasks})


def delta_m(metrics: dict[str, float], baseline: dict[str, float]) -> float:
    """The paper's Δm (%) of ``metrics`` against single-task ``baseline`` (lower is better)."""
    import mtl.metrics

    return float(mtl.metrics.delta_m(metrics, baseline))


def validate_names(config: RunConfig) -> None:
    """Raise, listing the valid names, for an unknown dataset, arch, method or optimizer."""
    if config.dataset not in datasets.names():
        raise ValueError(
            f"unknown dataset {config.dataset!r}; valid datasets: {', '.join(datasets.names())}"
        )
    archs = arch_names()
    if config.arch not in archs:
        raise ValueError(f"unknown arch {config.arch!r}; valid archs: {', '.join(archs)}")
    mtl.methods.method_class(config.method)
    for key in ("optimizer", "backbone_optimizer", "heads_optimizer"):
        name = getattr(config, key)
        if name is not None and name not in mtl.optim.NAMES:
            raise ValueError(
                f"unknown {key} {name!r}; valid optimizers: {', '.join(mtl.optim.NAMES)}"
            )


def dataset_spec(config: RunConfig) -> DatasetSpec:
    """The dataset's spec restricted to ``config.tasks`` (in the order given)."""
    spec = datasets.spec(config.dataset, **config.dataset_options)
    if config.tasks is None:
        return spec
    missing = [t for t in config.tasks if t not in spec.task_names]
    if missing:
        raise ValueError(
            f"unknown task(s) {missing} of {config.dataset}; valid: {', '.join(spec.task_names)}"
        )
    return dataclasses.replace(spec, tasks=tuple(spec.task(t) for t in config.tasks))


def build_split(config: RunConfig, split: str, *, clean: bool = False) -> Dataset:
    """Split ``split``; the train split corrupted when ``config.corruption`` is set (and not
    ``clean``): ``"random"`` draws a corruption and severity per sample and epoch, a corruption
    name fixes the corruption and draws the severity."""
    base = datasets.build(
        config.dataset,
        split,
        root=config.data_root,
        augment=config.augment and split == "train",
        seed=config.data_seed,
        **config.dataset_options,
    )
    if split != "train" or clean or config.corruption is None:
        return base
    from empirical.corruptions import CorruptedDataset

    fixed = None if config.corruption == "random" else config.corruption
    return CorruptedDataset(base, fixed, None, seed=config.data_seed)


def set_epoch(dataset: Any, epoch: int) -> None:
    """``set_epoch(epoch)`` on the dataset and on every dataset it wraps (``.base``,
    ``.dataset``) that has one: seeded augmentations and corruptions draw anew each epoch."""
    seen: set[int] = set()
    while dataset is not None and id(dataset) not in seen:
        seen.add(id(dataset))
        if callable(getattr(dataset, "set_epoch", None)):
            dataset.set_epoch(epoch)
        inner = getattr(dataset, "base", None)
        dataset = inner if inner is not None else getattr(dataset, "dataset", None)


def task_losses(spec: DatasetSpec) -> dict[str, Loss]:
    return {t.name: get_loss(t.kind) for t in spec.tasks}


def build_method(config: RunConfig, tasks: int) -> Method:
    """The method with its options; ``tasks`` is filled in for methods that need the count."""
    options = dict(config.method_options)
    cls = mtl.methods.method_class(config.method)
    if "tasks" in cls.defaults and options.get("tasks") is None:
        options["tasks"] = tasks
    return mtl.methods.get(config.method, **options)


def load_baselines(path: str | None) -> dict[str, float] | None:
    """``{metric: value}`` from a JSON file (keys may carry a ``val/`` prefix). Losses
    (``loss``, ``<task>_loss``) and ``delta_m`` in the file are ignored: Δm is over metrics."""
    if path is None:
        return None
    file = Path(path)
    if not file.is_file():
        raise ValueError(
            f"baselines file {path!r} does not exist; expected a JSON object of single-task "
            'validation metrics such as {"miou": 0.52, "abs_err": 0.014}'
        )
    values = json.loads(file.read_text())
    if not isinstance(values, dict) or not values:
        raise ValueError(f"baselines file {path!r} must hold a non-empty JSON object")
    metrics = {k.removeprefix("val/"): v for k, v in values.items()}
    kept = {
        k: float(v)
        for k, v in metrics.items()
        if k != "loss" and not k.endswith("_loss") and k != "delta_m"
    }
    if not kept:
        raise ValueError(f"baselines file {path!r} holds no metric (only losses)")
    return kept
