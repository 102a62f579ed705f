"""The paper's pairs: which gradients are compared, how many pairs, and their summaries."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mtl.gradients import (
    all_pairs,
    conflict_study,
    draw,
    inter_sample_pairs,
    inter_task_pairs,
    pair_statistics,
    summarize,
    summarize_epoch,
)


@settings(deadline=None)
@given(tasks=st.integers(2, 8), samples=st.integers(2, 8))
def test_pairs_are_all_unordered_pairs_of_the_right_kind(tasks, samples):
    task_of = lambda r: r // samples  # noqa: E731  rows of G.reshape(T * B, P)
    sample_of = lambda r: r % samples  # noqa: E731
    for pairs, same, differ, count in [
        (inter_task_pairs(tasks, samples), sample_of, task_of, samples * math.comb(tasks, 2)),
        (inter_sample_pairs(tasks, samples), task_of, sample_of, tasks * math.comb(samples, 2)),
    ]:
        rows = {tuple(p) for p in pairs.tolist()}
        assert len(rows) == len(pairs) == count
        assert all(same(a) == same(b) and differ(a) < differ(b) for a, b in rows)


@settings(deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 70), k=st.integers(2, 10))
def test_draw_picks_distinct_indices_reproducibly(seed, n, k):
    picked = draw(n, k, torch.Generator().manual_seed(seed))
    assert picked == sorted(set(picked)) and len(picked) == min(n, k)
    assert all(0 <= i < n for i in picked)
    assert picked == draw(n, k, torch.Generator().manual_seed(seed))


def test_conflict_study_compares_the_paper_gradients():
    gen = torch.Generator().manual_seed(3)
    G = torch.randn(3, 4, 5, generator=gen, dtype=torch.float64)  # (T, B, P)
    study = conflict_study(G)
    # inter-task pair (task 0, task 2) on sample 1, inter-sample pair (sample 1, 3) of task 2
    inter_task = pair_statistics(torch.stack([G[0, 1], G[2, 1]]), torch.tensor([[0, 1]]))
    m = inter_task_pairs(3, 4).tolist().index([0 * 4 + 1, 2 * 4 + 1])
    assert study["inter_task"]["cosine"][m].item() == pytest.approx(inter_task["cosine"].item())
    inter_sample = pair_statistics(torch.stack([G[2, 1], G[2, 3]]), torch.tensor([[0, 1]]))
    m = inter_sample_pairs(3, 4).tolist().index([2 * 4 + 1, 2 * 4 + 3])
    assert study["inter_sample"]["dot"][m].item() == pytest.approx(inter_sample["dot"].item())
    # averaged variants: task gradients averaged over samples; sample gradients over tasks
    torch.testing.assert_close(
        study["inter_task_averaged"]["dot"], pair_statistics(G.mean(1), all_pairs(3))["dot"]
    )
    expected = (G[:, 0].mean(0) @ G[:, 3].mean(0)).item()
    m = all_pairs(4).tolist().index([0, 3])
    assert study["inter_sample_averaged"]["dot"][m].item() == pytest.approx(expected)
    with pytest.raises(ValueError, match="T >= 2 tasks and B >= 2 samples"):
        conflict_study(G[:1])


def test_summary_golden_values_and_pooling():
    values = torch.tensor([-1.0, 0.0, 1.0, 2.0, float("nan")])
    s = summarize(values)
    assert s["count"] == 4 and s["undefined"] == 1
    assert s["mean"] == 0.5 and s["std"] == pytest.approx(math.sqrt(1.25))
    # linear interpolation: position 0.025 * 3 = 0.075 between -1 and 0; 2.925 between 1 and 2
    assert s["p2.5"] == pytest.approx(-0.925) and s["p97.5"] == pytest.approx(1.925)
    assert s["negative"] == 0.25
    steps = [
        {"inter_task": {"cosine": torch.tensor([-1.0, 0.0])}},
        {"inter_task": {"cosine": values[2:4]}},
    ]
    assert summarize_epoch(steps)["inter_task"]["cosine"]["mean"] == 0.5
    with pytest.raises(ValueError, match="at least one tensor"):
        summarize([])
