"""Gradient clipping and Adam's head invariance, with torch's clipping arithmetic.

``torch.nn.utils.clip_grad_norm_(params, M)`` multiplies every gradient of ``params`` by
``c = min(1, M / (N + 1e-6))``, ``N`` the 2-norm of all of them together. Task t's head sees

* global clipping (all parameters at once): ``c alpha_t g_t`` with ``N`` over the backbone and
  every head, so ``c`` depends on every task's scale: the heads are coupled;
* per-task clipping (each task's parameters on their own; per-parameter clipping when a head is
  one tensor): ``alpha_t g_t min(1, M / (alpha_t n_t + 1e-6))``, ``n_t`` the norm of the
  unscaled head gradient. Exactly ``alpha_t`` times the unscaled gradient clipped at
  ``(M / alpha_t, 1e-6 / alpha_t)``: a scale is a rescaled threshold, and Adam (eps = 0)
  removes the factor ``alpha_t``. With a fixed ``M`` the clipping acts on different steps in
  the two runs, which is a time-varying scale: the invariance fails there.
* clipping of the shared parameters only (:func:`mtl.backward`'s ``max_norm``, LibMTL's):
  the heads' gradients are untouched.

Heads have one tracked coordinate ``g[t, k]`` of norm ``n[t, k]`` (any number of coordinates);
in the global case every parameter is one coordinate, the backbone's gradient from task t being
``b[t, k]``. Both runs are compared in lockstep (:mod:`theory.tasks`); clipping is stateless,
so an identity of the clipped inputs at a symbolic step, with the rule's own proof for inputs
that differ by a constant factor, covers a whole run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import sympy
import torch

import mtl
from mtl.methods import get as get_method
from theory import configs as C
from theory import derivation as D
from theory import symbols as S
from theory import tasks
from theory.algebra import is_zero, residual, to_float
from theory.derivation import Equation
from theory.engine import Config, Proof
from theory.statement import Statement
from theory.tasks import TASK, A, G

Expr = sympy.Expr

MAX_NORM = sympy.Symbol("M", positive=True)
"""``max_norm``."""
TORCH_DELTA = sympy.Rational(1, 10**6)
"""The ``1e-6`` torch adds to the norm."""
NORM = sympy.IndexedBase("n", positive=True)
"""``n[t, k]``: the norm of task t's unscaled head gradient at step k."""
BACKBONE = sympy.IndexedBase("b", real=True, nonzero=True)
"""``b[t, k]``: task t's unscaled backbone gradient at step k (one coordinate)."""
_HEAD_GRADIENTS = {
    x.indices: v for x, v in tasks.INSTANCE.items() if isinstance(x, sympy.Indexed) and x.base == G
}
CLIP_INSTANCE: dict[Any, Expr] = {
    MAX_NORM: sympy.Rational(3, 4),
    **{NORM[tk]: abs(v) for tk, v in _HEAD_GRADIENTS.items()},
    **{BACKBONE[tk]: v for tk, v in _HEAD_GRADIENTS.items()},
}
"""``M = 3/4`` (task 1's unscaled head is clipped at step 1, not at step 2), one-coordinate
heads (``n = |g|``), backbone gradients equal to the head ones."""
STEPS = range(1, len(tasks.PARAMS) + 1)
CLIPPED = "gradient clipping as torch's clip_grad_norm_: c = min(1, M / (norm + 1e-6)), M > 0"
GIVEN = "the unscaled gradient sequences are given; eps = 0, no weight decay, zero initial state"


def coefficient(norm: Expr, max_norm: Expr = MAX_NORM, delta: Expr = TORCH_DELTA) -> Expr:
    """torch's clip coefficient ``min(1, max_norm / (norm + delta))`` (left unevaluated:
    comparing a symbolic norm with 1 is slow and undecided)."""
    return sympy.Min(1, max_norm / (norm + delta), evaluate=False)


def global_inputs(scales: Sequence[Expr], step: int) -> tuple[Expr, Expr]:
    """(head 1's clipped gradient, the coefficient) at ``step`` when all parameters (backbone,
    one-coordinate heads) are clipped together; ``scales`` has one entry per task."""
    backbone = sum(s * BACKBONE[t, step] for t, s in enumerate(scales, start=1))
    heads = [s * G[t, step] for t, s in enumerate(scales, start=1)]
    c = coefficient(sympy.sqrt(backbone**2 + sum(h**2 for h in heads)))
    return heads[0] * c, c


