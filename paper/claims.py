"""The paper's claims, each with a verdict computed from stored results.

A claim's evaluator reads a results folder (the layout of ``mtlp reproduce``: ``theory/``,
``sim/<study>/``, ``empirical/<study>/``) and returns one :class:`empirical.analysis.Verdict`
(a finding) per kind of evidence it found (theory, synthetic problems, generated images,
multi-digits, full datasets). Evidence
that is missing gives a ``not run`` finding, so a claim never disappears from the report.
Verdicts: ``confirmed``, ``refuted``, ``inconclusive``, ``not run``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from empirical.analysis import Verdict


@dataclass(frozen=True)
class Claim:
    id: str
    section: str
    statement: str
    evaluate: Callable[[Path], list[Verdict]]


def _json(path: Path) -> Any | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _csv(path: Path) -> list[dict[str, str]] | None:
    if not path.is_file():
        return None
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def scale_of(folder: Path) -> str:
    """The scale a study folder was produced at, as ``mtlp reproduce`` recorded it."""
    record = _json(folder / "provenance.json") or {}
    return record.get("scale", "as run")


def theory_finding(root: Path, claim: str, expected: dict[str, str]) -> Verdict:
    """Confirmed when every named statement of ``theory.json`` has the expected verdict
    (``holds``/``fails``; ``holds-within-bound`` counts as ``holds``), refuted otherwise."""
    record = _json(root / "theory" / "theory.json")
    if record is None:
        return Verdict(claim, "not run", "exact", "theory", "theory/theory.json not found")
    verdicts = {s["id"]: s["verdict"] for s in record["statements"]}
    found = {}
    for sid in expected:
        found[sid] = verdicts.get(sid, "missing")
    missing = [s for s, v in found.items() if v == "missing"]
    if missing:
        return Verdict(claim, "not run", "exact", "theory", f"statements missing: {missing}")
    agree = all(
        (found[s] in ("holds", "holds-within-bound")) == (want == "holds")
        for s, want in expected.items()
    )
    evidence = "; ".join(f"{s}: {found[s]} (claim needs {want})" for s, want in expected.items())
    return Verdict(claim, "confirmed" if agree else "refuted", "exact", "theory", evidence)


def toy_finding(root: Path, claim: str, rows: Callable[[dict[str, str]], bool]) -> Verdict:
    """Confirmed when every selected row of the invariance toy's summary agrees with the
    paper's expectation for it (``agrees`` column, computed by the study), refuted otherwise."""
    folder = root / "sim" / "invariance-toy"
    table = _csv(folder / "summary.csv")
    if table is None:
        return Verdict(claim, "not run", "-", "synthetic", "sim/invariance-toy not run")
    chosen = [r for r in table if rows(r)]
    if not chosen:
        return Verdict(claim, "not run", scale_of(folder), "synthetic", "no matching toy runs")
    bad = [f"{r['method']}/{r['optimizer']}/{r['backbone']}/{r['part']}" for r in chosen
           if r["agrees"] != "True"]  # fmt: skip
    verdict = "refuted" if bad else "confirmed"
    evidence = f"{len(chosen) - len(bad)} of {len(chosen)} toy comparisons agree with the paper"
    evidence += f" (disagreeing: {', '.join(bad)})" if bad else ""
    return Verdict(claim, verdict, scale_of(folder), "synthetic", evidence)


def study_findings(root: Path, study: str, claim: str, ids: tuple[str, ...]) -> list[Verdict]:
    """The verdicts an empirical study computed (``verdicts.json``) for the named claims."""
    folder = root / "empirical" / study
    record = _json(folder / "verdicts.json")
    if record is None:
        return [Verdict(claim, "not run", "-", "images", f"empirical/{study} not run")]
    found = [
        Verdict(claim, v["verdict"], v["scale"], v["data"], f"{v['claim']}: {v['evidence']}")
        for v in record["verdicts"]
        if v["claim"] in ids
    ]
    return found or [Verdict(claim, "not run", "-", "images", f"no {ids} in {study}")]


