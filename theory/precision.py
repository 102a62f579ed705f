"""Mixed precision: a GradScaler's common scale, and a per-task scale meeting float16/bfloat16.

* ``torch.amp.GradScaler`` multiplies the loss by ``S`` (every task alike) and divides the
  gradients by ``S`` before the step (``unscale_``): every optimizer then sees exactly the
  unscaled gradients (``S`` may change between steps). Left in, ``S`` is a common scale: Adam
  with ``eps / S``, SGD with ``lr S``.
* A task's scale ``alpha_t`` meets the format where ``alpha_t g`` is stored in half precision
  (autocast's backward): round to nearest, ties to even, flushes ``|x| <= q / 2`` to zero, ``q``
  the smallest subnormal (``2^-24`` in float16, ``2^-133`` in bfloat16); then the head gets a
  zero gradient and Adam does not move it, while the unscaled head moves by about ``lr``.
  Where ``|alpha_t g| << eps`` (a GradScaler avoids the flush; ``eps`` does not scale), Adam's
  update is proportional to ``alpha_t``, as SGD's.

The numbers come from torch tensors: casts to float16/bfloat16, ``torch.amp.GradScaler`` on the
CPU, and the rules of :mod:`mtl.optim` on the ``TORCH`` backend (a faulty rule changes them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction

import sympy
import torch

from mtl.optim import SYMPY, TORCH, get_rule
from theory import configs as C
from theory import derivation as D
from theory import symbols as S
from theory import tasks
from theory.algebra import is_zero, residual
from theory.derivation import Equation
from theory.statement import Statement

Expr = sympy.Expr

FORMATS = {"float16": (torch.float16, -24, -14), "bfloat16": (torch.bfloat16, -133, -126)}
"""Format: (dtype, exponent of the smallest subnormal, of the smallest normal)."""
SCALE = sympy.IndexedBase("S", positive=True)
"""``S[k]``: the GradScaler's scale at step k."""
TORCH_ADAM = {"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}
"""torch's Adam defaults but lr = 0.01."""
ALPHA_SMALL = 2.0**-20
"""A small task weight (a power of two: ``alpha g`` is exact before it is stored)."""
ALPHA_TINY = 2.0**-30
"""A weight for which ``alpha g`` is far below eps (``2^-36``, about eps / 700)."""
GRADS = (2.0**-6, -(2.0**-7), 3 * 2.0**-7)
"""Unscaled head gradients: ``alpha g`` is ``2^-26``, ``-2^-27``, ``3 2^-27``, all flushed."""
GRAD_SCALER_SCALE = 2.0**16
"""``torch.amp.GradScaler``'s default initial scale."""


def rounded(x: Fraction, fmt: str) -> Fraction:
    """``x`` (below the smallest normal in magnitude) rounded to the format's subnormal grid,
    to nearest with ties to even: the value the format stores."""
    _, sub, normal = FORMATS[fmt]
    q = Fraction(2) ** sub
    if abs(x) >= Fraction(2) ** normal:
        raise ValueError(f"{x} is not below the smallest normal 2^{normal} of {fmt}")
    n, rest = divmod(x / q, 1)
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and n % 2 == 1):
        n += 1
    return n * q


def probes(fmt: str) -> list[float]:
    """Float32 values around the flush threshold ``q / 2`` and the first subnormals (and torch's
    eps 1e-8 and the small ``alpha g`` of the statements)."""
    _, sub, _ = FORMATS[fmt]
    half = 2.0 ** (sub - 1)
    near = [half * (1 + s * 2.0**-10) for s in (-1, 0, 1)]
    grid = [m * 2.0**sub for m in (0.75, 1.0, 1.25, 1.5, 2.5, 3.0)]
    extra = [1e-8, *(ALPHA_SMALL * g for g in GRADS)]
    values = [*near, *grid, *(x for x in extra if abs(x) < 2.0 ** FORMATS[fmt][2])]
    return [v for x in values for v in (x, -x)]


