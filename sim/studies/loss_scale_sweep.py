"""loss-scale-sweep: loss-scale ratio x optimizer x learning rate x seed on the quadratic family.

Problem: :meth:`sim.problems.quadratic.Quadratic.make` with two tasks (shared dim 4, head dim 3,
16 samples, condition 10, noise 0.5), full batch, analytic gradients. With
``theta_t = (phi, psi_t)``, ``H_t = M_t^T M_t / n`` and ``c_t = M_t^T y_t / n`` for the design
``M_t = [A_t B_t]``, the unscaled loss is ``L_t = theta_t^T H_t theta_t / 2 - c_t^T theta_t + e_t``.

Scales: a ratio ``r = alpha_1 / alpha_2`` is run as ``alpha = (sqrt r, 1 / sqrt r)`` (product 1),
so ``r = 1`` is the unscaled twin of every run. Optimizers (``mtl.optim`` rules on the NUMPY
backend; every run of one optimizer advances as one batched computation with per-run learning
rates; a run leaves the batch when its update falls below ``tol`` or it leaves the finite
numbers): ``sgd``, ``sgdm`` (momentum 0.9), ``adam``, ``adamw`` (weight decay 1e-2),
``signsgd`` on ``sum_t alpha_t L_t``; ``adam-per-task`` (one Adam state per task, sum of the
per-task updates); ``uwo-sgd``, ``uwo-adam`` on UW-O, whose gradient is
``sum_t alpha_t g_t / (alpha_t L_t) = sum_t g_t / L_t`` (paper Eq. 10-11).

Outputs per run: the final unscaled losses; the Pareto front in closed form (minimisers
``theta*(w)`` of ``w L_1 + (1 - w) L_2``, one linear system per w on a logit grid), the distance
of the final point to it (parameter space) and the ``w`` of the nearest minimiser (EW at a
stationary point sits at ``w = r / (1 + r)``); the first head updates and the final losses
divided by those of the unscaled twin (same optimizer, lr, seed). ``summary.csv`` /
``summary.md``: per optimizer and ratio, the learning rate nearest to the front per seed and the
medians over seeds of its row.

Per-task Adam and the Pareto front (a real property, not a bug or a too-short run). Per-task
Adam ends about 0.3-0.4 from the front at every learning rate. :func:`per_task_adam_probe`
(``per_task_adam.csv``) reruns it at ``r = 1`` for ``probe_steps`` steps (default 3000 and
30000), with constant and with ``lr / sqrt(k)``-decaying learning rates: the distance stays the
same (lr 1e-2, seed 0: 0.4295 at 3000 and 0.4294 at 30000 steps; decaying lr 1e-1: 0.3934 at
both), the heads' gradients reach ~1e-10 and the update ~1e-11, so the runs converge rather than
oscillate. At the end every shared coordinate has task gradients of opposite signs, while the
two shared gradients are not anti-parallel (cosine about -0.83, where Pareto stationarity with
converged heads needs -1). The reason: each task's Adam update tends to ``-lr m_t / sqrt(v_t)``,
which for a steady gradient is ``-lr sign(g_t)`` coordinate-wise, so the sum of the two updates
vanishes wherever ``sign(g_1) = -sign(g_2)`` in every shared coordinate, whatever the gradients'
magnitudes. That set has positive measure and contains the Pareto-stationary points but is far
larger: per-task Adam stops where its shared coordinates first enter it. Its fixed points are
sign-stationary (as signSGD's are), not Pareto-stationary.
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from mtl.io import atomic_write_text, write_csv
from mtl.optim import NUMPY, get_rule
from sim.problems.quadratic import Quadratic

NAME = "loss-scale-sweep"
THREADS = 1
"""numpy on (runs, 7, 7) arrays: one thread is fastest."""
SHARED, HEAD, SAMPLES = 4, 3, 16
OPTIMIZERS: dict[str, tuple[str, dict, str]] = {
    "sgd": ("sgd", {}, "sum"),
    "sgdm": ("sgd", {"momentum": 0.9}, "sum"),
    "adam": ("adam", {}, "sum"),
    "adamw": ("adamw", {"weight_decay": 1e-2}, "sum"),
    "signsgd": ("signsgd", {}, "sum"),
    "adam-per-task": ("adam", {}, "per-task"),
    "uwo-sgd": ("sgd", {}, "uwo"),
    "uwo-adam": ("adam", {}, "uwo"),
}
"""Study name -> (mtl.optim rule, hyperparameters, how the task gradients are combined)."""
RATIOS = tuple(10.0**e for e in np.arange(-4, 4.5, 0.5))
LRS = (1e-3, 1e-2, 1e-1)
STEPS = 3000
PROBE_STEPS = (3000, 30000)
QUICK = {
    "ratios": (1e-2, 1.0, 1e2),
    "lrs": (1e-2,),
    "seeds": (0,),
    "steps": 300,
    "probe_steps": (300, 3000),
}
SCHEDULES = ("constant", "1/sqrt(k)")
FRONT_LOGITS = np.linspace(-14, 14, 561)


@dataclass(frozen=True)
class Config:
    """One study configuration; ``config.json`` of an output folder is ``asdict`` of it."""

    optimizers: tuple[str, ...] = tuple(OPTIMIZERS)
    ratios: tuple[float, ...] = RATIOS
    lrs: tuple[float, ...] = LRS
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = STEPS
    tol: float = 1e-12
    probe_steps: tuple[int, ...] = PROBE_STEPS

    def __post_init__(self) -> None:
        unknown = [o for o in self.optimizers if o not in OPTIMIZERS]
        if unknown or not self.optimizers:
            raise ValueError(f"unknown or no optimizer {unknown}; valid: {', '.join(OPTIMIZERS)}")
        for key in ("ratios", "lrs"):
            values = tuple(float(v) for v in getattr(self, key))
            if not values or not all(np.isfinite(v) and v > 0 for v in values):
                raise ValueError(f"{key} must be finite numbers > 0, got {values}")
            object.__setattr__(self, key, values)
        if 1.0 not in self.ratios:
            raise ValueError("ratios must contain 1 (the unscaled twin of every run)")
        if int(self.steps) < 1 or not self.seeds:
            raise ValueError("steps must be >= 1 and at least one seed is needed")
        probe = tuple(sorted({int(k) for k in self.probe_steps}))
        if probe and probe[0] < 1:
            raise ValueError(f"probe_steps must be >= 1, got {self.probe_steps}")
        object.__setattr__(self, "probe_steps", probe)


@dataclass(frozen=True)
class Problem:
    """Stacked normal forms of the seeds' quadratics (:meth:`Quadratic.normal_form`): ``H``
    (S, T, w, w), ``c`` (S, T, w), ``e`` (S, T), initial parameters ``x0`` (S, P), and the
    ``quadratics`` themselves (for the Pareto front)."""

    H: np.ndarray
    c: np.ndarray
    e: np.ndarray
    x0: np.ndarray
    quadratics: tuple[Quadratic, ...]

    @classmethod
    def make(cls, seeds: tuple[int, ...]) -> Problem:
        qs = tuple(
            Quadratic.make(shared_dim=SHARED, head_dim=HEAD, samples=SAMPLES, seed=seed)
            for seed in seeds
        )
        forms = [[a.numpy() for a in q.normal_form()] for q in qs]
        x0 = [torch.cat([q.phi, *map(q.psi, range(q.tasks))]).detach().numpy() for q in qs]
        H, c, e = (np.stack(arrays) for arrays in zip(*forms, strict=True))
        return cls(H, c, e, np.stack(x0), qs)


def task_thetas(x: np.ndarray) -> np.ndarray:
    """Flat (N, P) parameters ``(phi, psi_1, psi_2)`` -> (N, T, w), ``theta_t = (phi, psi_t)``."""
    phi = x[:, :SHARED]
    return np.stack(
        [
            np.concatenate([phi, x[:, SHARED + t * HEAD : SHARED + (t + 1) * HEAD]], 1)
            for t in (0, 1)
        ],
        axis=1,
    )


def losses_and_grads(x: np.ndarray, H, c, e) -> tuple[np.ndarray, np.ndarray]:
    """Unscaled losses (N, T) and their gradients in flat coordinates (N, T, P)."""
    theta = task_thetas(x)
    Ht = np.einsum("ntij,ntj->nti", H, theta)
    loss = 0.5 * np.einsum("nti,nti->nt", theta, Ht) - np.einsum("nti,nti->nt", c, theta) + e
    g = Ht - c
    grads = np.zeros((x.shape[0], 2, x.shape[1]))
    for t in (0, 1):
        grads[:, t, :SHARED] = g[:, t, :SHARED]
        grads[:, t, SHARED + t * HEAD : SHARED + (t + 1) * HEAD] = g[:, t, SHARED:]
    return loss, grads


def pareto_front(problem: Problem, logits: np.ndarray = FRONT_LOGITS) -> np.ndarray:
    """Minimisers (S, W, P) of ``w L_1 + (1 - w) L_2`` for ``w = sigmoid(logits)``
    (:meth:`Quadratic.pareto_front`, one linear solve per w), flat as ``(phi, psi_1, psi_2)``."""
    w = torch.from_numpy(1 / (1 + np.exp(-logits)))
    return np.stack([q.pareto_front(w).flat().numpy() for q in problem.quadratics])


@dataclass(frozen=True)
class Run:
    optimizer: str
    ratio: float
    lr: float
    seed: int


@dataclass
class Result:
    config: Config
    runs: list[Run]
    final: np.ndarray  # (N, P)
    first_head_update: np.ndarray  # (N, T) norms of the first update of each head
    steps: np.ndarray  # (N,) steps taken
    status: list[str]


def simulate(config: Config, progress: bool = False) -> Result:
    """Every run; each optimizer's runs advance as one batch, finished runs leave it."""
    problem = Problem.make(tuple(config.seeds))
    runs = [
        Run(o, r, lr, s)
        for o, r, lr, s in itertools.product(
            config.optimizers, config.ratios, config.lrs, config.seeds
        )
    ]
    n, p = len(runs), problem.x0.shape[1]
    final, first = np.zeros((n, p)), np.zeros((n, 2))
    steps, status = np.zeros(n, dtype=int), ["max_steps"] * n
    bar = tqdm(total=n, disable=not progress, desc=NAME, unit="run")
    with np.errstate(over="ignore", invalid="ignore"):  # diverging runs leave the batch
        for name in config.optimizers:
            ids = np.array([i for i, r in enumerate(runs) if r.optimizer == name])
            rule_name, hp, mode = OPTIMIZERS[name]
            rule = get_rule(rule_name)
            seed_idx = np.array([config.seeds.index(runs[i].seed) for i in ids])
            ratio = np.array([runs[i].ratio for i in ids])
            alpha = np.stack([np.sqrt(ratio), 1 / np.sqrt(ratio)], 1)
            lr = np.array([runs[i].lr for i in ids])[:, None]
            H, c, e = problem.H[seed_idx], problem.c[seed_idx], problem.e[seed_idx]
            x = problem.x0[seed_idx].copy()
            copies = 2 if mode == "per-task" else 1
            states = [rule.init_state(NUMPY, x, **hp) for _ in range(copies)]
            for k in range(1, config.steps + 1):
                loss, grads = losses_and_grads(x, H, c, e)
                if mode == "per-task":
                    new = x.copy()
                    for t in (0, 1):
                        moved = rule.step(
                            NUMPY, x, alpha[:, t, None] * grads[:, t], states[t], k, lr=lr, **hp
                        )
                        new += moved - x
                else:
                    weight = 1 / loss if mode == "uwo" else alpha  # UW-O: alpha_t / (alpha_t L_t)
                    grad = np.einsum("nt,ntp->np", weight, grads)
                    new = rule.step(NUMPY, x, grad, states[0], k, lr=lr, **hp)
                delta = new - x
                if k == 1:
                    for t in (0, 1):
                        sl = slice(SHARED + t * HEAD, SHARED + (t + 1) * HEAD)
                        first[ids, t] = np.linalg.norm(delta[:, sl], axis=1)
                x = new
                done = np.abs(delta).max(1) < config.tol
                bad = ~np.isfinite(x).all(1)
                leave = done | bad | (k == config.steps)
                if leave.any():
                    for j in np.flatnonzero(leave):
                        i = ids[j]
                        final[i], steps[i] = x[j], k
                        status[i] = (
                            "diverged" if bad[j] else ("converged" if done[j] else "max_steps")
                        )
                    bar.update(int(leave.sum()))
                    keep = ~leave
                    ids, x, lr, alpha = ids[keep], x[keep], lr[keep], alpha[keep]
                    H, c, e = H[keep], c[keep], e[keep]
                    states = [{key: v[keep] for key, v in s.items()} for s in states]
                if ids.size == 0:
                    break
    bar.close()
    return Result(config, runs, final, first, steps, status)