def per_task_input(
    scale: Callable[[Expr], Expr], grad: Expr, norm: Expr, max_norm: Expr, delta: Expr
) -> Expr:
    """Task t's head gradient clipped by its own norm: the Hydra sum
    (:func:`theory.tasks.head_gradient`) of the gradient and of its norm."""
    head = tasks.head_gradient(scale, grad)
    return head * coefficient(tasks.head_gradient(scale, norm), max_norm, delta)


def _per_step(expr: Expr) -> bool:
    """Whether ``expr`` involves a quantity of the symbolic step k."""
    return any(S.K in x.indices for x in expr.atoms(sympy.Indexed))


def _canonical(expr: Expr) -> Expr:
    """``expr`` with each clip coefficient's arguments in canonical form (``sympy.cancel``)."""
    return expr.replace(
        lambda e: isinstance(e, sympy.Min), lambda e: sympy.Min(*map(sympy.cancel, e.args))
    )


def _with_label(prefix: str, equations: Sequence[Equation]) -> list[Equation]:
    return [replace(e, label=f"{prefix}{e.label}") for e in equations]


def _rule_proof(
    config: Config, scaled: Expr, reference: Expr, cache: dict[str, Proof]
) -> tuple[tuple[Expr, ...], list[Equation]]:
    """Residuals proving that the runs agree, from the relation of their inputs at a symbolic
    step k: identical inputs give identical runs (the residual of the inputs); a positive factor
    ``c`` free of the step's quantities is a constant scale (the residual of ``scaled = c
    reference``, then the rule's head proof, for any input sequence); a positive factor that
    changes from step to step (sympy decides its sign) needs the rule's time-varying proof.
    Empty when no proof applies. ``cache`` keeps the rule's proofs across task counts. With
    the equations that show them."""
    names = (D.name("d", S.K, tilde=True), D.name("d", S.K))
    factor = scaled / reference  # sympy cancels the common gradient; the norms keep their form
    if factor == 1 or not _per_step(factor):
        same = residual(scaled, reference)
        if is_zero(same):
            label = "step k: the clipped inputs"
            return (same,), D.comparison(label, names, (scaled, reference), same)
    if not factor.is_positive:
        return (), []
    if _per_step(factor):
        if "varying" not in cache:
            cache["varying"] = tasks.prove_time_varying(config).proof
        varying = cache["varying"]
        if varying.holds:  # covers a constant factor too
            shown = [
                Equation(
                    "step k: the clipped inputs' ratio (a positive per-step scale)",
                    names[0] / names[1],
                    factor,
                )
            ]
            shown += _with_label("the rule's proof for per-step scales, ", varying.equations)
            return (*varying.unrolled, *varying.induction), shown
        if _per_step(_canonical(factor)):
            return (), []
    constant = sympy.cancel(_canonical(factor))
    values = (_canonical(scaled), constant * _canonical(reference))
    related = residual(*values)
    if "constant" not in cache:
        cache["constant"] = tasks.compare(config, "head-per-task-scale").proof
    proof = cache["constant"]
    if not proof.holds:
        return (), []
    pair = (names[0], D.scaled(constant, names[1]))
    shown = D.comparison(
        "step k: the clipped input is a constant times the reference's", pair, values, related
    )
    shown += _with_label("the rule's proof for a constant scale, ", proof.equations)
    return (related, *proof.unrolled, *proof.induction), shown


