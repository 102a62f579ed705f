"""conflict-sim: golden values of the known problem and properties of the study's outputs."""

from __future__ import annotations

import csv
import dataclasses

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sim import cli
from sim.studies import conflict_sim as study

SMALL = study.Config(dim=16, batch=16, repetitions=2)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("conflict") / "run"
    assert cli.main(["conflict-sim", "--quick", "--out", str(out)]) == 0
    for name in ("conflict.png", "conflict.pdf", "findings.md", "config.json"):
        assert (out / name).stat().st_size > 0
    with (out / "summary.csv").open() as f:
        summary = list(csv.DictReader(f))
    with (out / "separation.csv").open() as f:
        separation = list(csv.DictReader(f))
    return summary, separation


TEXT = ("kind", "statistic", "normalisation")


def cell(rows: list[dict[str, str]], **where: float | str) -> dict[str, str]:
    """The one row matching ``where`` (text columns by string, the others by value)."""
    (row,) = [
        r
        for r in rows
        if all((r[k] == v) if k in TEXT else float(r[k]) == v for k, v in where.items())
    ]
    return row


def test_noise_free_statistics_are_the_known_geometry(quick):
    summary, _ = quick
    base = {"noise": 0.0, "progress": 0.0}
    for rel in (1.0, 0.0):
        row = cell(
            summary,
            relatedness=rel,
            units_ratio=1.0,
            normalisation="raw",
            kind="inter_task",
            statistic="cosine",
            **base,
        )
        assert float(row["mean"]) == pytest.approx(rel, abs=1e-12)
        assert float(row["std"]) == pytest.approx(0, abs=1e-12)
    for norm, expected in (("raw", 2 * 100 / (1 + 100**2)), ("uw-o", 1.0)):
        # norm ratio of the task gradients: u1/u2 = 100 raw, 1 after dividing by L_t
        row = cell(
            summary,
            relatedness=0.0,
            units_ratio=100.0,
            normalisation=norm,
            kind="inter_task",
            statistic="magnitude_similarity",
            **base,
        )
        assert float(row["mean"]) == pytest.approx(expected, rel=1e-10)


def test_separation_follows_noise_and_relatedness(quick):
    _, separation = quick

    def sep(rel, noise, stat, norm="raw", units=1.0):
        return (
            cell(
                separation,
                relatedness=rel,
                noise=noise,
                units_ratio=units,
                progress=0.0,
                normalisation=norm,
                statistic=stat,
            )["separates"]
            == "True"
        )

    assert sep(0.0, 0.0, "cosine")  # orthogonal tasks, identical samples: told apart
    assert not sep(1.0, 0.0, "cosine")  # identical tasks: nothing to tell apart
    assert not sep(0.0, 3.0, "cosine")  # noise dominates: inter-sample spread swamps it
    assert sep(1.0, 0.0, "magnitude_similarity", units=100.0)  # units alone separate raw
    assert not sep(1.0, 0.0, "magnitude_similarity", "uw-o", units=100.0)


def test_per_sample_gradients_equal_autograd():
    gen = torch.Generator().manual_seed(0)
    targets = study.optima(0.3, 5, gen)
    noise = 0.4 * torch.randn(2, 4, 5, generator=gen, dtype=torch.float64)
    for norm in study.NORMALISATIONS:
        setting = study.Setting(0.3, 0.4, 7.0, 0.5, norm)
        grads, losses = study.batch_gradients(setting, targets, noise)
        phi = (0.5 * targets.mean(0)).clone().requires_grad_(True)
        units = torch.tensor([7.0**0.5, 7.0**-0.5], dtype=torch.float64)
        for t in range(2):
            for i in range(4):
                loss = units[t] / 2 * ((phi - targets[t] - noise[t, i]) ** 2).sum()
                if norm == "uw-o":
                    loss = loss / losses[t].mean()
                (g,) = torch.autograd.grad(loss, phi)
                torch.testing.assert_close(grads[t, i], g, rtol=1e-12, atol=1e-14)


@settings(deadline=None)
@given(rel=st.floats(-1, 1), dim=st.integers(2, 12), seed=st.integers(0, 2**16))
def test_optima_are_unit_vectors_at_the_given_cosine(rel, dim, seed):
    v = study.optima(rel, dim, torch.Generator().manual_seed(seed))
    torch.testing.assert_close(v.norm(dim=1), torch.ones(2, dtype=torch.float64))
    assert float(v[0] @ v[1]) == pytest.approx(rel, abs=1e-12)


@settings(deadline=None, max_examples=10)
@given(
    units=st.floats(-3, 3).map(lambda e: 10.0**e),
    noise=st.floats(0, 3),
    rel=st.floats(-1, 1),
    seed=st.integers(0, 100),
)
def test_uwo_statistics_do_not_depend_on_units_and_raw_cosines_neither(units, noise, rel, seed):
    cfg = dataclasses.replace(SMALL, seed=seed)
    for norm in study.NORMALISATIONS:
        a = study.measure(cfg, study.Setting(rel, noise, 1.0, 0.0, norm))
        b = study.measure(cfg, study.Setting(rel, noise, units, 0.0, norm))
        for kind in study.KINDS:
            names = study.STATISTICS if norm == "uw-o" or kind == "inter_sample" else ("cosine",)
            for name in names:
                assert b[kind][name]["mean"] == pytest.approx(a[kind][name]["mean"], abs=1e-9)


def test_separates_compares_mean_std_bands():
    a = {"mean": 0.0, "std": 0.1}
    assert study.separates(a, {"mean": 0.3, "std": 0.1})
    assert not study.separates(a, {"mean": 0.15, "std": 0.1})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"relatedness": (1.5,)}, "must lie in \\[-1, 1\\]"),
        ({"noise": (-1.0,)}, "noise must be >= 0"),
        ({"batch": 4}, "batch >= k"),
    ],
)
def test_bad_configuration_is_rejected_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        study.Config(**kwargs)


def test_batched_measurement_equals_one_conflict_study_per_repetition():
    """The repetitions are batched; the reference measures them one at a time with
    mtl.gradients.conflict_study from the same random draws."""
    import numpy as np

    from mtl.gradients import conflict_study, draw, summarize

    cfg = dataclasses.replace(SMALL, repetitions=3)
    setting = study.Setting(0.5, 1.0, 10.0, 0.9, "uw-o")
    gen = torch.Generator().manual_seed(cfg.seed)
    targets = study.optima(setting.relatedness, cfg.dim, gen)
    pooled: dict[tuple[str, str], list[torch.Tensor]] = {}
    for _ in range(cfg.repetitions):
        eps = torch.randn(2, cfg.batch, cfg.dim, generator=gen, dtype=torch.float64)
        grads, _ = study.batch_gradients(setting, targets, eps * setting.noise / np.sqrt(cfg.dim))
        stats = conflict_study(grads[:, draw(cfg.batch, cfg.k, generator=gen)])
        for kind in study.KINDS:
            for name in study.STATISTICS:
                pooled.setdefault((kind, name), []).append(stats[kind][name])
    ours = study.measure(cfg, setting)
    for (kind, name), values in pooled.items():
        ref = summarize(values)
        for field, value in ref.items():
            assert ours[kind][name][field] == pytest.approx(value, rel=1e-12, abs=1e-15)
