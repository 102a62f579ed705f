"""``mtlp``: the command line, a thin dispatcher to each study's own ``cli.main(argv)``."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "theory": ("theory.cli", "derivations of loss-scale invariance: statements, verdicts, atlas"),
    "sim": ("sim.cli", "synthetic multi-task studies (cagrad-toy, invariance-toy, ...)"),
}


def _usage() -> str:
    lines = ["usage: mtlp COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<10} {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"mtlp: unknown command {command!r}; valid: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
