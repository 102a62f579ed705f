"""``mtlp sim <study> --out DIR``: a registry of the synthetic studies.

Each study is a module with ``NAME``, ``THREADS`` (the thread count that suits its tensor sizes),
``add_arguments(parser)`` (its own options), ``config_from_args(args) -> Config`` (a frozen
dataclass, recorded as ``config.json``) and ``run(config, out, *, progress, provenance) -> str``
(writes the results into ``out`` and returns the text to print). It is imported only when named,
so the command line stays fast. This module adds the options every study shares (``--out``,
``--threads``, ``--no-progress``), skips a study whose folder is complete for the same
configuration, and marks the folder complete only after the study returns (:mod:`mtl.io`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import asdict
from pathlib import Path
from types import ModuleType
from typing import Any

from mtl.io import completing, config_hash, is_complete
from mtl.runtime import limit_threads, progress_enabled

STUDIES: dict[str, tuple[str, str]] = {
    "cagrad-toy": (
        "sim.studies.cagrad_toy",
        "iterations to the global minimum of the CAGrad 2-D toy (Table A3, Fig. 1)",
    ),
    "invariance-toy": (
        "sim.studies.invariance_toy",
        "loss-scale invariance of SGD, Adam, UW-O and per-task Adam on the A2 toy (Fig. A1, A2)",
    ),
    "loss-scale-sweep": (
        "sim.studies.loss_scale_sweep",
        "loss-scale ratio x optimizer x learning rate x seed on the quadratic family",
    ),
    "conflict-sim": (
        "sim.studies.conflict_sim",
        "inter-task vs inter-sample gradient statistics with known relatedness and noise",
    ),
    "capacity": (
        "sim.studies.capacity",
        "task weights vs head learning rates vs the split point on the exact Pareto front",
    ),
}
RUN_ONLY = ("--out", "--threads", "--no-progress")
"""Options that do not change a study's results (left out of the recorded command)."""


def _usage() -> str:
    lines = ["usage: mtlp sim STUDY --out DIR [OPTIONS]", "", "studies:"]
    lines += [f"  {name:<18} {text}" for name, (_, text) in STUDIES.items()]
    lines += ["", "mtlp sim STUDY --help lists the options of one study."]
    return "\n".join(lines)


def _parser(name: str, module: ModuleType) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"mtlp sim {name}", description=STUDIES[name][1])
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument(
        "--threads",
        type=int,
        default=module.THREADS,
        help=f"torch and BLAS threads while the study runs (default {module.THREADS})",
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (also off when stdout or stderr is not a terminal)",
    )
    module.add_arguments(parser)
    return parser


def command_line(name: str, argv: list[str]) -> str:
    """``mtlp sim NAME ...`` with the options that change results only (for figure captions)."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        flag = arg.split("=", 1)[0]
        if flag in RUN_ONLY:
            skip = "=" not in arg and flag != "--no-progress"
            continue
        kept.append(arg)
    return " ".join(["mtlp", "sim", name, *kept])


def _load(argv: list[str]) -> tuple[str, ModuleType, argparse.ArgumentParser, Any]:
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(STUDIES[name][0])
    parser = _parser(name, module)
    return name, module, parser, parser.parse_args(rest)


def record(name: str, config: Any) -> dict[str, Any]:
    """What ``config.json`` holds for a study's configuration."""
    return {"study": name, **asdict(config)}


def plan(argv: list[str]) -> list[tuple[Path, dict[str, Any]]]:
    """The folder and configuration record ``main(argv)`` would write (nothing is run or
    written); ValueError on a bad configuration."""
    name, module, _, args = _load(argv)
    return [(args.out, record(name, module.config_from_args(args)))]


def main(argv: list[str] | None = None) -> int:
    """Run the study named by ``argv[0]`` with the remaining arguments; return an exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] not in STUDIES:
        print(f"mtlp sim: unknown study {argv[0]!r}; valid: {', '.join(STUDIES)}", file=sys.stderr)
        return 2
    name, module, parser, args = _load(argv)
    try:
        config = module.config_from_args(args)
        rec = record(name, config)
        provenance = f"{command_line(name, argv[1:])} (config {config_hash(rec)})"
        if is_complete(args.out, rec):
            print(f"{args.out}: complete for this configuration; nothing to do")
            return 0
        with limit_threads(args.threads), completing(args.out, rec) as out:
            text = module.run(
                config, out, progress=progress_enabled(args.no_progress), provenance=provenance
            )
    except ValueError as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    print(text)
    print(f"results in {out}")
    return 0
