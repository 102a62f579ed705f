"""The comparisons of :mod:`theory.engine` for T tasks: sums over a symbolic number of tasks.

Task t of T has loss scale ``a[t]`` and unscaled gradient ``g[t, k]`` at step k (sympy
``IndexedBase``; ``T`` a symbol). What one optimizer state sees at step k:

* the head of task t: ``sum_j a[j] dL_j/dpsi_t = sum_j a[j] delta_jt g[t, k] = a[t] g[t, k]``
  (hard parameter sharing: ``L_j`` does not depend on ``psi_t`` for ``j != t``); sympy evaluates
  the sum, for any ``1 <= t <= T``;
* the backbone, one state: ``sum_t a[t] g[t, k]`` (a common scale: ``sum_t alpha g[t, k]``, which
  :func:`theory.algebra.normalize` turns into ``alpha sum_t g[t, k]``);
* the backbone, one state per task: the update ``sum_t u_t``, ``u_t`` task t's own update, so the
  residual is ``sum_t (u_t - u'_t)``: zero when the summand for a generic task t is.

Both runs start step k from the same parameter ``p_{k-1}`` (lockstep): a zero residual at every
step makes the parameters equal after it, so the next step starts equal again. The induction
step is the engine's, at a symbolic step k with per-task sums. ``schedule`` multiplies the
learning rate of step k by ``f_k`` in both runs (a learning-rate schedule).

Where a residual is not zero for symbolic T, the comparison is rerun for each T in
:data:`EACH_T` (sums expanded into terms); a counterexample puts numbers (:data:`INSTANCE`) into
the runs, for each T. Every proof carries its equations (:mod:`theory.derivation`): per step
the two runs' updates and their reduced difference, then the induction step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import sympy

from mtl.optim import SYMPY, get_rule
from theory import derivation as D
from theory import symbols as S
from theory.algebra import is_zero, residual, to_float
from theory.derivation import Equation
from theory.engine import KINDS, Config, Proof, ReferenceMap, _degree, _init, parts
from theory.statement import Statement

Expr = sympy.Expr

T = sympy.Symbol("T", integer=True, positive=True)
"""The number of tasks."""
TASK, OTHER = sympy.symbols("t j", integer=True, positive=True)
"""A generic task, and the summation index over the other tasks of a head's gradient."""
BEYOND = sympy.Symbol("n_T", integer=True, nonnegative=True)
"""``T = t + n_T``: the task t is one of the T tasks."""
A = sympy.IndexedBase("a", positive=True)
"""``a[t]``: task t's loss scale (``alpha_t``)."""
G = sympy.IndexedBase("g", real=True, nonzero=True)
"""``g[t, k]``: task t's unscaled gradient at step k (one coordinate)."""
H = sympy.IndexedBase("h", real=True, nonzero=True)
"""``h[t]``: task t's unscaled gradient at the symbolic step k of the induction step."""
W = sympy.IndexedBase("w", positive=True)
"""``w[t, k]``: task t's loss scale at step k, when it varies from step to step."""
W_PREV = sympy.IndexedBase("w_prev", positive=True)
W_NEXT = sympy.IndexedBase("w_next", positive=True)
"""Task t's scales at steps k - 1 and k in the induction step of time-varying scales."""
PARAMS = (S.P0, *sympy.symbols(f"p_1:{S.STEPS}", real=True))
"""``p_{k-1}``: the parameter before step k, the same in both runs (lockstep)."""
SCHEDULE = sympy.symbols(f"f_1:{S.STEPS + 1}", positive=True)
"""A learning-rate schedule's factors of the unrolled steps (both runs)."""
SCHEDULE_K = sympy.Symbol("f_k", positive=True)
"""The schedule's factor at the symbolic step k."""
EACH_T = (2, 3, 4, 5)
"""The task counts tried one by one where symbolic T does not decide a claim."""

