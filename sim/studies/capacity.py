"""capacity: where do the three capacity levers move a run along the exact Pareto front?

The brief's question "how should capacity be allocated between tasks?" names three levers: task
weights, per-task learning rates, and the balance between shared and task-specific parameters.
On :class:`sim.problems.quadratic.Quadratic` with two tasks, a fixed total width
``shared_dim + head_dim`` (so the third lever is the split point ``shared_dim``), full batch, we
run SGD and Adam (``mtl.optim`` rules on the NUMPY backend, all runs of one split batched) with

- a task-weight ratio ``r = w_1 / w_2`` (the loss ``sqrt(r) L_1 + L_2 / sqrt(r)``), and
- a head learning-rate ratio ``q = lr_head1 / lr_head2`` (``lr sqrt(q)`` and ``lr / sqrt(q)`` on
  the heads, ``lr`` on the backbone),

each swept with the other at 1, and record the final point's position ``w`` along the exact
front (the first-task weight of the nearest minimiser of ``w L_1 + (1 - w) L_2``) and its
distance to the front. Theory (``theory/``): for SGD a task weight acts on the head as a head
learning rate, but only the weight also reweights the backbone's mixture, so only the weight
moves the stationary point (to ``w = r / (1 + r)``); a head learning rate changes the path, not
the end point. For Adam the weight does nothing to its head and acts only through the backbone;
a head learning rate scales the head's normalised steps. ``shared_dim`` sets how much the tasks
must trade off at all: the front's extent in loss space grows with it.
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import asdict, dataclass

import numpy as np
import torch

from mtl.io import atomic_write_text, prepare_output_dir, save_figure, write_csv
from mtl.optim import NUMPY, get_rule
from sim.problems.quadratic import Quadratic

NAME = "capacity"
WIDTH, SAMPLES = 8, 24
OPTIMIZERS = {"sgd": ("sgd", {}), "adam": ("adam", {})}
LEVER_VALUES = (1 / 16, 1 / 4, 1.0, 4.0, 16.0)
FRONT_LOGITS = np.linspace(-12, 12, 481)
QUICK = {
    "shared_dims": (2, 6),
    "values": (1 / 4, 1.0, 4.0),
    "lrs": (0.05,),
    "seeds": (0,),
    "steps": 1500,
}


@dataclass(frozen=True)
class Config:
    shared_dims: tuple[int, ...] = (1, 2, 4, 6, 7)
    values: tuple[float, ...] = LEVER_VALUES
    lrs: tuple[float, ...] = (0.05, 0.01, 0.002)
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 4000

    def __post_init__(self) -> None:
        if not all(0 < d < WIDTH for d in self.shared_dims):
            raise ValueError(f"shared_dims must lie in 1..{WIDTH - 1}, got {self.shared_dims}")
        if 1.0 not in self.values or not all(v > 0 for v in self.values):
            raise ValueError(f"lever values must be > 0 and contain 1, got {self.values}")
        if self.steps < 1 or not self.seeds or not self.lrs:
            raise ValueError("steps >= 1, at least one seed and one learning rate are needed")


def _flat(q: Quadratic) -> tuple[np.ndarray, ...]:
    """Normal form (H, c, e) and initial flat parameters (phi, psi_1, psi_2) of ``q``."""
    H, c, e = (a.numpy() for a in q.normal_form())
    x0 = torch.cat([q.phi, q.psi(0), q.psi(1)]).detach().numpy()
    return H, c, e, x0


def _losses_grads(x: np.ndarray, H, c, e, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Unscaled losses (N, 2) and flat gradients (N, 2, P) of the batch ``x`` (N, P)."""
    k = WIDTH - d
    theta = np.stack([np.concatenate([x[:, :d], x[:, d + t * k : d + (t + 1) * k]], 1)
                      for t in (0, 1)], 1)  # fmt: skip
    Ht = np.einsum("tij,ntj->nti", H, theta)
    loss = 0.5 * np.einsum("nti,nti->nt", theta, Ht) - np.einsum("ti,nti->nt", c, theta) + e
    g = Ht - c
    grads = np.zeros((x.shape[0], 2, x.shape[1]))
    for t in (0, 1):
        grads[:, t, :d] = g[:, t, :d]
        grads[:, t, d + t * k : d + (t + 1) * k] = g[:, t, d:]
    return loss, grads


