"""Images/s of a DataLoader over synthetic-scenes beside the training images/s of SegNet on it.

The loader must not be the bottleneck of a training run. Contenders, each timed once per
repetition in interleaved order (so drift of the machine's speed affects them alike):

- ``render``: rendering one scene (``synthetic_scenes.sample``), no loader;
- ``loader cached wN``: one pass over ``--batches`` batches of ``--batch`` images from a fresh
  iterator of a ``DataLoader`` (shuffled, ``augment=True``, ``num_workers`` N = 0 and 2,
  persistent workers) over the train split as built by default (rendered once at construction);
- ``loader uncached wN``: the same with ``cache=False`` (every sample rendered when read);
- ``train step``: one EW step (forward, the three losses of ``mtl.losses`` summed, backward,
  Adam) of ``empirical.models.build("segnet", spec)`` (its default width, or ``--width``) on one
  batch; where ``empirical.models`` is not importable, a stand-in encoder-decoder of SegNet's
  widths (64-512 channels, five poolings) takes its place and is named so.

Printed: the build time of the cached split, the median images/s of each contender, and each
loader's ratio to the train step's images/s (above 1: the loader keeps up).

Run: ``python benchmarks/bench_data_loader.py [--reps 20] [--batch 8] [--batches 4] [--width W]
[--threads N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterator

import torch
from _shared import add_timing_arguments, apply_timing_arguments
from torch import nn
from torch.utils.data import DataLoader

import empirical.datasets as datasets
from empirical.datasets import synthetic_scenes
from mtl.losses import depth_loss, normal_loss, segmentation_loss
from mtl.model import HardParameterSharing, MultiTaskModel


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU())


def stand_in(spec: datasets.DatasetSpec) -> MultiTaskModel:
    """Encoder (64, 128, 256, 512, 512 channels, max-pooled five times) and a mirrored decoder
    (bilinear upsampling), one 3x3 + 1x1 head per task: SegNet's widths and depth."""
    widths = [64, 128, 256, 512, 512]
    layers: list[nn.Module] = []
    for c_in, c_out in zip([spec.image_shape[0], *widths[:-1]], widths, strict=True):
        layers += [_block(c_in, c_out), _block(c_out, c_out), nn.MaxPool2d(2)]
    for c_in, c_out in zip(widths[::-1], [*widths[::-1][1:], 64], strict=True):
        layers += [nn.Upsample(scale_factor=2, mode="bilinear"), _block(c_in, c_out)]
    outs = {"segmentation": spec.task("segmentation").num_classes, "depth": 1, "normal": 3}
    heads = {t: nn.Sequential(_block(64, 64), nn.Conv2d(64, n, 1)) for t, n in outs.items()}
    return HardParameterSharing(nn.Sequential(*layers), heads)


def model_for(spec: datasets.DatasetSpec, width: int | None) -> tuple[MultiTaskModel, str]:
    try:
        from empirical.models import build
    except ImportError:
        return stand_in(spec), "stand-in (empirical.models not importable)"
    return build("segnet", spec, width=width), f"segnet width {width or 'default'}"


def train_step(model: MultiTaskModel, batch) -> Callable[[], None]:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    image, targets = batch
    losses = {"segmentation": segmentation_loss, "depth": depth_loss, "normal": normal_loss}

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        outputs = model(image)
        sum(loss(outputs[t], targets[t]) for t, loss in losses.items()).backward()
        optimizer.step()

    return step


def loader_pass(loader: DataLoader, batches: int) -> Callable[[], None]:
    def run() -> None:
        iterator: Iterator = iter(loader)
        for _ in range(batches):
            next(iterator)
        del iterator

    return run


def _time(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_timing_arguments(parser, reps=20)
    parser.add_argument("--batch", type=int, default=8, help="images per batch")
    parser.add_argument("--batches", type=int, default=4, help="batches per loader pass")
    parser.add_argument("--width", type=int, default=None, help="SegNet width (its default)")
    args = parser.parse_args(argv)
    apply_timing_arguments(args)
    torch.manual_seed(0)

    spec = datasets.spec("synthetic-scenes")
    start = time.perf_counter()
    cached = datasets.build("synthetic-scenes", "train", augment=True)
    build_s = time.perf_counter() - start
    uncached = datasets.build("synthetic-scenes", "train", augment=True, cache=False)
    print(
        f"built the cached train split ({len(cached)} images) in {build_s:.2f} s: "
        f"{len(cached) / build_s:.0f} images/s rendered"
    )

    model, model_name = model_for(spec, args.width)
    model.train()
    batch = next(iter(DataLoader(cached, batch_size=args.batch)))
    options = synthetic_scenes.Options()
    counter = iter(range(10**9))
    contenders: dict[str, tuple[Callable[[], None], int]] = {
        "render": (lambda: synthetic_scenes.sample(0, "train", next(counter), options), 1),
    }
    for name, data in (("cached", cached), ("uncached", uncached)):
        for workers in (0, 2):
            loader = DataLoader(
                data,
                batch_size=args.batch,
                shuffle=True,
                num_workers=workers,
                persistent_workers=workers > 0,
            )
            contenders[f"loader {name} w{workers}"] = (
                loader_pass(loader, args.batches),
                args.batch * args.batches,
            )
    contenders[f"train step ({model_name})"] = (train_step(model, batch), args.batch)

    for fn, _ in contenders.values():  # warm-up: worker start, first allocations
        fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.reps):
        for name, (fn, _) in contenders.items():
            times[name].append(_time(fn))

    rates = {n: contenders[n][1] / statistics.median(t) for n, t in times.items()}
    train = rates[f"train step ({model_name})"]
    print(f"{'contender':48s} {'images/s':>10s} {'/ train':>8s}")
    for name, rate in rates.items():
        print(f"{name:48s} {rate:10.1f} {rate / train:8.1f}x")
    return rates


if __name__ == "__main__":
    main()
