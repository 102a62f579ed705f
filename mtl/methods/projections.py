"""Aggregators built on dual-cone projections and on the cosine matrix: UPGrad, DualProj, ConFIG.

With ``G = J J^T`` and unit gradients ``U`` (``C = U U^T``), each is ``d = J^T w`` for weights
computed on the T x T problem (:func:`~mtl.methods.solvers.dual_cone_weights`). Conventions are
TorchJD 0.18's: UPGrad and DualProj project the *mean* (preference ``1/T``); ConFIG's length is
the sum of the projections ``sum_t g_t . d/||d||``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from mtl.methods.aggregators import _combine, _gramian_np
from mtl.methods.base import Aggregator, rowwise
from mtl.methods.registry import register
from mtl.methods.solvers import dual_cone_weights


@register("upgrad")
class UPGrad(Aggregator):
    """UPGrad (Quinton & Rey 2024, TorchJD's default): each ``g_i / T`` projected onto the dual
    cone ``{x : J x >= 0}`` of the rows, then summed: ``w = sum_i argmin_{v >= e_i/T} v^T G v``.
    The projections are solved exactly (NNLS in unit-gradient coordinates) on the raw Gramian;
    TorchJD's quadprog projector normalises G by its trace, returns the mean when that trace is
    below ``norm_eps = 1e-4`` and adds ``reg_eps = 1e-4`` to the diagonal, so it answers another
    problem for small or widely spread gradients. Non-conflicting: ``J d >= 0``.
    """

    def aggregate(self, jacobian: Tensor, generator: torch.Generator | None) -> Tensor:
        def one(j: Tensor) -> tuple[Tensor, Tensor]:
            t = j.shape[0]
            gram = _gramian_np(j)
            weights = sum(dual_cone_weights(gram, np.eye(t)[i] / t) for i in range(t))
            return _combine(weights, j)

        direction, self.last_weights = rowwise(one, jacobian)
        return direction


@register("dualproj")
class DualProj(Aggregator):
    """DualProj (TorchJD; GEM's projection, Lopez-Paz & Ranzato 2017): the mean gradient
    projected onto the dual cone of the rows, ``w = argmin_{v >= 1/T} v^T G v`` (solved as in
    :class:`UPGrad`). Non-conflicting: ``J d >= 0``.
    """

    def aggregate(self, jacobian: Tensor, generator: torch.Generator | None) -> Tensor:
        def one(j: Tensor) -> tuple[Tensor, Tensor]:
            t = j.shape[0]
            return _combine(dual_cone_weights(_gramian_np(j), np.full(t, 1.0 / t)), j)

        direction, self.last_weights = rowwise(one, jacobian)
        return direction


@register("config")
class ConFIG(Aggregator):
    """ConFIG (Liu et al. 2024, Eq. 2, as TorchJD and the authors' code): the direction
    ``q = U^+ 1`` with equal cosines to all task gradients, ``q = U^T C^+ 1``, scaled to the
    sum of the projections: ``d = (sum_t g_t . q/||q||) q/||q||``. Zero gradients get unit
    vector 0, as TorchJD's ``nan_to_num``. Its direction is IMTL-G's; only the length differs.
    """

    def aggregate(self, jacobian: Tensor, generator: torch.Generator | None) -> Tensor:
        norms = jacobian.norm(dim=-1)
        nonzero = norms > 0
        safe = torch.where(nonzero, norms, 1)
        units = jacobian / safe.unsqueeze(-1) * nonzero.unsqueeze(-1)
        cosines = units @ units.transpose(-1, -2)
        b = torch.linalg.pinv(cosines, hermitian=True) @ nonzero.to(jacobian.dtype).unsqueeze(-1)
        q = (b.transpose(-1, -2) @ units).squeeze(-2)
        q_norm = q.norm(dim=-1, keepdim=True)
        unit = torch.where(q_norm > 0, q / torch.where(q_norm > 0, q_norm, 1), 0)
        length = (jacobian @ unit.unsqueeze(-1)).sum(-2)
        self.last_weights = None
        return length * unit
