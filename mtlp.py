"""``mtlp``: the command line, a thin dispatcher to each study's own ``cli.main(argv)``.

``mtlp reproduce --out DIR [--quick]`` runs the derivations and every synthetic study in turn,
each into its own folder under ``DIR``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

COMMANDS = {
    "theory": ("theory.cli", "derivations of loss-scale invariance: statements, verdicts, atlas"),
    "sim": ("sim.cli", "synthetic multi-task studies (cagrad-toy, invariance-toy, ...)"),
    "train": ("empirical.training.cli", "train a multi-task vision model (config file + flags)"),
    "reproduce": ("mtlp", "run the derivations and every synthetic study into one folder"),
}


def _usage() -> str:
    lines = ["usage: mtlp COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<10} {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def reproduce(argv: list[str]) -> int:
    """Run ``mtlp theory`` and each ``mtlp sim`` study; stop at the first that fails."""
    from sim.cli import STUDIES

    parser = argparse.ArgumentParser(prog="mtlp reproduce", description=COMMANDS["reproduce"][1])
    parser.add_argument("--out", type=Path, required=True, help="folder for all results")
    parser.add_argument("--quick", action="store_true", help="smoke scale: every study in seconds")
    args = parser.parse_args(argv)
    steps = [("theory", ["--out", str(args.out / "theory")])]
    quick = ["--quick"] if args.quick else []
    steps += [("sim", [name, "--out", str(args.out / "sim" / name), *quick]) for name in STUDIES]
    for command, rest in steps:
        print(f"== mtlp {command} {' '.join(rest)}", flush=True)
        code = main([command, *rest])
        if code:
            return code
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"mtlp: unknown command {command!r}; valid: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    if command == "reproduce":
        return reproduce(rest)
    module = importlib.import_module(COMMANDS[command][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
