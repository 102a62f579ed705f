"""Pair statistics: laws over random gradients, golden values by hand, per-layer columns."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mtl.gradients import (
    gramian_condition_number,
    layer_slices,
    pair_statistics,
    pair_statistics_by_layer,
)

scales = st.sampled_from([1e-10, 1e-3, 1.0, 1e3, 1e10])


@st.composite
def gradient_matrices(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    rows, cols = draw(st.integers(2, 6)), draw(st.integers(1, 40))
    gen = torch.Generator().manual_seed(seed)
    G = torch.randn(rows, cols, generator=gen, dtype=torch.float64)
    G = G * (torch.rand(rows, cols, generator=gen) < draw(st.floats(0.3, 1.0)))  # exact zeros
    return G * draw(scales)


def _pairs(n):
    return torch.combinations(torch.arange(n), r=2)


@settings(deadline=None)
@given(G=gradient_matrices(), alpha=scales, beta=scales)
def test_laws_ranges_symmetry_and_scale_behaviour(G, alpha, beta):
    pairs = _pairs(G.shape[0])
    s = pair_statistics(G, pairs)
    swapped = pair_statistics(G, pairs.flip(1))
    for name in ("cosine", "magnitude_similarity", "conflict_ratio", "dot"):
        torch.testing.assert_close(s[name], swapped[name], equal_nan=True)
    cos, gms, ratio = s["cosine"], s["magnitude_similarity"], s["conflict_ratio"]
    assert torch.all(cos[~cos.isnan()].abs() <= 1)
    assert torch.all((gms[~gms.isnan()] >= 0) & (gms[~gms.isnan()] <= 1 + 1e-12))
    assert torch.all((ratio[~ratio.isnan()] >= 0) & (ratio[~ratio.isnan()] <= 1))
    # Scaling the gradients by positive factors leaves cosine and sign conflicts unchanged, and
    # magnitude similarity depends only on the norm ratio: 2r / (1 + r^2).
    scaled = G.clone()
    scaled[0] *= alpha
    scaled[1:] *= beta
    t = pair_statistics(scaled, pairs)
    torch.testing.assert_close(t["cosine"], cos, equal_nan=True, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(t["conflict_ratio"], ratio, equal_nan=True)
    some = t["norm_b"] > 0
    r = t["norm_a"][some] / t["norm_b"][some]
    torch.testing.assert_close(t["magnitude_similarity"][some], 2 * r / (1 + r**2))


@settings(deadline=None)
@given(G=gradient_matrices())
def test_agrees_with_an_independent_numpy_computation(G):
    a = G.numpy()
    pairs = _pairs(G.shape[0])
    s = pair_statistics(G, pairs)
    s_all = pair_statistics(G, pairs, denominator="all")
    for m, (i, j) in enumerate(pairs.tolist()):
        g, h = a[i], a[j]
        ng, nh = np.linalg.norm(g), np.linalg.norm(h)
        assert s["dot"][m].item() == pytest.approx(float(g @ h), rel=1e-9, abs=1e-300)
        if ng > 0 and nh > 0:
            assert s["cosine"][m].item() == pytest.approx(g @ h / (ng * nh), rel=1e-9, abs=1e-12)
            assert s["magnitude_similarity"][m].item() == pytest.approx(
                2 * ng * nh / (ng**2 + nh**2)
            )
        both = np.count_nonzero((g != 0) & (h != 0))
        opposite = np.count_nonzero(np.sign(g) * np.sign(h) < 0)
        assert s_all["conflict_ratio"][m].item() == pytest.approx(opposite / len(g))
        if both:
            assert s["conflict_ratio"][m].item() == pytest.approx(opposite / both)
        else:
            assert math.isnan(s["conflict_ratio"][m].item())


def test_golden_values_by_hand():
    G = torch.tensor([[3.0, 0.0, 1.0, -2.0], [1.0, 2.0, -1.0, 2.0], [0.0, 0.0, 0.0, 0.0]])
    s = pair_statistics(G, torch.tensor([[0, 1], [0, 2]]))
    # g = (3, 0, 1, -2), g' = (1, 2, -1, 2): dot 3 - 1 - 4 = -2, |g|^2 = 14, |g'|^2 = 10.
    assert s["dot"].tolist() == [-2.0, 0.0]
    assert s["cosine"][0].item() == pytest.approx(-2 / math.sqrt(140))
    assert s["magnitude_similarity"][0].item() == pytest.approx(2 * math.sqrt(140) / 24)
    # nonzero in both: coordinates 0, 2, 3; opposite signs: 2 and 3.
    assert s["conflict_ratio"][0].item() == pytest.approx(2 / 3)
    assert (
        pair_statistics(G, torch.tensor([[0, 1]]), denominator="all")["conflict_ratio"].item()
        == 0.5
    )
    # against a zero gradient: cosine and conflict ratio undefined, magnitude similarity 0.
    assert math.isnan(s["cosine"][1].item()) and math.isnan(s["conflict_ratio"][1].item())
    assert s["magnitude_similarity"][1].item() == 0.0


def test_magnitude_similarity_is_one_iff_equal_norms():
    G = torch.tensor([[3.0, 4.0], [0.0, -5.0], [0.0, 5.000001]])
    gms = pair_statistics(G, torch.tensor([[0, 1], [1, 2]]))["magnitude_similarity"]
    assert gms[0].item() == 1.0 and gms[1].item() < 1.0


def test_gramian_condition_number_golden():
    # Orthogonal rows with norms 1 and 3: Gramian diag(1, 9), condition number 9.
    G = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    assert gramian_condition_number(G) == pytest.approx(9.0)
    # Rows (1, 0), (1, 1): Gramian [[1, 1], [1, 2]], eigenvalues (3 -+ sqrt 5) / 2.
    G = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    expected = (3 + math.sqrt(5)) / (3 - math.sqrt(5))
    assert gramian_condition_number(G) == pytest.approx(expected)
    assert gramian_condition_number(torch.tensor([[1.0, 2.0], [2.0, 4.0]])) == math.inf


def test_conflict_counts_stay_exact_beyond_one_chunk():
    cols = (1 << 20) + 5
    G = torch.ones(2, cols)
    G[1, :7] = -1
    G[1, -3:] = 0
    s = pair_statistics(G, torch.tensor([[0, 1]]))
    assert s["conflict_ratio"].item() == 7 / (cols - 3)


def test_layers_and_per_layer_statistics():
    named = [
        ("encoder.0.weight", torch.zeros(2, 2)),
        ("encoder.0.bias", torch.zeros(2)),
        ("encoder.2.weight", torch.zeros(3)),
    ]
    names, numels = [n for n, _ in named], [p.numel() for _, p in named]
    assert layer_slices(names, numels) == {"encoder.0": [slice(0, 6)], "encoder.2": [slice(6, 9)]}
    gen = torch.Generator().manual_seed(0)
    G = torch.randn(3, 9, generator=gen, dtype=torch.float64)
    pairs = _pairs(3)
    by_layer = pair_statistics_by_layer(G, pairs, named)
    torch.testing.assert_close(
        by_layer["encoder.2"]["dot"], pair_statistics(G[:, 6:], pairs)["dot"]
    )
    # the dot product over all parameters is the sum over the layers
    total = by_layer["encoder.0"]["dot"] + by_layer["encoder.2"]["dot"]
    torch.testing.assert_close(total, pair_statistics(G, pairs)["dot"])


def test_bad_input_is_named():
    G = torch.ones(2, 3)
    with pytest.raises(ValueError, match="valid: nonzero, all"):
        pair_statistics(G, torch.tensor([[0, 1]]), denominator="both")
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 2\)"):
        pair_statistics(G, torch.tensor([[0, 2]]))
    with pytest.raises(ValueError, match="has 3 columns"):
        pair_statistics_by_layer(G, torch.tensor([[0, 1]]), [("a.w", torch.zeros(2))])
