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

Later rules: Adamax, NAdam, RAdam (torch.optim's arithmetic, bit for bit), Lion (element-wise),
and rules that act on one whole tensor (``Rule.tensor``: the optimizer steps each parameter
alone): Adafactor and Muon (torch.optim's), LAMB and LARS (trust ratios of the tensor's norms),
Shampoo (Kronecker-factored preconditioner). Each rule declares where its eps sits
(``Rule.eps_power``), which the theory's atlas uses to map eps under a loss scale.

Weight decay is coupled L2 (added to the gradient) except in AdamW and where torch's rule (or the
paper's) decouples it: NAdam/RAdam with ``decoupled_weight_decay``, Adafactor, Muon, Lion,
LAMB (``wd p`` added to the update).
"""

from __future__ import annotations

import math
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


def adamax(ops, param, grad, state: State, step, *, lr, betas, eps, weight_decay, maximize=False):
    """Adamax (torch.optim.Adamax): ``u <- max(beta2 u, |g| + eps)``,
    ``p <- p - lr/(1-beta1^k) m / u``; eps sits outside any root (a loss scale: eps/a)."""
    beta1, beta2 = betas
    grad = _coupled_decay(ops, param, _direction(ops, grad, maximize), weight_decay)
    m = state["exp_avg"] = ops.lerp_(state["exp_avg"], grad, 1 - beta1)
    u = state["exp_inf"] = ops.maximum_(
        ops.mul_(state["exp_inf"], beta2), ops.add_scalar_(ops.abs(grad), eps)
    )
    return ops.addcdiv_(param, m, u, -lr / (1 - beta1**step))


def _decay(ops, param, grad, lr, weight_decay, decoupled: bool):
    """(param, grad) after weight decay: decoupled ``p (1 - lr wd)`` or coupled ``g + wd p``."""
    if weight_decay != 0 and decoupled:
        return ops.mul_(param, 1 - lr * weight_decay), grad
    return param, _coupled_decay(ops, param, grad, weight_decay)


def _second_moment(ops, state: State, grad, beta1, beta2):
    """Adam's ``m <- lerp(m, g, 1-beta1)`` and ``v <- beta2 v + (1-beta2) g^2``."""
    m = state["exp_avg"] = ops.lerp_(state["exp_avg"], grad, 1 - beta1)
    v = state["exp_avg_sq"] = ops.addcmul_(
        ops.mul_(state["exp_avg_sq"], beta2), grad, grad, 1 - beta2
    )
    return m, v


def nadam(
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
    momentum_decay,
    decoupled_weight_decay=False,
    maximize=False,
):
    """NAdam (torch.optim.NAdam, Dozat 2016): ``mu_k = beta1 (1 - 0.96^(k psi) / 2)``,
    ``P_k = prod_j mu_j`` (state ``mu_product``, a number), ``d = sqrt(v / (1-beta2^k)) + eps``;
    ``p <- p - lr (1-mu_k)/(1-P_k) g / d - lr mu_{k+1}/(1-P_k mu_{k+1}) m / d``."""
    beta1, beta2 = betas
    grad = _direction(ops, grad, maximize)
    param, grad = _decay(ops, param, grad, lr, weight_decay, decoupled_weight_decay)
    mu = beta1 * (1 - 0.96 ** (step * momentum_decay) / 2)
    mu_next = beta1 * (1 - 0.96 ** ((step + 1) * momentum_decay) / 2)
    mu_product = state["mu_product"] = state["mu_product"] * mu
    m, v = _second_moment(ops, state, grad, beta1, beta2)
    denom = ops.add_scalar_(ops.sqrt(ops.div_(ops.clone(v), 1 - beta2**step)), eps)
    param = ops.addcdiv_(param, grad, denom, -lr * (1 - mu) / (1 - mu_product))
    return ops.addcdiv_(param, m, denom, (-lr * mu_next) / (1 - mu_product * mu_next))


def radam(
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
    decoupled_weight_decay=False,
    maximize=False,
):
    """RAdam (torch.optim.RAdam, Liu et al. 2020): ``rho_k = rho_inf - 2k beta2^k/(1-beta2^k)``,
    ``rho_inf = 2/(1-beta2) - 1``; while ``rho_k <= 5`` the step is ``lr m_hat`` (SGD with
    momentum, unnormalised), after it ``lr m_hat r_k sqrt(1-beta2^k)/(sqrt(v) + eps)`` with the
    rectification ``r_k = sqrt((rho_k-4)(rho_k-2) rho_inf / ((rho_inf-4)(rho_inf-2) rho_k))``."""
    beta1, beta2 = betas
    grad = _direction(ops, grad, maximize)
    param, grad = _decay(ops, param, grad, lr, weight_decay, decoupled_weight_decay)
    m, v = _second_moment(ops, state, grad, beta1, beta2)
    bias_correction2 = 1 - beta2**step
    corrected = ops.div_(ops.clone(m), 1 - beta1**step)
    rho_inf = 2 / (1 - beta2) - 1
    rho = rho_inf - 2 * step * (beta2**step) / bias_correction2
    if not rho > 5.0:
        return ops.add_(param, ops.mul_(corrected, lr), -1.0)
    rect = ((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho)) ** 0.5
    adaptive = ops.scalar_div(bias_correction2**0.5, ops.add_scalar_(ops.sqrt(v), eps))
    return ops.add_(param, ops.mul_(ops.mul(ops.mul_(corrected, lr), adaptive), rect), -1.0)


def adafactor(
    ops, param, grad, state: State, step, *, lr, beta2_decay, eps, d, weight_decay, maximize=False
):
    """Adafactor as torch.optim.Adafactor has it (Shazeer & Stern 2018 with relative steps and
    update clipping, without first moment): ``beta2_k = 1 - k^beta2_decay``; a 2-D (or higher)
    gradient keeps row and column mean squares ``R <- lerp(R, mean_j g^2, k^c)``, ``C`` alike,
    and ``v = R C / max(mean(R), eps1)`` (factored); others ``v <- lerp(v, g^2, k^c)``;
    ``u = g / sqrt(max(v, eps1^2))``, ``p <- p (1 - lr wd) - max(eps2, RMS(p)) min(lr, 1/sqrt(k))
    u / max(1, RMS(u)/d)``. eps1 (``eps[0]``, None: the dtype's machine epsilon) bounds ``v``
    at ``eps1^2`` (a loss scale: eps1/a) and, factored, ``mean(R)`` at ``eps1`` (eps1/a^2)."""
    eps1, eps2 = eps
    if eps1 is None:
        eps1 = ops.machine_eps(param)
    grad = _direction(ops, grad, maximize)
    rate = step**beta2_decay
    relative = ops.max_scalar(eps2, ops.norm(param) / ops.size(param) ** 0.5)
    alpha = relative * ops.minimum(lr, 1 / step**0.5)
    if weight_decay != 0:
        param = ops.mul_(param, 1 - lr * weight_decay)
    if len(ops.shape(grad)) > 1:
        row = state["row_var"] = ops.lerp_(state["row_var"], ops.sq_norm_mean(grad, -1), rate)
        col = state["col_var"] = ops.lerp_(state["col_var"], ops.sq_norm_mean(grad, -2), rate)
        var = ops.div(ops.matmul(row, col), ops.clamp_min(ops.mean_at(row, -2), eps1))
    else:
        var = state["variance"] = ops.lerp_(state["variance"], ops.mul(grad, grad), rate)
    update = ops.mul(ops.rsqrt(ops.clamp_min(var, eps1 * eps1)), grad)
    denom = ops.max_scalar(1.0, ops.norm(update) / (ops.size(update) ** 0.5 * d))
    return ops.add_(param, update, -alpha / denom)


def _check_matrix(ops, param, name: str) -> tuple[int, int]:
    shape = ops.shape(param)
    if len(shape) != 2:
        raise ValueError(
            f"{name} steps 2-D parameters (matrices) only, not shape {shape}: give the others "
            f"(biases, norms) a group of their own, e.g. {{'params': ..., 'optimizer': 'adamw'}}"
        )
    return shape


_MUON_LR_ADJUSTMENTS: dict[Any, Callable[[int, int], float]] = {
    None: lambda a, b: math.sqrt(max(1, a / b)),
    "original": lambda a, b: math.sqrt(max(1, a / b)),
    "match_rms_adamw": lambda a, b: 0.2 * math.sqrt(max(a, b)),
    "spectral_unclamped": lambda a, b: math.sqrt(a / b),
}
"""torch.optim.Muon's ``adjust_lr_fn``: the factor of lr for an A x B matrix."""


def newton_schulz(ops, x, coefficients, steps: int, eps):
    """Muon's orthogonalisation (torch's quintic Newton-Schulz): ``X <- M / max(||M||_F, eps)``
    (of M or M^T, whichever is wide), then ``steps`` times ``A = X X^T``,
    ``X <- a X + (b A + c A^2) X``; bfloat16 on torch, as torch.optim.Muon computes it."""
    a, b, c = coefficients
    rows, cols = ops.shape(x)
    x = ops.low_precision(x)
    if rows > cols:
        x = ops.transpose(x)
    x = ops.normalize_frobenius(x, eps)
    for _ in range(steps):
        gram = ops.matmul(x, ops.transpose(x))
        x = ops.addmm(x, ops.addmm(gram, gram, gram, b, c), x, a)
    return ops.transpose(x) if rows > cols else x


def muon(
    ops,
    param,
    grad,
    state: State,
    step,
    *,
    lr,
    weight_decay,
    momentum,
    nesterov,
    ns_coefficients,
    eps,
    ns_steps,
    adjust_lr_fn,
):
    """Muon (torch.optim.Muon, Jordan et al. 2024) on a matrix: ``b <- lerp(b, g, 1-mu)``,
    ``M = lerp(g, b, mu)`` (Nesterov) or ``b``, ``p <- p (1 - lr wd) - lr s NS(M)`` with
    :func:`newton_schulz` and ``s`` the shape factor of ``adjust_lr_fn``; NS(M) depends on M
    through ``M / max(||M||_F, eps)`` only (a loss scale: eps/a)."""
    rows, cols = _check_matrix(ops, param, "muon")
    buf = state["momentum_buffer"] = ops.lerp_(state["momentum_buffer"], grad, 1 - momentum)
    update = ops.lerp_(ops.clone(grad), buf, momentum) if nesterov else buf
    update = newton_schulz(ops, update, ns_coefficients, ns_steps, eps)
    param = ops.mul_(param, 1 - lr * weight_decay)
    return ops.add_(param, update, -lr * _MUON_LR_ADJUSTMENTS[adjust_lr_fn](rows, cols))


def lion(ops, param, grad, state: State, step, *, lr, betas, weight_decay, maximize=False):
    """Lion (Chen et al. 2023, Algorithm 2): ``c = sign(beta1 m + (1-beta1) g)``,
    ``p <- p (1 - lr wd) - lr c``, then ``m <- beta2 m + (1-beta2) g``."""
    beta1, beta2 = betas
    grad = _direction(ops, grad, maximize)
    if weight_decay != 0:
        param = ops.mul_(param, 1 - lr * weight_decay)
    direction = ops.sign(ops.lerp_(ops.clone(state["exp_avg"]), grad, 1 - beta1))
    state["exp_avg"] = ops.lerp_(state["exp_avg"], grad, 1 - beta2)
    return ops.add_(param, direction, -lr)


def _trust_ratio(ops, numerator, denominator):
    """numerator / denominator, or 1 where either is zero (a zero tensor takes a plain step)."""
    return numerator / denominator if numerator != 0 and denominator != 0 else 1.0


def lamb(
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
    maximize=False,
):
    """LAMB (You et al. 2020, Algorithm 2) per parameter tensor: Adam's direction
    ``r = m_hat / (sqrt(v_hat) + eps)`` plus ``wd p``, ``u = r + wd p``,
    ``p <- p - lr (||p|| / ||u||) u`` (ratio 1 when a norm is zero)."""
    beta1, beta2 = betas
    grad = _direction(ops, grad, maximize)
    m, v = _second_moment(ops, state, grad, beta1, beta2)
    m, v = ops.clone(m), ops.clone(v)
    if bias_correction:
        m, v = ops.div_(m, 1 - beta1**step), ops.div_(v, 1 - beta2**step)
    update = ops.div(m, ops.add_scalar_(ops.sqrt(v), eps))
    if weight_decay != 0:
        update = ops.add_(update, param, weight_decay)
    ratio = _trust_ratio(ops, ops.norm(param), ops.norm(update))
    return ops.add_(param, update, -lr * ratio)


def lars(
    ops,
    param,
    grad,
    state: State,
    step,
    *,
    lr,
    momentum,
    trust_coefficient,
    eps,
    weight_decay,
    maximize=False,
):
    """LARS (You et al. 2017, Algorithm 1) per parameter tensor: local rate
    ``l = eta ||p|| / (||g|| + wd ||p|| + eps)`` (1 when a norm is zero),
    ``b <- mu b + lr l (g + wd p)``, ``p <- p - b``."""
    grad = _direction(ops, grad, maximize)
    p_norm, g_norm = ops.norm(param), ops.norm(grad)
    local = _trust_ratio(ops, trust_coefficient * p_norm, g_norm + weight_decay * p_norm + eps)
    if g_norm == 0:
        local = 1.0
    grad = _coupled_decay(ops, param, grad, weight_decay)
    buf = state["momentum_buffer"] = ops.add_(
        ops.mul_(state["momentum_buffer"], momentum), grad, lr * local
    )
    return ops.add_(param, buf, -1)


def shampoo(ops, param, grad, state: State, step, *, lr, eps, weight_decay, maximize=False):
    """Shampoo (Gupta et al. 2018, Algorithm 1) on a matrix G: ``L <- L + G G^T``,
    ``R <- R + G^T G`` from ``L_0 = eps I``, ``R_0 = eps I``; ``p <- p - lr L^{-1/4} G R^{-1/4}``
    (roots by eigendecomposition; on sympy the closed form for 2x2). eps sits on the factors,
    quadratic in g (a loss scale: eps/a^2)."""
    _check_matrix(ops, param, "shampoo")
    grad = _coupled_decay(ops, param, _direction(ops, grad, maximize), weight_decay)
    left = state["left"] = ops.addmm(state["left"], grad, ops.transpose(grad))
    right = state["right"] = ops.addmm(state["right"], ops.transpose(grad), grad)
    preconditioned = ops.matmul(ops.matrix_power(left, -0.25), grad)
    return ops.add_(param, ops.matmul(preconditioned, ops.matrix_power(right, -0.25)), -lr)


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


def _nadam_init(ops, param, **_) -> State:
    return {
        "exp_avg": ops.zeros_like(param),
        "exp_avg_sq": ops.zeros_like(param),
        "mu_product": 1,
    }


def _adafactor_init(ops, param, **_) -> State:
    """Row and column mean squares of a 2-D (or higher) parameter, else a full second moment."""
    zeros = ops.zeros_like(param)
    if len(ops.shape(param)) > 1:
        return {"row_var": ops.mean_at(zeros, -1), "col_var": ops.mean_at(zeros, -2)}
    return {"variance": zeros}


def _muon_init(ops, param, **_) -> State:
    _check_matrix(ops, param, "muon")
    return {"momentum_buffer": ops.zeros_like(param)}


def _shampoo_init(ops, param, *, eps, **_) -> State:
    rows, cols = _check_matrix(ops, param, "shampoo")
    return {
        "left": ops.mul_(ops.eye(param, rows), eps),
        "right": ops.mul_(ops.eye(param, cols), eps),
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
    keys = ("weight_decay", "momentum", "lr_decay", "initial_accumulator_value", "switch_eps")
    for key in (*keys, "momentum_decay", "trust_coefficient"):
        if key in hp:
            _check(hp[key] >= 0, f"invalid {key}={hp[key]}: it must be >= 0")
    if isinstance(hp.get("eps"), tuple):  # Adafactor's (eps1, eps2)
        eps = hp["eps"]
        _check(len(eps) == 2, f"eps must be a pair (eps1, eps2), got {eps!r}")
        _check(eps[0] is None or eps[0] >= 0, f"invalid eps1={eps[0]}: None or >= 0")
        _check(eps[1] >= 0, f"invalid eps2={eps[1]}: it must be >= 0")
    elif "eps" in hp:
        _check(hp["eps"] >= 0, f"invalid eps={hp['eps']}: it must be >= 0")
    if "d" in hp:
        _check(hp["d"] >= 1, f"invalid clipping threshold d={hp['d']}: it must be >= 1")
    if "beta2_decay" in hp:
        _check(hp["beta2_decay"] <= 0, f"invalid beta2_decay={hp['beta2_decay']}: must be <= 0")
    if "ns_steps" in hp:
        steps = hp["ns_steps"]
        _check(
            isinstance(steps, int) and 0 <= steps < 100,
            f"invalid ns_steps={steps!r}: an integer in [0, 100)",
        )
    if "ns_coefficients" in hp:
        _check(
            len(hp["ns_coefficients"]) == 3,
            f"ns_coefficients must be (a, b, c), got {hp['ns_coefficients']!r}",
        )
    if "adjust_lr_fn" in hp:
        _check(
            hp["adjust_lr_fn"] in _MUON_LR_ADJUSTMENTS,
            f"invalid adjust_lr_fn={hp['adjust_lr_fn']!r}; valid: "
            + ", ".join(map(repr, _MUON_LR_ADJUSTMENTS)),
        )
    if ema_momentum:  # sign methods, Muon: momentum is an EMA coefficient
        _check(hp["momentum"] < 1, f"invalid momentum={hp['momentum']}: it must lie in [0, 1)")
    if "alpha" in hp:
        _check(0 <= hp["alpha"] <= 1, f"invalid alpha={hp['alpha']}: it must lie in [0, 1]")
    for key in _FLAGS:
        if key in hp:
            _check(
                isinstance(hp[key], bool), f"invalid {key}={hp[key]!r}: it must be True or False"
            )
    if hp.get("nesterov") and "dampening" in hp:
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
    ``tensor``: the rule acts on one whole parameter tensor (norms, matrix products: LAMB,
    LARS, Adafactor, Muon, Shampoo), so the optimizer steps each parameter alone.
    ``eps_power``: how the rule's eps scales with a loss scale a, ``eps -> eps / a^power``
    (1: eps added outside a root or to a quantity linear in g; 2: eps added to a quantity
    quadratic in g, such as Shampoo's factors; 0: no eps, or one no scale reaches).
    """

    name: str
    update: Callable[..., Value]
    init: Callable[..., State]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    complex_as_real: bool = True
    vector: bool = False
    tensor: bool = False
    eps_power: int = 1

    def hyperparameters(self, **overrides: Any) -> dict[str, Any]:
        """Defaults updated by ``overrides``; unknown names and invalid values raise ValueError."""
        unknown = sorted(set(overrides) - set(self.defaults))
        if unknown:
            raise ValueError(
                f"optimizer {self.name!r} has no hyperparameter {', '.join(unknown)}; "
                f"valid: {', '.join(self.defaults)}"
            )
        hp = {**self.defaults, **overrides}
        _validate(hp, ema_momentum=self.update in (sign_descent, muon))
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
        Rule(
            "adamax",
            adamax,
            _zeros("exp_avg", "exp_inf"),
            {
                "lr": 2e-3,
                "betas": (0.9, 0.999),
                "eps": 1e-8,
                "weight_decay": 0.0,
                "maximize": False,
            },
        ),
        Rule(
            "nadam",
            nadam,
            _nadam_init,
            {
                "lr": 2e-3,
                "betas": (0.9, 0.999),
                "eps": 1e-8,
                "weight_decay": 0.0,
                "momentum_decay": 4e-3,
                "decoupled_weight_decay": False,
                "maximize": False,
            },
        ),
        Rule(
            "radam",
            radam,
            _zeros("exp_avg", "exp_avg_sq"),
            {
                "lr": 1e-3,
                "betas": (0.9, 0.999),
                "eps": 1e-8,
                "weight_decay": 0.0,
                "decoupled_weight_decay": False,
                "maximize": False,
            },
        ),
        Rule(
            "adafactor",
            adafactor,
            _adafactor_init,
            {
                "lr": 1e-2,
                "beta2_decay": -0.8,
                "eps": (None, 1e-3),
                "d": 1.0,
                "weight_decay": 0.0,
                "maximize": False,
            },
            tensor=True,
        ),
        Rule(
            "muon",
            muon,
            _muon_init,
            {
                "lr": 1e-3,
                "weight_decay": 0.1,
                "momentum": 0.95,
                "nesterov": True,
                "ns_coefficients": (3.4445, -4.7750, 2.0315),
                "eps": 1e-7,
                "ns_steps": 5,
                "adjust_lr_fn": None,
            },
            tensor=True,
        ),
        Rule(
            "lion",
            lion,
            _zeros("exp_avg"),
            {"lr": 1e-4, "betas": (0.9, 0.99), "weight_decay": 0.0, "maximize": False},
            eps_power=0,
        ),
        Rule(
            "lamb",
            lamb,
            _zeros("exp_avg", "exp_avg_sq"),
            {
                "lr": 1e-3,
                "betas": (0.9, 0.999),
                "eps": 1e-6,
                "weight_decay": 0.0,
                "bias_correction": True,
                "maximize": False,
            },
            tensor=True,
        ),
        Rule(
            "lars",
            lars,
            _zeros("momentum_buffer"),
            {
                "lr": 1.0,
                "momentum": 0.9,
                "trust_coefficient": 1e-3,
                "eps": 1e-8,
                "weight_decay": 0.0,
                "maximize": False,
            },
            tensor=True,
        ),
        Rule(
            "shampoo",
            shampoo,
            _shampoo_init,
            {"lr": 1e-1, "eps": 1e-4, "weight_decay": 0.0, "maximize": False},
            tensor=True,
            eps_power=2,
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