def verdict(
    sid: str,
    claim: str,
    assumptions: tuple[str, ...],
    config: Config,
    scaled: Callable[[Any], Expr],
    reference: Callable[[Any], Expr],
    counts: Sequence[int] | None = None,
    coefficients: Callable[[Any], tuple[Expr, Expr]] | None = None,
) -> Statement:
    """Head 1 (or task t's head) fed ``scaled(k)`` and ``reference(k)`` at step k: ``fails`` with
    a counterexample on numbers (with both runs' clip coefficients up to its step when
    ``coefficients`` is given); else ``holds`` when the inputs at a symbolic step are related as
    the rule's own proof covers (:func:`_rule_proof`). ``counts``: concrete task counts, one
    comparison each (``scaled``/``reference`` then take ``(n, k)``); None: symbolic T."""
    found, residuals, derivation = [], [], []
    cache: dict[str, Proof] = {}
    for n in counts or (None,):
        at = _at(n, bool(counts))
        inputs = [[f(at(k)) for k in STEPS] for f in (scaled, reference)]
        cx = _numeric_counterexample(config, *inputs, n)
        if cx is not None:
            if coefficients is not None:
                point = _floats()
                pairs = [coefficients(at(k)) for k in range(1, cx["step"] + 1)]
                for side, i in (("scaled", 0), ("reference", 1)):
                    cx[f"clip_coefficients_{side}"] = [
                        to_float(_numbers(c[i], n, point)) for c in pairs
                    ]
            found.append(cx)
            continue
        proof, shown = _rule_proof(config, scaled(at(S.K)), reference(at(S.K)), cache)
        if not (proof and all(is_zero(r) for r in proof)):
            raise RuntimeError(f"statement {sid!r}: neither proven nor refuted on the instance")
        residuals += proof
        derivation += shown if n is None else _with_label(f"T = {n}, ", shown)
    if found:
        which = tasks.TASKS_HEAD_REFUTED if counts is None else tasks.TASKS_REFUTED
        if counts and len(found) < len(counts):
            which = f"T tasks, refuted for T in {', '.join(str(f['tasks']) for f in found)}"
        first, *more = found
        evidence = {**first, "more_tasks": more} if counts else first
        derivation += tasks.counterexample_derivation(evidence)
        assumptions = (*assumptions, which)
        return Statement(
            sid, claim, "fails", assumptions, (), evidence, derivation=tuple(derivation)
        )
    which = tasks.TASKS_SYMBOLIC if counts is None else tasks.TASKS_EACH
    assumptions = (*assumptions, which)
    return Statement(
        sid, claim, "holds", assumptions, tuple(residuals), derivation=tuple(derivation)
    )


def _at(n: int | None, counted: bool) -> Callable[[Any], Any]:
    """The argument of the input functions at step k: ``(n, k)`` for n tasks, else ``k``."""
    return (lambda k: (n, k)) if counted else (lambda k: k)


def _numbers(expr: Expr, n: int | None, point: Mapping[Any, Expr]) -> Expr:
    """``expr`` (task 1 of a head when ``n`` is None) at ``point``, replaced all at once: each
    clip coefficient is then built from numbers only."""
    expr = sympy.sympify(expr)
    return (expr.xreplace({TASK: 1}) if n is None else expr).xreplace(dict(point))


def _floats() -> dict[Any, Expr]:
    """:data:`CLIP_INSTANCE` and the tasks' numbers as 40-digit floats."""
    return {x: sympy.Float(v, 40) for x, v in tasks.values_with(CLIP_INSTANCE).items()}


def _numeric_counterexample(
    config: Config, scaled: Sequence[Expr], reference: Sequence[Expr], n: int | None
) -> dict[str, Any] | None:
    """The first step whose updates differ with the numbers of :data:`CLIP_INSTANCE` put into
    the inputs and hyperparameters first (as 40-digit floats: nested roots of rationals are slow
    exactly), or None."""
    point = tasks.values_with(CLIP_INSTANCE)
    floats = _floats()

    def number(x: Any) -> Any:
        return _numbers(sympy.sympify(x), n, floats) if isinstance(x, sympy.Basic) else x

    hp = {
        k: tuple(map(number, v)) if isinstance(v, tuple) else number(v)
        for k, v in config.hp.items()
    }
    numeric = replace(config, hp=hp)
    upd_a, _ = tasks.run(numeric, hp, [number(x) for x in scaled], False)
    upd_1, _ = tasks.run(numeric, hp, [number(x) for x in reference], False)
    comparison = tasks.Comparison(Proof((), ()), tuple(upd_a), tuple(upd_1))
    found = tasks.counterexample(comparison, numeric, n, CLIP_INSTANCE)
    if found is None:
        return None
    step = found["step"]
    exprs = [
        *scaled[:step],
        *reference[:step],
        *(x for v in config.hp.values() for x in (v if isinstance(v, tuple) else (v,))),
    ]
    used = set().union(
        *(sympy.sympify(_numbers(sympy.sympify(x), n, {})).free_symbols for x in exprs)
    )
    used = sorted((x for x in used if x in point), key=tasks.symbol_name)
    found["values"] = {tasks.symbol_name(x): str(point[x]) for x in used}
    return found


