"""Targeted simplification: decide that an identity's residual is exactly zero, cheaply.

All derivations here produce rational expressions in gradients, hyperparameters and scales,
with square roots (Adam's denominator) and signs (signSGD). A positive scale hidden inside a
sum, ``sqrt(a^2 x + a^2 y)`` or ``sign(a x + a y)``, only cancels once the sum is factored, so
:func:`normalize` pulls common factors out of every sum, root and sign bottom-up
(``sympy.factor_terms``) and lets sympy's automatic rules (``sqrt(a^2 u) = a sqrt(u)`` for
``a > 0``, ``sign(a u) = sign(u)``) do the rest. :func:`residual` then cancels the
difference, unless a generic point already shows it is nonzero, and tries ``sympy.simplify``
only on request (``deep``) when cancelling leaves something that is not plainly nonzero.
"""

from __future__ import annotations

import random

import sympy

Expr = sympy.Expr


def normalize(expr: Expr) -> Expr:
    """``expr`` with the common factors of every sum, power base and sign/abs argument out."""
    expr = sympy.sympify(expr)
    if expr.is_Atom:
        return expr
    expr = expr.func(*(normalize(arg) for arg in expr.args))
    if expr.is_Pow:
        return sympy.Pow(sympy.factor_terms(expr.base), expr.exp)
    if expr.is_Add:
        return sympy.factor_terms(expr)
    if isinstance(expr, (sympy.sign, sympy.Abs)):
        return expr.func(sympy.factor_terms(expr.args[0]))
    return expr


def residual(lhs: Expr, rhs: Expr, deep: bool = False) -> Expr:
    """``lhs - rhs`` reduced; exactly ``0`` when the identity ``lhs = rhs`` is proven.

    ``deep`` adds ``sympy.simplify`` (slow on large expressions) when the cheap reduction leaves
    something that is not plainly nonzero."""
    diff = normalize(sympy.sympify(lhs) - sympy.sympify(rhs))
    if diff == 0 or _clearly_nonzero(diff):
        return diff
    diff = sympy.cancel(diff)
    if diff == 0 or not deep:
        return diff
    return sympy.simplify(diff)


def _clearly_nonzero(expr: Expr) -> bool:
    """True when ``expr`` is far from zero at a generic point (so ``simplify`` is not needed)."""
    rng = random.Random(0)
    point = {}
    for sym in sorted(expr.free_symbols, key=str):
        if sym.is_integer:
            point[sym] = sympy.Integer(rng.randint(2, 9))
        else:
            value = sympy.Rational(rng.randint(11, 97), 100)
            point[sym] = value if sym.is_positive or rng.random() < 0.5 else -value
    try:
        value = complex(sympy.N(expr.subs(point), 30))
    except (TypeError, ValueError, ZeroDivisionError):
        return False
    return abs(value) > 1e-12


def is_zero(expr: Expr) -> bool:
    """True when ``expr`` is the exact zero (not a float close to it)."""
    return sympy.sympify(expr) == 0


def to_float(expr: Expr) -> float:
    """A concrete (symbol-free) expression as a float, evaluated at 30 digits first."""
    expr = sympy.sympify(expr)
    if expr.free_symbols:
        raise ValueError(f"cannot evaluate {expr} numerically: free symbols {expr.free_symbols}")
    return float(sympy.N(expr, 30))
