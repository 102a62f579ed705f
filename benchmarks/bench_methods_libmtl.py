"""One training step with PCGrad, CAGrad, IMTL and MGDA: ``mtl.backward`` beside LibMTL 1.1.5.

Both sides train their own copy of the same small hard-parameter-sharing CNN (four 3x3
convolutions with BatchNorm as the shared encoder, one 1x1 convolution head per task, L1 losses)
on the same fixed batch with ``torch.optim.Adam``. One timed step is: zero the gradients, forward,
the T task losses, the method's backward that writes ``.grad``, the optimizer step. LibMTL's side
is its weighting class driven through the ``AbsWeighting`` API (``encoder``, ``get_share_params``,
``zero_grad_share_params``, ``task_num``, ``device``, ``rep_grad=False``, the method's keyword
arguments), as its ``Trainer`` drives it; ours is ``mtl.backward(losses, mtl.methods.get(name),
shared=..., task_params=...)``. IMTL's loss scales are trained on both sides. T = 3, because
LibMTL 1.1.5's CAGrad hard-codes three tasks. After a warm-up, the steps of all eight
(method, library) pairs are interleaved ``--reps`` times (in reversed order every other time);
the medians of wall-clock and of process CPU time and their ratios (ours / LibMTL, target
<= 1.05) are printed.

LibMTL 1.1.5 (``pip install libmtl==1.1.5``, in the ``test`` extra) is imported and wired
through ``tests/methods/peers.py``, which holds its shims for current torch and torchvision (see
that module). Its ``Trainer`` is not used, so its hard-coded ``cuda:0`` and ``iterator.next()``
do not matter.

    python benchmarks/bench_methods_libmtl.py [--reps 50] [--warmup 5] [--size 32] [--batch 16]
        [--threads N]

On a machine shared with other jobs, ``--threads 1`` avoids the slowdown of oversubscribed
threads.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from _shared import add_timing_arguments, apply_timing_arguments, small_cnn

import mtl
import mtl.methods
from mtl.losses import depth_loss
from mtl.model import HardParameterSharing

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "methods"))
import peers  # LibMTL's shims and wiring, shared with the parity tests

TASKS = 3
#: Our registry name and LibMTL's (class name, backward keyword arguments at its defaults).
METHODS: dict[str, tuple[str, dict[str, object]]] = {
    "pcgrad": ("PCGrad", {}),
    "cagrad": ("CAGrad", {"calpha": 0.5, "rescale": 1}),
    "imtl": ("IMTL", {}),
    "mgda": ("MGDA", {"mgda_gn": "none"}),
}


def make_steps(
    name: str, x: torch.Tensor, targets: list[torch.Tensor]
) -> dict[str, Callable[[], None]]:
    """The two training steps (LibMTL's, ours) of method ``name``, on identical model copies."""
    torch.manual_seed(0)
    theirs_model = small_cnn(TASKS, width=16, depth=4)
    ours_model = copy.deepcopy(theirs_model)
    cls_name, kwargs = METHODS[name]
    theirs = peers.wire(cls_name, TASKS, lambda: list(theirs_model.encoder.parameters()))
    ours = mtl.methods.get(name, tasks=TASKS) if name == "imtl" else mtl.methods.get(name)
    theirs_opt = torch.optim.Adam([*theirs_model.parameters(), *theirs.parameters()], lr=1e-3)
    ours_opt = torch.optim.Adam([*ours_model.parameters(), *ours.parameters()], lr=1e-3)
    shared = ours_model.shared_parameters()
    heads = [p for t in ours_model.task_names for p in ours_model.task_parameters(t)]

    def losses(model: HardParameterSharing) -> torch.Tensor:
        out = model(x)
        return torch.stack(
            [depth_loss(out[t], y) for t, y in zip(model.task_names, targets, strict=True)]
        )

    def libmtl_step() -> None:
        theirs_opt.zero_grad()
        theirs.backward(losses(theirs_model), **kwargs)
        theirs_opt.step()

    def ours_step() -> None:
        ours_opt.zero_grad()
        mtl.backward(losses(ours_model), ours, shared=shared, task_params=heads)
        ours_opt.step()

    return {"libmtl": libmtl_step, "ours": ours_step}


def main(argv: list[str] | None = None) -> dict[tuple[str, str], float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_timing_arguments(parser, reps=50)
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps of each first")
    parser.add_argument("--size", type=int, default=32, help="input height and width")
    parser.add_argument("--batch", type=int, default=16, help="batch size")
    args = parser.parse_args(argv)
    apply_timing_arguments(args)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(args.batch, 3, args.size, args.size, generator=generator)
    targets = [
        torch.rand(args.batch, 1, args.size, args.size, generator=generator) for _ in range(TASKS)
    ]
    steps = {
        (name, side): fn for name in METHODS for side, fn in make_steps(name, x, targets).items()
    }
    for step in steps.values():
        for _ in range(args.warmup):
            step()
    clocks = {"wall": time.perf_counter, "cpu": time.process_time}
    times = {(clock, key): [] for clock in clocks for key in steps}
    for rep in range(args.reps):
        order = list(steps.items())
        for key, step in order if rep % 2 == 0 else reversed(order):  # cancel order effects
            start = {clock: now() for clock, now in clocks.items()}
            step()
            for clock, now in clocks.items():
                times[clock, key].append(now() - start[clock])
    medians = {key: statistics.median(ts) for key, ts in times.items()}
    print(
        f"One training step, {TASKS} tasks, {args.size}x{args.size} inputs, batch {args.batch}; "
        f"median of {args.reps} interleaved repetitions, {torch.get_num_threads()} threads "
        "(cpu: this process's CPU seconds, less disturbed by other jobs than wall-clock)"
    )
    print(
        f"  {'method':<8} {'LibMTL ms':>10} {'ours ms':>9} {'ratio':>7}"
        f" {'cpu LibMTL':>11} {'cpu ours':>9} {'cpu ratio':>10}"
    )
    ratios = {}
    for name in METHODS:
        row = []
        for clock in clocks:
            theirs, ours = medians[clock, (name, "libmtl")], medians[clock, (name, "ours")]
            ratios[clock, name] = ours / theirs
            row.append(f"{1e3 * theirs:10.2f} {1e3 * ours:9.2f} {ours / theirs:6.2f}x")
        flag = "" if ratios["wall", name] <= 1.05 else "   <-- above the 1.05 target"
        print(f"  {name:<8} {row[0]} {row[1]:>30}{flag}")
    return ratios


if __name__ == "__main__":
    main()
