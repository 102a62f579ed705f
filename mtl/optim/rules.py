"""Update rules, written once and evaluated on every backend of :mod:`mtl.optim.ops`.

A rule maps ``(param, grad, state, step)`` to the new parameter, updating ``state`` (a dict of
buffers) in place. ``step`` counts from 1. Semantics follow ``torch.optim`` exactly, so that
``mtl.optim.build(name, ...)`` matches the corresponding torch optimizer to float64 rounding:

* SGD: ``d = g + wd p``; momentum buffer ``b_1 = d``, ``b_k = mu b_{k-1} + (1 - tau) d``;
  Nesterov ``d + mu b`` else ``b``; ``p <- p - lr d``.
* Adam: ``g <- g + wd p`` (coupled L2); ``m <- beta1 m + (1 - beta1) g``;
  ``v <- beta2 v + (1 - beta2) g^2``; ``p <- p - lr/(1-beta1^k) m / (sqrt(v/(1-beta2^k)) + eps)``.
* AdamW: ``p <- p (1 - lr wd)`` (decoupled), then Adam without L2.
* RMSprop: ``v <- alpha v + (1 - alpha) g^2`` (centered: minus the squared EMA of g);
  ``p <- p - lr g / (sqrt(v) + eps)`` (or through a momentum buffer).
* Adagrad: ``s <- s + g^2`` from ``initial_accumulator_value``;
  ``p <- p - lr/(1 + (k-1) lr_decay) g / (sqrt(s) + eps)``.
* signSGD / Signum: ``m <- mu m + (1 - mu) g`` (``m = g`` when ``mu = 0``); ``p <- p - lr sign(m)``.
  Both are one rule; they differ in their default momentum (0 and 0.9).

Two rules reduce over the parameters they are given, treated as one vector (``Rule.vector``:
the optimizer steps a group's parameters together; see :func:`swats` and :func:`sgd_rms`):

* SWATS: Adam, then SGD with momentum ``beta1`` at a learning rate estimated from Adam's steps.
* SGD-RMS: SGD whose learning rate is ``lr`` over the root of the mean of Adam's bias-corrected
  second moment over the vector (one task's head: a loss-scale-invariant SGD head).

Their scalar state (Python numbers, e.g. SWATS's switch step) is one value for the vector.

Weight decay is coupled L2 (added to the gradient) everywhere except AdamW, as in torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mtl.optim.ops import PureOps, Value

State = dict[str, Value]


def _coupled_decay(ops, param: Value, grad: Value, weight_decay: Value) -> Value:
    """g + wd p: an L2 term on the loss, seen by the rule as part of the gradient."""
    return ops.add(grad, param, weight_decay) if weight_decay != 0 else grad


def _direction(ops, grad: Value, maximize: bool) -> Value:
    """-g when maximising (ascent), else g; torch.optim's ``maximize``."""
    return ops.neg(grad) if maximize else grad


def sgd(
    ops,
    param,
    grad,
    state: State,
    step,
    *,
    lr,
    momentum,
    dampening,
    nesterov,
    weight_decay,
    maximize=False,
):
    grad = _coupled_decay(ops, param, _direction(ops, grad, maximize), weight_decay)
    if momentum != 0:
        if step == 1:
            buf = ops.clone(grad)
        else:
            buf = ops.add_(ops.mul_(state["momentum_buffer"], momentum), grad, 1 - dampening)
        state["momentum_buffer"] = buf
        grad = ops.add(grad, buf, momentum) if nesterov else buf
    return ops.add_(param, grad, -lr)


def adam(
    ops,
    param,
    grad,
    state: State,
    step,
    *,
    lr,
    betas,
    eps,
    weight_decay,
    bias_correction,
    amsgrad=False,
    maximize=False,
    decoupled_weight_decay=False,
):
    grad = _direction(ops, grad, maximize)
    if decoupled_weight_decay:
        return adamw(
            ops, param, grad, state, step, lr=lr, betas=betas, eps=eps,
            weight_decay=weight_decay, bias_correction=bias_correction, amsgrad=amsgrad,
        )  # fmt: skip
    grad = _coupled_decay(ops, param, grad, weight_decay)
    return _adam_step(ops, param, grad, state, step, lr, betas, eps, bias_correction, amsgrad)


