"""The statements (issue items a-h; levers and hybrids): each a derivation on the rules of
:mod:`mtl.optim`, for T tasks (:mod:`theory.tasks`); the clipping, mixed-precision and
schedule statements come from :mod:`theory.clipping`, :mod:`theory.precision` and
:mod:`theory.schedules`. Each carries its derivation (:mod:`theory.derivation`).

Paper slips recorded here: Eq. 21 writes beta1 in the backbone's second-moment update (it is
beta2; the rules use beta2); Appendix A1 claim (b), "Adam offers loss-scale invariance for all
network parameters (backbone and heads) if beta1 = beta2 = 0", is false for per-task scales:
the backbone then steps by ``-lr sign(sum_t a_t g_t)``, which depends on the ratios of the a_t
(statement ``adam-beta0.backbone.per-task-scale``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import lru_cache

import sympy

from mtl.optim import SYMPY, get_rule
from theory import clipping, precision, schedules, tasks
from theory import configs as C
from theory import derivation as D
from theory import symbols as S
from theory.algebra import is_zero, residual, to_float
from theory.bounds import bound_derivation
from theory.derivation import Equation
from theory.engine import (
    Config,
    lever,
    residual_counterexample,
)
from theory.statement import Statement

GIVEN = "the unscaled loss's gradient sequence is given (per step; a whole run: .run statements)"
CONSTANT = "constant scales alpha_t > 0"
ZERO_INIT = "zero initial optimizer state"
NO_WD = "no weight decay"
EPS0 = "eps = 0 (the paper's Eq. 19)"
FROZEN = "frozen backbone: the head's gradient depends only on the head parameter and the data"
ELEMENTWISE = "element-wise rule: one coordinate suffices"


def _compare(sid, claim, assumptions, config, kind, reference=None, instance=None) -> Statement:
    """The comparison for T tasks (:func:`theory.tasks.statement`): proven for symbolic T (or
    each T in 2..5), or refuted by a counterexample."""
    return tasks.statement(sid, claim, assumptions, config, kind, reference, instance=instance)


# --- a. Adam, heads ------------------------------------------------------------------------


def adam_head() -> Statement:
    return _compare(
        "adam.head.per-task-scale",
        "Adam (bias-corrected, eps = 0): the update of task t's head is the same for loss "
        "alpha_t L_t as for L_t.",
        (GIVEN, CONSTANT, EPS0, NO_WD, ZERO_INIT, ELEMENTWISE),
        C.ADAM_EPS0,
        "head-per-task-scale",
    )


def adam_head_no_bias_correction() -> Statement:
    return _compare(
        "adam.head.per-task-scale.no-bias-correction",
        "Adam without bias correction (eps = 0): the head update is invariant to alpha_t.",
        (GIVEN, CONSTANT, EPS0, NO_WD, ZERO_INIT, ELEMENTWISE),
        C.ADAM_EPS0.with_hp(bias_correction=False),
        "head-per-task-scale",
    )


def adam_head_run_frozen() -> Statement:
    return tasks.run_statement(
        "adam.head.run.frozen-backbone",
        "Adam (eps = 0) with a frozen backbone: the whole head trajectory is invariant to alpha_t.",
        (FROZEN, CONSTANT, EPS0, NO_WD, ZERO_INIT),
        C.ADAM_EPS0,
    )


TINY_TARGETS = (-1, 1, -1, 1, 1)
"""The tiny model's targets ``y_t`` (up to five tasks): for each T the scales flip the sign
of the first backbone gradient, so the backbones part after step 1."""


def _tiny_model_run(alphas: tuple, steps: int = 2) -> list[dict[str, sympy.Expr]]:
    """Adam (eps = 0, instance hyperparameters) on ``L_t = (psi_t phi x - y_t)^2 / 2`` for
    T = len(alphas) tasks, x = 1, y = (-1, 1, -1, 1, 1)[:T], phi_0 = 1, psi_0 = 1/2, total loss
    ``sum_t alpha_t L_t``; parameters after each step."""
    phi = sympy.Symbol("phi", real=True)
    heads = sympy.symbols(f"psi_1:{len(alphas) + 1}", real=True)
    losses = [(h * phi - y) ** 2 / 2 for h, y in zip(heads, TINY_TARGETS, strict=False)]
    total = sum(a * loss for a, loss in zip(alphas, losses, strict=True))
    rule = get_rule("adam")
    hp = {
        **C.ADAM_EPS0.hp,
        "lr": S.INSTANCE[S.LR],
        "betas": (S.INSTANCE[S.BETA1], S.INSTANCE[S.BETA2]),
    }
    point = {phi: sympy.S.One, **{h: sympy.Rational(1, 2) for h in heads}}
    states = {p: rule.init(SYMPY, point[p], **{**rule.defaults, **hp}) for p in point}
    out = []
    for k in range(1, steps + 1):
        grads = {p: sympy.diff(total, p).subs(point) for p in point}
        point = {p: rule.step(SYMPY, point[p], grads[p], states[p], k, **hp) for p in point}
        out.append(dict(point))
    return out


def _tiny_model_difference(
    n: int,
) -> tuple[dict | None, tuple[sympy.Expr, ...], list[Equation]]:
    """The first step whose head-1 updates differ on the tiny model with n tasks (scales of
    :data:`theory.tasks.INSTANCE`), or None with the (zero) residuals; and the equations of
    the steps compared."""
    scales = tuple(tasks.INSTANCE[tasks.A[t]] for t in range(1, n + 1))
    scaled, ref = _tiny_model_run(scales), _tiny_model_run((1,) * n)
    head = sympy.Symbol("psi_1", real=True)
    start = sympy.Rational(1, 2)

    def updates(run):
        return [p[head] - q for p, q in zip(run, [start] + [r[head] for r in run], strict=False)]

    alphas = sympy.Tuple(*(sympy.Symbol(f"alpha_{t}") for t in range(1, n + 1)))
    shown = [Equation(f"counterexample, T = {n}: the scales", alphas, sympy.Tuple(*scales))]
    for k, (u, v) in enumerate(zip(updates(scaled), updates(ref), strict=True), start=1):
        names = (D.update(k, scaled=True), D.update(k))
        shown += D.comparison(f"T = {n}, step {k}, head psi_1", names, (u, v), u - v)
        if not is_zero(sympy.nsimplify(u - v)):
            targets = ", ".join(map(str, TINY_TARGETS[:n]))
            return (
                {
                    "tasks": n,
                    "model": f"L_t = (psi_t * phi * x - y_t)^2 / 2, x = 1, y = ({targets}), "
                    "phi_0 = 1, psi_0 = 1/2, Adam lr 1/100 betas (9/10, 999/1000) eps 0",
                    "alphas": [str(a) for a in scales],
                    "step": k,
                    "update_scaled": to_float(u),
                    "update_reference": to_float(v),
                },
                (),
                shown,
            )
    residuals = tuple(residual(u, v) for u, v in zip(updates(scaled), updates(ref), strict=True))
    return None, residuals, shown


def adam_head_run_trained() -> Statement:
    """The two runs on the tiny model with T = 2..5 tasks, exactly: for each T the first step
    whose head updates differ is a counterexample; if none did, the claim would hold on this
    model (and be reported so)."""
    claim = (
        "Adam (eps = 0) with the backbone trained too: the head trajectory is invariant to "
        "per-task scales (a differently moving backbone changes the head's gradients)."
    )
    assumptions = (CONSTANT, EPS0, NO_WD, ZERO_INIT, "the tiny model of the counterexample")
    found, residuals, shown = zip(*(_tiny_model_difference(n) for n in tasks.EACH_T), strict=True)
    derivation = tuple(e for eqs in shown for e in eqs)
    refuted = [f for f in found if f is not None]
    sid = "adam.head.run.trained-backbone"
    if not refuted:
        zeros = tuple(r for rs in residuals for r in rs)
        assumptions = (*assumptions, tasks.TASKS_EACH)
        return Statement(sid, claim, "holds", assumptions, zeros, derivation=derivation)
    which = ", ".join(str(f["tasks"]) for f in refuted)
    first, *more = refuted
    return Statement(
        sid,
        claim,
        "fails",
        (*assumptions, f"T tasks, refuted for each T in {which} (a counterexample per T)"),
        counterexample={**first, "more_tasks": more},
        derivation=derivation,
    )


# --- b. Adam, backbone ---------------------------------------------------------------------


def adam_backbone_common() -> Statement:
    return _compare(
        "adam.backbone.common-scale",
        "Adam (eps = 0): one common scale alpha of all task losses leaves every update unchanged.",
        (GIVEN, CONSTANT, EPS0, NO_WD, ZERO_INIT, ELEMENTWISE),
        C.ADAM_EPS0,
        "common-scale",
    )


def adam_backbone_per_task() -> Statement:
    return _compare(
        "adam.backbone.per-task-scale",
        "Adam (eps = 0): the backbone update is invariant to per-task scales alpha_t.",
        (GIVEN, CONSTANT, EPS0, NO_WD, ZERO_INIT, ELEMENTWISE),
        C.ADAM_EPS0,
        "backbone-per-task-scale",
    )


# --- c. SGD ---------------------------------------------------------------------------------


def _sgd_lr(config: Config, slug: str) -> Callable[[], Statement]:
    def build() -> Statement:
        return _compare(
            f"{slug}.head.loss-scale-is-lr",
            f"{config.label}: scaling task t's loss by alpha_t gives the same head update as "
            "scaling its head's learning rate by alpha_t.",
            (GIVEN, CONSTANT, NO_WD, ZERO_INIT, ELEMENTWISE),
            config,
            "head-per-task-scale",
            C.lr_times_scale,
        )

    return build


def sgd_momentum_run() -> Statement:
    return tasks.run_statement(
        "sgd-momentum.head.run.frozen-backbone.loss-scale-is-lr",
        "SGD+momentum with a frozen backbone: the head trajectory for loss alpha_t L_t is the one "
        "for L_t with head learning rate alpha_t lr.",
        (FROZEN, CONSTANT, NO_WD, ZERO_INIT),
        C.SGD_MOMENTUM,
        C.lr_times_scale,
    )


def _from_residuals(
    sid: str,
    claim: str,
    assumptions: tuple[str, ...],
    residuals: tuple[sympy.Expr, ...],
    verdict: str = "holds",
    bound: sympy.Expr | None = None,
    derivation: tuple[Equation, ...] = (),
) -> Statement:
    """``verdict`` when every residual is exactly zero; ``fails`` with the first residual that
    is nonzero on numbers otherwise (a residual that vanishes on numbers but is not proven
    zero is an error: neither proven nor refuted)."""
    if residuals and all(is_zero(r) for r in residuals):
        return Statement(
            sid, claim, verdict, assumptions, residuals, bound=bound, derivation=derivation
        )
    found = residual_counterexample(residuals) if residuals else None
    if found is None:
        raise RuntimeError(f"statement {sid!r}: neither proven nor refuted on the instance")
    derivation += tuple(D.counterexample_equations(found))
    return Statement(sid, claim, "fails", assumptions, residuals, found, derivation=derivation)


def _sgd_linear(config: Config, slug: str) -> Callable[[], Statement]:
    def build() -> Statement:
        return tasks.linear_statement(
            f"{slug}.backbone.linear-in-scales",
            f"{config.label}: the backbone update under per-task scales is sum_t alpha_t times "
            "the update task t alone would cause.",
            (GIVEN, NO_WD, ZERO_INIT, ELEMENTWISE),
            config,
        )

    return build


def sgd_weight_decay() -> Statement:
    config = C.SGD_MOMENTUM.with_hp(weight_decay=S.WD)
    return _compare(
        "sgd-momentum.head.weight-decay.loss-scale-is-lr",
        "SGD+momentum with coupled weight decay: scaling the loss by alpha_t equals scaling the "
        "head learning rate by alpha_t.",
        (GIVEN, CONSTANT, "coupled weight decay lambda > 0", ZERO_INIT),
        config,
        "head-per-task-scale",
        C.lr_times_scale,
    )


# --- d. UW-O --------------------------------------------------------------------------------

LOSSES = tuple(
    tuple(sympy.Symbol(f"L_{t}_{k}", positive=True) for k in range(1, S.STEPS + 1))
    for t in range(1, S.TASKS + 1)
)
"""``LOSSES[t][k]``: task t+1's unscaled loss at step k+1."""