_R = sympy.Rational
INSTANCE: dict[Any, Expr] = {
    **{A[t + 1]: v for t, v in enumerate((_R(1, 10), 10, 2, _R(1, 2), 3))},
    **{
        G[t + 1, k + 1]: _R(v)
        for t, row in enumerate(
            (
                (1, _R(-1, 2), _R(3, 2)),
                (_R(-1, 2), 2, -1),
                (_R(1, 10), 1, -2),
                (_R(-1, 10), _R(1, 3), _R(1, 2)),
                (_R(1, 10), _R(-3, 2), 1),
            )
        )
        for k, v in enumerate(row)
    },
    **dict(zip(SCHEDULE, (1, _R(3, 5), _R(1, 5)), strict=True)),
}
"""Numbers for counterexamples: tasks 1 and 2 as :data:`theory.symbols.INSTANCE`'s; tasks 3-5
small at step 1, so that for each T the scales flip the sign of the first backbone gradient
(``sum_t g[t, 1] > 0 > sum_t a[t] g[t, 1]``); a decaying schedule."""

TASKS_SYMBOLIC = "T tasks, T symbolic (sympy sums over t = 1..T)"
TASKS_EACH = "T tasks, proven for each T in 2..5"
TASKS_HEAD_REFUTED = "T tasks, any T >= 1 (task t's head sees a_t g_t whatever T is)"
TASKS_REFUTED = "T tasks, refuted for each T in 2..5 (a counterexample per T)"
TASKS_ANY = "T tasks, any T (the claim involves task t's own quantities only)"
TASKS_TWO = "T tasks, T = 2 only (the two-task comparison of theory.engine, as in the atlas)"


def head_gradient(scale: Any, grad: Expr) -> Expr:
    """``sum_j scale(j) dL_j/dpsi_t`` with ``dL_j/dpsi_t = delta_jt grad``, evaluated by sympy
    for a task t among the T (``T = t + n_T``), common factors out."""
    total = sympy.Sum(scale(OTHER) * sympy.KroneckerDelta(OTHER, TASK) * grad, (OTHER, 1, T))
    return sympy.factor_terms(total.doit().subs(T, TASK + BEYOND))


def over_tasks(summand: Expr, tasks: Any = T) -> Expr:
    """``sum_{t=1}^{tasks} summand``, expanded into terms for a number ``tasks`` (a zero
    summand gives zero)."""
    if is_zero(summand):
        return sympy.S.Zero
    total = sympy.Sum(summand, (TASK, 1, tasks))
    return total.doit() if isinstance(tasks, int) else total


@dataclass(frozen=True)
class Setup:
    """What one optimizer state sees: per-step gradients of both runs, the scale its state
    carries (None: several), and whether the states are per task (``summed``)."""

    scale: Expr | None
    scaled: tuple[Expr, ...]
    reference: tuple[Expr, ...]
    scaled_k: Expr
    reference_k: Expr
    summed: bool


def setup(config: Config, kind: str, tasks: Any = T) -> Setup:
    """The gradients of an invariance kind (:data:`theory.engine.KINDS`) for ``tasks`` tasks."""
    steps = range(1, S.STEPS + 1)
    if kind == "head-per-task-scale":
        grads = [G[TASK, k] for k in steps] + [H[TASK]]
        scaled = [head_gradient(lambda j: A[j], g) for g in grads]
        plain = [head_gradient(lambda j: 1, g) for g in grads]
        return Setup(A[TASK], tuple(scaled[:-1]), tuple(plain[:-1]), scaled[-1], plain[-1], False)
    if kind not in KINDS:
        raise ValueError(f"unknown invariance kind {kind!r}; valid: {', '.join(KINDS)}")
    scale = sympy.Symbol("alpha", positive=True) if kind == "common-scale" else A[TASK]
    grads = [G[TASK, k] for k in steps] + [H[TASK]]
    if config.per_task:
        scaled, plain = [scale * g for g in grads], grads
        return Setup(scale, tuple(scaled[:-1]), tuple(plain[:-1]), scaled[-1], plain[-1], True)
    scaled = [over_tasks(scale * g, tasks) for g in grads]
    plain = [over_tasks(g, tasks) for g in grads]
    common = scale if kind == "common-scale" else None
    return Setup(common, tuple(scaled[:-1]), tuple(plain[:-1]), scaled[-1], plain[-1], False)


def _scheduled(hp: Mapping[str, Any], factor: Expr | None) -> dict[str, Any]:
    return dict(hp) if factor is None else {**hp, "lr": hp["lr"] * factor}


