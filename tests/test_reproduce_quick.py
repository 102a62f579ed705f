"""The whole chain at smoke scale: `mtlp reproduce --quick` (theory, sim and vision studies:
sweep -> runs -> tables -> figures -> verdicts) and the report built from its results."""

import json
import shutil
import subprocess

import pytest

import mtlp
from paper.claims import CLAIMS
from paper.links import problems


@pytest.fixture(scope="session")
def quick_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce") / "results"
    assert mtlp.main(["reproduce", "--quick", "--no-progress", "--out", str(out)]) == 0
    return out


def test_every_vision_study_wrote_computed_verdicts(quick_results):
    for study in ("optimizer-sweep", "gradient-conflicts", "corruptions", "stl-methods", "hybrids"):
        record = json.loads((quick_results / "empirical" / study / "verdicts.json").read_text())
        assert record["verdicts"], study
        for verdict in record["verdicts"]:
            assert verdict["verdict"] in ("confirmed", "refuted", "inconclusive", "not run")
            assert "generated" in verdict["data"] or "multi-digits" in verdict["data"]
            assert verdict["scale"] == "quick"
    hybrids = json.loads((quick_results / "empirical" / "hybrids" / "verdicts.json").read_text())
    assert all(v["verdict"] != "not run" for v in hybrids["verdicts"])  # the grid is complete


def test_optimizer_sweep_tables_and_figures(quick_results):
    folder = quick_results / "empirical" / "optimizer-sweep" / "synthetic-scenes-segnet"
    for name in ("table.csv", "table.md", "lr_sensitivity.png", "pareto.json", "pareto.md",
                 "parallel_coordinates.png"):  # fmt: skip
        assert (folder / name).stat().st_size > 0, name
    pareto = json.loads((folder / "pareto.json").read_text())
    assert set(pareto) == {"adam", "sgd"}
    for counts in pareto.values():
        assert 0 <= counts["full"]["count"] <= counts["versus_others"]["count"] <= counts["pool"]


def test_gradient_conflicts_per_layer_outputs(quick_results):
    import csv

    folder = quick_results / "empirical" / "gradient-conflicts" / "synthetic-scenes-segnet"
    for name in ("layers.csv", "layers.md", "layers.png", "summary.csv", "conflicts_raw.png"):
        assert (folder / name).stat().st_size > 0, name
    with (folder / "layers.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {r["normalisation"] for r in rows} == {"raw", "uw-o"}
    layers = {r["layer"] for r in rows}
    assert len(layers) > 10 and all(r["layer"].startswith("encoder.") for r in rows)  # SegNet
    for r in rows:
        assert float(r["lo"]) <= float(r["difference"]) <= float(r["hi"])


def test_report_names_every_claim_and_has_no_broken_link(quick_results):
    page = quick_results / "report" / "index.html"
    assert page.is_file()
    assert problems(page) == []
    findings = json.loads((quick_results / "report" / "findings.json").read_text())
    assert {f["claim"] for f in findings} == {c.id for c in CLAIMS}
    text = (quick_results / "report" / "report.md").read_text()
    for heading in ("Capacity allocation", "SGD/Adam hybrids", "Robustness by corruption family"):
        assert heading in text


def test_reproduce_again_redoes_nothing(quick_results, capsys):
    assert mtlp.main(["reproduce", "--quick", "--no-progress", "--out", str(quick_results)]) == 0
    assert "run(s) to start or resume" not in capsys.readouterr().out


def test_report_rebuilds_from_stored_results(quick_results, tmp_path):
    assert mtlp.main(["report", str(quick_results), "--out", str(tmp_path / "again")]) == 0
    assert problems(tmp_path / "again" / "index.html") == []


def test_headless_browser_renders_the_report(quick_results, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium)")
    page = (quick_results / "report" / "index.html").resolve().as_uri()
    flags = ["--headless", "--no-sandbox", "--disable-gpu"]
    dom = subprocess.run([browser, *flags, "--dump-dom", page], capture_output=True, text=True,
                         timeout=120, check=True).stdout  # fmt: skip
    assert "Claims and verdicts" in dom and "<title>mtl-paradigms" in dom
    shot = tmp_path / "shot.png"
    subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1200,1600", page],
                   capture_output=True, timeout=120, check=True)  # fmt: skip
    from PIL import Image

    image = Image.open(shot).convert("L")
    low, high = image.getextrema()
    assert high - low > 100  # not blank: dark text on a light page
