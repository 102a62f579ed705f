"""Result files: atomic writes and output folders guarded against mixing configurations.

Every file is written to a temporary name in its folder and moved into place with
``os.replace``, so a reader never sees half a file. A folder records the configuration that
produced it in ``config.json``; :func:`prepare_output_dir` refuses a folder that holds the
results of another configuration (or unknown files) instead of overwriting them.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

CONFIG_NAME = "config.json"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
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


def prepare_output_dir(out: str | os.PathLike, config: Mapping[str, Any]) -> Path:
    """Create ``out`` for ``config`` or reuse it if it holds results of the same configuration.

    Raises ValueError if ``out`` is a file, holds a ``config.json`` of another configuration, or
    holds files but no ``config.json`` (their origin is unknown).
    """
    out = Path(out)
    text = _canonical(config)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output path {str(out)!r} is a file; pass a folder to --out")
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
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(recorded, text + "\n")
    return out
