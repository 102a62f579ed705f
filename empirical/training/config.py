"""``RunConfig``: every setting of one training run, from a TOML/YAML file plus overrides.

A file holds a flat table of the fields below (TOML: ``lr = 1e-3``; YAML: ``lr: 0.001``);
overrides are ``key=value`` strings whose value is read as a TOML value (``lr=1e-3``,
``tasks=["depth"]``, ``dataset_options={size=[32, 32]}``) or, failing that, as a bare string
(``method=pcgrad``). Unknown keys, unknown names (dataset, arch, method, optimizer, schedule,
device) and values of the wrong type are errors that name the key and list the valid choices.

Model and fine-tuning options (see :mod:`empirical.training.loop` for the behaviour):
``model_options`` are keyword options of ``empirical.models.build`` (``{shared_blocks = 3}``);
``init_from`` names a finished run directory whose ``best.pt`` the model starts from;
``freeze_backbone`` trains the heads only; ``corruption`` (``"random"`` or a corruption name)
corrupts the training images; ``sample_groups`` (``{count = k, by = "random" | "class"}``, single
task only) splits each batch into k groups whose mean losses are the method's k "tasks".

Weight decay policy: ``weight_decay`` applies to every parameter, norms and biases included, as
torch.optim and LibMTL do (the paper's setting); ``decay_norms_and_biases = false`` excludes
every parameter with at most one dimension (biases, norm scales and shifts) from it.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEDULES = ("none", "step", "cosine")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class RunConfig:
    """One training run. ``None`` for an optimizer hyperparameter means the rule's default."""

    dataset: str = "synthetic-scenes"
    data_root: str | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)
    data_seed: int = 0  # the dataset's seed (generation, validation hold-out), not the run's
    augment: bool = False
    arch: str = "segnet"
    width: int | None = None
    pretrained: str | None = None
    model_options: dict[str, Any] = field(default_factory=dict)  # keywords of models.build
    init_from: str | None = None  # a finished run directory: start from its best.pt
    freeze_backbone: bool = False  # train the heads only (backbone BatchNorm in eval mode)
    corruption: str | None = None  # "random" or a corruption name: corrupted training images
    sample_groups: dict[str, Any] | None = None  # {"count": k, "by": "random" | "class"}
    tasks: tuple[str, ...] | None = None  # a subset of the dataset's tasks; one task: single-task
    method: str = "ew"
    method_options: dict[str, Any] = field(default_factory=dict)
    optimizer: str = "adam"
    lr: float | None = None
    momentum: float | None = None
    betas: tuple[float, float] | None = None
    eps: float | None = None
    weight_decay: float | None = None
    optimizer_options: dict[str, Any] = field(default_factory=dict)
    decay_norms_and_biases: bool = True
    backbone_optimizer: str | None = None
    backbone_lr: float | None = None
    backbone_options: dict[str, Any] = field(default_factory=dict)
    heads_optimizer: str | None = None
    heads_lr: float | None = None
    heads_options: dict[str, Any] = field(default_factory=dict)
    task_lrs: dict[str, float] = field(default_factory=dict)  # {task: the lr of its head}
    schedule: str = "none"
    step_size: int = 100
    gamma: float = 0.5
    warmup_epochs: int = 0
    epochs: int = 3
    batch_size: int = 8
    seed: int = 0
    device: str = "auto"
    amp: bool = False
    channels_last: bool = False
    grad_clip: float | None = None
    num_workers: int = 0
    eval_every: int = 1
    grad_stats_every: int = 0  # 0: off; k: statistics every k optimizer steps
    grad_stats_samples: int = 4
    baselines: str | None = None  # JSON {metric: value} of single-task validation metrics
    tensorboard: bool = False

    def __post_init__(self) -> None:
        _check_types(self)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("device", self.device, DEVICES)
        for key in ("epochs", "batch_size", "eval_every", "step_size"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
        for key in ("warmup_epochs", "num_workers", "grad_stats_every"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key} must be >= 0, got {getattr(self, key)}")
        if self.grad_stats_samples < 2:
            raise ValueError(f"grad_stats_samples must be >= 2, got {self.grad_stats_samples}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 (or unset), got {self.grad_clip}")
        if self.tasks is not None and not self.tasks:
            raise ValueError("tasks must name at least one task (or be unset for all)")
        if self.corruption is not None and self.corruption != "random":
            from empirical.corruptions import CORRUPTIONS

            _check_choice("corruption", self.corruption, ("random", *CORRUPTIONS))
        if self.sample_groups is not None:
            _check_sample_groups(self.sample_groups)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RunConfig:
        """A config from a flat mapping; unknown keys raise and list the valid ones."""
        unknown = sorted(set(values) - set(field_names()))
        if unknown:
            raise ValueError(
                f"unknown config key(s) {', '.join(map(repr, unknown))}; valid keys: "
                + ", ".join(field_names())
            )
        return cls(**{k: _coerce(k, v) for k, v in values.items()})

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values (tuples as lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def replace(self, **changes: Any) -> RunConfig:
        return RunConfig.from_dict({**self.as_dict(), **changes})


def field_names() -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(RunConfig))


def load_file(path: str | Path) -> dict[str, Any]:
    """The flat table of a ``.toml``, ``.yaml``/``.yml`` or ``.json`` config file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    text = path.read_text()
    if suffix == ".toml":
        values = _toml().loads(text)
    elif suffix in (".yaml", ".yml"):
        import yaml

        values = yaml.safe_load(text) or {}
    elif suffix == ".json":
        values = json.loads(text)
    else:
        raise ValueError(f"config file {str(path)!r}: use a .toml, .yaml, .yml or .json file")
    if not isinstance(values, dict):
        raise ValueError(f"config file {str(path)!r} must hold a table of key = value pairs")
    return values


def parse_override(text: str) -> tuple[str, Any]:
    """``"key=value"`` -> ``(key, value)``, the value read as TOML, else kept as a string."""
    key, sep, raw = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key:
        raise ValueError(f"override {text!r} is not of the form key=value")
    try:
        value = _toml().loads(f"v = {raw.strip()}")["v"]
    except Exception:
        value = raw.strip()
    return key, value


def load(
    path: str | Path | None = None,
    overrides: Iterable[str] = (),
    values: Mapping[str, Any] | None = None,
) -> RunConfig:
    """File, then ``values`` (already parsed), then ``key=value`` overrides, later ones winning."""
    merged: dict[str, Any] = load_file(path) if path is not None else {}
    merged.update(values or {})
    merged.update(parse_override(o) for o in overrides)
    return RunConfig.from_dict(merged)


def _toml() -> types.ModuleType:
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    import tomli

    return tomli


SAMPLE_GROUPINGS = ("random", "class")


def _check_sample_groups(groups: dict[str, Any]) -> None:
    if set(groups) != {"count", "by"}:
        raise ValueError(
            f'sample_groups must be {{"count": k, "by": "random" | "class"}}, got {groups!r}'
        )
    count = groups["count"]
    if not isinstance(count, int) or isinstance(count, bool) or count < 2:
        raise ValueError(f"sample_groups count must be an integer >= 2, got {count!r}")
    _check_choice("sample_groups by", groups["by"], SAMPLE_GROUPINGS)


def _check_choice(key: str, value: str, valid: Iterable[str]) -> None:
    if value not in valid:
        raise ValueError(f"unknown {key} {value!r}; valid: {', '.join(valid)}")


_HINTS = typing.get_type_hints(RunConfig)


def _coerce(key: str, value: Any) -> Any:
    """Lists to tuples where the field is a tuple; ints where floats are expected stay as given."""
    if isinstance(value, list) and "tuple" in str(_HINTS[key]):
        return tuple(value)
    return value


def _check_types(config: RunConfig) -> None:
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if not _matches(value, _HINTS[f.name]):
            raise ValueError(
                f"config key {f.name!r} must be {_describe(_HINTS[f.name])}, got {value!r}"
            )


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is Any:
        return True
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return len(args) == len(value) and all(
            _matches(v, a) for v, a in zip(value, args, strict=True)
        )
    if origin is dict:
        return isinstance(value, dict)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    return str(hint).replace("typing.", "").replace("NoneType", "None")
