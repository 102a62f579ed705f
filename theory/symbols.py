"""The symbols of the per-coordinate hard-parameter-sharing model, and one concrete instance.

Element-wise rules of :mod:`mtl.optim` need one coordinate: a head coordinate of task t sees
``alpha_t g_{t,k}`` at step k, a backbone coordinate ``sum_t alpha_t g_{t,k}``. Rules that act on
whole tensors run on small symbolic tensors (:func:`tensor`) of these symbols' entries.
Gradients are real and nonzero (a sign or a norm may appear), scales and hyperparameters
positive; betas, the momentum and RMSprop's smoothing constant are meant to lie in (0, 1), but no
proof below needs that.
"""

from __future__ import annotations

import numpy as np
import sympy

TASKS = 2
STEPS = 3
"""Tasks and unrolled steps of every derivation: enough to see the structure, cheap for sympy."""

ALPHA = sympy.Symbol("alpha", positive=True)
"""A common loss scale of all tasks (or the scale of the one task whose head is looked at)."""
ALPHAS = sympy.symbols(f"alpha_1:{TASKS + 1}", positive=True)
"""Per-task loss scales."""
G = tuple(
    tuple(sympy.Symbol(f"g_{t}_{k}", real=True, nonzero=True) for k in range(1, STEPS + 1))
    for t in range(1, TASKS + 1)
)
"""``G[t][k]``: gradient of the unscaled loss of task t+1 at step k+1 (one coordinate)."""
H = sympy.symbols(f"h_1:{TASKS + 1}", real=True, nonzero=True)
"""Per-task gradients at the symbolic step k of an induction step."""
K = sympy.Symbol("k", positive=True, integer=True)
"""The symbolic step of an induction step."""
P0 = sympy.Symbol("p_0", real=True)
"""The parameter's value before the first step (it matters once weight decay is on)."""
P = sympy.Symbol("p", real=True)
"""The parameter's value before the symbolic step k."""

LR = sympy.Symbol("lr", positive=True)
BETA1, BETA2 = sympy.symbols("beta_1 beta_2", positive=True)
EPS = sympy.Symbol("epsilon", positive=True)
MU = sympy.Symbol("mu", positive=True)
"""Momentum (SGD: heavy ball coefficient; Signum: EMA coefficient; RMSprop: momentum)."""
TAU = sympy.Symbol("tau", positive=True)
"""SGD dampening."""
WD = sympy.Symbol("lambda", positive=True)
"""Weight decay."""
RHO = sympy.Symbol("rho", positive=True)
"""RMSprop's smoothing constant (torch calls it ``alpha``)."""
LR_DECAY = sympy.Symbol("eta", positive=True)
"""Adagrad's learning-rate decay."""
PSI = sympy.Symbol("psi", positive=True)
"""NAdam's momentum decay."""
TRUST = sympy.Symbol("eta_L", positive=True)
"""LARS's trust coefficient."""
EPS2 = sympy.Symbol("epsilon_2", positive=True)
"""Adafactor's floor on a parameter's RMS (its relative step size)."""

_R = sympy.Rational
INSTANCE: dict[sympy.Symbol, sympy.Expr] = {
    LR: _R(1, 100),
    BETA1: _R(9, 10),
    BETA2: _R(999, 1000),
    EPS: _R(1, 10**8),
    MU: _R(9, 10),
    TAU: _R(1, 10),
    WD: _R(1, 100),
    RHO: _R(99, 100),
    LR_DECAY: _R(1, 10),
    PSI: _R(4, 1000),
    TRUST: _R(1, 1000),
    EPS2: _R(1, 1000),
    P0: sympy.S.One,
    ALPHA: sympy.Integer(10),
    ALPHAS[0]: _R(1, 10),
    ALPHAS[1]: sympy.Integer(10),
    **dict(zip(G[0], (_R(1), _R(-1, 2), _R(3, 2)), strict=True)),
    **dict(zip(G[1], (_R(-1, 2), _R(2), _R(-1)), strict=True)),
}
"""Concrete values for counterexamples: torch's default betas, eps 1e-8; the per-task scales
flip the sign of the first backbone gradient (``g_1 + g_2 = 1/2``, ``g_1/10 + 10 g_2 = -49/10``)."""


def tensor(x: sympy.Symbol, shape: tuple[int, ...]) -> sympy.Symbol | np.ndarray:
    """``x`` itself (``shape == ()``: one coordinate), or an array of the shape whose entries are
    symbols ``x_{ij}`` with ``x``'s assumptions (a small symbolic tensor)."""
    if not shape:
        return x
    entries = [
        sympy.Symbol(f"{x.name}_{''.join(str(i + 1) for i in index)}", **x.assumptions0)
        for index in np.ndindex(*shape)
    ]
    return np.array(entries, dtype=object).reshape(shape)
