"""Targeted simplification: decide that an identity's residual is exactly zero, cheaply.

All derivations here produce rational expressions in gradients, hyperparameters and scales,
with square roots (Adam's denominator) and signs (signSGD). A positive scale hidden inside a
sum, ``sqrt(a^2 x + a^2 y)`` or ``sign(a x + a y)``, only cancels once the sum is factored, so
:func:`normalize` pulls common factors out of every sum, root and sign bottom-up
(``sympy.factor_terms``; a sum over tasks ``Sum_t c x_t`` becomes ``c Sum_t x_t``) and lets
sympy's automatic rules (``sqrt(a^2 u) = a sqrt(u)`` for ``a > 0``, ``sign(a u) = sign(u)``)
do the rest. :func:`residual` then cancels the
difference, unless a generic point already shows it is nonzero, and tries ``sympy.simplify``
only on request (``deep``) when cancelling leaves something that is not plainly nonzero.
"""

from __future__ import annotations

import random
from functools import lru_cache

import sympy
from sympy.simplify.simplify import factor_sum

Expr = sympy.Expr


def normalize(expr: Expr) -> Expr:
    """``expr`` with the common factors of every sum, power base and sign/abs argument out."""
    return _normalize(sympy.sympify(expr))


@lru_cache(maxsize=1 << 16)
def _normalize(expr: Expr) -> Expr:
    """:func:`normalize` of a sympy expression, remembered: runs share most subexpressions."""
    if expr.is_Atom:
        return expr
    expr = expr.func(*(_normalize(arg) for arg in expr.args))
    if expr.is_Pow:  # a base over its common denominator: 1/(x + e/a) = a/(a x + e)
        return sympy.Pow(sympy.factor_terms(expr.base, fraction=True), expr.exp)
    if expr.is_Add:
        return sympy.factor_terms(expr)
    if isinstance(expr, (sympy.sign, sympy.Abs)):
        return expr.func(sympy.factor_terms(expr.args[0]))
    if isinstance(expr, sympy.Sum):
        return factor_sum(expr)
    if isinstance(expr, (sympy.Max, sympy.Min)):
        return _positive_factor_out(expr)
    return expr


def _positive_factor_out(expr: Expr) -> Expr:
    """``max(c x, c y) = c max(x, y)`` for ``c > 0``: the arguments over their common positive
    denominator, then the positive powers every argument has, pulled out."""
    parts = [sympy.fraction(sympy.together(arg)) for arg in expr.args]
    denominator = sympy.lcm_list([d for _, d in parts])
    if not denominator.is_positive:
        return expr
    args = [sympy.factor_terms(n * sympy.cancel(denominator / d)) for n, d in parts]
    powers = [a.as_powers_dict() for a in args if a != 0]  # max(c 0, c y) = c max(0, y)
    factor = sympy.Mul(
        *(
            base ** min(p[base] for p in powers)
            for base in powers[0]
            if base.is_positive and all(base in p and p[base].is_number for p in powers)
        )
    )
    if denominator == 1 and factor == 1:
        return expr
    return factor / denominator * expr.func(*(sympy.cancel(a / factor) for a in args))


def residual(lhs: Expr, rhs: Expr, deep: bool = False) -> Expr:
    """``lhs - rhs`` reduced; exactly ``0`` when the identity ``lhs = rhs`` is proven.

    ``deep`` adds ``sympy.simplify`` (slow on large expressions) when the cheap reduction leaves
    something that is not plainly nonzero. Two sums over the same range are compared termwise:
    ``sum_t u_t - sum_t v_t = sum_t (u_t - v_t)``, zero when the summand's residual is."""
    if hasattr(lhs, "ravel"):  # small symbolic tensors: the first entry that is not zero
        pairs = zip(lhs.ravel(), rhs.ravel(), strict=True)
        return next((r for r in (residual(a, b, deep) for a, b in pairs) if r != 0), sympy.S.Zero)
    lhs, rhs = sympy.sympify(lhs), sympy.sympify(rhs)
    if isinstance(lhs, sympy.Sum) and isinstance(rhs, sympy.Sum) and lhs.limits == rhs.limits:
        inner = residual(lhs.function, rhs.function, deep)
        return sympy.S.Zero if inner == 0 else sympy.Sum(inner, *lhs.limits)
    diff = normalize(sympy.sympify(lhs) - sympy.sympify(rhs))
    if diff == 0 or _clearly_nonzero(diff):
        return diff
    diff = sympy.cancel(diff)
    if diff == 0 or not deep:
        return diff
    return sympy.simplify(diff)


def _clearly_nonzero(expr: Expr) -> bool:
    """True when ``expr`` is far from zero at a generic point (so ``simplify`` is not needed).
    Indexed symbols (``g[t, k]``) get values as wholes; a sum over a symbolic range is not
    evaluated (no point decides it cheaply)."""
    if expr.has(sympy.Sum):
        return False
    rng = random.Random(0)
    point = {}
    atoms = expr.atoms(sympy.Indexed) | (expr.free_symbols - _inside_indexed(expr))
    for sym in sorted(atoms, key=str):
        if sym.is_integer:
            point[sym] = sympy.Integer(rng.randint(2, 9))
        else:
            value = sympy.Rational(rng.randint(11, 97), 100)
            point[sym] = value if sym.is_positive or rng.random() < 0.5 else -value
    try:
        value = complex(sympy.N(expr.xreplace(point), 30))
    except (TypeError, ValueError, ZeroDivisionError):
        return False
    return abs(value) > 1e-12


def _inside_indexed(expr: Expr) -> set:
    """The labels and indices of ``expr``'s indexed symbols (valued with their symbol)."""
    return set().union(*(x.free_symbols - {x} for x in expr.atoms(sympy.Indexed)))


def is_zero(expr: Expr) -> bool:
    """True when ``expr`` is the exact zero (not a float close to it)."""
    return sympy.sympify(expr) == 0


def to_float(expr: Expr) -> float:
    """A concrete (symbol-free) expression as a float, evaluated at 30 digits first."""
    expr = sympy.sympify(expr)
    if expr.free_symbols:
        raise ValueError(f"cannot evaluate {expr} numerically: free symbols {expr.free_symbols}")
    return float(sympy.N(expr, 30))
