"""mtl: the library that the theory, the simulations and the vision studies share.

Submodules are imported on demand (``import mtl.optim``), so ``import mtl`` stays light;
``mtl.backward(losses, method, shared=...)`` (see :mod:`mtl.backprop`) loads on first use.
"""

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "backward":
        from mtl.backprop import backward

        return backward
    raise AttributeError(f"module 'mtl' has no attribute {name!r}")
