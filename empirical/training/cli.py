"""``mtlp train``: one training run from a config file and command-line overrides.

    mtlp train --config FILE [--FIELD VALUE ...] [--set KEY=VALUE ...] --out DIR [--no-progress]

Every :class:`RunConfig` field has a flag (``--lr 1e-3``, ``--batch-size 16``, ``--tasks
segmentation,depth``, ``--amp`` / ``--no-amp``; a dict field takes a TOML inline table such as
``--dataset-options '{size = [32, 32]}'``). Precedence: defaults < the file < flags < ``--set``.
The exit status is 0 when the run finished, 1 when it failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from pathlib import Path
from typing import Any

from empirical.training.config import RunConfig, field_names, load, parse_override


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _kind(hint: Any) -> str:
    text = str(hint)
    if hint is bool:
        return "bool"
    if "dict" in text:
        return "dict"
    if "tuple" in text:
        return "tuple"
    return "value"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mtlp train",
        description="Train a multi-task vision model (see RunConfig for every field).",
    )
    parser.add_argument("--config", type=Path, help="a .toml, .yaml or .json file of fields")
    parser.add_argument("--out", type=Path, required=True, help="the run directory")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override any field"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    hints = typing.get_type_hints(RunConfig)
    defaults = RunConfig().as_dict()
    for f in dataclasses.fields(RunConfig):
        kind = _kind(hints[f.name])
        text = f"default: {defaults[f.name]!r}"
        if kind == "bool":
            parser.add_argument(
                _flag(f.name),
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=text,
            )
        else:
            metavar = {"dict": "TABLE", "tuple": "A,B,..."}.get(kind, "VALUE")
            parser.add_argument(
                _flag(f.name), dest=f.name, default=None, metavar=metavar, help=text
            )
    return parser


def _value(name: str, raw: str, kind: str) -> Any:
    if kind == "tuple":
        parts = [p.strip() for p in raw.split(",") if p.strip()]
        return [parse_override(f"{name}={p}")[1] for p in parts]
    return parse_override(f"{name}={raw}")[1]


def config_from_args(args: argparse.Namespace) -> RunConfig:
    hints = typing.get_type_hints(RunConfig)
    values = {
        name: _value(name, getattr(args, name), _kind(hints[name]))
        if isinstance(getattr(args, name), str)
        else getattr(args, name)
        for name in field_names()
        if getattr(args, name) is not None
    }
    return load(args.config, args.set, values)


def main(argv: list[str] | None = None) -> int:
    from empirical.training.loop import run

    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as err:
        print(f"mtlp train: {err}", file=sys.stderr)
        return 2
    progress = False if args.no_progress else None
    try:
        state = run(config, args.out, progress=progress)
    except ValueError as err:
        print(f"mtlp train: {err}", file=sys.stderr)
        return 2
    print(f"mtlp train: {state} ({args.out})")
    return 0 if state == "finished" else 1