# --- the statements --------------------------------------------------------------------------


def _others_scaled(j: Expr) -> Expr:
    """Task j's scale when every task but t is scaled: ``a[j]`` for ``j != t``, 1 for t."""
    return A[j] + (1 - A[j]) * sympy.KroneckerDelta(j, TASK)


def _own(
    scale: Callable[[Expr], Expr], max_norm: Expr = MAX_NORM, delta: Expr = TORCH_DELTA
) -> Callable[[Any], Expr]:
    """Task t's head input at step k under per-task clipping at ``(max_norm, delta)``."""

    def inputs(k: Any) -> Expr:
        return per_task_input(scale, G[TASK, k], NORM[TASK, k], max_norm, delta)

    return inputs


def _own_coefficients(k: Any) -> tuple[Expr, Expr]:
    return coefficient(A[TASK] * NORM[TASK, k]), coefficient(NORM[TASK, k])


PER_TASK = "each task's parameters clipped on their own (per-task or per-parameter clipping)"


def per_task_other_scales() -> Statement:
    return verdict(
        "clip.per-task.adam.head.other-task-scale",
        "Adam (eps = 0) with each task's gradient clipped by its own norm: task t's head update "
        "does not depend on the other tasks' scales alpha_j, j != t.",
        (CLIPPED, PER_TASK, GIVEN, "identical inputs at every step give identical runs"),
        C.ADAM_EPS0,
        _own(_others_scaled),
        _own(lambda j: 1),
    )


def per_task_threshold() -> Statement:
    a = A[TASK]
    return verdict(
        "clip.per-task.adam.head.scale-is-threshold-rescaling",
        "Adam (eps = 0) with per-task clipping at max_norm M: loss alpha_t L_t gives the head "
        "update of clipping at (M / alpha_t, 1e-6 / alpha_t) on L_t.",
        (CLIPPED, PER_TASK, GIVEN),
        C.ADAM_EPS0,
        _own(lambda j: A[j]),
        _own(lambda j: 1, MAX_NORM / a, TORCH_DELTA / a),
    )


def per_task_fixed_threshold() -> Statement:
    return verdict(
        "clip.per-task.adam.head.per-task-scale",
        "Adam (eps = 0) with per-task clipping at a fixed max_norm M: task t's head update is "
        "invariant to alpha_t (where the clipping acts in one run only, it is a scale that "
        "changes from step to step).",
        (CLIPPED, PER_TASK, GIVEN, "M = 3/4 in the instance"),
        C.ADAM_EPS0,
        _own(lambda j: A[j]),
        _own(lambda j: 1),
        coefficients=_own_coefficients,
    )


def _global_scales(kind: str) -> Callable[[int], list[Expr]]:
    """The scaled run's per-task scales for n tasks: all (``a[t]``), or all but task 1's."""
    if kind == "per-task-scale":
        return lambda n: [A[t] for t in range(1, n + 1)]
    return lambda n: [1] + [A[t] for t in range(2, n + 1)]


def _global(config: Config, slug: str, kind: str) -> Callable[[], Statement]:
    what = {
        "per-task-scale": "head 1's update is invariant to the per-task scales alpha_t",
        "other-task-scale": "head 1's update does not depend on the other tasks' scales "
        "alpha_2..alpha_T (alpha_1 = 1)",
    }[kind]
    scales_for = _global_scales(kind)

    def build() -> Statement:
        return verdict(
            f"clip.global-norm.{slug}.head.{kind}",
            f"{config.label} with global-norm clipping (clip_grad_norm_ over all parameters, "
            f"backbone and heads): {what}.",
            (CLIPPED, "all parameters clipped together, one coordinate each", GIVEN),
            config,
            lambda nk: global_inputs(scales_for(nk[0]), nk[1])[0],
            lambda nk: global_inputs([1] * nk[0], nk[1])[0],
            counts=tasks.EACH_T,
            coefficients=lambda nk: (
                global_inputs(scales_for(nk[0]), nk[1])[1],
                global_inputs([1] * nk[0], nk[1])[1],
            ),
        )

    return build