def adamw(
    ops,
    param,
    grad,
    state: State,
    step,
    *,
    lr,
    betas,
    eps,
    weight_decay,
    bias_correction,
    amsgrad=False,
    maximize=False,
):
    grad = _direction(ops, grad, maximize)
    if weight_decay != 0:
        param = ops.mul_(param, 1 - lr * weight_decay)
    return _adam_step(ops, param, grad, state, step, lr, betas, eps, bias_correction, amsgrad)


def _adam_step(ops, param, grad, state: State, step, lr, betas, eps, bias_correction, amsgrad):
    """Moments ``m, v`` (AMSGrad: ``v`` replaced by its running maximum) and the update."""
    beta1, beta2 = betas
    m = state["exp_avg"] = ops.lerp_(state["exp_avg"], grad, 1 - beta1)
    v = state["exp_avg_sq"] = ops.addcmul_(
        ops.mul_(state["exp_avg_sq"], beta2), grad, grad, 1 - beta2
    )
    if amsgrad:
        v = state["max_exp_avg_sq"] = ops.maximum_(state["max_exp_avg_sq"], v)
    if bias_correction:
        step_size = lr / (1 - beta1**step)
        denom = ops.add_scalar_(ops.div_(ops.sqrt(v), ops.scalar_sqrt(1 - beta2**step)), eps)
    else:
        step_size = lr
        denom = ops.add_scalar_(ops.sqrt(v), eps)
    return ops.addcdiv_(param, m, denom, -step_size)


def rmsprop(
    ops,
    param,
    grad,
    state: State,
    step,
    *,
    lr,
    alpha,
    eps,
    weight_decay,
    momentum,
    centered,
    maximize=False,
):
    grad = _coupled_decay(ops, param, _direction(ops, grad, maximize), weight_decay)
    v = state["square_avg"] = ops.addcmul_(
        ops.mul_(state["square_avg"], alpha), grad, grad, 1 - alpha
    )
    if centered:
        mean = state["grad_avg"] = ops.lerp_(state["grad_avg"], grad, 1 - alpha)
        avg = ops.sqrt(ops.addcmul(v, mean, mean, -1))
    else:
        avg = ops.sqrt(v)
    avg = ops.add_scalar_(avg, eps)
    if momentum != 0:
        buf = state["momentum_buffer"] = ops.addcdiv_(
            ops.mul_(state["momentum_buffer"], momentum), grad, avg
        )
        return ops.add_(param, buf, -lr)
    return ops.addcdiv_(param, grad, avg, -lr)


def adagrad(
    ops,
    param,
    grad,
    state: State,
    step,
    *,
    lr,
    lr_decay,
    weight_decay,
    eps,
    initial_accumulator_value,
    maximize=False,
):
    grad = _coupled_decay(ops, param, _direction(ops, grad, maximize), weight_decay)
    clr = lr / (1 + (step - 1) * lr_decay)
    s = state["sum"] = ops.addcmul_(state["sum"], grad, grad, 1)
    return ops.addcdiv_(param, grad, ops.add_scalar_(ops.sqrt(s), eps), -clr)


def sign_descent(
    ops, param, grad, state: State, step, *, lr, momentum, weight_decay, maximize=False
):
    grad = _coupled_decay(ops, param, _direction(ops, grad, maximize), weight_decay)
    if momentum != 0:
        grad = state["momentum_buffer"] = ops.lerp_(state["momentum_buffer"], grad, 1 - momentum)
    return ops.add_(param, ops.sign(grad), -lr)


