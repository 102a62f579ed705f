"""Aggregators: exactly the properties each declares in ``properties.DECLARED``, by hypothesis."""

from __future__ import annotations

import method_properties as pr
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mtl.methods
from mtl.methods import SolverError

SPECS = {"mgda-l2": ("mgda", {"gn": "l2"})}


def aggregator(key: str):
    name, hp = SPECS.get(key, (key, {}))
    return lambda jac: mtl.methods.aggregate(
        name, jac, generator=torch.Generator().manual_seed(0), **hp
    )


def keys(prop: str, value) -> list[str]:
    return [k for k, v in pr.DECLARED.items() if v[prop] == value]


seeds = st.integers(0, 2**31 - 1)
tasks = st.integers(2, 6)
dims = st.integers(6, 20)
log_scales = st.floats(-3, 3)


def _scales(seed: int, t: int, spread: float) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed + 1)
    return 10 ** (spread * (2 * torch.rand(t, generator=gen, dtype=torch.float64) - 1))


@pytest.mark.parametrize("key", keys("scale", "output"))
@settings(deadline=None)
@given(seed=seeds, t=tasks, p=dims, spread=st.floats(0.1, 3))
def test_output_invariant(key, seed, t, p, spread):
    jac = pr.sample_jacobian(seed, t, p)
    pr.assert_output_invariant(aggregator(key), jac, _scales(seed, t, spread))


@pytest.mark.parametrize("key", keys("scale", "direction"))
@settings(deadline=None)
@given(seed=seeds, t=tasks, p=dims, spread=st.floats(0.1, 3))
def test_direction_invariant(key, seed, t, p, spread):
    jac = pr.sample_jacobian(seed, t, p)
    pr.assert_direction_invariant(aggregator(key), jac, _scales(seed, t, spread))


@pytest.mark.parametrize("key", keys("scale", "line"))
@settings(deadline=None)
@given(seed=seeds, t=tasks, spread=st.floats(0.1, 1.5))
def test_line_invariant(key, seed, t, spread):
    jac = pr.sample_jacobian(seed, t, t + 10)  # well conditioned: the test is about the maths
    agg, scales = aggregator(key), _scales(seed, t, spread)
    pr.assert_direction_invariant(agg, jac, scales, rtol=1e-5, allow_flip=True)
    pr.assert_direction_invariant(agg, jac[:2], scales[:2], rtol=1e-5)


def test_imtl_g_flips_with_three_tasks():
    """IMTL-G's weights can be negative for T >= 3, and scaling then reverses the direction."""
    jac, scales = pr.sample_jacobian(0, 3, 6), _scales(0, 3, 2.0)
    d, ds = aggregator("imtl-g")(jac), aggregator("imtl-g")(scales[:, None] * jac)
    assert pr.cos(d, ds) < -1 + 1e-9


@pytest.mark.parametrize("key", keys("scale", None))
def test_not_scale_invariant_counterexample(key):
    # Two acute-angled gradients with one task scaled by 10: every listed method turns.
    jac = torch.tensor([[1.0, 0.2, 0.0], [-0.3, 1.0, 0.5]], dtype=torch.float64)
    pr.assert_not_scale_invariant(
        aggregator(key), jac, torch.tensor([10.0, 1.0], dtype=torch.float64)
    )


@pytest.mark.parametrize("key", keys("nonconflicting", True))
@settings(deadline=None)
@given(seed=seeds, t=tasks, p=dims)
def test_non_conflicting(key, seed, t, p):
    pr.assert_non_conflicting(aggregator(key), pr.sample_jacobian(seed, t, p))


@pytest.mark.parametrize("key", keys("nonconflicting", "t2"))
@settings(deadline=None)
@given(seed=seeds, p=dims)
def test_non_conflicting_two_tasks(key, seed, p):
    pr.assert_non_conflicting(aggregator(key), pr.sample_jacobian(seed, 2, p))


def test_pcgrad_conflicts_with_three_tasks():
    """PCGrad's non-conflict guarantee is for T = 2 only: a three-task counterexample."""
    found = False
    for seed in range(200):
        jac = pr.sample_jacobian(seed, 3, 3)
        d = aggregator("pcgrad")(jac)
        found = found or bool(((jac @ d) < -1e-9).any())
    assert found


@pytest.mark.parametrize("key", keys("permutation", "exact"))
@settings(deadline=None)
@given(seed=seeds, t=tasks, p=dims)
def test_permutation_invariant(key, seed, t, p):
    pr.assert_permutation_invariant(aggregator(key), pr.sample_jacobian(seed, t, p), seed)


@pytest.mark.parametrize("key", keys("permutation", "t2"))
@settings(deadline=None)
@given(seed=seeds, p=dims)
def test_permutation_invariant_two_tasks(key, seed, p):
    pr.assert_permutation_invariant(aggregator(key), pr.sample_jacobian(seed, 2, p), seed)


def test_pcgrad_permutation_in_distribution():
    """For T = 3, the multiset of PCGrad outputs over seeds is the same for permuted tasks."""
    jac = pr.sample_jacobian(3, 3, 4)
    perm = torch.tensor([2, 0, 1])

    def outputs(j):
        return {
            tuple(
                round(x, 9)
                for x in mtl.methods.aggregate(
                    "pcgrad", j, generator=torch.Generator().manual_seed(s)
                ).tolist()
            )
            for s in range(300)
        }

    assert outputs(jac) == outputs(jac[perm])
    assert len(outputs(jac)) > 1  # the order does matter for these gradients


@pytest.mark.parametrize("key", keys("hard", "finite"))
@pytest.mark.parametrize("t", [2, 3, 40])
def test_finite_on_hard_inputs(key, t):
    for case, jac in pr.hard_jacobians(t, t, 12).items():
        try:
            pr.assert_finite(aggregator(key), jac)
        except AssertionError as err:
            raise AssertionError(f"{key} on {case} (T={t}): {err}") from None


@pytest.mark.parametrize("t", [2, 3, 40])
def test_nash_raises_or_finite_on_hard_inputs(t):
    """Nash-MTL: no w > 0 with G w = 1/w for zero or opposite gradients, nor when 0 lies in the
    cone of the gradients (e.g. 40 random gradients in 12 dimensions) -> SolverError."""
    with pytest.raises(SolverError):
        aggregator("nash-mtl")(pr.sample_jacobian(t, 40, 12))
    cases = pr.hard_jacobians(t, t, t + 8)
    for case in ("zero", "opposite"):
        with pytest.raises(SolverError):
            aggregator("nash-mtl")(cases[case])
    for case in ("collinear", "tiny", "huge", "mixed-scales"):
        pr.assert_finite(aggregator("nash-mtl"), cases[case])


@pytest.mark.parametrize(
    "key", ["ew", "mean", "imtl-g", "mgda", "aligned-mtl", "cagrad", "graddrop"]
)
def test_batched_matches_loop(key):
    batch = torch.stack([pr.sample_jacobian(s, 3, 7) for s in range(4)]).reshape(2, 2, 3, 7)
    out = aggregator(key)(batch)
    assert out.shape == (2, 2, 7)
    if key != "graddrop":  # graddrop's uniform draws are per element of the whole batch
        loop = torch.stack([aggregator(key)(j) for j in batch.reshape(4, 3, 7)]).reshape(2, 2, 7)
        torch.testing.assert_close(out, loop)
