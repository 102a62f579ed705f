"""The command line under interruption and bad input: completion markers and resumption,
SIGTERM, folders checked before work, help texts, version, theory's rendering."""

from __future__ import annotations

import argparse
import importlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mtlp
from empirical.studies import STUDIES as VISION_STUDIES
from mtl.io import COMPLETE_NAME, is_complete, prepare_output_dir
from sim import cli
from theory import cli as theory_cli

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["cagrad-toy", "--max-steps", "50", "--lrs", "1", "--methods", "ew", "--no-progress"]


def test_sigterm_ends_a_study_with_143_one_line_and_an_incomplete_folder(tmp_path):
    out = tmp_path / "run"
    argv = ["sim", "cagrad-toy", "--out", str(out), "--max-steps", "100000", "--lrs", "0.001"]
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys, mtlp; sys.exit(mtlp.main(sys.argv[1:]))", *argv],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (out / "config.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        f"mtlp: interrupted by SIGTERM; {out} is incomplete, rerun the same command to resume"
    )
    assert (out / "config.json").exists() and not (out / COMPLETE_NAME).exists()


def test_ctrl_c_gives_130_and_one_line(monkeypatch, capsys):
    def interrupted(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "main", interrupted)
    assert mtlp.main(["sim", "cagrad-toy"]) == 130
    assert capsys.readouterr().err.strip() == "mtlp: interrupted by SIGINT"


def test_an_output_path_that_is_a_file_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("mine")
    study = importlib.import_module(cli.STUDIES["cagrad-toy"][0])
    monkeypatch.setattr(study, "simulate", lambda *a, **k: pytest.fail("work started"))
    for out in (blocker, blocker / "sub"):
        with pytest.raises(SystemExit):
            cli.main([*SMALL, "--out", str(out)])
        assert f"{str(out)!r}" in capsys.readouterr().err


def test_reproduce_into_another_configuration_refuses_before_writing(tmp_path, capsys):
    out = tmp_path / "all"
    prepare_output_dir(out, {"command": "reproduce", "scale": "quick"})
    foreign = out / "sim" / "conflict-sim"
    foreign.mkdir(parents=True)
    (foreign / "config.json").write_text('{"study": "conflict-sim", "seed": 7}\n')
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    with pytest.raises(SystemExit) as exit_:
        mtlp.main(["reproduce", "--quick", "--out", str(out)])
    assert exit_.value.code == 2
    assert "differs in: " in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before  # theory not run either


def test_reproduce_refuses_a_folder_of_the_other_scale(tmp_path, capsys, monkeypatch):
    out = tmp_path / "all"
    monkeypatch.setattr(mtlp, "reproduce_steps", lambda args: [])
    assert mtlp.main(["reproduce", "--out", str(out)]) == 0
    with pytest.raises(SystemExit):
        mtlp.main(["reproduce", "--quick", "--out", str(out)])
    assert "differs in: scale" in capsys.readouterr().err


def test_reproduce_skips_complete_steps_and_resumes_the_rest(tmp_path, capsys, monkeypatch):
    out = tmp_path / "all"
    study = out / "sim" / "cagrad-toy"
    steps = [("sim", [*SMALL[:1], "--out", str(study), *SMALL[1:]])]
    monkeypatch.setattr(mtlp, "reproduce_steps", lambda args: steps)
    assert mtlp.main(["reproduce", "--out", str(out)]) == 0
    assert is_complete(out, {"command": "reproduce", "scale": "cpu"})
    assert (study / COMPLETE_NAME).exists()
    stamp = (study / "iterations.csv").stat().st_mtime_ns
    (out / COMPLETE_NAME).unlink()  # as if the run was cut after its last step
    capsys.readouterr()
    assert mtlp.main(["reproduce", "--out", str(out)]) == 0
    assert "complete for this configuration; nothing to do" in capsys.readouterr().out
    assert (out / COMPLETE_NAME).exists()
    assert (study / "iterations.csv").stat().st_mtime_ns == stamp  # skipped, not rewritten
    assert mtlp.main(["reproduce", "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"{out}: complete")
    (out / COMPLETE_NAME).unlink()
    (study / COMPLETE_NAME).unlink()  # as an interrupted study leaves its folder
    assert mtlp.main(["reproduce", "--out", str(out)]) == 0
    assert (study / "iterations.csv").stat().st_mtime_ns != stamp
    assert is_complete(out, {"command": "reproduce", "scale": "cpu"})


def test_reproduce_passes_threads_and_no_progress_to_every_study(tmp_path):
    args = mtlp._reproduce_parser().parse_args(
        ["--out", str(tmp_path), "--quick", "--threads", "2", "--no-progress"]
    )
    steps = mtlp.reproduce_steps(args)
    vision = ["empirical"] * len(VISION_STUDIES)
    assert [c for c, _ in steps] == ["theory"] + ["sim"] * len(cli.STUDIES) + vision
    for command, rest in steps[1:]:
        if command == "sim":
            assert rest[-4:] == ["--quick", "--threads", "2", "--no-progress"]
        else:
            assert rest[rest.index("--scale") + 1] == "quick"
            assert "--no-progress" in rest and rest[rest.index("--threads") + 1] == "2"


def test_version(capsys):
    assert mtlp.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("mtlp ")


@pytest.mark.parametrize("name", list(cli.STUDIES))
def test_every_study_offers_the_common_options_and_plain_help(name):
    module = importlib.import_module(cli.STUDIES[name][0])
    text = cli._parser(name, module).format_help()
    assert "--no-progress" in text and "--threads" in text and "--quick" in text
    assert "{" not in text and "(1.0" not in text and "['" not in text, text


def test_the_recorded_command_drops_run_only_options():
    argv = ["--quick", "--out", "x", "--threads=2", "--no-progress", "--seed", "3"]
    assert cli.command_line("conflict-sim", argv) == "mtlp sim conflict-sim --quick --seed 3"


def test_theory_refuses_a_foreign_folder_before_deriving(tmp_path, capsys, monkeypatch):
    importlib.import_module("theory.statements")
    derivations = sys.modules["theory.statements"]
    monkeypatch.setattr(derivations, "statements", lambda: pytest.fail("work started"))
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit):
        theory_cli.main(["--out", str(tmp_path)])
    assert "not empty and has no config.json" in capsys.readouterr().err
    assert theory_cli.plan(["--out", str(tmp_path)]) == [(tmp_path, theory_cli.RECORD)]


def test_theory_text_wraps_and_reads_without_double_negatives():
    claim = "Adam: the head trajectory is not invariant to per-task scales (the backbone moves)."
    found = [
        argparse.Namespace(id="adam.head.run.trained-backbone", claim=claim, verdict="fails"),
        argparse.Namespace(id="sgd.head", claim="SGD: " + "word " * 40, verdict="holds"),
    ]
    text = theory_cli.render(found, width=60)
    assert all(len(line) <= 60 for line in text.splitlines())
    assert "not invariant" not in text and "is invariant to per-task" in text
    assert "[fails (counterexample)]" in text and "[holds (proved)]" in text
