"""``mtlp``: the command line, a thin dispatcher to each command's own ``main(argv)``.

``mtlp reproduce --out DIR [--quick | --scale quick|cpu|full]`` runs the derivations, every
synthetic study and every vision study in turn, each into its own folder under ``DIR``, then
builds the report (``DIR/report/index.html``); a rerun skips the steps whose folders are
complete and resumes the rest.

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
    "train": ("empirical.training.cli", "train a multi-task vision model (config file + flags)"),
    "empirical": ("empirical.cli", "the vision studies (optimizer-sweep, gradient-conflicts, ...)"),
    "sweep": ("empirical.sweep_cli", "status of a sweep, and continuing it (local or SLURM)"),
    "report": ("paper.cli", "the report from stored results: every number beside the paper's"),
    "reproduce": ("mtlp", "theory, every study and the report, into one folder"),
}
SCALES = ("quick", "cpu", "full")


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
    parser.add_argument(
        "--scale",
        choices=SCALES,
        help="quick: smoke scale, minutes on a CPU; cpu (default): the full synthetic studies and "
        "the CPU scale of the vision studies, with intervals (hours); full: the paper's "
        "protocol on the real datasets (GPU, --data-root)",
    )
    parser.add_argument("--quick", action="store_true", help="the same as --scale quick")
    parser.add_argument("--data-root", type=Path, help="real datasets, for --scale full")
    parser.add_argument(
        "--executor", default="local", help="how the vision runs execute (see mtlp sweep run)"
    )
    parser.add_argument(
        "--threads", type=int, help="threads for every study (default: each study's own choice)"
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bars (also off when stdout or stderr is not a terminal)",
    )
    return parser


def _scale(args: argparse.Namespace) -> str:
    if args.quick and args.scale not in (None, "quick"):
        raise ValueError(f"--quick contradicts --scale {args.scale}")
    return "quick" if args.quick else args.scale or "cpu"


def reproduce_steps(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """``(command, argv)`` of every step, in order: the theory, the synthetic studies (smoke
    scale for ``quick``, their full grids otherwise), the vision studies at the scale."""
    from empirical.studies import STUDIES as VISION
    from sim.cli import STUDIES

    scale = _scale(args)
    steps = [("theory", ["--out", str(args.out / "theory")])]
    common = ["--threads", str(args.threads)] if args.threads is not None else []
    common += ["--no-progress"] if args.no_progress else []
    quick = ["--quick"] if scale == "quick" else []
    steps += [
        ("sim", [name, "--out", str(args.out / "sim" / name), *quick, *common]) for name in STUDIES
    ]
    vision = ["--scale", scale, "--executor", args.executor, *common]
    vision += ["--data-root", str(args.data_root)] if args.data_root is not None else []
    steps += [
        ("empirical", [name, "--out", str(args.out / "empirical" / name), *vision])
        for name in VISION
    ]
    return steps


def _provenance(folder: Path, command: str, scale: str) -> None:
    """``provenance.json`` of a finished step: what produced it, where and with what."""
    import json
    import platform
    import time

    import numpy
    import torch

    from mtl.io import atomic_write_text

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    record = {
        "command": command,
        "scale": scale,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "device": device,
        "versions": {
            "mtl-paradigms": version(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": numpy.__version__,
        },
    }
    if folder.is_dir():
        atomic_write_text(folder / "provenance.json", json.dumps(record, indent=1) + "\n")


def reproduce(argv: list[str]) -> int:
    """Check every step's folder, run each step (a complete one is skipped), then build the
    report and print each claim's verdict; mark ``--out`` complete after the last. The exit
    code says whether everything ran, not whether the paper was confirmed."""
    from mtl.io import (
        COMPLETE_NAME,
        check_output_dir,
        is_complete,
        mark_complete,
        prepare_output_dir,
    )

    parser = _reproduce_parser()
    args = parser.parse_args(argv)
    try:
        scale = _scale(args)
        record = {"command": "reproduce", "scale": scale}
        steps = reproduce_steps(args)
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
    for i, (command, rest) in enumerate(steps, 1):
        print(f"== [{i}/{len(steps)}] mtlp {command} {' '.join(rest)}", flush=True)
        code = main([command, *rest], handle_interrupts=False)
        if code:
            return code
        _provenance(Path(rest[rest.index("--out") + 1]), f"mtlp {command} {' '.join(rest)}", scale)
    from paper.report import build, summary_lines

    page = build(out)
    print("== claims and verdicts")
    print("\n".join(summary_lines(out)))
    print(f"report: {page}")
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
