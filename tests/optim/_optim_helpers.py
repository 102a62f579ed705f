"""Shared pieces of the mtl.optim tests: torch counterparts, hyperparameter strategies, a net."""

from __future__ import annotations

import itertools

import numpy as np
import torch
from hypothesis import strategies as st

TORCH_CLASSES: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
}
SIGN_RULES = ("signsgd", "signum")
ALL_RULES = (*TORCH_CLASSES, *SIGN_RULES)

_lr = st.one_of(st.just(0.0), st.floats(1e-4, 0.05))
_decay = st.one_of(st.just(0.0), st.floats(0.0, 0.1))
_eps = st.floats(1e-12, 1e-3)
_beta = st.floats(0.0, 0.999)


@st.composite
def _sgd(draw: st.DrawFn) -> dict:
    nesterov = draw(st.booleans())
    momentum = draw(st.floats(0.05, 0.95)) if nesterov else draw(st.sampled_from([0.0, 0.5, 0.9]))
    dampening = 0.0 if nesterov else draw(st.floats(0.0, 0.5))
    return {
        "lr": draw(_lr),
        "momentum": momentum,
        "dampening": dampening,
        "nesterov": nesterov,
        "weight_decay": draw(_decay),
        "maximize": draw(st.booleans()),
    }


@st.composite
def _adam(draw: st.DrawFn, decoupled: bool = True) -> dict:
    hp = {
        "lr": draw(_lr),
        "betas": (draw(_beta), draw(_beta)),
        "eps": draw(_eps),
        "weight_decay": draw(_decay),
        "amsgrad": draw(st.booleans()),
        "maximize": draw(st.booleans()),
    }
    if decoupled:
        hp["decoupled_weight_decay"] = draw(st.booleans())
    return hp


@st.composite
def _rmsprop(draw: st.DrawFn) -> dict:
    lr = draw(_lr)
    return {
        "lr": lr,
        "alpha": draw(st.floats(0.5, 0.999)),
        "eps": draw(_eps),
        "weight_decay": draw(_decay),
        "momentum": draw(st.sampled_from([0.0, 0.5, 0.9])),
        # with lr = 0 the gradient is constant, the centered variance is exactly 0 and its
        # square root that of a rounding error: NaN or not depending on the kernel's rounding
        "centered": lr > 0 and draw(st.booleans()),
        "maximize": draw(st.booleans()),
    }


@st.composite
def _adagrad(draw: st.DrawFn) -> dict:
    return {
        "lr": draw(_lr),
        "lr_decay": draw(st.one_of(st.just(0.0), st.floats(0.0, 0.1))),
        "weight_decay": draw(_decay),
        "initial_accumulator_value": draw(st.one_of(st.just(0.0), st.floats(0.0, 1.0))),
        "eps": draw(_eps),
        "maximize": draw(st.booleans()),
    }


@st.composite
def _sign(draw: st.DrawFn) -> dict:
    return {
        "lr": draw(_lr),
        "momentum": draw(st.sampled_from([0.0, 0.5, 0.9])),
        "weight_decay": draw(_decay),
        "maximize": draw(st.booleans()),
    }


HYPERPARAMETERS: dict[str, st.SearchStrategy[dict]] = {
    "sgd": _sgd(),
    "adam": _adam(),
    "adamw": _adam(decoupled=False),
    "rmsprop": _rmsprop(),
    "adagrad": _adagrad(),
    "signsgd": _sign(),
    "signum": _sign(),
}


def tiny_net(seed: int, widths: tuple[int, ...] = (3, 5, 2)) -> torch.nn.Sequential:
    """A float64 tanh MLP, deterministic in ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layer = torch.nn.Linear(a, b).double()
        with torch.no_grad():
            layer.weight.copy_(torch.randn(b, a, generator=gen, dtype=torch.float64) / a**0.5)
            layer.bias.copy_(0.1 * torch.randn(b, generator=gen, dtype=torch.float64))
        layers.append(layer)
        if i < len(widths) - 2:
            layers.append(torch.nn.Tanh())
    return torch.nn.Sequential(*layers)


def regression_data(seed: int, n: int = 8, widths: tuple[int, ...] = (3, 5, 2)):
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(n, widths[0], generator=gen, dtype=torch.float64)
    y = torch.randn(n, widths[-1], generator=gen, dtype=torch.float64)
    return x, y


def train(net: torch.nn.Module, opt: torch.optim.Optimizer, x, y, steps: int) -> None:
    """``steps`` full-batch steps of mean squared error."""
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        opt.step()


def max_abs_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max(
        (p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters(), strict=True)
    )


def stepped(name: str, p0: np.ndarray, grads, **hp) -> np.ndarray:
    """``p0`` after ``mtl.optim.build(name, ...)`` stepped once per gradient of ``grads``."""
    import mtl.optim

    w = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    opt = mtl.optim.build(name, [w], **hp)
    for g in grads:
        w.grad = torch.from_numpy(g)
        opt.step()
    return w.detach().numpy()