def cagrad_toy_finding(root: Path, claim: str) -> list[Verdict]:
    """Adam reaches the global minimum of the CAGrad toy in more (method, lr) cells than GD."""
    folder = root / "sim" / "cagrad-toy"
    rows = _csv(folder / "iterations.csv")
    if rows is None:
        return [Verdict(claim, "not run", "-", "synthetic", "sim/cagrad-toy not run")]
    cells: dict[tuple[str, str, str], bool] = {}
    for r in rows:
        key = (r["optimizer"], r["method"], r["lr"])
        cells[key] = cells.get(key, True) and r["iterations"] != ""
    reached = {opt: sum(v for (o, _, _), v in cells.items() if o == opt) for opt in ("gd", "adam")}
    total = {opt: sum(1 for (o, _, _) in cells if o == opt) for opt in ("gd", "adam")}
    verdict = (
        "confirmed"
        if reached["adam"] > reached["gd"]
        else "refuted"
        if reached["adam"] < reached["gd"]
        else "inconclusive"
    )
    evidence = (
        f"cells where every start reaches the minimum: Adam {reached['adam']} of "
        f"{total['adam']}, GD {reached['gd']} of {total['gd']}"
    )
    return [Verdict(claim, verdict, scale_of(folder), "synthetic", evidence)]


def conflict_sim_finding(root: Path, claim: str, statistic: str) -> list[Verdict]:
    """From the conflict simulation's separation table: in how many settings the inter-task and
    inter-sample distributions of ``statistic`` separate, raw vs UW-O-normalised losses."""
    folder = root / "sim" / "conflict-sim"
    rows = _csv(folder / "separation.csv")
    if rows is None:
        return [Verdict(claim, "not run", "-", "synthetic", "sim/conflict-sim not run")]
    counts = {}
    for norm in ("raw", "uw-o"):
        chosen = [r for r in rows if r["statistic"] == statistic and r["normalisation"] == norm]
        counts[norm] = (sum(r["separates"] == "True" for r in chosen), len(chosen))
    raw, uwo = counts["raw"], counts["uw-o"]
    evidence = (
        f"{statistic}: inter-task and inter-sample separate in {raw[0]} of {raw[1]} settings "
        f"(raw losses), {uwo[0]} of {uwo[1]} (UW-O)"
    )
    if statistic == "cosine":  # claim: direction conflicts alike, so they rarely separate
        verdict = "confirmed" if raw[0] <= raw[1] / 2 else "refuted"
    else:  # claim: magnitudes set tasks apart, through the loss units (raw, not UW-O)
        verdict = "confirmed" if raw[0] > uwo[0] else "inconclusive"
    return [Verdict(claim, verdict, scale_of(folder), "synthetic", evidence)]


def _toy(method: str, optimizer: str, part: str | None = None) -> Callable[[dict], bool]:
    return lambda r: (
        r["method"] == method
        and r["optimizer"] == optimizer
        and (part is None or r["part"].startswith(part))
    )


