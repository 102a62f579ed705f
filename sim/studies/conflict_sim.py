"""conflict-sim: inter-task vs inter-sample gradient statistics with known relatedness and noise.

Problem (defined here): shared parameters ``phi`` in R^P, two tasks with unit-norm optima
``phi*_1``, ``phi*_2`` at a known angle (``relatedness = cos angle``; built by the quadratic
family's :func:`~sim.problems.quadratic.vectors_at_cosine`), and per-sample losses

    L_{t,i}(phi) = u_t / 2 * || phi - phi*_t - eps_{t,i} ||^2,   eps_{t,i} ~ N(0, noise^2 / P I),

so ``E ||eps||^2 = noise^2`` (per-sample noise, the source of inter-sample conflicts) and ``u_t``
is the task's loss unit (``units_ratio = u_1 / u_2``, ``u = (sqrt r, 1 / sqrt r)``). The
per-sample gradient is ``g_{t,i} = u_t (phi - phi*_t - eps_{t,i})``. Gradients are measured at
``phi = progress * (phi*_1 + phi*_2) / 2`` (0: the start; towards 1: near the equal-weight
optimum, where the task gradients turn opposite).

Protocol (paper Sec. 4.2, App. A3.2, with :mod:`mtl.gradients`): per repetition a batch of B
samples, k = 8 of them drawn at random, all pairs of the (2, k, P) per-sample gradients
(:func:`mtl.gradients.conflict_study`), pooled over the repetitions and summarised (mean, std,
2.5 / 97.5 % percentiles; :func:`mtl.gradients.summarize`). Loss units: ``raw`` uses the
gradients of ``L_{t,i}``; ``uw-o`` those of ``L_{t,i} / sg[L_t]`` with ``L_t`` the batch mean
(the paper's UW-O normalisation, Eq. 10), which removes ``u_t``.

Whether the measurement tells inter-task from inter-sample conflicts apart is computed, not
asserted: a statistic separates them when the mean +- std bands of the two kinds (what the
paper's plots show) do not overlap.
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from mtl.gradients import draw, inter_sample_pairs, inter_task_pairs, pair_statistics, summarize
from mtl.io import atomic_write_text, write_csv
from sim.problems.quadratic import vectors_at_cosine

NAME = "conflict-sim"
THREADS = 1
"""(2, B, P) tensors with B, P = 64: one thread is fastest."""
STATISTICS = ("cosine", "magnitude_similarity", "conflict_ratio")
KINDS = ("inter_task", "inter_sample")
NORMALISATIONS = ("raw", "uw-o")
QUICK = {
    "relatedness": (1.0, 0.0),
    "noise": (0.0, 3.0),
    "units_ratios": (1.0, 100.0),
    "progress": (0.0,),
    "repetitions": 3,
}


@dataclass(frozen=True)
class Config:
    """One study configuration; ``config.json`` of an output folder is ``asdict`` of it."""

    relatedness: tuple[float, ...] = (1.0, 0.5, 0.0, -0.5)
    noise: tuple[float, ...] = (0.0, 0.3, 1.0, 3.0)
    units_ratios: tuple[float, ...] = (1.0, 10.0, 100.0)
    progress: tuple[float, ...] = (0.0, 0.9)
    dim: int = 64
    batch: int = 64
    k: int = 8
    repetitions: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        for key in ("relatedness", "noise", "units_ratios", "progress"):
            values = tuple(float(v) for v in getattr(self, key))
            if not values or not all(np.isfinite(values)):
                raise ValueError(f"{key} must be a non-empty list of finite numbers, got {values}")
            object.__setattr__(self, key, values)
        if not all(-1 <= c <= 1 for c in self.relatedness):
            raise ValueError(
                f"relatedness is a cosine and must lie in [-1, 1], got {self.relatedness}"
            )
        if any(s < 0 for s in self.noise) or any(r <= 0 for r in self.units_ratios):
            raise ValueError("noise must be >= 0 and units_ratios > 0")
        if self.dim < 2 or self.k < 2 or self.batch < self.k or self.repetitions < 1:
            raise ValueError(
                f"need dim >= 2, k >= 2, batch >= k and repetitions >= 1, got dim={self.dim}, "
                f"k={self.k}, batch={self.batch}, repetitions={self.repetitions}"
            )


@dataclass(frozen=True)
class Setting:
    relatedness: float
    noise: float
    units_ratio: float
    progress: float
    normalisation: str


def optima(relatedness: float, dim: int, generator: torch.Generator) -> torch.Tensor:
    """(2, dim) unit vectors with inner product ``relatedness`` in a random orthonormal frame
    (:func:`sim.problems.quadratic.vectors_at_cosine`)."""
    return vectors_at_cosine(relatedness, (1.0, 1.0), dim, generator)


def batch_gradients(
    setting: Setting, targets: torch.Tensor, noise: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample gradients (..., 2, B, P) of the raw or UW-O-normalised losses, and the
    (..., 2, B) per-sample raw losses, for optima ``targets`` (2, P) and noise ``noise``
    (..., 2, B, P); leading dimensions (repetitions) are batched."""
    r = setting.units_ratio
    units = torch.tensor([np.sqrt(r), 1 / np.sqrt(r)], dtype=torch.float64)
    phi = setting.progress * targets.mean(0)
    residual = phi - targets[:, None, :] - noise
    losses = units[:, None] / 2 * (residual**2).sum(-1)
    grads = units[:, None, None] * residual
    if setting.normalisation == "uw-o":
        grads = grads / losses.mean(-1)[..., None, None]
    return grads, losses