def flush_to_zero(fmt: str) -> Statement:
    """Each probe cast from float32 to the format by torch against :func:`rounded`: the residual
    is their exact difference (and the stored value's zero-ness against ``|x| <= q / 2``)."""
    dtype, sub, _ = FORMATS[fmt]
    values = torch.tensor(probes(fmt), dtype=torch.float32)
    stored = values.to(dtype).to(torch.float64).tolist()
    residuals, found = [], None
    for x, got in zip(values.tolist(), stored, strict=True):
        model = rounded(Fraction(x), fmt)
        flushed = abs(Fraction(x)) <= Fraction(2) ** (sub - 1)
        r = sympy.Rational(Fraction(got) - model) + ((got == 0) != flushed)
        residuals.append(r)
        if r != 0 and found is None:
            found = {"value": x, "stored": got, "model": float(model), "flushed_model": flushed}
    claim = (
        f"In {fmt}, a gradient alpha_t g is stored as 0 exactly when abs(alpha_t g) <= 2^{sub - 1} "
        f"(half the smallest subnormal 2^{sub}; round to nearest, ties to even), and below the "
        "smallest normal it is rounded to a multiple of 2^{sub}."
    ).replace("{sub}", str(sub))
    assumptions = (
        "values exactly representable in float32, cast by torch (.to(dtype))",
        f"verified on {len(values)} probes (around 2^{sub - 1}, on the first subnormals, eps = "
        "1e-8): torch's stored value equals the exact rounding model on each",
    )
    sid = f"amp.{fmt}.flush-to-zero"
    derivation = [
        Equation(
            "the flush threshold: half the smallest subnormal",
            D.name("q", "half"),
            2 ** sympy.Integer(sub - 1),
        ),
        Equation(
            "the probes x (float32)",
            sympy.Tuple(*(D.name("x", i) for i in range(1, len(stored) + 1))),
            sympy.Tuple(*map(sympy.Float, values.tolist())),
        ),
        Equation(
            f"torch's stored values in {fmt}",
            sympy.Tuple(*(D.name("s", i) for i in range(1, len(stored) + 1))),
            sympy.Tuple(*map(sympy.Float, stored)),
        ),
        D.checked(
            "per probe, stored minus the rounding model (plus 1 where the zero-ness differs)",
            residuals,
        ),
    ]
    if found is None:
        return Statement(
            sid, claim, "holds", assumptions, tuple(residuals), derivation=tuple(derivation)
        )
    derivation += D.numbers("counterexample: the probe", found)
    return Statement(
        sid, claim, "fails", assumptions, tuple(residuals), found, derivation=tuple(derivation)
    )


def _adam_head_updates(grads: Sequence[float], through: Callable[[float], float]) -> list[float]:
    """Updates of Adam (:mod:`mtl.optim`'s rule on torch float32 tensors, state in float32 as
    AMP keeps it) on the gradients after ``through`` (where they were stored)."""
    rule = get_rule("adam")
    hp = {**rule.defaults, **TORCH_ADAM}
    param = torch.zeros(1, dtype=torch.float32)
    state = rule.init(TORCH, param, **hp)
    out = []
    for k, g in enumerate(grads, start=1):
        grad = torch.tensor([through(g)], dtype=torch.float32)
        new = rule.step(TORCH, param, grad, state, k, **hp)
        out.append((new - param).item())
        param = new
    return out


def _stored(dtype: torch.dtype) -> Callable[[float], float]:
    return lambda x: torch.tensor([x], dtype=torch.float32).to(dtype).float().item()


