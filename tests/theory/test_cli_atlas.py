"""``mtlp theory``: JSON schema, the atlas with every cell, Markdown and LaTeX files."""

import json
import re

import pytest

import theory
from theory import KINDS, VERDICTS, atlas, cli
from theory.configs import ATLAS_ROWS, LEVER_OPTIMIZERS
from theory.statement import INVARIANCE, TOPICS

ZERO = re.compile(r"0|\\left\( 0(, \\  0)*\\right\)")
"""sympy's LaTeX of 0, or of a tuple of zeros."""
EXPECTED_ATLAS = {
    "SGD": ("fails", "fails", "fails"),
    "SGD+momentum": ("fails", "fails", "fails"),
    "Nesterov": ("fails", "fails", "fails"),
    "Adam": ("holds-within-bound", "holds-within-bound", "fails"),
    "AdamW": ("holds-within-bound", "holds-within-bound", "fails"),
    "Adam+L2": ("fails", "fails", "fails"),
    "RMSprop": ("holds-within-bound", "holds-within-bound", "fails"),
    "Adagrad": ("holds-within-bound", "holds-within-bound", "fails"),
    "signSGD": ("holds", "holds", "fails"),
    "Signum": ("holds", "holds", "fails"),
    "per-task Adam": ("holds-within-bound",) * 3,
    "AMSGrad": ("holds-within-bound", "holds-within-bound", "fails"),
    "Adamax": ("holds-within-bound", "holds-within-bound", "fails"),
    "NAdam": ("holds-within-bound", "holds-within-bound", "fails"),
    "RAdam": ("fails", "fails", "fails"),
    "Lion": ("holds", "holds", "fails"),
    "LAMB": ("holds-within-bound", "holds-within-bound", "fails"),
    "LARS": ("holds-within-bound", "holds-within-bound", "fails"),
    "Adafactor": ("holds-within-bound", "holds-within-bound", "fails"),
    "Muon": ("holds-within-bound", "holds-within-bound", "fails"),
    "Shampoo": ("holds-within-bound", "holds-within-bound", "fails"),
    "Adam heads + SGD+momentum backbone": ("fails", "holds-within-bound", "fails"),
    "SGD+momentum heads + Adam backbone": ("fails", "fails", "fails"),
    "SGD-RMS heads + SGD+momentum backbone": ("fails", "holds-within-bound", "fails"),
}
SGD_LIKE = ("lr x alpha_t", "no lr factor")
INERT = ("inert", "no lr factor")
EXPECTED_LEVERS = {
    "SGD": SGD_LIKE,
    "SGD+momentum": SGD_LIKE,
    "Nesterov": SGD_LIKE,
    "Adam": INERT,
    "AdamW": INERT,
    "Adam+L2": ("no lr factor", "no lr factor"),
    "RMSprop": INERT,
    "Adagrad": INERT,
    "signSGD": INERT,
    "Signum": INERT,
    "per-task Adam": ("inert", "inert"),
    "per-task SGD+momentum": ("lr x alpha_t", "lr x alpha_t"),
}


@pytest.fixture(scope="module")
def payload():
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert cli.main(["--json"]) == 0
    return json.loads(buffer.getvalue())


def test_json_schema(payload):
    assert set(payload) == {"statements", "atlas"}
    for s in payload["statements"]:
        keys = {"id", "topic", "claim", "verdict", "assumptions", "counterexample", "derivation"}
        bounded = s["verdict"] == "holds-within-bound"
        assert set(s) == (keys | {"latex"} if bounded else keys)
        if bounded:
            assert "\\" in s["latex"] or "epsilon" in s["latex"]  # sympy's LaTeX of the bound
        assert s["derivation"], s["id"]
        for eq in s["derivation"]:
            assert set(eq) in ({"label", "latex", "mathml"}, {"label", "latex", "mathml", "note"})
            assert eq["mathml"].startswith("<math ") and eq["mathml"].endswith("</math>")
        differences = [
            e["latex"].rsplit(" = ", 1)[1]
            for e in s["derivation"]
            if e["label"].endswith("difference, reduced")
        ]
        if s["verdict"] == "holds":  # every difference the proof shows is sympy's zero
            assert differences and all(ZERO.fullmatch(d) for d in differences), s["id"]
        if s["verdict"] == "fails":
            assert any(e["label"].startswith("counterexample") for e in s["derivation"])
        assert s["verdict"] in VERDICTS
        assert s["topic"] in {*TOPICS.values(), INVARIANCE}
        assert isinstance(s["assumptions"], list) and s["assumptions"]
        assert (s["counterexample"] is not None) == (s["verdict"] == "fails")


def test_atlas_has_every_cell_with_the_expected_verdict(payload):
    cells = payload["atlas"]["cells"]
    assert list(cells) == [c.label for c in ATLAS_ROWS]
    for label, verdicts in EXPECTED_ATLAS.items():
        assert tuple(cells[label][k]["verdict"] for k in KINDS) == verdicts
        for k in KINDS:
            cell = cells[label][k]
            if cell["verdict"] == "fails":
                cx = cell["counterexample"]
                assert cx["update_scaled"] != pytest.approx(cx["update_reference"], rel=1e-9)


