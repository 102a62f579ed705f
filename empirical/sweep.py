"""Sweeps: a list of run configurations, each run identified by a hash of its configuration.

A sweep folder holds ``sweep.json`` (the sweep's name and every run's id and configuration) and
one run directory per run under ``runs/<id>/``, written by the trainer (``config.json``,
``metrics.jsonl``, ``checkpoint.pt``, ``status.json``, ``best.json``). Running a sweep again skips
finished runs and resumes the others from their checkpoints; a run whose ``status.json`` says
``running`` but whose heartbeat is older than ``stale_after`` seconds was killed and counts as
resumable. Runs are executed in this process (``local``), in N worker processes
(``processes``), or as a SLURM job array through submitit (``slurm``; ``submitit-local`` is
submitit's local executor, for testing the same path without a cluster). Preempted or timed-out
SLURM jobs are requeued by submitit and resume from their checkpoints.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from mtl.io import atomic_write_text

SWEEP_FILE = "sweep.json"
RUNS_DIR = "runs"
STATUS_FILE = "status.json"
STATES = ("pending", "running", "stale", "interrupted", "finished", "failed")
EXECUTORS = ("local", "processes", "slurm", "submitit-local")
DEFAULT_RUNNER = "empirical.training:run"
DEFAULT_STALE_AFTER = 600.0


def run_id(config: Mapping[str, Any]) -> str:
    """The first 12 hex digits of the SHA-256 of the configuration's canonical JSON."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class Run:
    id: str
    config: dict[str, Any]
    directory: Path


@dataclass(frozen=True)
class RunState:
    state: str
    reason: str | None = None


def write_sweep(root: str | Path, name: str, configs: Sequence[Mapping[str, Any]]) -> list[Run]:
    """Record the sweep in ``root/sweep.json`` and return its runs.

    A folder that already holds a sweep of another name or other runs is refused, so two sweeps
    never share run directories by accident; the same sweep written again is a no-op.
    """
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise ValueError(f"sweep folder {str(root)!r} is a file; pass a folder")
    entries = [{"id": run_id(c), "config": dict(c)} for c in configs]
    ids = [e["id"] for e in entries]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"sweep {name!r} lists the same configuration twice (ids {duplicates})")
    record = {"name": name, "runs": entries}
    path = root / SWEEP_FILE
    if path.exists():
        previous = json.loads(path.read_text())
        if previous.get("name") != name or [e["id"] for e in previous.get("runs", [])] != ids:
            raise ValueError(
                f"{str(root)!r} holds another sweep ({previous.get('name')!r}, "
                f"{len(previous.get('runs', []))} runs); choose another folder or delete it"
            )
    else:
        root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True) + "\n")
    return _runs(root, entries)


def read_sweep(root: str | Path) -> tuple[str, list[Run]]:
    """The name and runs of the sweep recorded in ``root``."""
    path = Path(root) / SWEEP_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"no sweep in {str(root)!r}: expected {SWEEP_FILE} written by `mtlp empirical STUDY`"
        )
    record = json.loads(path.read_text())
    return record["name"], _runs(Path(root), record["runs"])


def _runs(root: Path, entries: Iterable[Mapping[str, Any]]) -> list[Run]:
    return [Run(e["id"], dict(e["config"]), root / RUNS_DIR / e["id"]) for e in entries]


def run_state(
    run_dir: str | Path, *, stale_after: float = DEFAULT_STALE_AFTER, now: float | None = None
) -> RunState:
    """``pending`` (never started), ``running``, ``stale`` (heartbeat too old), ``interrupted``
    (Ctrl-C or SIGTERM, e.g. a preempted job), ``finished``, ``failed`` (with the recorded
    reason), read from the run's ``status.json``."""
    path = Path(run_dir) / STATUS_FILE
    if not path.is_file():
        return RunState("pending")
    try:
        status = json.loads(path.read_text())
    except json.JSONDecodeError:
        return RunState("stale", f"unreadable {STATUS_FILE}")
    state = status.get("state")
    if state == "running":
        age = (time.time() if now is None else now) - _timestamp(status.get("heartbeat"))
        if age > stale_after:
            return RunState("stale", f"no heartbeat for {age:.0f} s")
        return RunState("running")
    if state in ("finished", "failed", "interrupted"):
        return RunState(state, status.get("reason"))
    return RunState("stale", f"unknown state {state!r}")