PROBE_HEADER = (
    "seed",
    "lr",
    "schedule",
    "steps",
    "front_distance",
    "last_update_max",
    "opposite_sign_fraction",
    "shared_cosine",
    "head_grad_max",
)


def per_task_adam_probe(config: Config) -> list[tuple]:
    """Per-task Adam at ratio 1 for each seed, lr and schedule (constant, ``lr / sqrt(k)``),
    measured after each of ``config.probe_steps`` steps: the distance to the Pareto front, the
    largest coordinate of the last update, the fraction of shared coordinates where the two
    task gradients have opposite signs, the cosine of the two shared gradients (-1 at a
    Pareto-stationary point with converged heads) and the larger head-gradient norm."""
    if not config.probe_steps:
        return []
    problem = Problem.make(tuple(config.seeds))
    front = pareto_front(problem)
    rule = get_rule("adam")
    combos = list(itertools.product(range(len(config.seeds)), config.lrs, SCHEDULES))
    seed_idx = np.array([c[0] for c in combos])
    base = np.array([c[1] for c in combos])[:, None]
    decay = np.array([c[2] != "constant" for c in combos])[:, None]
    H, c, e = problem.H[seed_idx], problem.c[seed_idx], problem.e[seed_idx]
    x = problem.x0[seed_idx].copy()
    states = [rule.init_state(NUMPY, x) for _ in (0, 1)]
    rows = []
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(1, config.probe_steps[-1] + 1):
            lr = np.where(decay, base / np.sqrt(k), base)
            _, grads = losses_and_grads(x, H, c, e)
            new = x.copy()
            for t in (0, 1):
                new += rule.step(NUMPY, x, grads[:, t], states[t], k, lr=lr) - x
            delta, x = new - x, new
            if k not in config.probe_steps:
                continue
            _, grads = losses_and_grads(x, H, c, e)
            shared = grads[:, :, :SHARED]
            opposite = (np.sign(shared[:, 0]) == -np.sign(shared[:, 1])).mean(1)
            norms = np.linalg.norm(shared, axis=2)
            cosine = (shared[:, 0] * shared[:, 1]).sum(1) / (norms[:, 0] * norms[:, 1])
            heads = [
                np.linalg.norm(grads[:, t, SHARED + t * HEAD : SHARED + (t + 1) * HEAD], axis=1)
                for t in (0, 1)
            ]
            dist = np.linalg.norm(x[:, None, :] - front[seed_idx], axis=2).min(1)
            for i, (s_i, lr0, schedule) in enumerate(combos):
                rows.append(
                    (
                        config.seeds[s_i],
                        repr(lr0),
                        schedule,
                        k,
                        repr(float(dist[i])),
                        repr(float(np.abs(delta[i]).max())),
                        repr(float(opposite[i])),
                        repr(float(cosine[i])),
                        repr(float(max(heads[0][i], heads[1][i]))),
                    )
                )
    return rows