def _uwo_gradients(weight: Callable[[sympy.Expr], sympy.Expr], scales) -> list[list[sympy.Expr]]:
    """Per-task gradients of ``sum_t w(sg[a_t L_t]) a_t L_t``: ``a_t g_t w(a_t L_t)``."""
    return [
        [a * g * weight(a * loss) for g, loss in zip(gs, ls, strict=True)]
        for a, gs, ls in zip(scales, S.G, LOSSES, strict=True)
    ]


UW_LOSS = sympy.IndexedBase("L", positive=True)
"""``L[t, k]``: task t's unscaled loss at step k (T tasks)."""


def uwo() -> Statement:
    """For T tasks: task t's scaled gradient ``a_t g_t / (a_t L_t)`` is the unscaled
    ``g_t / L_t``, so every optimizer of the atlas sees identical inputs (its one state the sum
    over tasks, or one state per task); its updates agree step by step."""
    t = tasks.TASK
    steps = range(1, S.STEPS + 1)
    scaled = [tasks.A[t] * tasks.G[t, k] / (tasks.A[t] * UW_LOSS[t, k]) for k in steps]
    plain = [tasks.G[t, k] / UW_LOSS[t, k] for k in steps]
    residuals, derivation = [], []
    for k, (u, v) in enumerate(zip(scaled, plain, strict=True), start=1):
        residuals.append(residual(u, v))
        names = (D.name("d", t, k, tilde=True), D.name("d", t, k))
        label = f"task t, step {k}: the optimizer's input a g / sg[a L] (a cancels)"
        derivation += D.comparison(label, names, (u, v), residuals[-1], (tasks.A[t],))
    for config in C.ATLAS_OPTIMIZERS:
        if config.per_task:
            upd_a, _ = tasks.run(config, config.hp, scaled, False)
            upd_1, _ = tasks.run(config, config.hp, plain, False)
        else:
            upd_a, _ = tasks.run(config, config.hp, list(map(tasks.over_tasks, scaled)), False)
            upd_1, _ = tasks.run(config, config.hp, list(map(tasks.over_tasks, plain)), False)
        found = [tasks.over_tasks(residual(u, v)) for u, v in zip(upd_a, upd_1, strict=True)]
        residuals += found
        names = sympy.Tuple(*(D.difference(D.update(k, True), D.update(k)) for k in steps))
        label = f"{config.label}, steps 1 to {len(found)}: difference, reduced"
        derivation.append(Equation(label, names, sympy.Tuple(*found)))
    return _from_residuals(
        "uwo.per-task-scale.all-optimizers",
        "UW-O (L = sum_t L_t / sg[L_t]): every update of every optimizer, heads and backbone, is "
        "invariant to per-task scales alpha_t.",
        (
            "exact UW-O weights 1 / sg[L_t] (no eps)",
            "losses L_t > 0",
            "alpha_t > 0, may vary per step",
            "identical inputs at every step give identical runs (the rules are deterministic)",
            tasks.TASKS_SYMBOLIC,
        ),
        tuple(residuals),
        derivation=tuple(derivation),
    )


