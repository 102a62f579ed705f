"""``mtlp empirical STUDY --scale quick|cpu|full --out DIR``: a registry of the vision studies."""

from __future__ import annotations

import argparse
import importlib
import sys

from empirical.studies import STUDIES


def _usage() -> str:
    lines = ["usage: mtlp empirical STUDY --scale quick|cpu|full --out DIR [OPTIONS]", ""]
    lines += ["studies:", *(f"  {n:<20} {text}" for n, (_, text) in STUDIES.items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the study named by ``argv[0]`` with the remaining arguments; return an exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in STUDIES:
        print(
            f"mtlp empirical: unknown study {name!r}; valid: {', '.join(STUDIES)}", file=sys.stderr
        )
        return 2
    module = importlib.import_module(STUDIES[name][0])
    parser = argparse.ArgumentParser(prog=f"mtlp empirical {name}", description=STUDIES[name][1])
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except (ValueError, FileNotFoundError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
