"""``mtlp empirical optimizer-sweep``: is the optimizer a hidden confounder of MTL comparisons?

The paper's Sec. 4.1 protocol: every MTL method (EW, UW, RLW, IMTL, PCGrad, CAGrad, Aligned-MTL;
AdaTask with Adam only, MTL-IO with SGD only) x {Adam, SGD+momentum 0.9, signSGD+momentum 0.9}
x 10 initial learning rates x 3 seeds, on Cityscapes and NYUv2 with SegNet and DeepLabV3; the
best lr per method and optimizer chosen on validation Δm; single-task Adam baselines over 6
learning rates, chosen by validation loss. Beyond the paper: UW-O with every optimizer, the
loss-scale-invariant weighting the paper only argued for.

Two phases, each a sweep (:mod:`empirical.sweep`): ``stl/`` (the baselines), then ``mtl/``
(selection of each run's epoch by validation Δm against ``baselines/<setup>.json``). The analysis
writes per setup ``<setup>/table.{csv,md}`` (the layout of Tables A4-A7: test metrics at the
best lr, seed mean, Δm ± std and a bootstrap interval over seeds), ``lr_sensitivity.{csv,png}``
(Δm against lr: the confounder made visible), ``pareto.{json,md}`` (Table 2 and A2: Adam vs SGD
over all test metrics, the pool being the best-lr runs per method with each seed a point), the
parallel-coordinates plot of Fig. 2, and ``verdicts.json``. The report sets the published
numbers (``paper/published``) beside full-scale tables.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from empirical.analysis import (
    Verdict,
    best_learning_rates,
    bootstrap,
    grid_edges,
    guard_grid_edges,
    interval_from_direction,
    metric_columns,
    pareto_table,
    with_delta_m,
)
from empirical.figures import lr_sensitivity, parallel_coordinates
from empirical.results import diverged_table
from empirical.studies.common import (
    PAPER_LRS,
    STL_LRS_FULL,
    add_common_arguments,
    baselines,
    baselines_path,
    dry_run,
    run_phase,
    stl_configs,
    with_data_root,
    write_verdicts,
)
from empirical.studies.scales import DATA_LABELS, Setup, setups
from mtl.io import atomic_write_text, save_figure, write_csv
from mtl.metrics import pareto_front

STUDY = "optimizer-sweep"
PAPER_METHODS = ("ew", "uw", "rlw", "imtl", "pcgrad", "cagrad", "aligned-mtl")
EXTENSIONS = ("uw-o",)
OPTIMIZERS: dict[str, dict[str, Any]] = {
    "adam": {"optimizer": "adam"},
    "sgd": {"optimizer": "sgd", "momentum": 0.9},
    "signsgd": {"optimizer": "signum", "momentum": 0.9},
}
ONLY_WITH = {"adatask": ("adam",), "mtl-io": ("sgd",)}
LABELS = {"adam": "adam", "sgd": "sgd", "signum": "signsgd"}

GRIDS: dict[str, dict[str, Any]] = {
    "quick": {
        "methods": ("ew", "pcgrad", "adatask", "mtl-io"),
        "optimizers": ("adam", "sgd"),
        "lrs": (0.01, 0.001),
        "stl_lrs": (0.001,),
        "seeds": 2,
    },
    "cpu": {
        "methods": ("ew", "uw", "imtl", "pcgrad", "cagrad", "adatask", "mtl-io", "uw-o"),
        "optimizers": ("adam", "sgd", "signsgd"),
        "lrs": {
            "adam": (0.1, 0.01, 0.001, 0.0001),
            "sgd": (1.0, 0.3, 0.1, 0.01, 0.001),
            "signsgd": (0.1, 0.01, 0.001, 0.0001),
        },
        "stl_lrs": (0.01, 0.001, 0.0001),
        "seeds": 3,
    },
    "full": {
        "methods": (*PAPER_METHODS, "adatask", "mtl-io", *EXTENSIONS),
        "optimizers": ("adam", "sgd", "signsgd"),
        "lrs": PAPER_LRS,
        "stl_lrs": STL_LRS_FULL,
        "seeds": 3,
    },
}
CLAIMS = (
    "adam-dominates-pareto-front",
    "adam-lower-delta-m-than-sgd",
    "signsgd-lower-delta-m-than-sgd",
)
TASKS = {
    "cityscapes": ("segmentation", "depth"),
    "nyuv2": ("segmentation", "depth", "normal"),
    "synthetic-scenes": ("segmentation", "depth", "normal"),
    "multi-digits": ("left", "right"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)


def learning_rates(grid: dict[str, Any], optimizer: str) -> tuple[float, ...]:
    """The grid's learning rates of ``optimizer``: one shared tuple, or one per optimizer (a
    grid whose SGD optimum would lie above Adam's range)."""
    lrs = grid["lrs"]
    return lrs[optimizer] if isinstance(lrs, dict) else lrs


