"""``mtlp empirical corruptions``: are MTL features more robust to image corruptions than STL ones?

The paper's App. A6 protocol: train MTL (EW, UW, RLW, IMTL, PCGrad, CAGrad) and single-task
models on clean data (Adam, at a fixed learning rate here: the paper's best-lr models come from
its main sweep), freeze the backbone, fine-tune the heads on corrupted training images (a random
corruption and severity per sample, :mod:`empirical.corruptions`), and evaluate every model on the
test set under each of the 15 corruptions x 5 severities and clean (each fine-tuned run's
``corruptions.jsonl``, :mod:`empirical.evaluation`, from its selected ``best.pt``). Eq. 26 per
metric ``t``:

    δ_t = 1/(|C| |S|) Σ_c Σ_s (-1)^{p(t)} (M^MTL_{t,c,s} / M^MTL_t - M^STL_{t,c,s} / M^STL_t)

with ``p(t) = 1`` when higher is better; δ_t < 0: MTL lost less under corruption. Outputs per
setup: ``delta.csv`` (per method, seed and metric), ``table_delta.md`` (Tables A8/A9 layout),
``table_absolute.md`` (A10/A11), ``by_corruption.png`` (Fig. A8: δ per corruption, EW), and
``by_family.csv``/``by_severity.csv``/``robustness.png``: what the difference depends on
(corruption family, severity, task type), with the spread over seeds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from empirical.analysis import Verdict, bootstrap, interval_from_direction
from empirical.corruptions import CORRUPTIONS, SEVERITIES, family
from empirical.evaluation import evaluate_corruptions
from empirical.studies.common import (
    add_common_arguments,
    dry_run,
    execute_phase,
    with_data_root,
    write_verdicts,
)
from empirical.studies.scales import DATA_LABELS, Setup, setups
from empirical.sweep import Run, read_sweep, run_state
from mtl.io import atomic_write_text, save_figure, write_csv
from mtl.metrics import higher_is_better

STUDY = "corruptions"
METHODS = ("ew", "uw", "rlw", "imtl", "pcgrad", "cagrad")
TASK_OF_METRIC = {
    "miou": "segmentation", "pix_acc": "segmentation", "abs_err": "depth", "rel_err": "depth",
    "normal_mean": "normal", "normal_median": "normal", "within_11_25": "normal",
    "within_22_5": "normal", "within_30": "normal",
}  # fmt: skip
GRIDS: dict[str, dict[str, Any]] = {
    "quick": {
        "methods": ("ew",), "seeds": 1, "lr": 1e-3, "finetune_epochs": 1,
        "corruptions": ("gaussian_noise", "contrast", "fog"), "severities": (1, 5),
    },
    "cpu": {
        "methods": ("ew", "uw", "pcgrad"), "seeds": 3, "lr": 1e-3, "finetune_epochs": 2,
        "corruptions": CORRUPTIONS, "severities": SEVERITIES,
    },
    "full": {
        "methods": METHODS, "seeds": 3, "lr": 1e-3, "finetune_epochs": 30,
        "corruptions": CORRUPTIONS, "severities": SEVERITIES,
    },
}  # fmt: skip
TASKS = {"cityscapes": ("segmentation", "depth"), "nyuv2": ("segmentation", "depth", "normal")}
TASKS["synthetic-scenes"] = TASKS["nyuv2"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)


def dense_setups(scale: str) -> tuple[Setup, ...]:
    """Corruptions act on images of at least 32 x 32 pixels: the dense setups."""
    return tuple(s for s in setups(scale) if s.dataset in TASKS)


def pretrain_configs(setup: Setup, grid: dict[str, Any]) -> list[dict[str, Any]]:
    mtl = [
        setup.config(method=m, optimizer="adam", lr=grid["lr"], seed=s)
        for m in grid["methods"]
        for s in range(grid["seeds"])
    ]
    stl = [
        setup.config(tasks=[t], method="ew", optimizer="adam", lr=grid["lr"], seed=s)
        for t in TASKS[setup.dataset]
        for s in range(grid["seeds"])
    ]
    return mtl + stl


def finetune_config(pretrained: dict[str, Any], run_dir: Path, grid: dict) -> dict[str, Any]:
    """Heads fine-tuned on corrupted images, the backbone frozen, from the pretrained weights."""
    return {
        **pretrained,
        "init_from": str(run_dir.resolve()),
        "freeze_backbone": True,
        "corruption": "random",
        "epochs": grid["finetune_epochs"],
    }


def record(args: argparse.Namespace) -> dict[str, Any]:
    """The study's configuration record (``config.json`` of its folder)."""
    grid = dict(GRIDS[args.scale])
    grid["seeds"] = args.seeds or grid["seeds"]
    return json.loads(json.dumps({"study": STUDY, "scale": args.scale, **grid}))