def uwo_eps() -> Statement:
    """With weights ``1/(L + eps)`` the scaled effective gradient is ``g a/(a L + eps)``; its
    relative deviation from ``g/(L + eps)`` is exactly ``eps (a - 1)/(a L + eps)``, so
    ``|dev| <= (eps / L) |1 - 1/a|``."""
    a, loss = S.ALPHAS[0], LOSSES[0][0]
    eps = S.EPS
    scaled = _uwo_gradients(lambda x: 1 / (x + eps), S.ALPHAS)[0][0]
    plain = _uwo_gradients(lambda x: 1 / (x + eps), (1,) * S.TASKS)[0][0]
    closed = eps * (a - 1) / (a * loss + eps)
    relative = (scaled - plain) / plain
    exact = residual(relative, closed)
    deviation = residual(scaled, plain)
    bound = sympy.Abs(1 - 1 / a) * eps / loss
    delta = D.name("delta")
    checks, shown = bound_derivation(closed, bound, a)
    derivation = (
        Equation(
            "task 1, step 1: the optimizer's input, scaled run",
            D.name("d", 1, 1, tilde=True),
            scaled,
        ),
        Equation("the reference's", D.name("d", 1, 1), plain),
        *D.comparison(
            "the relative deviation",
            (delta, D.name("delta", "closed")),
            (relative, closed),
            exact,
            sides=("from the rule", "closed form"),
        ),
        Equation("the bound", sympy.Abs(delta), bound, "<="),
        *shown,
    )
    return _from_residuals(
        "uwo.eps.per-task-scale",
        "UW-O as implemented (weights 1/(L_t + eps)): the effective gradient g_t/(L_t + eps) "
        "changes under alpha_t by the relative factor eps (alpha_t - 1)/(alpha_t L_t + eps) "
        f"(nonzero: {sympy.factor(deviation)} in absolute terms).",
        ("weights 1 / (sg[L_t] + eps), eps > 0", "losses L_t > 0", "alpha_t > 0", tasks.TASKS_ANY),
        (exact, *checks),
        "holds-within-bound",
        bound,
        derivation,
    )


