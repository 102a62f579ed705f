"""Cosine and norm ratio of each method's shared direction against TorchJD 0.18 and LibMTL 1.1.5.

Inputs: fixed (T, P) Jacobians (``--tasks``, ``--dim``, seeds 0..``--seeds``-1, rows N(0, 1)
scaled by ``10^U(-s, s)`` for each ``--spread`` s). LibMTL's weightings take losses, not a
Jacobian: they are driven on the linear losses ``L = J theta`` (plus a constant), whose task
gradients w.r.t. ``theta`` are exactly the rows of J, through the ``AbsWeighting`` API, and ours
through ``mtl.backward`` on the same losses, both by ``tests/methods/peers.py`` (the driver and
shims the parity tests use). Stateful methods take ``--steps`` steps on the same Jacobian and the
last direction is compared. Random methods (PCGrad, GradVac) are compared at
T = 2, where the order does not matter. Printed: one row per (method, peer, spread) with the
minimum cosine and the range of the norm ratio (ours / peer) over the seeds.

    python benchmarks/parity_methods.py [--tasks 3] [--dim 50] [--seeds 5] [--steps 3]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from bench_methods_libmtl import peers

import mtl.methods

D = torch.float64
Direction = Callable[[torch.Tensor], torch.Tensor]

#: ours, TorchJD class and keyword arguments, factor (TorchJD averages where we sum)
TORCHJD = {
    "mgda": ("MGDA", {"epsilon": 1e-12, "max_iters": 100000}, 1.0),
    "imtl-g": ("IMTLG", {}, 1.0),
    "aligned-mtl": ("AlignedMTL", {}, None),  # None: times T
    "pcgrad": ("PCGrad", {}, 1.0),
    "cagrad": ("CAGrad", {"c": 0.5}, None),
    "nash-mtl": ("NashMTL", {"n_tasks": 0, "max_norm": 0.0}, 1.0),  # n_tasks: set to T
    "upgrad": ("UPGrad", {}, 1.0),
    "dualproj": ("DualProj", {}, 1.0),
    "config": ("ConFIG", {}, 1.0),
    "fairgrad": ("FairGrad", {"alpha": 1.0}, 1.0),
    "gradvac": ("GradVac", {}, 1.0),
    "excessmtl": ("ExcessMTL", {"robust_step_size": 1e-2, "n_warmup_steps": 1}, None),
}
#: ours, LibMTL 1.1.5 class and backward keyword arguments
LIBMTL = {
    "ew": ("EW", {}),
    "pcgrad": ("PCGrad", {}),
    "cagrad": ("CAGrad", {"calpha": 0.5, "rescale": 1}),
    "mgda": ("MGDA", {"mgda_gn": "none"}),
    "imtl": ("IMTL", {}),
    "gradvac": ("GradVac", {"beta": 0.5}),
    "gls": ("GLS", {}),
    "uw": ("UW", {}),
    "rlw": ("RLW", {"dist": "Normal"}),  # both sides draw from the same seeded stream
}
RANDOM = {"pcgrad", "gradvac"}


def ours(name: str, tasks: int, steps: int) -> Direction:
    def run(jac: torch.Tensor) -> torch.Tensor:
        cls = mtl.methods.method_class(name)
        method = cls(tasks=tasks) if "tasks" in cls.defaults else cls()
        if isinstance(method, mtl.methods.weightings.ConstantWeighting):
            return method.aggregate_jacobian(jac)[0]
        for _ in range(steps if method.stateful else 1):
            d = method(jac, generator=torch.Generator().manual_seed(0))
        return d

    return run


def torchjd(name: str, tasks: int, steps: int) -> Direction | None:
    cls, kwargs, factor = TORCHJD[name]
    kwargs = {k: tasks if k == "n_tasks" else v for k, v in kwargs.items()}
    try:
        agg = mtl.methods.torchjd_aggregator(cls, **kwargs)
    except ImportError:
        return None

    def run(jac: torch.Tensor) -> torch.Tensor:
        for _ in range(steps):
            d = agg(jac)
        return d * (jac.shape[0] if factor is None else factor)

    return run


def libmtl_pair(name: str, tasks: int, steps: int) -> tuple[Direction, Direction]:
    """(ours, LibMTL's) on the linear losses ``J theta + 1``, ``steps`` times the same J."""
    cls_name, kwargs = LIBMTL[name]

    def problem(jac: torch.Tensor) -> list[peers.Step]:
        return [peers.Step(jac, torch.ones(jac.shape[0], dtype=jac.dtype))] * steps

    def mine(jac: torch.Tensor) -> torch.Tensor:
        cls = mtl.methods.method_class(name)
        method = cls(tasks=tasks).double() if "tasks" in cls.defaults else cls()
        return peers.ours(method, problem(jac))[-1]

    def theirs(jac: torch.Tensor) -> torch.Tensor:
        return peers.libmtl(cls_name, problem(jac), kwargs)[0][-1]

    return mine, theirs


def jacobians(tasks: int, dim: int, seeds: int, spread: float) -> list[torch.Tensor]:
    out = []
    for seed in range(seeds):
        gen = torch.Generator().manual_seed(seed)
        scale = 10 ** (spread * (2 * torch.rand(tasks, 1, generator=gen, dtype=D) - 1))
        out.append(scale * torch.randn(tasks, dim, generator=gen, dtype=D))
    return out


def compare(a: Direction, b: Direction, jacs: list[torch.Tensor]) -> str:
    cosines, ratios = [], []
    for jac in jacs:
        try:
            x, y = a(jac), b(jac)
        except Exception as error:  # a peer's failure is a result to print, not a crash
            return f"error: {type(error).__name__}: {str(error)[:60]}"
        if not bool(torch.isfinite(y).all()):
            return "peer returned non-finite values"
        nx, ny = float(x.norm()), float(y.norm())
        if nx == 0 or ny == 0:
            return f"zero direction (ours {nx:.3g}, peer {ny:.3g})"
        cosines.append(float(x @ y) / (nx * ny))
        ratios.append(nx / ny)
    return f"cos >= {min(cosines):.6f}   norm ratio {min(ratios):.4f} .. {max(ratios):.4f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=3)
    parser.add_argument("--dim", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--spreads", type=float, nargs="+", default=[0.0, 2.0, 4.0])
    args = parser.parse_args(argv)
    torch.set_default_dtype(D)
    for spread in args.spreads:
        print(f"\nper-task scales 10^U(-{spread}, {spread}), T = {args.tasks} (random: T = 2)")
        for name in sorted(set(TORCHJD) | set(LIBMTL)):
            t = 2 if name in RANDOM else args.tasks
            jacs = jacobians(t, args.dim, args.seeds, spread)
            mine = ours(name, t, args.steps)
            if name in TORCHJD:
                peer = torchjd(name, t, args.steps)
                result = "not installed" if peer is None else compare(mine, peer, jacs)
                print(f"{name:12s} TorchJD 0.18  {result}")
            if name in LIBMTL:
                result = compare(*libmtl_pair(name, t, args.steps), jacs)
                print(f"{name:12s} LibMTL 1.1.5  {result}")


if __name__ == "__main__":
    main()
