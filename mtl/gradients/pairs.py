"""The paper's gradient pairs (Sec. 4.2, App. A3.2, A5) from per-sample gradients (T, B, P).

- inter-task: the same sample, two different tasks, ``(G[t, i], G[t', i])``;
- inter-sample: the same task, two different samples, ``(G[t, i], G[t, i'])``;
- averaged variants (App. A5): inter-task pairs of the task gradients averaged over the samples,
  ``mean_i G[t, i]``, and inter-sample pairs of the sample gradients averaged over the tasks,
  ``mean_t G[t, i]``.

All unordered pairs are used and, in the single-gradient comparisons, pooled over the samples
(inter-task) or the tasks (inter-sample). :func:`draw` picks the k = 8 tasks and samples at
random when there are more; averages run over the gradients given, so pass all of a batch's
samples (or tasks) to average over all of them, as the paper describes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mtl.gradients.statistics import pair_statistics

KINDS = ("inter_task", "inter_sample", "inter_task_averaged", "inter_sample_averaged")


def draw(n: int, k: int = 8, generator: torch.Generator | None = None) -> list[int]:
    """``min(k, n)`` distinct indices of ``range(n)`` drawn uniformly, in increasing order."""
    if n < 1 or k < 2:
        raise ValueError(f"draw needs n >= 1 items and k >= 2, got n={n}, k={k}")
    return sorted(torch.randperm(n, generator=generator)[:k].tolist())


def all_pairs(n: int) -> Tensor:
    """The (n (n - 1) / 2, 2) unordered index pairs i < j of ``range(n)``."""
    return torch.combinations(torch.arange(n), r=2).reshape(-1, 2)


def inter_task_pairs(tasks: int, samples: int) -> Tensor:
    """Row pairs of ``G.reshape(T * B, P)`` with the same sample and different tasks."""
    task_pairs = all_pairs(tasks)
    sample = torch.arange(samples).repeat_interleave(len(task_pairs))
    return task_pairs.repeat(samples, 1) * samples + sample[:, None]


def inter_sample_pairs(tasks: int, samples: int) -> Tensor:
    """Row pairs of ``G.reshape(T * B, P)`` with the same task and different samples."""
    sample_pairs = all_pairs(samples)
    task = torch.arange(tasks).repeat_interleave(len(sample_pairs))
    return sample_pairs.repeat(tasks, 1) + (task * samples)[:, None]


def conflict_study(G: Tensor, *, denominator: str = "nonzero") -> dict[str, dict[str, Tensor]]:
    """Statistics (see :func:`pair_statistics`) of every pair of each kind in :data:`KINDS`."""
    if G.dim() != 3 or G.shape[0] < 2 or G.shape[1] < 2:
        raise ValueError(
            f"G must be per-sample gradients (T, B, P) with T >= 2 tasks and B >= 2 samples, "
            f"got shape {tuple(G.shape)}"
        )
    tasks, samples, _ = G.shape
    flat = G.reshape(tasks * samples, -1)
    return {
        "inter_task": pair_statistics(
            flat, inter_task_pairs(tasks, samples), denominator=denominator
        ),
        "inter_sample": pair_statistics(
            flat, inter_sample_pairs(tasks, samples), denominator=denominator
        ),
        "inter_task_averaged": pair_statistics(
            G.mean(1), all_pairs(tasks), denominator=denominator
        ),
        "inter_sample_averaged": pair_statistics(
            G.mean(0), all_pairs(samples), denominator=denominator
        ),
    }