def float16_adam_head() -> Statement:
    """The scaled head's gradients ``alpha g`` pass through float16 and flush to zero; the
    unscaled ones do not. The first step whose updates differ is the counterexample."""
    stored = _stored(torch.float16)
    scaled = _adam_head_updates([ALPHA_SMALL * g for g in GRADS], stored)
    plain = _adam_head_updates(list(GRADS), stored)
    sid = "amp.float16.adam.head.per-task-scale"
    claim = (
        "Adam (eps = 1e-8, float32 state) on head gradients stored in float16 (autocast's "
        "backward, no GradScaler): task t's head update is invariant to alpha_t."
    )
    assumptions = (
        "alpha_t = 2^-20, unscaled gradients 2^-6, -2^-7, 3 2^-7 (alpha_t g below 2^-25)",
        "lr = 0.01, betas (0.9, 0.999); the rule of mtl.optim on torch float32 tensors",
        tasks.TASKS_ANY,
    )
    residuals = tuple(_gap(u, v, 1e-4) for u, v in zip(scaled, plain, strict=True))
    derivation: list[Equation] = []
    for k, (u, v) in enumerate(zip(scaled, plain, strict=True), start=1):
        names = (D.update(k, scaled=True), D.update(k))
        values = (sympy.Float(u), sympy.Float(v))
        derivation += D.comparison(
            f"step {k}, torch float32 (gap beyond rtol 1e-4)", names, values, residuals[k - 1]
        )
        if residuals[k - 1] != 0:
            found = {
                "step": k,
                "alpha": ALPHA_SMALL,
                "gradients": list(GRADS[:k]),
                "stored_scaled_gradients": [stored(ALPHA_SMALL * g) for g in GRADS[:k]],
                "update_scaled": u,
                "update_reference": v,
            }
            derivation += D.counterexample_equations(found)
            return Statement(
                sid, claim, "fails", assumptions, residuals[:k], found, derivation=tuple(derivation)
            )
    return Statement(sid, claim, "holds", assumptions, residuals, derivation=tuple(derivation))


def _gap(measured: float, expected: float, rtol: float) -> Expr:
    """0 when ``measured`` agrees with ``expected`` to ``rtol``, else their exact difference."""
    if abs(measured - expected) <= rtol * max(abs(measured), abs(expected)):
        return sympy.S.Zero
    return sympy.Rational(measured) - sympy.Rational(expected)


def grad_scaler_unscale() -> Statement:
    """Symbolic: with ``S[k]`` at step k, every optimizer of the atlas is fed
    ``(S[k] sum_t a[t] g[t, k]) / S[k]`` (one state, or ``S[k] a[t] g[t, k] / S[k]`` per task)
    and the unscaled run its gradients: the inputs are identical, and so are the updates.
    Numbers: ``torch.amp.GradScaler('cpu', 2^16)``'s ``unscale_`` returns float32 gradients
    bitwise equal to the unscaled ones."""
    t = tasks.TASK
    steps = range(1, S.STEPS + 1)
    scaled = [SCALE[k] * tasks.A[t] * tasks.G[t, k] / SCALE[k] for k in steps]
    plain = [tasks.A[t] * tasks.G[t, k] for k in steps]
    residuals, derivation = [], []
    for k, (u, v) in enumerate(zip(scaled, plain, strict=True), start=1):
        residuals.append(residual(u, v))
        names = (D.name("d", t, k, tilde=True), D.name("d", t, k))
        label = f"task t, step {k}: the optimizer's input S_k a g / S_k (S_k cancels)"
        derivation += D.comparison(label, names, (u, v), residuals[-1])
    for config in C.ATLAS_OPTIMIZERS:
        summed = (lambda x: x) if config.per_task else tasks.over_tasks
        upd_a, _ = tasks.run(config, config.hp, [summed(x) for x in scaled], False)
        upd_1, _ = tasks.run(config, config.hp, [summed(x) for x in plain], False)
        found = [tasks.over_tasks(residual(u, v)) for u, v in zip(upd_a, upd_1, strict=True)]
        residuals += found
        names = sympy.Tuple(*(D.difference(D.update(k, True), D.update(k)) for k in steps))
        label = f"{config.label}, steps 1 to {len(found)}: difference, reduced"
        derivation.append(Equation(label, names, sympy.Tuple(*found)))
    residuals.append(_torch_unscale_mismatches())
    derivation.append(
        D.checked(
            "torch.amp.GradScaler: float32 gradients that differ bitwise", residuals[-1:], "n"
        )
    )
    claim = (
        "GradScaler (loss times S, gradients divided by S before the step): every update of "
        "every optimizer of the atlas, heads and backbone, equals the unscaled run's."
    )
    assumptions = (
        "one scale S_k > 0 for all tasks at step k (it may change between steps)",
        "exact arithmetic; in floating point exact for S = 2^n without overflow or underflow "
        "(torch.amp.GradScaler('cpu', init_scale=2^16) checked bitwise on float32 gradients)",
        "identical inputs at every step give identical runs (the rules are deterministic)",
        tasks.TASKS_SYMBOLIC,
    )
    sid = "amp.grad-scaler.all-optimizers.unscale-is-exact"
    return _checked(sid, claim, assumptions, residuals, derivation)


