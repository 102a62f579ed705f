"""The trainer with the project's own dataset, architecture and metrics (tiny sizes)."""

from __future__ import annotations

import json

import pytest
import torch

from empirical.training import run as train

pytest.importorskip("empirical.models", reason="the architectures are not part of this checkout")
pytest.importorskip("mtl.metrics", reason="the metrics are not part of this checkout")

SMALL = {"size": [32, 32], "num_train": 8, "num_val": 4, "num_test": 4}


def test_synthetic_scenes_segnet_run_with_delta_m_selection(tmp_path):
    torch.set_num_threads(1)
    baselines = tmp_path / "baselines.json"
    baselines.write_text(json.dumps({"miou": 0.2, "pix_acc": 0.5, "abs_err": 2.0}))
    config = {
        "dataset": "synthetic-scenes",
        "dataset_options": SMALL,
        "arch": "segnet",
        "width": 4,
        "method": "pcgrad",
        "optimizer": "adam",
        "lr": 1e-3,
        "epochs": 2,
        "batch_size": 4,
        "device": "cpu",
        "baselines": str(baselines),
        "grad_stats_every": 3,
    }
    out = tmp_path / "run"
    assert train(config, out) == "finished"
    lines = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2]
    for key in ("val/miou", "val/pix_acc", "val/abs_err", "val/normal_mean", "test/within_30"):
        assert key in lines[0], key
    best = json.loads((out / "best.json").read_text())
    assert best["criterion"] == "val/delta_m"
    assert best["value"] == min(line["val/delta_m"] for line in lines)
    assert (out / "grad_stats.jsonl").read_text().count("\n") == 1