def run(
    config: Config, hp: Mapping[str, Any], grads: Sequence[Expr], schedule: bool
) -> tuple[list[Expr], dict[str, Expr]]:
    """Updates of one state on ``grads`` in lockstep (step k starts from ``p_{k-1}``)."""
    rule = get_rule(config.rule)
    state = _init(config, hp, PARAMS[0])
    out = []
    for k, (p, g) in enumerate(zip(PARAMS, grads, strict=True), start=1):
        hp_k = _scheduled(hp, SCHEDULE[k - 1] if schedule else None)
        out.append(rule.step(SYMPY, p, g, state, k, **hp_k) - p)
    return out, state


@dataclass(frozen=True)
class Comparison:
    """A proof attempt and the two runs' updates (summed over tasks where states are per task)."""

    proof: Proof
    scaled: tuple[Expr, ...]
    reference: tuple[Expr, ...]


def compare(
    config: Config,
    kind: str,
    reference: ReferenceMap | None = None,
    schedule: bool = False,
    tasks: Any = T,
    deep: bool = False,
) -> Comparison:
    """The scaled run's updates against the reference run's, for ``tasks`` tasks: unrolled
    residuals (stopping at the first nonzero one), then the induction step."""
    set_ = setup(config, kind, tasks)
    if reference is not None and set_.scale is None:
        raise ValueError(
            f"a hyperparameter map needs one scale per optimizer state; {config.label!r} shares "
            f"one state across tasks under {kind!r}: use identity (reference=None)"
        )
    hp = dict(config.hp)
    ref = dict(reference(hp, set_.scale)) if reference else hp
    upd_a, state_a = run(config, hp, set_.scaled, schedule)
    upd_1, state_1 = run(config, ref, set_.reference, schedule)

    def total(x: Expr) -> Expr:
        return over_tasks(x, tasks) if set_.summed else x

    def shown(x: Expr) -> Expr:  # a per-task sum as a sum (its residual is termwise)
        return sympy.Sum(x, (TASK, 1, tasks)) if set_.summed else x

    keep = _keep(set_.scale)
    unrolled: list[Expr] = []
    equations = D.hyperparameter_map(hp, ref)
    for k, (u, v) in enumerate(zip(upd_a, upd_1, strict=True), start=1):
        unrolled.append(total(residual(u, v, deep)))
        names = (D.update(k, scaled=True), D.update(k))
        equations += D.comparison(f"step {k}", names, (shown(u), shown(v)), unrolled[-1], keep)
        if not is_zero(unrolled[-1]):
            break
    scaled, plain = tuple(map(total, upd_a)), tuple(map(total, upd_1))
    if not all(is_zero(r) for r in unrolled):
        return Comparison(Proof(tuple(unrolled), (), tuple(equations)), scaled, plain)
    induction, proof_k = _induction(
        config, set_, state_a, state_1, hp, ref, schedule, (total, shown), deep
    )
    return Comparison(Proof(tuple(unrolled), induction, tuple(equations), proof_k), scaled, plain)


def _keep(scale: Expr | None) -> tuple[sympy.Symbol, ...]:
    """The scales a derivation leaves uncancelled in the scaled run's side (plain symbols)."""
    return (scale,) if isinstance(scale, sympy.Symbol) else ()


def _state_names(key: str, summed: bool) -> tuple[Expr, Expr, Expr]:
    """The display names of a state key: before step k (scaled run), after step k (scaled run,
    reference run); task t's own where the states are per task."""
    index = TASK if summed else None
    return (
        D.state(key, S.K - 1, scaled=True, index=index),
        D.state(key, S.K, scaled=True, index=index),
        D.state(key, S.K, index=index),
    )


