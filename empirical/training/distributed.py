"""Data-parallel training with ``torch.distributed`` (launched by ``torchrun``).

No ``DistributedDataParallel`` wrapper: its hooks would average the *aggregated* gradient, but MTL
methods are nonlinear in the task Jacobian, so the Jacobian itself is averaged over the ranks
before the method sees it (:mod:`empirical.training.adapters`), and the task-specific gradients
are averaged afterwards (:meth:`Context.average_grads`). Every rank then holds the same update.

Each rank draws its part of every epoch's permutation (``DistributedSampler``, seeded by the run's
seed and the epoch) and trains on ``batch_size / world`` samples, so the union over the ranks of
step k's batches is the batch of step k in one process. BatchNorm becomes ``SyncBatchNorm`` on
CUDA; torch's SyncBatchNorm refuses CPU tensors, so under gloo on the CPU BatchNorm normalises
with each rank's own batch statistics (a model with BatchNorm then differs from one process by
more than rounding). Evaluation, selection and every file are rank 0's.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor


@dataclass(frozen=True)
class Context:
    """This process's rank among ``world`` processes (1: not distributed)."""

    rank: int = 0
    world: int = 1

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def mean(self, tensor: Tensor) -> Tensor:
        """The average of ``tensor`` over the ranks (a new tensor)."""
        if not self.active:
            return tensor
        out = tensor.detach().clone()
        dist.all_reduce(out)
        return out.div_(self.world)

    def average_grads(self, params: Iterable[Tensor]) -> None:
        """Average ``.grad`` of ``params`` over the ranks, in place (missing grads count as 0)."""
        if not self.active:
            return
        params = list(params)
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat.div_(self.world)
        start = 0
        for p in params:
            n = p.numel()
            p.grad = flat[start : start + n].view_as(p).clone()
            start += n

    def broadcast(self, tensors: Iterable[Tensor]) -> None:
        if self.active:
            for t in tensors:
                dist.broadcast(t.data, src=0)

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def init(device_kind: str) -> Context:
    """Join the process group that ``torchrun``'s environment describes, or run alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_kind == "cuda" else "gloo")
    return Context(rank=dist.get_rank(), world=dist.get_world_size())


def local_device_index() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))
