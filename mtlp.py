"""``mtlp``: the command line, a thin dispatcher to each command's own ``main(argv)``.

``mtlp reproduce --out DIR [--quick]`` runs the derivations and every synthetic study in turn,
each into its own folder under ``DIR``; a rerun skips the steps whose folders are complete and
resumes the rest.

Every command runs inside :func:`mtl.runtime.interruptible`: Ctrl-C or SIGTERM ends it with one
line on stderr (naming the unfinished result folder, when :func:`mtl.io.completing` knows it)
and the exit code 130 or 143, never a traceback. A command module may offer
``plan(argv) -> [(folder, config record)]`` (what it would write, nothing run); ``reproduce``
checks every step's plan before any step runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

COMMANDS = {
    "theory": ("theory.cli", "derivations of loss-scale invariance: statements, verdicts, atlas"),
    "sim": ("sim.cli", "synthetic multi-task studies (cagrad-toy, invariance-toy, ...)"),
    "reproduce": ("mtlp", "run the derivations and every synthetic study into one folder"),
}


def version() -> str:
    """The installed package's version, or ``unknown`` when it runs from a source tree only."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("mtl-paradigms")
    except PackageNotFoundError:
        return "unknown"


def _usage() -> str:
    lines = ["usage: mtlp COMMAND [ARGS...]   (mtlp COMMAND --help: its options)", "", "commands:"]
    lines += [f"  {name:<10} {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "  --version  print the version"]
    return "\n".join(lines)


def _reproduce_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mtlp reproduce", description=COMMANDS["reproduce"][1])
    parser.add_argument("--out", type=Path, required=True, help="folder for all results")
    parser.add_argument("--quick", action="store_true", help="smoke scale: every study in seconds")
    parser.add_argument(
        "--threads", type=int, help="threads for every study (default: each study's own choice)"
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bars (also off when stdout or stderr is not a terminal)",
    )
    return parser


def reproduce_steps(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """``(command, argv)`` of every step, in order."""
    from sim.cli import STUDIES

    steps = [("theory", ["--out", str(args.out / "theory")])]
    extra = ["--quick"] if args.quick else []
    extra += ["--threads", str(args.threads)] if args.threads is not None else []
    extra += ["--no-progress"] if args.no_progress else []
    steps += [("sim", [name, "--out", str(args.out / "sim" / name), *extra]) for name in STUDIES]
    return steps


def reproduce(argv: list[str]) -> int:
    """Check every step's folder, then run ``mtlp theory`` and each ``mtlp sim`` study; stop at
    the first that fails; mark ``--out`` complete after the last."""
    from mtl.io import (
        COMPLETE_NAME,
        check_output_dir,
        is_complete,
        mark_complete,
        prepare_output_dir,
    )

    parser = _reproduce_parser()
    args = parser.parse_args(argv)
    record = {"command": "reproduce", "quick": args.quick}
    steps = reproduce_steps(args)
    try:
        check_output_dir(args.out, record)
        for command, rest in steps:
            for folder, config in importlib.import_module(COMMANDS[command][0]).plan(rest):
                check_output_dir(folder, config)
    except ValueError as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    if is_complete(args.out, record):
        print(f"{args.out}: complete for this configuration; nothing to do")
        return 0
    out = prepare_output_dir(args.out, record)
    (out / COMPLETE_NAME).unlink(missing_ok=True)
    for command, rest in steps:
        print(f"== mtlp {command} {' '.join(rest)}", flush=True)
        code = main([command, *rest], handle_interrupts=False)
        if code:
            return code
    mark_complete(out, record)
    return 0


def _dispatch(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] == "--version":
        print(f"mtlp {version()}")
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"mtlp: unknown command {command!r}; valid: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    if command == "reproduce":
        return reproduce(rest)
    module = importlib.import_module(COMMANDS[command][0])
    return int(module.main(rest) or 0)


def main(argv: list[str] | None = None, handle_interrupts: bool = True) -> int:
    """Run ``mtlp ARGV``; return the exit code. With ``handle_interrupts``, Ctrl-C and SIGTERM
    end it with one line and 130 / 143."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not handle_interrupts:
        return _dispatch(argv)
    from mtl.runtime import exit_code, interruptible, signal_name

    try:
        with interruptible():
            return _dispatch(argv)
    except KeyboardInterrupt as exc:
        folder = getattr(exc, "incomplete_folder", None)
        where = f"; {folder} is incomplete, rerun the same command to resume" if folder else ""
        print(f"\nmtlp: interrupted by {signal_name(exc)}{where}", file=sys.stderr)
        return exit_code(exc)


if __name__ == "__main__":
    sys.exit(main())
