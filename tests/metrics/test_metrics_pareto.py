"""Pareto dominance and fronts: the laws of a front, golden counts, and bad input."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtl.metrics import dominates, not_dominated_by, pareto_counts, pareto_front

KEYS = ("a", "b", "c")
# Small integer grids make ties and duplicates common.
point = st.fixed_dictionaries({k: st.integers(0, 4).map(float) for k in KEYS})
pools = st.tuples(
    st.lists(point, min_size=1, max_size=12),
    st.fixed_dictionaries({k: st.booleans() for k in KEYS}),
)


@given(pools)
def test_front_members_are_mutually_non_dominated(pool):
    points, directions = pool
    front = pareto_front(points, directions)
    assert front
    assert not any(dominates(points[i], points[j], directions) for i in front for j in front)


@given(pools)
def test_every_other_point_is_dominated_by_a_front_member(pool):
    points, directions = pool
    front = pareto_front(points, directions)
    for j in set(range(len(points))) - set(front):
        assert any(dominates(points[i], points[j], directions) for i in front)


@given(pools, st.randoms(use_true_random=False))
def test_front_does_not_depend_on_the_order(pool, rng):
    points, directions = pool
    order = list(range(len(points)))
    rng.shuffle(order)
    shuffled = [points[i] for i in order]
    front = pareto_front(shuffled, directions)
    assert sorted(order[i] for i in front) == pareto_front(points, directions)


@given(pools, st.data())
def test_adding_a_dominated_point_changes_nothing(pool, data):
    points, directions = pool
    front = pareto_front(points, directions)
    worse = dict(points[data.draw(st.sampled_from(front))])
    key = data.draw(st.sampled_from(KEYS))
    worse[key] += -1.0 if directions[key] else 1.0
    position = data.draw(st.integers(0, len(points)))
    extended = [*points[:position], worse, *points[position:]]
    shifted = [i + (i >= position) for i in front]
    assert pareto_front(extended, directions) == shifted


@given(pools)
def test_monotone_transforms_of_a_metric_keep_the_front(pool):
    points, directions = pool
    increasing = [{**p, "a": math.exp(p["a"]), "b": p["b"] ** 3 + 7} for p in points]
    assert pareto_front(increasing, directions) == pareto_front(points, directions)
    # A decreasing transform together with the opposite direction is the same order.
    decreasing = [{**p, "c": 1 / (1 + p["c"])} for p in points]
    flipped = {**directions, "c": not directions["c"]}
    assert pareto_front(decreasing, flipped) == pareto_front(points, directions)


@given(pools, st.data())
def test_counts_per_group(pool, data):
    points, directions = pool
    groups = data.draw(st.lists(st.sampled_from("xy"), min_size=len(points), max_size=len(points)))
    counts = pareto_counts(points, groups, directions)
    front = pareto_front(points, directions)
    assert sum(c["full"] for c in counts.values()) == len(front)
    for group, c in counts.items():
        members = [p for p, g in zip(points, groups, strict=True) if g == group]
        assert c["full"] <= c["versus_others"] <= len(members)
    if len(counts) == 1:
        (only,) = counts.values()
        assert only == {"full": len(front), "versus_others": len(points)}


def test_golden_counts_by_hand():
    directions = {"miou": True, "abs_err": False}
    runs = [
        {"miou": 0.7, "abs_err": 0.02},  # 0, adam: front
        {"miou": 0.6, "abs_err": 0.01},  # 1, adam: front
        {"miou": 0.5, "abs_err": 0.03},  # 2, adam: dominated by 0 and by 3
        {"miou": 0.6, "abs_err": 0.02},  # 3, sgd: dominated by 0 (and 1)
        {"miou": 0.4, "abs_err": 0.05},  # 4, sgd: dominated by all
    ]
    groups = ["adam", "adam", "adam", "sgd", "sgd"]
    assert pareto_front(runs, directions) == [0, 1]
    assert pareto_counts(runs, groups, directions) == {
        "adam": {"full": 2, "versus_others": 2},  # run 2 is dominated by sgd's run 3
        "sgd": {"full": 0, "versus_others": 0},
    }
    assert not_dominated_by(runs[3:], runs[2:3], directions) == [0]
    assert dominates(runs[0], runs[3], ["miou", "abs_err"])  # directions from the keys
    assert not dominates(runs[0], runs[0], directions)
    assert pareto_front([runs[0], runs[0]], directions) == [0, 1]  # duplicates stay


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"point lacks metrics \['b'\]"):
        dominates({"a": 1.0}, {"a": 1.0, "b": 2.0}, {"a": True, "b": True})
    with pytest.raises(ValueError, match="directions is empty"):
        pareto_front([{"a": 1.0}], {})
    with pytest.raises(ValueError, match="got the string 'miou'"):
        pareto_front([{"miou": 1.0}], "miou")
    with pytest.raises(ValueError, match="unknown metric 'a'"):
        pareto_front([{"a": 1.0}], ["a"])
    with pytest.raises(ValueError, match="one group per point: 1 points, 2 groups"):
        pareto_counts([{"a": 1.0}], ["x", "y"], {"a": True})