def repetition_pairs(kind: str, repetitions: int, k: int) -> torch.Tensor:
    """Row pairs of the stacked (R * 2 * k, P) gradients: ``kind``'s pairs within each
    repetition (:func:`mtl.gradients.inter_task_pairs` / ``inter_sample_pairs``), offset by the
    repetition's first row."""
    base = {"inter_task": inter_task_pairs, "inter_sample": inter_sample_pairs}[kind](2, k)
    offsets = torch.arange(repetitions)[:, None, None] * (2 * k)
    return (base[None] + offsets).reshape(-1, 2)


def measure(config: Config, setting: Setting) -> dict[str, dict[str, dict[str, float]]]:
    """Summaries ``{kind: {statistic: summary}}`` over the repetitions of one setting.

    The random draws come per repetition in a fixed order (noise, then the k samples) from one
    generator seeded with ``config.seed``; the gradients of all repetitions are computed as one
    (R, 2, B, P) batch and the pair statistics of all repetitions in one call per kind."""
    gen = torch.Generator().manual_seed(config.seed)
    targets = optima(setting.relatedness, config.dim, gen)
    eps, picks = [], []
    for _ in range(config.repetitions):
        eps.append(torch.randn(2, config.batch, config.dim, generator=gen, dtype=torch.float64))
        picks.append(draw(config.batch, config.k, generator=gen))
    noise = torch.stack(eps) * (setting.noise / np.sqrt(config.dim))
    grads, _ = batch_gradients(setting, targets, noise)  # (R, 2, B, P)
    reps = torch.arange(config.repetitions)[:, None]
    picked = grads[reps, :, torch.tensor(picks)].transpose(1, 2)  # (R, 2, k, P)
    flat = picked.reshape(-1, config.dim)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for kind in KINDS:
        stats = pair_statistics(flat, repetition_pairs(kind, config.repetitions, config.k))
        out[kind] = {name: summarize(stats[name]) for name in STATISTICS}
    return out


def separates(task: dict[str, float], sample: dict[str, float]) -> bool:
    """Whether the mean +- std bands of the two kinds are disjoint."""
    lo_t, hi_t = task["mean"] - task["std"], task["mean"] + task["std"]
    lo_s, hi_s = sample["mean"] - sample["std"], sample["mean"] + sample["std"]
    return hi_t < lo_s or hi_s < lo_t


@dataclass
class Result:
    config: Config
    summaries: dict[Setting, dict[str, dict[str, dict[str, float]]]]


def settings(config: Config) -> list[Setting]:
    return [
        Setting(*values)
        for values in itertools.product(
            config.relatedness, config.noise, config.units_ratios, config.progress, NORMALISATIONS
        )
    ]


def simulate(config: Config, progress: bool = False) -> Result:
    grid = tqdm(settings(config), desc=NAME, disable=not progress)
    return Result(config, {s: measure(config, s) for s in grid})


SUMMARY_HEADER = (
    "relatedness",
    "noise",
    "units_ratio",
    "progress",
    "normalisation",
    "kind",
    "statistic",
    "mean",
    "std",
    "p2.5",
    "p97.5",
    "negative",
    "count",
)
SEPARATION_HEADER = (
    "relatedness",
    "noise",
    "units_ratio",
    "progress",
    "normalisation",
    "statistic",
    "separates",
)


