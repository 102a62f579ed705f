"""The hybrids study: every cell's learning-rate grid, the per-task head groups of the rules that
reduce over their group, the verdicts on tables built here, and the quick study end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import train_doubles

from empirical.studies import hybrids
from empirical.studies.scales import setups
from empirical.training import components
from empirical.training.config import RunConfig
from empirical.training.optimization import build_optimizer

CELLS = {
    "adam": ("adam_lrs",),
    "sgd": ("sgd_lrs",),
    "swats": ("adam_lrs",),
    hybrids.ADAM_HEADS: ("adam_lrs", "sgd_lrs"),
    hybrids.SGD_HEADS: ("adam_lrs", "sgd_lrs"),
    hybrids.RMS_HEADS: ("adam_lrs", "sgd_lrs"),
}


@pytest.mark.parametrize("scale", list(hybrids.GRIDS))
def test_every_cell_is_tuned_on_the_grids_of_the_others(scale):
    grid = hybrids.GRIDS[scale]
    settings = hybrids.optimizer_settings(grid)
    by_label: dict[str, list[dict]] = {}
    for name, fields in settings:
        assert hybrids.label(fields) == name  # the analysis recovers the cell from the config
        by_label.setdefault(name, []).append(fields)
    assert set(by_label) == set(CELLS)
    for name, grids in CELLS.items():
        assert len(by_label[name]) == int(np.prod([len(grid[g]) for g in grids])), name
        lrs = {(f["lr"], f.get("backbone_lr")) for f in by_label[name]}
        assert len(lrs) == len(by_label[name])  # each a distinct learning-rate setting
    rms = by_label[hybrids.RMS_HEADS]
    assert {f["lr"] for f in rms} == set(grid["adam_lrs"])  # a normalised rate, Adam's grid
    assert {f["backbone_lr"] for f in rms} == set(grid["sgd_lrs"])
    assert all(f["backbone_options"] == {"momentum": 0.9} for f in rms)


@pytest.mark.parametrize("optimizer", ["swats", "sgd-rms"])
def test_rules_that_reduce_over_a_group_get_one_head_group_per_task(optimizer):
    values = {"optimizer": optimizer, "lr": 1e-3, "backbone_optimizer": "sgd"}
    values |= {"backbone_lr": 0.01, "backbone_options": {"momentum": 0.9}}
    config = RunConfig.from_dict(values)
    model = train_doubles.build_model("toy-bn", train_doubles.spec())
    method = components.build_method(config, len(model.task_names))
    groups = {g["name"]: g for g in build_optimizer(config, model, method).param_groups}
    assert set(groups) == {"backbone", *(f"heads/{t}" for t in model.task_names)}
    assert groups["backbone"]["optimizer"] == "sgd" and groups["backbone"]["momentum"] == 0.9
    for t in model.task_names:
        group = groups[f"heads/{t}"]
        assert group["optimizer"] == optimizer
        assert {id(p) for p in group["params"]} == {id(p) for p in model.task_parameters(t)}
    plain = RunConfig.from_dict({"optimizer": "adam", "lr": 1e-3})
    names = [g["name"] for g in build_optimizer(plain, model, method).param_groups]
    assert names == ["backbone", "heads"]  # an element-wise rule keeps the one heads group


BASE = {"abs_err": 0.1}


def synthetic_runs(dm: dict[str, float], seeds: int = 6) -> pd.DataFrame:
    """Runs of every cell of the quick grid whose test and validation Δm is ``dm[cell]`` plus
    seed noise (abs_err, lower is better: Δm = 100 (M - B) / B)."""
    rng = np.random.default_rng(0)
    rows = []
    for name, fields in hybrids.optimizer_settings(hybrids.GRIDS["quick"]):
        for seed in range(seeds):
            value = BASE["abs_err"] * (1 + (dm[name] + rng.normal(0, 0.2)) / 100)
            row = {"method": "ew", "seed": seed, "backbone_optimizer": None, **fields}
            rows.append(row | {"val/abs_err": value, "test/abs_err": value})
    return pd.DataFrame(rows)


def verdicts_of(tmp_path, dm: dict[str, float]) -> dict[str, str]:
    setup = setups("quick")[0]
    found = hybrids.analyse(tmp_path, setup, "quick", synthetic_runs(dm), BASE, BASE)
    assert (tmp_path / "table.md").is_file()
    return {v.claim: v.verdict for v in found}


GAINS = {"adam": 0.0, "sgd": 10.0, "swats": 1.0}


@pytest.mark.parametrize(
    ("adam_heads", "sgd_heads", "rms_heads", "explains", "rms"),
    [
        (2.0, 9.0, 3.0, "confirmed", "confirmed"),  # Adam heads keep 0.8, SGD heads 0.1
        (9.0, 1.0, 9.5, "refuted", "refuted"),  # the backbone, not the heads, carries it
        (5.0, 9.0, 5.0, "inconclusive", "inconclusive"),  # right at one half
    ],
)
def test_the_verdicts_follow_the_data(tmp_path, adam_heads, sgd_heads, rms_heads, explains, rms):
    dm = GAINS | {hybrids.ADAM_HEADS: adam_heads, hybrids.SGD_HEADS: sgd_heads}
    found = verdicts_of(tmp_path, dm | {hybrids.RMS_HEADS: rms_heads})
    assert found == {"head-invariance-explains-adam": explains,
                     "invariant-sgd-heads-keep-adam-gain": rms}  # fmt: skip
    retained = pd.read_csv(tmp_path / "retained_gain.csv").set_index("hybrid")
    assert list(retained.index) == list(hybrids.RETAINED)
    assert retained.loc["swats", "retained"] == pytest.approx(0.9, abs=0.05)
    point = retained.loc[hybrids.RMS_HEADS]
    assert point["lo"] <= point["retained"] <= point["hi"]


def test_no_gain_of_adam_is_inconclusive(tmp_path):
    dm = {name: 5.0 for name in CELLS}
    found = verdicts_of(tmp_path, dm)
    assert set(found.values()) == {"inconclusive"}


def test_the_quick_study_runs_every_cell_end_to_end(tmp_path):
    from empirical.cli import main

    assert main(["hybrids", "--scale", "quick", "--seeds", "1", "--no-progress",
                 "--out", str(tmp_path)]) == 0  # fmt: skip
    record = json.loads((tmp_path / "verdicts.json").read_text())
    claims = {v["claim"] for v in record["verdicts"]}
    assert claims == {"head-invariance-explains-adam", "invariant-sgd-heads-keep-adam-gain"}
    assert "SGD-RMS" in (tmp_path / "prediction.md").read_text()
    for setup in setups("quick"):
        folder = tmp_path / setup.name
        table = pd.read_csv(folder / "table.csv")
        assert set(table["optimizer"]) == set(CELLS)
        switches = pd.read_csv(folder / "swats_switches.csv")
        assert set(switches["group"]) >= {"backbone"} and len(switches) > 1
        assert "SWATS:" in (folder / "swats.md").read_text()
