"""capacity: at convergence a task weight moves the end point to the weighted sum's minimiser,
a head learning rate does not move it, for SGD and Adam alike; the study writes its outputs."""

import argparse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.studies.capacity import Config, run, simulate


@settings(max_examples=3)
@given(st.sampled_from([2, 4, 6]), st.sampled_from([1 / 4, 4.0, 1 / 9]), st.integers(0, 3))
def test_weight_moves_the_end_point_head_lr_does_not(shared_dim, value, seed):
    rows = simulate(Config(shared_dims=(shared_dim,), values=(value, 1.0), lrs=(0.05,),
                           seeds=(seed,), steps=2000))  # fmt: skip
    for r in rows:
        expected = r["value"] / (1 + r["value"]) if r["lever"] == "weight" else 0.5
        assert r["front_w"] == pytest.approx(expected, abs=0.01), r
        assert r["front_distance"] < 0.02, r


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="shared_dims"):
        Config(shared_dims=(0,))
    with pytest.raises(ValueError, match="contain 1"):
        Config(values=(2.0,))


def test_quick_run_writes_outputs(tmp_path):
    assert run(argparse.Namespace(out=str(tmp_path), quick=True, steps=None)) == 0
    for name in ("runs.csv", "levers.csv", "levers.md", "levers.png", "config.json"):
        assert (tmp_path / name).stat().st_size > 0