def swats(
    ops,
    param,
    grad,
    state: State,
    step,
    *,
    lr,
    betas,
    eps,
    weight_decay,
    switch_eps,
    maximize=False,
):
    """SWATS (Keskar & Socher 2017, Algorithm 1) on the vector ``x`` of the parameters given.

    Adam phase: ``x_k`` is Adam's update (this module's :func:`adam`, bit for bit), ``p_k =
    x_k - x_{k-1}`` and ``g_k`` the gradient Adam saw. When ``p_k . g_k != 0``:
    ``gamma_k = p_k . p_k / (-p_k . g_k)`` (the SGD learning rate whose step ``-gamma_k g_k``
    has the projection of ``p_k`` onto ``g_k``), ``lambda_k = beta2 lambda_{k-1} + (1 - beta2)
    gamma_k`` and ``Lambda_k = lambda_k / (1 - beta2^k)``; the phase switches after step k when
    ``k > 1``, ``|Lambda_k - gamma_k| < switch_eps`` and ``Lambda_k > 0``, recording ``k``
    (``switch_step``), ``Lambda = Lambda_k`` (``sgd_lr``) and the learning rate then
    (``switch_lr``). SGD phase: ``v_k = beta1 v_{k-1} + g_k`` from ``v = 0``, ``x_k = x_{k-1} -
    (1 - beta1) Lambda (lr / switch_lr) v_k`` (a learning-rate schedule keeps scaling the step).

    Against Algorithm 1: its Adam step adds eps to ``sqrt(v)``, not to ``sqrt(v_hat)`` (the two
    agree at eps = 0); its one eps is here ``eps`` (Adam's) and ``switch_eps`` (the criterion,
    default its 1e-9); ``Lambda > 0`` is added (a non-positive rate would step uphill).

    On one task's head, a loss scale ``a`` leaves the Adam phase unchanged (eps = 0) and
    divides ``gamma`` and ``Lambda`` by ``a``, so the SGD phase is unchanged as well if
    ``switch_eps`` is divided by ``a``: only the absolute criterion is not scale invariant.
    """
    beta1, beta2 = betas
    grad = _coupled_decay(ops, param, _direction(ops, grad, maximize), weight_decay)
    if state["switch_step"]:
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = ops.zeros_like(param)
        buf = state["momentum_buffer"] = ops.add_(ops.mul_(state["momentum_buffer"], beta1), grad)
        return ops.add_(param, buf, -(1 - beta1) * state["sgd_lr"] * lr / state["switch_lr"])
    before = ops.clone(param)
    param = _adam_step(ops, param, grad, state, step, lr, betas, eps, True, False)
    moved = ops.add(param, before, -1)
    along = ops.dot(moved, grad)
    if along != 0:
        gamma = ops.dot(moved, moved) / -along
        state["lambda"] = beta2 * state["lambda"] + (1 - beta2) * gamma
        estimate = state["lambda"] / (1 - beta2**step)
        if step > 1 and abs(estimate - gamma) < switch_eps and estimate > 0:
            state.update(switch_step=step, sgd_lr=estimate, switch_lr=lr)
    return param


def sgd_rms(
    ops,
    param,
    grad,
    state: State,
    step,
    *,
    lr,
    momentum,
    dampening,
    nesterov,
    beta2,
    eps,
    weight_decay,
    maximize=False,
):
    """SGD at the learning rate ``lr_k = lr / (r_k + eps)``, ``r_k = sqrt(mean_i v_hat_i)``.

    ``v <- beta2 v + (1 - beta2) d^2`` is Adam's second moment of the input ``d = g + wd p``,
    ``v_hat = v / (1 - beta2^k)``, and the mean runs over every coordinate of the vector given;
    then :func:`sgd` (momentum, dampening, Nesterov) steps ``d`` at ``lr_k``. On one task's head
    a loss scale ``a`` multiplies ``d`` (no decay) and ``r_k`` by ``a`` and so divides ``lr_k``
    by ``a`` (eps: ``eps / a``): the head's trajectory is the unscaled one, while its direction
    stays SGD's (a scalar rate per vector, no per-coordinate preconditioning).
    """
    grad = _coupled_decay(ops, param, _direction(ops, grad, maximize), weight_decay)
    v = state["exp_avg_sq"] = ops.addcmul_(
        ops.mul_(state["exp_avg_sq"], beta2), grad, grad, 1 - beta2
    )
    rms = ops.scalar_sqrt(ops.mean(v) / (1 - beta2**step))
    return sgd(
        ops, param, grad, state, step, lr=lr / (rms + eps), momentum=momentum,
        dampening=dampening, nesterov=nesterov, weight_decay=0,
    )  # fmt: skip