def _timestamp(value: Any) -> float:
    """Seconds since the epoch of a heartbeat: a number, or an ISO 8601 time as the trainer
    writes it; anything else counts as long ago."""
    if isinstance(value, int | float):
        return float(value)
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return 0.0


def parse_filters(items: Sequence[str]) -> dict[str, list[str]]:
    """``["method=ew,pcgrad", "lr=0.001"]`` -> ``{"method": ["ew", "pcgrad"], "lr": ["0.001"]}``."""
    filters: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise ValueError(f"filter {item!r} is not KEY=VALUE[,VALUE...] (e.g. method=ew)")
        filters.setdefault(key, []).extend(values.split(","))
    return filters


def select(runs: Sequence[Run], filters: Mapping[str, Sequence[str]]) -> list[Run]:
    """The runs whose configuration matches every filter (numbers compare as numbers)."""
    keep = select_configs([r.config for r in runs], filters)
    return [r for r, kept in zip(runs, keep, strict=True) if kept]


def select_configs(
    configs: Sequence[Mapping[str, Any]], filters: Mapping[str, Sequence[str]]
) -> list[bool]:
    """Per configuration: whether it matches every filter; a key no configuration has is an
    error listing the keys there are."""
    if not filters:
        return [True] * len(configs)
    known = set().union(*configs) if configs else set()
    unknown = sorted(set(filters) - known)
    if unknown:
        raise ValueError(
            f"unknown filter key(s) {unknown}; configuration keys: {', '.join(sorted(known))}"
        )
    return [all(_matches(c.get(k), v) for k, v in filters.items()) for c in configs]


def _matches(value: Any, wanted: Sequence[str]) -> bool:
    for w in wanted:
        if str(value) == w:
            return True
        try:
            if float(value) == float(w):
                return True
        except (TypeError, ValueError):
            pass
    return False


def to_do(runs: Sequence[Run], *, stale_after: float = DEFAULT_STALE_AFTER) -> list[Run]:
    """The runs to start or resume: pending, stale or interrupted; finished, failed and live
    running ones are left alone (rerun a failed run by deleting its folder)."""
    resumable = ("pending", "stale", "interrupted")
    return [r for r in runs if run_state(r.directory, stale_after=stale_after).state in resumable]


def resolve_runner(spec: str) -> Callable[[dict[str, Any], Path], str]:
    """``"module:function"`` -> the function; it is called as ``function(config, run_dir)``."""
    module, sep, name = spec.partition(":")
    if not sep:
        raise ValueError(f"runner {spec!r} is not of the form 'module:function'")
    return getattr(importlib.import_module(module), name)


def execute_run(runner: str, config: dict[str, Any], run_dir: str) -> str:
    """One run in this process; the unit of work of every executor (picklable by design)."""
    return resolve_runner(runner)(config, Path(run_dir))


try:  # submitit is a dependency, but keep the module importable for a clear error below
    from submitit.helpers import Checkpointable as _Checkpointable
except ImportError:  # pragma: no cover
    _Checkpointable = object  # type: ignore[assignment,misc]


class SlurmRun(_Checkpointable):  # type: ignore[misc,valid-type]
    """A run as a submitit job: on preemption or timeout submitit calls ``checkpoint``, which
    resubmits the same call; the trainer then resumes from the run's last checkpoint."""

    def __call__(self, runner: str, config: dict[str, Any], run_dir: str) -> str:
        return execute_run(runner, config, run_dir)


