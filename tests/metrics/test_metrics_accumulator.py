"""The multi-task accumulator: the whole-set law, the dataset layouts, keys and bad input."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from metric_fixtures import TASKS, chunks, random_batch

from mtl.metrics import CELEBA_ATTRIBUTES, for_dataset, for_tasks

DENSE_KEYS = {"miou", "pix_acc", "abs_err", "rel_err"}
NORMAL_KEYS = {"normal_mean", "normal_median", "within_11_25", "within_22_5", "within_30"}


def _compute(batches):
    metrics = for_tasks(TASKS)
    for outputs, targets in batches:
        metrics.update(outputs, targets)
    return metrics.compute()


splits = st.integers(2, 7).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(st.integers(1, n - 1), max_size=n - 1, unique=True).map(sorted),
        st.integers(0, 2**31 - 1),
    )
)


@given(splits)
def test_any_split_into_batches_gives_the_one_batch_result(case):
    n, bounds, seed = case
    outputs, targets = random_batch(seed, n)
    whole = _compute([(outputs, targets)])
    split = _compute(list(zip(chunks(outputs, bounds), chunks(targets, bounds), strict=True)))
    assert split.keys() == whole.keys()
    for key, value in whole.items():
        assert split[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key


def test_keys_of_every_kind():
    outputs, targets = random_batch(0, 3)
    expected = DENSE_KEYS | NORMAL_KEYS | {"smiling/acc", "smiling/f1", "digit/acc", "mean_acc"}
    scores = _compute([(outputs, targets)])
    assert set(scores) == expected
    assert scores["mean_acc"] == pytest.approx((scores["smiling/acc"] + scores["digit/acc"]) / 2)


def test_reset_forgets_everything_seen():
    metrics = for_tasks(TASKS)
    metrics.update(*random_batch(1, 4))
    metrics.reset()
    outputs, targets = random_batch(2, 3)
    metrics.update(outputs, targets)
    assert metrics.compute() == _compute([(outputs, targets)])
    metrics.reset()
    with pytest.raises(ValueError, match="no valid element"):
        metrics.compute()


def test_dataset_layouts():
    b, h, w = 2, 4, 6
    city = for_dataset("cityscapes")
    city.update(
        {"segmentation": torch.randn(b, 7, h, w), "depth": torch.rand(b, 1, h, w)},
        {"segmentation": torch.randint(-1, 7, (b, h, w)), "depth": torch.rand(b, 1, h, w)},
    )
    assert set(city.compute()) == DENSE_KEYS
    assert set(for_dataset("nyuv2").metrics) == {"segmentation", "depth", "normal"}
    assert for_dataset("nyuv2").metrics["segmentation"].num_classes == 13
    celeba = for_dataset("celeba")
    assert tuple(celeba.metrics) == CELEBA_ATTRIBUTES
    assert len(CELEBA_ATTRIBUTES) == 40 == len(set(CELEBA_ATTRIBUTES))
    assert (CELEBA_ATTRIBUTES[0], CELEBA_ATTRIBUTES[20], CELEBA_ATTRIBUTES[-1]) == (
        "5_o_Clock_Shadow",
        "Male",
        "Young",
    )
    celeba.update(
        {a: torch.randn(b) for a in CELEBA_ATTRIBUTES},
        {a: torch.randint(0, 2, (b,)).float() for a in CELEBA_ATTRIBUTES},
    )
    assert len(celeba.compute()) == 2 * 40 + 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_state_stays_on_the_device_and_matches_the_cpu():
    outputs, targets = random_batch(3, 5)
    metrics = for_tasks(TASKS)
    for o, t in zip(chunks(outputs, [2]), chunks(targets, [2]), strict=True):
        metrics.update({k: v.cuda() for k, v in o.items()}, {k: v.cuda() for k, v in t.items()})
    assert metrics.metrics["segmentation"].confusion.is_cuda
    assert metrics.metrics["normal"].angles[0].is_cuda
    assert metrics.compute() == pytest.approx(_compute([(outputs, targets)]), rel=1e-6)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="known: cityscapes, nyuv2, celeba"):
        for_dataset("kitti")
    with pytest.raises(ValueError, match="unknown kind 'disparity'; valid kinds: segmentation"):
        for_tasks({"d": ("disparity", None)})
    with pytest.raises(ValueError, match="needs a number of classes"):
        for_tasks({"s": ("segmentation", None)})
    with pytest.raises(ValueError, match="takes num_classes=None"):
        for_tasks({"d": ("depth", 3)})
    with pytest.raises(ValueError, match="at most one task of each dense kind"):
        for_tasks({"a": ("depth", None), "b": ("depth", None)})
    with pytest.raises(ValueError, match=r"expected \(kind, num_classes_or_None\)"):
        for_tasks({"a": "depth"})
    outputs, targets = random_batch(0, 2)
    del outputs["depth"]
    with pytest.raises(ValueError, match=r"outputs must hold exactly .* missing \['depth'\]"):
        for_tasks(TASKS).update(outputs, targets)
