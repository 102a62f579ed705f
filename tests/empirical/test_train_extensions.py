"""Trainer features for the later study phases: model options, dataset epochs, ``best.pt``,
fine-tuning from a run with a frozen backbone, corrupted training images, sample groups as
"tasks", and the evaluation of a run under corruptions."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

import mtl.methods
from empirical import models
from empirical.corruptions import CorruptedDataset
from empirical.datasets import fixtures
from empirical.evaluation import RESULTS, evaluate_corruptions
from empirical.training import components
from empirical.training import run as train
from empirical.training.config import RunConfig
from empirical.training.groups import SampleGroups
from empirical.training.trainer import Trainer

BASE = {
    "dataset": "synthetic-scenes",
    "dataset_options": {"size": [32, 32], "num_train": 8, "num_val": 4, "num_test": 4},
    "arch": "segnet",
    "width": 2,
    "epochs": 1,
    "batch_size": 4,
    "device": "cpu",
}


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    """A finished two-epoch multi-task run (its best.pt is what later phases start from)."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("pretrained")
    assert train({**BASE, "epochs": 2}, out) == "finished"
    return out


def lines(run_dir: Path) -> list[dict]:
    out = [json.loads(s) for s in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for line in out:
        line.pop("time")
    return out


def test_model_options_reach_the_models_build(monkeypatch):
    seen = []
    real = models.build

    def spy(arch, spec, *, width=None, pretrained=None, **options):
        seen.append(options)
        return real(arch, spec, width=width, pretrained=pretrained)

    config = RunConfig.from_dict({**BASE, "model_options": {"head_width": 4}})
    spec = components.dataset_spec(config)
    monkeypatch.setattr(models, "build", spy)
    components.model_of(config, spec)
    assert seen == [{"head_width": 4}]
    monkeypatch.setattr(models, "build", real)
    bad = RunConfig.from_dict({**BASE, "model_options": {"no_such_option": 1}})
    with pytest.raises((ValueError, TypeError), match="no_such_option"):
        components.model_of(bad, spec)


class _Recorder(torch.utils.data.Dataset):
    """Wraps a dataset and records every ``set_epoch`` call."""

    def __init__(self, base):
        self.base, self.calls = base, []

    def set_epoch(self, epoch: int) -> None:
        self.calls.append(epoch)
        self.base.set_epoch(epoch)

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        return self.base[i]


def test_each_epoch_sets_the_dataset_epoch_and_resume_stays_exact(tmp_path, monkeypatch):
    root = fixtures.write_cityscapes(tmp_path / "data", n_train=8, n_val=4, size=(32, 32))
    config = {
        **BASE, "dataset": "cityscapes", "data_root": str(root), "augment": True, "epochs": 2,
        "dataset_options": {"size": [32, 32], "val_size": 4}, "tasks": ["depth"],
    }  # fmt: skip
    train_split = components.build_split(RunConfig.from_dict(config), "train")
    draws = []
    for epoch in (0, 1):
        components.set_epoch(_Recorder(train_split), epoch)
        draws.append(torch.stack([train_split[i][0] for i in range(len(train_split))]))
    assert not torch.equal(draws[0], draws[1])  # augmentations differ between epochs
    recorders = []
    real = components.build_split

    def recording(cfg, split, **kw):
        dataset = real(cfg, split, **kw)
        if split == "train":
            recorders.append(_Recorder(dataset))
            return recorders[-1]
        return dataset

    monkeypatch.setattr(components, "build_split", recording)
    assert train(config, tmp_path / "whole") == "finished"
    assert recorders[-1].calls == [0, 1]

    class Killed(Exception):
        pass

    def kill(epoch):
        if epoch == 1:
            raise Killed

    with pytest.raises(Killed):
        train(config, tmp_path / "resumed", after_epoch=kill)
    assert train(config, tmp_path / "resumed") == "finished"
    assert recorders[-1].calls == [1]  # the resumed process trains epoch index 1 only
    assert lines(tmp_path / "resumed") == lines(tmp_path / "whole")


def test_best_pt_holds_the_model_of_the_selected_epoch(tmp_path):
    snapshots = {}
    out = tmp_path / "run"

    def snapshot(epoch):
        snapshots[epoch] = torch.load(out / "checkpoint.pt", weights_only=False)["model"]

    assert train({**BASE, "epochs": 3}, out, after_epoch=snapshot) == "finished"
    best = json.loads((out / "best.json").read_text())["epoch"]
    saved = torch.load(out / "best.pt", weights_only=True)
    assert saved.keys() == snapshots[best].keys()
    assert all(torch.equal(saved[k], snapshots[best][k]) for k in saved)


def test_init_from_with_a_frozen_backbone_trains_only_the_heads(tmp_path, pretrained):
    config = {
        **BASE, "init_from": str(pretrained), "freeze_backbone": True, "method": "pcgrad",
        "lr": 0.05,
    }  # fmt: skip
    out = tmp_path / "finetune"
    assert train(config, out) == "finished"
    start = torch.load(pretrained / "best.pt", weights_only=True)
    after = torch.load(out / "checkpoint.pt", weights_only=False)["model"]
    encoder = [k for k in start if k.startswith("encoder.")]
    heads = [k for k in start if k.startswith("heads.") and start[k].is_floating_point()]
    # parameters and BatchNorm running statistics of the backbone are untouched
    assert encoder and all(torch.equal(start[k], after[k]) for k in encoder)
    assert any(not torch.equal(start[k], after[k]) for k in heads)
    with pytest.raises(ValueError, match=r"best\.pt"):
        train({**config, "init_from": str(tmp_path / "nothing")}, tmp_path / "missing")
    with pytest.raises(ValueError, match=r"best\.pt.*does not fit"):
        train({**config, "width": 3}, tmp_path / "other-width")


def test_corruption_corrupts_the_train_split_only_and_redraws_per_epoch():
    config = RunConfig.from_dict({**BASE, "corruption": "random"})
    train_split = components.build_split(config, "train")
    assert isinstance(train_split, CorruptedDataset)
    assert train_split.corruption is None and train_split.seed == config.data_seed
    clean = components.build_split(config, "train", clean=True)
    first = train_split[0][0]
    assert not torch.equal(first, clean[0][0])
    components.set_epoch(train_split, 1)
    assert not torch.equal(train_split[0][0], first)
    for split in ("val", "test"):
        assert not isinstance(components.build_split(config, split), CorruptedDataset)
    fixed = components.build_split(config.replace(corruption="fog"), "train")
    assert fixed.corruption == "fog"
    with pytest.raises(ValueError, match="unknown corruption 'smudge'"):
        RunConfig.from_dict({**BASE, "corruption": "smudge"})


def _trainer(config: RunConfig, method: str, groups: SampleGroups) -> Trainer:
    spec = components.dataset_spec(config)
    model = components.model_of(config, spec)
    return Trainer(
        model,
        components.task_losses(spec),
        mtl.methods.get(method),
        torch.optim.SGD(model.parameters(), lr=0.0),
        device=torch.device("cpu"),
        generator=torch.Generator().manual_seed(0),
        groups=groups,
    )


def _shared_grad(trainer: Trainer) -> torch.Tensor:
    return torch.cat([p.grad.reshape(-1) for p in trainer.shared])


def test_random_sample_groups_with_ew_give_k_times_the_mean_sample_gradient():
    """Balanced groups of m = B/k samples: sum_i mean_{G_i} l = (k/B) sum_j l_j."""
    config = RunConfig.from_dict({**BASE, "tasks": ["segmentation"]})
    dataset = components.build_split(config, "train")
    x = torch.stack([dataset[i][0] for i in range(4)])
    y = {"segmentation": torch.stack([dataset[i][1]["segmentation"] for i in range(4)])}
    trainer = _trainer(config, "ew", SampleGroups(2, "random"))
    reference = copy.deepcopy(trainer.model)
    out = trainer.step(x, y)
    assert out.losses.shape == (2,)
    reference.train()
    loss = trainer.losses["segmentation"]
    per_sample = loss(reference(x)["segmentation"], y["segmentation"], reduction="none")
    grads = torch.autograd.grad(per_sample.mean(), reference.shared_parameters())
    expected = 2 * torch.cat([g.reshape(-1) for g in grads])
    torch.testing.assert_close(_shared_grad(trainer), expected, rtol=1e-4, atol=1e-6)


def test_pcgrad_on_conflicting_class_groups_projects_the_shared_gradient():
    """One image, labels 0 and 1 alternating: group 0 (even labels) and group 1 (odd) pull the
    same logits apart. PCGrad's shared gradient is then g0 + g1 minus both projections."""
    config = RunConfig.from_dict(
        {"dataset": "multi-digits", "arch": "small-cnn", "width": 2, "tasks": ["left"]}
    )
    dataset = components.build_split(config, "train")
    x = dataset[0][0].expand(4, *dataset[0][0].shape).clone()
    y = {"left": torch.tensor([0, 1, 0, 1])}
    ew = _trainer(config, "ew", SampleGroups(2, "class"))
    pc = _trainer(config, "pcgrad", SampleGroups(2, "class"))
    pc.model.load_state_dict(ew.model.state_dict())
    for module in (*ew.model.modules(), *pc.model.modules()):
        if isinstance(module, torch.nn.modules.dropout._DropoutNd):
            module.p = 0.0  # the same forward in the probe and in both steps
    probe = copy.deepcopy(ew.model).train()
    per_sample = ew.losses["left"](probe(x)["left"], y["left"], reduction="none")
    g = [
        torch.cat(
            [
                t.reshape(-1)
                for t in torch.autograd.grad(loss, probe.shared_parameters(), retain_graph=True)
            ]
        )
        for loss in (per_sample[0::2].mean(), per_sample[1::2].mean())
    ]
    dot = g[0] @ g[1]
    assert dot < 0  # the groups conflict
    ew.step(x, y), pc.step(x, y)
    expected = g[0] + g[1] - dot * (g[1] / (g[1] @ g[1]) + g[0] / (g[0] @ g[0]))
    torch.testing.assert_close(_shared_grad(ew), g[0] + g[1], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(_shared_grad(pc), expected, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(_shared_grad(pc), _shared_grad(ew), rtol=1e-3)


def test_sample_groups_need_one_task_and_class_needs_classification(tmp_path):
    groups = {"count": 2, "by": "random"}
    with pytest.raises(ValueError, match="single-task runs only"):
        train({**BASE, "sample_groups": groups}, tmp_path / "multi")
    class_groups = {"count": 2, "by": "class"}
    with pytest.raises(ValueError, match="needs a classification task"):
        train({**BASE, "tasks": ["depth"], "sample_groups": class_groups}, tmp_path / "depth")
    with pytest.raises(ValueError, match="count must be an integer >= 2"):
        RunConfig.from_dict({**BASE, "sample_groups": {"count": 1, "by": "random"}})
    config = {**BASE, "tasks": ["segmentation"], "sample_groups": groups, "method": "pcgrad"}
    assert train(config, tmp_path / "grouped") == "finished"
    (line,) = lines(tmp_path / "grouped")
    parts = [line["train/group0_loss"], line["train/group1_loss"]]
    assert line["train/loss"] == pytest.approx(sum(parts))
    assert "val/segmentation_loss" in line


def test_corruption_evaluation_of_a_run(pretrained, tmp_path):
    run_dir = tmp_path / "run"
    assert train({**BASE, "init_from": str(pretrained), "freeze_backbone": True}, run_dir)
    path = evaluate_corruptions(run_dir, ["gaussian_noise", "fog"], [1, 5])
    records = [json.loads(s) for s in path.read_text().splitlines()]
    assert [(r["corruption"], r["severity"]) for r in records] == [
        ("clean", 0), ("gaussian_noise", 1), ("gaussian_noise", 5), ("fog", 1), ("fog", 5),
    ]  # fmt: skip
    best = json.loads((run_dir / "best.json").read_text())
    assert records[0]["metrics"] == pytest.approx(
        {k: v for k, v in best["test"].items() if k != "loss" and not k.endswith("_loss")}
    )
    assert records[2]["metrics"] != records[0]["metrics"]
    before = path.stat().st_mtime_ns
    evaluate_corruptions(run_dir, ["contrast"], [1])  # present: skipped
    assert path.stat().st_mtime_ns == before and (run_dir / RESULTS).is_file()
