"""The report's sections, each built from one part of a results folder.

Every section states what produced it (:func:`provenance`); a study that is missing is said to
be not run, never left out silently. Figures are copied into the report's ``figures/`` folder
under a name that keeps their origin.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import time
from pathlib import Path

from paper import derivations, published

SIM_STUDIES = ("cagrad-toy", "invariance-toy", "loss-scale-sweep", "conflict-sim")
EMPIRICAL_STUDIES = ("optimizer-sweep", "gradient-conflicts", "corruptions", "stl-methods")
OPEN_QUESTIONS = ("capacity", "hybrids")
PUBLISHED_SETUPS = {
    f"{table.dataset}-{table.network}": name
    for name, table in ((n, published.table(n)) for n in published.TABLES)
}


def provenance(folder: Path) -> str:
    """What produced ``folder``: command, configuration hash, date, device and versions."""
    record_path = folder / "provenance.json"
    config_path = folder / "config.json"
    parts = []
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        parts.append(f"command `{record.get('command', '?')}`")
        for key in ("scale", "finished", "device", "versions"):
            if key in record:
                value = record[key]
                if isinstance(value, dict):
                    value = ", ".join(f"{k} {v}" for k, v in value.items())
                parts.append(f"{key} {value}")
    if config_path.is_file():
        digest = hashlib.sha256(config_path.read_bytes()).hexdigest()[:12]
        parts.append(f"config hash {digest}")
        mtime = time.strftime("%Y-%m-%d %H:%M", time.localtime(config_path.stat().st_mtime))
        parts.append(f"configured {mtime}")
    return "_Produced by: " + ("; ".join(parts) if parts else "unknown") + "._"


def demoted(markdown_text: str, levels: int = 2) -> list[str]:
    """A study's Markdown with its headings pushed down ``levels`` levels."""
    out = []
    for line in markdown_text.splitlines():
        out.append("#" * levels + line if line.startswith("#") else line)
    return [*out, ""]


def figure(src: Path, figures: Path, name: str, caption: str) -> list[str]:
    """Copy ``src`` into the report and reference it with a caption."""
    shutil.copyfile(src, figures / name)
    return [f"![{caption}](figures/{name})", "", f'<p class="caption">{caption}</p>', ""]


def _study_files(folder: Path, figures: Path, prefix: str) -> list[str]:
    lines = []
    for md in sorted(folder.glob("*.md")):
        lines += demoted(md.read_text(), 3)
    for png in sorted(folder.glob("*.png")):
        lines += figure(png, figures, f"{prefix}-{png.name}", f"{prefix}: {png.stem}")
    return lines


def theory_section(results: Path, figures: Path) -> list[str]:
    folder = results / "theory"
    lines = ["## Theory", ""]
    record_path = folder / "theory.json"
    if not record_path.is_file():
        return [*lines, "Not run: `mtlp theory --out DIR` writes this section's results.", ""]
    record = json.loads(record_path.read_text())
    lines += [provenance(folder), ""]
    lines += [
        "Each statement is a sympy proof (an identity that simplifies to zero) or an exact "
        "counterexample, computed by `mtlp theory`; one table per topic.",
        "",
    ]
    topics: dict[str, list[dict]] = {}
    for s in record["statements"]:
        topics.setdefault(s.get("topic", "loss-scale invariance"), []).append(s)
    for name, found in topics.items():
        lines += [
            f"### Statements: {name}",
            "",
            "| statement | claim | verdict | assumptions |",
            "|---|---|---|---|",
        ]
        for s in found:
            claim, assumptions = (
                text.replace("|", "\\|")
                for text in (s["claim"], "; ".join(s.get("assumptions", [])))
            )
            link = f"[`{s['id']}`](#{derivations.anchor(s['id'])})"
            lines.append(f"| {link} | {claim} | {s['verdict']} | {assumptions} |")
        lines.append("")
    lines += derivations.section([s for found in topics.values() for s in found])
    atlas = folder / "atlas.md"
    if atlas.is_file():
        lines += ["### Invariance atlas", "", *demoted(atlas.read_text(), 2)]
    return lines


