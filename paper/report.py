"""The report: every stored result beside the published number, every claim with its verdict.

:func:`build` reads a results folder in the layout of ``mtlp reproduce`` and writes
``report/report.md`` (figures copied beside it), ``report/index.html``, a self-contained page
(figures inlined, equations as MathML, no network), ``report/report.tex`` and
``report/report.pdf``: built with LaTeX where an engine is installed, else printed from the page
by a headless Chromium where one is. It never trains: ``mtlp report RESULTS_DIR`` rebuilds the
report from stored results alone. Sections mirror the paper: the claims and their verdicts, the
theory (statements, derivations and the invariance atlas), the synthetic studies, the vision
studies, each figure and table with what produced it.
"""

from __future__ import annotations

import base64
import html
import json
import platform
import re
import shutil
import time
from pathlib import Path

from empirical.analysis import Verdict
from mtl.io import atomic_write_text
from paper import derivations, latex
from paper.claims import CLAIMS, evaluate_all
from paper.sections import (
    empirical_section,
    open_questions_section,
    provenance,
    sim_section,
    theory_section,
)

TITLE = "mtl-paradigms: Examining Common Paradigms in Multi-Task Learning, reproduced"
VERDICT_MARK = {"confirmed": "✔", "refuted": "✘", "inconclusive": "?", "not run": "–"}


def claims_section(findings: list[Verdict]) -> list[str]:
    lines = ["## Claims and verdicts", ""]
    lines += [
        "Each verdict is computed from the results below, at the scale and on the data named; "
        "a verdict from generated images or synthetic problems does not confirm a number of "
        "the full datasets.",
        "",
        "| claim | statement | evidence from | scale | verdict | details |",
        "|---|---|---|---|---|---|",
    ]
    statements = {c.id: c.statement for c in CLAIMS}
    previous = None
    for f in findings:
        mark = VERDICT_MARK.get(f.verdict, "")
        claim, statement = (f.claim, statements[f.claim]) if f.claim != previous else ("", "")
        previous = f.claim
        lines.append(
            f"| {claim} | {statement} | {f.data} | {f.scale} | {mark} {f.verdict} "
            f"| {_cell(f.evidence)} |"
        )
    return [*lines, ""]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def build(results: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of ``results`` into ``out`` (default ``results/report``); returns the
    HTML page's path."""
    results = Path(results)
    if not results.is_dir():
        raise FileNotFoundError(f"results folder {str(results)!r} does not exist")
    out = Path(out) if out is not None else results / "report"
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    findings = evaluate_all(results)
    lines = [f"# {TITLE}", ""]
    lines += [
        f"Built {time.strftime('%Y-%m-%d %H:%M:%S')} from `{results.name}/` with Python "
        f"{platform.python_version()}. Contents: [claims](#claims-and-verdicts), "
        "[theory](#theory), [synthetic studies](#synthetic-studies), "
        "[vision studies](#vision-studies), [open questions](#open-questions).",
        "",
    ]
    lines += claims_section(findings)
    for section in (theory_section, sim_section, empirical_section, open_questions_section):
        lines += section(results, figures)
    markdown_text = "\n".join(lines) + "\n"
    atomic_write_text(out / "report.md", markdown_text)
    atomic_write_text(
        out / "findings.json", json.dumps([f.as_dict() for f in findings], indent=1) + "\n"
    )
    page = out / "index.html"
    atomic_write_text(page, to_html(markdown_text, out, _math(results)))
    tex = atomic_write_text(out / "report.tex", latex.document(markdown_text))
    if latex.compile_pdf(tex) is None:
        _pdf(page)
    return page


def _math(results: Path) -> dict[str, str]:
    """LaTeX -> MathML of every stored derivation equation (empty without theory results)."""
    record_path = results / "theory" / "theory.json"
    if not record_path.is_file():
        return {}
    return derivations.math_map(json.loads(record_path.read_text())["statements"])


CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; vertical-align: top; }
th { background: #f0f0f0; }
img { max-width: 100%; border: 1px solid #eee; }
code { background: #f5f5f5; padding: 0 0.2em; }
.caption { font-size: 0.8em; color: #555; }
details { margin: 0.3em 0; }
summary { cursor: pointer; }
.math { overflow-x: auto; margin: 0.2em 0 0.8em 1.5em; }
pre.latex { white-space: pre-wrap; }
"""
MATH_BLOCK = re.compile(r"^\$\$\n(.+?)\n\$\$$", re.MULTILINE | re.DOTALL)
"""A display-math block of the Markdown: ``$$``, the LaTeX on its own lines, ``$$``."""


def to_html(markdown_text: str, base: Path, math: dict[str, str] | None = None) -> str:
    """A self-contained page: Markdown rendered, every figure inlined as a data URI, each
    display-math block as the MathML that ``math`` maps its LaTeX to (browsers render it
    natively; a block without MathML shows its LaTeX source)."""
    import markdown

    blocks: list[str] = []

    def protect(match: re.Match) -> str:
        latex = match.group(1)
        mathml = (math or {}).get(latex)
        blocks.append(mathml or f'<pre class="latex">{html.escape(latex)}</pre>')
        return f"MATHBLOCK{len(blocks) - 1}X"

    markdown_text = MATH_BLOCK.sub(protect, markdown_text)
    extensions = ["tables", "toc", "fenced_code", "md_in_html"]
    body = markdown.markdown(markdown_text, extensions=extensions)
    body = re.sub(
        r"<p>MATHBLOCK(\d+)X</p>",
        lambda m: f'<div class="math">{blocks[int(m.group(1))]}</div>',
        body,
    )

    def inline(match: re.Match) -> str:
        src = match.group(1)
        path = base / src
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'src="data:image/png;base64,{data}"'

    body = re.sub(r'src="([^"]+\.png)"', inline, body)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(TITLE)}</title><style>{CSS}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )


def _pdf(page: Path) -> None:
    """``report.pdf`` beside the page where a headless Chromium can print it (the fallback
    where no LaTeX engine is installed)."""
    import subprocess

    browser = next((b for b in ("chromium", "chromium-browser") if shutil.which(b)), None)
    if browser is None:
        return
    pdf = page.with_name("report.pdf")
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", f"--print-to-pdf={pdf}",
         page.resolve().as_uri()],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        print(f"report: no PDF ({browser} exited {result.returncode})")


def summary_lines(results: str | Path) -> list[str]:
    """One line per finding, for the end of ``mtlp reproduce``."""
    return [
        f"{f.verdict:>12}  {f.claim} [{f.data}, {f.scale}]" for f in evaluate_all(Path(results))
    ]


__all__ = ["build", "provenance", "summary_lines", "to_html"]