def _induction(
    config, set_: Setup, state_a, state_1, hp, ref, schedule, sums, deep
) -> tuple[tuple, tuple[Equation, ...]]:
    """One symbolic step k from states scaled by ``scale^d`` (``d`` read off the unrolled
    states; per task: fresh states ``m[t]`` of task t), and its equations. ``sums``: the
    residual's and the shown sides' sum over tasks."""
    total, shown = sums
    if set_.scale is None:
        return (sympy.nan,), ()  # several scales share the state: no induction hypothesis
    deg = {key: _degree(state_a[key], state_1[key], set_.scale) for key in state_1}
    if any(d is None for d in deg.values()):
        return (sympy.nan,), ()
    fresh = {
        key: sympy.IndexedBase(D.STATE_LETTERS.get(key, key), real=True)[TASK]
        if set_.summed
        else D.state_symbol(key)
        for key in state_1
    }
    hyp_a = {key: set_.scale ** deg[key] * fresh[key] for key in fresh}
    hyp_1 = dict(fresh)
    names = {key: _state_names(key, set_.summed) for key in fresh}
    equations = [
        Equation("induction hypothesis: the scaled run's state before step k", names[key][0], x)
        for key, x in hyp_a.items()
    ]
    rule = get_rule(config.rule)
    factor = SCHEDULE_K if schedule else None
    new_a = rule.step(SYMPY, S.P, set_.scaled_k, hyp_a, S.K, **_scheduled(hp, factor))
    new_1 = rule.step(SYMPY, S.P, set_.reference_k, hyp_1, S.K, **_scheduled(ref, factor))
    keep = _keep(set_.scale)
    out = [total(residual(new_a, new_1, deep))]
    updates = (D.update(S.K, scaled=True), D.update(S.K))
    values = (shown(new_a - S.P), shown(new_1 - S.P))
    equations += D.comparison("step k", updates, values, out[0], keep)
    for key in deg:
        want = set_.scale ** deg[key] * hyp_1[key]
        out.append(total(residual(hyp_a[key], want, deep)))
        pair = (names[key][1], D.scaled(set_.scale ** deg[key], names[key][2]))
        label = f"state after step k ({key})"
        equations += D.comparison(label, pair, (shown(hyp_a[key]), shown(want)), out[-1], keep)
    return tuple(out), tuple(equations)


def symbol_name(x: Any) -> str:
    """``alpha_1``, ``g_1_2`` for the indexed symbols, else sympy's name."""
    if isinstance(x, sympy.Indexed):
        label = "alpha" if x.base in (A, W) else str(x.base)
        return "_".join([label, *map(str, x.indices)])
    return str(x)


def values_with(instance: Mapping[Any, Expr] | None) -> dict[Any, Expr]:
    """The counterexample numbers: the engine's, this module's, then ``instance``'s."""
    return {**S.INSTANCE, **INSTANCE, **(instance or {})}


def counterexample(
    comparison: Comparison,
    config: Config,
    tasks: int | None,
    instance: Mapping[Any, Expr] | None = None,
) -> dict[str, Any] | None:
    """The first step whose updates differ on numbers (``tasks`` tasks, or task 1 of any T when
    None: a head), the parameter of both runs following the reference run; None if none does."""
    values = values_with(instance)
    params: dict[Expr, Expr] = {PARAMS[0]: values[S.P0]}
    for k, (u, v) in enumerate(zip(comparison.scaled, comparison.reference, strict=True), 1):
        point = {**values, **params}
        nu, nv = (_on_numbers(x, tasks, point) for x in (u, v))
        fu, fv = to_float(nu), to_float(nv)
        if abs(to_float(nu - nv)) > 1e-9 * max(abs(fu), abs(fv)):
            used = _used(comparison, config, k, tasks, values)
            return {
                "step": k,
                "tasks": "any" if tasks is None else tasks,
                "values": {symbol_name(x): str(values[x]) for x in used},
                "update_scaled": fu,
                "update_reference": fv,
            }
        if k < len(PARAMS):
            params[PARAMS[k]] = params[PARAMS[k - 1]] + nv
    return None


def _on_numbers(expr: Expr, tasks: int | None, point: Mapping[Any, Expr]) -> Expr:
    """``expr`` for ``tasks`` tasks (task 1 of a head when None) at ``point`` (replaced all at
    once: every node is rebuilt from numbers only)."""
    expr = sympy.sympify(expr)
    expr = expr.xreplace({TASK: 1}) if tasks is None else expr.xreplace({T: tasks}).doit()
    return expr.xreplace(dict(point))


def _used(
    comparison: Comparison,
    config: Config,
    step: int,
    tasks: int | None,
    values: Mapping[Any, Expr],
) -> list[Any]:
    """The symbols with a value that the configuration and the two runs' first ``step``
    updates involve."""
    exprs = [*comparison.scaled[:step], *comparison.reference[:step]]
    exprs = [_on_numbers(x, tasks, {}) for x in exprs]
    hp = [x for v in config.hp.values() for x in (v if isinstance(v, tuple) else (v,))]
    exprs += [sympy.sympify(x) for x in hp]
    used = set().union(*(x.free_symbols for x in exprs)) - set(PARAMS[1:])
    return sorted((x for x in used if x in values), key=symbol_name)