def evaluate_finetuned(runs: list[Run], grid: dict[str, Any]) -> None:
    """``corruptions.jsonl`` in every finished fine-tuning run (skipping those that have it)."""
    for run in runs:
        if run_state(run.directory).state == "finished":
            evaluate_corruptions(run.directory, grid["corruptions"], grid["severities"])


def run(args: argparse.Namespace) -> int:
    grid = dict(GRIDS[args.scale])
    grid["seeds"] = args.seeds or grid["seeds"]
    chosen = dense_setups(args.scale)
    pretrain = {
        s.name: [with_data_root(c, s, args.data_root) for c in pretrain_configs(s, grid)]
        for s in chosen
    }
    if args.dry_run:
        return dry_run(pretrain, chosen, args)
    root = Path(args.out)
    verdicts = []
    for setup in chosen:
        out = root / setup.name
        pre = execute_phase(out, "pretrain", pretrain[setup.name], args)
        fine = [finetune_config(r.config, r.directory, grid) for r in pre]
        evaluate_finetuned(execute_phase(out, "finetune", fine, args), grid)
        scores = corrupted_scores(out / "finetune")
        write_csv(out / "scores.csv", list(scores.columns), scores.itertuples(index=False))
        verdicts += analyse(out, setup, args.scale, scores)
    write_verdicts(root, verdicts, STUDY)
    return 0


def corrupted_scores(sweep_root: Path) -> pd.DataFrame:
    """One row per fine-tuned run, corruption (or ``clean``), severity and metric."""
    _, runs = read_sweep(sweep_root)
    rows = []
    for run in runs:
        path = run.directory / "corruptions.jsonl"
        if not path.is_file():
            continue
        tasks = run.config.get("tasks")
        model = "stl" if tasks and len(tasks) == 1 else run.config["method"]
        for line in path.read_text().splitlines():
            record = json.loads(line)
            for metric, value in record["metrics"].items():
                rows.append({
                    "model": model, "seed": run.config["seed"],
                    "corruption": record["corruption"], "severity": record["severity"],
                    "metric": metric, "value": value,
                })  # fmt: skip
    return pd.DataFrame(rows)


