"""The GPU path in one short script: a training step of every architecture at the paper's
resolution on the accelerator, AMP on and off, channels_last on and off, images/s and peak
memory; then a few trainer steps of each full-scale setup on fixture data written in the real
on-disk formats.

    python benchmarks/gpu_check.py [--device cuda] [--steps 10] [--out DIR]

Prints one line per measurement and writes ``gpu_check.json`` to ``--out``. On a CPU it runs at a
reduced size (``--tiny``) so the script itself stays tested where no GPU is lent.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

import mtl
import mtl.methods
import mtl.optim
from empirical.datasets import DatasetSpec, TaskSpec
from empirical.models import build
from mtl.losses import get_loss

SETUPS = {
    "cityscapes": (
        (3, 128, 256),
        (("segmentation", "segmentation", 7), ("depth", "depth", None)),
        64,
    ),
    "nyuv2": (
        (3, 288, 384),
        (
            ("segmentation", "segmentation", 13),
            ("depth", "depth", None),
            ("normal", "normal", None),
        ),
        8,
    ),
}
ARCHS = ("segnet", "mtan", "deeplabv3")


def _targets(spec: DatasetSpec, batch: int, device) -> dict[str, torch.Tensor]:
    _, h, w = spec.image_shape
    out = {}
    for t in spec.tasks:
        if t.kind == "segmentation":
            out[t.name] = torch.randint(0, t.num_classes, (batch, h, w), device=device)
        elif t.kind == "depth":
            out[t.name] = torch.rand(batch, 1, h, w, device=device) + 0.1
        else:
            out[t.name] = torch.nn.functional.normalize(torch.randn(batch, 3, h, w, device=device))
    return out


def step_time(arch, spec, batch, device, amp, channels_last, steps) -> dict:
    model = build(arch, spec).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = mtl.optim.build("adam", model.parameters(), lr=1e-4)
    method = mtl.methods.get("ew")
    x = torch.rand(batch, *spec.image_shape, device=device)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    targets = _targets(spec, batch, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp and device.type == "cuda")
    times = []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for i in range(steps + 2):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(
            device.type,
            dtype=torch.bfloat16 if device.type == "cpu" else torch.float16,
            enabled=amp,
        ):
            outputs = model(x)
            losses = [
                get_loss(t.kind)(outputs[t.name].float(), targets[t.name]) for t in spec.tasks
            ]
        if scaler.is_enabled():
            mtl.backward(
                [scaler.scale(l) for l in losses], method, shared=model.shared_parameters()
            )
            scaler.step(opt)
            scaler.update()
        else:
            mtl.backward(losses, method, shared=model.shared_parameters())
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= 2:
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"step_s": median, "images_per_s": batch / median, "peak_gib": peak}


def trainer_smoke(dataset: str, arch: str, device: str, tiny: bool) -> dict:
    """A few steps of the trainer on fixture data in the dataset's real format."""
    from empirical.datasets import fixtures
    from empirical.training import run

    (_, h, w), _, batch = SETUPS[dataset]
    size = (32, 64) if tiny else (h, w)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / dataset
        writer = fixtures.write_cityscapes if dataset == "cityscapes" else fixtures.write_nyuv2
        writer(root, n_train=2 * min(batch, 8) + 2, n_val=2, size=size)
        config = {"dataset": dataset, "data_root": str(root), "arch": arch, "epochs": 1,
                  "batch_size": min(batch, 8), "device": device, "augment": True,
                  "dataset_options": {"val_size": 2}, "width": 4 if tiny else None}  # fmt: skip
        start = time.perf_counter()
        state = run(config, Path(tmp) / "run", progress=False)
        return {"state": state, "wall_s": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--tiny", action="store_true", help="small images (for a CPU)")
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args()
    device = torch.device(args.device)
    tiny = args.tiny or device.type == "cpu"
    results = []
    for dataset, (shape, tasks, batch) in SETUPS.items():
        if tiny:
            shape, batch = (3, 64, 64), 2
        spec = DatasetSpec(dataset, tuple(TaskSpec(*t) for t in tasks), shape, True)
        for arch in ARCHS:
            for amp in (False, True):
                for channels_last in (False, True):
                    r = step_time(arch, spec, batch, device, amp, channels_last, args.steps)
                    r |= {"dataset": dataset, "arch": arch, "amp": amp,
                          "channels_last": channels_last, "batch": batch}  # fmt: skip
                    results.append(r)
                    print(json.dumps(r), flush=True)
        for arch in ("segnet", "deeplabv3"):
            r = trainer_smoke(dataset, arch, args.device, tiny) | {"dataset": dataset, "arch": arch}
            results.append({"trainer_smoke": r})
            print(json.dumps({"trainer_smoke": r}), flush=True)
    (args.out / "gpu_check.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
