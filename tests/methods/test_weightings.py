"""Loss weightings: scale behaviour of the update sum_t w_t g_t under L_t -> a_t L_t."""

from __future__ import annotations

import method_properties as pr
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mtl.methods

D = torch.float64
# output: same update; direction: same direction (GLS: its length scales with prod a^(1/T);
# FAMO: c = sum z_t/L_t rescales the length, contrary to "output invariant"); None: neither.
DECLARED = {
    "uw-o": "output",
    "si": "output",
    "gls": "direction",
    "famo": "direction",
    "ew": None,
    "mean": None,
    "fixed": None,
    "uw": None,
    "rlw": None,
}


def update(name: str):
    def fn(losses, jac):
        hp = {"tasks": len(losses)} if name in ("uw", "famo") else {}
        w = mtl.methods.get(name, **hp).weights(losses, generator=torch.Generator().manual_seed(0))
        return w.to(D) @ jac

    return fn


@pytest.mark.parametrize("name", [k for k, v in DECLARED.items() if v])
@settings(deadline=None)
@given(seed=st.integers(0, 2**31 - 1), t=st.integers(2, 6), spread=st.floats(0.1, 3))
def test_declared_invariance(name, seed, t, spread):
    gen = torch.Generator().manual_seed(seed)
    losses = torch.rand(t, generator=gen, dtype=D) + 0.1
    jac = pr.sample_jacobian(seed, t, 8)
    a = 10 ** (spread * (2 * torch.rand(t, generator=gen, dtype=D) - 1))
    d, ds = update(name)(losses, jac), update(name)(a * losses, a[:, None] * jac)
    k = float(ds @ d) / float(d @ d)
    if DECLARED[name] == "output":
        torch.testing.assert_close(ds, d)
    else:
        assert k > 0
        torch.testing.assert_close(ds, k * d)
        # the length factor, derived: GLS w_t = (prod L)^(1/T) / (T L_t) gives k = prod(a)^(1/T);
        # FAMO at its initial uniform z gives w_t = 1 / (L_t sum_s 1/L_s), so k = c / c', up to
        # the 1e-8 it adds to each L_t: a relative error of order 1e-8 / min_t a_t L_t.
        if name == "gls":
            expected, rel = float(a.log().mean().exp()), 1e-9
        else:
            expected = float((1 / losses).sum() / (1 / (a * losses)).sum())
            rel = 1e-9 + 10 * 1e-8 / float((a * losses).min())
        assert k == pytest.approx(expected, rel=rel)


@pytest.mark.parametrize("name", [k for k, v in DECLARED.items() if v is None])
def test_not_invariant_counterexample(name):
    losses, jac = (
        torch.tensor([1.0, 2.0], dtype=D),
        torch.tensor([[1.0, 0.2], [-0.3, 1.0]], dtype=D),
    )
    a = torch.tensor([10.0, 1.0], dtype=D)
    d, ds = update(name)(losses, jac), update(name)(a * losses, a[:, None] * jac)
    assert pr.cos(d, ds) < 1 - 1e-6


def test_famo_is_not_output_invariant():
    losses, jac = torch.tensor([1.0, 2.0], dtype=D), torch.eye(2, dtype=D)
    a = torch.tensor([10.0, 1.0], dtype=D)
    d, ds = update("famo")(losses, jac), update("famo")(a * losses, a[:, None] * jac)
    assert not torch.allclose(d, ds)


def test_famo_logit_update_is_scale_invariant():
    runs = []
    for a in (torch.tensor([1.0, 1.0]), torch.tensor([10.0, 0.1])):
        famo = mtl.methods.get("famo", tasks=2)
        famo(a * torch.tensor([1.0, 2.0]))
        famo.update(a * torch.tensor([0.5, 1.9]))
        runs.append(famo.logits.detach().clone())
    torch.testing.assert_close(runs[0], runs[1])
    assert not torch.equal(runs[0], torch.zeros(2))


def test_uw_o_eps_breaks_invariance_for_small_losses():
    uwo = mtl.methods.get("uw-o", eps=1e-8)
    w = uwo.weights(torch.tensor([1e-8, 1.0], dtype=D))
    torch.testing.assert_close(w, torch.tensor([0.5e8, 1 / (1 + 1e-8)], dtype=D))


@pytest.mark.parametrize("name", ["gls", "si"])
def test_log_methods_reject_non_positive_losses(name):
    with pytest.raises(ValueError, match="> 0"):
        mtl.methods.get(name)(torch.tensor([1.0, 0.0]))


def test_rlw_is_reproducible_with_generator_and_sums_to_one():
    rlw = mtl.methods.get("rlw")
    w1 = rlw.weights(torch.ones(4), generator=torch.Generator().manual_seed(5))
    w2 = rlw.weights(torch.ones(4), generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(w1, w2)
    assert float(w1.sum()) == pytest.approx(1.0)
