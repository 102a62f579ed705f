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

Expr = sympy.Expr
CASE = sympy.Symbol("x_case", positive=True)
"""``a = 1 + x`` or ``a = 1 / (1 + x)``: the two sides of ``a = 1``."""


def _slack_residual(slack: Expr) -> Expr:
    slack = sympy.factor(sympy.cancel(sympy.sympify(slack)))
    return sympy.S.Zero if slack.is_nonnegative else sympy.Min(slack, 0)


def bound_residuals(
    deviation: Expr,
    bound: Expr,
    scale: sympy.Symbol,
    samples: Iterable[tuple[Expr, Expr]] = (),
) -> tuple[Expr, ...]:
    """Residuals of ``|deviation| <= bound``: one per side of ``scale = 1`` (symbolic), one per
    sampled ``(deviation, bound)`` pair of concrete numbers (computed by the caller from the
    rules on sampled gradients)."""
    slack = bound - sympy.Abs(deviation)
    out = [_slack_residual(slack.subs(scale, case)) for case in (1 + CASE, 1 / (1 + CASE))]
    for dev, bnd in samples:
        value = sympy.sympify(bnd) - sympy.Abs(sympy.sympify(dev))
        out.append(sympy.S.Zero if bool(value >= 0) else sympy.Min(value, 0))
    return tuple(out)
