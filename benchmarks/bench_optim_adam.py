"""Adam step of ``mtl.optim`` (default and ``fused=True``) against ``torch.optim.Adam``
(foreach and fused) on ResNet-18.

Four copies of ResNet-18's parameters (``weights=None``: nothing is downloaded) share one
fixed random gradient. The four optimizers are stepped in interleaved order, so drift of the
machine's speed affects them alike; after a warm-up, the median step time of each over the
repetitions is printed with the ratios of each ``mtl.optim`` time to its torch counterpart.

Run: ``python benchmarks/bench_optim_adam.py [--reps 30] [--warmup 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torchvision

import mtl.optim


def _params(grads: list[torch.Tensor]) -> list[torch.nn.Parameter]:
    """Fresh parameters (ResNet-18's shapes) holding ``grads`` as their gradients."""
    model = torchvision.models.resnet18(weights=None)
    params = [p for p in model.parameters()]
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    return params


def _time(step: Callable[[], object]) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=30, help="timed repetitions (>= 20)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps of each first")
    args = parser.parse_args(argv)
    if args.reps < 20:
        raise ValueError(f"--reps={args.reps}: medians need at least 20 repetitions")
    torch.manual_seed(0)
    shapes = [p.shape for p in torchvision.models.resnet18(weights=None).parameters()]
    grads = [torch.randn(s) for s in shapes]
    optimizers = {
        "mtl.optim adam": mtl.optim.build("adam", _params(grads), lr=1e-3),
        "mtl.optim adam fused": mtl.optim.build("adam", _params(grads), lr=1e-3, fused=True),
        "torch Adam foreach": torch.optim.Adam(_params(grads), lr=1e-3, foreach=True),
        "torch Adam fused": torch.optim.Adam(_params(grads), lr=1e-3, fused=True),
    }
    for opt in optimizers.values():
        for _ in range(args.warmup):
            opt.step()
    times: dict[str, list[float]] = {name: [] for name in optimizers}
    for _ in range(args.reps):
        for name, opt in optimizers.items():
            times[name].append(_time(opt.step))
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    n = sum(g.numel() for g in grads)
    print(
        f"Adam step on ResNet-18 ({n / 1e6:.1f} M parameters, {len(grads)} tensors), "
        f"median of {args.reps} interleaved repetitions, {torch.get_num_threads()} threads"
    )
    for name, median in medians.items():
        print(f"  {name:<22} {1e3 * median:8.2f} ms")
    ours, fused = medians["mtl.optim adam"], medians["mtl.optim adam fused"]
    foreach_ref, fused_ref = medians["torch Adam foreach"], medians["torch Adam fused"]
    print(f"  mtl.optim / torch foreach:             {ours / foreach_ref:.2f}x (target <= 1.25x)")
    print(f"  mtl.optim fused / torch fused:         {fused / fused_ref:.2f}x (target <= 1.1x)")
    print(f"  mtl.optim (default) / torch fused:     {ours / fused_ref:.2f}x")
    return medians


if __name__ == "__main__":
    main()