def mtl_configs(setup: Setup, grid: dict[str, Any], seeds: int, root: Path) -> list[dict]:
    configs = []
    for method in grid["methods"]:
        for opt in grid["optimizers"]:
            if opt not in ONLY_WITH.get(method, (opt,)):
                continue
            for lr in learning_rates(grid, opt):
                for seed in range(seeds):
                    configs.append(
                        setup.config(
                            method=method,
                            lr=lr,
                            seed=seed,
                            baselines=baselines_path(root, setup),
                            **OPTIMIZERS[opt],
                        )
                    )
    return configs


def record(args: argparse.Namespace) -> dict[str, Any]:
    """The study's configuration record (``config.json`` of its folder)."""
    return {"study": STUDY, "scale": args.scale, "seeds": args.seeds or GRIDS[args.scale]["seeds"]}


def run(args: argparse.Namespace) -> int:
    grid = GRIDS[args.scale]
    seeds = args.seeds or grid["seeds"]
    chosen = setups(args.scale)
    stl = {
        s.name: [
            with_data_root(c, s, args.data_root)
            for c in stl_configs(s, TASKS[s.dataset], grid["stl_lrs"], range(seeds))
        ]
        for s in chosen
    }
    root = Path(args.out)
    mtl = {
        s.name: [with_data_root(c, s, args.data_root) for c in mtl_configs(s, grid, seeds, root)]
        for s in chosen
    }
    if args.dry_run:
        phases = {f"{n}/stl": c for n, c in stl.items()} | {f"{n}/mtl": c for n, c in mtl.items()}
        return dry_run(phases, chosen, args)
    verdicts = []
    for setup in chosen:
        out = root / setup.name
        stl_table = run_phase(out, "stl", stl[setup.name], args)
        missing = _unfinished(len(stl_table), stl[setup.name], "single-task")
        if not missing:
            val_base, test_base = baselines(root, stl_table, setup)
            mtl_table = run_phase(out, "mtl", mtl[setup.name], args)
            lost = diverged_table(out / "mtl")
            missing = _unfinished(len(mtl_table) + len(lost), mtl[setup.name], "multi-task")
        if missing:  # narrowed by --where, interrupted or failed runs: no verdict from a part
            data = f"{DATA_LABELS[setup.data]} ({setup.name})"
            verdicts += [Verdict(c, "not run", args.scale, data, missing) for c in CLAIMS]
            continue
        verdicts += analyse(out, setup, args.scale, mtl_table, val_base, test_base, lost)
    write_verdicts(root, verdicts, STUDY)
    return 0


def _unfinished(done: int, configs: list[dict], phase: str) -> str:
    """Empty when every run of the phase finished or diverged; else what is missing (the grid
    must be complete for a verdict: best learning rates and Pareto pools compare like with
    like)."""
    if done == len(configs):
        return ""
    return (
        f"{done} of {len(configs)} {phase} runs finished or diverged; `mtlp sweep status` names "
        "the others, and running the study again completes the grid"
    )


