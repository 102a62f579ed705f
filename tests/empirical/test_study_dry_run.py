"""Dry runs of the vision studies: the runs ``--where`` keeps, their training steps counted from
the datasets' split sizes (nothing read), and the cost from a step time."""

from __future__ import annotations

import pytest

import mtlp
from empirical.datasets import split_size


def dry(capsys, *args: str) -> list[str]:
    assert mtlp.main(["empirical", *args, "--dry-run"]) == 0
    return capsys.readouterr().out.strip().splitlines()


def test_full_scale_steps_follow_the_paper_protocol(capsys, tmp_path):
    """Cityscapes: 2975 - 595 = 2380 training images, batch 64, 300 epochs -> 38 x 300 steps
    per run; NYUv2: 795 - 159 = 636 images, batch 8, 200 epochs -> 80 x 200 steps."""
    assert (split_size("cityscapes", "train"), split_size("nyuv2", "train")) == (2380, 636)
    common = ["--scale", "full", "--data-root", str(tmp_path), "--step-seconds", "0.5"]
    common += ["--where", "method=ew", "--where", "arch=segnet"]
    for dataset, steps in (("cityscapes", 38 * 300), ("nyuv2", 80 * 200)):
        lines = dry(capsys, "gradient-conflicts", *common, "--out", str(tmp_path / dataset),
                    "--where", f"dataset={dataset}")  # fmt: skip
        assert len(lines) == 3 and lines[0].startswith(f"{dataset}-segnet/")
        assert lines[1] == f"1 runs, {steps} training steps"
        assert lines[2] == f"cost: {steps * 0.5 / 3600:.1f} GPU-hours at 0.5 s per step"


def test_cpu_scale_counts_generated_and_digit_steps(capsys, tmp_path):
    lines = dry(capsys, "gradient-conflicts", "--scale", "cpu", "--out", str(tmp_path / "gc"),
                "--where", "method=ew", "--where", "seed=0")  # fmt: skip
    scenes = split_size("synthetic-scenes", "train", num_train=256)
    digits = split_size("multi-digits", "train")
    assert (scenes, digits) == (256, 1257)
    assert lines[-2] == f"2 runs, {6 * 256 // 16 + 6 * -(-1257 // 64)} training steps"
    assert lines[-1].startswith("cost: pass --step-seconds")


def test_an_unknown_filter_key_lists_the_keys(capsys, tmp_path):
    with pytest.raises(SystemExit) as stop:
        mtlp.main(["empirical", "stl-methods", "--scale", "cpu", "--out", str(tmp_path),
                   "--dry-run", "--where", "colour=red"])  # fmt: skip
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "unknown filter key(s) ['colour']" in err and "method" in err


def test_a_narrowed_sweep_gives_not_run_verdicts_not_partial_ones(capsys, tmp_path):
    """``--where`` that leaves a setup's grid incomplete trains what it selects (here nothing)
    and records every claim of that setup as not run, naming what is missing."""
    import json

    out = tmp_path / "sweep"
    args = ["empirical", "optimizer-sweep", "--scale", "quick", "--out", str(out)]
    assert mtlp.main([*args, "--where", "lr=0.5"]) == 0
    assert "to start or resume" not in capsys.readouterr().out
    verdicts = json.loads((out / "verdicts.json").read_text())["verdicts"]
    assert {v["verdict"] for v in verdicts} == {"not run"}
    assert {v["claim"] for v in verdicts} >= {"adam-dominates-pareto-front"}
    counts = {v["evidence"].split(" single-task")[0] for v in verdicts}
    assert counts == {"0 of 6", "0 of 4"}  # 3 and 2 tasks x 1 lr x 2 seeds
