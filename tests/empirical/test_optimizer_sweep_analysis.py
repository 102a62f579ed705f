"""The optimizer study's analysis on tables built here: a best learning rate at the edge of its
grid keeps a verdict from being settled, and a diverged run is an outcome of its learning rate
(never its best), which also bounds the grid."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from empirical.analysis import best_learning_rates, grid_edges
from empirical.results import diverged
from empirical.studies import optimizer_sweep as study
from empirical.studies.scales import Setup
from empirical.sweep import RunState

SETUP = Setup("synthetic-scenes", "segnet", "generated")
BASE = {"miou": 0.5, "abs_err": 1.0}


def runs(quality: dict[tuple[str, float], float], seeds: int = 3) -> pd.DataFrame:
    """One run per (optimizer, lr) and seed whose metrics are the baseline's moved by
    ``quality`` (positive: better than single-task), the same on validation and test."""
    rows = []
    for (optimizer, lr), q in quality.items():
        for seed in range(seeds):
            q_seed = q + 0.01 * seed
            metrics = {
                "miou": BASE["miou"] * (1 + q_seed),
                "abs_err": BASE["abs_err"] * (1 - q_seed),
            }
            row = {"method": "ew", "optimizer": optimizer, "lr": lr, "seed": seed}
            row |= {f"{split}/{k}": v for split in ("val", "test") for k, v in metrics.items()}
            rows.append(row)
    return pd.DataFrame(rows)


def analyse(tmp_path, table: pd.DataFrame, lost: pd.DataFrame | None = None):
    verdicts = study.analyse(tmp_path, SETUP, "cpu", table, BASE, BASE, lost)
    return {v.claim: v for v in verdicts}, pd.read_csv(tmp_path / "table.csv")


ADAM = {("adam", 0.01): 0.10, ("adam", 0.001): 0.20, ("adam", 0.0001): 0.05}


def test_an_sgd_optimum_at_the_top_of_its_grid_leaves_adams_win_unsettled(tmp_path):
    sgd = {("sgd", 0.1): -0.05, ("sgd", 0.01): -0.2, ("sgd", 0.001): -0.3}
    verdicts, table = analyse(tmp_path, runs(ADAM | sgd))
    claim = verdicts["adam-lower-delta-m-than-sgd"]
    assert claim.verdict == "inconclusive"
    assert "would be confirmed" in claim.evidence and "sgd is at the edge" in claim.evidence
    assert "ew (largest)" in claim.evidence
    assert dict(zip(table["optimizer"], table["lr_at_edge"].fillna(""), strict=True)) == {
        "adam": "",
        "sgd": "largest",
    }


def test_the_same_win_with_an_interior_sgd_optimum_is_confirmed(tmp_path):
    sgd = {("sgd", 1.0): -0.2, ("sgd", 0.1): -0.05, ("sgd", 0.01): -0.3}
    verdicts, _ = analyse(tmp_path, runs(ADAM | sgd))
    assert verdicts["adam-lower-delta-m-than-sgd"].verdict == "confirmed"


def test_a_diverged_learning_rate_is_never_best_and_bounds_the_grid(tmp_path):
    sgd = {("sgd", 0.1): -0.05, ("sgd", 0.01): -0.2, ("sgd", 0.001): -0.3}
    lost = pd.DataFrame(
        [
            {"method": "ew", "optimizer": "sgd", "lr": 1.0, "seed": s, "diverged": True}
            for s in range(3)
        ]
    )
    verdicts, table = analyse(tmp_path, runs(ADAM | sgd), lost)
    sgd_row = table[table["optimizer"] == "sgd"].iloc[0]
    assert sgd_row["lr"] == 0.1 and not isinstance(sgd_row["lr_at_edge"], str)
    assert verdicts["adam-lower-delta-m-than-sgd"].verdict == "confirmed"
    curves = pd.read_csv(tmp_path / "lr_sensitivity.csv")
    assert np.isinf(curves[(curves["optimizer"] == "sgd") & (curves["lr"] == 1.0)]["val_dm"]).all()


def test_a_cell_whose_every_learning_rate_diverged_has_no_row(tmp_path):
    lost = pd.DataFrame(
        [
            {"method": "ew", "optimizer": "sgd", "lr": lr, "seed": s, "diverged": True}
            for lr in (1.0, 0.1)
            for s in range(3)
        ]
    )
    verdicts, table = analyse(tmp_path, runs(ADAM), lost)
    assert list(table["optimizer"]) == ["adam"]
    assert verdicts["adam-lower-delta-m-than-sgd"].verdict == "not run"
    assert json.loads((tmp_path / "pareto.json").read_text()).keys() == {"adam"}


@given(
    st.lists(st.floats(1e-5, 1.0), min_size=1, max_size=6, unique=True),
    st.lists(st.floats(-1, 1), min_size=6, max_size=6, unique=True),
)
def test_grid_edges_flags_exactly_a_best_lr_at_the_end_of_two_or_more(lrs, scores):
    table = pd.DataFrame({"g": "a", "lr": lrs, "score": scores[: len(lrs)]})
    best = best_learning_rates(table, ["g"], "score")
    edges = grid_edges(table, best, ["g"])
    chosen = lrs[int(np.argmin(scores[: len(lrs)]))]
    if len(lrs) < 2 or min(lrs) < chosen < max(lrs):
        assert edges == {}
    else:
        assert edges == {("a",): "largest" if chosen == max(lrs) else "smallest"}


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (RunState("failed", "non-finite loss at step 7: {'depth': nan}"), True),
        (RunState("failed", "RuntimeError: out of memory"), False),
        (RunState("finished"), False),
    ],
)
def test_only_a_non_finite_value_counts_as_divergence(state, expected):
    assert diverged(state) is expected


def test_a_blown_up_learning_rate_leaves_the_curves_readable_and_is_marked():
    from empirical.figures import lr_sensitivity

    curves = pd.DataFrame(
        {
            "method": "ew",
            "optimizer": "sgd",
            "lr": [1.0, 0.1, 0.01, 0.001],
            "test_dm": [3e24, -25.0, 5.0, 60.0],
            "test_dm_std": [1e24, 2.0, 3.0, 4.0],
        }
    )
    fig = lr_sensitivity(curves, "t", "s")
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    assert lo < -25.0 and 60.0 < hi < 1e3
    marked = [line for line in ax.get_lines() if line.get_marker() == "^"]
    assert [list(m.get_xdata()) for m in marked if len(m.get_xdata())] == [[1.0]]