def test_levers_table_has_every_cell_with_the_expected_verdict(payload):
    levers = payload["atlas"]["levers"]
    assert levers["kinds"] == list(atlas.LEVER_KINDS)
    assert list(levers["cells"]) == [c.label for c in LEVER_OPTIMIZERS]
    for label, verdicts in EXPECTED_LEVERS.items():
        row = levers["cells"][label]
        assert tuple(row[k]["verdict"] for k in atlas.LEVER_KINDS) == verdicts, label
        for cell in row.values():
            if cell["verdict"] == "no lr factor":
                cx = cell["counterexample"]
                assert cx["step"] > 1  # the first step defines the factor; a later one misses
                assert cx["update_scaled"] != pytest.approx(cx["update_reference"], rel=1e-9)


def test_eps_placement_names_its_map(payload):
    """Shampoo's eps sits on its factors (quadratic in g): proven with eps/alpha^2; Adam's
    outside the root: eps/alpha; RAdam's first steps are SGD steps, eps aside."""
    cells = payload["atlas"]["cells"]
    assert cells["Shampoo"]["head-per-task-scale"]["reason"].endswith("eps/alpha^2")
    assert cells["Adam"]["head-per-task-scale"]["reason"].endswith("eps/alpha")
    assert cells["RAdam"]["head-per-task-scale"]["counterexample"]["step"] == 1


def test_a_hybrid_cell_names_the_failing_group(payload):
    cell = payload["atlas"]["cells"]["Adam heads + SGD+momentum backbone"]["common-scale"]
    assert cell["reason"].startswith("backbone (sgd)")
    assert cell["counterexample"]["part"] == "backbone (sgd)"
    head = payload["atlas"]["cells"]["SGD+momentum heads + Adam backbone"]["head-per-task-scale"]
    assert head["counterexample"]["part"] == "heads (sgd)"


def test_text_output_and_files(tmp_path, capsys):
    assert cli.main(["--out", str(tmp_path / "report")]) == 0
    text = capsys.readouterr().out
    assert "adam.backbone.per-task-scale" in text and "| per-task Adam |" in text
    for heading in ("loss-scale invariance", "gradient clipping", "mixed precision", "schedules"):
        assert heading in text
    md = (tmp_path / "report" / "atlas.md").read_text()
    tex = (tmp_path / "report" / "atlas.tex").read_text()
    page = (tmp_path / "report" / "atlas.html").read_text()
    assert md == atlas.to_markdown(atlas.atlas(), atlas.levers())
    rows, levers = len(ATLAS_ROWS), len(LEVER_OPTIMIZERS)
    assert sum(line.startswith("| ") for line in md.splitlines()) == 2 + rows + levers
    for verdict in (*VERDICTS, *atlas.LEVER_LEGEND):  # a legend entry for every verdict
        assert f"**{verdict}**" in md and f"({verdict})" in tex and f"<dt>{verdict}</dt>" in page
    assert "eps = 0" in md and "eps/alpha" in md and "| per-task SGD+momentum |" in md
    assert page.count("<tr>") == 2 + rows + levers
    assert page.count("<td ") == 3 * rows + 2 * levers
    assert tex.startswith(r"\begin{tabular}") and tex.count(r"\\") == 2 + rows + levers
    assert not list((tmp_path / "report").glob("*.tmp"))


def test_unknown_option_exits_with_usage():
    with pytest.raises(SystemExit):
        cli.main(["--bogus"])


def test_adam_l2_counterexample_is_isolated_from_eps(payload):
    """The counterexample runs at eps = 0: what differs is the L2 term, by far more than
    rounding (the step-1 updates agree, lr sign(g), and the difference appears later)."""
    for kind in ("common-scale", "head-per-task-scale"):
        cell = payload["atlas"]["cells"]["Adam+L2"][kind]
        assert "eps = 0" in cell["reason"]
        assert cell["counterexample"]["step"] > 1
        cx = cell["counterexample"]
        assert abs(cx["update_scaled"] - cx["update_reference"]) > 1e-6


def test_the_report_has_a_table_per_topic(tmp_path, capsys):
    from paper.sections import theory_section

    assert cli.main(["--out", str(tmp_path / "results" / "theory")]) == 0
    capsys.readouterr()
    text = "\n".join(theory_section(tmp_path / "results", tmp_path / "figures"))
    for name in (INVARIANCE, *TOPICS.values()):
        assert f"### Statements: {name}" in text
    rows = [line for line in text.splitlines() if line.startswith("| [`")]
    assert len(rows) == len(theory.statements())
    assert all(len(re.findall(r"(?<!\\)\|", row)) == 5 for row in rows)  # 4 cells, none split