def refute(
    comparison: Comparison, config: Config, kind: str, instance: Mapping[Any, Expr] | None = None
) -> dict[str, Any] | None:
    """A counterexample: for a head, on task 1 (valid for every T); for the backbone, one per T
    in :data:`EACH_T` (the first, T = 2, at the top; the others under ``more_tasks``)."""
    if kind == "head-per-task-scale":
        return counterexample(comparison, config, None, instance)
    found = [counterexample(comparison, config, n, instance) for n in EACH_T]
    if any(f is None for f in found):
        return None
    first, *more = found
    return {**first, "more_tasks": more}


def _proven_for_symbolic_t(
    sid: str, claim: str, assumptions: tuple[str, ...], proof: Proof
) -> Statement:
    """``holds`` for any number of tasks: the proof's residuals and equations."""
    residuals = proof.unrolled + proof.induction
    assumptions = (*assumptions, TASKS_SYMBOLIC)
    return Statement(sid, claim, "holds", assumptions, residuals, derivation=proof.equations)


def statement(
    sid: str,
    claim: str,
    assumptions: tuple[str, ...],
    config: Config,
    kind: str,
    reference: ReferenceMap | None = None,
    schedule: bool = False,
    instance: Mapping[Any, Expr] | None = None,
) -> Statement:
    """``holds`` (symbolic T, else each T in :data:`EACH_T`) with the residuals, or ``fails``
    with a counterexample; the assumptions end with which T the verdict covers. A hybrid
    (:attr:`Config.backbone`) is decided part by part (:func:`theory.engine.parts`): it holds
    when every part does, the first failing part's evidence refutes it."""
    if config.backbone is not None:
        found = [
            (name, part, statement(sid, claim, assumptions, part, part_kind, reference, schedule))
            for name, part, part_kind in parts(config, kind)
        ]
        return _combined(sid, claim, found)
    comparison = compare(config, kind, reference, schedule)
    proof = comparison.proof
    if proof.holds:
        return _proven_for_symbolic_t(sid, claim, assumptions, proof)
    found = refute(comparison, config, kind, instance)
    if found is not None:
        which = TASKS_HEAD_REFUTED if kind == "head-per-task-scale" else TASKS_REFUTED
        return _refuted(sid, claim, (*assumptions, which), proof, found)
    proofs = [compare(config, kind, reference, schedule, n, deep=True).proof for n in EACH_T]
    if all(p.holds for p in proofs):
        return _each_t(sid, claim, assumptions, proofs)
    raise RuntimeError(f"statement {sid!r}: neither proven nor refuted on the instance")


def counterexample_derivation(found: Mapping[str, Any]) -> tuple[Equation, ...]:
    """A counterexample's equations (:func:`theory.derivation.evidence_equations`), and those
    of each further task count under ``more_tasks``."""
    out = list(D.evidence_equations(found))
    for more in found.get("more_tasks", ()):
        out += [
            replace(
                e,
                label=e.label.replace("counterexample", f"counterexample (T = {more['tasks']})", 1),
            )
            for e in D.evidence_equations(more)
        ]
    return tuple(out)


def _refuted(sid, claim, assumptions, proof: Proof, found: dict) -> Statement:
    """``fails``: the symbolic steps up to the first nonzero difference, then the numbers."""
    derivation = proof.equations + counterexample_derivation(found)
    return Statement(sid, claim, "fails", assumptions, proof.unrolled, found, derivation=derivation)


def _each_t(sid, claim, assumptions, proofs: Sequence[Proof]) -> Statement:
    """``holds`` for each T in :data:`EACH_T`: every proof's residuals and equations."""
    residuals = tuple(r for p in proofs for r in p.unrolled + p.induction)
    derivation = tuple(
        replace(e, label=f"T = {n}, {e.label}")
        for n, p in zip(EACH_T, proofs, strict=True)
        for e in p.equations
    )
    assumptions = (*assumptions, TASKS_EACH)
    return Statement(sid, claim, "holds", assumptions, residuals, derivation=derivation)


