"""The run directory: guarded config, status, metrics lines, checkpoints, gradient statistics.

- ``config.json``: the run's :class:`RunConfig` and, under ``environment``, the versions, device
  and git commit of the first start. A folder whose config (environment aside) differs, or that
  holds files but no ``config.json``, is refused (the rule of :func:`mtl.io.prepare_output_dir`).
- ``status.json``: ``state`` (``running`` | ``finished`` | ``failed`` | ``interrupted``: Ctrl-C
  or SIGTERM, resumed by the next start), ``reason``,
  ``heartbeat`` (UTC ISO time, refreshed during training), ``epoch``, ``step``.
- ``metrics.jsonl``: one object per epoch. The checkpoint holds every line written so far and is
  saved before its epoch's line, so on resume the file is rewritten from the checkpoint and never
  holds a line past it.
- ``checkpoint.pt``: written atomically (temporary file + ``os.replace``).
- ``best.pt``: the model's ``state_dict`` at the selected epoch, written atomically whenever the
  selection improves (before that epoch's metrics line), so a later phase can start from it.
- ``grad_stats.jsonl``: one object per measured step; on resume lines past the checkpoint's step
  (and a torn last line) are dropped.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import platform
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from mtl.io import CONFIG_NAME, atomic_write_bytes, atomic_write_text

STATUS = "status.json"
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint.pt"
BEST = "best.json"
GRAD_STATS = "grad_stats.jsonl"
BEST_MODEL = "best.pt"
ENVIRONMENT = "environment"


def environment(device: torch.device) -> dict[str, Any]:
    """Versions, device and (when the code is a git checkout) the commit."""
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(device),
        "platform": platform.platform(),
    }
    if device.type == "cuda":
        env["cuda"] = torch.version.cuda
        env["gpu"] = torch.cuda.get_device_name(device)
    try:
        root = Path(__file__).resolve().parents[2]
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        if commit.returncode == 0:
            env["git_commit"] = commit.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return env


def prepare(run_dir: str | os.PathLike, config: Mapping[str, Any], env: Mapping[str, Any]) -> Path:
    """Create ``run_dir`` for ``config`` or accept it when it holds the same config."""
    out = Path(run_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"run directory {str(out)!r} is a file; pass a folder to --out")
    recorded = out / CONFIG_NAME
    if recorded.exists():
        try:
            previous = json.loads(recorded.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{str(recorded)!r} is not valid JSON ({err}); remove it") from err
        previous.pop(ENVIRONMENT, None)
        current = json.loads(json.dumps(dict(config)))
        if previous != current:
            changed = sorted(
                k for k in set(previous) | set(current) if previous.get(k) != current.get(k)
            )
            raise ValueError(
                f"run directory {str(out)!r} holds a run of a different configuration "
                f"(differs in: {', '.join(changed)}); choose another --out or delete the folder"
            )
        return out
    if out.exists() and any(out.iterdir()):
        raise ValueError(
            f"run directory {str(out)!r} is not empty and has no {CONFIG_NAME}; "
            "choose another --out or empty the folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps({**config, ENVIRONMENT: dict(env)}, indent=2, sort_keys=True)
    atomic_write_text(recorded, text + "\n")
    return out


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def read_status(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / STATUS
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def write_status(
    run_dir: Path, state: str, *, epoch: int, step: int, reason: str | None = None
) -> None:
    status = {"state": state, "reason": reason, "heartbeat": now(), "epoch": epoch, "step": step}
    atomic_write_text(run_dir / STATUS, json.dumps(status, indent=2) + "\n")


def write_json(path: Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=False) + "\n")


def write_metrics(run_dir: Path, lines: list[dict[str, Any]]) -> None:
    """``metrics.jsonl`` with exactly ``lines`` (rewritten atomically)."""
    atomic_write_text(run_dir / METRICS, "".join(json.dumps(line) + "\n" for line in lines))


def save_checkpoint(run_dir: Path, state: Mapping[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(dict(state), buf)
    atomic_write_bytes(run_dir / CHECKPOINT, buf.getvalue())


def save_best_model(run_dir: Path, state_dict: Mapping[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(dict(state_dict), buf)
    atomic_write_bytes(run_dir / BEST_MODEL, buf.getvalue())


def load_best_model(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``best.pt`` state_dict of a finished run directory (a clear error when absent)."""
    path = Path(run_dir) / BEST_MODEL
    if not path.is_file():
        raise ValueError(
            f"{str(path)!r} does not exist: init_from needs a run directory written by the "
            "trainer (config.json, metrics.jsonl, best.pt); train that run first"
        )
    return torch.load(path, map_location="cpu", weights_only=True)


def load_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / CHECKPOINT
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)


def truncate_grad_stats(run_dir: Path, last_step: int) -> None:
    """Keep the complete lines of ``grad_stats.jsonl`` whose step is at most ``last_step``."""
    path = run_dir / GRAD_STATS
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= last_step:
                kept.append(line + "\n")
        except (json.JSONDecodeError, KeyError, TypeError):
            break
    atomic_write_text(path, "".join(kept))


def append_line(path: Path, value: Mapping[str, Any]) -> None:
    with path.open("a") as f:
        f.write(json.dumps(value) + "\n")
