"""A derivation as labelled equations, each printed by sympy as LaTeX and presentation MathML.

An :class:`Equation` ``lhs rel rhs`` holds what a proof computed: e.g. the update of the run on
scaled losses (``\\tilde u_k``), the reference run's (``u_k``) and their reduced difference.
The left sides are display names (:func:`name`); the theory's symbols print with readable
names (``g_{t,k}``, ``\\mathrm{lr}``, a state ``m_{k-1}``). A side whose LaTeX is longer than
:data:`LIMIT` is shortened: subexpressions below some depth print as ``\\cdots``, with a note.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import sympy
from sympy.printing.latex import translate
from sympy.printing.mathml import MathMLPresentationPrinter
from sympy.printing.pretty.pretty_symbology import greek_unicode

from theory import symbols as S

Expr = sympy.Expr
RELATIONS = {
    "=": ("=", "="),
    "<=": (r"\leq", "\u2264"),
    ">=": (r"\geq", "\u2265"),
    "->": (r"\mapsto", "\u21a6"),
}
"""Relation -> (LaTeX, MathML operator)."""
LIMIT = 1500
"""LaTeX characters of one side beyond which it is shortened."""
CUT_OPS = 4
"""Operations of a subexpression that is never shortened to ⋯."""
FACTOR_OPS = 150
"""Operations beyond which an expression is shown as computed (factoring it costs too much)."""
NUMBER_LIMIT = 60
"""LaTeX characters of an exact number beyond which it prints as a 6-digit float."""
STATE_LETTERS = {
    "exp_avg": "m",
    "exp_avg_sq": "v",
    "max_exp_avg_sq": "w",
    "momentum_buffer": "b",
    "square_avg": "v",
    "grad_avg": "n",
    "sum": "G",
}
"""Rule state keys (:mod:`mtl.optim`) -> the letter they print as."""


@dataclass(frozen=True)
class Name:
    """A display name: ``base`` (a letter, a Greek letter's name, a word printed upright, or
    ``cdots``), subscripts (expressions, comma-separated) and a tilde (the scaled run)."""

    base: str
    subs: tuple[Any, ...] = ()
    tilde: bool = False


_NAMES: dict[str, Name] = {}


def name(base: str, *subs: Any, tilde: bool = False, **assumptions: bool) -> sympy.Symbol:
    """A symbol that prints as :class:`Name` ``(base, subs, tilde)``."""
    text = base + ("~" if tilde else "") + "".join(f"_{s}" for s in subs)
    _NAMES[text] = Name(base, tuple(sympy.sympify(s) for s in subs), tilde)
    return sympy.Symbol(text, **assumptions)


def update(step: Any, scaled: bool = False, task: Any = None) -> sympy.Symbol:
    """``u_k`` (reference run), ``\\tilde u_k`` (scaled run), ``u_{t,k}`` (task t alone)."""
    return name("u", *(() if task is None else (task,)), step, tilde=scaled)


def state_symbol(key: str, index: int | None = None) -> sympy.Symbol:
    """A real symbol for rule state ``key`` before the symbolic step k (of state ``index``
    where there are several): the unknown of an induction hypothesis."""
    subs = (S.K - 1,) if index is None else (index, S.K - 1)
    return name(STATE_LETTERS.get(key, key), *subs, real=True)


def state(key: str, step: Any, scaled: bool = False, index: int | None = None) -> sympy.Symbol:
    """The display name of state ``key`` after ``step`` (``\\tilde m_k``: the scaled run's)."""
    letter = STATE_LETTERS.get(key, key)
    return name(letter, *(() if index is None else (index,)), step, tilde=scaled)


ELLIPSIS = name("cdots")
"""What a shortened subexpression prints as."""


def name_of(sym: sympy.Symbol) -> Name | None:
    """The display name of a symbol: a registered one, ``g_t_k`` -> ``g_{t,k}`` (any base with
    several subscripts), ``lr`` upright; None: sympy's default."""
    found = _NAMES.get(sym.name)
    if found is not None:
        return found
    if sym.name == "lr":
        return Name("lr")
    match = re.fullmatch(r"([A-Za-z]+)((?:_[0-9]+){2,})", sym.name)
    if match:
        subs = tuple(sympy.Integer(s) for s in match.group(2)[1:].split("_"))
        return Name(match.group(1), subs)
    return None


def _base_latex(base: str) -> str:
    if base == "cdots":
        return r"\cdots"
    text = translate(base)
    return text if text.startswith("\\") or len(base) == 1 else rf"\mathrm{{{base}}}"


def name_latex(n: Name) -> str:
    """``\\tilde{u}_{1,k}``: the LaTeX of a display name."""
    base = _base_latex(n.base)
    base = rf"\tilde{{{base}}}" if n.tilde else base
    if not n.subs:
        return base
    return base + "_{" + ",".join(sympy.latex(s) for s in n.subs) + "}"


class _MathML(MathMLPresentationPrinter):
    """sympy's presentation MathML with the display names of :func:`name_of`."""

    def _print_Symbol(self, sym, style="plain"):
        found = name_of(sym)
        if found is None:
            return super()._print_Symbol(sym, style)
        base = self.dom.createElement("mi")
        text = "\u22ef" if found.base == "cdots" else greek_unicode.get(found.base, found.base)
        base.appendChild(self.dom.createTextNode(text))
        if found.tilde:
            over = self.dom.createElement("mover")
            over.setAttribute("accent", "true")
            tilde = self.dom.createElement("mo")
            tilde.appendChild(self.dom.createTextNode("~"))
            over.appendChild(base)
            over.appendChild(tilde)
            base = over
        if not found.subs:
            return base
        subs = self.dom.createElement("mrow")
        order, self._settings["order"] = self._settings["order"], None  # k - 1, not -1 + k
        for i, sub in enumerate(found.subs):
            if i:
                comma = self.dom.createElement("mo")
                comma.appendChild(self.dom.createTextNode(","))
                subs.appendChild(comma)
            subs.appendChild(self._print(sub))
        self._settings["order"] = order
        node = self.dom.createElement("msub")
        node.appendChild(base)
        node.appendChild(subs)
        return node

    def _print_Add(self, expr, order=None):
        """sympy's, with a subtracted sum in parentheses (``u - (a + b)``)."""
        row = self.dom.createElement("mrow")
        for i, arg in enumerate(self._as_ordered_terms(expr, order=order)):
            negative = i > 0 and arg.could_extract_minus_sign()
            if i > 0:
                row.appendChild(self._operator("-" if negative else "+"))
            term = -arg if negative else arg
            if negative and term.is_Add:
                row.appendChild(self._operator("("))
                row.appendChild(self._print(term))
                row.appendChild(self._operator(")"))
            else:
                row.appendChild(self._print(term))
        return row

    def _operator(self, text: str):
        node = self.dom.createElement("mo")
        node.appendChild(self.dom.createTextNode(text))
        return node


def _latex(expr: Expr, order: str | None = None) -> str:
    names = {s: name_latex(n) for s in expr.free_symbols if (n := name_of(s)) is not None}
    return sympy.latex(expr, symbol_names=names, order=order)


def _mathml(expr: Expr, order: str | None = None) -> str:
    text = _MathML({"order": order}).doprint(expr)
    # XML-safe (no HTML-only entity), and a minus sign rather than a hyphen
    text = text.replace("&InvisibleTimes;", "&#x2062;").replace("<mo>-</mo>", "<mo>&#x2212;</mo>")
    return re.sub(r"<mn>-([^<]*)</mn>", r"<mrow><mo>&#x2212;</mo><mn>\1</mn></mrow>", text)


@lru_cache(maxsize=4096)
def readable(expr: Any, keep: tuple[sympy.Symbol, ...] = ()) -> Expr:
    """``expr`` for display, equal in value: a number as itself when short, else as a 6-digit
    float; an expression with each non-rational term factored (the rational terms together)
    when that prints shorter. ``keep``: scales whose cancellation is left visible (their
    positivity is not used, so ``sqrt(a^2 v)`` stays as it is)."""
    expr = sympy.sympify(expr)
    if isinstance(expr, sympy.Tuple):
        return sympy.Tuple(*(readable(e, keep) for e in expr))
    if not expr.free_symbols:
        if len(sympy.latex(expr)) > NUMBER_LIMIT:
            return sympy.Float(sympy.N(expr, 30), 6)
        return expr
    if expr == 0 or sympy.count_ops(expr) > FACTOR_OPS:
        return expr
    shown = expr.xreplace({s: sympy.Symbol(s.name) for s in keep if s in expr.free_symbols})
    terms = sympy.Add.make_args(shown)
    rational = sympy.Add(*(t for t in terms if t.is_rational_function()))
    others = (sympy.factor(t) for t in terms if not t.is_rational_function())
    factored = sympy.Add(sympy.factor(rational), *others)
    return factored if len(sympy.latex(factored)) < len(sympy.latex(expr)) else expr


def scaled(factor: Expr, symbol: Expr) -> Expr:
    """``factor * symbol``, printed in that order."""
    return symbol if factor == 1 else sympy.Mul(factor, symbol, evaluate=False)


def _cut(expr: Expr, depth: int) -> Expr:
    """``expr`` with every subexpression ``depth`` levels down replaced by ⋯, unless it is
    small (a few operations: it would print no shorter)."""
    if not isinstance(expr, sympy.Basic) or expr.is_Atom or not expr.args:
        return expr
    if depth <= 0 and sympy.count_ops(expr) > CUT_OPS:
        return ELLIPSIS
    return expr.func(*(_cut(a, depth - 1) for a in expr.args), evaluate=False)


def shortened(expr: Expr, limit: int = LIMIT) -> tuple[Expr, str | None]:
    """``expr``, or its deepest cut that prints within ``limit`` LaTeX characters, and a note."""
    full = len(_latex(expr))
    if full <= limit:
        return expr, None
    depth = 1
    while len(_latex(_cut(expr, depth + 1))) <= limit:
        depth += 1
    note = f"shortened: subexpressions {depth} levels down print as ⋯ ({full} LaTeX characters)"
    return _cut(expr, depth), note


@dataclass(frozen=True)
class Equation:
    """``lhs relation rhs`` with a label saying what it is (``relation``: a key of
    :data:`RELATIONS`). ``rhs`` is kept as computed; it is printed :func:`readable`, with the
    scales ``keep`` left uncancelled."""

    label: str
    lhs: Expr
    rhs: Expr
    relation: str = "="
    keep: tuple[sympy.Symbol, ...] = ()

    def __post_init__(self) -> None:
        if self.relation not in RELATIONS:
            raise ValueError(f"unknown relation {self.relation!r}; valid: {', '.join(RELATIONS)}")

    def to_json(self) -> dict[str, str]:
        """``{"label", "latex", "mathml"}`` and ``"note"`` when a side was shortened."""
        lhs, rhs = sympy.sympify(self.lhs), readable(self.rhs, self.keep)
        lhs = lhs if lhs.free_symbols else readable(lhs)  # a number: shown short
        rhs, note = shortened(rhs)
        lhs, lhs_note = shortened(lhs)
        tex, op = RELATIONS[self.relation]
        record = {
            "label": self.label,
            "latex": f"{_latex(lhs, 'none')} {tex} {_latex(rhs)}",
            "mathml": '<math xmlns="http://www.w3.org/1998/Math/MathML" display="block"><mrow>'
            f"{_mathml(lhs, 'none')}<mo>{op}</mo>{_mathml(rhs)}</mrow></math>",
        }
        notes = [n for n in (lhs_note, note) if n]
        if notes:
            record["note"] = "; ".join(notes)
        return record


def shown(value: Any) -> Any:
    """A value for display: a small symbolic tensor (numpy object array) as its entries."""
    return sympy.Tuple(*value.ravel()) if hasattr(value, "ravel") else value


def difference(a: Expr, b: Expr) -> Expr:
    """``a - b`` unevaluated (prints in this order)."""
    return sympy.Add(a, sympy.Mul(-1, b, evaluate=False), evaluate=False)


def comparison(
    label: str,
    names: tuple[Expr, Expr],
    values: tuple[Expr, Expr],
    reduced: Expr,
    scales: Iterable[sympy.Symbol] = (),
    sides: tuple[str, str] = ("scaled run", "reference"),
) -> list[Equation]:
    """The two sides of an identity the proof compared (the first with its ``scales`` left
    uncancelled) and their reduced difference."""
    (name_a, name_b), (a, b) = names, values
    return [
        Equation(f"{label}: {sides[0]}", name_a, a, keep=tuple(scales)),
        Equation(f"{label}: {sides[1]}", name_b, b),
        Equation(f"{label}: difference, reduced", difference(name_a, name_b), reduced),
    ]


def hyperparameter_map(hp: Mapping[str, Any], reference: Mapping[str, Any]) -> list[Equation]:
    """The reference run's hyperparameters where they differ from the scaled run's."""
    out = []
    for key, value in hp.items():
        ref = reference.get(key, value)
        if isinstance(value, sympy.Basic) and sympy.sympify(ref) != value:
            out.append(Equation(f"reference run: {key}", value, ref, "->"))
    return out


def counterexample_equations(found: Mapping[str, Any]) -> list[Equation]:
    """A counterexample's values and the two runs' differing updates as equations."""
    out = []
    values = found.get("values") or {}
    if values:
        symbols = sympy.Tuple(*(sympy.Symbol(k) for k in values))
        numbers = sympy.Tuple(*(sympy.sympify(v) for v in values.values()))
        out.append(Equation("counterexample: the values", symbols, numbers))
    for key, base in (("scales", "a"), ("alphas", "alpha"), ("gradients", "g_1")):
        if key in found:
            symbols = sympy.Tuple(
                *(sympy.Symbol(f"{base}_{i}") for i in range(1, 1 + len(found[key])))
            )
            numbers = sympy.Tuple(*(sympy.sympify(v) for v in found[key]))
            out.append(Equation(f"counterexample: {key}", symbols, numbers))
    if "update_scaled" in found:
        k = found["step"]
        scaled, ref = (sympy.Float(found[key], 6) for key in ("update_scaled", "update_reference"))
        out += [
            Equation(f"counterexample, step {k}: scaled run", update(k, True), scaled),
            Equation(f"counterexample, step {k}: reference", update(k), ref),
            Equation(
                f"counterexample, step {k}: difference",
                difference(update(k, True), update(k)),
                sympy.Float(found["update_scaled"] - found["update_reference"], 6),
                "=",
            ),
        ]
    if "value" in found and "residual_index" in found:
        r = name("r", found["residual_index"])
        out.append(
            Equation(
                "counterexample: the first nonzero residual", r, sympy.Float(found["value"], 6)
            )
        )
    return out


def _number(value: Any) -> Expr | None:
    """A plain number as sympy's (a bool as 0 or 1); None for anything else."""
    if isinstance(value, (bool, int, float)):
        return sympy.Integer(int(value)) if isinstance(value, bool) else sympy.sympify(value)
    if isinstance(value, str):
        try:
            parsed = sympy.sympify(value)
        except (sympy.SympifyError, SyntaxError, TypeError):
            return None
        return parsed if isinstance(parsed, sympy.Expr) else None
    return None


def numbers(label: str, record: Mapping[str, Any]) -> list[Equation]:
    """A record's numeric entries as one equation ``(key, ...) = (value, ...)`` (none if it
    has none)."""
    found = {k: n for k, v in record.items() if (n := _number(v)) is not None}
    if not found:
        return []
    keys = sympy.Tuple(*(name(k.replace("_", " ")) for k in found))
    return [Equation(label, keys, sympy.Tuple(*found.values()))]


def evidence_equations(found: Mapping[str, Any]) -> list[Equation]:
    """:func:`counterexample_equations`, or the record's numbers where those show none."""
    return counterexample_equations(found) or numbers("counterexample: the numbers", found)


def checked(label: str, residuals: Iterable[Expr], base: str = "r") -> Equation:
    """Residuals a check computed, shown as one reduced difference ``(r_1, ..., r_n)`` (one
    residual: ``r = value``)."""
    values = tuple(residuals)
    if len(values) == 1:
        return Equation(f"{label}: difference, reduced", name(base), values[0])
    names = sympy.Tuple(*(name(base, i) for i in range(1, len(values) + 1)))
    return Equation(f"{label}: difference, reduced", names, sympy.Tuple(*values))