def sim_section(results: Path, figures: Path) -> list[str]:
    lines = ["## Synthetic studies", ""]
    for study in SIM_STUDIES:
        folder = results / "sim" / study
        lines += [f"### {study}", ""]
        if not (folder / "config.json").is_file():
            lines += [f"Not run: `mtlp sim {study} --out DIR`.", ""]
            continue
        lines += [provenance(folder), "", *_study_files(folder, figures, f"sim-{study}")]
    return lines


def empirical_section(results: Path, figures: Path) -> list[str]:
    lines = ["## Vision studies", ""]
    for study in EMPIRICAL_STUDIES:
        folder = results / "empirical" / study
        lines += [f"### {study}", ""]
        if not (folder / "config.json").is_file():
            lines += [f"Not run: `mtlp empirical {study} --scale quick --out DIR`.", ""]
            continue
        lines += [provenance(folder), "", *_study_files(folder, figures, f"empirical-{study}")]
        for setup in sorted(p for p in folder.iterdir() if p.is_dir()):
            if not any(setup.glob("*.md")) and not any(setup.glob("*.png")):
                continue
            lines += [f"#### {study}: {setup.name}", ""]
            lines += _study_files(setup, figures, f"empirical-{study}-{setup.name}")
            lines += beside_published(setup)
    return lines


def beside_published(setup: Path) -> list[str]:
    """Our Δm at the best lr beside the published one, for the paper's four setups."""
    table_name = PUBLISHED_SETUPS.get(setup.name)
    ours_path = setup / "table.csv"
    if table_name is None or not ours_path.is_file():
        return []
    with ours_path.open(newline="") as f:
        ours = {(r["method"], r["optimizer"]): r for r in csv.DictReader(f)}
    paper = published.table(table_name)
    lines = [f"Beside the paper's Table {table_name} (test Δm in %, mean of 3 seeds):", ""]
    lines += ["| method | optimizer | ours | paper | difference |", "|---|---|---|---|---|"]
    for row in paper.rows:
        if row.delta_m is None:
            continue
        key = (row.method.lower().replace("alignedmtl", "aligned-mtl"), row.optimizer.lower())
        mine = ours.get(key)
        if mine is None:
            lines.append(f"| {row.method} | {row.optimizer} | not run | {row.delta_m:.2f} | |")
            continue
        value = float(mine["delta_m"])
        lines.append(
            f"| {row.method} | {row.optimizer} | {value:.2f} | {row.delta_m:.2f} | "
            f"{value - row.delta_m:+.2f} |"
        )
    return [*lines, ""]


def _csv_table(path: Path, digits: int = 4) -> list[str]:
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return []

    def cell(value: str) -> str:
        try:
            return f"{float(value):.{digits}g}"
        except ValueError:
            return value

    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows[1:]]
    return [*lines, ""]


def open_questions_section(results: Path, figures: Path) -> list[str]:
    """The brief's open questions: capacity allocation, SGD/Adam hybrids, and what the
    robustness difference between MTL and STL depends on."""
    lines = ["## Open questions", ""]
    titles = {"capacity": "Capacity allocation", "hybrids": "SGD/Adam hybrids"}
    for study in OPEN_QUESTIONS:
        folder = results / "empirical" / study
        lines += [f"### {titles[study]}", ""]
        if not (folder / "config.json").is_file():
            lines += [f"Not run: `mtlp empirical {study} --scale quick --out DIR`.", ""]
            continue
        lines += [provenance(folder), "", *_study_files(folder, figures, f"empirical-{study}")]
        for setup in sorted(p for p in folder.iterdir() if p.is_dir()):
            if any(setup.glob("*.md")):
                lines += [f"#### {titles[study]}: {setup.name}", ""]
                lines += _study_files(setup, figures, f"empirical-{study}-{setup.name}")
    lines += ["### Robustness by corruption family and severity", ""]
    folder = results / "empirical" / "corruptions"
    setups = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    tables = [(s, s / "by_family.csv", s / "by_severity.csv") for s in setups]
    tables = [t for t in tables if t[1].is_file()]
    if not tables:
        return [*lines, "Not run: `mtlp empirical corruptions --scale quick --out DIR`.", ""]
    for setup, by_family, by_severity in tables:
        lines += [f"#### {setup.name}", "", "δ (Eq. 26) by corruption family and task:", ""]
        lines += _csv_table(by_family)
        lines += ["δ by severity and task:", "", *_csv_table(by_severity)]
    return lines
