"""cagrad-toy speed: the batched grid vs a per-run loop in the style of the original toy code.

The per-run loop is what the original ``toy.py`` does for one run: per-step torch autograd on a
2-vector (float32), the method on the 2 task gradients (scipy's bounded ``minimize_scalar`` for
CAGrad) and a ``torch.optim`` step. Both are timed on a slice of ``--steps`` steps, interleaved
``--reps`` times; the medians give seconds per run-step and their ratio, and the loop is scaled
to the whole grid (216 runs x 100k steps, no early stop). ``--full`` also times the complete
grid once (converged runs leave the batch).

    python benchmarks/bench_cagrad_toy.py [--steps 200] [--reps 20] [--full]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from scipy.optimize import minimize_scalar

from sim.problems.cagrad import INITS, LOWER
from sim.studies import cagrad_toy as study


def toy_losses(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x[0], x[1]
    f1 = torch.clamp((0.5 * (-x1 - 7) - torch.tanh(-x2)).abs(), LOWER).log() + 6
    f2 = torch.clamp((0.5 * (-x1 + 3) + torch.tanh(-x2) + 2).abs(), LOWER).log() + 6
    c1 = torch.clamp(torch.tanh(x2 * 0.5), 0)
    f1_sq = ((-x1 + 7).pow(2) + 0.1 * (-x2 - 8).pow(2)) / 10 - 20
    f2_sq = ((-x1 - 7).pow(2) + 0.1 * (-x2 - 8).pow(2)) / 10 - 20
    c2 = torch.clamp(torch.tanh(-x2 * 0.5), 0)
    return torch.stack([f1 * c1 + f1_sq * c2, f2 * c1 + f2_sq * c2])


def original_method(method: str, g: torch.Tensor, c: float = 0.5) -> torch.Tensor:
    g1, g2 = g[:, 0], g[:, 1]
    g11, g12, g22 = g1.dot(g1).item(), g1.dot(g2).item(), g2.dot(g2).item()
    if method == "ew":
        return g.mean(1)
    if method == "pcgrad":
        return ((1 - g12 / g11) * g1 + (1 - g12 / g22) * g2) / 2 if g12 < 0 else (g1 + g2) / 2
    if method == "mgda":
        if g12 < min(g11, g22):
            x = (g22 - g12) / (g11 + g22 - 2 * g12 + 1e-8)
        else:
            x = 1.0 if g11 < g22 else 0.0
        return x * g1 + (1 - x) * g2
    coef = c * 0.5 * np.sqrt(g11 + g22 + 2 * g12 + 1e-4)

    def obj(x: float) -> float:
        quad = x**2 * (g11 + g22 - 2 * g12) + 2 * x * (g12 - g22) + g22 + 1e-4
        return (
            coef * np.sqrt(quad) + 0.5 * x * (g11 + g22 - 2 * g12) + (0.5 + x) * (g12 - g22) + g22
        )

    x = minimize_scalar(obj, bounds=(0, 1), method="bounded").x
    gw = x * g1 + (1 - x) * g2
    gw_norm = np.sqrt(x**2 * g11 + (1 - x) ** 2 * g22 + 2 * x * (1 - x) * g12 + 1e-4)
    return ((g1 + g2) / 2 + coef / (gw_norm + 1e-4) * gw) / (1 + c)


def original_runs(steps: int) -> float:
    """One run per (optimizer, method) at lr 0.05 from init 1; returns seconds per run-step."""
    start, n = time.perf_counter(), 0
    for optimizer in study.OPTIMIZERS:
        for method in study.METHODS:
            x = torch.tensor(INITS[1], dtype=torch.float32, requires_grad=True)
            opt = (torch.optim.Adam if optimizer == "adam" else torch.optim.SGD)([x], lr=0.05)
            for _ in range(steps):
                f = toy_losses(x)
                grads = [torch.autograd.grad(f[t], x, retain_graph=True)[0] for t in range(2)]
                opt.zero_grad()
                x.grad = original_method(method, torch.stack(grads, 1))
                opt.step()
            n += steps
    return (time.perf_counter() - start) / n


def batched_grid(steps: int) -> float:
    """The whole grid as one batch with the criterion unreachable; seconds per run-step."""
    cfg = study.Config(max_steps=steps, loss_tol=1e-300, radius=1e-300)
    start = time.perf_counter()
    study.simulate(cfg)
    return (time.perf_counter() - start) / (steps * len(cfg.runs()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--full", action="store_true", help="also time the complete grid once")
    args = parser.parse_args()
    ours, theirs = [], []
    for _ in range(args.reps):
        ours.append(batched_grid(args.steps))
        theirs.append(original_runs(args.steps))
    o, t = statistics.median(ours), statistics.median(theirs)
    grid = len(study.Config().runs()) * study.MAX_STEPS
    print(f"per run-step, median of {args.reps} interleaved slices of {args.steps} steps:")
    print(f"  batched grid (216 runs)      {o * 1e6:9.3f} us")
    print(f"  original-style per-run loop  {t * 1e6:9.3f} us   ratio loop/batched {t / o:7.1f}x")
    scaled = f"batched {o * grid:7.1f} s, loop {t * grid / 3600:5.1f} h"
    print(f"  scaled to 216 runs x 100k steps without early stop: {scaled}")
    if args.full:
        cfg = study.Config()
        start = time.perf_counter()
        study.simulate(cfg)
        print(f"complete grid with early stop (measured once): {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