# --- e. one state per task -----------------------------------------------------------------


def per_task_adam() -> Statement:
    return _compare(
        "per-task-adam.backbone.per-task-scale",
        "One Adam state per task (AdaTask / MTL-IO with Adam, eps = 0): the backbone update, the "
        "sum of per-task Adam updates, is invariant to per-task scales alpha_t.",
        (GIVEN, CONSTANT, EPS0, NO_WD, ZERO_INIT, ELEMENTWISE),
        Config("per-task Adam (eps=0)", "adam", C.ADAM_EPS0.hp, per_task=True),
        "backbone-per-task-scale",
    )


def per_task_sgd() -> Statement:
    return _compare(
        "per-task-sgd.backbone.per-task-scale",
        "One SGD+momentum state per task (MTL-IO as the paper ran it): the backbone update is "
        "invariant to per-task scales alpha_t.",
        (GIVEN, CONSTANT, NO_WD, ZERO_INIT, ELEMENTWISE),
        Config("per-task SGD+momentum", "sgd", C.SGD_MOMENTUM.hp, per_task=True),
        "backbone-per-task-scale",
    )


# --- f. sign methods and Adam at beta = 0 ---------------------------------------------------

_KIND_SLUG = {
    "head-per-task-scale": "head.per-task-scale",
    "common-scale": "all.common-scale",
    "backbone-per-task-scale": "backbone.per-task-scale",
}
_SIGN = (
    (C.SIGNSGD, "signsgd"),
    (C.SIGNUM, "signum"),
    (C.ADAM_BETA0, "adam-beta0"),
)


def _sign(config: Config, slug: str, kind: str) -> Callable[[], Statement]:
    what = {
        "head-per-task-scale": "the head update is invariant to its task's scale alpha_t",
        "common-scale": "every update is invariant to one common scale alpha of all losses",
        "backbone-per-task-scale": "the backbone update is invariant to per-task scales alpha_t",
    }[kind]
    note = (
        " (the paper's Appendix A1 claim (b) for beta1 = beta2 = 0)"
        if slug == "adam-beta0" and kind == "backbone-per-task-scale"
        else ""
    )

    def build() -> Statement:
        return _compare(
            f"{slug}.{_KIND_SLUG[kind]}",
            f"{config.label}: {what}{note}.",
            (GIVEN, CONSTANT, NO_WD, ZERO_INIT, ELEMENTWISE),
            config,
            kind,
        )

    return build


