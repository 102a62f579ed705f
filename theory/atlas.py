"""The atlas: optimizer x invariance kind, each cell decided by running a derivation.

A cell is ``holds`` when the scaled run's updates are proven equal to the unscaled run's (the
update is unchanged; for SGD a task weight is a learning rate instead, which is ``fails`` here:
see the ``*.loss-scale-is-lr`` statements); ``holds-within-bound`` when that fails only through
``eps``: the scaled run is proven to equal the unscaled one with ``eps / alpha`` (deviation
bounded as in ``adam.eps.head.deviation-bound``); ``fails`` with a counterexample otherwise.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from mtl.io import atomic_write_text
from theory.configs import ATLAS_OPTIMIZERS, eps_over_scale
from theory.engine import KINDS, Config, counterexample, prove

KIND_TITLES = {
    "common-scale": "common scale",
    "head-per-task-scale": "head, per-task scale",
    "backbone-per-task-scale": "backbone, per-task scale",
}


@dataclass(frozen=True)
class Cell:
    verdict: str
    reason: str
    counterexample: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "reason": self.reason,
            "counterexample": self.counterexample,
        }


def _eps_applies(config: Config, kind: str) -> bool:
    """``eps -> eps / alpha`` needs one scale per optimizer state."""
    return "eps" in config.hp and (config.per_task or kind != "backbone-per-task-scale")


def cell(config: Config, kind: str) -> Cell:
    """Decide one cell by proof, eps-rescaling proof, or counterexample."""
    if prove(config, kind).holds:
        return Cell("holds", "proven: updates unchanged")
    if _eps_applies(config, kind) and prove(config, kind, eps_over_scale).holds:
        return Cell("holds-within-bound", "proven: equals the unscaled run with eps/alpha")
    found = None
    if "eps" in config.hp:  # at eps = 0 first: then what differs is not eps
        found = counterexample(config.with_hp(eps=0), kind)
        reason = "counterexample with eps = 0 (the difference is not eps) at step"
    if found is None:
        found, reason = counterexample(config, kind), "counterexample at step"
    if found is None:
        raise RuntimeError(f"atlas cell {config.label} x {kind}: neither proven nor refuted")
    return Cell("fails", f"{reason} {found['step']}", found)


@lru_cache(maxsize=1)
def atlas() -> dict[str, dict[str, Cell]]:
    """``{optimizer label: {kind: Cell}}`` for every optimizer of the atlas and every kind."""
    return {c.label: {kind: cell(c, kind) for kind in KINDS} for c in ATLAS_OPTIMIZERS}


def to_json(table: dict[str, dict[str, Cell]]) -> dict[str, Any]:
    return {
        "kinds": list(KINDS),
        "optimizers": list(table),
        "cells": {opt: {k: c.to_json() for k, c in row.items()} for opt, row in table.items()},
    }


LEGEND = {
    "holds": "invariant, proven: every update unchanged (any eps the rule has included)",
    "holds-within-bound": "invariant at eps = 0, proven; with eps > 0 the scaled run is "
    "proven equal to the unscaled run with eps/alpha, so it deviates by at most the bound of "
    "adam.eps.head.deviation-bound (negligible while the gradient RMS >> eps/alpha)",
    "fails": "not invariant: a counterexample in concrete numbers (run at eps = 0 where the "
    "rule has an eps, so the difference is not eps)",
}
"""What each verdict of a cell means. The atlas runs every rule with eps > 0, as in practice;
the statements idealise with eps = 0 where their id says so: an atlas cell
``holds-within-bound`` and a statement ``holds`` at eps = 0 say the same thing."""


def to_markdown(table: dict[str, dict[str, Cell]]) -> str:
    header = "| optimizer | " + " | ".join(KIND_TITLES[k] for k in KINDS) + " |"
    rule = "|---" * (len(KINDS) + 1) + "|"
    rows = [
        f"| {opt} | " + " | ".join(row[k].verdict for k in KINDS) + " |"
        for opt, row in table.items()
    ]
    legend = [f"- **{verdict}**: {meaning}" for verdict, meaning in LEGEND.items()]
    return "\n".join([header, rule, *rows, "", *legend]) + "\n"


def to_html(table: dict[str, dict[str, Cell]]) -> str:
    """A ``<table>`` (one ``class`` per verdict, the cell's reason as its title) and the legend."""
    head = "".join(f"<th>{html.escape(KIND_TITLES[k])}</th>" for k in KINDS)
    rows = [
        f"<tr><th>{html.escape(opt)}</th>"
        + "".join(
            f'<td class="{row[k].verdict}" title="{html.escape(row[k].reason)}">'
            f"{row[k].verdict}</td>"
            for k in KINDS
        )
        + "</tr>"
        for opt, row in table.items()
    ]
    legend = "".join(
        f"<dt>{html.escape(v)}</dt><dd>{html.escape(m)}</dd>" for v, m in LEGEND.items()
    )
    return (
        "\n".join(
            [
                '<table class="atlas">',
                f"<thead><tr><th>optimizer</th>{head}</tr></thead>",
                "<tbody>",
                *rows,
                "</tbody>",
                "</table>",
                f'<dl class="atlas-legend">{legend}</dl>',
            ]
        )
        + "\n"
    )


_TEX_VERDICT = {"holds": r"\checkmark", "fails": r"$\times$", "holds-within-bound": r"$\approx$"}


def _tex_escape(text: str) -> str:
    return text.replace("\\", r"\textbackslash{}").replace("&", r"\&").replace("_", r"\_")


def to_latex(table: dict[str, dict[str, Cell]]) -> str:
    lines = [
        r"\begin{tabular}{l" + "c" * len(KINDS) + "}",
        r"\toprule",
        "optimizer & " + " & ".join(KIND_TITLES[k] for k in KINDS) + r" \\",
        r"\midrule",
        *(
            _tex_escape(opt)
            + " & "
            + " & ".join(_TEX_VERDICT[row[k].verdict] for k in KINDS)
            + r" \\"
            for opt, row in table.items()
        ),
        r"\bottomrule",
        r"\end{tabular}",
        *(f"% {_TEX_VERDICT[v]} ({v}): {m}" for v, m in LEGEND.items()),
    ]
    return "\n".join(lines) + "\n"


def write(table: dict[str, dict[str, Cell]], directory: Path) -> list[Path]:
    """Write ``atlas.md``, ``atlas.tex`` and ``atlas.html`` into ``directory`` (created if
    missing)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / "atlas.md", directory / "atlas.tex", directory / "atlas.html"]
    for path, render in zip(paths, (to_markdown, to_latex, to_html), strict=True):
        atomic_write_text(path, render(table))
    return paths
