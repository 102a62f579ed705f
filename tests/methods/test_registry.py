"""Registry, hyperparameter validation, functional entry point errors, optional TorchJD."""

from __future__ import annotations

import method_properties as pr
import pytest
import torch

import mtl.methods


def test_every_name_builds_with_its_kind():
    for name in mtl.methods.NAMES:
        needs_tasks = "tasks" in mtl.methods.method_class(name).defaults
        method = mtl.methods.get(name, **({"tasks": 3} if needs_tasks else {}))
        assert method.name == name and method.kind in mtl.methods.KINDS


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match=r"valid names: .*pcgrad"):
        mtl.methods.get("pc-grad")


def test_unknown_hyperparameter_lists_valid_ones():
    with pytest.raises(ValueError, match="valid: c, rescale"):
        mtl.methods.get("cagrad", alpha=0.4)


def test_defaults_are_libmtl():
    assert mtl.methods.get("cagrad").hp == {"c": 0.5, "rescale": 1}
    assert mtl.methods.get("uw", tasks=2).log_scales.tolist() == [-0.5, -0.5]
    assert mtl.methods.get("gradvac").hp == {"beta": 0.5, "target_update": "always"}
    assert mtl.methods.get("db-mtl").hp == {"beta": 0.9, "beta_sigma": 0.0}


@pytest.mark.parametrize("name", ["uw", "rlw", "dwa", "si"])
def test_aggregate_rejects_loss_level_methods(name):
    with pytest.raises(ValueError, match="not a gradient aggregator"):
        mtl.methods.aggregate(name, torch.ones(2, 3), **({"tasks": 2} if name == "uw" else {}))


@pytest.mark.parametrize("name", ["gradvac", "db-mtl"])
def test_aggregate_rejects_stateful_methods(name):
    with pytest.raises(ValueError, match="keeps state"):
        mtl.methods.aggregate(name, torch.ones(2, 3))


def test_bad_jacobian_shape():
    with pytest.raises(ValueError, match=r"\(\.\.\., T, P\)"):
        mtl.methods.aggregate("mgda", torch.ones(3))


def test_gradvac_state_moves_targets():
    gv = mtl.methods.get("gradvac")
    jac = pr.sample_jacobian(0, 3, 5)
    gv(jac, generator=torch.Generator().manual_seed(0))
    cosine = torch.nn.functional.cosine_similarity(jac[:, None], jac[None], dim=-1)
    off = ~torch.eye(3, dtype=torch.bool)
    assert bool((gv.targets[off] != 0).all()) and bool((gv.targets.abs() <= 1).all())
    assert gv.targets.shape == cosine.shape
    # The first task j visited for task i (one randperm(T) per i, i dropped) meets the still
    # unmodified g_i, so that target is beta * cos(g_i, g_j) with beta = 0.5, phi starting at 0.
    order = torch.Generator().manual_seed(0)
    for i in range(3):
        first = next(j for j in torch.randperm(3, generator=order).tolist() if j != i)
        torch.testing.assert_close(gv.targets[i, first], 0.5 * cosine[i, first])


class TestTorchJD:
    torchjd = pytest.importorskip("torchjd")

    @pytest.mark.parametrize(
        ("ours", "theirs", "kw"),
        [("imtl-g", "IMTLG", {}), ("aligned-mtl", "AlignedMTL", {}), ("pcgrad", "PCGrad", {})],
    )
    def test_agreement(self, ours, theirs, kw):
        jac = pr.sample_jacobian(4, 2 if ours == "pcgrad" else 4, 9)
        got = mtl.methods.aggregate(ours, jac)
        want = mtl.methods.torchjd_aggregator(theirs, **kw)(jac)
        if ours == "aligned-mtl":  # LibMTL sums B's columns, TorchJD averages them
            want = want * jac.shape[0]
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)

    def test_mgda_exact_beats_frank_wolfe(self):
        """TorchJD's MGDA runs Frank-Wolfe: ours is the exact min-norm point, never longer."""
        jac = pr.sample_jacobian(4, 4, 9)
        got = mtl.methods.aggregate("mgda", jac)
        want = mtl.methods.torchjd_aggregator("MGDA", epsilon=1e-12, max_iters=100000)(jac)
        assert float(got.norm()) <= float(want.norm()) + 1e-12
        torch.testing.assert_close(got, want, rtol=0, atol=2e-3)

    def test_unknown_torchjd_name(self):
        with pytest.raises(ValueError, match="UPGrad"):
            mtl.methods.torchjd_aggregator("UpGrad")
