"""The methods LibMTL main and TorchJD 0.18 add: golden values by hand and parity with TorchJD.

Parity is measured as the cosine and norm ratio of the shared directions on the same inputs;
where TorchJD's implementation differs on purpose (regularised projections, other defaults),
the test sets TorchJD to the same problem or asserts the documented difference.
"""

from __future__ import annotations

import math

import method_properties as pr
import numpy as np
import pytest
import torch

import mtl
import mtl.methods

D = torch.float64


def t(*rows):
    return torch.tensor(rows, dtype=D)


def parity(ours: torch.Tensor, theirs: torch.Tensor) -> tuple[float, float]:
    """(cosine, ||ours|| / ||theirs||)."""
    return pr.cos(ours, theirs), float(ours.norm() / theirs.norm())


def test_registry_has_every_anchor_method():
    added = {"gradnorm", "moco", "stch", "excessmtl", "fairgrad", "modo", "sdmgrad"}
    added |= {"upgrad", "dualproj", "config"}
    assert added <= set(mtl.methods.NAMES) and len(mtl.methods.NAMES) >= 32


def test_upgrad_dualproj_orthogonal_by_hand():
    # orthogonal gradients are already in the dual cone: both are the mean, (1, 1.5)
    jac = t([2, 0], [0, 3])
    torch.testing.assert_close(mtl.methods.aggregate("upgrad", jac), t(1, 1.5))
    torch.testing.assert_close(mtl.methods.aggregate("dualproj", jac), t(1, 1.5))


def test_dualproj_opposed_pair_by_hand():
    # g1 = (1, 0), g2 = (-1, 1): mean (0, 0.5) has g1 . mean = 0 >= 0, g2 . mean = 0.5: kept.
    # g1 = (1, 0), g2 = (-2, 1): mean (-0.5, 0.5) conflicts with g1; its projection onto
    # {x : x_1 >= 0, -2 x_1 + x_2 >= 0} is (0, 0.5).
    torch.testing.assert_close(mtl.methods.aggregate("dualproj", t([1, 0], [-1, 1])), t(0, 0.5))
    torch.testing.assert_close(mtl.methods.aggregate("dualproj", t([1, 0], [-2, 1])), t(0, 0.5))


def test_config_by_hand():
    # units (1, 0), (0, 1): q ∝ (1, 1); length = g1 . q^ + g2 . q^ = (2 + 3)/sqrt2: d = (2.5, 2.5)
    torch.testing.assert_close(mtl.methods.aggregate("config", t([2, 0], [0, 3])), t(2.5, 2.5))


def test_fairgrad_alpha_one_is_nash_and_alpha_two_solves_its_equation():
    jac = pr.sample_jacobian(2, 3, 8)
    torch.testing.assert_close(
        mtl.methods.aggregate("fairgrad", jac), mtl.methods.aggregate("nash-mtl", jac)
    )
    method = mtl.methods.get("fairgrad", alpha=2.0)
    method(jac)
    w = method.last_weights
    torch.testing.assert_close(jac @ jac.T @ w, w**-0.5)


def test_moco_first_step_by_hand():
    jac = t([3, 0], [0, 1])
    moco = mtl.methods.get("moco")
    moco.observe(t(2.0, 4.0))
    d = moco(jac)
    y = 0.5 * t([2, 0], [0, 4])  # beta_1 = 0.5, h_t = L_t g_t/||g_t||, y starts at 0
    lam = torch.softmax(t(0.5, 0.5) - 0.1 * (y @ y.T) @ t(0.5, 0.5), 0)
    torch.testing.assert_close(d, lam @ y)
    with pytest.raises(ValueError, match="observe"):
        moco(jac)


def test_gradnorm_first_step_by_hand():
    # w = (1, 1), norms (1, 3): |1 - 2| + |3 - 2| = 2; d/ds = dL/dw - mean = (-1, 3) - 1.
    gn = mtl.methods.get("gradnorm", tasks=2)
    gn.observe(t(1.0, 1.0))
    d = gn(t([1, 0], [0, 3]))
    torch.testing.assert_close(d, t(1, 3))
    torch.testing.assert_close(gn.logits.grad, torch.tensor([-2.0, 2.0]))