def summary_rows(result: Result) -> list[tuple]:
    return [
        (
            s.relatedness,
            s.noise,
            s.units_ratio,
            s.progress,
            s.normalisation,
            kind,
            name,
            *(repr(stats[kind][name][f]) for f in ("mean", "std", "p2.5", "p97.5", "negative")),
            int(stats[kind][name]["count"]),
        )
        for s, stats in result.summaries.items()
        for kind in KINDS
        for name in STATISTICS
    ]


def separation_rows(result: Result) -> list[tuple]:
    return [
        (
            s.relatedness,
            s.noise,
            s.units_ratio,
            s.progress,
            s.normalisation,
            name,
            separates(stats["inter_task"][name], stats["inter_sample"][name]),
        )
        for s, stats in result.summaries.items()
        for name in STATISTICS
    ]


def findings(result: Result) -> str:
    """Markdown: which settings separate the kinds, per statistic and loss normalisation."""
    rows = separation_rows(result)
    lines = [
        f"# {NAME}: can inter-task and inter-sample conflicts be told apart?",
        "",
        "A statistic separates the two kinds when their mean +- std bands are disjoint "
        "(computed from the runs in summary.csv).",
        "",
        "| statistic | normalisation | separating settings | of |",
        "|---|---|---|---|",
    ]
    for name, norm in itertools.product(STATISTICS, NORMALISATIONS):
        mine = [r for r in rows if r[5] == name and r[4] == norm]
        lines.append(f"| {name} | {norm} | {sum(r[6] for r in mine)} | {len(mine)} |")
    lines += ["", "Cosine: settings that separate (relatedness, noise, progress):"]
    cos = sorted({(r[0], r[1], r[3]) for r in rows if r[5] == "cosine" and r[6]})
    lines.append(", ".join(f"({c:g}, {n:g}, {p:g})" for c, n, p in cos) or "none")
    lines += ["", "Magnitude similarity, mean inter-task vs inter-sample, by loss units:"]
    cfg = result.config
    for s, stats in result.summaries.items():
        first = (s.noise, s.relatedness, s.progress) == (
            min(cfg.noise),
            cfg.relatedness[0],
            cfg.progress[0],
        )
        if first:
            t = stats["inter_task"]["magnitude_similarity"]["mean"]
            m = stats["inter_sample"]["magnitude_similarity"]["mean"]
            lines.append(
                f"- units ratio {s.units_ratio:g}, {s.normalisation}: inter-task {t:.3f}, "
                f"inter-sample {m:.3f}"
            )
    return "\n".join(lines) + "\n"


def write_outputs(result: Result, out: Path, provenance: str = "") -> list[Path]:
    from sim.studies import conflict_sim_figures as figures

    return [
        write_csv(out / "summary.csv", SUMMARY_HEADER, summary_rows(result)),
        write_csv(out / "separation.csv", SEPARATION_HEADER, separation_rows(result)),
        atomic_write_text(out / "findings.md", findings(result)),
        *figures.write_all(result, out, provenance),
    ]


def _listed(values) -> str:
    return ", ".join(f"{v:g}" for v in values)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    quick = (
        f"relatedness {_listed(QUICK['relatedness'])}; noise {_listed(QUICK['noise'])}; "
        f"units ratios {_listed(QUICK['units_ratios'])}; progress {_listed(QUICK['progress'])}; "
        f"{QUICK['repetitions']} repetitions"
    )
    parser.add_argument("--quick", action="store_true", help=f"smoke scale: {quick}")
    parser.add_argument("--relatedness", type=float, nargs="+", help="cosines of the task optima")
    parser.add_argument("--noise", type=float, nargs="+", help="per-sample noise levels")
    parser.add_argument("--units-ratios", type=float, nargs="+", help="u_1 / u_2")
    parser.add_argument("--progress", type=float, nargs="+", help="measurement points")
    parser.add_argument("--repetitions", type=int, help="batches measured per setting")
    parser.add_argument("--seed", type=int, default=0)


def config_from_args(args: argparse.Namespace) -> Config:
    base = Config(**QUICK) if args.quick else Config()
    pick = lambda given, default: tuple(given) if given else default  # noqa: E731
    return Config(
        relatedness=pick(args.relatedness, base.relatedness),
        noise=pick(args.noise, base.noise),
        units_ratios=pick(args.units_ratios, base.units_ratios),
        progress=pick(args.progress, base.progress),
        repetitions=args.repetitions or base.repetitions,
        seed=args.seed,
    )


def run(config: Config, out: Path, *, progress: bool = False, provenance: str = "") -> str:
    """Simulate ``config``, write every output into ``out``; return findings.md's text."""
    result = simulate(config, progress=progress)
    write_outputs(result, out, provenance)
    return findings(result)
