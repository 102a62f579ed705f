"""Δm (the paper's) and Δp (LibMTL's): laws, golden values, directions and bad input."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtl.metrics import delta_m, delta_p, higher_is_better, relative_terms, task_of

NYU_KEYS = (
    "miou",
    "pix_acc",
    "abs_err",
    "rel_err",
    "normal_mean",
    "normal_median",
    "within_11_25",
    "within_22_5",
    "within_30",
)
values = st.floats(0.01, 100.0)
baselines = st.lists(values, min_size=9, max_size=9).map(
    lambda v: dict(zip(NYU_KEYS, v, strict=True))
)


def test_directions():
    up = {"miou", "pix_acc", "within_11_25", "within_22_5", "within_30", "mean_acc"}
    for key in (*NYU_KEYS, "mean_acc"):
        assert higher_is_better(key) == (key in up)
    assert higher_is_better("Smiling/acc") and higher_is_better("5_o_Clock_Shadow/f1")
    assert higher_is_better("val/miou") and not higher_is_better("test/abs_err")
    with pytest.raises(ValueError, match="unknown metric 'rmse'; known: miou"):
        higher_is_better("rmse")
    with pytest.raises(ValueError, match="unknown metric 'acc'"):
        higher_is_better("acc")  # an accuracy names its task: "<task>/acc"


def test_tasks_of_keys():
    assert [task_of(k) for k in NYU_KEYS] == ["segmentation"] * 2 + ["depth"] * 2 + ["normal"] * 5
    assert task_of("val/rel_err") == "val/depth"
    assert task_of("Smiling/f1") == "Smiling"


@given(baselines)
def test_baseline_against_itself_is_zero(baseline):
    assert delta_m(baseline, baseline) == 0.0
    assert delta_p(baseline, baseline) == 0.0


@given(baselines, st.floats(0.01, 0.5))
def test_better_on_every_metric_is_negative_and_worse_is_positive(baseline, change):
    def moved(better: bool):
        return {
            k: v * (1 + change) if higher_is_better(k) == better else v * (1 - change)
            for k, v in baseline.items()
        }

    assert delta_m(moved(True), baseline) < 0 < delta_m(moved(False), baseline)
    assert delta_p(moved(False), baseline) < 0 < delta_p(moved(True), baseline)


@given(baselines, baselines)
def test_delta_m_is_the_flat_mean_of_the_per_metric_terms(model, baseline):
    singles = [delta_m(model, baseline, keys=[k]) for k in NYU_KEYS]
    assert delta_m(model, baseline) == pytest.approx(sum(singles) / len(singles), rel=1e-9)
    terms = relative_terms(model, baseline)
    assert delta_m(model, baseline) == pytest.approx(100 * sum(terms.values()) / 9, rel=1e-12)


@given(baselines, baselines)
def test_delta_p_is_minus_delta_m_when_every_task_has_as_many_metrics(model, baseline):
    keys = ["miou", "pix_acc", "abs_err", "rel_err"]  # Cityscapes: two metrics per task
    assert delta_p(model, baseline, keys) == pytest.approx(-delta_m(model, baseline, keys))


def test_golden_values_by_hand():
    baseline = {"miou": 0.5, "pix_acc": 0.8, "abs_err": 0.4, "normal_mean": 20.0}
    model = {"miou": 0.6, "pix_acc": 0.8, "abs_err": 0.5, "normal_mean": 25.0}
    # Terms (-1)^l (M_m - M_b) / M_b: -0.2, 0, +0.25, +0.25.
    assert delta_m(model, baseline) == pytest.approx(100 * (-0.2 + 0 + 0.25 + 0.25) / 4)
    # Per task: segmentation (0.2 + 0) / 2, depth -0.25, normal -0.25.
    assert delta_p(model, baseline) == pytest.approx(100 * (0.1 - 0.25 - 0.25) / 3)


def test_delta_p_follows_libmtls_count_improvement_example():
    # LibMTL's docstring example: base {'A': [96, 98], 'B': [0.2]}, new {'A': [93, 99], 'B': [0.5]},
    # weight {'A': [1, 0], 'B': [1]} (1: higher is better), here under keys of those directions.
    base = {"miou": 96.0, "abs_err": 98.0, "pix_acc": 0.2}
    new = {"miou": 93.0, "abs_err": 99.0, "pix_acc": 0.5}
    tasks = {"A": ["miou", "abs_err"], "B": ["pix_acc"]}
    expected = 100 * ((-(96 - 93) / 96 + (98 - 99) / 98) / 2 + (0.5 - 0.2) / 0.2) / 2
    assert delta_p(new, base, tasks=tasks) == pytest.approx(expected)


def test_bad_input_is_named():
    base = {"miou": 0.5, "abs_err": 0.4}
    with pytest.raises(ValueError, match=r"only in metrics: \['rel_err'\]; only in baseline: \[\]"):
        delta_m({**base, "rel_err": 1.0}, base)
    with pytest.raises(ValueError, match="'rel_err' in metrics, 'rel_err' in baseline"):
        delta_m(base, base, keys=["miou", "rel_err"])
    with pytest.raises(ValueError, match="baseline value of 'miou' is 0"):
        delta_m(base, {**base, "miou": 0.0})
    with pytest.raises(ValueError, match="unknown metric 'loss_x'"):
        delta_m({"loss_x": 1.0}, {"loss_x": 2.0})
    with pytest.raises(ValueError, match="keys is empty"):
        delta_m(base, base, keys=[])
    with pytest.raises(ValueError, match="either keys or tasks"):
        delta_p(base, base, keys=["miou"], tasks={"s": ["miou"]})
