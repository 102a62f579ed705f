"""A training run end to end with small stand-ins for dataset, architecture and metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import train_doubles

from empirical.sweep import run_state, to_do, write_sweep
from empirical.training import components, loop
from empirical.training import run as train
from empirical.training.cli import main as cli_main
from mtl.runtime import interruptible

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def doubles(monkeypatch):
    import empirical.datasets as datasets

    monkeypatch.setitem(datasets.DATASETS, train_doubles.TOY, ("train_doubles", "double"))
    monkeypatch.setattr(components, "arch_names", lambda: train_doubles.ARCHS)
    monkeypatch.setattr(components, "build_model", train_doubles.build_model)
    monkeypatch.setattr(components, "metrics_for", train_doubles.metrics_for)
    monkeypatch.setattr(components, "delta_m", train_doubles.delta_m)
    torch.set_num_threads(1)


def lines(run_dir: Path, drop_time: bool = True) -> list[dict]:
    out = [json.loads(s) for s in (run_dir / "metrics.jsonl").read_text().splitlines()]
    if drop_time:
        for line in out:
            line.pop("time")
    return out


def test_a_short_run_writes_every_file_with_the_documented_keys(tmp_path):
    out = tmp_path / "run"
    config = train_doubles.toy_config(grad_stats_every=2, epochs=2)
    state = train(config, out)
    assert state == "finished"
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "metrics.jsonl", "checkpoint.pt", "status.json", "best.json"} <= names
    assert "grad_stats.jsonl" in names
    config = json.loads((out / "config.json").read_text())
    assert config["method"] == "ew" and {"python", "torch", "device"} <= set(config["environment"])
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "finished" and status["epoch"] == 2 and status["step"] == 6
    assert {"reason", "heartbeat"} <= set(status)
    first, second = lines(out, drop_time=False)
    assert first["epoch"] == 1 and second["epoch"] == 2 and next(iter(first)) == "epoch"
    for key in ("train/loss", "train/segmentation_loss", "train/depth_loss", "val/loss",
                "val/pix_acc", "val/abs_err", "test/pix_acc", "test/abs_err"):  # fmt: skip
        assert isinstance(first[key], float), key
    assert set(first["time"]) == {"train_s", "eval_s", "epoch_s"}
    assert first["train/segmentation_weight"] == first["train/depth_weight"] == 1.0  # EW
    best = json.loads((out / "best.json").read_text())
    assert best["criterion"] == "val/loss" and best["epoch"] in (1, 2)
    assert best["value"] == min(first["val/loss"], second["val/loss"])
    stats = [json.loads(s) for s in (out / "grad_stats.jsonl").read_text().splitlines()]
    assert [s["step"] for s in stats] == [2, 4, 6]
    assert set(stats[0]["inter_task"]) >= {"cosine", "magnitude_similarity", "conflict_ratio"}
    assert set(stats[0]["per_sample"]) == {
        "inter_task", "inter_sample", "inter_task_averaged", "inter_sample_averaged"
    }  # fmt: skip
    assert len(stats[0]["per_sample"]["inter_task"]["cosine"]) == 4  # 4 samples x 1 task pair
    model = train_doubles.build_model(config["arch"], train_doubles.spec())
    shared_layers = {n.rsplit(".", 1)[0] for n, _ in model.named_shared_parameters()}
    assert len(shared_layers) == 2 and set(stats[0]["by_layer"]) == shared_layers
    for layer in stats[0]["by_layer"].values():
        assert set(layer) == {"inter_task", "inter_sample"}
        assert -1 <= layer["inter_sample"]["cosine"] <= 1


def _subprocess(config: dict, out: Path, *extra: str) -> subprocess.CompletedProcess:
    path = out.parent / f"{out.name}.json"
    path.write_text(json.dumps(config))
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{HERE}"}
    return subprocess.run(
        [sys.executable, str(HERE / "train_doubles.py"), str(path), str(out), *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_killed_run_resumes_to_identical_metrics(tmp_path):
    """A process that vanishes between epoch 2's checkpoint and its metrics line, rerun with
    the same config, ends with the same metrics.jsonl (time aside) and weights as a run that was
    never interrupted. DWA's loss history (used from epoch 3 on) and Adam's moments have to
    survive the checkpoint; batches are shuffled and the model has BatchNorm and MaxUnpool2d."""
    config = train_doubles.toy_config(method="dwa", arch="toy-bn", epochs=4, grad_stats_every=5)
    whole = tmp_path / "whole"
    assert train(config, whole) == "finished"
    broken = tmp_path / "broken"
    proc = _subprocess(config, broken, "2")
    assert proc.returncode == 9, proc.stderr
    assert len(lines(broken)) == 1  # the checkpoint of epoch 2 exists, its line does not
    assert torch.load(broken / "checkpoint.pt", weights_only=False)["epoch"] == 2
    assert json.loads((broken / "status.json").read_text())["state"] == "running"
    assert train(config, broken) == "finished"
    assert lines(broken) == lines(whole)
    a = torch.load(whole / "checkpoint.pt", weights_only=False)
    b = torch.load(broken / "checkpoint.pt", weights_only=False)
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert (broken / "grad_stats.jsonl").read_text() == (whole / "grad_stats.jsonl").read_text()


def test_finished_run_is_not_redone_and_another_config_is_refused(tmp_path, monkeypatch):
    out = tmp_path / "run"
    config = train_doubles.toy_config(epochs=1)
    assert train(config, out) == "finished"
    stamp = (out / "checkpoint.pt").stat().st_mtime_ns
    monkeypatch.setattr(loop._Run, "_epoch", lambda self: pytest.fail("redone"))
    assert train(config, out) == "finished"
    assert (out / "checkpoint.pt").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match=r"different configuration \(differs in: lr\)"):
        train({**config, "lr": 0.5}, out)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"not empty and has no config\.json"):
        train(config, tmp_path / "other")


def test_nan_loss_fails_the_run_at_its_step(tmp_path):
    config = train_doubles.toy_config(dataset_options={"nan_at": 13}, epochs=2)
    out = tmp_path / "run"
    assert train(config, out) == "failed"
    order = torch.randperm(24, generator=torch.Generator().manual_seed(0)).tolist()
    step = order.index(13) // 8 + 1  # DistributedSampler's order: randperm seeded seed + epoch
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "failed" and status["step"] == step
    assert "non-finite loss" in status["reason"] and "nan" in status["reason"]
    assert train(config, out) == "failed"  # deterministic: not retried


def test_a_method_seeing_a_non_finite_value_ends_the_run_as_diverged(tmp_path, monkeypatch):
    """mtl.methods raises NonFiniteError (e.g. UW's weight overflowing at a large lr): the run
    fails at its step as diverged, the sweep goes on, and the run is not retried."""
    from empirical.results import diverged
    from empirical.sweep import run_state
    from empirical.training.trainer import Trainer
    from mtl.methods.base import NonFiniteError

    step = Trainer.step

    def overflow_at_step_3(self, x, targets):
        if self.step_count == 2:
            raise NonFiniteError("uw: the loss weight of task 0 is not finite", (0,))
        return step(self, x, targets)

    monkeypatch.setattr(Trainer, "step", overflow_at_step_3)
    out = tmp_path / "run"
    assert train(train_doubles.toy_config(epochs=2), out) == "failed"
    status = json.loads((out / "status.json").read_text())
    assert status["step"] == 2 and "uw: the loss weight" in status["reason"]
    assert diverged(run_state(out))
    monkeypatch.setattr(loop._Run, "_epoch", lambda self: pytest.fail("retried"))
    assert train(train_doubles.toy_config(epochs=2), out) == "failed"


def _scripted_evaluate(val: list[dict], test: list[dict]):
    calls = {"n": 0}

    def evaluate(self, loader, accumulator):
        split = val if calls["n"] % 2 == 0 else test
        calls["n"] += 1
        return dict(split[(calls["n"] - 1) // 2])

    return evaluate


def test_selection_uses_validation_only(tmp_path, monkeypatch):
    """Validation says epoch 2, test says epoch 3 (by loss) or epoch 1 (by metrics)."""
    val = [{"loss": 3.0, "pix_acc": 0.5, "abs_err": 1.0},
           {"loss": 1.0, "pix_acc": 0.4, "abs_err": 1.2},
           {"loss": 2.0, "pix_acc": 0.6, "abs_err": 0.5}]  # fmt: skip
    test = [{"loss": 2.0, "pix_acc": 0.9, "abs_err": 0.1},
            {"loss": 3.0, "pix_acc": 0.1, "abs_err": 2.0},
            {"loss": 0.5, "pix_acc": 0.2, "abs_err": 3.0}]  # fmt: skip
    from empirical.training.trainer import Trainer

    monkeypatch.setattr(Trainer, "evaluate", _scripted_evaluate(val, test))
    out = tmp_path / "by_loss"
    assert train(train_doubles.toy_config(), out) == "finished"
    best = json.loads((out / "best.json").read_text())
    assert (best["criterion"], best["epoch"], best["value"]) == ("val/loss", 2, 1.0)
    assert best["test"] == test[1]

    baselines = tmp_path / "baselines.json"
    baselines.write_text(json.dumps({"val/pix_acc": 0.5, "val/abs_err": 1.0, "val/loss": 9.0}))
    monkeypatch.setattr(Trainer, "evaluate", _scripted_evaluate(val, test))
    out = tmp_path / "by_delta_m"
    assert train(train_doubles.toy_config(baselines=str(baselines)), out) == "finished"
    best = json.loads((out / "best.json").read_text())
    expected = [train_doubles.delta_m(v, {"pix_acc": 0.5, "abs_err": 1.0}) for v in val]
    assert [line["val/delta_m"] for line in lines(out)] == expected
    assert best["criterion"] == "val/delta_m" and best["epoch"] == 3  # val loss would say 2
    assert best["value"] == min(expected)

    monkeypatch.setattr(Trainer, "evaluate", _scripted_evaluate(val, test))
    out = tmp_path / "single_task"  # single-task runs select by loss even with baselines
    config = train_doubles.toy_config(baselines=str(baselines), tasks=["segmentation"])
    assert train(config, out) == "finished"
    assert json.loads((out / "best.json").read_text())["epoch"] == 2


def test_cli_trains_and_reports_errors(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--dataset", train_doubles.TOY, "--arch", "toy-cnn", "--method", "pcgrad",
            "--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9", "--epochs", "1",
            "--batch-size", "8", "--device", "cpu", "--grad-clip", "0.01", "--out", str(out),
            "--no-progress"]  # fmt: skip
    assert cli_main(argv) == 0
    line = lines(out)[0]
    assert any("clipped shared gradient norm" in e for e in line["events"])
    assert cli_main([*argv[:-3], "--set", "method=nope", "--out", str(tmp_path / "x")]) == 2
    assert "unknown MTL method 'nope'" in capsys.readouterr().err


def test_every_method_kind_runs_an_epoch(tmp_path):
    for method in ("uw", "mgda-ub", "adatask", "famo", "gradvac"):
        out = tmp_path / method
        assert train(train_doubles.toy_config(method=method, epochs=1), out) == "finished"
        assert torch.isfinite(torch.tensor(lines(out)[0]["val/loss"]))


def test_sigterm_records_an_interrupted_run_that_a_sweep_resumes(tmp_path):
    """A preempted job gets SIGTERM: the run is ``interrupted`` (not ``failed``), the sweep's
    to-do list takes it again, and the restart finishes it with the uninterrupted metrics."""
    config = train_doubles.toy_config(epochs=3)
    (run,) = write_sweep(tmp_path / "sweep", "s", [config])

    def preempt(epoch: int) -> None:
        if epoch == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(KeyboardInterrupt), interruptible():
        train(config, run.directory, after_epoch=preempt)
    state = run_state(run.directory)
    assert (state.state, state.reason) == ("interrupted", "SIGTERM")
    assert to_do([run]) == [run]
    assert train(config, run.directory) == "finished"
    whole = tmp_path / "whole"
    assert train(config, whole) == "finished"
    assert lines(run.directory) == lines(whole)
