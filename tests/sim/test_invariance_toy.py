"""invariance-toy: the study's own outputs at smoke scale show the paper's A2 outcomes."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sim import cli
from sim.problems.two_units import TwoUnits
from sim.studies import invariance_toy as study

QUICK = study.Config(epochs=study.QUICK_EPOCHS, samples=study.QUICK_SAMPLES)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def quick_out(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("invariance") / "run"
    assert cli.main(["invariance-toy", "--quick", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def runs(quick_out) -> dict[tuple[str, str, str, int], float]:
    """(run, quantity, part, epoch) -> value from runs.csv."""
    return {
        (r["run"], r["quantity"], r["part"], int(r["epoch"])): float(r["value"])
        for r in read_csv(quick_out / "runs.csv")
    }


def test_outputs_are_written(quick_out):
    for name in ("runs.csv", "summary.csv", "summary.md", "config.json"):
        assert (quick_out / name).stat().st_size > 0
    for fig in ("fig_a1_frozen", "fig_a2_free"):
        assert (quick_out / f"{fig}.png").read_bytes()[:4] == b"\x89PNG"
        assert (quick_out / f"{fig}.pdf").read_bytes()[:4] == b"%PDF"


def test_sixteen_runs_with_every_quantity_per_epoch(quick_out):
    rows = read_csv(quick_out / "runs.csv")
    assert tuple(rows[0]) == study.HEADER
    names = {r["run"] for r in rows}
    assert len(names) == 16
    assert sum("adam-per-task" in n for n in names) == 4
    assert {n.split("/")[1] for n in names if "adam-per-task" in n} == {"free", "frozen"}
    for name in names:
        mine = [r for r in rows if r["run"] == name]
        parts = {r["part"] for r in mine if r["quantity"] == "update_norm"}
        assert parts == ({"head1", "head2"} | ({"backbone"} if "/free/" in name else set()))
        epochs = sorted({int(r["epoch"]) for r in mine})
        assert epochs == list(range(1, QUICK.epochs + 1))


def test_scaled_loss_is_the_loss_times_its_scale(runs):
    for (name, quantity, part, epoch), value in runs.items():
        if quantity != "scaled_loss":
            continue
        scale = QUICK.scales[int(part[-1]) - 1] if name.endswith("/scaled") else 1.0
        assert value == pytest.approx(scale * runs[(name, "loss", part, epoch)], rel=1e-12)


def test_verdicts_are_the_papers(quick_out):
    rows = read_csv(quick_out / "summary.csv")
    assert len(rows) == 4 * 2 + 4 * 3  # frozen: 4 pairs x 2 heads; free: 4 pairs x 3 parts
    got = {(r["method"], r["optimizer"], r["backbone"], r["part"]): r["verdict"] for r in rows}
    heads = ("head1", "head2")
    for part in heads:
        assert got[("ew", "sgdm", "frozen", part)] == "not invariant"
        assert got[("ew", "adam", "frozen", part)] == "invariant"
        assert got[("uw-o", "sgdm", "frozen", part)] == "invariant"
        assert got[("ew", "adam-per-task", "frozen", part)] == "invariant"
        assert got[("ew", "adam", "free", part)] == "first step only"
        assert got[("ew", "sgdm", "free", part)] == "not invariant"
    for part in (*heads, "backbone"):
        assert got[("uw-o", "sgdm", "free", part)] == "invariant"
        assert got[("ew", "adam-per-task", "free", part)] == "invariant"
    assert got[("ew", "adam", "free", "backbone")] == "not invariant"
    assert all(r["agrees"] == "True" for r in rows)
    assert f"{len(rows)} of {len(rows)} rows" in (quick_out / "summary.md").read_text()


def test_sgd_first_head_update_scales_with_the_loss_factor(runs):
    """SGD: a task weight is a task learning rate (paper Eq. 14)."""
    for backbone in ("frozen", "free"):
        base = f"ew+sgdm/{backbone}/"
        for t, scale in enumerate(QUICK.scales):
            part = f"head{t + 1}"
            ratio = (
                runs[(base + "scaled", "update_norm", part, 1)]
                / runs[(base + "unscaled", "update_norm", part, 1)]
            )
            assert ratio == pytest.approx(scale, rel=1e-12)


def test_recorded_first_gradient_norm_equals_autograd(runs):
    model = TwoUnits(samples=QUICK.samples, seed=QUICK.seed)
    losses = model.losses()
    for t in range(2):
        (g,) = [
            torch.cat(
                [
                    x.reshape(-1)
                    for x in torch.autograd.grad(
                        losses[t], model.head_parameters(t), retain_graph=True
                    )
                ]
            )
        ]
        assert runs[("ew+adam/frozen/unscaled", "grad_norm", f"head{t + 1}", 1)] == pytest.approx(
            float(g.norm()), rel=1e-12
        )
        # UW-O's gradient is g_t / L_t
        assert runs[("uw-o+sgdm/frozen/unscaled", "grad_norm", f"head{t + 1}", 1)] == (
            pytest.approx(float(g.norm() / losses[t].detach()), rel=1e-12)
        )


scales = st.tuples(st.floats(-3, 3).map(lambda e: 10.0**e), st.floats(-3, 3).map(lambda e: 10.0**e))


@settings(deadline=None)
@given(scales=scales, seed=st.integers(0, 2**16))
def test_invariance_laws_hold_for_random_scales(scales, seed):
    # an odd sample count: with an even one, a mean of L1 signs can be exactly 0, and then its
    # rounding residue (of either sign) decides Adam's eps-free first step, sign(g)
    cfg = dataclasses.replace(QUICK, epochs=2, samples=15, scales=scales, seed=seed)
    for pair in (study.Pair("ew", "adam", "frozen"), study.Pair("ew", "adam-per-task", "free")):
        _, plain = study.simulate_run(cfg, pair, scaled=False)
        _, scaled = study.simulate_run(cfg, pair, scaled=True)
        for part, u in plain.items():
            np.testing.assert_allclose(scaled[part], u, rtol=1e-9, atol=1e-15)
    pair = study.Pair("ew", "sgdm", "free")
    _, plain = study.simulate_run(cfg, pair, scaled=False)
    _, scaled = study.simulate_run(cfg, pair, scaled=True)
    for t in range(2):  # first SGD step on a head: alpha_t times the unscaled one
        part = f"head{t + 1}"
        # p - lr alpha g rounds at the level of |p| ~ 1, hence the absolute tolerance
        np.testing.assert_allclose(
            scaled[part][0], scales[t] * plain[part][0], rtol=1e-9, atol=1e-14 * max(1.0, scales[t])
        )


def test_adam_eps_breaks_the_invariance_by_a_bounded_amount():
    cfg = dataclasses.replace(QUICK, epochs=3, adam_eps=1e-8)
    pair = study.Pair("ew", "adam", "frozen")
    _, plain = study.simulate_run(cfg, pair, scaled=False)
    _, scaled = study.simulate_run(cfg, pair, scaled=True)
    rel = study.relative_difference(scaled["head2"], plain["head2"])
    assert 1e-9 < rel.max() < 0.5


def test_relative_difference_and_verdict():
    u = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]])
    v = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, 1.0]])
    assert study.relative_difference(v, u).tolist() == [0.0, 0.0, 1.0]
    assert study.verdict(0.0, 1e-12, 1e-9) == "invariant"
    assert study.verdict(0.0, 1e-3, 1e-9) == "first step only"
    assert study.verdict(1e-3, 1e-3, 1e-9) == "not invariant"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("scales", (10.0, -1.0), "scales must be two finite numbers > 0"),
        ("epochs", 1, "must both be >= 2"),
        ("lr_adam", 0.0, "lr_adam=0.0 must be > 0"),
        ("momentum", 1.0, "momentum must lie in"),
    ],
)
def test_bad_configuration_is_rejected_by_name(field, value, message):
    with pytest.raises(ValueError, match=message):
        study.Config(**{field: value})


def test_a_folder_of_another_configuration_is_not_overwritten(quick_out, capsys):
    before = (quick_out / "runs.csv").read_bytes()
    code = None
    with pytest.raises(SystemExit) as exit_info:
        code = cli.main(["invariance-toy", "--quick", "--seed", "1", "--out", str(quick_out)])
    assert code is None and exit_info.value.code == 2
    assert "different configuration" in capsys.readouterr().err
    assert (quick_out / "runs.csv").read_bytes() == before
