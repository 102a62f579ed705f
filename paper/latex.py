"""The report as a complete LaTeX document, and its PDF where a LaTeX engine is installed.

:func:`document` turns the report's Markdown (the subset :mod:`paper.report` writes: headings,
paragraphs with code, emphasis and links, pipe tables, lists, figures with captions, fenced
code, ``$$`` display math, ``<details>`` blocks) into LaTeX; display math passes through as
sympy printed it. The text is escaped to ASCII (non-ASCII characters mapped to LaTeX commands),
so any engine of :data:`ENGINES` compiles it with the packages of a basic TeX installation.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

ENGINES = ("pdflatex", "lualatex", "tectonic")
"""LaTeX engines tried in this order (tectonic fetches missing packages: it may need a network)."""
PREAMBLE = r"""\documentclass[10pt]{article}
\usepackage[margin=2cm]{geometry}
\usepackage{amsmath,amssymb}
\usepackage{graphicx}
\usepackage{longtable,array}
\usepackage[hidelinks]{hyperref}
\setlength{\parindent}{0pt}
\setlength{\parskip}{0.4em}
\setlength{\emergencystretch}{3em}
\newcommand{\fitwidth}[1]{\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{#1}}
"""
UNICODE = {
    "§": r"\S{}",
    "±": r"$\pm$",
    "ũ": r"\~{u}",
    "Δ": r"$\Delta$",
    "Σ": r"$\Sigma$",
    "α": r"$\alpha$",
    "β": r"$\beta$",
    "δ": r"$\delta$",
    "ε": r"$\varepsilon$",
    "η": r"$\eta$",
    "λ": r"$\lambda$",
    "μ": r"$\mu$",
    "ρ": r"$\rho$",
    "σ": r"$\sigma$",
    "τ": r"$\tau$",
    "–": "--",
    "—": "---",
    "’": "'",
    "“": "``",
    "”": "''",
    "…": r"\ldots{}",
    "⋯": r"$\cdots$",
    "·": r"$\cdot$",
    "×": r"$\times$",
    "≈": r"$\approx$",
    "≡": r"$\equiv$",
    "≤": r"$\leq$",
    "≥": r"$\geq$",
    "≠": r"$\neq$",
    "→": r"$\to$",
    "↦": r"$\mapsto$",
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "∇": r"$\nabla$",
    "²": r"$^2$",
    "✓": r"$\checkmark$",
    "✔": r"$\checkmark$",
    "✘": r"$\times$",
}
"""Non-ASCII characters of the report's text -> LaTeX; any other prints as ``?``."""
_SPECIAL = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "#": r"\#",
    "$": r"\$",
    "%": r"\%",
    "&": r"\&",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
}
HEADINGS = {2: "section", 3: "subsection", 4: "subsubsection"}
MATH = re.compile(r"^\$\$\n(.+?)\n\$\$$", re.MULTILINE | re.DOTALL)


def escape(text: str) -> str:
    """Plain text as LaTeX: special characters escaped, non-ASCII ones mapped (:data:`UNICODE`)."""
    out = []
    for i, char in enumerate(text):
        if char == "-" and text[i + 1 : i + 2] == "-":
            out.append("-{}")  # a literal --, not an en dash
        elif char in _SPECIAL:
            out.append(_SPECIAL[char])
        elif ord(char) < 128:
            out.append(char)
        else:
            out.append(UNICODE.get(char, "?"))
    return "".join(out)


def _code(text: str) -> str:
    breakable = re.sub(r"([./\-])", "\\1\x01", text)
    return r"\texttt{" + escape(breakable).replace("\x01", r"\allowbreak{}") + "}"


def inline(text: str) -> str:
    """One line of Markdown (code, bold, emphasis, links, escapes, inline HTML) as LaTeX."""
    kept: list[str] = []

    def keep(latex: str) -> str:
        kept.append(latex)
        return f"\x00{len(kept) - 1}\x00"

    text = re.sub(r"`([^`]+)`", lambda m: keep(_code(m.group(1))), text)
    text = re.sub(r"<code>(.*?)</code>", lambda m: keep(_code(html.unescape(m.group(1)))), text)
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    text = re.sub(r"\\([\\`*_\[\]<>{}()#+\-.!|])", lambda m: keep(escape(m.group(1))), text)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    latex = _styled(text)
    return re.sub("\x00(\\d+)\x00", lambda m: kept[int(m.group(1))], latex)


def _styled(text: str) -> str:
    match = re.search(r"\*\*(.+?)\*\*|(?<![\w\\])_(.+?)_(?!\w)|(?<![\w*])\*(.+?)\*(?!\w)", text)
    if match is None:
        return escape(text)
    inner = next(g for g in match.groups() if g is not None)
    command = "textbf" if match.group(1) is not None else "emph"
    before, after = text[: match.start()], text[match.end() :]
    return f"{escape(before)}\\{command}{{{_styled(inner)}}}{_styled(after)}"


def _cells(row: str) -> list[str]:
    row = row.strip().removeprefix("|").removesuffix("|")
    return [c.strip() for c in re.split(r"(?<!\\)\|", row)]


def _table(rows: list[str]) -> list[str]:
    header, body = _cells(rows[0]), [_cells(r) for r in rows[2:]]
    n = len(header)
    size = f"\\dimexpr({0.98 / n:.4f}\\linewidth-2\\tabcolsep)\\relax"
    width = f">{{\\raggedright\\arraybackslash}}p{{{size}}}"
    lines = [r"{\footnotesize", r"\begin{longtable}{" + "|".join([width] * n) + "}", r"\hline"]
    lines.append(" & ".join(r"\textbf{" + inline(c) + "}" for c in header) + r" \\ \hline")
    lines.append(r"\endhead")
    for cells in body:
        cells = (cells + [""] * n)[:n]
        lines.append(" & ".join(inline(c) for c in cells) + r" \\ \hline")
    return [*lines, r"\end{longtable}}", ""]


def _math(latex: str) -> list[str]:
    return [r"\begin{center}", r"\fitwidth{$\displaystyle " + latex + "$}", r"\end{center}"]


def document(markdown_text: str) -> str:
    """A complete LaTeX document of the report's Markdown (its ``# `` heading is the title)."""
    blocks: list[str] = []

    def protect(match: re.Match) -> str:
        blocks.append(match.group(1))
        return f"\x02MATH{len(blocks) - 1}\x02"

    lines = MATH.sub(protect, markdown_text).splitlines()
    title, body, paragraph = "Report", [], []

    def flush() -> None:
        if paragraph:
            body.extend([" ".join(inline(p) for p in paragraph), ""])
            paragraph.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        heading = re.match(r"^(#{1,6})\s+(.*)$", line)
        if not stripped or stripped.startswith(("<details", "</details")):
            flush()
        elif match := re.fullmatch(r"\x02MATH(\d+)\x02", stripped):
            flush()
            body += _math(blocks[int(match.group(1))])
        elif heading:
            flush()
            level, text = len(heading.group(1)), heading.group(2)
            if level == 1:
                title = text
            else:
                body += [f"\\{HEADINGS.get(level, 'paragraph')}*{{{inline(text)}}}", ""]
        elif stripped.startswith("<summary>"):
            flush()
            body += [r"\medskip", f"\\noindent\\textbf{{{inline(stripped)}}}", ""]
        elif match := re.fullmatch(r"!\[([^\]]*)\]\(([^)]+)\)", stripped):
            flush()
            body += [
                r"\begin{center}",
                rf"\includegraphics[width=0.9\linewidth]{{{match.group(2)}}}",
            ]
            body += [r"\end{center}"]
        elif match := re.fullmatch(r'<p class="caption">(.*)</p>', stripped):
            flush()
            body += [rf"{{\small\emph{{{inline(match.group(1))}}}}}", ""]
        elif stripped.startswith("```"):
            flush()
            code = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                code.append("".join(c if ord(c) < 128 else "?" for c in lines[i]))
                i += 1
            body += [r"\begin{verbatim}", *code, r"\end{verbatim}", ""]
        elif stripped.startswith("|") and i + 1 < len(lines) and set(lines[i + 1]) <= set("|-: "):
            flush()
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(lines[i])
                i += 1
            body += _table(rows)
            continue
        elif stripped.startswith("- "):
            flush()
            items = []
            while i < len(lines) and lines[i].strip().startswith("- "):
                items.append(r"\item " + inline(lines[i].strip()[2:]))
                i += 1
            body += [r"\begin{itemize}", *items, r"\end{itemize}", ""]
            continue
        else:
            paragraph.append(stripped)
        i += 1
    flush()
    head = [PREAMBLE, f"\\title{{{inline(title)}}}", r"\date{}", r"\begin{document}", r"\maketitle"]
    return "\n".join([*head, "", *body, r"\end{document}", ""])


def engine() -> str | None:
    """The first LaTeX engine of :data:`ENGINES` on the path, or None."""
    return next((e for e in ENGINES if shutil.which(e)), None)


def compile_pdf(tex: Path, timeout: float = 600) -> Path | None:
    """``tex`` compiled into a PDF beside it (figures resolve from its folder); None, with the
    reason printed, when no engine is installed or the engine fails."""
    found = engine()
    if found is None:
        return None
    pdf = tex.with_suffix(".pdf")
    with tempfile.TemporaryDirectory() as build:
        if found == "tectonic":
            command = [found, "--outdir", build, tex.name]
        else:
            flags = ["-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape"]
            command = [found, *flags, f"-output-directory={build}", tex.name]
        try:
            result = subprocess.run(
                command, cwd=tex.parent, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            print(f"report: no LaTeX PDF ({found} ran past {timeout:.0f} s)")
            return None
        built = Path(build) / pdf.name
        if result.returncode != 0 or not built.is_file():
            tail = " ".join(result.stdout.splitlines()[-3:])
            print(f"report: no LaTeX PDF ({found} exited {result.returncode}: {tail})")
            return None
        shutil.move(built, pdf)
    return pdf