# --- state initialisation -------------------------------------------------------------------


def _zeros(*keys: str) -> Callable[..., State]:
    def init(ops, param, **hp) -> State:
        return {k: ops.zeros_like(param) for k in keys}

    return init


def _adam_init(ops, param, *, amsgrad=False, **_) -> State:
    keys = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if amsgrad else ("exp_avg", "exp_avg_sq")
    return {k: ops.zeros_like(param) for k in keys}


def _rmsprop_init(ops, param, *, momentum, centered, **_) -> State:
    state = {"square_avg": ops.zeros_like(param)}
    if momentum != 0:
        state["momentum_buffer"] = ops.zeros_like(param)
    if centered:
        state["grad_avg"] = ops.zeros_like(param)
    return state


def _adagrad_init(ops, param, *, initial_accumulator_value, **_) -> State:
    return {"sum": ops.full_like(param, initial_accumulator_value)}


def _sign_init(ops, param, *, momentum, **_) -> State:
    return {"momentum_buffer": ops.zeros_like(param)} if momentum != 0 else {}


def _swats_init(ops, param, **_) -> State:
    """Adam's moments; the scalar state of the switch (0: still in the Adam phase)."""
    return {
        "exp_avg": ops.zeros_like(param),
        "exp_avg_sq": ops.zeros_like(param),
        "lambda": 0.0,
        "switch_step": 0,
        "sgd_lr": 0.0,
        "switch_lr": 0.0,
    }


# --- validation -----------------------------------------------------------------------------


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


_FLAGS = (
    "nesterov",
    "centered",
    "bias_correction",
    "amsgrad",
    "maximize",
    "decoupled_weight_decay",
)


