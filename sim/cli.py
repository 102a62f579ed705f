"""``mtlp sim <study> --out DIR``: a registry of the synthetic studies.

Each study is a module with ``add_arguments(parser)`` and ``run(args) -> int``; it is imported
only when named, so the command line stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

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
}


def _usage() -> str:
    lines = ["usage: mtlp sim STUDY --out DIR [OPTIONS]", "", "studies:"]
    lines += [f"  {name:<18} {text}" for name, (_, text) in STUDIES.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the study named by ``argv[0]`` with the remaining arguments; return an exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in STUDIES:
        print(f"mtlp sim: unknown study {name!r}; valid: {', '.join(STUDIES)}", file=sys.stderr)
        return 2
    module = importlib.import_module(STUDIES[name][0])
    parser = argparse.ArgumentParser(prog=f"mtlp sim {name}", description=STUDIES[name][1])
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except ValueError as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
