"""Per-task Jacobians, per-sample gradients and gradient-conflict statistics.

>>> import torch
>>> from mtl.gradients import jacobian
>>> w = torch.tensor([1.0, 2.0], requires_grad=True)
>>> jacobian([(w**2).sum(), w[0] * w[1]], [w]).tolist()
[[2.0, 4.0], [2.0, 1.0]]
"""

from mtl.gradients.jacobian import FASTER, METHODS, choose_method, jacobian
from mtl.gradients.pairs import (
    KINDS,
    all_pairs,
    conflict_study,
    draw,
    inter_sample_pairs,
    inter_task_pairs,
)
from mtl.gradients.per_sample import MODES, per_sample_gradients, per_sample_losses
from mtl.gradients.statistics import (
    DENOMINATORS,
    gramian_condition_number,
    layer_slices,
    pair_statistics,
    pair_statistics_by_layer,
)
from mtl.gradients.summary import summarize, summarize_epoch

__all__ = [
    "DENOMINATORS",
    "FASTER",
    "KINDS",
    "METHODS",
    "MODES",
    "all_pairs",
    "choose_method",
    "conflict_study",
    "draw",
    "gramian_condition_number",
    "inter_sample_pairs",
    "inter_task_pairs",
    "jacobian",
    "layer_slices",
    "pair_statistics",
    "pair_statistics_by_layer",
    "per_sample_gradients",
    "per_sample_losses",
    "summarize",
    "summarize_epoch",
]