# --- g. eps > 0 -----------------------------------------------------------------------------

SQRT_V_HAT = sympy.Symbol("s", positive=True)
"""sqrt of the bias-corrected second moment of the unscaled run, after the current step."""


def adam_eps_rescaling() -> Statement:
    return _compare(
        "adam.eps.head.scale-is-eps-rescaling",
        "Adam with eps > 0: the head update for loss alpha_t L_t equals Adam's update with "
        "eps / alpha_t on L_t, exactly.",
        (GIVEN, CONSTANT, NO_WD, ZERO_INIT, ELEMENTWISE),
        C.ADAM,
        "head-per-task-scale",
        C.eps_over_scale,
    )


def _adam_eps_samples(count: int = 4) -> list[tuple[sympy.Expr, sympy.Expr]]:
    """(relative deviation, bound) of Adam's head update at step 3 on sampled rational
    gradients, scales and eps, both runs computed by the rule itself."""
    rng = random.Random(0)
    rule = get_rule("adam")
    out = []
    for _ in range(count):
        a = sympy.Rational(rng.choice([1, 3, 50, 1000]), rng.choice([1, 7, 100]))
        eps = sympy.Rational(1, 10 ** rng.randint(0, 4))
        grads = [sympy.Rational(rng.randint(-99, 99) or 1, 10 ** rng.randint(0, 4)) for _ in "123"]
        hp = {
            "lr": sympy.Rational(1, 100),
            "betas": (sympy.Rational(9, 10), sympy.Rational(99, 100)),
            "eps": eps,
        }
        runs = []
        for scale in (a, 1):
            p, state = sympy.S.One, rule.init(SYMPY, 1, **{**rule.defaults, **hp})
            for k, g in enumerate(grads, start=1):
                new = rule.step(SYMPY, p, scale * g, state, k, **hp)
                update, p = new - p, new
            runs.append((update, state["exp_avg_sq"]))
        (u_a, _), (u_1, v) = runs
        s = sympy.sqrt(v / (1 - hp["betas"][1] ** len(grads)))
        bound = sympy.Max(eps, eps / a) / (s + sympy.Min(eps, eps / a))
        out.append((u_a / u_1 - 1, bound))
    return out


def adam_eps_bound() -> Statement:
    """One step k from the unscaled state (m, v) and the scaled one (a m, a^2 v): with
    ``s = sqrt(v_hat)`` after the step, ``u_a / u_1 - 1 = (eps - eps/a) / (s + eps/a)``, so the
    relative deviation is at most ``max(eps, eps/a) / (s + min(eps, eps/a))``: negligible while
    ``s >> eps/a`` and ``s >> eps``, of order one when ``s`` is near ``eps/a``. The bound is
    checked symbolically on both sides of a = 1 and on sampled runs of the rule."""
    a, eps = S.ALPHAS[0], S.EPS
    rule = get_rule("adam")
    hp = dict(C.ADAM.hp)
    m, v = sympy.Symbol("m", real=True), sympy.Symbol("v", positive=True)
    ref = {"exp_avg": m, "exp_avg_sq": v}
    scaled = {"exp_avg": a * m, "exp_avg_sq": a**2 * v}
    u_a = rule.step(SYMPY, S.P, a * S.H[0], scaled, S.K, **hp) - S.P
    u_1 = rule.step(SYMPY, S.P, S.H[0], ref, S.K, **hp) - S.P
    s = sympy.sqrt(ref["exp_avg_sq"]) / sympy.sqrt(1 - S.BETA2**S.K)
    closed = (eps - eps / a) / (s + eps / a)
    exact = residual(u_a / u_1 - 1, closed)
    step_k = residual(u_a, u_1)  # not zero: the deviation below
    bound = sympy.Max(eps, eps / a) / (SQRT_V_HAT + sympy.Min(eps, eps / a))
    deviation = closed.subs(s, SQRT_V_HAT)
    checks, shown = bound_derivation(deviation, bound, a, _adam_eps_samples())
    delta = D.name("delta")
    derivation = (
        Equation(
            "the state before step k: scaled run (m, v: the reference's)",
            sympy.Tuple(D.state("exp_avg", S.K - 1, True), D.state("exp_avg_sq", S.K - 1, True)),
            sympy.Tuple(a * m, a**2 * v),
        ),
        *D.comparison("step k", (D.update(S.K, True), D.update(S.K)), (u_a, u_1), step_k, (a,)),
        *D.comparison(
            "the relative deviation u~_k / u_k - 1",
            (delta, D.name("delta", "closed")),
            (u_a / u_1 - 1, closed),
            exact,
            sides=("from the rule", "closed form"),
        ),
        Equation("with s = sqrt(v_hat) after step k", delta, deviation),
        Equation("the bound", sympy.Abs(delta), bound, "<="),
        *shown,
    )
    return _from_residuals(
        "adam.eps.head.deviation-bound",
        "Adam with eps > 0: per step, the head update under alpha_t deviates from the unscaled one "
        "by the relative amount (eps - eps/alpha_t) / (sqrt(v_hat) + eps/alpha_t); it matters "
        "only when the gradient RMS sqrt(v_hat) is near eps/alpha_t (or eps).",
        (
            "the same moments m, v of the unscaled run (given gradient sequence)",
            CONSTANT,
            NO_WD,
            tasks.TASKS_ANY,
        ),
        (exact, *checks),
        "holds-within-bound",
        bound,
        derivation,
    )