SHARED_SCALES = (0.125, 8.0)
"""Powers of two: ``alpha * grad`` is exact in floating point."""


def shared_only() -> Statement:
    """:func:`mtl.backward` with ``max_norm`` on a tiny model (two heads, float64): each head's
    gradient is exactly what it is without clipping, and ``alpha_t`` times the unscaled one,
    while the shared gradient is clipped; the head then sees ``alpha_t g_t`` and Adam's head
    proof applies."""
    sid = "clip.shared-only.adam.head.per-task-scale"
    claim = (
        "Adam (eps = 0) with only the shared parameters clipped (mtl.backward's max_norm, "
        "LibMTL's): task t's head update is invariant to alpha_t."
    )
    assumptions = ("mtl.backward(max_norm=1/2) on a two-head model, clipping active", GIVEN)
    checks = _shared_clipping_residuals()
    proof = tasks.compare(C.ADAM_EPS0, "head-per-task-scale").proof
    residuals = (*checks, *proof.unrolled, *proof.induction)
    label = (
        "mtl.backward(max_norm): per head, clipped minus unclipped and minus alpha_t times "
        "unscaled; 1 if the shared gradient was not clipped"
    )
    derivation = (
        D.checked(label, checks),
        *_with_label("Adam's head proof, ", proof.equations),
    )
    if proof.holds and all(is_zero(r) for r in checks):
        assumptions = (*assumptions, tasks.TASKS_SYMBOLIC)
        return Statement(sid, claim, "holds", assumptions, residuals, derivation=derivation)
    index = next(i for i, r in enumerate(residuals) if not is_zero(r))
    found = {"residual_index": index, "residual": str(residuals[index])}
    derivation += tuple(D.evidence_equations(found))
    return Statement(sid, claim, "fails", assumptions, residuals, found, derivation=derivation)


def _tiny_backward(alphas: Sequence[float], max_norm: float | None) -> list[torch.Tensor]:
    """``.grad`` of (backbone, head 1, head 2) after :func:`mtl.backward` with EW on
    ``sum_t alpha_t (psi_t phi - y_t)^2 / 2``."""
    phi = torch.tensor([1.5], dtype=torch.float64, requires_grad=True)
    psi = [torch.tensor([v], dtype=torch.float64, requires_grad=True) for v in (0.5, -2.0)]
    targets = (-1.0, 3.0)
    losses = [
        a * ((p * phi - y) ** 2).sum() / 2 for a, p, y in zip(alphas, psi, targets, strict=True)
    ]
    mtl.backward(losses, get_method("ew"), shared=[phi], max_norm=max_norm)
    return [phi.grad.clone(), *(p.grad.clone() for p in psi)]


def _shared_clipping_residuals() -> list[Expr]:
    """Exact differences (zero when the claim's premise holds): each head's gradient with and
    without ``max_norm``; each scaled head gradient against ``alpha_t`` times the unscaled one;
    and 0 if the shared gradient was clipped (1 if the clipping did not act)."""
    clipped = _tiny_backward(SHARED_SCALES, 0.5)
    free = _tiny_backward(SHARED_SCALES, None)
    plain = _tiny_backward((1.0, 1.0), 0.5)
    out: list[Expr] = []
    for t in (1, 2):
        out.append(sympy.Rational(clipped[t].item()) - sympy.Rational(free[t].item()))
        scale = sympy.Rational(SHARED_SCALES[t - 1])
        out.append(sympy.Rational(clipped[t].item()) - scale * sympy.Rational(plain[t].item()))
    acted = clipped[0].abs().item() < free[0].abs().item()
    out.append(sympy.S.Zero if acted else sympy.S.One)
    return out


BUILDERS: tuple[Callable[[], Statement], ...] = (
    _global(C.ADAM_EPS0, "adam", "per-task-scale"),
    _global(C.ADAM_EPS0, "adam", "other-task-scale"),
    _global(C.SIGNSGD, "signsgd", "per-task-scale"),
    per_task_other_scales,
    per_task_threshold,
    per_task_fixed_threshold,
    shared_only,
)
"""The clipping statements."""