def delta_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Eq. 26 terms per MTL method, seed, metric, corruption and severity (signed so that
    negative means MTL degraded less); STL is matched by seed (its mean when seeds differ)."""
    clean = scores[scores["corruption"] == "clean"].set_index(["model", "seed", "metric"])["value"]
    corrupted = scores[scores["corruption"] != "clean"].copy()
    corrupted["relative"] = [
        v / clean[(m, s, k)]
        for m, s, k, v in corrupted[["model", "seed", "metric", "value"]].values
    ]
    stl = (
        corrupted[corrupted["model"] == "stl"]
        .groupby(["metric", "corruption", "severity"])["relative"]
        .mean()
    )
    mtl = corrupted[corrupted["model"] != "stl"].copy()
    keys = list(zip(mtl["metric"], mtl["corruption"], mtl["severity"], strict=True))
    mtl["delta"] = [
        (-1 if higher_is_better(k[0]) else 1) * (r - stl[k])
        for k, r in zip(keys, mtl["relative"], strict=True)
    ]
    mtl["family"] = mtl["corruption"].map(family)
    mtl["task"] = mtl["metric"].map(TASK_OF_METRIC)
    return mtl.drop(columns=["value", "relative"])


def analyse(out: Path, setup: Setup, scale: str, scores: pd.DataFrame) -> list[Verdict]:
    data = f"{DATA_LABELS[setup.data]} ({setup.name})"
    if scores.empty or "stl" not in set(scores["model"]):
        return [Verdict("mtl-more-robust", "not run", scale, data, "no corrupted evaluations")]
    deltas = delta_table(scores)
    write_csv(out / "delta.csv", list(deltas.columns), deltas.itertuples(index=False))
    source = f"mtlp empirical {STUDY} --scale {scale}; {setup.name}"
    per_seed = deltas.groupby(["model", "seed", "metric"])["delta"].mean().reset_index()
    atomic_write_text(out / "table_delta.md", _delta_markdown(per_seed, setup, source))
    atomic_write_text(out / "table_absolute.md", _absolute_markdown(scores, setup, source))
    for by in ("family", "severity"):
        table = (
            deltas.groupby(["model", "seed", "task", by])["delta"].mean().groupby(
                ["model", "task", by]
            ).agg(["mean", "std", "count"]).reset_index()
        )  # fmt: skip
        write_csv(out / f"by_{by}.csv", list(table.columns), table.itertuples(index=False))
    fig = _robustness_figure(deltas, setup, source)
    save_figure(fig, out / "robustness.png", dpi=110)
    plt.close(fig)
    verdicts = []
    for model, part in per_seed.groupby("model"):
        seed_means = part.groupby("seed")["delta"].mean().to_numpy()
        mean, lo, hi = bootstrap(seed_means)
        # the claim "MTL more robust" holds when δ < 0: flip so that above 0 confirms it;
        # one seed gives no interval (the bootstrap of one value is that value): inconclusive
        verdict = interval_from_direction(-hi, -lo) if len(seed_means) > 1 else "inconclusive"
        evidence = (
            f"{model}: mean δ over metrics {mean:+.4f}, 95% interval over {len(seed_means)} "
            f"seed(s) [{lo:+.4f}, {hi:+.4f}] (δ < 0: MTL degrades less)"
        )
        verdicts.append(Verdict("mtl-more-robust", verdict, scale, data, evidence))
    return verdicts


def _delta_markdown(per_seed: pd.DataFrame, setup: Setup, source: str) -> str:
    metrics = list(dict.fromkeys(per_seed["metric"]))
    lines = [f"# δ per metric (Eq. 26), {setup.name}", "", f"_{source}_", ""]
    lines += ["| MTO | " + " | ".join(f"δ {m}" for m in metrics) + " | mean |"]
    lines.append("|" + "---|" * (len(metrics) + 2))
    for model, part in per_seed.groupby("model"):
        means = part.groupby("metric")["delta"].mean()
        stds = part.groupby("metric")["delta"].std().fillna(0)
        cells = [f"{means[m]:+.4f} ±{stds[m]:.4f}" for m in metrics]
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {means.mean():+.4f} |")
    lines += ["", "δ < 0: the MTL model lost less under corruption than the STL models."]
    return "\n".join(lines) + "\n"


def _absolute_markdown(scores: pd.DataFrame, setup: Setup, source: str) -> str:
    corrupted = scores[scores["corruption"] != "clean"]
    means = corrupted.groupby(["model", "metric"])["value"].mean().unstack()
    metrics = list(dict.fromkeys(scores["metric"]))
    lines = [f"# Scores on the corrupted test set, {setup.name}", "", f"_{source}_", ""]
    lines += ["| model | " + " | ".join(metrics) + " |", "|" + "---|" * (len(metrics) + 1)]
    for model, row in means.iterrows():
        lines.append(f"| {model} | " + " | ".join(f"{row[m]:.4g}" for m in metrics) + " |")
    lines += ["", "Mean over corruptions, severities and seeds."]
    return "\n".join(lines) + "\n"


def _robustness_figure(deltas: pd.DataFrame, setup: Setup, source: str):
    """Left: δ per corruption and metric for EW (Fig. A8); right: δ by family and severity."""
    shown = "ew" if "ew" in set(deltas["model"]) else deltas["model"].iloc[0]
    ew = deltas[deltas["model"] == shown]
    grid = ew.groupby(["corruption", "metric"])["delta"].mean().unstack()
    order = [c for c in CORRUPTIONS if c in grid.index]
    grid = grid.loc[order]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 0.32 * len(order) + 2.5))
    limit = float(np.nanmax(np.abs(grid.to_numpy()))) or 1.0
    image = ax.imshow(grid.to_numpy(), cmap="coolwarm", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_yticks(range(len(order)), order, fontsize=7)
    ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=45, ha="right", fontsize=7)
    ax.set_title(f"δ per corruption, {shown} (blue: MTL more robust)", fontsize=9)
    fig.colorbar(image, ax=ax, label="δ")
    for task, part in deltas.groupby("task"):
        by_sev = part.groupby("severity")["delta"].agg(["mean", "std"])
        bx.errorbar(by_sev.index, by_sev["mean"], yerr=by_sev["std"], marker="o", label=task)
    bx.set_xticks(sorted(set(deltas["severity"])))
    bx.axhline(0, color="0.5", lw=0.8)
    bx.set_xlabel("severity")
    bx.set_ylabel("δ (mean over corruptions, methods)")
    bx.set_title("δ by severity and task (bars: std over methods, seeds, corruptions)", fontsize=9)
    bx.legend(fontsize=8)
    fig.suptitle(f"Robustness of MTL vs STL features, {setup.name}", fontsize=10)
    fig.tight_layout(rect=(0, 0.03, 1, 0.96))
    fig.text(0.01, 0.005, source, fontsize=7, color="0.35")
    return fig
