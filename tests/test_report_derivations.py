"""The report's derivations from stored theory results: Markdown with sympy's LaTeX, the HTML
page with its MathML (self-contained), the LaTeX document, and its PDF where LaTeX is installed."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import theory
from paper import latex
from paper.derivations import anchor
from paper.links import problems
from paper.report import build, to_html

PACKAGES = {"geometry", "amsmath", "amssymb", "graphicx", "longtable", "array", "hyperref"}
"""The packages of a basic TeX installation (Debian's texlive-latex-base) the document uses."""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A report built from stored theory results alone (the statements as ``mtlp theory``
    writes them; the atlas is left out: the report shows it when present)."""
    results = tmp_path_factory.mktemp("results")
    statements = [s.to_json() for s in theory.statements()]
    (results / "theory").mkdir()
    (results / "theory" / "theory.json").write_text(json.dumps({"statements": statements}))
    page = build(results)
    return page.parent, statements


def equations(statements):
    return [eq for s in statements for eq in s["derivation"]]


def test_markdown_shows_each_stored_equation_as_display_math(report):
    folder, statements = report
    text = (folder / "report.md").read_text()
    blocks = re.findall(r"^\$\$\n(.+?)\n\$\$$", text, re.MULTILINE | re.DOTALL)
    assert blocks == [eq["latex"] for eq in equations(statements)]
    for s in statements:
        assert f'<details id="{anchor(s["id"])}"' in text
        assert f"[`{s['id']}`](#{anchor(s['id'])})" in text  # the statements table links to it


def test_html_renders_every_equation_as_its_stored_mathml_offline(report):
    folder, statements = report
    page = (folder / "index.html").read_text()
    assert page.count("<math ") == len(equations(statements)) > 500
    for eq in equations(statements)[:50]:
        assert eq["mathml"] in page
    assert 'class="latex"' not in page  # no block fell back to its LaTeX source
    assert "<script" not in page and "http://www.w3.org/1998/Math/MathML" in page
    assert problems(folder / "index.html") == []


def test_a_block_without_mathml_shows_its_latex_source():
    page = to_html("# t\n\n$$\n\\frac{a}{b} < c\n$$\n", Path("."), {})
    assert '<pre class="latex">\\frac{a}{b} &lt; c</pre>' in page
    page = to_html("# t\n\n$$\nx\n$$\n", Path("."), {"x": "<math><mi>x</mi></math>"})
    assert '<div class="math"><math><mi>x</mi></math></div>' in page


def _environments_balance(tex: str) -> bool:
    stack = []
    for kind, name in re.findall(r"\\(begin|end)\{([^}]+)\}", tex):
        if kind == "begin":
            stack.append(name)
        elif not stack or stack.pop() != name:
            return False
    return not stack


def _braces_balance(tex: str) -> bool:
    depth = 0
    for char in re.sub(r"\\[{}]", "", tex.replace("\\\\", "")):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def test_latex_document_is_complete_and_holds_every_equation(report):
    folder, statements = report
    tex = (folder / "report.tex").read_text(encoding="ascii")  # pure ASCII: any engine reads it
    assert tex.startswith(r"\documentclass") and tex.rstrip().endswith(r"\end{document}")
    assert tex.count(r"\begin{document}") == 1 and r"\maketitle" in tex
    used = re.findall(r"\\usepackage(?:\[[^\]]*\])?\{([^}]+)\}", tex)
    assert {p for group in used for p in group.split(",")} <= PACKAGES
    assert _environments_balance(tex) and _braces_balance(tex)
    assert tex.count(r"\fitwidth{$\displaystyle ") == len(equations(statements))
    for eq in equations(statements):
        assert f"\\fitwidth{{$\\displaystyle {eq['latex']}$}}" in tex
    markdown = (folder / "report.md").read_text()
    assert {c for c in markdown if ord(c) > 127} <= set(latex.UNICODE)  # every one is mapped


def test_structure_checks_can_fail():
    assert not _environments_balance(r"\begin{center}\end{itemize}")
    assert not _braces_balance(r"\textbf{x")
    assert _braces_balance(r"\{ \textbf{x} \}")


def test_markdown_subset_to_latex():
    assert latex.escape("a_b & 50% #1 {x} ~ ^") == (
        r"a\_b \& 50\% \#1 \{x\} \textasciitilde{} \textasciicircum{}"
    )
    assert latex.escape("Δm ≤ 1 ✔ ☃") == r"$\Delta$m $\leq$ 1 $\checkmark$ ?"
    assert latex.escape("--scale – x") == "-{}-scale -- x"
    assert latex.inline("**bold** _it `a_b`_ [link](#x) a\\_b") == (
        r"\textbf{bold} \emph{it \texttt{a\_b}} link a\_b"
    )
    assert latex.inline("exp_avg_sq") == r"exp\_avg\_sq"  # underscores inside words stay
    doc = latex.document("# Title\n\n## S\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n- x\n- y\n")
    assert r"\title{Title}" in doc and r"\section*{S}" in doc
    assert r"\begin{longtable}" in doc and r"1 & 2 \\ \hline" in doc
    assert r"\begin{itemize}" in doc and r"\item y" in doc


def test_pdf_is_built_with_latex_where_an_engine_is_installed(report):
    folder, _ = report
    if latex.engine() is None:
        pytest.skip(
            f"no LaTeX engine ({', '.join(latex.ENGINES)}) installed: the PDF is printed by "
            "headless Chromium where one is"
        )
    data = (folder / "report.pdf").read_bytes()
    assert data.startswith(b"%PDF") and (b"TeX" in data or b"xdvipdfmx" in data)


def test_headless_browser_parses_the_mathml(report):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium)")
    folder, statements = report
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"]
    page = (folder / "index.html").resolve().as_uri()
    run = subprocess.run([browser, *flags, page], capture_output=True, text=True, timeout=120)
    dom = run.stdout
    assert dom.count("<math ") == len(equations(statements))
    assert "<mfrac>" in dom and "<msqrt>" in dom and 'id="derivation-' in dom
