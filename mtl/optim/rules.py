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
    for key in ("eps", "weight_decay", "momentum", "lr_decay", "initial_accumulator_value"):
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
    """

    name: str
    update: Callable[..., Value]
    init: Callable[..., State]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    complex_as_real: bool = True

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
    )
}


def get_rule(name: str) -> Rule:
    """The rule registered as ``name``; a ValueError lists the valid names otherwise."""
    try:
        return RULES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown optimizer {name!r}; valid names: {', '.join(RULES)}") from None


__all__ = ["RULES", "PureOps", "Rule", "get_rule"]
