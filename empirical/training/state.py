"""Everything a resumed run must restore beyond model and optimizer: RNG and method states."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from mtl.methods.base import Method

_MODULE_ATTRS = frozenset(vars(torch.nn.Module())) | {"hp", "_log_hooks"}


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (the global state is the point)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),  # noqa: NPY002
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def method_state(method: Method) -> dict[str, Any]:
    """Parameters/buffers and the plain attributes a method keeps between steps (DWA's loss
    history, GradVac's targets, FAMO's logits and their optimizer, ...)."""
    attrs = {k: v for k, v in vars(method).items() if k not in _MODULE_ATTRS}
    return {"module": method.state_dict(), "attrs": attrs}


def load_method_state(method: Method, state: dict[str, Any]) -> None:
    method.load_state_dict(state["module"])
    for key, value in state["attrs"].items():
        method.__dict__[key] = value