@dataclass(frozen=True)
class Run:
    optimizer: str
    shared_dim: int
    lever: str  # "weight" or "head_lr"
    value: float
    lr: float
    seed: int


def runs_of(config: Config) -> list[Run]:
    out = []
    for opt, d, lr, seed in itertools.product(
        OPTIMIZERS, config.shared_dims, config.lrs, config.seeds
    ):
        out.append(Run(opt, d, "weight", 1.0, lr, seed))
        for lever in ("weight", "head_lr"):
            out += [Run(opt, d, lever, v, lr, seed) for v in config.values if v != 1.0]
    return out


def simulate(config: Config) -> list[dict]:
    """Every run to ``config.steps`` steps; one batch per (optimizer, shared_dim, seed)."""
    results = []
    groups: dict[tuple, list[Run]] = {}
    for run in runs_of(config):
        groups.setdefault((run.optimizer, run.shared_dim, run.seed), []).append(run)
    for (opt, d, seed), runs in groups.items():
        k = WIDTH - d
        q = Quadratic.make(shared_dim=d, head_dim=k, samples=SAMPLES, seed=seed)
        H, c, e, x0 = _flat(q)
        n, p = len(runs), x0.size
        weight = np.ones((n, 2))
        lr = np.zeros((n, p))
        for i, r in enumerate(runs):
            root = np.sqrt(r.value)
            if r.lever == "weight":
                weight[i] = (root, 1 / root)
                lr[i] = r.lr
            else:
                lr[i, :d] = r.lr
                lr[i, d : d + k] = r.lr * root
                lr[i, d + k :] = r.lr / root
        rule_name, hp = OPTIMIZERS[opt]
        rule = get_rule(rule_name)
        x = np.tile(x0, (n, 1))
        state = rule.init_state(NUMPY, x, **hp)
        with np.errstate(all="ignore"):
            for step in range(1, config.steps + 1):
                _, grads = _losses_grads(x, H, c, e, d)
                grad = np.einsum("nt,ntp->np", weight, grads)
                x = rule.step(NUMPY, x, grad, state, step, lr=lr, **hp)
            loss, _ = _losses_grads(x, H, c, e, d)
        w = torch.from_numpy(1 / (1 + np.exp(-FRONT_LOGITS)))
        front = q.pareto_front(w)
        front_x = front.flat().numpy()
        front_losses = front.losses.numpy()
        with np.errstate(all="ignore"):
            dist = np.linalg.norm(x[:, None, :] - front_x[None], axis=2)
        for i, r in enumerate(runs):
            ok = bool(np.isfinite(dist[i]).all())
            nearest = int(np.argmin(dist[i])) if ok else None
            results.append({
                **asdict(r),
                "loss1": float(loss[i, 0]), "loss2": float(loss[i, 1]),
                "front_w": float(w[nearest]) if ok else None,
                "front_distance": float(dist[i, nearest]) if ok else None,
                "front_extent": float(np.abs(front_losses[0] - front_losses[-1]).sum()),
            })  # fmt: skip
    return results


HEADER = ("optimizer", "shared_dim", "lever", "value", "lr", "seed", "loss1", "loss2",
          "front_w", "front_distance", "front_extent")  # fmt: skip


def _nearest_lr(rows: list[dict]) -> dict[tuple, dict]:
    """Per (optimizer, shared_dim, lever, value, seed): the lr whose run ends nearest the front."""
    best: dict[tuple, dict] = {}
    for r in rows:
        if r["front_distance"] is None:
            continue
        key = (r["optimizer"], r["shared_dim"], r["lever"], r["value"], r["seed"])
        if key not in best or r["front_distance"] < best[key]["front_distance"]:
            best[key] = r
    return best


