"""Similarity statistics of gradient pairs, over all shared parameters or per layer.

For rows g = G[i], g' = G[j] of a gradient matrix G (N, P):

- ``dot``: g . g' (direction and magnitude together, the paper's Fig. A7);
- ``cosine``: g . g' / (|g| |g'|), in [-1, 1]; a pair conflicts when it is < 0;
- ``magnitude_similarity``: 2 |g| |g'| / (|g|^2 + |g'|^2), in [0, 1], 1 iff |g| = |g'|;
- ``conflict_ratio``: the fraction of coordinates with opposite signs, g_k g'_k < 0. The
  denominator is stated by ``denominator``: ``"nonzero"`` (default) counts the coordinates
  nonzero in both gradients (a coordinate where either is 0 can be neither), ``"all"`` counts
  all P coordinates;
- ``norm_a``, ``norm_b``: |g| and |g'|.

A statistic without a defined value (the cosine of a zero gradient, a ratio over no coordinate)
is NaN. Inner products and sign counts are accumulated in float64 over chunks of columns, so
counts stay exact for any P.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

DENOMINATORS = ("nonzero", "all")
_CHUNK = 1 << 20


def pair_statistics(G: Tensor, pairs: Tensor, *, denominator: str = "nonzero") -> dict[str, Tensor]:
    """Statistics of the row pairs ``pairs`` (M, 2) of ``G`` (N, P): a dict of (M,) tensors."""
    if denominator not in DENOMINATORS:
        raise ValueError(
            f"unknown conflict denominator {denominator!r}; valid: {', '.join(DENOMINATORS)}"
        )
    if G.dim() != 2:
        raise ValueError(f"G must be a (N, P) matrix of gradients, got shape {tuple(G.shape)}")
    pairs = torch.as_tensor(pairs, dtype=torch.long, device=G.device).reshape(-1, 2)
    if pairs.numel() and not (int(pairs.min()) >= 0 and int(pairs.max()) < G.shape[0]):
        raise ValueError(f"pair indices must lie in [0, {G.shape[0]}), got {pairs.tolist()}")
    gram, both, agree = _products(G)
    i, j = pairs[:, 0], pairs[:, 1]
    dot = gram[i, j]
    sq_a, sq_b = gram[i, i], gram[j, j]
    norm_a, norm_b = sq_a.sqrt(), sq_b.sqrt()
    nan = torch.full_like(dot, float("nan"))
    cosine = torch.where((sq_a > 0) & (sq_b > 0), dot / (norm_a * norm_b), nan).clamp(-1, 1)
    total = sq_a + sq_b
    magnitude = torch.where(total > 0, 2 * norm_a * norm_b / total, nan)
    conflicts = (
        both[i, j] - agree[i, j]
    ) / 2  # both = agreeing + opposite, agree = their difference
    count = both[i, j] if denominator == "nonzero" else torch.full_like(dot, G.shape[1])
    ratio = torch.where(count > 0, conflicts / count, nan)
    return {
        "cosine": cosine,
        "magnitude_similarity": magnitude,
        "conflict_ratio": ratio,
        "dot": dot,
        "norm_a": norm_a,
        "norm_b": norm_b,
    }


def gramian_condition_number(G: Tensor) -> float:
    """lambda_max / lambda_min of the Gramian G G^T (the square of G's condition number);
    ``inf`` when the rows are linearly dependent (lambda_min <= 0 in float64)."""
    if G.dim() != 2 or G.shape[0] == 0:
        raise ValueError(f"G must be a non-empty (N, P) matrix, got shape {tuple(G.shape)}")
    eig = torch.linalg.eigvalsh(_products(G)[0])
    if eig[0] <= 0:
        return float("inf")
    return float(eig[-1] / eig[0])


def layer_slices(names: Sequence[str], numels: Sequence[int]) -> dict[str, list[slice]]:
    """Column ranges of each layer in a flat gradient whose parameters are ``names`` (in order)
    with ``numels`` entries; a layer is a parameter name without its last component."""
    if len(names) != len(numels):
        raise ValueError(f"got {len(names)} names but {len(numels)} sizes")
    layers: dict[str, list[slice]] = {}
    start = 0
    for name, n in zip(names, numels, strict=True):
        layer = name.rsplit(".", 1)[0]
        spans = layers.setdefault(layer, [])
        if spans and spans[-1].stop == start:
            spans[-1] = slice(spans[-1].start, start + n)
        else:
            spans.append(slice(start, start + n))
        start += n
    return layers


def pair_statistics_by_layer(
    G: Tensor,
    pairs: Tensor,
    named_params: Sequence[tuple[str, Tensor]],
    *,
    denominator: str = "nonzero",
) -> dict[str, dict[str, Tensor]]:
    """:func:`pair_statistics` restricted to each layer's columns of ``G``."""
    names = [name for name, _ in named_params]
    numels = [p.numel() for _, p in named_params]
    if sum(numels) != G.shape[-1]:
        raise ValueError(
            f"the parameters have {sum(numels)} entries but G has {G.shape[-1]} columns"
        )
    return {
        layer: pair_statistics(
            torch.cat([G[:, s] for s in spans], dim=1), pairs, denominator=denominator
        )
        for layer, spans in layer_slices(names, numels).items()
    }


def _products(G: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """float64 (N, N) matrices: G G^T, #coordinates nonzero in both rows, sum of sign products."""
    n = G.shape[0]
    gram = torch.zeros(n, n, dtype=torch.float64, device=G.device)
    both, agree = torch.zeros_like(gram), torch.zeros_like(gram)
    for start in range(0, G.shape[1], _CHUNK):
        block = G[:, start : start + _CHUNK]
        wide = block.double()  # no copy when G is float64
        gram += wide @ wide.T
        sign = torch.sign(block).to(torch.float32)  # chunk sums <= 2^20 are exact in float32
        nonzero = sign.abs()
        both += (nonzero @ nonzero.T).double()
        agree += (sign @ sign.T).double()
    return gram, both, agree
