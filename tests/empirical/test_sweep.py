"""Sweeps: ids by configuration hash, skip/resume bookkeeping, filters, executors, tidy tables."""

import json
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from empirical import sweep_cli
from empirical.results import epochs_table, flatten, selected_table
from empirical.sweep import (
    execute,
    parse_filters,
    read_sweep,
    run_id,
    run_state,
    select,
    status_table,
    to_do,
    write_sweep,
)

HERE = Path(__file__).parent
RUNNER = "sweep_runner:run"

configs_st = st.dictionaries(
    st.text("abcdefgh_", min_size=1, max_size=6),
    st.one_of(
        st.integers(-5, 5), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=4)
    ),
    max_size=6,
)


@given(configs_st)
def test_run_id_ignores_key_order_and_sees_every_value(config):
    reordered = dict(reversed(list(config.items())))
    assert run_id(reordered) == run_id(config)
    changed = {**config, "extra_key": 1}
    assert run_id(changed) != run_id(config)


def grid():
    return [{"method": m, "lr": lr, "seed": 0} for m in ("ew", "pcgrad") for lr in (0.1, 0.001)]


@pytest.fixture
def on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))


def test_write_sweep_is_idempotent_and_refuses_another(tmp_path):
    runs = write_sweep(tmp_path, "s", grid())
    again = write_sweep(tmp_path, "s", grid())
    assert [r.id for r in runs] == [r.id for r in again]
    assert read_sweep(tmp_path)[0] == "s"
    with pytest.raises(ValueError, match="holds another sweep"):
        write_sweep(tmp_path, "s", grid()[:2])
    with pytest.raises(ValueError, match="same configuration twice"):
        write_sweep(tmp_path / "b", "s", [grid()[0], grid()[0]])


def test_filters_narrow_by_value_and_number(tmp_path):
    runs = write_sweep(tmp_path, "s", grid())
    chosen = select(runs, parse_filters(["method=pcgrad", "lr=1e-3"]))
    assert [(r.config["method"], r.config["lr"]) for r in chosen] == [("pcgrad", 0.001)]
    assert len(select(runs, parse_filters(["method=ew,pcgrad"]))) == 4
    with pytest.raises(ValueError, match="unknown filter key"):
        select(runs, {"optimiser": ["adam"]})
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_filters(["method"])


def test_local_execution_skips_finished_and_reports_failures(tmp_path, on_path):
    configs = [*grid(), {"method": "ew", "lr": 0.5, "seed": 0, "fail": True}]
    runs = write_sweep(tmp_path, "s", configs)
    results = execute(to_do(runs), runner=RUNNER)
    assert sorted(results.values()) == ["failed"] + ["finished"] * 4
    assert to_do(runs) == []  # finished and failed runs are not redone
    execute(to_do(runs), runner=RUNNER)
    assert all((r.directory / "calls").read_text().count("call") == 1 for r in runs)
    table = status_table(runs)
    assert table["counts"]["finished"] == 4 and table["counts"]["failed"] == 1
    assert "nan at step 3" in table["problems"][0][1]


def test_stale_heartbeat_is_resumed_live_one_is_not(tmp_path):
    runs = write_sweep(tmp_path, "s", grid()[:2])
    for run, age in zip(runs, (5.0, 5000.0), strict=True):
        run.directory.mkdir(parents=True)
        beat = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - age))
        status = {"state": "running", "heartbeat": beat}
        (run.directory / "status.json").write_text(json.dumps(status))
    assert run_state(runs[0].directory).state == "running"
    assert run_state(runs[1].directory).state == "stale"
    assert to_do(runs) == [runs[1]]


def test_process_executor_runs_in_workers_sharing_the_threads(tmp_path, on_path):
    """Each of 2 workers gets half of this process's 4 threads (never oversubscribing)."""
    import torch

    configs = [{**c, "record_threads": True} for c in grid()]
    runs = write_sweep(tmp_path, "s", configs)
    before = torch.get_num_threads()
    torch.set_num_threads(4)
    try:
        results = execute(runs, executor="processes", processes=2, runner=RUNNER)
    finally:
        torch.set_num_threads(before)
    assert set(results.values()) == {"finished"}
    assert {(r.directory / "threads").read_text() for r in runs} == {"2"}


def test_interrupted_process_executor_starts_no_further_run(tmp_path, on_path):
    """SIGTERM in the parent (a cancelled job) cancels the queued runs instead of working
    through them: of six 3-second runs, at most the running and one queued one start."""
    import os
    import signal
    import threading

    from mtl.runtime import interruptible

    runs = write_sweep(tmp_path, "s", [{"lr": 0.1, "seed": s, "sleep": 3.0} for s in range(6)])

    def terminate_once_a_run_started() -> None:
        while not any((r.directory / "calls").is_file() for r in runs):
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=terminate_once_a_run_started, daemon=True).start()
    with pytest.raises(KeyboardInterrupt), interruptible():
        execute(runs, executor="processes", processes=1, runner=RUNNER)
    started = [r for r in runs if (r.directory / "calls").is_file()]
    assert 1 <= len(started) <= 3


def test_submitit_local_executor(tmp_path, on_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", f"{HERE}:{HERE.parent.parent}")
    runs = write_sweep(tmp_path, "s", grid()[:2])
    results = execute(runs, executor="submitit-local", runner=RUNNER)
    assert set(results.values()) == {"finished"}
    assert (tmp_path / "submitit").is_dir()


def test_tidy_tables(tmp_path, on_path):
    configs = [{**c, "method_options": {"c": 0.5}} for c in grid()]
    runs = write_sweep(tmp_path, "s", configs)
    execute(runs, runner=RUNNER)
    epochs = epochs_table(tmp_path)
    assert len(epochs) == 2 * len(runs)
    assert {
        "run_id",
        "state",
        "method",
        "lr",
        "method_options.c",
        "val/loss",
        "time.epoch_s",
    } <= set(epochs.columns)
    best = selected_table(tmp_path)
    assert len(best) == len(runs) and (best["epoch"] == 0).all()
    assert (best["val/loss"] == best["lr"]).all()
    assert flatten({"a": {"b": 1}, "c": [1, 2]}) == {"a.b": 1, "c": "[1, 2]"}


def test_cli_status_and_run(tmp_path, on_path, monkeypatch, capsys):
    write_sweep(tmp_path, "s", grid())
    assert sweep_cli.main(["status", str(tmp_path)]) == 0
    assert "pending 4" in capsys.readouterr().out
    monkeypatch.setattr(sweep_cli, "execute", lambda runs, **kw: execute(runs, runner=RUNNER, **kw))
    assert sweep_cli.main(["run", str(tmp_path), "--where", "method=ew"]) == 0
    sweep_cli.main(["status", str(tmp_path)])
    assert "finished 2" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        sweep_cli.main(["status", str(tmp_path / "missing")])


def test_cli_status_of_a_study_folder_lists_every_sweep_below_it(tmp_path, capsys):
    write_sweep(tmp_path / "setup" / "stl", "stl", grid())
    write_sweep(tmp_path / "setup" / "mtl", "mtl", grid()[:2])
    assert sweep_cli.main(["status", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("sweep mtl (setup/mtl): 2 runs: pending 2")
    assert out[1].startswith("sweep stl (setup/stl): 4 runs: pending 4")