def _combined(sid: str, claim: str, found: Sequence[tuple[str, Config, Statement]]) -> Statement:
    """A hybrid's statement from its parts' statements: the parts' equations labelled with the
    part; ``fails`` at the first failing part (named by ``"part"`` in the counterexample)."""
    residuals: tuple[Expr, ...] = ()
    derivation: tuple[Equation, ...] = ()
    for name, part, s in found:
        label = f"{name} ({part.rule})"
        residuals += s.residuals
        derivation += tuple(
            e if e.label.startswith("counterexample") else replace(e, label=f"{label}, {e.label}")
            for e in s.derivation
        )
        if s.verdict == "fails":
            evidence = {"part": label, **s.counterexample}
            return Statement(
                sid, claim, "fails", s.assumptions, residuals, evidence, derivation=derivation
            )
    assumptions = tuple(dict.fromkeys(a for *_, s in found for a in s.assumptions))
    return Statement(sid, claim, "holds", assumptions, residuals, derivation=derivation)


def prove_run(config: Config, reference: ReferenceMap | None = None) -> Proof:
    """A head trained with a frozen backbone, for T tasks: at step k task t's head gradient is
    ``sum_j a[j] delta_jt G_k(t, p_{k-1})`` (``G_k`` a function of the head parameter only, the
    data of step k fixed). Once the parameters after a step are proven equal, both runs continue
    from the same value; the induction step is :func:`compare`'s. (The equations write
    ``G_k(t, p_{k-1})`` for the gradient at that common parameter.)"""
    hp = dict(config.hp)
    ref = dict(reference(hp, A[TASK])) if reference else hp
    rule = get_rule(config.rule)
    state_a, state_1 = _init(config, hp, S.P0), _init(config, ref, S.P0)
    param, out = S.P0, []
    equations = D.hyperparameter_map(hp, ref)
    shown: dict[Expr, Expr] = {}  # G_k(t, param) -> G_k(t, p_{k-1})
    for k in range(1, S.STEPS + 1):
        grad = sympy.Function(f"G_{k}")(TASK, param)
        shown[grad] = grad.func(TASK, S.P0 if k == 1 else D.name("p", k - 1))
        new_a = rule.step(SYMPY, param, head_gradient(lambda j: A[j], grad), state_a, k, **hp)
        new_1 = rule.step(SYMPY, param, head_gradient(lambda j: 1, grad), state_1, k, **ref)
        out.append(residual(new_a, new_1))
        names = (D.update(k, scaled=True), D.update(k))
        values = ((new_a - param).xreplace(shown), (new_1 - param).xreplace(shown))
        equations += D.comparison(f"step {k}", names, values, out[-1])
        if not is_zero(out[-1]):
            return Proof(tuple(out), (), tuple(equations))
        param = new_1
    proof_k = compare(config, "head-per-task-scale", reference).proof
    return Proof(tuple(out), proof_k.induction, tuple(equations), proof_k.induction_equations)


def run_statement(
    sid: str,
    claim: str,
    assumptions: tuple[str, ...],
    config: Config,
    reference: ReferenceMap | None = None,
) -> Statement:
    """:func:`prove_run`'s verdict; refuted by a given gradient sequence (constant ``G_k``)."""
    proof = prove_run(config, reference)
    if proof.holds:
        return _proven_for_symbolic_t(sid, claim, assumptions, proof)
    comparison = compare(config, "head-per-task-scale", reference)
    found = counterexample(comparison, config, None)
    if found is None:
        raise RuntimeError(f"statement {sid!r}: neither proven nor refuted on the instance")
    return _refuted(sid, claim, (*assumptions, TASKS_HEAD_REFUTED), proof, found)


def _linear_terms(expr: Expr) -> Expr:
    """``expr`` with every sum over tasks split into sums of single terms (constants out)."""
    return sympy.expand(expr)