def _checked(sid, claim, assumptions, residuals, derivation, extra=None) -> Statement:
    """``holds`` when every residual is zero, else ``fails`` with the first nonzero one."""
    if all(is_zero(r) for r in residuals):
        return Statement(
            sid, claim, "holds", assumptions, tuple(residuals), derivation=tuple(derivation)
        )
    index = next(i for i, r in enumerate(residuals) if not is_zero(r))
    found = {"residual_index": index, "residual": str(residuals[index]), **(extra or {})}
    derivation = (*derivation, *D.evidence_equations(found))
    return Statement(
        sid, claim, "fails", assumptions, tuple(residuals), found, derivation=derivation
    )


def _torch_unscale_mismatches() -> Expr:
    """How many float32 gradients differ bitwise after GradScaler's scale and ``unscale_``
    from those of the unscaled loss (a weighted sum of two task losses)."""
    weights = torch.tensor([0.1, 10.0])
    targets = torch.tensor([[0.5, -1.0, 2.0], [3.0, 0.25, -0.75]])

    def grads(scaler: torch.amp.GradScaler | None) -> torch.Tensor:
        w = torch.nn.Parameter(torch.tensor([0.3, -1.7, 0.9]))
        optimizer = torch.optim.SGD([w], lr=0.1)
        losses = ((w - targets) ** 2).sum(dim=1)
        loss = (weights * losses).sum()
        if scaler is None:
            loss.backward()
        else:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        return w.grad.clone()

    scaler = torch.amp.GradScaler("cpu", init_scale=GRAD_SCALER_SCALE)
    mismatches = (grads(scaler) != grads(None)).sum().item()
    return sympy.Integer(mismatches)


def grad_scaler_left_in(config, reference, slug: str, what: str) -> Callable[[], Statement]:
    def build() -> Statement:
        return tasks.statement(
            f"amp.grad-scaler.{slug}.all.scale-left-in",
            f"GradScaler's scale S left in the gradients (no unscale_): {config.label} on S g "
            f"is {config.label} with {what} on g, every parameter.",
            ("one constant scale S > 0 for all tasks", "no weight decay, zero initial state"),
            config,
            "common-scale",
            reference,
        )

    return build


