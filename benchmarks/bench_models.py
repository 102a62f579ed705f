"""Size and CPU cost of the vision networks.

Parameter counts (shared and per task) of every architecture at its published width, for the
datasets' task layouts (Cityscapes 128x256: 7-class segmentation + depth; NYUv2 288x384: 13-class
segmentation + depth + normals; CelebA 64x64: 40 attributes; multi-digits: two 10-class
tasks); then the median seconds of one forward + backward of the summed outputs (batch
``--batch``) at the small widths of CPU runs, over interleaved repetitions.

    python benchmarks/bench_models.py [--reps 20] [--threads 2] [--batch 8]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from _shared import add_timing_arguments, apply_timing_arguments

from empirical import models
from empirical.datasets import DatasetSpec, TaskSpec
from mtl.model import MultiTaskModel

DENSE = {
    "cityscapes": DatasetSpec(
        "cityscapes",
        (TaskSpec("segmentation", "segmentation", 7), TaskSpec("depth", "depth")),
        (3, 128, 256),
        real=True,
    ),
    "nyuv2": DatasetSpec(
        "nyuv2",
        (
            TaskSpec("segmentation", "segmentation", 13),
            TaskSpec("depth", "depth"),
            TaskSpec("normal", "normal"),
        ),
        (3, 288, 384),
        real=True,
    ),
}
LABELS = {
    "celeba": DatasetSpec(
        "celeba", tuple(TaskSpec(f"a{i}", "binary") for i in range(40)), (3, 64, 64), True
    ),
    "multi-digits": DatasetSpec(
        "multi-digits",
        (TaskSpec("left", "classification", 10), TaskSpec("right", "classification", 10)),
        (1, 28, 28),
        real=False,
    ),
}
COUNTED = {
    "segnet": DENSE,
    "mtan": DENSE,
    "deeplabv3": DENSE,
    "resnet18": {"celeba": LABELS["celeba"]},
    "small-cnn": LABELS,
}
#: (arch, spec, width) timed on the CPU.
TIMED = [
    ("segnet", DENSE["cityscapes"], 8, (64, 128)),
    ("mtan", DENSE["cityscapes"], 8, (64, 128)),
    ("deeplabv3", DENSE["cityscapes"], 8, (64, 128)),
    ("segnet", DENSE["nyuv2"], 16, (64, 128)),
    ("resnet18", LABELS["celeba"], 16, (64, 64)),
    ("small-cnn", LABELS["multi-digits"], None, (28, 28)),
]


def count(model: MultiTaskModel) -> tuple[int, dict[str, int]]:
    def n(params):
        return sum(p.numel() for p in params)

    return n(model.shared_parameters()), {t: n(model.task_parameters(t)) for t in model.task_names}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_timing_arguments(parser, reps=20)
    parser.add_argument("--batch", type=int, default=8, help="batch size of the timed step")
    args = parser.parse_args()
    apply_timing_arguments(args)

    print("parameters at the published width (M = 1e6)")
    for arch, specs in COUNTED.items():
        for name, spec in specs.items():
            with torch.device("meta"):
                shared, tasks = count(models.build(arch, spec))
            per = sorted(set(tasks.values()))
            print(
                f"  {arch:10s} {name:12s} shared {shared / 1e6:8.3f}M  per task "
                f"{'/'.join(f'{p / 1e6:.3f}M' for p in per)}  total "
                f"{(shared + sum(tasks.values())) / 1e6:.3f}M"
            )

    steps = {}
    for arch, spec, width, hw in TIMED:
        spec = DatasetSpec(spec.name, spec.tasks, (spec.image_shape[0], *hw), spec.real)
        model = models.build(arch, spec, width=width)
        x = torch.randn(args.batch, *spec.image_shape)

        def step(model=model, x=x):
            model.zero_grad(set_to_none=True)
            sum(out.float().pow(2).mean() for out in model(x).values()).backward()

        steps[f"{arch} {spec.name} width {width} {hw[0]}x{hw[1]}"] = step
    for step in steps.values():  # warm-up
        step()
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(args.reps):
        for key, step in steps.items():
            start = time.perf_counter()
            step()
            times[key].append(time.perf_counter() - start)
    print(f"forward + backward, batch {args.batch}, {torch.get_num_threads()} threads")
    for key, ts in times.items():
        med = statistics.median(ts)
        print(f"  {key:45s} {med * 1e3:8.1f} ms  {args.batch / med:8.1f} images/s")


if __name__ == "__main__":
    main()