def prove_linear(config: Config, tasks: Any = T) -> Proof:
    """The backbone update (one state) under per-task scales is ``sum_t a[t] u_t``, ``u_t`` the
    update task t alone would cause, and the state likewise (induction on per-task states
    ``S_key[t]``, combined ``sum_t a[t] S_key[t]``)."""
    rule = get_rule(config.rule)
    hp = dict(config.hp)
    steps = range(1, S.STEPS + 1)
    both, state = run(config, hp, [over_tasks(A[TASK] * G[TASK, k], tasks) for k in steps], False)
    alone, _ = run(config, hp, [G[TASK, k] for k in steps], False)

    equations: list[Equation] = []

    def same(label: str, names: tuple[Expr, Expr], lhs: Expr, rhs_summand: Expr) -> Expr:
        lhs, rhs = _linear_terms(lhs), _linear_terms(over_tasks(A[TASK] * rhs_summand, tasks))
        reduced = residual(lhs, rhs)
        equations.extend(D.comparison(label, names, (lhs, rhs), reduced, sides=SIDES_LINEAR))
        return reduced

    def alone_name(name: Expr) -> Expr:
        return sympy.Sum(A[TASK] * name, (TASK, 1, tasks))

    unrolled = tuple(
        same(f"step {k}", (D.update(k, scaled=True), alone_name(D.update(k, task=TASK))), u, v)
        for k, (u, v) in enumerate(zip(both, alone, strict=True), start=1)
    )
    if not all(is_zero(r) for r in unrolled):
        return Proof(unrolled, (), tuple(equations))
    shown_k = len(equations)
    fresh = {
        key: sympy.IndexedBase(D.STATE_LETTERS.get(key, key), real=True)[TASK] for key in state
    }
    combined = {key: over_tasks(A[TASK] * f, tasks) for key, f in fresh.items()}
    equations += [
        Equation(
            "induction hypothesis: the combined state before step k (task t's alone: "
            f"{D.STATE_LETTERS.get(key, key)}_t)",
            D.state(key, S.K - 1, scaled=True),
            x,
        )
        for key, x in combined.items()
    ]
    single = dict(fresh)
    new = rule.step(SYMPY, S.P, over_tasks(A[TASK] * H[TASK], tasks), combined, S.K, **hp)
    one = rule.step(SYMPY, S.P, H[TASK], single, S.K, **hp)
    names = (D.update(S.K, scaled=True), alone_name(D.update(S.K, task=TASK)))
    induction = [same("step k", names, new - S.P, one - S.P)]
    for key in state:
        names = (D.state(key, S.K, scaled=True), alone_name(D.state(key, S.K, index=TASK)))
        induction.append(same(f"state after step k ({key})", names, combined[key], single[key]))
    return Proof(unrolled, tuple(induction), tuple(equations[:shown_k]), tuple(equations[shown_k:]))


SIDES_LINEAR = ("the run on scaled losses", "sum_t alpha_t (task t alone)")
"""The two sides of :func:`prove_linear`'s comparisons."""


def _numeric(expr: Expr, values: Mapping[Any, Expr]) -> tuple[Expr, dict[str, str]]:
    """``expr`` on numbers: ``values``, then ``1 + i/7`` for any other symbol (3 for the step)."""
    expr = sympy.sympify(expr).subs(values)
    point: dict[Any, Expr] = {}
    rest = sorted(expr.atoms(sympy.Indexed, sympy.Symbol) - {A.label, G.label, H.label}, key=str)
    for i, x in enumerate(x for x in rest if not isinstance(x, sympy.Idx)):
        point[x] = sympy.Integer(3) if x == S.K else 1 + sympy.Rational(i + 1, 7)
    return expr.subs(point), {symbol_name(x): str(v) for x, v in point.items()}


def linear_statement(
    sid: str, claim: str, assumptions: tuple[str, ...], config: Config
) -> Statement:
    """:func:`prove_linear`'s verdict: symbolic T, else each T in :data:`EACH_T`; refuted by
    the first residual that is nonzero on numbers."""
    proof = prove_linear(config)
    if proof.holds:
        return _proven_for_symbolic_t(sid, claim, assumptions, proof)
    values = values_with(None)
    found = []
    for n in EACH_T:
        for index, r in enumerate(proof.unrolled + (proof.induction or (sympy.nan,))):
            r = sympy.sympify(r)
            if r.has(sympy.nan):
                found.append({"tasks": n, "residual_index": index, "residual": "nan"})
                break
            number, extra = _numeric(sympy.sympify(r).subs(T, n).doit(), values)
            if to_float(number) != 0:
                found.append(
                    {
                        "tasks": n,
                        "residual_index": index,
                        "residual": str(r),
                        "value": to_float(number),
                        "values": extra,
                    }
                )
                break
    if len(found) == len(EACH_T):
        first, *more = found
        residuals = proof.unrolled + proof.induction
        evidence = {**first, "more_tasks": more}
        derivation = proof.equations + counterexample_derivation(evidence)
        assumptions = (*assumptions, TASKS_REFUTED)
        return Statement(
            sid, claim, "fails", assumptions, residuals, evidence, derivation=derivation
        )
    proofs = [prove_linear(config, n) for n in EACH_T]
    if all(p.holds for p in proofs):
        return _each_t(sid, claim, assumptions, proofs)
    raise RuntimeError(f"statement {sid!r}: neither proven nor refuted on the instance")