def _probe_finding(rows: list[tuple]) -> str:
    """The computed finding: the distance change of constant-lr runs between the last two
    checkpoints, and the sign and cosine condition at the last one."""
    steps = sorted({r[3] for r in rows})
    const = [r for r in rows if r[2] == "constant"]
    at = {k: [float(r[4]) for r in const if r[3] == k] for k in steps}
    last = [r for r in const if r[3] == steps[-1]]
    all_opposite = np.mean([float(r[6]) == 1.0 for r in last])
    cosine = float(np.median([float(r[7]) for r in last]))
    end = float(np.median(at[steps[-1]]))
    change = (
        f"the distance to the front changes by {end - float(np.median(at[steps[-2]])):+.4f} "
        f"from {steps[-2]} to {steps[-1]} steps (median {end:.4f})"
        if len(steps) > 1
        else f"the distance to the front is {end:.4f}"
    )
    return (
        f"Finding (computed, constant lr): {change}; after {steps[-1]} steps "
        f"{all_opposite:.0%} of the runs have opposite-sign shared gradients in every "
        f"coordinate, median shared cosine {cosine:+.3f}."
    )


def probe_markdown(rows: list[tuple]) -> str:
    """The probe's table and what it shows (medians over seeds)."""
    lines = [
        "## Per-task Adam: why it stops away from the Pareto front",
        "",
        "Ratio 1, medians over seeds (per_task_adam.csv). A too-short run would get nearer with "
        "more steps, an oscillation would shrink with a decaying learning rate. The "
        "explanation: each task's Adam update tends to -lr sign(g_t), and the two cancel "
        "wherever the shared task gradients have opposite signs in every coordinate, whatever "
        "their magnitudes; so per-task Adam's fixed points are sign-stationary, a larger set "
        "than the Pareto-stationary points (shared gradients anti-parallel, cosine -1).",
        "",
        _probe_finding(rows),
        "",
        "| lr | schedule | steps | front distance | last max update | opposite-sign fraction "
        "| shared cosine | head gradient |",
        "|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str, int], list[tuple]] = {}
    for row in rows:
        groups.setdefault((row[1], row[2], row[3]), []).append(row)
    for (lr, schedule, steps), members in groups.items():
        med = [float(np.median([float(m[j]) for m in members])) for j in range(4, 9)]
        lines.append(
            f"| {float(lr):g} | {schedule} | {steps} | {med[0]:.4f} | {med[1]:.1e} | "
            f"{med[2]:.2f} | {med[3]:+.3f} | {med[4]:.1e} |"
        )
    return "\n".join(lines) + "\n"


HEADER = (
    "optimizer",
    "ratio",
    "lr",
    "seed",
    "status",
    "steps",
    "loss1",
    "loss2",
    "front_distance",
    "front_w",
    "ew_stationary_w",
    "head1_update_ratio",
    "head2_update_ratio",
    "loss1_ratio",
    "loss2_ratio",
)


def rows(result: Result) -> list[tuple]:
    """Rows of runs.csv (see the module); ratios compare with the run at ``r = 1``."""
    cfg = result.config
    problem = Problem.make(tuple(cfg.seeds))
    front = pareto_front(problem)  # (S, W, P)
    w_grid = 1 / (1 + np.exp(-FRONT_LOGITS))
    index = {r: i for i, r in enumerate(result.runs)}
    seed_idx = np.array([cfg.seeds.index(r.seed) for r in result.runs])
    with np.errstate(all="ignore"):
        loss, _ = losses_and_grads(
            result.final, problem.H[seed_idx], problem.c[seed_idx], problem.e[seed_idx]
        )
        dist = np.linalg.norm(result.final[:, None, :] - front[seed_idx], axis=2)
    out = []
    for i, run in enumerate(result.runs):
        twin = index[Run(run.optimizer, 1.0, run.lr, run.seed)]
        finite = np.isfinite(dist[i]).all()
        nearest = int(np.argmin(dist[i])) if finite else None
        with np.errstate(all="ignore"):
            head_ratio = result.first_head_update[i] / result.first_head_update[twin]
            loss_ratio = loss[i] / loss[twin]
        out.append(
            (
                run.optimizer,
                repr(run.ratio),
                repr(run.lr),
                run.seed,
                result.status[i],
                int(result.steps[i]),
                *map(repr, loss[i].tolist()),
                repr(float(dist[i, nearest])) if finite else None,
                repr(float(w_grid[nearest])) if finite else None,
                repr(run.ratio / (1 + run.ratio)),
                *map(repr, head_ratio.tolist()),
                *map(repr, loss_ratio.tolist()),
            )
        )
    return out


SUMMARY_HEADER = (
    "optimizer",
    "ratio",
    "chosen_lrs",
    "front_distance",
    "front_w",
    "ew_stationary_w",
    "head1_update_ratio",
    "loss1_ratio",
)


def summary_rows(table: list[tuple]) -> list[tuple]:
    """Per (optimizer, ratio): the lr nearest to the front per seed, and the medians over the
    seeds of that lr's front distance, front position, head-1 update ratio and L1 ratio."""
    col = {name: i for i, name in enumerate(HEADER)}
    best: dict[tuple[str, str, int], tuple] = {}
    for row in table:
        d = row[col["front_distance"]]
        if d is None:
            continue
        key = (row[col["optimizer"]], row[col["ratio"]], row[col["seed"]])
        if key not in best or float(d) < float(best[key][col["front_distance"]]):
            best[key] = row
    cells: dict[tuple[str, str], list[tuple]] = {}
    for (opt, ratio, _), row in best.items():
        cells.setdefault((opt, ratio), []).append(row)
    out = []
    for (opt, ratio), members in cells.items():
        med = {
            name: float(np.median([float(m[col[name]]) for m in members]))
            for name in ("front_distance", "front_w", "head1_update_ratio", "loss1_ratio")
        }
        lrs = " ".join(sorted({f"{float(m[col['lr']]):g}" for m in members}))
        r = float(ratio)
        out.append(
            (
                opt,
                f"{r:g}",
                lrs,
                f"{med['front_distance']:.4g}",
                f"{med['front_w']:.4g}",
                f"{r / (1 + r):.4g}",
                f"{med['head1_update_ratio']:.4g}",
                f"{med['loss1_ratio']:.4g}",
            )
        )
    return out


def summary_markdown(summary: list[tuple], probe: list[tuple]) -> str:
    lines = [
        f"# {NAME}: per optimizer and loss-scale ratio r = alpha_1 / alpha_2",
        "",
        "Per seed the learning rate whose final point is nearest to the Pareto front is chosen "
        "(chosen_lrs); cells are medians over seeds. head1_update_ratio and loss1_ratio divide "
        "by the unscaled run (r = 1): 1 means invariant. EW's stationary point sits at "
        "w = r / (1 + r).",
        "",
        "| " + " | ".join(SUMMARY_HEADER) + " |",
        "|" + "---|" * len(SUMMARY_HEADER),
    ]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in summary]
    text = "\n".join(lines) + "\n"
    return text + ("\n" + probe_markdown(probe) if probe else "")


