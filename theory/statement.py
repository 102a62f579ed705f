"""The result of a derivation: one atomic claim, its verdict, and the evidence for it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sympy

from theory.algebra import is_zero
from theory.derivation import Equation

VERDICTS = ("holds", "fails", "holds-within-bound")
TOPICS = {
    "clip": "gradient clipping",
    "amp": "mixed precision",
    "schedule": "learning-rate schedules",
}
"""The topic of a statement, by the first part of its id; any other id: :data:`INVARIANCE`."""
INVARIANCE = "loss-scale invariance"


def topic(statement_id: str) -> str:
    """The statement's topic (:data:`TOPICS`), for the tables that list statements."""
    return TOPICS.get(statement_id.split(".", 1)[0], INVARIANCE)


@dataclass(frozen=True)
class Statement:
    """A claim with a stable ``id`` and its verdict.

    ``holds``: every residual (unrolled steps, then the induction step) is exactly zero.
    ``fails``: ``counterexample`` gives concrete numbers and the two differing updates.
    ``holds-within-bound``: an exact identity (zero residuals) plus ``bound``, a closed form of
    the deviation from exact invariance.
    ``derivation``: the equations that show it (what was compared, the reduced differences, the
    counterexample's numbers, the bound).
    """

    id: str
    claim: str
    verdict: str
    assumptions: tuple[str, ...]
    residuals: tuple[sympy.Expr, ...] = ()
    counterexample: Mapping[str, Any] | None = None
    bound: sympy.Expr | None = None
    derivation: tuple[Equation, ...] = ()

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {self.verdict!r}; valid: {', '.join(VERDICTS)}")
        if self.verdict == "fails" and not self.counterexample:
            raise ValueError(f"statement {self.id!r} fails but carries no counterexample")
        if self.verdict != "fails" and not (
            self.residuals and all(is_zero(r) for r in self.residuals)
        ):
            raise ValueError(f"statement {self.id!r} is not proven: a residual is not zero")
        if self.verdict == "holds-within-bound" and self.bound is None:
            raise ValueError(f"statement {self.id!r} holds within a bound but carries none")

    def to_json(self) -> dict[str, Any]:
        """``{"id", "topic", "claim", "verdict", "assumptions", "counterexample", "derivation"}``
        (plain JSON types; ``derivation``: a list of ``{"label", "latex", "mathml"[, "note"]}``),
        and ``"latex"``: the bound of a ``holds-within-bound`` statement as sympy prints it."""
        claim = self.claim if self.bound is None else f"{self.claim} Bound: {self.bound}."
        record = {
            "id": self.id,
            "topic": topic(self.id),
            "claim": claim,
            "verdict": self.verdict,
            "assumptions": list(self.assumptions),
            "counterexample": None if self.counterexample is None else dict(self.counterexample),
            "derivation": [e.to_json() for e in self.derivation],
        }
        if self.bound is not None:
            record["latex"] = sympy.latex(self.bound)
        return record
