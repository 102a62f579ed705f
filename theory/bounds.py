"""Checking a bound ``|deviation| <= bound`` as residuals that are exactly zero when it holds.

The deviations of the ``holds-within-bound`` statements depend on a positive scale ``a``; the
bounds use ``max``/``min`` of quantities that swap at ``a = 1``. Substituting ``a = 1 + x`` and
``a = 1 / (1 + x)`` with ``x > 0`` covers every ``a != 1`` (at ``a = 1`` both sides are zero)
and lets sympy resolve ``max``/``min`` and ``|.|``; the slack ``bound - |deviation|`` is then
proven nonnegative when its factored form is (all positive symbols). Sampled points give the
same check on concrete numbers. A residual is ``0`` when its case is proven, else
``min(slack, 0)``: zero on numbers where the bound holds, negative where it is violated.
"""

from __future__ import annotations

from collections.abc import Iterable

import sympy

from theory import derivation as D
from theory.derivation import Equation

Expr = sympy.Expr
CASE = sympy.Symbol("x_case", positive=True)
"""``a = 1 + x`` or ``a = 1 / (1 + x)``: the two sides of ``a = 1``."""


def bound_residuals(
    deviation: Expr,
    bound: Expr,
    scale: sympy.Symbol,
    samples: Iterable[tuple[Expr, Expr]] = (),
) -> tuple[Expr, ...]:
    """Residuals of ``|deviation| <= bound``: one per side of ``scale = 1`` (symbolic), one per
    sampled ``(deviation, bound)`` pair of concrete numbers (computed by the caller from the
    rules on sampled gradients)."""
    return bound_derivation(deviation, bound, scale, samples)[0]


def bound_derivation(
    deviation: Expr,
    bound: Expr,
    scale: sympy.Symbol,
    samples: Iterable[tuple[Expr, Expr]] = (),
) -> tuple[tuple[Expr, ...], list[Equation]]:
    """:func:`bound_residuals` and the equations that show them: per side of ``scale = 1`` the
    factored slack ``bound - |deviation|`` (nonnegative when every factor is), per sample the
    two numbers."""
    slack = bound - sympy.Abs(deviation)
    out, equations = [], []
    for case in (1 + CASE, 1 / (1 + CASE)):
        factored = sympy.factor(sympy.cancel(sympy.sympify(slack.subs(scale, case))))
        proven = bool(factored.is_nonnegative)
        out.append(sympy.S.Zero if proven else sympy.Min(factored, 0))
        label = f"bound - |deviation| at {scale} = {case}, x_case > 0, factored"
        if proven:
            equations.append(Equation(label, factored, sympy.S.Zero, ">="))
        else:
            equations.append(
                Equation(f"{label} (not proven nonnegative)", D.name("slack"), factored)
            )
    for i, (dev, bnd) in enumerate(samples, start=1):
        value = sympy.sympify(bnd) - sympy.Abs(sympy.sympify(dev))
        holds = bool(value >= 0)
        out.append(sympy.S.Zero if holds else sympy.Min(value, 0))
        equations.append(
            Equation(
                f"sample {i} of the rule: |deviation| and the bound",
                sympy.Abs(sympy.sympify(dev)),
                sympy.sympify(bnd),
                "<=" if holds else ">=",
            )
        )
    return tuple(out), equations