CLAIMS: tuple[Claim, ...] = (
    Claim(
        "adam-partial-invariance",
        "theory",
        "Adam's update of a task's head does not change when that task's loss is scaled; the "
        "shared backbone's update does (a partial loss-scale invariance).",
        lambda root: [
            theory_finding(
                root,
                "adam-partial-invariance",
                {"adam.head.per-task-scale": "holds", "adam.backbone.per-task-scale": "fails"},
            ),
            toy_finding(root, "adam-partial-invariance", _toy("ew", "adam")),
        ],
    ),
    Claim(
        "sgd-weight-is-lr",
        "theory",
        "With SGD (and SGD+momentum) a task's loss weight acts as a learning rate of its head.",
        lambda root: [
            theory_finding(
                root,
                "sgd-weight-is-lr",
                {
                    "sgd.head.loss-scale-is-lr": "holds",
                    "sgd-momentum.head.loss-scale-is-lr": "holds",
                },
            ),
            toy_finding(root, "sgd-weight-is-lr", _toy("ew", "sgdm")),
        ],
    ),
    Claim(
        "uwo-full-invariance",
        "theory",
        "Optimal uncertainty weighting (UW-O) makes every parameter's update invariant to "
        "per-task loss scales, for any optimizer.",
        lambda root: [
            theory_finding(
                root, "uwo-full-invariance", {"uwo.per-task-scale.all-optimizers": "holds"}
            ),
            toy_finding(root, "uwo-full-invariance", lambda r: r["method"] == "uw-o"),
        ],
    ),
    Claim(
        "per-task-adam-full-invariance",
        "theory",
        "One Adam state per task (task-specific Adam) is invariant to per-task loss scales in "
        "the shared backbone too.",
        lambda root: [
            theory_finding(
                root,
                "per-task-adam-full-invariance",
                {"per-task-adam.backbone.per-task-scale": "holds"},
            ),
            toy_finding(root, "per-task-adam-full-invariance", _toy("ew", "adam-per-task")),
        ],
    ),
    Claim(
        "beta0-all-parameters",
        "theory",
        "Appendix A1, claim (b): with beta = 0 Adam is loss-scale invariant for all parameters.",
        lambda root: [
            theory_finding(
                root,
                "beta0-all-parameters",
                {"adam-beta0.backbone.per-task-scale": "holds"},
            )
        ],
    ),
    Claim(
        "cagrad-toy-adam",
        "sim",
        "On the CAGrad toy problem, Adam reaches the global minimum for more methods and "
        "learning rates than gradient descent (Table 1, A3).",
        lambda root: cagrad_toy_finding(root, "cagrad-toy-adam"),
    ),
    Claim(
        "adam-dominates-pareto",
        "empirical",
        "Across MTL methods, Adam runs dominate the Pareto front and reach lower Δm than "
        "SGD+momentum (Tables 2, A2, A4-A7).",
        lambda root: study_findings(
            root,
            "optimizer-sweep",
            "adam-dominates-pareto",
            ("adam-dominates-pareto-front", "adam-lower-delta-m-than-sgd"),
        ),
    ),
    Claim(
        "inter-sample-conflicts",
        "empirical",
        "Gradient conflicts in direction are as large between samples of one task as between "
        "tasks (Fig. 4, A5-A7).",
        lambda root: [
            *conflict_sim_finding(root, "inter-sample-conflicts", "cosine"),
            *study_findings(
                root, "gradient-conflicts", "inter-sample-conflicts", ("direction-conflicts",)
            ),
        ],
    ),
    Claim(
        "magnitude-similarity",
        "empirical",
        "What sets tasks apart is gradient magnitude: magnitude similarity is lower between "
        "tasks than between samples.",
        lambda root: [
            *conflict_sim_finding(root, "magnitude-similarity", "magnitude_similarity"),
            *study_findings(
                root, "gradient-conflicts", "magnitude-similarity", ("magnitude-similarity",)
            ),
        ],
    ),
    Claim(
        "corruption-robustness",
        "empirical",
        "MTL features are more robust to image corruptions than single-task features (the "
        "paper finds a minor indication that depends on the dataset and the architecture, "
        "Tables A8-A11; each finding is one dataset, architecture and method).",
        lambda root: study_findings(
            root, "corruptions", "corruption-robustness", ("mtl-more-robust",)
        ),
    ),
)


OPEN_QUESTIONS: tuple[Claim, ...] = (
    Claim(
        "head-invariance-explains-adam",
        "open questions",
        "If Adam helps MTL through its head invariance, Adam on the heads with SGD on the "
        "backbone keeps most of its gain, and SGD on the heads with Adam on the backbone loses "
        "it (the brief's hybrid question, a causal test of the paper's explanation).",
        lambda root: study_findings(
            root, "hybrids", "head-invariance-explains-adam", ("head-invariance-explains-adam",)
        ),
    ),
    Claim(
        "invariant-sgd-heads-keep-adam-gain",
        "open questions",
        "If head invariance is what Adam brings to MTL, SGD made loss-scale invariant in the "
        "heads (SGD-RMS: a per-task-head rate lr / RMS of Adam's second moment) with SGD on the "
        "backbone keeps most of Adam's gain (the brief's hybrid question).",
        lambda root: study_findings(
            root,
            "hybrids",
            "invariant-sgd-heads-keep-adam-gain",
            ("invariant-sgd-heads-keep-adam-gain",),
        ),
    ),
    Claim(
        "mtl-methods-help-stl",
        "open questions",
        "The paper's outlook: MTL methods applied to groups of samples of one task improve "
        "single-task learning beyond tuning its learning rate.",
        lambda root: study_findings(
            root, "stl-methods", "mtl-methods-help-stl", ("mtl-methods-help-stl",)
        ),
    ),
)
CLAIMS = CLAIMS + OPEN_QUESTIONS


def evaluate_all(root: str | Path) -> list[Verdict]:
    """Every claim's findings, in the order of :data:`CLAIMS`."""
    return [f for claim in CLAIMS for f in claim.evaluate(Path(root))]


__all__ = ["CLAIMS", "Claim", "evaluate_all"]