def summary(rows: list[dict]) -> list[tuple]:
    """Per optimizer, split and lever: the front position's range over the lever's values
    (median over seeds at the best lr), i.e. how far the lever moves a run along the front."""
    best = _nearest_lr(rows)
    cells: dict[tuple, dict[float, list[float]]] = {}
    for (opt, d, lever, value, _), r in best.items():
        levers = [lever] if value != 1.0 else ["weight", "head_lr"]
        for name in levers:
            cells.setdefault((opt, d, name), {}).setdefault(value, []).append(r["front_w"])
    out = []
    for (opt, d, lever), by_value in sorted(cells.items()):
        medians = {v: float(np.median(ws)) for v, ws in by_value.items()}
        out.append((opt, d, lever, min(medians.values()), max(medians.values()),
                    max(medians.values()) - min(medians.values())))  # fmt: skip
    return out


def figure(rows: list[dict], source: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best = _nearest_lr(rows)
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5), sharey=True)
    panels = itertools.product(enumerate(OPTIMIZERS), enumerate(("weight", "head_lr")))
    for (row, opt), (col, lever) in panels:
        ax = axes[row, col]
        dims = sorted({k[1] for k in best})
        for d in dims:
            values = sorted({k[3] for k in best if k[1] == d and (k[2] == lever or k[3] == 1.0)})
            ys = [np.median([r["front_w"] for k, r in best.items()
                             if k[0] == opt and k[1] == d and k[3] == v
                             and (k[2] == lever or v == 1.0)]) for v in values]  # fmt: skip
            ax.plot(values, ys, "o-", ms=3, label=f"shared dim {d} of {WIDTH}")
        if lever == "weight":
            r = np.logspace(-1.3, 1.3, 50)
            ax.plot(r, r / (1 + r), "k:", label="r / (1 + r): the weighted sum's minimiser")
        ax.set_xscale("log")
        ax.minorticks_off()
        ticks = sorted({k[3] for k in best})
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.set_title(
            f"{opt}: lever = {'task weight ratio r' if lever == 'weight' else 'head lr ratio q'}",
            fontsize=9,
        )
        ax.set_xlabel("w1 / w2" if lever == "weight" else "lr_head1 / lr_head2")
        ax.set_ylabel("position w along the Pareto front")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(
        "Capacity levers on the quadratic family (median over seeds, lr nearest the front)"
    )
    fig.tight_layout(rect=(0, 0.03, 1, 0.96))
    fig.text(0.01, 0.005, source, fontsize=7, color="0.35")
    return fig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--quick", action="store_true", help=f"smoke scale: {QUICK}")
    parser.add_argument("--steps", type=int, help="steps per run (default 4000)")


def run(args: argparse.Namespace) -> int:
    config = Config(**QUICK) if args.quick else Config()
    if args.steps:
        config = Config(**{**asdict(config), "steps": args.steps})
    out = prepare_output_dir(args.out, {"study": NAME, **asdict(config)})
    rows = simulate(config)
    write_csv(out / "runs.csv", HEADER, [[r[h] for h in HEADER] for r in rows])
    table = summary(rows)
    write_csv(out / "levers.csv", ("optimizer", "shared_dim", "lever", "w_min", "w_max", "moves"),
              table)  # fmt: skip
    lines = ["# How far each lever moves a run along the Pareto front", ""]
    lines += ["| optimizer | shared dim | lever | w range | moves |", "|---|---|---|---|---|"]
    lines += [f"| {o} | {d} | {lv} | {a:.3f}-{b:.3f} | {m:.3f} |" for o, d, lv, a, b, m in table]
    lines += ["", "Median over seeds of the front position at the learning rate ending nearest "
              "to the front; 'moves' is the range over the lever's values."]  # fmt: skip
    atomic_write_text(out / "levers.md", "\n".join(lines) + "\n")
    source = f"mtlp sim {NAME}{' --quick' if args.quick else ''}"
    fig = figure(rows, source)
    save_figure(fig, out / "levers.png", dpi=110)
    print(f"results in {out}")
    return 0


__all__ = ["Config", "run", "simulate", "summary"]
