"""Derivations: the equations shown are the ones proven, printed readably by sympy."""

import random
import xml.etree.ElementTree as ET

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from theory import derivation as D
from theory import symbols as S
from theory.algebra import residual
from theory.statements import get, statements

MATHML = "{http://www.w3.org/1998/Math/MathML}"


def triples(statement):
    """(scaled, reference, difference) equations of every comparison, in order."""
    eqs = statement.derivation
    return [
        eqs[i - 2 : i + 1]
        for i, e in enumerate(eqs)
        if e.label.endswith(": difference, reduced") and not isinstance(e.rhs, sympy.Tuple)
    ]


def shown_residuals(statement):
    """The reduced differences the derivation shows, tuples flattened."""
    out = []
    for e in statement.derivation:
        if e.label.endswith("difference, reduced"):
            out += list(e.rhs) if isinstance(e.rhs, sympy.Tuple) else [e.rhs]
    return out


def check_triple(scaled, reference, difference):
    """The stored difference is what sympy reduces the two shown sides to."""
    return residual(scaled.rhs, reference.rhs) == difference.rhs


def test_every_statement_carries_a_derivation():
    for s in statements():
        assert s.derivation, s.id
        assert all(isinstance(e, D.Equation) and e.label for e in s.derivation), s.id


def test_each_comparison_shown_reduces_to_its_stored_difference():
    count = 0
    for s in statements():
        for scaled, reference, difference in triples(s):
            if scaled.rhs.free_symbols or reference.rhs.free_symbols:
                assert check_triple(scaled, reference, difference), (s.id, difference.label)
                count += 1
    assert count > 100


def test_a_tampered_comparison_is_caught():
    scaled, reference, difference = triples(get("adam.head.per-task-scale"))[2]
    wrong = D.Equation(reference.label, reference.lhs, reference.rhs * (1 + S.EPS))
    assert check_triple(scaled, reference, difference)
    assert not check_triple(scaled, wrong, difference)


def test_a_proof_shows_every_residual_its_verdict_rests_on():
    for s in statements():
        if s.verdict == "holds" or (s.verdict == "fails" and s.residuals):
            assert shown_residuals(s) == list(s.residuals), s.id
        if s.verdict == "holds":
            assert all(r == 0 for r in shown_residuals(s)), s.id


def test_a_refuted_statement_shows_a_nonzero_difference_and_its_numbers():
    for s in statements():
        if s.verdict != "fails":
            continue
        labels = [e.label for e in s.derivation]
        assert any(label.startswith("counterexample") for label in labels), s.id
        numbers = [e for e in s.derivation if e.label.endswith(": difference")]
        symbolic = [r for r in shown_residuals(s) if r != 0]
        assert numbers or symbolic, s.id
        assert all(e.rhs != 0 for e in numbers), s.id


def test_a_bounded_statement_shows_its_bound():
    for s in statements():
        if s.verdict == "holds-within-bound":
            (bound,) = [e for e in s.derivation if e.label == "the bound"]
            assert bound.relation == "<=" and bound.rhs == s.bound


def test_names_print_readably():
    g = S.G[0][1]
    assert D._latex(g * S.LR) == r"g_{1,2} \mathrm{lr}"
    assert D._latex(D.state_symbol("exp_avg")) == "m_{k - 1}"
    assert D._latex(D.state_symbol("exp_avg_sq", 2)) == "v_{2,k - 1}"
    assert D._latex(D.update(3, scaled=True)) == r"\tilde{u}_{3}"
    mathml = D._mathml(D.update(S.K, scaled=True) - S.ALPHAS[0])
    assert "<mover" in mathml and "&#x2212;" in mathml and "&#945;" in mathml


def test_every_equation_exports_latex_and_wellformed_mathml():
    for s in statements()[:6]:
        for record in s.to_json()["derivation"]:
            assert set(record) <= {"label", "latex", "mathml", "note"}
            root = ET.fromstring(record["mathml"])
            assert root.tag == MATHML + "math" and root.get("display") == "block"
            assert record["latex"].count("{") == record["latex"].count("}")


def test_an_invariance_step_exports_the_zero_difference():
    record = get("sgd.head.loss-scale-is-lr").to_json()["derivation"]
    by_label = {r["label"]: r for r in record}
    # task t of T: its scale a_t, its gradient g_{t,k}
    assert by_label["reference run: lr"]["latex"] == r"\mathrm{lr} \mapsto \mathrm{lr} {a}_{t}"
    assert by_label["step 2: difference, reduced"]["latex"] == r"\tilde{u}_{2} - u_{2} = 0"
    scaled = by_label["step 1: scaled run"]["latex"]
    assert scaled == r"\tilde{u}_{1} = - \mathrm{lr} {a}_{t} {g}_{t,1}"


def test_a_long_side_is_shortened_with_a_note():
    x = sympy.symbols("x0:60", positive=True)
    long = sum(sympy.sqrt(xi + 1) / (xi + 2) for xi in x)
    record = D.Equation("long", D.update(1), long).to_json()
    assert len(record["latex"]) <= D.LIMIT + 20
    assert r"\cdots" in record["latex"] and "shortened" in record["note"]
    short = D.Equation("short", D.update(1), x[0] + 1).to_json()
    assert "note" not in short


def _value(expr, point):
    return complex(sympy.N(expr.xreplace(point).doit(), 20))


def _atoms(expr):
    """The symbols to put numbers in: an indexed symbol (``g[t, k]``) as a whole."""
    indexed = expr.atoms(sympy.Indexed)
    inside = set().union(*(x.free_symbols - {x} for x in indexed))
    return indexed | (expr.free_symbols - inside)


EQUATIONS = [
    e
    for sid in ("adam.head.per-task-scale", "per-task-adam.backbone.per-task-scale")
    for e in get(sid).derivation
    if e.rhs.free_symbols
]


@settings(max_examples=25, deadline=None)
@given(index=st.integers(0, len(EQUATIONS) - 1), seed=st.integers(0, 10**6))
def test_readable_form_keeps_the_value(index, seed):
    """Law: the displayed form equals the computed one wherever the symbols' assumptions hold
    (scales left uncancelled included)."""
    expr = EQUATIONS[index].rhs
    shown = D.readable(expr, EQUATIONS[index].keep)
    by_name = {s.name: s for s in expr.free_symbols if isinstance(s, sympy.Symbol)}
    shown = shown.xreplace({s: by_name.get(s.name, s) for s in shown.free_symbols})
    rng = random.Random(seed)
    point = {}
    for s in sorted(_atoms(expr), key=str):
        value = sympy.Rational(rng.randint(1, 99), 100)  # betas, rates, scales in (0, 1)
        if s.is_integer:
            value = sympy.Integer(rng.randint(2, 9))
        elif not s.is_positive and rng.random() < 0.5:
            value = -value
        point[s] = value
    assert _value(shown, point) == pytest.approx(_value(expr, point), rel=1e-12, abs=1e-15)
