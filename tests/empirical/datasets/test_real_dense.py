"""Cityscapes and NYUv2 readers on fixtures written in MTAN's .npy format."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import empirical.datasets as datasets
from empirical.datasets import fixtures
from empirical.datasets.npy_folders import holdout
from empirical.datasets.transforms import draw_params, sample_generator

N_TRAIN, N_VAL, VAL_SIZE = 12, 5, 4
DENSE = {
    "cityscapes": {
        "write": fixtures.write_cityscapes,
        "size": (16, 32),
        "folders": {"image": "image", "segmentation": "label_7", "depth": "depth"},
        "classes": 7,
    },
    "nyuv2": {
        "write": fixtures.write_nyuv2,
        "size": (12, 16),
        "folders": {
            "image": "image",
            "segmentation": "label",
            "depth": "depth",
            "normal": "normal",
        },
        "classes": 13,
    },
}


@pytest.fixture(params=list(DENSE), scope="module")
def dense(request, tmp_path_factory):
    """(name, its table above, a fixture root)."""
    name = request.param
    info = DENSE[name]
    root = info["write"](tmp_path_factory.mktemp(name), N_TRAIN, N_VAL, size=info["size"], seed=3)
    return name, info, root


def build(name, split, root, **options):
    options.setdefault("val_size", VAL_SIZE)
    return datasets.build(name, split, root=root, **options)


def stored(root: Path, folder: str, split_folder: str, n: int) -> np.ndarray:
    return np.load(root / split_folder / folder / f"{n}.npy")


def test_spec_names_the_tasks_and_the_official_size(dense):
    name, info, _ = dense
    spec = datasets.spec(name)
    expected = tuple(k for k in info["folders"] if k != "image")
    assert spec.task_names == expected and spec.real
    assert spec.task("segmentation").num_classes == info["classes"]
    assert spec.image_shape == {"cityscapes": (3, 128, 256), "nyuv2": (3, 288, 384)}[name]
    assert datasets.spec(name, size=(8, 8)).image_shape == (3, 8, 8)


def test_split_sizes_and_a_disjoint_hold_out(dense):
    name, _, root = dense
    train, val, test = (build(name, s, root) for s in datasets.SPLITS)
    assert (len(train), len(val), len(test)) == (N_TRAIN - VAL_SIZE, VAL_SIZE, N_VAL)
    assert set(train.stems).isdisjoint(val.stems)
    assert set(train.stems) | set(val.stems) == set(range(N_TRAIN))
    assert test.stems == tuple(range(N_VAL)) and test.folder.path == root / "val"


def test_official_split_sizes_without_reading():
    """The paper's splits (Sec. 2.1): 595 of Cityscapes' 2975 training images and 159 of NYUv2's
    795 held out; the official 500 and 654 as test sets."""
    sizes = {n: [datasets.split_size(n, s) for s in datasets.SPLITS] for n in DENSE}
    assert sizes == {"cityscapes": [2380, 595, 500], "nyuv2": [636, 159, 654]}
    assert datasets.split_size("nyuv2", "train", val_indices=[1, 2, 3]) == 792
    assert datasets.split_size("cityscapes", "val", val_size=10) == 10


def test_the_hold_out_is_fixed_by_its_own_seed(dense):
    name, _, root = dense
    val = build(name, "val", root).stems
    assert build(name, "val", root, seed=7).stems == val  # the run seed does not move it
    assert build(name, "val", root, holdout_seed=0).stems == val
    assert build(name, "val", root, holdout_seed=1).stems != val
    assert len(build(name, "val", root, val_size=0)) == 0


@pytest.mark.parametrize(
    ("n_train", "val_size", "digest"),
    [(2975, 595, "a7fa3785f0e45e0d"), (795, 159, "bb943529bd1f0a68")],
)
def test_the_paper_sized_hold_outs_are_pinned(n_train, val_size, digest):
    """A regression pin: a change here silently moves every validation split and its results."""
    train, val = holdout(list(range(n_train)), val_size, 0)
    assert len(val) == val_size and sorted(train + val) == list(range(n_train))
    assert hashlib.sha256(str(val).encode()).hexdigest()[:16] == digest


def test_explicit_validation_indices(dense):
    name, _, root = dense
    assert build(name, "val", root, val_indices=[5, 1]).stems == (1, 5)
    assert 5 not in build(name, "train", root, val_indices=[5, 1]).stems
    with pytest.raises(ValueError, match="val_indices"):
        build(name, "val", root, val_indices=[99])


def test_every_sample_follows_the_contract_and_the_files(dense):
    name, info, root = dense
    height, width = info["size"]
    for split in datasets.SPLITS:
        dataset = build(name, split, root)
        assert dataset.spec.image_shape == (3, height, width)
        split_folder = "val" if split == "test" else "train"
        for i, n in enumerate(dataset.stems):
            image, targets = dataset[i]
            assert image.dtype == torch.float32 and image.shape == (3, height, width)
            assert set(targets) == set(dataset.spec.task_names)
            raw = stored(root, info["folders"]["image"], split_folder, n)
            assert torch.equal(image, torch.from_numpy(raw).permute(2, 0, 1))
            labels = targets["segmentation"]
            assert labels.dtype == torch.int64 and labels.shape == (height, width)
            raw_labels = stored(root, info["folders"]["segmentation"], split_folder, n)
            assert torch.equal(labels, torch.from_numpy(raw_labels).long())
            assert (labels == -1).any() and labels.max() < info["classes"]
            depth = targets["depth"]
            assert depth.dtype == torch.float32 and depth.shape == (1, height, width)
            raw_depth = stored(root, "depth", split_folder, n)
            assert torch.equal(depth[0], torch.from_numpy(raw_depth[..., 0]))
            assert (depth == 0).any() and (depth >= 0).all()
            if "normal" in targets:
                normal = targets["normal"]
                assert normal.dtype == torch.float32 and normal.shape == (3, height, width)
                norms = normal.norm(dim=0)
                assert (norms == 0).any()
                assert torch.allclose(norms[norms > 0], torch.ones(()), atol=1e-5)


def test_a_data_loader_batches_samples(dense):
    name, info, root = dense
    batch = next(iter(DataLoader(build(name, "train", root, augment=True), batch_size=3)))
    image, targets = batch
    assert image.shape == (3, 3, *info["size"])
    assert targets["segmentation"].shape == (3, *info["size"])
    assert targets["depth"].shape == (3, 1, *info["size"])


def test_augmentation_is_reproducible_per_seed_and_epoch(dense):
    name, info, root = dense

    def epoch_of(seed, epoch):
        dataset = build(name, "train", root, augment=True, seed=seed)
        dataset.set_epoch(epoch)
        return [dataset[i] for i in range(len(dataset))]

    def same(a, b):
        return all(
            torch.equal(x, y) and all(torch.equal(s[k], t[k]) for k in s)
            for (x, s), (y, t) in zip(a, b, strict=True)
        )

    first = epoch_of(0, 2)
    assert same(first, epoch_of(0, 2))
    assert not same(first, epoch_of(0, 3))
    assert not same(first, epoch_of(1, 2))
    plain = build(name, "train", root)
    for i, (image, targets) in enumerate(first):
        assert image.shape == plain[i][0].shape
        labels = targets["segmentation"]
        assert labels.dtype == torch.int64 and labels.min() >= -1
        assert labels.max() < info["classes"]


def test_worker_processes_do_not_change_the_augmentation(dense):
    name, _, root = dense
    dataset = build(name, "train", root, augment=True, seed=5)
    dataset.set_epoch(1)
    inline = list(DataLoader(dataset, batch_size=4))
    workers = list(DataLoader(dataset, batch_size=4, num_workers=2))
    for (x, s), (y, t) in zip(inline, workers, strict=True):
        assert torch.equal(x, y) and all(torch.equal(s[k], t[k]) for k in s)


def test_depth_scaling_option_reaches_the_augmentation(dense):
    name, _, root = dense
    divided = build(name, "train", root, augment=True, depth_scaling="divide")
    multiplied = build(name, "train", root, augment=True, depth_scaling="multiply")
    kept = build(name, "train", root, augment=True, depth_scaling="none")
    for i, n in enumerate(kept.stems):
        scale = draw_params(*kept.folder.size, sample_generator(0, 0, n)).scale
        depth = kept[i][1]["depth"]
        assert torch.allclose(divided[i][1]["depth"], depth / scale)
        assert torch.allclose(multiplied[i][1]["depth"], depth * scale)


# ---- bad input: clear errors that name the expected layout -------------------------------------


def copy_fixture(dense, tmp_path):
    name, info, _ = dense
    root = info["write"](tmp_path / name, 6, 2, size=info["size"], seed=0)
    return name, info, root


def test_no_root_or_an_empty_root_names_the_layout(dense, tmp_path):
    name = dense[0]
    with pytest.raises(ValueError, match="--data-root"):
        datasets.build(name, "train", root=None)
    with pytest.raises(FileNotFoundError, match=r"Expected layout[\s\S]*MTAN") as error:
        datasets.build(name, "test", root=tmp_path)
    assert str(tmp_path / "val") in str(error.value)
    assert "ROOT/train/depth/N.npy" in str(error.value)


def test_a_missing_folder_or_file_is_named(dense, tmp_path):
    name, _, root = copy_fixture(dense, tmp_path)
    (root / "train" / "depth" / "3.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks 3\.npy"):
        build(name, "train", root, val_size=1)
    for f in (root / "train" / "depth").iterdir():
        f.unlink()
    (root / "train" / "depth").rmdir()
    with pytest.raises(FileNotFoundError, match=r"missing folder .*depth"):
        build(name, "train", root, val_size=1)
    for f in (root / "val" / "image").iterdir():
        f.unlink()
    with pytest.raises(FileNotFoundError, match=r"no N\.npy files"):
        build(name, "test", root)


def test_wrong_shapes_dtypes_and_files_are_named(dense, tmp_path):
    name, info, root = copy_fixture(dense, tmp_path)
    height, width = info["size"]
    depth_file = root / "train" / "depth" / "2.npy"
    np.save(depth_file, np.zeros((height, width), dtype=np.float32))
    with pytest.raises(ValueError, match=rf"2\.npy has shape \({height}, {width}\), expected"):
        build(name, "train", root, val_size=1)
    np.save(depth_file, np.zeros((height, width, 1), dtype=np.int32))
    with pytest.raises(ValueError, match="dtype int32, expected a float"):
        build(name, "train", root, val_size=1)
    depth_file.write_text("not an array")
    with pytest.raises(ValueError, match=r"2\.npy is not a readable \.npy array"):
        build(name, "train", root, val_size=1)
    np.save(depth_file, np.zeros((height, width, 1), dtype=np.float32))
    np.save(root / "train" / "image" / "0.npy", np.zeros((height + 1, width, 3), np.float32))
    expected = rf"1\.npy has shape \({height}, {width}, 3\), expected \({height + 1}, .*0\.npy"
    with pytest.raises(ValueError, match=expected):
        build(name, "train", root, val_size=1)
    np.save(root / "train" / "image" / "0.npy", np.zeros((height, width, 3), np.float32))
    np.save(root / "train" / "image" / "extra.npy", np.zeros((height, width, 3), np.float32))
    with pytest.raises(ValueError, match=r"named N\.npy"):
        build(name, "train", root, val_size=1)


def test_size_and_hold_out_mismatches_are_clear(dense, tmp_path):
    name, info, root = copy_fixture(dense, tmp_path)
    assert len(build(name, "test", root, size=info["size"])) == 2
    with pytest.raises(ValueError, match=r"size=.* was asked for"):
        build(name, "test", root, size=(128, 256) if name == "nyuv2" else (288, 384))
    with pytest.raises(ValueError, match=r"val_size=\d+ must be in \[0, 6\)"):
        datasets.build(name, "train", root=root)  # the paper's hold-out exceeds the fixture
    with pytest.raises(ValueError, match="train split only"):
        build(name, "val", root, val_size=1, augment=True)
    with pytest.raises(ValueError, match="divide, multiply, none"):
        build(name, "train", root, val_size=1, depth_scaling="inverse")


def test_labels_outside_the_classes_are_named_when_read(dense, tmp_path):
    name, info, root = copy_fixture(dense, tmp_path)
    folder = info["folders"]["segmentation"]
    labels = np.full(info["size"], info["classes"], dtype=np.float32)
    np.save(root / "val" / folder / "1.npy", labels)
    dataset = build(name, "test", root)
    dataset[0]
    with pytest.raises(ValueError, match=r"1\.npy holds labels outside the integers -1\.\."):
        dataset[1]


def test_a_file_broken_after_the_scan_is_named_when_read(dense, tmp_path):
    name, _, root = copy_fixture(dense, tmp_path)
    dataset = build(name, "test", root)
    (root / "val" / "depth" / "1.npy").write_bytes(b"\x93NUMPY truncated")
    with pytest.raises(ValueError, match=r"1\.npy is not a readable \.npy array"):
        dataset[1]


def test_zero_padded_file_names_are_read_as_their_index(dense, tmp_path):
    name, info, root = copy_fixture(dense, tmp_path)
    for folder in info["folders"].values():
        (root / "val" / folder / "1.npy").rename(root / "val" / folder / "0001.npy")
    raw = np.load(root / "val" / "depth" / "0001.npy")
    dataset = build(name, "test", root)
    assert dataset.stems == (0, 1)
    assert torch.equal(dataset[1][1]["depth"][0], torch.from_numpy(raw[..., 0]))
    np.save(root / "val" / "depth" / "1.npy", raw)
    with pytest.raises(ValueError, match="both hold index 1"):
        build(name, "test", root)


def test_cityscapes_reads_libmtl_label_folder(tmp_path):
    root = fixtures.write_cityscapes(tmp_path, 4, 2, label_folder="label")
    dataset = datasets.build("cityscapes", "test", root=root)
    raw = np.load(root / "val" / "label" / "1.npy")
    assert torch.equal(dataset[1][1]["segmentation"], torch.from_numpy(raw).long())