# --- h. weight decay ------------------------------------------------------------------------


def adam_l2() -> Statement:
    return _compare(
        "adam-l2.head.per-task-scale",
        "Adam with coupled L2 weight decay (torch Adam(weight_decay=1e-5), the paper's setting, "
        "eps = 0): the head update is invariant to alpha_t.",
        (GIVEN, CONSTANT, EPS0, "coupled weight decay lambda = 1e-5", ZERO_INIT),
        C.ADAM_EPS0.with_hp(weight_decay=S.WD),
        "head-per-task-scale",
        instance={**S.INSTANCE, S.WD: sympy.Rational(1, 10**5)},
    )


def adamw() -> Statement:
    return _compare(
        "adamw.head.per-task-scale",
        "AdamW (decoupled weight decay, eps = 0): the head update is invariant to alpha_t.",
        (GIVEN, CONSTANT, EPS0, "decoupled weight decay lambda > 0", ZERO_INIT, ELEMENTWISE),
        Config("AdamW (eps=0)", "adamw", {**C.ADAM_EPS0.hp, "weight_decay": S.WD}),
        "head-per-task-scale",
    )


# --- j. weight decay as an equivalence; Adagrad's initial accumulator ---------------------

WD_ASSUMPTIONS = (GIVEN, CONSTANT, "coupled L2 weight decay lambda > 0", ZERO_INIT, ELEMENTWISE)


def sgd_l2_equivalence() -> Statement:
    return _compare(
        "sgd-momentum-l2.head.loss-scale-is-lr-and-wd",
        "SGD+momentum with coupled L2: loss alpha_t L_t gives the head update of SGD with "
        "(alpha_t lr, lambda / alpha_t) on L_t.",
        WD_ASSUMPTIONS,
        C.SGD_MOMENTUM.with_hp(weight_decay=S.WD),
        "head-per-task-scale",
        C.lr_times_scale_wd_over_scale,
    )


def adam_l2_equivalence() -> Statement:
    """Adam sees only ``d = g + lambda p``: the scaled run's ``a g + lambda p`` is exactly
    ``a (g + (lambda / a) p)``, ``a`` times the reference's input, and Adam on ``a d`` is Adam
    with ``eps / a`` on ``d`` (``adam.eps.head.scale-is-eps-rescaling``, proven for any input
    sequence, so the parameters move in lockstep)."""
    a, g, p = S.ALPHAS[0], S.H[0], S.P
    scaled_input, reference_input = a * g + S.WD * p, a * (g + (S.WD / a) * p)
    inputs = residual(scaled_input, reference_input)
    rescaling = adam_eps_rescaling()
    names = (D.name("d", S.K, tilde=True), a * D.name("d", S.K))
    derivation = (
        *D.comparison("Adam's input at step k", names, (scaled_input, reference_input), inputs),
        *(
            Equation(f"by {rescaling.id}, {e.label}", e.lhs, e.rhs, e.relation)
            for e in rescaling.derivation
        ),
    )
    return _from_residuals(
        "adam-l2.head.loss-scale-is-wd-and-eps",
        "Adam with coupled L2 (eps > 0): loss alpha_t L_t gives the head update of Adam with "
        "(lambda / alpha_t, eps / alpha_t) on L_t.",
        (*WD_ASSUMPTIONS, rescaling.assumptions[-1]),
        (inputs, *rescaling.residuals) if rescaling.verdict == "holds" else (inputs, sympy.nan),
        derivation=derivation,
    )


def adagrad_initial_accumulator() -> Statement:
    return _compare(
        "adagrad-init.head.per-task-scale",
        "Adagrad with an initial accumulator s_0 > 0 (eps = 0): the head update is invariant to "
        "alpha_t.",
        (GIVEN, CONSTANT, "eps = 0", "initial accumulator s_0 > 0", NO_WD, ELEMENTWISE),
        C.ADAGRAD_INIT,
        "head-per-task-scale",
        instance={**S.INSTANCE, C.ACCUMULATOR: sympy.Rational(1, 10)},
    )


