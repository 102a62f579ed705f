"""Per-layer gradient statistics of the trainer's records (``empirical.training.stats``)."""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from empirical.training.stats import LAYER_STATISTICS, by_layer
from mtl.gradients import conflict_study


@settings(deadline=None)
@given(
    tasks=st.integers(1, 3),
    samples=st.integers(2, 5),
    sizes=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    seed=st.integers(0, 2**31 - 1),
)
def test_each_layer_is_the_pair_mean_over_its_own_columns(tasks, samples, sizes, seed):
    """Layer ``l{i}`` (weight and bias) holds the mean over the pairs of the statistics computed
    on its columns alone; one layer spanning every column gives the whole-network means."""
    g = torch.Generator().manual_seed(seed)
    params = [torch.empty(n) for n in sizes for _ in range(2)]
    names = [f"l{i}.{part}" for i in range(len(sizes)) for part in ("weight", "bias")]
    grads = torch.randn(tasks, samples, sum(p.numel() for p in params), generator=g)
    grads[grads.abs() < 0.3] = 0  # zeros in the sign counts
    layers = by_layer(grads, names, params)
    assert list(layers) == [f"l{i}" for i in range(len(sizes))]
    start = 0
    for i, n in enumerate(sizes):
        columns = grads[..., start : start + 2 * n]
        start += 2 * n
        if tasks >= 2:
            expected = conflict_study(columns)
            kinds = ("inter_task", "inter_sample")
        else:
            expected = {"inter_sample": conflict_study(columns.repeat(2, 1, 1))["inter_sample"]}
            kinds = ("inter_sample",)
        assert set(layers[f"l{i}"]) == set(kinds)
        for kind in kinds:
            for name in LAYER_STATISTICS:
                values = expected[kind][name]
                values = values[torch.isfinite(values)]
                got = layers[f"l{i}"][kind][name]
                if values.numel() == 0:
                    assert got is None
                else:
                    assert math.isclose(got, float(values.double().mean()), abs_tol=1e-6)