def execute(
    runs: Sequence[Run],
    *,
    executor: str = "local",
    processes: int = 1,
    runner: str = DEFAULT_RUNNER,
    slurm: Mapping[str, Any] | None = None,
    submitit_folder: str | Path | None = None,
    progress: Callable[[Run, str], None] | None = None,
) -> dict[str, str]:
    """Start or resume ``runs``; returns run id -> final state as the runner reported it.

    ``slurm`` holds submitit's parameters (e.g. ``slurm_partition``, ``timeout_min``,
    ``gpus_per_node``, ``slurm_array_parallelism``); one GPU per run by default. Interrupted
    (Ctrl-C, SIGTERM), the ``processes`` executor starts no further run; the runs in its
    workers end as their own signal decides (Ctrl-C reaches them too), a later call resumes.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; valid executors: {', '.join(EXECUTORS)}")
    for run in runs:
        run.directory.mkdir(parents=True, exist_ok=True)
    if executor == "local":
        results = {}
        for run in runs:
            results[run.id] = execute_run(runner, run.config, str(run.directory))
            if progress:
                progress(run, results[run.id])
        return results
    if executor == "processes":
        if processes < 1:
            raise ValueError(f"processes must be >= 1, got {processes}")
        threads = worker_threads(processes)
        with ProcessPoolExecutor(
            max_workers=processes,
            mp_context=get_context("spawn"),
            initializer=_limit_worker_threads,
            initargs=(threads,),
        ) as pool:
            futures = {
                r.id: pool.submit(execute_run, runner, r.config, str(r.directory)) for r in runs
            }
            try:
                return {i: f.result() for i, f in futures.items()}
            except KeyboardInterrupt:  # Ctrl-C or SIGTERM: start nothing more
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    return _submitit(runs, executor, runner, dict(slurm or {}), submitit_folder)


def worker_threads(processes: int) -> int:
    """Threads of each of ``processes`` workers: this process's torch thread count (the
    ``--threads`` budget, or torch's default) shared out, at least one each, so that the
    workers never oversubscribe the cores (small models slow down by 10x and more then)."""
    import torch

    return max(1, torch.get_num_threads() // processes)


def _limit_worker_threads(threads: int) -> None:
    """A worker's initializer: ``threads`` torch intra-op and BLAS/OpenMP threads."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(limits=threads)


def _submitit(runs, executor, runner, parameters, folder) -> dict[str, str]:
    import submitit

    if not runs:
        return {}
    folder = Path(folder) if folder is not None else runs[0].directory.parent.parent / "submitit"
    if executor == "submitit-local":
        ex = submitit.AutoExecutor(folder=folder, cluster="local")
        parameters.pop("gpus_per_node", None)
    else:
        ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
        parameters.setdefault("gpus_per_node", 1)
    parameters.setdefault("timeout_min", 24 * 60)
    ex.update_parameters(**parameters)
    job = SlurmRun()
    jobs = ex.map_array(
        job,
        [runner] * len(runs),
        [r.config for r in runs],
        [str(r.directory) for r in runs],
    )
    return {r.id: j.result() for r, j in zip(runs, jobs, strict=True)}


def status_table(runs: Sequence[Run], *, stale_after: float = DEFAULT_STALE_AFTER) -> dict:
    """Counts per state and the failure reasons, for ``mtlp sweep status``."""
    counts = dict.fromkeys(STATES, 0)
    failures: list[tuple[str, str | None]] = []
    for run in runs:
        state = run_state(run.directory, stale_after=stale_after)
        counts[state.state] += 1
        if state.state in ("failed", "stale", "interrupted"):
            failures.append((run.id, f"{state.state}: {state.reason}"))
    return {"counts": counts, "problems": failures, "total": len(runs)}


__all__ = [
    "DEFAULT_RUNNER",
    "EXECUTORS",
    "STATES",
    "Run",
    "RunState",
    "SlurmRun",
    "execute",
    "execute_run",
    "parse_filters",
    "read_sweep",
    "resolve_runner",
    "run_id",
    "run_state",
    "select",
    "status_table",
    "to_do",
    "write_sweep",
]
