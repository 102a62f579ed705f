"""The capacity study: SegNet's split point and head width, the study's configurations, and its
analysis (Δm, Pareto position and verdicts) on tables built here."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from empirical import models
from empirical.datasets import DatasetSpec, TaskSpec
from mtl.model import HardParameterSharing, split_parameters

TASKS = (
    TaskSpec("segmentation", "segmentation", 5),
    TaskSpec("depth", "depth"),
    TaskSpec("normal", "normal"),
)
SPEC = DatasetSpec("scenes", TASKS, (3, 32, 32), real=False)
OUTS = {"segmentation": 5, "depth": 1, "normal": 3}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These networks are tiny: one thread is several times faster than two on a busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def conv_bn(c_in: int, c_out: int) -> int:
    return 9 * c_in * c_out + c_out + 2 * c_out  # conv3x3 weight and bias, BN scale and shift


def block_counts(w: int, c_in: int = 3) -> list[int]:
    """SegNet's ten blocks counted from its description: encoder channels [w, 2w, 4w, 8w, 8w]
    with (2, 2, 3, 3, 3) layers; the decoder mirrors it (deepest first) down to w channels."""
    f = [w, 2 * w, 4 * w, 8 * w, 8 * w]
    layers = [2, 2, 3, 3, 3]
    enc = [conv_bn([c_in, *f][k], f[k]) + (layers[k] - 1) * conv_bn(f[k], f[k]) for k in range(5)]
    ins, outs = f[::-1], [f[3], f[2], f[1], f[0], f[0]]
    dec = [
        conv_bn(ins[i], outs[i]) + (layers[4 - i] - 1) * conv_bn(outs[i], outs[i]) for i in range(5)
    ]
    return enc + dec


def head_count(w: int, hidden: int, out: int) -> int:
    return 9 * w * hidden + hidden + hidden * out + out


def count(params) -> int:
    return sum(p.numel() for p in params)


def test_the_default_segnet_is_unchanged_and_counted_analytically():
    for options in ({}, {"shared_blocks": None, "head_width": None}, {"shared_blocks": 10}):
        model = models.build("segnet", SPEC, width=4, **options)
        assert isinstance(model, HardParameterSharing)
        assert count(model.shared_parameters()) == sum(block_counts(4))
        for t, out in OUTS.items():
            assert count(model.task_parameters(t)) == head_count(4, 4, out)
    published = models.build("segnet", SPEC)  # width 64: the count of MTAN's split SegNet
    assert count(published.parameters()) == sum(block_counts(64)) + sum(
        head_count(64, 64, o) for o in OUTS.values()
    )


@given(st.integers(1, 10), st.sampled_from([None, 1, 3, 8]))
@settings(max_examples=12)
def test_the_split_moves_whole_blocks_from_phi_to_every_psi(shared_blocks, head_width):
    model = models.build(
        "segnet", SPEC, width=2, shared_blocks=shared_blocks, head_width=head_width
    )
    split = split_parameters(model)  # every parameter shared or of exactly one task
    blocks = block_counts(2)
    assert count(p for _, p in split.shared) == sum(blocks[:shared_blocks])
    for t, out in OUTS.items():
        expected = sum(blocks[shared_blocks:]) + head_count(2, head_width or 2, out)
        assert count(p for _, p in split.tasks[t]) == expected
    assert count(model.parameters()) == sum(blocks[:shared_blocks]) + sum(
        count(p for _, p in split.tasks[t]) for t in OUTS
    )


@pytest.mark.parametrize("shared_blocks", [2, 5, 8])
def test_a_split_segnet_with_copied_weights_computes_the_default_segnet(shared_blocks):
    """Unpooling by the shared max-location masks is MaxUnpool2d exactly: with every trunk a copy
    of the default network's tail, the outputs agree."""
    torch.manual_seed(0)
    default = models.build("segnet", SPEC, width=2).eval()
    split = models.build("segnet", SPEC, width=2, shared_blocks=shared_blocks).eval()
    b = default.encoder
    pairs = [*zip(b.enc_first, b.enc_rest, strict=True), *zip(b.dec_first, b.dec_rest, strict=True)]
    flat = [torch.nn.Sequential(*pair) for pair in pairs]
    for k, block in enumerate(split.shared.blocks):
        block.load_state_dict(flat[k].state_dict())
    for t in OUTS:
        for k, block in enumerate(split.trunks[t].blocks):
            block.load_state_dict(flat[shared_blocks + k].state_dict())
        split.heads[t].load_state_dict(default.heads[t].state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        want, got = default(x), split(x)
    for t, c in OUTS.items():
        assert got[t].shape == (2, c, 32, 32)
        torch.testing.assert_close(got[t], want[t], rtol=1e-5, atol=1e-6)


def test_each_output_reaches_its_own_task_parameters_and_phi_only():
    model = models.build("segnet", SPEC, width=2, shared_blocks=4)
    outputs = model(torch.randn(2, 3, 32, 32))
    for t in OUTS:
        grads = torch.autograd.grad(
            outputs[t].square().mean(), list(model.parameters()), allow_unused=True,
            retain_graph=True,
        )  # fmt: skip
        reached = {id(p) for p, g in zip(model.parameters(), grads, strict=True) if g is not None}
        own = {id(p) for p in model.task_parameters(t)}
        others = {id(p) for u in OUTS if u != t for p in model.task_parameters(u)}
        assert own <= reached and not reached & others
        assert {id(p) for p in model.shared_parameters()} <= reached


def test_mtl_backward_runs_a_representation_method_on_the_split_network():
    import mtl.methods
    from mtl import backward
    from mtl.losses import depth_loss

    model = models.build("segnet", SPEC, width=2, shared_blocks=7)
    x = torch.randn(2, 3, 32, 32)
    outputs, rep = model(x, return_representation=True)
    assert isinstance(rep, tuple) and len(rep) == 1 + 3  # h and the masks of encoder blocks 0-2
    losses = torch.stack([depth_loss(outputs[t][:, :1], torch.rand(2, 1, 32, 32)) for t in OUTS])
    backward(
        losses, mtl.methods.get("mgda-ub"), shared=model.shared_parameters(),
        task_params=[p for t in OUTS for p in model.task_parameters(t)], representation=rep,
    )  # fmt: skip
    assert all(p.grad is not None for p in model.shared_parameters())


def test_head_width_on_mtan_and_clear_errors():
    mtan = models.build("mtan", SPEC, width=2, head_width=5)
    assert count(mtan.attention["depth"].head.parameters()) == head_count(2, 5, 1)
    with pytest.raises(ValueError, match=r"no option.*'shared_blocks'.*head_width"):
        models.build("mtan", SPEC, width=2, shared_blocks=3)
    with pytest.raises(ValueError, match="options: none"):
        models.build("small-cnn", DatasetSpec("d", (TaskSpec("a", "binary"),), (1, 28, 28), False),
                     head_width=3)  # fmt: skip
    for bad in (0, 11, 2.5, True):
        with pytest.raises(ValueError, match="shared_blocks must be an integer from 1"):
            models.build("segnet", SPEC, width=2, shared_blocks=bad)
    with pytest.raises(ValueError, match="head_width must be a positive integer"):
        models.build("segnet", SPEC, width=2, head_width=0)


# -- the study: configurations and analysis ------------------------------------------------


def study_configs(task_weights: bool):
    from pathlib import Path

    from empirical.studies import capacity

    setup = capacity.capacity_setups("cpu")[0]
    grid = capacity.GRIDS["cpu"]
    return (
        capacity,
        grid,
        capacity.labelled_configs(setup, grid, 2, Path("study"), task_weights=task_weights),
    )


LEVER_KEYS = {
    "split": {"model_options"},
    "head-width": {"model_options"},
    "head-lr": {"task_lrs"},
    "task-weight": {"method", "method_options"},
    "weighting": {"method"},
}


@pytest.mark.parametrize("task_weights", [True, False])
def test_the_study_varies_each_lever_alone_from_one_reference(task_weights):
    from empirical.sweep import run_id

    capacity, grid, runs = study_configs(task_weights)
    pairs = len(grid["head_tasks"]) * len(grid["factors"])
    per_optimizer = (
        1 + len(grid["shared_blocks"]) + len(grid["head_widths"]) + pairs
        + (pairs if task_weights else 0) + len(grid["weightings"])
    )  # fmt: skip
    assert len(runs) == per_optimizer * 2 * len(capacity.OPTIMIZERS)
    assert len({run_id(c) for *_, c in runs}) == len(runs)
    reference = {(c["optimizer"], c["seed"]): c for lever, _, c in runs if lever == "reference"}
    assert len(reference) == 4
    for lever, setting, config in runs:
        if lever == "reference":
            assert "model_options" not in config and config["method"] == "ew"
            continue
        base = reference[(config["optimizer"], config["seed"])]
        changed = {k for k in set(base) | set(config) if base.get(k) != config.get(k)}
        assert changed == LEVER_KEYS[lever], (lever, setting, changed)
    weights = [c for lever, _, c in runs if lever == "task-weight"]
    assert all(sorted(c["method_options"]["weights"]).count(1.0) == 2 for c in weights)
    head_lrs = [c for lever, _, c in runs if lever == "head-lr"]
    assert {next(iter(c["task_lrs"].values())) / c["lr"] for c in head_lrs} == set(grid["factors"])


BASE = {"miou": 0.5, "abs_err": 0.1}


def synthetic_runs(sgd_gap: float, adam_gap: float, head_lr_gain: float, seeds: int = 6):
    """Runs of two optimizers; the task-weight run sits ``gap`` (relative) from the head-lr run;
    the head-lr run improves both metrics by ``head_lr_gain`` (relative) over the reference."""
    import numpy as np
    import pandas as pd

    from empirical.analysis import with_delta_m

    rng = np.random.default_rng(0)
    rows = []
    for opt, gap in (("adam", adam_gap), ("sgd", sgd_gap)):
        for seed in range(seeds):
            noise = rng.normal(0, 0.002, 2)
            ref = {"miou": 0.45 + noise[0], "abs_err": 0.11 + noise[1] / 10}
            head = {
                "miou": ref["miou"] * (1 + head_lr_gain),
                "abs_err": ref["abs_err"] * (1 - head_lr_gain),
            }
            weight = {"miou": head["miou"] * (1 - gap), "abs_err": head["abs_err"] * (1 + gap)}
            uw = {"miou": ref["miou"], "abs_err": ref["abs_err"]}
            cells = [("reference", "default", ref), ("head-lr", "depth x10", head),
                     ("task-weight", "depth x10", weight), ("weighting", "uw", uw)]  # fmt: skip
            for lever, setting, m in cells:
                row = {"optimizer": opt, "lever": lever, "setting": setting, "seed": seed}
                row |= {f"test/{k}": v for k, v in m.items()} | {
                    f"val/{k}": v for k, v in m.items()
                }
                rows.append(row)
    runs = pd.DataFrame(rows)
    runs["val_dm"] = with_delta_m(runs, {f"val/{k}": v for k, v in BASE.items()}, "val")
    runs["test_dm"] = with_delta_m(runs, {f"test/{k}": v for k, v in BASE.items()}, "test")
    return runs


def verdict_of(verdicts, claim):
    return next(v for v in verdicts if v.claim == claim).verdict


@pytest.mark.parametrize(
    ("sgd_gap", "adam_gap", "expected"),
    [(0.0, 0.2, "confirmed"), (0.2, 0.0, "refuted"), (0.05, 0.05, "inconclusive")],
)
def test_the_verdicts_follow_the_data(tmp_path, sgd_gap, adam_gap, expected):
    from empirical.studies import capacity

    runs = synthetic_runs(sgd_gap, adam_gap, head_lr_gain=0.2)
    verdicts = capacity.study_verdicts(runs, BASE, list(BASE), "quick", "test table")
    claim = "task-weight-and-head-lr-interchangeable-under-sgd-not-adam"
    assert verdict_of(verdicts, claim) == expected
    for opt in ("adam", "sgd"):
        assert verdict_of(verdicts, f"head-lr-improves-on-full-sharing-ew-{opt}") == "confirmed"
        assert verdict_of(verdicts, f"head-lr-beats-weighting-{opt}") == "confirmed"
        assert verdict_of(verdicts, f"split-improves-on-full-sharing-ew-{opt}") == "not run"
    assert all(v.scale == "quick" and v.data == "test table" for v in verdicts)


def test_a_lever_that_hurts_is_refuted_and_front_membership_is_computed(tmp_path):
    import pandas as pd

    from empirical.studies import capacity

    runs = synthetic_runs(0.0, 0.0, head_lr_gain=-0.2)
    verdicts = capacity.analyse(tmp_path, runs, BASE, "quick", "test table", source="test")
    for opt in ("adam", "sgd"):
        assert verdict_of(verdicts, f"head-lr-improves-on-full-sharing-ew-{opt}") == "refuted"
    assert all(v.scale == "quick" and v.data == "test table" for v in verdicts)
    assert (tmp_path / "table.md").is_file() and (tmp_path / "levers.png").stat().st_size > 0
    table = pd.read_csv(tmp_path / "table.csv")
    assert len(table) == 2 * 4  # optimizer x (reference, head-lr, task-weight, weighting)
    worse = table[table["lever"].isin(["head-lr", "task-weight"])]
    assert (worse["front_fraction"] == 0).all()  # dominated by the reference of the same seed
    assert (table[table["lever"] == "reference"]["front_fraction"] > 0).any()


def _trainer_has_capacity_fields() -> bool:
    try:
        from empirical.training.config import field_names
    except ImportError:
        return False
    import mtl.methods

    return {"model_options", "task_lrs"} <= set(field_names()) and "fixed" in mtl.methods.NAMES


@pytest.mark.skipif(
    not _trainer_has_capacity_fields(),
    reason="needs RunConfig.model_options and task_lrs and the 'fixed' weighting (not merged yet)",
)
def test_the_quick_study_runs_end_to_end(tmp_path):
    import json

    from empirical.cli import main

    assert main(["capacity", "--scale", "quick", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "verdicts.json").read_text())
    claims = {v["claim"]: v for v in record["verdicts"]}
    assert "task-weight-and-head-lr-interchangeable-under-sgd-not-adam" in claims
    assert all(v["scale"] == "quick" and "generated" in v["data"] for v in claims.values())
    table = (tmp_path / "synthetic-scenes-segnet" / "table.csv").read_text().splitlines()
    assert len(table) == 1 + 2 * 6  # (reference + 5 levers) x 2 optimizers


def test_one_seed_gives_no_verdict_but_inconclusive():
    from empirical.studies import capacity

    runs = synthetic_runs(0.0, 0.2, head_lr_gain=0.2, seeds=1)
    verdicts = capacity.study_verdicts(runs, BASE, list(BASE), "quick", "test table")
    assert {v.verdict for v in verdicts} == {"inconclusive", "not run"}
