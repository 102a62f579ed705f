"""Time and memory of one training step of every MTL method as the number of tasks T grows.

For T = 2, 3, 10, 40, a small hard-parameter-sharing CNN (three 3x3 convolutions with BatchNorm,
8 channels, shared; one 1x1 convolution depth head per task, L1 losses) takes steps on one fixed
batch of 8 inputs of 64x64. One step of method m: zero the gradients, forward, the T losses,
``mtl.backward(losses, m, shared=..., task_params=..., representation=...)``, and the optimizer
step (``mtl.optim`` Adam; the optimizer-level methods step their per-task states with
``task_grads``). FAMO's step includes its logit update from a second, gradient-free forward, as
FAMO needs. DWA runs without epoch boundaries (its per-step cost does not depend on them).

Time: after two warm-up steps of each method, the steps of all methods at one T are interleaved
``--reps`` times; the median is printed, and its ratio to EW's (one backward of the summed loss).
Memory: the peak of the bytes held by torch CPU tensors during one further step, above what was
held when it started, read from the allocation and free events that ``torch.profiler`` records
with ``profile_memory=True`` (so it counts activations, the Jacobian and the new gradients, and
not Python objects or the allocator's slack; ``tracemalloc`` does not see torch's allocations, and
the process's peak RSS would need a fresh process per configuration).

LibMTL 1.1.5 (``--libmtl``, with the shims of ``bench_methods_libmtl.py``) runs its EW, PCGrad,
MGDA, IMTL and GradVac at every T and its CAGrad at T = 3 (it hard-codes three tasks), in the
same interleaved loop, printed beside ours as ``ours / LibMTL``. A last table times CAGrad's
T x T solve alone against the Jacobian it is computed from (the same small CNN).

    python benchmarks/bench_methods_tasks.py [--reps 20] [--tasks ...] [--methods ...] [--threads N]
        [--libmtl]

On a machine shared with other jobs, ``--threads 1`` avoids the slowdown of oversubscribed
threads (10x and more measured on 2 busy cores).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from _shared import add_timing_arguments, apply_timing_arguments, small_cnn
from torch.profiler import ProfilerActivity, profile

import mtl
import mtl.methods
import mtl.optim
from mtl.losses import depth_loss
from mtl.methods import OptimizerLevel, SolverError
from mtl.methods.aggregators import _gramian_np
from mtl.methods.solvers import cagrad_weights
from mtl.methods.weightings import FAMO

#: Our name -> LibMTL 1.1.5 class and its backward keyword arguments (defaults).
LIBMTL = {
    "ew": ("EW", {}),
    "pcgrad": ("PCGrad", {}),
    "mgda": ("MGDA", {"mgda_gn": "none"}),
    "imtl": ("IMTL", {}),
    "gradvac": ("GradVac", {"beta": 0.5}),
    "cagrad": ("CAGrad", {"calpha": 0.5, "rescale": 1}),
}

Step = Callable[[], None]


def make_libmtl_step(name: str, tasks: int, x: torch.Tensor, targets: list[torch.Tensor]) -> Step:
    """One training step of LibMTL 1.1.5's version of ``name`` (same model, torch Adam)."""
    from bench_methods_libmtl import peers

    torch.manual_seed(0)
    model = small_cnn(tasks)
    cls_name, kwargs = LIBMTL[name]
    method = peers.wire(cls_name, tasks, lambda: list(model.encoder.parameters()))
    opt = torch.optim.Adam([*model.parameters(), *method.parameters()], lr=1e-3)

    def step() -> None:
        opt.zero_grad()
        out = model(x)
        losses = torch.stack(
            [depth_loss(out[t], y) for t, y in zip(model.task_names, targets, strict=True)]
        )
        method.backward(losses, **kwargs)
        opt.step()

    return step


def solve_against_jacobian(tasks: int, reps: int) -> tuple[float, float]:
    """Median seconds of the Jacobian of the small CNN's T losses and of CAGrad's solve on it."""
    from mtl.gradients import jacobian

    torch.manual_seed(0)
    model = small_cnn(tasks)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(8, 3, 64, 64, generator=generator)
    targets = [torch.rand(8, 1, 64, 64, generator=generator) for _ in range(tasks)]
    shared = model.shared_parameters()
    jac_times, solve_times = [], []
    for _ in range(reps):
        out = model(x)
        losses = [depth_loss(out[t], y) for t, y in zip(model.task_names, targets, strict=True)]
        start = time.perf_counter()
        jac = jacobian(losses, shared)
        jac_times.append(time.perf_counter() - start)
        gram = _gramian_np(jac)
        start = time.perf_counter()
        cagrad_weights(gram, 0.5)
        solve_times.append(time.perf_counter() - start)
    return statistics.median(jac_times), statistics.median(solve_times)


