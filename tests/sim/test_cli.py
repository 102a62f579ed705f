"""`mtlp sim`: the study registry, a smoke-scale cagrad-toy run end to end, the folder guard."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import mtlp
from sim import cli
from sim.studies import cagrad_toy

ARGS = ["--max-steps", "300", "--lrs", "1", "0.05", "--no-progress"]


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cagrad") / "run"
    assert mtlp.main(["sim", "cagrad-toy", "--out", str(folder), *ARGS]) == 0
    return folder


def test_unknown_study_lists_the_valid_ones(capsys):
    assert cli.main(["cagrad_toy", "--out", "x"]) == 2
    assert "unknown study 'cagrad_toy'; valid: cagrad-toy" in capsys.readouterr().err


def test_help_lists_the_studies(capsys):
    assert cli.main([]) == 0
    assert "cagrad-toy" in capsys.readouterr().out


def test_every_registered_study_has_the_interface():
    import importlib

    for module, _ in cli.STUDIES.values():
        mod = importlib.import_module(module)
        assert callable(mod.add_arguments) and callable(mod.run)


def test_cagrad_toy_writes_every_output(out):
    names = {p.name for p in out.iterdir()}
    expected = {"config.json", "iterations.csv", "trajectories.npz", "table.md", "pareto_front.csv"}
    expected |= {f"{f}.{s}" for f in ("fig1_trajectories", "pareto_front") for s in ("png", "pdf")}
    assert expected <= names
    assert not [n for n in names if n.endswith(".tmp")]
    assert json.loads((out / "config.json").read_text())["max_steps"] == 300


def test_iterations_csv_has_one_row_per_run_with_the_stated_columns(out):
    with open(out / "iterations.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["optimizer", "method", "lr", "init", "iterations"]
    assert len(rows) == 2 * 4 * 2 * 3
    keys = {(r["optimizer"], r["method"], float(r["lr"]), int(r["init"])) for r in rows}
    assert {k[0] for k in keys} == {"gd", "adam"} and {k[2] for k in keys} == {1.0, 0.05}
    assert len(keys) == len(rows)
    its = [r["iterations"] for r in rows]
    assert all(v == "" or 0 < int(v) <= 300 for v in its)
    assert any(v == "" for v in its) and any(v != "" for v in its)


def test_trajectories_npz_holds_float32_every_100_steps(out):
    with np.load(out / "trajectories.npz") as npz:
        assert len(npz.files) == 48 and "adam-cagrad-lr0.05-init0" in npz.files
        traj = npz["gd-pcgrad-lr0.05-init2"]
    assert traj.dtype == np.float32 and traj.shape[1] == 2
    np.testing.assert_array_equal(traj[0], np.float32([9, 9]))


def test_table_shows_the_paper_beside_ours(out):
    text = (out / "table.md").read_text()
    assert "| adam | cagrad |" in text and "/ 32" in text  # paper: Adam CAGrad lr 1 -> 32
    assert "float64" in text and "Agreement:" in text


def test_pareto_front_csv_spans_both_task_minima(out):
    front = np.loadtxt(out / "pareto_front.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(front[[0, -1], 1:3], [[-7, -8.4345], [7, -8.4345]], atol=1e-4)


def test_same_configuration_may_rerun_into_its_folder(out):
    assert cli.main(["cagrad-toy", "--out", str(out), *ARGS]) == 0


def test_a_different_configuration_is_refused_and_nothing_is_overwritten(out, capsys):
    before = (out / "iterations.csv").read_bytes()
    args = ["cagrad-toy", "--out", str(out), "--max-steps", "200", "--lrs", "1", "0.05"]
    with pytest.raises(SystemExit) as exit_:
        cli.main(args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "different configuration (differs in: max_steps)" in err
    assert (out / "iterations.csv").read_bytes() == before


def test_a_folder_of_unknown_files_is_refused(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit):
        cli.main(["cagrad-toy", "--out", str(tmp_path), *ARGS])
    assert "not empty and has no config.json" in capsys.readouterr().err


def test_unknown_method_names_the_valid_ones(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["cagrad-toy", "--out", str(tmp_path / "o"), "--methods", "nash", *ARGS])
    assert "unknown method 'nash'; valid: ew, pcgrad, cagrad, mgda" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_quick_flag_sets_the_smoke_scale():
    import argparse

    parser = argparse.ArgumentParser()
    cagrad_toy.add_arguments(parser)
    cfg = cagrad_toy.config_from_args(parser.parse_args(["--quick"]))
    assert cfg.max_steps == cagrad_toy.QUICK_STEPS and cfg.lrs == cagrad_toy.QUICK_LRS
    full = cagrad_toy.config_from_args(parser.parse_args([]))
    assert full.max_steps == 100_000 and full.lrs == cagrad_toy.LRS


def test_figures_name_the_command_and_config_hash(out):
    from PIL import Image

    from mtl.io import config_hash

    recorded = json.loads((out / "config.json").read_text())
    with Image.open(out / "fig1_trajectories.png") as png:
        text = png.info["Description"]
    assert text == f"mtlp sim cagrad-toy {' '.join(ARGS[:-1])} (config {config_hash(recorded)})"
    assert b"mtlp sim cagrad-toy" in (out / "pareto_front.pdf").read_bytes()


def test_table_states_the_fitted_tolerances_and_the_strict_count(out):
    text = (out / "table.md").read_text()
    assert "were fitted" in text and "With the strict criterion (loss within 0.001" in text
    assert "(cap)" in text  # 300 steps cannot reach several of the published counts