def adagrad_initial_accumulator_equivalence() -> Statement:
    return _compare(
        "adagrad-init.head.scale-is-accumulator-rescaling",
        "Adagrad with an initial accumulator s_0 > 0: loss alpha_t L_t gives the head update of "
        "Adagrad with (s_0 / alpha_t^2, eps / alpha_t) on L_t.",
        (GIVEN, CONSTANT, "initial accumulator s_0 > 0", NO_WD, ELEMENTWISE),
        C.ADAGRAD_INIT.with_hp(eps=S.EPS),
        "head-per-task-scale",
        C.accumulator_over_scale_squared,
    )


# --- i. time-varying loss weights ----------------------------------------------------------


def _time_varying(config: Config, slug: str) -> Callable[[], Statement]:
    def build() -> Statement:
        sid = f"{slug}.head.time-varying-scale"
        claim = (
            f"{config.label}: the head update is invariant to a task weight that changes from "
            "step to step (DWA, RLW, GradNorm, learned UW weights)."
        )
        assumptions = (GIVEN, "per-step scales a_k > 0", NO_WD, ZERO_INIT, ELEMENTWISE)
        return tasks.time_varying_statement(sid, claim, assumptions, config)

    return build


TIME_VARYING = (
    (C.ADAM_EPS0, "adam"),
    (C.SIGNSGD, "signsgd"),
    (C.SIGNUM, "signum"),
    (C.ADAM_BETA0, "adam-beta0"),
)


# --- k. capacity levers: is a task weight a learning rate? --------------------------------

SHARED_STATE = "the backbone keeps one optimizer state for all tasks"
PER_TASK_STATES = "the backbone keeps one optimizer state per task (MTL-IO)"


def _lever(
    sid: str,
    claim: str,
    assumptions: tuple[str, ...],
    config: Config,
    kind: str,
    claimed: tuple[sympy.Expr, ...] | None = None,
) -> Statement:
    """A task weight is the constant learning-rate factor found from the first step (and, when
    ``claimed``, that factor): ``holds`` with the residuals, ``fails`` with the first step
    that factor misses, or the factor found where it is not the claimed one."""
    found = lever(config, kind)
    assumptions = (*assumptions, tasks.TASKS_TWO)
    proof = found.proof.unrolled + found.proof.induction
    checks = (
        ()
        if claimed is None
        else tuple(residual(c, want) for c, want in zip(found.factors, claimed, strict=True))
    )
    derivation: tuple[D.Equation, ...] = ()
    for i, c in enumerate(found.factors):
        label = f"learning-rate factor from step 1 (state {i + 1})"
        if claimed is None:
            derivation += (D.Equation(label, D.name("c", i + 1), c),)
        else:
            names = (D.name("c", i + 1), D.name("c", "claimed"))
            values = (c, sympy.sympify(claimed[i]))
            derivation += tuple(
                D.comparison(label, names, values, checks[i], sides=("found", "claimed"))
            )
    derivation += found.proof.equations
    if found.proof.holds and all(is_zero(r) for r in checks):
        return Statement(sid, claim, "holds", assumptions, checks + proof, derivation=derivation)
    factors = [str(c) for c in found.factors]
    if found.counterexample is not None:
        evidence = {"factors_from_step_1": factors, **found.counterexample}
        derivation += tuple(D.counterexample_equations(found.counterexample))
    else:
        evidence = {"factors_found": factors, "factors_claimed": [str(c) for c in claimed]}
    return Statement(
        sid, claim, "fails", assumptions, checks + proof, evidence, derivation=derivation
    )


def _head_lever(config: Config, slug: str, claimed: sympy.Expr, what: str):
    factor = "alpha_t" if claimed == S.ALPHAS[0] else str(claimed)

    def build() -> Statement:
        return _lever(
            f"levers.{slug}.head.weight-is-lr-factor",
            f"{config.label}: on task t's head a task weight alpha_t acts as the head "
            f"learning-rate factor {factor} ({what}).",
            (GIVEN, CONSTANT, NO_WD, ZERO_INIT, ELEMENTWISE),
            config,
            "head-per-task-scale",
            (claimed,),
        )

    return build


def _backbone_lever(config: Config, slug: str):
    def build() -> Statement:
        return _lever(
            f"levers.{slug}.backbone.weight-is-lr-factor",
            f"{config.label}: task weights alpha_t on a shared backbone act as one constant "
            "backbone learning-rate factor.",
            (GIVEN, CONSTANT, NO_WD, ZERO_INIT, ELEMENTWISE, SHARED_STATE),
            config,
            "backbone-per-task-scale",
        )

    return build


def _per_task_lever(config: Config, slug: str, claimed: tuple, what: str):
    factor = "alpha_t" if claimed == S.ALPHAS else str(claimed[0])

    def build() -> Statement:
        return _lever(
            f"levers.{slug}.backbone.weight-is-per-task-lr-factor",
            f"{config.label}: a task weight alpha_t acts on the backbone as the learning-rate "
            f"factor {factor} of task t's own state ({what}).",
            (GIVEN, CONSTANT, NO_WD, ZERO_INIT, ELEMENTWISE, PER_TASK_STATES),
            config,
            "backbone-per-task-scale",
            claimed,
        )

    return build