def _validate(hp: Mapping[str, Any], ema_momentum: bool) -> None:
    """Reject hyperparameters outside their domain, naming the parameter."""
    if "lr" in hp:
        _check(hp["lr"] >= 0, f"invalid learning rate lr={hp['lr']}: it must be >= 0")
    if "betas" in hp:
        betas = hp["betas"]
        _check(len(betas) == 2, f"betas must be a pair (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas):
            _check(0 <= beta < 1, f"invalid beta{i + 1}={beta}: betas must lie in [0, 1)")
    if "beta2" in hp:
        _check(0 <= hp["beta2"] < 1, f"invalid beta2={hp['beta2']}: it must lie in [0, 1)")
    keys = ("eps", "weight_decay", "momentum", "lr_decay", "initial_accumulator_value")
    for key in (*keys, "switch_eps"):
        if key in hp:
            _check(hp[key] >= 0, f"invalid {key}={hp[key]}: it must be >= 0")
    if ema_momentum:  # sign methods: momentum is an EMA coefficient
        _check(hp["momentum"] < 1, f"invalid momentum={hp['momentum']}: it must lie in [0, 1)")
    if "alpha" in hp:
        _check(0 <= hp["alpha"] <= 1, f"invalid alpha={hp['alpha']}: it must lie in [0, 1]")
    for key in _FLAGS:
        if key in hp:
            _check(
                isinstance(hp[key], bool), f"invalid {key}={hp[key]!r}: it must be True or False"
            )
    if hp.get("nesterov"):
        _check(
            hp["momentum"] > 0 and hp["dampening"] == 0,
            "nesterov=True requires momentum > 0 and dampening = 0",
        )


# --- registry -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """An update rule with its state initialiser and torch-compatible default hyperparameters.

    ``complex_as_real``: a complex parameter is stepped as its real view (real and imaginary
    parts as separate coordinates, as torch.optim does for rules with squares, signs or
    maxima); a rule that is linear in the gradient (SGD) runs on complex values as they are.
    ``vector``: the rule reduces over the coordinates it is given (``ops.dot``, ``ops.mean``),
    so the optimizer steps a group's parameters as one vector.
    """

    name: str
    update: Callable[..., Value]
    init: Callable[..., State]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    complex_as_real: bool = True
    vector: bool = False

    def hyperparameters(self, **overrides: Any) -> dict[str, Any]:
        """Defaults updated by ``overrides``; unknown names and invalid values raise ValueError."""
        unknown = sorted(set(overrides) - set(self.defaults))
        if unknown:
            raise ValueError(
                f"optimizer {self.name!r} has no hyperparameter {', '.join(unknown)}; "
                f"valid: {', '.join(self.defaults)}"
            )
        hp = {**self.defaults, **overrides}
        _validate(hp, ema_momentum=self.update is sign_descent)
        return hp

    def init_state(self, ops, param: Value, **hp: Any) -> State:
        return self.init(ops, param, **self.hyperparameters(**hp))

    def step(self, ops, param: Value, grad: Value, state: State, step: Value, **hp: Any) -> Value:
        """One update with defaults filled in; ``state`` is updated, the new parameter returned."""
        return self.update(ops, param, grad, state, step, **{**self.defaults, **hp})


_ADAM_DEFAULTS = {
    "lr": 1e-3,
    "betas": (0.9, 0.999),
    "eps": 1e-8,
    "bias_correction": True,
    "amsgrad": False,
    "maximize": False,
}

RULES: dict[str, Rule] = {
    rule.name: rule
    for rule in (
        Rule(
            "sgd",
            sgd,
            _zeros(),
            {
                "lr": 1e-3,
                "momentum": 0.0,
                "dampening": 0.0,
                "nesterov": False,
                "weight_decay": 0.0,
                "maximize": False,
            },
            complex_as_real=False,
        ),
        Rule(
            "adam",
            adam,
            _adam_init,
            {**_ADAM_DEFAULTS, "weight_decay": 0.0, "decoupled_weight_decay": False},
        ),
        Rule("adamw", adamw, _adam_init, {**_ADAM_DEFAULTS, "weight_decay": 1e-2}),
        Rule(
            "rmsprop",
            rmsprop,
            _rmsprop_init,
            {
                "lr": 1e-2,
                "alpha": 0.99,
                "eps": 1e-8,
                "weight_decay": 0.0,
                "momentum": 0.0,
                "centered": False,
                "maximize": False,
            },
        ),
        Rule(
            "adagrad",
            adagrad,
            _adagrad_init,
            {
                "lr": 1e-2,
                "lr_decay": 0.0,
                "weight_decay": 0.0,
                "initial_accumulator_value": 0.0,
                "eps": 1e-10,
                "maximize": False,
            },
        ),
        Rule(
            "signsgd",
            sign_descent,
            _sign_init,
            {"lr": 1e-3, "momentum": 0.0, "weight_decay": 0.0, "maximize": False},
        ),
        Rule(
            "signum",
            sign_descent,
            _sign_init,
            {"lr": 1e-3, "momentum": 0.9, "weight_decay": 0.0, "maximize": False},
        ),
        Rule(
            "swats",
            swats,
            _swats_init,
            {
                "lr": 1e-3,
                "betas": (0.9, 0.999),
                "eps": 1e-8,
                "weight_decay": 0.0,
                "switch_eps": 1e-9,
                "maximize": False,
            },
            vector=True,
        ),
        Rule(
            "sgd-rms",
            sgd_rms,
            _zeros("exp_avg_sq"),
            {
                "lr": 1e-3,
                "momentum": 0.0,
                "dampening": 0.0,
                "nesterov": False,
                "beta2": 0.999,
                "eps": 1e-8,
                "weight_decay": 0.0,
                "maximize": False,
            },
            vector=True,
        ),
    )
}


def get_rule(name: str) -> Rule:
    """The rule registered as ``name``; a ValueError lists the valid names otherwise."""
    try:
        return RULES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown optimizer {name!r}; valid names: {', '.join(RULES)}") from None


__all__ = ["RULES", "PureOps", "Rule", "get_rule"]
