"""Mixed precision: the rounding model against torch's casts, the counterexample and the eps
regime recomputed with torch.optim.Adam, GradScaler."""

from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import theory
from theory import precision

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


@pytest.mark.parametrize("fmt", ["float16", "bfloat16"])
@settings(deadline=None)
@given(mantissa=st.integers(-(2**23), 2**23), shift=st.integers(0, 12))
def test_the_rounding_model_is_torchs_cast(fmt, mantissa, shift):
    """Float32 values below the smallest normal (``mantissa 2^e``, ``e`` down to float32's
    smallest subnormal exponent -149)."""
    _, sub, normal = precision.FORMATS[fmt]
    x = Fraction(mantissa) * Fraction(2) ** max(sub - 24 + shift, -149)
    if abs(x) >= Fraction(2) ** normal:
        return
    value = torch.tensor([float(x)], dtype=torch.float32)
    assert Fraction(value.item()) == x  # representable in float32: one rounding only
    stored = value.to(DTYPES[fmt]).to(torch.float64).item()
    assert Fraction(stored) == precision.rounded(x, fmt)
    assert (stored == 0) == (abs(x) <= Fraction(2) ** (sub - 1))


def test_the_model_refuses_normal_numbers():
    with pytest.raises(ValueError, match="smallest normal"):
        precision.rounded(Fraction(1), "float16")


def test_torch_eps_is_zero_in_float16_but_not_in_bfloat16():
    assert torch.tensor(1e-8).to(torch.float16).item() == 0
    assert torch.tensor(1e-8).to(torch.bfloat16).item() > 0


def _torch_adam(grads, dtype=torch.float32, eps=1e-8):
    p = torch.zeros(1, dtype=dtype, requires_grad=True)
    opt = torch.optim.Adam([p], lr=0.01, betas=(0.9, 0.999), eps=eps)
    out = []
    for g in grads:
        before = p.detach().clone()
        p.grad = torch.tensor([g], dtype=dtype)
        opt.step()
        out.append((p.detach() - before).item())
    return out


def test_the_float16_counterexample_recomputed_with_torch_adam():
    cx = theory.get("amp.float16.adam.head.per-task-scale").counterexample
    stored = [torch.tensor(cx["alpha"] * g).to(torch.float16).item() for g in cx["gradients"]]
    assert stored == cx["stored_scaled_gradients"] == [0.0] * cx["step"]  # all flushed
    scaled = _torch_adam(stored)
    plain = _torch_adam([torch.tensor(g).to(torch.float16).item() for g in cx["gradients"]])
    assert scaled[-1] == cx["update_scaled"] == 0.0  # the scaled head does not move
    assert plain[-1] == pytest.approx(cx["update_reference"], rel=1e-6)
    assert plain[-1] == pytest.approx(-0.01, rel=1e-5)


def test_the_eps_regime_recomputed_with_torch_adam():
    a, g, eps = precision.ALPHA_TINY, precision.GRADS[0], 1e-8
    expected = a * (abs(g) + eps) / (a * abs(g) + eps)
    bf16 = _torch_adam([a * g], torch.bfloat16)[0] / _torch_adam([g], torch.bfloat16)[0]
    assert bf16 == pytest.approx(expected, rel=2**-6)
    through = precision._through_grad_scaler
    amp = _torch_adam([through(a * g)])[0] / _torch_adam([through(g)])[0]
    assert through(a * g) == a * g  # the GradScaler pass is exact: no flush
    assert amp == pytest.approx(expected, rel=1e-5)
    assert 0.99 < amp / (a * (abs(g) + eps) / eps) < 1  # eps dominates: linear in alpha


def test_grad_scaler_unscale_is_bitwise():
    assert precision._torch_unscale_mismatches() == 0


def test_the_statements_read_their_numbers():
    flush = theory.get("amp.float16.flush-to-zero")
    assert flush.verdict == "holds" and len(flush.residuals) == len(precision.probes("float16"))
    regime = theory.get("amp.eps-dominates.adam.head.first-step-ratio")
    assert regime.verdict == "holds" and len(regime.residuals) == 4
