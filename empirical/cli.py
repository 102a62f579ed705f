"""``mtlp empirical STUDY --scale quick|cpu|full --out DIR``: a registry of the vision studies.

Each study module offers ``add_arguments(parser)``, ``record(args)`` (its configuration record,
``config.json`` of its folder) and ``run(args)``. A study folder that is complete for the same
record is not redone; an interrupted one resumes (finished runs are skipped, interrupted runs
continue from their checkpoints).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from empirical.studies import STUDIES
from mtl.io import check_output_dir, completing, is_complete
from mtl.runtime import limit_threads


def _usage() -> str:
    lines = ["usage: mtlp empirical STUDY --scale quick|cpu|full --out DIR [OPTIONS]", ""]
    lines += ["studies:", *(f"  {n:<20} {text}" for n, (_, text) in STUDIES.items())]
    return "\n".join(lines)


def _load(argv: list[str]) -> tuple[ModuleType, argparse.ArgumentParser, Any]:
    name, rest = argv[0], argv[1:]
    if name not in STUDIES:
        raise KeyError(name)
    module = importlib.import_module(STUDIES[name][0])
    parser = argparse.ArgumentParser(prog=f"mtlp empirical {name}", description=STUDIES[name][1])
    module.add_arguments(parser)
    return module, parser, parser.parse_args(rest)


def plan(argv: list[str]) -> list[tuple[Path, dict[str, Any]]]:
    """The folder and configuration record ``main(argv)`` would write (nothing is run)."""
    module, _, args = _load(argv)
    return [] if args.dry_run else [(args.out, module.record(args))]


def main(argv: list[str] | None = None) -> int:
    """Run the study named by ``argv[0]`` with the remaining arguments; return an exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] not in STUDIES:
        print(
            f"mtlp empirical: unknown study {argv[0]!r}; valid: {', '.join(STUDIES)}",
            file=sys.stderr,
        )
        return 2
    module, parser, args = _load(argv)
    try:
        if args.dry_run:
            return int(module.run(args) or 0)
        record = module.record(args)
        check_output_dir(args.out, record)
        if is_complete(args.out, record):
            print(f"{args.out}: complete for this configuration; nothing to do")
            return 0
        with limit_threads(args.threads), completing(args.out, record):
            return int(module.run(args) or 0)
    except (ValueError, FileNotFoundError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