def write_outputs(result: Result, out: Path, provenance: str = "") -> str:
    """runs.csv, summary.csv, summary.md, per_task_adam.csv and the figure; returns summary.md."""
    from sim.studies import loss_scale_sweep_figures as figures

    table = rows(result)
    summary = summary_rows(table)
    probe = (
        per_task_adam_probe(result.config) if "adam-per-task" in result.config.optimizers else []
    )
    write_csv(out / "runs.csv", HEADER, table)
    write_csv(out / "summary.csv", SUMMARY_HEADER, summary)
    if probe:
        write_csv(out / "per_task_adam.csv", PROBE_HEADER, probe)
    text = summary_markdown(summary, probe)
    atomic_write_text(out / "summary.md", text)
    figures.write_all(table, out, provenance)
    return text


def _listed(values) -> str:
    return ", ".join(f"{v:g}" for v in values)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    quick = (
        f"ratios {_listed(QUICK['ratios'])}; lrs {_listed(QUICK['lrs'])}; seed 0; "
        f"{QUICK['steps']} steps; per-task Adam probe {_listed(QUICK['probe_steps'])} steps"
    )
    parser.add_argument("--quick", action="store_true", help=f"smoke scale: {quick}")
    parser.add_argument(
        "--optimizers", nargs="+", default=list(OPTIMIZERS), help=f"of: {' '.join(OPTIMIZERS)}"
    )
    parser.add_argument(
        "--ratios", type=float, nargs="+", help="alpha_1 / alpha_2 (must contain 1)"
    )
    parser.add_argument(
        "--lrs", type=float, nargs="+", help=f"learning rates (default {' '.join(map(str, LRS))})"
    )
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (default 0 1 2)")
    parser.add_argument("--steps", type=int, help=f"steps per run (default {STEPS})")
    parser.add_argument(
        "--probe-steps",
        type=int,
        nargs="+",
        help=f"per-task Adam probe: measure after these steps (default {_listed(PROBE_STEPS)})",
    )


def config_from_args(args: argparse.Namespace) -> Config:
    base = Config(**QUICK) if args.quick else Config()
    return Config(
        optimizers=tuple(args.optimizers),
        ratios=tuple(args.ratios or base.ratios),
        lrs=tuple(args.lrs or base.lrs),
        seeds=tuple(args.seeds or base.seeds),
        steps=args.steps or base.steps,
        probe_steps=tuple(args.probe_steps or base.probe_steps),
    )


def run(config: Config, out: Path, *, progress: bool = False, provenance: str = "") -> str:
    """Simulate ``config``, write every output into ``out``; return the summary's text."""
    result = simulate(config, progress=progress)
    return write_outputs(result, out, provenance)
