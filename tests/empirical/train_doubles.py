"""Small stand-ins for a dataset, an architecture and the metrics, registered under the trainer's
registries by :func:`install`; ``python train_doubles.py CONFIG_JSON RUN_DIR`` runs one config
with them (for tests that run the trainer in a subprocess or under torchrun)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

TOY = "toy-scenes"
ARCHS = ("toy-cnn", "toy-bn")
SIZES = {"train": 24, "val": 8, "test": 8}


def spec(*, size: int = 8, nan_at: int | None = None, shift: float = 0.0):
    from empirical.datasets import DatasetSpec, TaskSpec

    return DatasetSpec(
        TOY,
        (TaskSpec("segmentation", "segmentation", 3), TaskSpec("depth", "depth")),
        (3, size, size),
        real=False,
    )


class ToyScenes(Dataset):
    """Images of noise; the class of a pixel is the argmax of its channels, the depth their sum
    (plus ``shift`` on the test split, so validation and test can disagree)."""

    def __init__(self, split: str, seed: int, size: int, nan_at: int | None, shift: float):
        g = torch.Generator().manual_seed(1000 * seed + list(SIZES).index(split))
        n = SIZES[split]
        self.images = torch.randn(n, 3, size, size, generator=g)
        self.labels = self.images.argmax(1)
        self.depth = self.images.abs().sum(1, keepdim=True) + 0.1
        if split == "test":
            self.depth = self.depth + shift
        if nan_at is not None and split == "train":
            self.depth[nan_at] = float("nan")
        self.augment_noise = 0.0

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.images[i], {"segmentation": self.labels[i], "depth": self.depth[i]}


def build(split, *, root, augment, seed, size: int = 8, nan_at=None, shift: float = 0.0):
    return ToyScenes(split, seed, size, nan_at, shift)


class PoolUnpool(nn.Module):
    """Max-pool with indices and unpool back (SegNet's pair; MaxUnpool2d has no deterministic
    mode in torch)."""

    def __init__(self):
        super().__init__()
        self.pool = nn.MaxPool2d(2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2)

    def forward(self, x):
        return self.unpool(*self.pool(x))


def build_model(arch, spec, *, width=None, pretrained=None):
    from mtl.model import HardParameterSharing

    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; valid archs: {', '.join(ARCHS)}")
    w = width or 6
    layers: list[nn.Module] = [nn.Conv2d(3, w, 3, padding=1)]
    if arch == "toy-bn":  # BatchNorm and SegNet's max-unpooling
        layers += [nn.BatchNorm2d(w), PoolUnpool()]
    layers += [nn.ReLU(), nn.Conv2d(w, w, 3, padding=1), nn.ReLU()]
    outputs = {"segmentation": 3, "depth": 1}
    heads = {t.name: nn.Conv2d(w, outputs[t.kind], 1) for t in spec.tasks}
    return HardParameterSharing(nn.Sequential(*layers), heads)


class ToyMetrics:
    """``pix_acc`` (higher is better) and ``abs_err`` (lower is better) over the set."""

    def __init__(self, tasks):
        self.tasks = tasks
        self.reset()

    def reset(self) -> None:
        self.correct = self.pixels = 0
        self.err = 0.0
        self.count = 0

    def update(self, outputs, targets) -> None:
        if "segmentation" in self.tasks:
            self.correct += int(
                (outputs["segmentation"].argmax(1) == targets["segmentation"]).sum()
            )
            self.pixels += targets["segmentation"].numel()
        if "depth" in self.tasks:
            self.err += float((outputs["depth"] - targets["depth"]).abs().sum())
            self.count += targets["depth"].numel()

    def compute(self):
        out = {}
        if "segmentation" in self.tasks:
            out["pix_acc"] = self.correct / max(self.pixels, 1)
        if "depth" in self.tasks:
            out["abs_err"] = self.err / max(self.count, 1)
        return out


def metrics_for(spec):
    return ToyMetrics(spec.task_names)


def delta_m(metrics, baseline):
    """The paper's Δm: the mean over metrics of -/+ (M - B) / B, in %."""
    higher = {"pix_acc"}
    terms = [
        (-1 if k in higher else 1) * (metrics[k] - baseline[k]) / baseline[k] for k in baseline
    ]
    return 100 * sum(terms) / len(terms)


def install() -> None:
    """Register the doubles in the trainer's registries (the dataset under its name)."""
    import empirical.datasets as datasets
    from empirical.training import components

    datasets.DATASETS[TOY] = (__name__, "test double: noise images, seg + depth")
    components.arch_names = lambda: ARCHS
    components.build_model = build_model
    components.metrics_for = metrics_for
    components.delta_m = delta_m


def toy_config(**changes):
    """A small RunConfig dict for the doubles."""
    return {
        "dataset": TOY,
        "arch": "toy-cnn",
        "method": "ew",
        "optimizer": "adam",
        "lr": 1e-2,
        "epochs": 3,
        "batch_size": 8,
        "device": "cpu",
        **changes,
    }


def die_before_metrics_line(epoch: int) -> None:
    """Make the process vanish (as under kill -9) right after epoch ``epoch``'s checkpoint,
    before its metrics line: the moment where the two files disagree."""
    import os

    from empirical.training import rundir

    append = rundir.append_line

    def append_or_die(path, value):
        if path.name == rundir.METRICS and value["epoch"] == epoch:
            os._exit(9)
        append(path, value)

    rundir.append_line = append_or_die


def ddp_worker(rank: int, world: int, port: int, config: dict, run_dir: str) -> None:
    """One rank of a gloo process group running ``config`` (for torch.multiprocessing.spawn)."""
    import os

    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world)
    )
    torch.set_num_threads(1)
    install()
    from empirical.training import run

    try:
        run(config, run_dir, progress=False)
    finally:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    torch.set_num_threads(1)
    install()
    from empirical.training import run

    config, run_dir = json.loads(Path(sys.argv[1]).read_text()), sys.argv[2]
    if len(sys.argv) > 3:
        die_before_metrics_line(int(sys.argv[3]))
    print(run(config, run_dir, progress=False))