def make_step(name: str, tasks: int, x: torch.Tensor, targets: list[torch.Tensor]) -> Step:
    """One training step of method ``name`` on its own copy of the model (same initial weights)."""
    torch.manual_seed(0)
    model = small_cnn(tasks)
    cls = mtl.methods.method_class(name)
    method = cls(tasks=tasks) if "tasks" in cls.defaults else cls()
    shared = model.shared_parameters()
    heads = [p for t in model.task_names for p in model.task_parameters(t)]
    if isinstance(method, OptimizerLevel):
        groups = method.param_groups(shared, heads, tasks)
        opt = mtl.optim.build(method.rule_name(), groups, lr=1e-3)
    else:
        opt = mtl.optim.build("adam", [*model.parameters(), *method.parameters()], lr=1e-3)
    on_representation = method.gradient_of == "representation"

    def losses() -> tuple[torch.Tensor, torch.Tensor]:
        out, rep = model(x, return_representation=True)
        stacked = torch.stack(
            [depth_loss(out[t], y) for t, y in zip(model.task_names, targets, strict=True)]
        )
        return stacked, rep

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        stacked, rep = losses()
        record = mtl.backward(
            stacked,
            method,
            shared=shared,
            task_params=heads,
            representation=rep if on_representation else None,
        )
        if record.task_grads is not None:
            opt.step(task_grads=record.task_grads)
        else:
            opt.step()
        if isinstance(method, FAMO):
            with torch.no_grad():
                method.update(losses()[0])

    return step


def peak_bytes(step: Step) -> int:
    """Peak bytes of torch CPU tensors allocated during ``step()`` above those live before it."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = sorted(
        (e.start_ns(), e.nbytes())
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]"
    )
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak


def bench(
    tasks: int, names: list[str], reps: int, weighting=None
) -> dict[str, tuple[float, float] | str]:
    """Median step seconds and peak MiB of each method at ``tasks`` tasks (or its error);
    LibMTL's versions under ``libmtl:<name>`` when ``weighting`` (its module) is given."""
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(8, 3, 64, 64, generator=generator)
    targets = [torch.rand(8, 1, 64, 64, generator=generator) for _ in range(tasks)]
    steps: dict[str, Step] = {}
    results: dict[str, tuple[float, float] | str] = {}
    theirs = [] if weighting is None else [n for n in names if n in LIBMTL]
    if tasks != 3 and "cagrad" in theirs:
        theirs.remove("cagrad")
    makers = [(n, lambda n=n: make_step(n, tasks, x, targets)) for n in names]
    makers += [(f"libmtl:{n}", lambda n=n: make_libmtl_step(n, tasks, x, targets)) for n in theirs]
    for name, make in makers:
        step = make()
        try:
            step()
            step()
        except SolverError as error:
            results[name] = f"SolverError: {error}"[:60]
            continue
        steps[name] = step
    times: dict[str, list[float]] = {name: [] for name in steps}
    for rep in range(reps):
        order = list(steps.items())
        for name, step in order if rep % 2 == 0 else reversed(order):  # cancel order effects
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    for name, step in steps.items():
        results[name] = (statistics.median(times[name]), peak_bytes(step) / 2**20)
    return results


def main(argv: list[str] | None = None) -> dict[int, dict[str, tuple[float, float] | str]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_timing_arguments(parser, reps=20)
    parser.add_argument("--tasks", type=int, nargs="+", default=[2, 3, 10, 40])
    parser.add_argument("--methods", nargs="+", default=list(mtl.methods.NAMES))
    parser.add_argument("--libmtl", action="store_true", help="also time LibMTL 1.1.5's methods")
    args = parser.parse_args(argv)
    apply_timing_arguments(args)
    weighting = None
    if args.libmtl:
        from bench_methods_libmtl import peers

        weighting = peers.import_weighting()
    names = ["ew", *(n for n in args.methods if n != "ew")]
    for name in names:
        mtl.methods.method_class(name)  # unknown names raise with the valid ones
    print(
        f"One training step, small CNN, 64x64 inputs, batch 8; median of {args.reps} "
        f"interleaved repetitions, {torch.get_num_threads()} threads; ratio = time / EW's time"
    )
    out = {}
    for tasks in args.tasks:
        out[tasks] = results = bench(tasks, names, args.reps, weighting)
        base = results["ew"][0]
        print(f"T = {tasks}")
        print(
            f"  {'method':<12} {'kind':<10} {'ms':>9} {'x EW':>7} {'peak MiB':>9}"
            f" {'LibMTL ms':>10} {'ours/LibMTL':>11}"
        )
        for name in names:
            kind = mtl.methods.method_class(name).kind
            result = results[name]
            if isinstance(result, str):
                print(f"  {name:<12} {kind:<10} {result}")
                continue
            seconds, mib = result
            line = f"  {name:<12} {kind:<10} {1e3 * seconds:9.1f} {seconds / base:6.2f}x {mib:9.1f}"
            peer = results.get(f"libmtl:{name}")
            if isinstance(peer, tuple):
                line += f" {1e3 * peer[0]:10.1f} {seconds / peer[0]:10.2f}x"
            elif isinstance(peer, str):
                line += f" {peer}"
            print(line)
    if "cagrad" in names:
        print("CAGrad's T x T solve against the Jacobian it needs (median ms)")
        for tasks in args.tasks:
            jac_s, solve_s = solve_against_jacobian(tasks, args.reps)
            print(
                f"  T = {tasks:<3} Jacobian {1e3 * jac_s:8.1f}  solve {1e3 * solve_s:8.2f}"
                f"  solve / Jacobian {solve_s / jac_s:6.3f}"
            )
    return out


if __name__ == "__main__":
    main()