def analyse(
    out: Path,
    setup: Setup,
    scale: str,
    runs: pd.DataFrame,
    val_base: dict[str, float],
    test_base: dict[str, float],
    diverged: pd.DataFrame | None = None,
) -> list[Verdict]:
    """Tables, curves, Pareto counts, figures and verdicts of one setup's MTL runs; a diverged
    run (``diverged``) scores Δm = +inf on validation, so its learning rate is never the best."""
    runs = runs.copy()
    runs["val_dm"] = with_delta_m(runs, {f"val/{k}": v for k, v in val_base.items()}, "val")
    runs["test_dm"] = with_delta_m(runs, {f"test/{k}": v for k, v in test_base.items()}, "test")
    metrics = [m for m in metric_columns(runs, "test") if m in test_base]
    runs["diverged"] = False
    if diverged is not None and not diverged.empty:
        runs = pd.concat([runs, diverged.assign(val_dm=np.inf, test_dm=np.nan)], ignore_index=True)
    runs["optimizer"] = runs["optimizer"].map(LABELS)
    source = f"mtlp empirical {STUDY} --scale {scale}; setup {setup.name}; {len(runs)} runs"

    curves = (
        runs.groupby(["method", "optimizer", "lr"])
        .agg(test_dm=("test_dm", "mean"), test_dm_std=("test_dm", "std"), val_dm=("val_dm", "mean"))
        .reset_index()
    )
    write_csv(out / "lr_sensitivity.csv", list(curves.columns), curves.itertuples(index=False))
    fig = lr_sensitivity(curves, f"Learning-rate sensitivity, {setup.name}", source)
    save_figure(fig, out / "lr_sensitivity.png", dpi=120)

    best = best_learning_rates(runs, ["method", "optimizer"], "val_dm")
    edges = grid_edges(runs, best, ["method", "optimizer"])
    best = best[~best["diverged"].astype(bool)]  # a cell whose every lr diverged has no best
    table = _results_table(best, metrics, edges)
    write_csv(out / "table.csv", list(table.columns), table.itertuples(index=False))
    atomic_write_text(out / "table.md", _markdown(table, setup, test_base, metrics, source))

    pool = best[best["optimizer"].isin(["adam", "sgd"])]
    pareto = pareto_table(pool, "optimizer", metrics)
    atomic_write_text(out / "pareto.json", json.dumps(pareto, indent=1) + "\n")
    front_idx = set(pareto_front(pool[[f"test/{m}" for m in metrics]].to_dict("records"), {
        f"test/{m}": up for m, up in _directions(metrics).items()
    }))  # fmt: skip
    per_method = (
        pool.assign(on_front=[i in front_idx for i in range(len(pool))])
        .groupby(["optimizer", "method"])["on_front"]
        .sum()
    )
    atomic_write_text(out / "pareto.md", _pareto_markdown(pareto, per_method, source))
    fig = parallel_coordinates(
        pool, metrics, [i in front_idx for i in range(len(pool))], setup.name, source
    )
    save_figure(fig, out / "parallel_coordinates.png", dpi=120)
    return _verdicts(best, pareto, setup, scale, edges)


def _directions(metrics: list[str]) -> dict[str, bool]:
    from mtl.metrics import higher_is_better

    return {m: higher_is_better(m) for m in metrics}


def _results_table(best: pd.DataFrame, metrics: list[str], edges: dict[tuple, str]) -> pd.DataFrame:
    rows = []
    for (method, opt), part in best.groupby(["method", "optimizer"], sort=False):
        mean, lo, hi = bootstrap(part["test_dm"].to_numpy())
        row = {"method": method, "optimizer": opt, "lr": float(part["lr"].iloc[0])}
        row["lr_at_edge"] = edges.get((method, opt), "")
        row |= {m: float(part[f"test/{m}"].mean()) for m in metrics}
        std = float(part["test_dm"].std()) if len(part) > 1 else 0.0
        row |= {"delta_m": mean, "delta_m_std": std, "delta_m_lo": lo, "delta_m_hi": hi}
        row["seeds"] = len(part)
        rows.append(row)
    return pd.DataFrame(rows)


