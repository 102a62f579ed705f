"""Speed of the gradient engine: loop vs batched Jacobian, and per-sample gradients.

Jacobian of the shared parameters of a small CNN (64x64 inputs, batch 8) for T = 2, 3, 10, 40
tasks, as a multiple of one forward + backward of the summed loss; the "auto" path must be the
faster one. Per-sample gradients of 8 samples x 3 tasks, in-batch and independent, beside a
Python loop over the samples. Medians of interleaved repetitions, printed as ratios.

    python benchmarks/bench_gradients.py [--reps 20]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from _shared import small_cnn

from mtl.gradients import choose_method, jacobian, per_sample_gradients
from mtl.losses import depth_loss

TIE = 0.05
"""Medians within 5% of each other count as a tie: repeated runs here move by about that much."""


def interleaved(fns: dict[str, Callable[[], object]], reps: int) -> dict[str, float]:
    """Median seconds of each function over ``reps`` rounds that run every function once."""
    for fn in fns.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def bench_jacobian(tasks: int, reps: int) -> None:
    torch.manual_seed(0)
    model = small_cnn(tasks)
    x = torch.randn(8, 3, 64, 64)
    targets = {t: torch.rand(8, 1, 64, 64) for t in model.task_names}
    shared = model.shared_parameters()

    def losses() -> list[torch.Tensor]:
        out = model(x)
        return [depth_loss(out[t], targets[t]) for t in model.task_names]

    def step() -> None:
        model.zero_grad(set_to_none=True)
        torch.stack(losses()).sum().backward()

    times = interleaved(
        {
            "step": step,
            "loop": lambda: jacobian(losses(), shared, method="loop"),
            "batched": lambda: jacobian(losses(), shared, method="batched"),
        },
        reps,
    )
    ratio = times["batched"] / times["loop"]
    faster = "tie" if abs(ratio - 1) <= TIE else min(("loop", "batched"), key=times.__getitem__)
    size = tasks * sum(p.numel() for p in shared) * 4
    print(
        f"T={tasks:3d}  step {times['step'] * 1e3:7.1f} ms"
        f"   loop {times['loop'] / times['step']:5.2f}x"
        f"   batched {times['batched'] / times['step']:5.2f}x   batched/loop "
        f"{times['batched'] / times['loop']:5.2f}   Jacobian {size / 2**20:.2f} MiB   "
        f"auto={choose_method(x.device)} faster={faster}"
        + ("" if faster in ("tie", choose_method(x.device)) else "   <-- auto is the slower path")
    )


def bench_per_sample(reps: int) -> None:
    torch.manual_seed(0)
    model = small_cnn(3)
    x = torch.randn(8, 3, 64, 64)
    targets = {t: torch.rand(8, 1, 64, 64) for t in model.task_names}
    losses = dict.fromkeys(model.task_names, depth_loss)
    shared = model.shared_parameters()

    def python_loop() -> torch.Tensor:
        """Each sample as a batch of one (eval-mode BN), one backward pass per task."""
        model.eval()
        rows = []
        for i in range(8):
            out = model(x[i : i + 1])
            rows.append(
                jacobian(
                    [depth_loss(out[t], targets[t][i : i + 1]) for t in model.task_names], shared
                )
            )
        model.train()
        return torch.stack(rows, dim=1)

    times = interleaved(
        {
            "python loop": python_loop,
            "in-batch": lambda: per_sample_gradients(model, x, targets, losses, mode="in-batch"),
            "independent": lambda: per_sample_gradients(
                model, x, targets, losses, mode="independent"
            ),
        },
        reps,
    )
    base = times["python loop"]
    print(
        f"per-sample 8 x 3: python loop {base * 1e3:.1f} ms; "
        + "; ".join(f"{k} {v / base:.2f}x" for k, v in times.items() if k != "python loop")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU, float32")
    for tasks in (2, 3, 10, 40):
        bench_jacobian(tasks, args.reps)
    bench_per_sample(args.reps)


if __name__ == "__main__":
    main()
