"""Figures of the studies: matplotlib's Agg backend, a footer naming the command and the
configuration hash that made the figure, the same text in the PNG and PDF metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mtl.io import save_figure


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_figure(fig: Any, out: Path, name: str, provenance: str, dpi: int = 110) -> list[Path]:
    """``name.png`` and ``name.pdf`` in ``out``, with ``provenance`` as footer and metadata; the
    figure is closed after."""
    if provenance:
        fig.text(0.005, 0.003, f"made by: {provenance}", fontsize=7, color="0.35", va="bottom")
    png = {"Description": provenance} if provenance else {}
    pdf = {"Subject": provenance, "CreationDate": None} if provenance else {"CreationDate": None}
    written = [
        save_figure(fig, out / f"{name}.png", dpi=dpi, metadata=png),
        save_figure(fig, out / f"{name}.pdf", metadata=pdf),
    ]
    pyplot().close(fig)
    return written
