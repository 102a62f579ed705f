"""Optimizers whose update rules are written once for sympy symbols, arrays and torch tensors.

>>> import torch, mtl.optim
>>> w = torch.nn.Parameter(torch.ones(3))
>>> opt = mtl.optim.build("adam", [w], lr=0.1)
>>> w.sum().backward(); _ = opt.step()
>>> [round(x, 4) for x in w.tolist()]
[0.9, 0.9, 0.9]
"""

from mtl.optim.ops import FOREACH, NUMPY, SYMPY, TORCH, ForeachOps, PureOps
from mtl.optim.optimizer import Optimizer, build
from mtl.optim.rules import RULES, Rule, get_rule

NAMES = tuple(RULES)

__all__ = [
    "FOREACH",
    "NAMES",
    "NUMPY",
    "RULES",
    "SYMPY",
    "TORCH",
    "ForeachOps",
    "Optimizer",
    "PureOps",
    "Rule",
    "build",
    "get_rule",
]
