"""Golden values on small inputs, each derived by hand (comment) or by an independent method."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import mtl.methods

D = torch.float64


def t(*rows):
    return torch.tensor(rows, dtype=D)


def agg(name, jac, **hp):
    return mtl.methods.aggregate(name, jac, generator=torch.Generator().manual_seed(0), **hp)


def test_pcgrad_two_vectors():
    # g1.g2 = -2: pc1 = g1 + 2/2 g2 = (1, 1); pc2 = g2 + 2/4 g1 = (0, 1); sum (1, 2).
    torch.testing.assert_close(agg("pcgrad", t([2, 0], [-1, 1])), t(1, 2))


def test_mgda_two_task_closed_form():
    # w1 = (|g2|^2 - g1.g2) / |g1 - g2|^2 = 3/5: d = 0.6 (1, 0) + 0.4 (-1, 1) = (0.2, 0.4).
    torch.testing.assert_close(agg("mgda", t([1, 0], [-1, 1])), t(0.2, 0.4))


def test_mgda_three_tasks_min_norm_on_an_edge():
    # conv{(1,0), (0,1), (1,1)}: the nearest point to 0 is the midpoint of the first edge.
    torch.testing.assert_close(agg("mgda", t([1, 0], [0, 1], [1, 1])), t(0.5, 0.5))


def test_mgda_matches_a_brute_force_simplex_search():
    jac = torch.randn(3, 5, generator=torch.Generator().manual_seed(1), dtype=D)
    grid = np.linspace(0, 1, 401)
    best = min(
        (np.linalg.norm(np.array([a, b, 1 - a - b]) @ jac.numpy()), a, b)
        for a in grid
        for b in grid
        if a + b <= 1
    )
    ours = float(agg("mgda", jac).norm())
    assert ours <= best[0] + 1e-12  # exact solver: never worse than any grid point
    assert best[0] - ours < 1e-4


def test_imtl_g_orthogonal():
    # d = a (2, 0) + (1 - a)(0, 3) with equal projections on e1, e2: 2a = 3(1 - a), a = 0.6.
    torch.testing.assert_close(agg("imtl-g", t([2, 0], [0, 3])), t(1.2, 1.2))


def test_aligned_mtl_orthogonal():
    # G = diag(4, 9): both gradients rescaled to the smallest singular value 2.
    torch.testing.assert_close(agg("aligned-mtl", t([2, 0], [0, 3])), t(2, 2))


def test_nash_mtl_orthogonal():
    # w ⊙ (G w) = 1 with G = diag(4, 9): w = (1/2, 1/3), d = (2 w1, 3 w2) = (1, 1), ||d||^2 = T.
    torch.testing.assert_close(agg("nash-mtl", t([2, 0], [0, 3])), t(1, 1))


def test_nash_mtl_solves_the_raw_bargaining_equation():
    jac = (
        torch.randn(3, 7, generator=torch.Generator().manual_seed(5), dtype=D)
        * t(1, 1e3, 1e-2)[:, None]
    )
    method = mtl.methods.get("nash-mtl")
    d = method(jac)
    w = method.last_weights
    torch.testing.assert_close(w * (jac @ jac.T @ w), torch.ones(3, dtype=D))
    assert float(d @ d) == pytest.approx(3.0)


def test_cagrad_against_the_primal_by_brute_force():
    # CAGrad's primal: max_d min_t g_t.d over the ball ||d - g0|| <= c||g0||, then / (1 + c^2).
    jac, c = t([1, 0.3], [-0.5, 1]), 0.5
    g0 = jac.mean(0).numpy()
    r = c * np.linalg.norm(g0)
    theta = np.linspace(0, 2 * np.pi, 200001)
    ds = g0[None, :] + r * np.stack([np.cos(theta), np.sin(theta)], 1)
    best = ds[np.argmax((ds @ jac.numpy().T).min(1))] / (1 + c**2)
    np.testing.assert_allclose(agg("cagrad", jac).numpy(), best, atol=1e-4)


def test_gradvac_first_step_is_pcgrad():
    jac = torch.randn(2, 6, generator=torch.Generator().manual_seed(2), dtype=D)
    jac[1] -= 2 * jac[0]  # make them conflict
    torch.testing.assert_close(mtl.methods.get("gradvac")(jac), agg("pcgrad", jac))


def test_graddrop_keeps_positive_with_probability_of_the_purity():
    # every column (3, -1): purity (1 + 2/4)/2 = 0.75; d_j = 3 with prob. 0.75, else -1.
    jac = t([3.0] * 20000, [-1.0] * 20000)
    d = agg("graddrop", jac)
    assert set(d.unique().tolist()) == {3.0, -1.0}
    assert float((d == 3).to(D).mean()) == pytest.approx(0.75, abs=0.015)


def test_db_mtl_buffer_starts_at_zero():
    # b_1 = (1 - 0.9) g = (0.3, 0), (0, 0.4): both rescaled to norm 0.4; then b_2 = 0.19 g.
    method = mtl.methods.get("db-mtl")
    torch.testing.assert_close(method(t([3, 0], [0, 4])), t(0.4, 0.4), rtol=1e-6, atol=0)
    torch.testing.assert_close(method(t([3, 0], [0, 4])), t(0.76, 0.76), rtol=1e-6, atol=0)


def test_graddrop_mask_is_per_feature_from_the_batch_signal():
    # rep (B=2, F=1) = (1, -2); task gradients w.r.t. rep: t1 (1, 1), t2 (-3, 1).
    # signals sum_b sign(rep) g: t1 1 - 1 = 0, t2 -3 - 1 = -4 -> purity 0: only t2 is kept, on
    # the whole batch column, whatever U is.
    method = mtl.methods.get("graddrop")
    rep = t([1.0], [-2.0])
    jac = t([1, 1], [-3, 1])
    for seed in range(5):
        d = method.aggregate_at(jac, rep, torch.Generator().manual_seed(seed))
        torch.testing.assert_close(d, t(-3, 1))
    per_element = mtl.methods.get("graddrop", marginalize_batch=False)
    assert {
        tuple(per_element.aggregate_at(jac, rep, torch.Generator().manual_seed(s)).tolist())
        for s in range(40)
    } != {(-3.0, 1.0)}


def test_weights_of_loss_weightings():
    losses = t(1.0, 4.0)
    weights = {
        "ew": t(1, 1),
        "mean": t(0.5, 0.5),
        "uw": t(math.exp(0.5) / 2, math.exp(0.5) / 2),  # 1 / (2 e^{-0.5})
        "uw-o": t(1, 0.25),
        "si": t(1, 0.25),
        "gls": t(1, 0.25),  # sqrt(1 * 4) = 2; w_t = 2 / (2 L_t)
        "famo": t(0.8, 0.2),  # z = (1/2, 1/2), c = 1/2 + 1/8: w_t = z_t / (c L_t)
    }
    for name, expected in weights.items():
        hp = {"tasks": 2} if name in ("uw", "famo") else {}
        got = mtl.methods.get(name, **hp).weights(losses)
        torch.testing.assert_close(got, expected, msg=name)
    fixed = mtl.methods.get("fixed", weights=[0.25, 3.0])
    torch.testing.assert_close(fixed.weights(losses), t(0.25, 3.0))
    with pytest.raises(ValueError, match="one per task"):
        mtl.methods.get("fixed", weights=[1.0]).weights(losses)


def test_dwa_weights_from_epoch_history():
    dwa = mtl.methods.get("dwa")
    for epoch in (t(1.0, 1.0), t(0.5, 1.0)):
        dwa.observe(epoch)
        dwa.end_epoch()
    expected = 2 * torch.softmax(t(0.5 / 2, 1.0 / 2), 0)  # ratios (0.5, 1), temperature 2
    torch.testing.assert_close(dwa.weights(t(1.0, 1.0)), expected)
