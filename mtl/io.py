"""Result files: atomic writes and output folders guarded against mixing configurations.

Every file is written to a temporary name in its folder and moved into place with
``os.replace``, so a reader never sees half a file; it gets the mode the user's umask gives a
new file. A folder records the configuration that produced it in ``config.json``;
:func:`check_output_dir` (no writes) and :func:`prepare_output_dir` refuse a path that is a file
or cannot be written, and a folder that holds the results of another configuration (or unknown
files), before any work starts.

Completion: :func:`completing` wraps the work that fills a folder. It removes the marker
``complete.json`` on entry and writes it last, atomically, when the work returns; so a folder
without the marker is unfinished (interrupted or failed) and :func:`is_complete` tells a rerun
with the same configuration that it may skip the work. An interruption (``KeyboardInterrupt``
or a subclass) leaving the block carries the folder as ``exc.incomplete_folder``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

CONFIG_NAME = "config.json"
COMPLETE_NAME = "complete.json"


def _umask() -> int:
    """The process's umask (read by setting it and restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    The file gets mode ``0o666 & ~umask``, as ``open(path, "w")`` would give it (``mkstemp``
    creates 0600).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_csv(
    path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence[Any]]
) -> Path:
    """A CSV file with a header row; ``None`` cells are written empty."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return atomic_write_text(path, buf.getvalue())


def write_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> Path:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def save_figure(fig: Any, path: str | os.PathLike, **kwargs: Any) -> Path:
    """``fig.savefig`` in the format of ``path``'s suffix, written atomically."""
    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip("."), **kwargs)
    return atomic_write_bytes(path, buf.getvalue())


def _canonical(config: Mapping[str, Any]) -> str:
    return json.dumps(config, sort_keys=True, indent=2)


def config_hash(config: Mapping[str, Any]) -> str:
    """The first 12 hex digits of the SHA-256 of the canonical JSON of ``config``."""
    return hashlib.sha256(_canonical(config).encode("utf-8")).hexdigest()[:12]


def _check_writable(out: Path) -> None:
    """Raise ValueError unless ``out`` is, or can be created as, a writable folder."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"output path {str(out)!r} is a file; pass a folder to --out")
    existing = out
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(
            f"output folder {str(out)!r} cannot be created: {str(existing)!r} is a file"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "written" if existing == out else "created"
        raise ValueError(
            f"output folder {str(out)!r} cannot be {what}: no write permission in "
            f"{str(existing)!r}; choose another --out"
        )


def check_output_dir(out: str | os.PathLike, config: Mapping[str, Any]) -> Path:
    """Check, without writing anything, that :func:`prepare_output_dir` would accept ``out``.

    Raises ValueError if ``out`` is a file or lies under one, cannot be written, holds a
    ``config.json`` of another configuration, or holds files but no ``config.json`` (their
    origin is unknown).
    """
    out = Path(out)
    text = _canonical(config)
    _check_writable(out)
    recorded = out / CONFIG_NAME
    if recorded.exists():
        try:
            previous = json.loads(recorded.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{str(recorded)!r} is not valid JSON ({err}); remove it") from err
        if _canonical(previous) != text:
            changed = sorted(
                k
                for k in set(previous) | set(config)
                if previous.get(k) != json.loads(_canonical(config)).get(k)
            )
            raise ValueError(
                f"output folder {str(out)!r} holds results of a different configuration "
                f"(differs in: {', '.join(changed)}); choose another --out or delete the folder"
            )
    elif out.exists() and any(out.iterdir()):
        raise ValueError(
            f"output folder {str(out)!r} is not empty and has no {CONFIG_NAME}; "
            "choose another --out or empty the folder"
        )
    return out


def prepare_output_dir(out: str | os.PathLike, config: Mapping[str, Any]) -> Path:
    """Create ``out`` for ``config`` or reuse it if it holds results of the same configuration;
    record ``config`` in ``config.json``. Refuses what :func:`check_output_dir` refuses."""
    out = check_output_dir(out, config)
    try:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / CONFIG_NAME, _canonical(config) + "\n")
    except OSError as err:
        raise ValueError(
            f"output folder {str(out)!r} cannot be written ({err.strerror or err}); "
            "choose another --out"
        ) from err
    return out


def is_complete(out: str | os.PathLike, config: Mapping[str, Any]) -> bool:
    """Whether ``out`` holds the finished results of ``config``: its ``complete.json`` names
    ``config``'s hash and every file it lists is present."""
    out = Path(out)
    try:
        marker = json.loads((out / COMPLETE_NAME).read_text())
        recorded = json.loads((out / CONFIG_NAME).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(marker, dict) or _canonical(recorded) != _canonical(config):
        return False
    if marker.get("config_hash") != config_hash(config):
        return False
    return all((out / name).is_file() for name in marker.get("files", []))


def mark_complete(out: str | os.PathLike, config: Mapping[str, Any]) -> Path:
    """Write ``complete.json`` (the config hash and the sorted names of the files in ``out``),
    atomically; call it after the last result file is written."""
    out = Path(out)
    files = sorted(
        p.name
        for p in out.iterdir()
        if p.is_file() and p.name != COMPLETE_NAME and not p.name.endswith(".tmp")
    )
    marker = {"config_hash": config_hash(config), "files": files}
    return atomic_write_text(out / COMPLETE_NAME, json.dumps(marker, indent=2) + "\n")


@contextmanager
def completing(out: str | os.PathLike, config: Mapping[str, Any]) -> Iterator[Path]:
    """Prepare ``out`` for ``config`` (:func:`prepare_output_dir`), mark it unfinished, yield
    it, and mark it complete when the block returns. An exception leaves it unfinished; an
    interruption (``KeyboardInterrupt``) gets the folder as ``incomplete_folder``."""
    folder = prepare_output_dir(out, config)
    (folder / COMPLETE_NAME).unlink(missing_ok=True)
    try:
        yield folder
    except KeyboardInterrupt as exc:
        if getattr(exc, "incomplete_folder", None) is None:
            exc.incomplete_folder = folder
        raise
    mark_complete(folder, config)
