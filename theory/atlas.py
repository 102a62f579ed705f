"""The atlas: optimizer x invariance kind, each cell decided by running a derivation.

A cell is ``holds`` when the scaled run's updates are proven equal to the unscaled run's (the
update is unchanged; for SGD a task weight is a learning rate instead, which is ``fails`` here:
see the ``*.loss-scale-is-lr`` statements); ``holds-within-bound`` when that fails only through
``eps``: the scaled run is proven to equal the unscaled one with eps mapped as the rule places
it (:attr:`theory.engine.Config.eps_scaling`: ``eps / alpha`` outside a root, ``eps / alpha^2``
added to a quantity quadratic in g, such as Shampoo's factors; deviation bounded as in
``adam.eps.head.deviation-bound``); ``fails`` with a counterexample otherwise.
A hybrid's cell is the worst of the cells of the groups the kind acts on (a common scale acts on
the heads and the backbone).

The levers table (:func:`levers`): per optimizer, what a task weight is on a head and on the
backbone, decided by :func:`theory.engine.lever` at eps = 0: a learning-rate factor ``alpha_t``
(the two levers are one), inert (the learning rate is a lever of its own), or no learning-rate
factor at all (the weight reweights the backbone's mixture ``sum_t alpha_t g_t``).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from mtl.io import atomic_write_text
from theory.algebra import residual
from theory.configs import ATLAS_ROWS, LEVER_OPTIMIZERS, eps_map, without_eps
from theory.engine import KINDS, Config, counterexample, lever, parts, prove, scenario

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


_SEVERITY = ("holds", "holds-within-bound", "fails")


def cell(config: Config, kind: str) -> Cell:
    """Decide one cell by proof, eps-rescaling proof, or counterexample (a hybrid: per part)."""
    if config.backbone is not None:
        decided = [
            (f"{name} ({part.rule})", cell(part, k)) for name, part, k in parts(config, kind)
        ]
        worst = max(decided, key=lambda d: _SEVERITY.index(d[1].verdict))
        if worst[1].verdict == "fails":
            name, failed = worst
            return Cell(
                "fails", f"{name}: {failed.reason}", {"part": name, **failed.counterexample}
            )
        reason = "; ".join(f"{name}: {c.reason}" for name, c in decided)
        return Cell(worst[1].verdict, reason)
    if prove(config, kind).holds:
        return Cell("holds", "proven: updates unchanged")
    if _eps_applies(config, kind) and prove(config, kind, eps_map(config)).holds:
        mapped = "eps/alpha" if config.eps_scaling == 1 else f"eps/alpha^{config.eps_scaling}"
        return Cell("holds-within-bound", f"proven: equals the unscaled run with {mapped}")
    found = None
    if "eps" in config.hp:  # at eps = 0 first: then what differs is not eps
        found = counterexample(without_eps(config), kind)
        reason = "counterexample with eps = 0 (the difference is not eps) at step"
    if found is None:
        found, reason = counterexample(config, kind), "counterexample at step"
    if found is None:
        raise RuntimeError(f"atlas cell {config.label} x {kind}: neither proven nor refuted")
    return Cell("fails", f"{reason} {found['step']}", found)


@lru_cache(maxsize=1)
def atlas() -> dict[str, dict[str, Cell]]:
    """``{optimizer label: {kind: Cell}}`` for every row of the atlas (optimizers, then
    hybrids) and every kind."""
    return {c.label: {kind: cell(c, kind) for kind in KINDS} for c in ATLAS_ROWS}


LEVER_KINDS = ("head-per-task-scale", "backbone-per-task-scale")
LEVER_TITLES = {
    "head-per-task-scale": "task weight on its head",
    "backbone-per-task-scale": "task weights on the backbone",
}
LEVER_LEGEND = {
    "lr x alpha_t": "equivalent levers: the weight alpha_t is the learning-rate factor alpha_t "
    "of that optimizer state (per task state: each its own)",
    "inert": "the weight does nothing there (factor 1; eps aside): a learning rate of that "
    "group is an independent lever",
    "no lr factor": "no constant learning-rate factor reproduces the weight (on the backbone it "
    "reweights the mixture sum_t alpha_t g_t): weight and learning rate are independent levers",
}
"""What each lever cell means; decided at eps = 0 (with eps > 0 a weight also acts on eps as
eps/alpha_t: the invariance table says where)."""


def lever_cell(config: Config, kind: str) -> Cell:
    """One lever cell: the factors :func:`theory.engine.lever` finds, at eps = 0."""
    found = lever(config.with_hp(eps=0) if "eps" in config.hp else config, kind)
    if not found.proof.holds:
        cx = found.counterexample
        factors = [str(c) for c in found.factors]
        return Cell("no lr factor", f"the step-1 factors {factors} fail at step {cx['step']}", cx)
    scales = scenario(kind)[0]
    if all(residual(c, a) == 0 for c, a in zip(found.factors, scales, strict=True)):
        return Cell("lr x alpha_t", "proven: the weighted run is the run at lr x alpha_t")
    if all(residual(c, 1) == 0 for c in found.factors):
        return Cell("inert", "proven: the weighted run is the unweighted run")
    return Cell("lr x " + ", ".join(map(str, found.factors)), "proven with these factors")


@lru_cache(maxsize=1)
def levers() -> dict[str, dict[str, Cell]]:
    """``{optimizer label: {kind: Cell}}`` of the levers table."""
    return {c.label: {k: lever_cell(c, k) for k in LEVER_KINDS} for c in LEVER_OPTIMIZERS}


def to_json(
    table: dict[str, dict[str, Cell]], lever_table: dict[str, dict[str, Cell]] | None = None
) -> dict[str, Any]:
    out = {
        "kinds": list(KINDS),
        "optimizers": list(table),
        "cells": {opt: {k: c.to_json() for k, c in row.items()} for opt, row in table.items()},
    }
    if lever_table is not None:
        out["levers"] = {
            "kinds": list(LEVER_KINDS),
            "optimizers": list(lever_table),
            "cells": {o: {k: c.to_json() for k, c in r.items()} for o, r in lever_table.items()},
        }
    return out


LEGEND = {
    "holds": "invariant, proven: every update unchanged (any eps the rule has included)",
    "holds-within-bound": "invariant at eps = 0, proven; with eps > 0 the scaled run is "
    "proven equal to the unscaled run with eps mapped as the rule places it (eps/alpha where "
    "eps is added outside a root, eps/alpha^2 where it is added to a quantity quadratic in the "
    "gradient, e.g. Shampoo's factors), so it deviates by at most the bound of "
    "adam.eps.head.deviation-bound (negligible while the gradient RMS >> eps/alpha)",
    "fails": "not invariant: a counterexample in concrete numbers (run at eps = 0 where the "
    "rule has an eps, so the difference is not eps)",
}
"""What each verdict of a cell means. The atlas runs every rule with eps > 0, as in practice;
the statements idealise with eps = 0 where their id says so: an atlas cell
``holds-within-bound`` and a statement ``holds`` at eps = 0 say the same thing."""


def tensor_name(shape: tuple[int, ...]) -> str:
    """``(2,)`` -> ``2-vector``, ``(1, 2)`` -> ``1x2 matrix``."""
    return f"{shape[0]}-vector" if len(shape) == 1 else "x".join(map(str, shape)) + " matrix"


def atlas_legend() -> dict[str, str]:
    """:data:`LEGEND`, and the shape of the symbolic tensor each tensor rule is decided on."""
    shaped = [f"{c.label}: {tensor_name(c.shape)}" for c in ATLAS_ROWS if c.shape]
    return {
        **LEGEND,
        "tensor rules": "decided on small symbolic tensors ("
        + ", ".join(shaped)
        + "); each configuration's docstring in theory.configs says why that size suffices",
    }


def _markdown_table(table, kinds, titles, legend) -> list[str]:
    header = "| optimizer | " + " | ".join(titles[k] for k in kinds) + " |"
    rule = "|---" * (len(kinds) + 1) + "|"
    rows = [
        f"| {opt} | " + " | ".join(row[k].verdict for k in kinds) + " |"
        for opt, row in table.items()
    ]
    return [header, rule, *rows, "", *(f"- **{v}**: {m}" for v, m in legend.items())]


def to_markdown(
    table: dict[str, dict[str, Cell]], lever_table: dict[str, dict[str, Cell]] | None = None
) -> str:
    lines = _markdown_table(table, KINDS, KIND_TITLES, atlas_legend())
    if lever_table is not None:
        lines += ["", "Levers (at eps = 0): what a task weight is, per optimizer.", ""]
        lines += _markdown_table(lever_table, LEVER_KINDS, LEVER_TITLES, LEVER_LEGEND)
    return "\n".join(lines) + "\n"


def _html_table(table, kinds, titles, legend, css: str) -> list[str]:
    head = "".join(f"<th>{html.escape(titles[k])}</th>" for k in kinds)
    rows = [
        f"<tr><th>{html.escape(opt)}</th>"
        + "".join(
            f'<td class="{html.escape(row[k].verdict.replace(" ", "-"))}" '
            f'title="{html.escape(row[k].reason)}">{html.escape(row[k].verdict)}</td>'
            for k in kinds
        )
        + "</tr>"
        for opt, row in table.items()
    ]
    items = "".join(
        f"<dt>{html.escape(v)}</dt><dd>{html.escape(m)}</dd>" for v, m in legend.items()
    )
    return [
        f'<table class="{css}">',
        f"<thead><tr><th>optimizer</th>{head}</tr></thead>",
        "<tbody>",
        *rows,
        "</tbody>",
        "</table>",
        f'<dl class="{css}-legend">{items}</dl>',
    ]


def to_html(
    table: dict[str, dict[str, Cell]], lever_table: dict[str, dict[str, Cell]] | None = None
) -> str:
    """``<table>``s (one ``class`` per verdict, the cell's reason as its title), legends."""
    lines = _html_table(table, KINDS, KIND_TITLES, atlas_legend(), "atlas")
    if lever_table is not None:
        lines += _html_table(lever_table, LEVER_KINDS, LEVER_TITLES, LEVER_LEGEND, "levers")
    return "\n".join(lines) + "\n"


_TEX_VERDICT = {"holds": r"\checkmark", "fails": r"$\times$", "holds-within-bound": r"$\approx$"}


def _tex_escape(text: str) -> str:
    return text.replace("\\", r"\textbackslash{}").replace("&", r"\&").replace("_", r"\_")


_TEX_LEVER = {"lr x alpha_t": r"$\alpha_t \eta$", "inert": "--", "no lr factor": r"$\times$"}


def _tex_tabular(
    table: dict[str, dict[str, Cell]],
    kinds: tuple[str, ...],
    titles: dict[str, str],
    symbols: dict[str, str],
    legend: dict[str, str],
) -> list[str]:
    """One ``tabular`` (a row per optimizer, a column per kind; verdicts as ``symbols``, others
    escaped) and its legend as comments."""
    return [
        r"\begin{tabular}{l" + "c" * len(kinds) + "}",
        r"\toprule",
        "optimizer & " + " & ".join(titles[k] for k in kinds) + r" \\",
        r"\midrule",
        *(
            _tex_escape(opt)
            + " & "
            + " & ".join(symbols.get(row[k].verdict, _tex_escape(row[k].verdict)) for k in kinds)
            + r" \\"
            for opt, row in table.items()
        ),
        r"\bottomrule",
        r"\end{tabular}",
        *(f"% {symbols.get(v, v)} ({v}): {m}" for v, m in legend.items()),
    ]


def to_latex(
    table: dict[str, dict[str, Cell]], lever_table: dict[str, dict[str, Cell]] | None = None
) -> str:
    lines = _tex_tabular(table, KINDS, KIND_TITLES, _TEX_VERDICT, atlas_legend())
    if lever_table is not None:
        lever = _tex_tabular(lever_table, LEVER_KINDS, LEVER_TITLES, _TEX_LEVER, LEVER_LEGEND)
        lines += ["", *lever]
    return "\n".join(lines) + "\n"


def write(
    table: dict[str, dict[str, Cell]],
    directory: Path,
    lever_table: dict[str, dict[str, Cell]] | None = None,
) -> list[Path]:
    """Write ``atlas.md``, ``atlas.tex`` and ``atlas.html`` (with the levers table when given)
    into ``directory`` (created if missing)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / "atlas.md", directory / "atlas.tex", directory / "atlas.html"]
    for path, render in zip(paths, (to_markdown, to_latex, to_html), strict=True):
        atomic_write_text(path, render(table, lever_table))
    return paths