PER_TASK_ADAM_EPS0 = Config("per-task Adam (eps=0)", "adam", C.ADAM_EPS0.hp, per_task=True)
LEVERS = (
    _head_lever(C.SGD, "sgd", S.ALPHAS[0], "the two levers are one"),
    _head_lever(C.SGD_MOMENTUM, "sgd-momentum", S.ALPHAS[0], "the two levers are one"),
    _head_lever(
        C.ADAM_EPS0, "adam", sympy.S.One, "the weight does nothing: the head lr is its own lever"
    ),
    _backbone_lever(C.SGD, "sgd"),
    _backbone_lever(C.SGD_MOMENTUM, "sgd-momentum"),
    _backbone_lever(C.ADAM_EPS0, "adam"),
    _per_task_lever(
        C.PER_TASK_SGD_MOMENTUM, "per-task-sgd-momentum", S.ALPHAS, "a per-task backbone lr"
    ),
    _per_task_lever(PER_TASK_ADAM_EPS0, "per-task-adam", (1, 1), "the weight does nothing"),
)


# --- l. hybrids: which keep head invariance? ------------------------------------------------

PER_TASK_HEAD_GROUP = "SGD-RMS heads: one group per task head, so its RMS scales by alpha_t"


def _hybrid(config: Config, slug: str, assumptions: tuple[str, ...] = ()):
    def build() -> Statement:
        return _compare(
            f"hybrid.{slug}.head.per-task-scale",
            f"{config.label} (eps = 0): the update of task t's head is the same for loss "
            "alpha_t L_t as for L_t.",
            (GIVEN, CONSTANT, EPS0, NO_WD, ZERO_INIT, ELEMENTWISE, *assumptions),
            config.with_hp(eps=0) if "eps" in config.hp else config,
            "head-per-task-scale",
        )

    return build


def sgd_rms_heads_eps_rescaling() -> Statement:
    config = C.HYBRIDS[2]
    return _compare(
        "hybrid.sgd-rms-heads-sgd-momentum-backbone.head.scale-is-eps-rescaling",
        f"{config.label} with eps > 0: the head update for loss alpha_t L_t equals the update "
        "with eps / alpha_t on L_t, exactly (as for Adam).",
        (GIVEN, CONSTANT, NO_WD, ZERO_INIT, ELEMENTWISE, PER_TASK_HEAD_GROUP),
        config,
        "head-per-task-scale",
        C.eps_over_scale,
    )


HYBRIDS = (
    _hybrid(C.HYBRIDS[0], "adam-heads-sgd-momentum-backbone"),
    _hybrid(C.HYBRIDS[1], "sgd-momentum-heads-adam-backbone"),
    _hybrid(C.HYBRIDS[2], "sgd-rms-heads-sgd-momentum-backbone", (PER_TASK_HEAD_GROUP,)),
    sgd_rms_heads_eps_rescaling,
)


BUILDERS: tuple[Callable[[], Statement], ...] = (
    adam_head,
    adam_head_no_bias_correction,
    adam_head_run_frozen,
    adam_head_run_trained,
    adam_backbone_common,
    adam_backbone_per_task,
    _sgd_lr(C.SGD, "sgd"),
    _sgd_lr(C.SGD_MOMENTUM, "sgd-momentum"),
    _sgd_lr(C.NESTEROV, "nesterov"),
    sgd_momentum_run,
    _sgd_linear(C.SGD, "sgd"),
    _sgd_linear(C.SGD_MOMENTUM, "sgd-momentum"),
    sgd_weight_decay,
    uwo,
    uwo_eps,
    per_task_adam,
    per_task_sgd,
    *(
        _sign(c, slug, kind)
        for kind in ("head-per-task-scale", "common-scale", "backbone-per-task-scale")
        for c, slug in _SIGN
    ),
    adam_eps_rescaling,
    adam_eps_bound,
    adam_l2,
    adamw,
    *(_time_varying(c, slug) for c, slug in TIME_VARYING),
    sgd_l2_equivalence,
    adam_l2_equivalence,
    adagrad_initial_accumulator,
    adagrad_initial_accumulator_equivalence,
    *LEVERS,
    *HYBRIDS,
    *clipping.BUILDERS,
    *precision.BUILDERS,
    *schedules.BUILDERS,
)


@lru_cache(maxsize=1)
def statements() -> tuple[Statement, ...]:
    """Every statement, derived once per process."""
    return tuple(build() for build in BUILDERS)


def get(statement_id: str) -> Statement:
    """The statement with this id; a ValueError lists the valid ids otherwise."""
    for statement in statements():
        if statement.id == statement_id:
            return statement
    raise ValueError(
        f"unknown statement {statement_id!r}; valid: {', '.join(s.id for s in statements())}"
    )