def test_gradnorm_trains_its_weights_through_backward():
    shared = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=D))
    gn = mtl.methods.get("gradnorm", tasks=2)
    opt = torch.optim.SGD([shared, *gn.parameters()], lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        losses = [shared[0] ** 2 + 0.1, 10 * shared[1] ** 2 + 0.1]
        mtl.backward(losses, gn, shared=[shared], task_params=[])
        opt.step()
    w = 2 * torch.softmax(gn.logits.detach(), 0)
    assert float(w[0]) > 1 > float(w[1])  # the small-gradient task gains weight


def test_stch_after_warmup_by_hand():
    stch = mtl.methods.get("stch", warmup_epoch=0)
    stch.observe(t(2.0, 1.0))
    stch.observe(t(2.0, 3.0))
    stch.end_epoch()  # nadir z = (2, 2)
    losses = t(1.0, 4.0)
    # dL/dL_t = T softmax(log(L/z))_t / L_t = 2 (L_t/z_t) / (sum_s L_s/z_s) / L_t
    expected = 2 / (t(2.0, 2.0) * (0.5 + 2.0))
    torch.testing.assert_close(stch.weights(losses), expected)
    assert mtl.methods.get("stch").weights(losses).tolist() == [1.0, 0.25]  # warm-up: log sum


def test_single_batch_modo_and_sdmgrad_equal_their_three_batch_form_on_one_batch():
    jac = pr.sample_jacobian(1, 3, 6)
    for name in ("modo", "sdmgrad"):
        a, b = mtl.methods.get(name), mtl.methods.get(name)
        torch.testing.assert_close(a(jac), b.aggregate_batches(jac, jac, jac))


class TestTorchJDParity:
    torchjd = pytest.importorskip("torchjd")
    pytest.importorskip("quadprog")

    @pytest.mark.parametrize("name", ["upgrad", "dualproj"])
    def test_projections_match_unregularised_quadprog(self, name):
        from torchjd._linalg import QuadprogProjector

        jac = pr.sample_jacobian(7, 4, 9)
        jac[1] -= 1.5 * jac[0]  # a conflict, so the projection is active
        cls = {"upgrad": "UPGrad", "dualproj": "DualProj"}[name]
        exact = QuadprogProjector(norm_eps=0.0, reg_eps=0.0)
        want = mtl.methods.torchjd_aggregator(cls, projector=exact)(jac)
        torch.testing.assert_close(mtl.methods.aggregate(name, jac), want, rtol=1e-7, atol=1e-9)
        # TorchJD's default adds reg_eps = 1e-4 (of the trace) to G: another problem, here
        # cosine 0.9968 (UPGrad) and 0.9976 (DualProj)
        default = mtl.methods.torchjd_aggregator(cls)(jac)
        cosine, ratio = parity(mtl.methods.aggregate(name, jac), default)
        assert 0.99 < cosine < 1 - 1e-4 and abs(ratio - 1) < 0.05

    def test_torchjd_upgrad_returns_the_mean_for_small_gradients(self):
        """Trace(G) < norm_eps = 1e-4: TorchJD zeroes G and UPGrad becomes the mean, which
        conflicts; ours stays non-conflicting (why it is not a wrapper)."""
        jac = 1e-3 * t([1, 0], [-2, 1])
        theirs = mtl.methods.torchjd_aggregator("UPGrad")(jac)
        torch.testing.assert_close(theirs, jac.mean(0))
        assert float((jac @ theirs).min()) < 0
        ours = mtl.methods.aggregate("upgrad", jac)
        assert float((jac @ ours).min()) >= -1e-20

    def test_config(self):
        jac = pr.sample_jacobian(3, 4, 9)
        want = mtl.methods.torchjd_aggregator("ConFIG")(jac)
        torch.testing.assert_close(mtl.methods.aggregate("config", jac), want)

    def test_fairgrad(self):
        jac = pr.sample_jacobian(5, 3, 9)
        for alpha in (0.5, 1.0, 2.0):
            want = mtl.methods.torchjd_aggregator("FairGrad", alpha=alpha)(jac)
            got = mtl.methods.aggregate("fairgrad", jac, alpha=alpha)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)

    def test_modo_over_steps(self):
        from torchjd.aggregation import MoDoWeighting

        ours, theirs = mtl.methods.get("modo"), MoDoWeighting(gamma=1e-3, rho=0.1)
        for seed in range(4):
            jac = pr.sample_jacobian(seed, 3, 7)
            d = ours(jac)
            torch.testing.assert_close(d, theirs(jac @ jac.T) @ jac)

    def test_sdmgrad_over_steps(self):
        from torchjd.aggregation import SDMGradWeighting

        ours = mtl.methods.get("sdmgrad")
        theirs = SDMGradWeighting(lr=5.0, momentum=0.5, n_iter=20, lambda_=0.3)
        for seed in range(4):
            jac = pr.sample_jacobian(seed, 3, 7)
            d = ours(jac)  # TorchJD adds 1e-8 to the scale; 20 inner steps amplify it to ~3e-6
            want = theirs(jac @ jac.T) @ jac
            torch.testing.assert_close(d, want, rtol=2e-5, atol=1e-7)

    def test_excessmtl_over_steps(self):
        """With one warm-up step TorchJD's update is LibMTL's, on weights summing to 1, not T."""
        ours = mtl.methods.get("excessmtl")
        theirs = mtl.methods.torchjd_aggregator(
            "ExcessMTL", robust_step_size=1e-2, n_warmup_steps=1
        )
        for seed in range(4):
            jac = pr.sample_jacobian(seed, 3, 7)
            torch.testing.assert_close(ours(jac), 3 * theirs(jac), rtol=1e-6, atol=1e-9)

    def test_imtl_g_rank_deficient_differs_from_torchjd_on_purpose(self):
        """TorchJD's IMTL-G (a pseudo-inverse on G) weights a duplicate gradient differently;
        ours gives the least-squares equal-projection direction; both are finite."""
        g = pr.sample_jacobian(2, 2, 5)
        jac = torch.cat([g, g[:1]])
        ours = mtl.methods.aggregate("imtl-g", jac)
        theirs = mtl.methods.torchjd_aggregator("IMTLG")(jac)
        assert bool(torch.isfinite(theirs).all()) and bool(torch.isfinite(ours).all())
        proj = jac @ ours / jac.norm(dim=1)
        assert float(proj.max() - proj.min()) < 1e-9 * float(proj.abs().max())


def test_nonfinite_in_three_batch_form():
    jac = pr.sample_jacobian(1, 3, 6)
    bad = jac.clone()
    bad[1, 0] = math.nan
    with pytest.raises(mtl.methods.NonFiniteError, match="task 1"):
        mtl.methods.get("modo").aggregate_batches(jac, bad, jac)
    assert np.isfinite(mtl.methods.get("sdmgrad").aggregate_batches(jac, jac, jac).numpy()).all()
