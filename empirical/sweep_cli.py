"""``mtlp sweep status DIR`` and ``mtlp sweep run DIR``: inspect and continue a recorded sweep
(``status`` also takes a study's folder: every sweep below it).

``run`` starts the pending runs and resumes the stale ones of the sweep recorded in ``DIR``
(``mtlp empirical STUDY`` records it), narrowed by ``--where KEY=VALUE[,VALUE...]``; finished
runs are never redone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from empirical.sweep import (
    DEFAULT_STALE_AFTER,
    EXECUTORS,
    SWEEP_FILE,
    execute,
    parse_filters,
    read_sweep,
    select,
    status_table,
    to_do,
)


def add_execution_arguments(parser: argparse.ArgumentParser) -> None:
    """The options shared by every command that executes runs of a sweep."""
    parser.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="KEY=VALUE[,VALUE]",
        help="only runs whose configuration matches (repeatable), e.g. --where method=ew,pcgrad",
    )
    parser.add_argument("--executor", choices=EXECUTORS, default="local")
    parser.add_argument("--processes", type=int, default=1, help="workers of --executor processes")
    parser.add_argument("--slurm-partition", help="SLURM partition (--executor slurm)")
    parser.add_argument("--slurm-timeout-min", type=int, default=24 * 60)
    parser.add_argument("--slurm-array-parallelism", type=int, default=64)
    parser.add_argument(
        "--stale-after",
        type=float,
        default=DEFAULT_STALE_AFTER,
        help="seconds without heartbeat after which a 'running' run counts as killed",
    )


def slurm_parameters(args: argparse.Namespace) -> dict:
    params = {
        "timeout_min": args.slurm_timeout_min,
        "slurm_array_parallelism": args.slurm_array_parallelism,
    }
    if args.slurm_partition:
        params["slurm_partition"] = args.slurm_partition
    return params


def run_sweep(args: argparse.Namespace, root) -> int:
    """Execute what is left of the sweep in ``root``; exit code 1 when a run failed."""
    _, runs = read_sweep(root)
    chosen = to_do(select(runs, parse_filters(args.where)), stale_after=args.stale_after)
    print(f"{len(chosen)} run(s) to start or resume", flush=True)
    results = execute(
        chosen,
        executor=args.executor,
        processes=args.processes,
        slurm=slurm_parameters(args),
        progress=lambda run, state: print(f"{run.id} {state}", flush=True),
    )
    return int(any(state != "finished" for state in results.values()))


def print_status(root, stale_after: float) -> None:
    """The status of the sweep in ``root`` or, given a study's folder, of every sweep below it."""
    root = Path(root)
    found = (
        [root]
        if (root / SWEEP_FILE).is_file()
        else sorted(p.parent for p in root.rglob(SWEEP_FILE))
    )
    for folder in found or [root]:  # none: read_sweep names the missing file
        name, runs = read_sweep(folder)
        table = status_table(runs, stale_after=stale_after)
        counts = ", ".join(f"{k} {v}" for k, v in table["counts"].items())
        where = "" if folder == root else f" ({folder.relative_to(root)})"
        print(f"sweep {name}{where}: {table['total']} runs: {counts}")
        for run_id, reason in table["problems"]:
            print(f"  {run_id}: {reason}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mtlp sweep", description=__doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    status = verbs.add_parser("status", help="done / running / failed / pending, with reasons")
    status.add_argument("dir")
    status.add_argument("--stale-after", type=float, default=DEFAULT_STALE_AFTER)
    run = verbs.add_parser("run", help="start pending and resume interrupted runs")
    run.add_argument("dir")
    add_execution_arguments(run)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.verb == "status":
            print_status(args.dir, args.stale_after)
            return 0
        return run_sweep(args, args.dir)
    except (ValueError, FileNotFoundError) as err:
        parser.exit(2, f"mtlp sweep: error: {err}\n")
