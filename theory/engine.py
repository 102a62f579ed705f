"""Run the rules of :mod:`mtl.optim` on symbols and compare a scaled run with a reference run.

This is the two-task comparison of the atlas and the levers; :mod:`theory.tasks` runs the
statements' comparisons for T tasks on the same rules.

A *comparison* feeds task t's gradients multiplied by its loss scale ``a_t`` to one optimizer
configuration and the unscaled gradients to a *reference* (the same configuration, or one whose
hyperparameters are mapped, e.g. ``lr -> a lr`` or ``eps -> eps / a``), and asks whether every
update agrees. A proof has two parts, each a list of residuals that must be exactly zero:

* the first :data:`~theory.symbols.STEPS` steps unrolled from the initial state;
* the induction step: a state scaled by ``a^d`` (``d`` read off the unrolled states, e.g. 1 for
  Adam's first moment, 2 for its second) at a symbolic step ``k`` leads to the scaled state and
  the same update, given the same parameter.

A counterexample runs the same rules on exact rationals (:data:`~theory.symbols.INSTANCE`).

A *hybrid* (:attr:`Config.backbone`) runs one rule on the heads and another on the backbone; a
kind is then decided on the coordinates it acts on (:func:`parts`). :func:`lever` asks whether a
task weight is a learning-rate factor of the coordinate's optimizer state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import sympy

from mtl.optim import SYMPY, get_rule
from theory import derivation as D
from theory import symbols as S
from theory.algebra import is_zero, normalize, residual, to_float
from theory.derivation import Equation

Expr = sympy.Expr
State = dict[str, Expr]
ReferenceMap = Callable[[Mapping[str, Any], Expr], Mapping[str, Any]]
"""Maps (hyperparameters, the task's scale a) to the reference run's hyperparameters."""

KINDS = ("common-scale", "head-per-task-scale", "backbone-per-task-scale")
"""Invariance kinds: one scale on all tasks (every parameter); a task's own scale seen by its
head; per-task scales seen by the shared backbone."""


@dataclass(frozen=True)
class Config:
    """An optimizer: a rule of :mod:`mtl.optim` with hyperparameters (symbols or numbers).

    ``per_task`` keeps one rule state per task and applies the sum of the per-task updates
    (AdaTask, MTL-IO), exactly as :class:`mtl.optim.Optimizer` does for a ``tasks`` group.
    ``backbone``: a hybrid, whose backbone runs that configuration and whose heads run this one
    (one parameter group each, as :mod:`mtl.optim` allows).
    ``shape``: the parameter is a small symbolic tensor of this shape (a 2-vector, a 2x2
    matrix), for rules that act on whole tensors; ``()``: one coordinate.
    ``eps_power``: how eps scales with a loss scale a (``eps -> eps / a^power``); None: the
    rule's own (:attr:`mtl.optim.Rule.eps_power`).
    """

    label: str
    rule: str
    hp: Mapping[str, Any] = field(default_factory=dict)
    per_task: bool = False
    backbone: Config | None = None
    shape: tuple[int, ...] = ()
    eps_power: int | None = None

    def with_hp(self, **hp: Any) -> Config:
        return replace(self, hp={**self.hp, **hp})

    @property
    def eps_scaling(self) -> int:
        """The power of the scale by which eps is divided: ``eps -> eps / a^power``."""
        return get_rule(self.rule).eps_power if self.eps_power is None else self.eps_power

    def lift(self, x: Expr) -> Any:
        """A symbol as this configuration's parameter shape: itself, or an array of symbols."""
        return x if isinstance(x, np.ndarray) else S.tensor(x, self.shape)

    @property
    def heads(self) -> Config:
        """The configuration of the heads (the whole configuration unless a hybrid)."""
        return replace(self, backbone=None)


HEADS, BACKBONE = "heads", "backbone"


def parts(config: Config, kind: str) -> list[tuple[str, Config, str]]:
    """``(part, configuration, kind)`` of every parameter group a kind acts on: a head
    coordinate of task t sees its own scale (``head-per-task-scale``), a backbone coordinate
    the kind's scales; one common scale acts on both."""
    scenario(kind)  # an unknown kind raises here
    if config.backbone is None:
        return [(HEADS if kind == "head-per-task-scale" else BACKBONE, config, kind)]
    heads = (HEADS, config.heads, "head-per-task-scale")
    backbone = (BACKBONE, config.backbone, kind)
    if kind == "head-per-task-scale":
        return [heads]
    return [backbone] if kind == "backbone-per-task-scale" else [heads, backbone]


@dataclass(frozen=True)
class Proof:
    """Residuals of the unrolled steps and of the induction step; proven iff both are present
    and all are zero (unrolled steps alone prove nothing about a run). The equations show what
    was compared: per step the two runs' updates and their reduced difference."""

    unrolled: tuple[Expr, ...]
    induction: tuple[Expr, ...]
    unrolled_equations: tuple[Equation, ...] = ()
    induction_equations: tuple[Equation, ...] = ()

    @property
    def equations(self) -> tuple[Equation, ...]:
        return self.unrolled_equations + self.induction_equations

    @property
    def holds(self) -> bool:
        residuals = self.unrolled + self.induction
        return bool(self.unrolled and self.induction) and all(is_zero(r) for r in residuals)


def scenario(kind: str) -> tuple[tuple[Expr, ...], tuple[tuple[Expr, ...], ...]]:
    """(per-task scales, per-task gradient sequences) of an invariance kind."""
    if kind == "common-scale":
        return (S.ALPHA,) * S.TASKS, S.G
    if kind == "head-per-task-scale":
        return (S.ALPHAS[0],), S.G[:1]
    if kind == "backbone-per-task-scale":
        return S.ALPHAS, S.G
    raise ValueError(f"unknown invariance kind {kind!r}; valid: {', '.join(KINDS)}")


def _init(config: Config, hp: Mapping[str, Any], param: Expr) -> State:
    rule = get_rule(config.rule)
    return rule.init(SYMPY, param, **{**rule.defaults, **hp})


def step(
    config: Config,
    param: Expr,
    grads: Sequence[Expr],
    states: list[State],
    k: Any,
    hps: Sequence[Mapping[str, Any]],
) -> Expr:
    """One step on per-task gradients ``grads``; ``states``/``hps`` hold one entry per task if
    ``config.per_task`` (the sum of per-task updates), else one for the summed gradient."""
    rule = get_rule(config.rule)
    if config.per_task:
        new = param
        for grad, state, hp in zip(grads, states, hps, strict=True):
            new = new + rule.step(SYMPY, param, grad, state, k, **hp) - param
        return new
    return rule.step(SYMPY, param, sum(grads[1:], grads[0]), states[0], k, **hps[0])


def unroll(
    config: Config, grads: Sequence[Sequence[Expr]], hps: Sequence[Mapping[str, Any]], param: Expr
) -> tuple[list[Expr], list[State]]:
    """The updates ``p_k - p_{k-1}`` of a run on per-task gradient sequences, and the last state."""
    param = config.lift(param)
    states = [_init(config, hp, param) for hp in hps]
    updates = []
    for k, grads_k in enumerate(zip(*grads, strict=True), start=1):
        new = step(config, param, grads_k, states, k, hps)
        updates.append(new - param)
        param = new
    return updates, states


def _runs(
    config: Config, kind: str, reference: ReferenceMap | None
) -> tuple[tuple[Expr, ...], tuple[tuple[Expr, ...], ...], list[Mapping], list[Mapping]]:
    """Scales, per-task gradients, and per-state hyperparameters of the scaled and reference
    runs."""
    scales, grads = scenario(kind)
    hp = dict(config.hp)
    if config.per_task:
        refs = [reference(hp, a) if reference else hp for a in scales]
        return scales, grads, [hp] * len(scales), refs
    if reference is not None and len(set(scales)) > 1:
        raise ValueError(
            f"a hyperparameter map needs one scale per optimizer state; {config.label!r} shares "
            f"one state across tasks under {kind!r}: use identity (reference=None)"
        )
    return scales, grads, [hp], [reference(hp, scales[0]) if reference else hp]


def _degree(scaled: Expr, ref: Expr, scale: Expr) -> int | None:
    """``d`` with ``scaled = scale^d ref``, or None when the ratio is not a power of ``scale``."""
    if isinstance(ref, np.ndarray):  # one degree for every entry that is not zero in both
        pairs = zip(scaled.ravel(), ref.ravel(), strict=True)
        found = {_degree(x, y, scale) for x, y in pairs if not (is_zero(x) and is_zero(y))}
        return found.pop() if len(found) == 1 else (0 if not found else None)
    if is_zero(ref):
        return 0 if is_zero(scaled) else None
    ratio = sympy.cancel(normalize(scaled / ref))
    if ratio == 1:
        return 0
    base, exp = ratio.as_base_exp()
    return int(exp) if base == scale and exp.is_Integer else None


def prove(
    config: Config,
    kind: str,
    reference: ReferenceMap | None = None,
    deep: bool = False,
    steps: int = S.STEPS,
) -> Proof:
    """Try to prove that the scaled run's updates equal the reference run's, for every step
    (``deep``: let ``sympy.simplify`` try what the targeted reduction leaves). ``steps``
    unrolled steps (at least 1: the base case from the zero state) precede the induction.
    A hybrid is proven part by part (:func:`parts`), the first failing part its evidence."""
    if config.backbone is not None:
        unrolled: list[Expr] = []
        induction: list[Expr] = []
        shown: list[Equation] = []
        shown_k: list[Equation] = []
        for name, part, part_kind in parts(config, kind):
            proof = prove(part, part_kind, reference, deep, steps)
            unrolled += proof.unrolled
            label = f"{name} ({part.rule})"
            shown += [replace(e, label=f"{label}, {e.label}") for e in proof.unrolled_equations]
            if not proof.holds:
                return Proof(tuple(unrolled), proof.induction, tuple(shown))
            induction += proof.induction
            shown_k += [replace(e, label=f"{label}, {e.label}") for e in proof.induction_equations]
        return Proof(tuple(unrolled), tuple(induction), tuple(shown), tuple(shown_k))
    return _prove(config, *_runs(config, kind, reference), deep, steps)


def _prove(config, scales, grads, hps, refs, deep: bool, steps: int) -> Proof:
    """:func:`prove` on given scales, gradients and per-state hyperparameters."""
    grads = tuple(tuple(config.lift(g) for g in seq[:steps]) for seq in grads)
    scaled_grads = [[a * g for g in seq] for a, seq in zip(scales, grads, strict=True)]
    upd_a, states_a = unroll(config, scaled_grads, hps, S.P0)
    upd_1, states_1 = unroll(config, grads, refs, S.P0)
    unrolled: list[Expr] = []
    equations = [
        eq for hp, ref in zip(hps, refs, strict=True) for eq in D.hyperparameter_map(hp, ref)
    ]
    equations = list(dict.fromkeys(equations))  # per-task states share one map
    for k, (u, v) in enumerate(zip(upd_a, upd_1, strict=True), start=1):
        unrolled.append(residual(u, v, deep))
        equations += _updates(f"step {k}", k, u, v, unrolled[-1], scales)
        if not is_zero(unrolled[-1]):  # the first failing step is the evidence
            return Proof(tuple(unrolled), (), tuple(equations))
    induction, proof_k = _induction(config, scales, states_a, states_1, hps, refs, deep)
    return Proof(tuple(unrolled), induction, tuple(equations), proof_k)


def _updates(
    label: str, k: Any, scaled: Expr, reference: Expr, reduced: Expr, scales: Sequence[Expr]
) -> list[Equation]:
    """The two runs' updates at step ``k`` and their reduced difference."""
    names = (D.update(k, scaled=True), D.update(k))
    return D.comparison(label, names, (D.shown(scaled), D.shown(reference)), reduced, scales)


def _induction(
    config, scales, states_a, states_1, hps, refs, deep: bool
) -> tuple[tuple[Expr, ...], tuple[Equation, ...]]:
    """Residuals (and equations) of one symbolic step k from states scaled as the unrolled run
    says they are."""
    state_scales = scales if config.per_task else scales[:1]
    several = len(state_scales) > 1
    hyp_a: list[State] = []
    hyp_1: list[State] = []
    degrees: list[dict[str, int]] = []
    equations: list[Equation] = []
    for t, (a, sa, s1) in enumerate(zip(state_scales, states_a, states_1, strict=True)):
        deg = {key: _degree(sa[key], s1[key], a) for key in s1}
        if any(d is None for d in deg.values()):
            return (sympy.nan,), ()  # the state is no power of the scale: no hypothesis
        index = t + 1 if several else None
        fresh = {key: S.tensor(D.state_symbol(key, index), np.shape(s1[key])) for key in s1}
        hyp_a.append({key: a ** deg[key] * fresh[key] for key in s1})
        hyp_1.append(dict(fresh))
        degrees.append(deg)
        equations += [
            Equation(
                "induction hypothesis: the scaled run's state before step k",
                D.state(key, S.K - 1, scaled=True, index=index),
                hyp_a[-1][key],
            )
            for key in s1
        ]
    h = [config.lift(x) for x in S.H[: len(scales)]]
    p = config.lift(S.P)
    new_a = step(config, p, [a * g for a, g in zip(scales, h, strict=True)], hyp_a, S.K, hps)
    new_1 = step(config, p, h, hyp_1, S.K, refs)
    out = [residual(new_a, new_1, deep)]
    equations += _updates("step k", S.K, new_a - p, new_1 - p, out[0], scales)
    for t, (a, sa, s1, deg) in enumerate(zip(state_scales, hyp_a, hyp_1, degrees, strict=True)):
        index = t + 1 if several else None
        for key in s1:
            out.append(residual(sa[key], a ** deg[key] * s1[key], deep))
            names = (
                D.state(key, S.K, scaled=True, index=index),
                D.scaled(a ** deg[key], D.state(key, S.K, index=index)),
            )
            values = (D.shown(sa[key]), D.shown(a ** deg[key] * s1[key]))
            label = f"state after step k ({key})"
            equations += D.comparison(label, names, values, out[-1], scales)
    return tuple(out), tuple(equations)


def counterexample(
    config: Config,
    kind: str,
    reference: ReferenceMap | None = None,
    instance: Mapping[sympy.Symbol, Expr] | None = None,
) -> dict[str, Any] | None:
    """The first step at which the two runs' updates differ on concrete numbers, or None; for
    a hybrid, in the first part that differs (named by ``"part"``)."""
    if config.backbone is not None:
        for name, part, part_kind in parts(config, kind):
            found = counterexample(part, part_kind, reference, instance)
            if found is not None:
                return {"part": f"{name} ({part.rule})", **found}
        return None
    return _counterexample(config, kind, *_runs(config, kind, reference), instance)


def _counterexample(config, kind, scales, grads, hps, refs, instance) -> dict[str, Any] | None:
    """:func:`counterexample` on given scales, gradients and per-state hyperparameters."""
    values = dict(S.INSTANCE if instance is None else instance)
    if config.shape:  # tensor entries: the coordinate's value times 1 + n/5 (n: flat index)
        for x in [S.P0, *(g for seq in grads for g in seq)]:
            for n, entry in enumerate(config.lift(x).ravel()):
                values[entry] = values[x] * (1 + sympy.Rational(n, 5))

    def subs(x: Any) -> Any:
        return sympy.sympify(x).subs(values) if isinstance(x, sympy.Basic) else x

    def concrete(hp: Mapping[str, Any]) -> dict[str, Any]:
        return {k: tuple(map(subs, v)) if isinstance(v, tuple) else subs(v) for k, v in hp.items()}

    def lifted(x: Expr) -> Any:
        lift = config.lift(x)
        return (
            np.vectorize(subs, otypes=[object])(lift) if isinstance(lift, np.ndarray) else subs(x)
        )

    nums = [[lifted(g) for g in seq] for seq in grads]
    scaled = [[subs(a) * g for g in seq] for a, seq in zip(scales, nums, strict=True)]
    upd_a, _ = unroll(config, scaled, [concrete(h) for h in hps], lifted(S.P0))
    upd_1, _ = unroll(config, nums, [concrete(h) for h in refs], lifted(S.P0))
    for k, (u, v) in enumerate(zip(upd_a, upd_1, strict=True), start=1):
        fu, fv = _largest_difference(u, v)
        if abs(fu - fv) > 1e-9 * max(abs(fu), abs(fv)):
            inputs = _entries(_inputs(config, kind))
            used = set().union(*(sympy.sympify(x).free_symbols for x in inputs))
            return {
                "step": k,
                "values": {str(s): str(values[s]) for s in sorted(used, key=str) if s in values},
                "update_scaled": fu,
                "update_reference": fv,
            }
    return None


def _entries(values: Sequence[Any]) -> list[Any]:
    """Every entry of values that may be arrays."""
    return [e for x in values for e in (x.ravel() if isinstance(x, np.ndarray) else (x,))]


def _largest_difference(u: Any, v: Any) -> tuple[float, float]:
    """The entries of two concrete updates (tensors: the pair that differs most), as floats."""
    pairs = [(to_float(x), to_float(y)) for x, y in zip(_entries([u]), _entries([v]), strict=True)]
    return max(pairs, key=lambda pair: abs(pair[0] - pair[1]))


def residual_counterexample(
    residuals: Sequence[Expr], instance: Mapping[sympy.Symbol, Expr] | None = None
) -> dict[str, Any] | None:
    """The first residual that is nonzero on concrete numbers (the instance, and small
    rationals ``1 + i/7`` for any other symbol), with its value; None when all vanish there."""
    values = dict(S.INSTANCE if instance is None else instance)
    for index, r in enumerate(residuals):
        expr = sympy.sympify(r)
        if expr.has(sympy.nan):
            return {"residual_index": index, "residual": "nan (no induction hypothesis)"}
        extra = sorted(expr.free_symbols - set(values), key=str)
        point = {**values, **{x: 1 + sympy.Rational(i + 1, 7) for i, x in enumerate(extra)}}
        value = to_float(expr.subs(point))
        if value != 0:
            used = sorted(expr.free_symbols, key=str)
            return {
                "residual_index": index,
                "residual": str(expr),
                "value": value,
                "values": {str(x): str(point[x]) for x in used},
            }
    return None


def _inputs(config: Config, kind: str) -> list[Any]:
    """Every symbolic input of a comparison (hyperparameters, scales, gradients, start value)."""
    scales, grads = scenario(kind)
    hp_values = [x for v in config.hp.values() for x in (v if isinstance(v, tuple) else (v,))]
    return [x for x in hp_values if isinstance(x, sympy.Basic)] + [
        *scales,
        *(config.lift(g) for seq in grads for g in seq),
        config.lift(S.P0),
    ]


@dataclass(frozen=True)
class Lever:
    """Is a task weight a learning-rate factor of an optimizer state?

    ``factors``: per state (one, or one per task), the factor ``c`` with which the unweighted
    run at learning rate ``c lr`` makes the weighted run's first update; ``proof``: that these
    constant factors match every update (unrolled steps and induction); ``counterexample``: the
    first step they do not, on the instance (None when proven)."""

    factors: tuple[Expr, ...]
    proof: Proof
    counterexample: dict[str, Any] | None


def _first_ratio(config: Config, scaled, plain, hp: Mapping[str, Any]) -> Expr:
    """The weighted over the unweighted first update: every rule's first update from the zero
    state is proportional to lr, so this is the only factor that can match it."""
    (u_a, *_), _ = unroll(config, [seq[:1] for seq in scaled], [hp], S.P0)
    (u_1, *_), _ = unroll(config, [seq[:1] for seq in plain], [hp], S.P0)
    return sympy.cancel(normalize(u_a / u_1))


def lever(config: Config, kind: str) -> Lever:
    """Whether task weights (the kind's scales) act on the kind's coordinate as constant
    learning-rate factors: one factor for a shared state, one per task for per-task states."""
    if config.backbone is not None or kind == "common-scale":
        raise ValueError("a lever is asked of one plain optimizer under a per-task kind")
    scales, grads = scenario(kind)
    hp = dict(config.hp)
    plain = replace(config, per_task=False)
    scaled = [[a * g for g in seq] for a, seq in zip(scales, grads, strict=True)]
    if config.per_task:
        pairs = zip(scaled, grads, strict=True)
        factors = tuple(_first_ratio(plain, [s], [g], hp) for s, g in pairs)
    else:
        factors = (_first_ratio(plain, scaled, grads, hp),)
    hps = [hp] * len(factors)
    refs = [{**hp, "lr": hp["lr"] * c} for c in factors]
    proof = _prove(config, scales, grads, hps, refs, False, S.STEPS)
    found = None
    if not proof.holds:
        found = _counterexample(config, kind, scales, grads, hps, refs, None)
    return Lever(factors, proof, found)