TIME_VARYING_INSTANCE = {W[1, 1]: 1, W[1, 2]: 10, W[1, 3]: 1}
"""A weight alternating between 1 and 10."""


def prove_time_varying(config: Config) -> Comparison:
    """Task t's head under per-step scales ``w[t, k]`` against the unscaled head, for T tasks.
    Induction: a state scaled by ``w_prev[t]^d`` (``d`` read off the unrolled states) leads,
    with scale ``w_next[t]`` at step k, to the same update and the state scaled by
    ``w_next[t]^d``."""
    hp = dict(config.hp)
    steps = range(1, S.STEPS + 1)
    scaled = [head_gradient(lambda j, k=k: W[j, k], G[TASK, k]) for k in steps]
    plain = [head_gradient(lambda j: 1, G[TASK, k]) for k in steps]
    upd_a, state_a = run(config, hp, scaled, False)
    upd_1, state_1 = run(config, hp, plain, False)
    runs = (tuple(upd_a), tuple(upd_1))
    unrolled: list[Expr] = []
    equations: list[Equation] = []
    for k, (u, v) in enumerate(zip(upd_a, upd_1, strict=True), start=1):
        unrolled.append(residual(u, v))
        names = (D.update(k, scaled=True), D.update(k))
        equations += D.comparison(f"step {k}", names, (u, v), unrolled[-1])
        if not is_zero(unrolled[-1]):
            return Comparison(Proof(tuple(unrolled), (), tuple(equations)), *runs)
    last = W[TASK, S.STEPS]
    deg = {key: _degree(state_a[key], state_1[key], last) for key in state_1}
    if any(d is None for d in deg.values()):
        return Comparison(Proof(tuple(unrolled), (sympy.nan,), tuple(equations)), *runs)
    fresh = {key: D.state_symbol(key) for key in deg}
    hyp_a = {key: W_PREV[TASK] ** deg[key] * fresh[key] for key in deg}
    hyp_1 = dict(fresh)
    proof_k = [
        Equation(
            "induction hypothesis: the scaled run's state before step k (scale w_prev)",
            D.state(key, S.K - 1, scaled=True),
            x,
        )
        for key, x in hyp_a.items()
    ]
    rule = get_rule(config.rule)
    new_a = rule.step(SYMPY, S.P, head_gradient(lambda j: W_NEXT[j], H[TASK]), hyp_a, S.K, **hp)
    new_1 = rule.step(SYMPY, S.P, head_gradient(lambda j: 1, H[TASK]), hyp_1, S.K, **hp)
    induction = [residual(new_a, new_1)]
    names = (D.update(S.K, scaled=True), D.update(S.K))
    values = (new_a - S.P, new_1 - S.P)
    proof_k += D.comparison("step k (scale w_next)", names, values, induction[0])
    for key in deg:
        want = W_NEXT[TASK] ** deg[key] * hyp_1[key]
        induction.append(residual(hyp_a[key], want))
        pair = (
            D.state(key, S.K, scaled=True),
            D.scaled(W_NEXT[TASK] ** deg[key], D.state(key, S.K)),
        )
        label = f"state after step k ({key})"
        proof_k += D.comparison(label, pair, (hyp_a[key], want), induction[-1])
    proof = Proof(tuple(unrolled), tuple(induction), tuple(equations), tuple(proof_k))
    return Comparison(proof, *runs)


def time_varying_statement(
    sid: str, claim: str, assumptions: tuple[str, ...], config: Config
) -> Statement:
    """:func:`prove_time_varying`'s verdict; refuted by a weight alternating 1, 10, 1."""
    comparison = prove_time_varying(config)
    proof = comparison.proof
    if proof.holds:
        return _proven_for_symbolic_t(sid, claim, assumptions, proof)
    found = counterexample(comparison, config, None, TIME_VARYING_INSTANCE)
    if found is None:
        raise RuntimeError(f"statement {sid!r}: neither proven nor refuted on the instance")
    return _refuted(sid, claim, (*assumptions, TASKS_HEAD_REFUTED), proof, found)
