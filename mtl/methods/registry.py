"""One registry for every MTL method: ``register(name)`` on a class, ``get(name, **hp)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from mtl.methods.base import Method

M = TypeVar("M", bound=type[Method])

REGISTRY: dict[str, type[Method]] = {}


def register(name: str) -> Callable[[M], M]:
    """Class decorator: file the method under ``name`` (lower case, hyphens)."""

    def deco(cls: M) -> M:
        if name in REGISTRY:
            raise ValueError(f"method name {name!r} is registered twice")
        cls.name = name
        REGISTRY[name] = cls
        return cls

    return deco


def method_class(name: str) -> type[Method]:
    """The class registered as ``name``; a ValueError lists the valid names otherwise."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        valid = ", ".join(sorted(REGISTRY))
        raise ValueError(f"unknown MTL method {name!r}; valid names: {valid}") from None


def get(name: str, **hyperparameters: Any) -> Method:
    """A fresh instance of method ``name`` with validated hyperparameters."""
    return method_class(name)(**hyperparameters)