def _markdown(table, setup, test_base, metrics, source) -> str:
    head = ["MTO", "optimizer", "lr", *metrics, "Δm (%) ↓", "95% interval"]
    lines = [f"# {setup.name} ({DATA_LABELS[setup.data]})", "", f"_{source}_", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines.append(
        "| STL | adam | | " + " | ".join(f"{test_base[m]:.4g}" for m in metrics) + " | | |"
    )
    for r in table.to_dict("records"):
        lr = f"{r['lr']:g}" + (f" ({r['lr_at_edge']} tried)" if r["lr_at_edge"] else "")
        cells = [r["method"], r["optimizer"], lr, *(f"{r[m]:.4g}" for m in metrics)]
        cells += [f"{r['delta_m']:.2f} ±{r['delta_m_std']:.2f}"]
        cells += [f"[{r['delta_m_lo']:.2f}, {r['delta_m_hi']:.2f}]"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _pareto_markdown(pareto, per_method, source) -> str:
    lines = ["# Pareto-optimal runs (Tables 2 and A2)", "", f"_{source}_", ""]
    lines += ["| optimizer | pool | PO (full) | PO w.r.t. the other |", "|---|---|---|---|"]
    for opt, c in pareto.items():
        full, versus = c["full"], c["versus_others"]
        lines.append(
            f"| {opt} | {c['pool']} | {full['count']} [{full['lo']:.0f}, {full['hi']:.0f}] | "
            f"{versus['count']} [{versus['lo']:.0f}, {versus['hi']:.0f}] |"
        )
    lines += ["", "Per method (runs on the full front):", ""]
    lines += [f"- {opt} {method}: {int(n)}" for (opt, method), n in per_method.items()]
    lines += ["", "Intervals: 95% bootstrap over the seeds of every (method, optimizer) cell."]
    return "\n".join(lines) + "\n"


def _verdicts(
    best: pd.DataFrame, pareto: dict, setup: Setup, scale: str, edges: dict[tuple, str]
) -> list[Verdict]:
    data = f"{DATA_LABELS[setup.data]} ({setup.name})"
    out = []
    adam, sgd = pareto.get("adam"), pareto.get("sgd")
    if adam and sgd:
        a, s = adam["full"], sgd["full"]
        verdict = (
            "confirmed" if a["lo"] > s["hi"] else "refuted" if s["lo"] > a["hi"] else "inconclusive"
        )
        evidence = (
            f"Pareto-optimal runs (full front): Adam {a['count']} [{a['lo']:.0f}, {a['hi']:.0f}], "
            f"SGD {s['count']} [{s['lo']:.0f}, {s['hi']:.0f}] of {adam['pool']} and {sgd['pool']}"
        )
        found = Verdict("adam-dominates-pareto-front", verdict, scale, data, evidence)
        out.append(guard_grid_edges(found, edges, _loser(verdict, "adam", "sgd")))
    for better in ("adam", "signsgd"):
        claim = f"{better}-lower-delta-m-than-sgd"
        diffs = _paired_differences(best, better, "sgd")
        if len(diffs) == 0:
            out.append(
                Verdict(claim, "not run", scale, data, f"no method ran with {better} and sgd")
            )
            continue
        mean, lo, hi = bootstrap(diffs)
        evidence = (
            f"mean over methods and seeds of Δm(SGD) - Δm({better}) = {mean:.2f} points, 95% "
            f"interval [{lo:.2f}, {hi:.2f}] ({len(diffs)} pairs)"
        )
        verdict = interval_from_direction(lo, hi)
        found = Verdict(claim, verdict, scale, data, evidence)
        out.append(guard_grid_edges(found, edges, _loser(verdict, better, "sgd")))
    return out


def _loser(verdict: str, better: str, worse: str) -> str:
    """The optimizer a decided verdict finds worse (``worse`` if confirmed, else ``better``)."""
    return worse if verdict == "confirmed" else better


def _paired_differences(best: pd.DataFrame, better: str, worse: str) -> np.ndarray:
    """Δm(worse) - Δm(better) per method and seed, for methods run with both optimizers."""
    wide = best.pivot_table(index=["method", "seed"], columns="optimizer", values="test_dm")
    if better not in wide or worse not in wide:
        return np.array([])
    return (wide[worse] - wide[better]).dropna().to_numpy()
