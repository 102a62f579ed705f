"""Derivations of loss-scale invariance as code, on the update rules of :mod:`mtl.optim`.

Each statement (:func:`statements`) is one claim with a stable id and a verdict: ``holds`` (a
proof: residuals that reduce to exactly zero, for n unrolled steps and the induction step),
``fails`` (a counterexample in concrete numbers) or ``holds-within-bound`` (an exact identity
plus a closed-form bound); each carries its derivation (labelled equations,
:mod:`theory.derivation`). Head and backbone statements hold for T tasks (:mod:`theory.tasks`:
sums over a symbolic T, else each T in 2..5); :mod:`theory.clipping`, :mod:`theory.precision`
and :mod:`theory.schedules` add gradient clipping, mixed precision and learning-rate schedules.
:func:`theory.atlas.atlas` tabulates optimizer x invariance kind (two tasks; hybrids too: one
rule on the heads, another on the backbone); :func:`theory.atlas.levers` tabulates, per
optimizer, whether a task weight is a learning-rate factor on a head and on the backbone
(:func:`theory.engine.lever`).
"""

from theory import atlas
from theory.engine import KINDS, Config, Proof, counterexample, prove
from theory.statement import VERDICTS, Statement
from theory.statements import get, statements

__all__ = [
    "KINDS",
    "VERDICTS",
    "Config",
    "Proof",
    "Statement",
    "atlas",
    "counterexample",
    "get",
    "prove",
    "statements",
]
