"""mtl: the library that the theory, the simulations and the vision studies share.

Submodules are imported on demand (``import mtl.optim``), so ``import mtl`` stays light.
"""

__version__ = "0.1.0"