def eps_dominates() -> Statement:
    """Symbolic: Adam's first head update from the zero state on ``a g`` over the one on ``g`` is
    ``a (|g| + eps) / (a |g| + eps)``; over the linear ``a (|g| + eps) / eps`` it is
    ``1 / (1 + a |g| / eps)``, within ``a |g| / eps`` of 1. Numbers: the rule on torch tensors
    with ``a = 2^-30``, ``g = 2^-6`` (``a g = 2^-36``, about eps / 700) in bfloat16 (parameter
    at 0), and in float32 after a float16 GradScaler pass (``S a g = 2^-20`` stored, then
    unscaled)."""
    a, g, eps = tasks.A[tasks.TASK], tasks.G[tasks.TASK, 1], S.EPS
    rule = get_rule("adam")
    hp = {**C.ADAM.hp}
    first = [
        rule.step(SYMPY, S.P, x, rule.init(SYMPY, S.P, **{**rule.defaults, **hp}), 1, **hp) - S.P
        for x in (a * g, g)
    ]
    ratio = a * (sympy.Abs(g) + eps) / (a * sympy.Abs(g) + eps)
    linear = ratio / (a * (sympy.Abs(g) + eps) / eps)
    closed = 1 / (1 + a * sympy.Abs(g) / eps)
    residuals = [residual(first[0] / first[1], ratio), residual(linear, closed)]
    u1 = (D.update(1, scaled=True), D.update(1))
    derivation = [
        Equation("first step from the zero state: scaled run", u1[0], first[0]),
        Equation("first step from the zero state: reference", u1[1], first[1]),
        *D.comparison(
            "the ratio of the first updates",
            (u1[0] / u1[1], D.name("rho", "closed")),
            (first[0] / first[1], ratio),
            residuals[0],
            sides=("from the rule", "closed form"),
        ),
        *D.comparison(
            "over the linear ratio alpha (abs(g) + eps) / eps",
            (D.name("rho", "linear"), D.name("rho", "closed")),
            (linear, closed),
            residuals[1],
            sides=("from the rule", "closed form"),
        ),
    ]
    measured = _eps_numbers()
    gaps = [_gap(m, e, rtol) for m, e, rtol in measured]
    residuals += gaps
    for (m, e, rtol), gap, where in zip(
        measured, gaps, ("bfloat16", "float16 GradScaler"), strict=True
    ):
        derivation += D.comparison(
            f"torch, {where}: measured ratio against the closed form (gap beyond rtol {rtol:g})",
            (D.name("rho", "torch"), D.name("rho", "closed")),
            (sympy.Float(m), sympy.Float(e)),
            gap,
            sides=("measured", "closed form"),
        )
    claim = (
        "Adam with eps > 0: the first head update under alpha_t is the unscaled one times "
        "alpha_t (abs(g) + eps) / (alpha_t abs(g) + eps); where abs(alpha_t g) <= eps / 100 that "
        "is within 1% of alpha_t (abs(g) + eps) / eps: proportional to alpha_t, as for SGD (torch "
        "bfloat16, and float16 behind a GradScaler, agree)."
    )
    assumptions = (
        "zero initial state, no weight decay; the ratio of the first step",
        "numbers: alpha = 2^-30, g = 2^-6, eps = 1e-8, lr = 0.01, betas (0.9, 0.999)",
        tasks.TASKS_ANY,
    )
    sid = "amp.eps-dominates.adam.head.first-step-ratio"
    return _checked(sid, claim, assumptions, residuals, derivation, {"numbers": measured})


def _first_update(grad: float, dtype: torch.dtype) -> float:
    """Adam's first update (the rule on torch tensors of ``dtype``, parameter at 0)."""
    rule = get_rule("adam")
    hp = {**rule.defaults, **TORCH_ADAM}
    param = torch.zeros(1, dtype=dtype)
    state = rule.init(TORCH, param, **hp)
    return rule.step(TORCH, param, torch.tensor([grad], dtype=dtype), state, 1, **hp).item()


def _through_grad_scaler(x: float) -> float:
    """``x`` after a float16 GradScaler pass: ``S x`` stored in float16, divided by S in
    float32."""
    stored = torch.tensor([GRAD_SCALER_SCALE * x], dtype=torch.float32).to(torch.float16)
    return (stored.float() * (1 / GRAD_SCALER_SCALE)).item()


def _eps_numbers() -> list[tuple[float, float, float]]:
    """(measured ratio of the first updates, closed form, relative tolerance): bfloat16
    throughout; float32 Adam on float16-GradScaler gradients."""
    a, g, eps = ALPHA_TINY, GRADS[0], TORCH_ADAM["eps"]
    expected = a * (abs(g) + eps) / (a * abs(g) + eps)
    bf16 = _first_update(a * g, torch.bfloat16) / _first_update(g, torch.bfloat16)
    amp = _first_update(_through_grad_scaler(a * g), torch.float32) / _first_update(
        _through_grad_scaler(g), torch.float32
    )
    return [(bf16, expected, 2.0**-6), (amp, expected, 1e-5)]


BUILDERS: tuple[Callable[[], Statement], ...] = (
    grad_scaler_unscale,
    grad_scaler_left_in(C.ADAM, C.eps_over_scale, "adam", "eps / S"),
    grad_scaler_left_in(C.SGD_MOMENTUM, C.lr_times_scale, "sgd-momentum", "lr S"),
    lambda: flush_to_zero("float16"),
    lambda: flush_to_zero("bfloat16"),
    float16_adam_head,
    eps_dominates,
)
"""The mixed-precision statements."""
