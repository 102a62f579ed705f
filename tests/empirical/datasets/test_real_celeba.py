"""The CelebA reader on fixtures written in CelebA's on-disk layout."""

import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

import empirical.datasets as datasets
from empirical.datasets import celeba, fixtures

N_TRAIN, N_VAL, N_TEST = 6, 3, 2


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return fixtures.write_celeba(tmp_path_factory.mktemp("celeba"), N_TRAIN, N_VAL, N_TEST, seed=1)


@pytest.fixture
def own_root(tmp_path):
    return fixtures.write_celeba(tmp_path / "celeba_copy", 3, 1, 1, seed=2)


def partition_of(root):
    rows = [line.split() for line in (root / celeba.PARTITION_FILE).read_text().splitlines()]
    return {name: int(part) for name, part in rows}


def attributes_of(root, name):
    for line in (root / celeba.ATTR_FILE).read_text().splitlines()[2:]:
        row = line.split()
        if row[0] == name:
            return [int(v) for v in row[1:]]
    raise KeyError(name)


def test_spec_has_the_40_attribute_tasks():
    spec = datasets.spec("celeba")
    assert len(spec.tasks) == 40 and len(set(spec.task_names)) == 40
    assert spec.task_names[0] == "5_o_Clock_Shadow" and spec.task_names[-1] == "Young"
    assert all(t.kind == "binary" for t in spec.tasks)
    assert spec.image_shape == (3, 64, 64) and spec.real
    assert datasets.spec("celeba", size=32).image_shape == (3, 32, 32)


def test_official_split_sizes_sum_to_the_release():
    sizes = [datasets.split_size("celeba", s) for s in datasets.SPLITS]
    assert sizes == [162770, 19867, 19962] and sum(sizes) == 202599


def test_the_official_partition_gives_the_splits(root):
    partition = partition_of(root)
    for split, code in celeba.PARTITIONS.items():
        dataset = datasets.build("celeba", split, root=root)
        assert dataset.files == sorted(n for n, p in partition.items() if p == code)
    assert [len(datasets.build("celeba", s, root=root)) for s in datasets.SPLITS] == [
        N_TRAIN,
        N_VAL,
        N_TEST,
    ]


def test_samples_follow_the_contract_and_the_attribute_file(root):
    dataset = datasets.build("celeba", "train", root=root)
    for i, name in enumerate(dataset.files):
        image, targets = dataset[i]
        assert image.dtype == torch.float32 and image.shape == (3, 64, 64)
        assert image.min() >= 0.0 and image.max() <= 1.0
        assert tuple(targets) == celeba.ATTRIBUTES
        values = [(v + 1) // 2 for v in attributes_of(root, name)]
        assert [int(t.item()) for t in targets.values()] == values
        assert all(t.dtype == torch.float32 and t.shape == () for t in targets.values())


def test_the_image_is_the_whole_picture_resized(root):
    dataset = datasets.build("celeba", "test", root=root, size=16)
    with Image.open(root / celeba.IMAGE_FOLDER / dataset.files[0]) as img:
        expected = np.array(img.convert("RGB").resize((16, 16), Image.Resampling.BILINEAR))
    image, _ = dataset[0]
    assert torch.equal(image, torch.from_numpy(expected).permute(2, 0, 1).float() / 255)


def test_a_data_loader_batches_the_attributes(root):
    images, targets = next(iter(DataLoader(datasets.build("celeba", "train", root=root), 4)))
    assert images.shape == (4, 3, 64, 64)
    assert targets["Smiling"].shape == (4,) and targets["Smiling"].dtype == torch.float32


def test_the_cache_keeps_decoded_images(own_root):
    cached = datasets.build("celeba", "train", root=own_root, cache=True)
    plain = datasets.build("celeba", "train", root=own_root)
    first = [cached[i][0] for i in range(len(cached))]
    shutil.rmtree(own_root / celeba.IMAGE_FOLDER)
    assert all(torch.equal(cached[i][0], first[i]) for i in range(len(cached)))
    with pytest.raises((ValueError, FileNotFoundError)):
        plain[0]


def test_torchvisions_celeba_subfolder_is_accepted(tmp_path):
    fixtures.write_celeba(tmp_path / "celeba", 2, 1, 1)
    assert len(datasets.build("celeba", "train", root=tmp_path)) == 2


def test_missing_files_name_the_layout(own_root, tmp_path):
    with pytest.raises(ValueError, match="--data-root"):
        datasets.build("celeba", "train", root=None)
    with pytest.raises(FileNotFoundError, match=r"missing folder .*img_align_celeba[\s\S]*CUHK"):
        datasets.build("celeba", "train", root=tmp_path / "empty")
    image = sorted((own_root / celeba.IMAGE_FOLDER).iterdir())[0]
    split = {0: "train", 1: "val", 2: "test"}[partition_of(own_root)[image.name]]
    image.unlink()
    with pytest.raises(FileNotFoundError, match=rf"missing from .*{image.name}"):
        datasets.build("celeba", split, root=own_root)
    (own_root / celeba.PARTITION_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=r"missing file .*list_eval_partition\.txt"):
        datasets.build("celeba", split, root=own_root)


def rewrite_line(path, index, transform):
    lines = path.read_text().splitlines()
    lines[index] = transform(lines[index])
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("file", "line", "transform", "message"),
    [
        (celeba.ATTR_FILE, 0, lambda s: "many", "must start with the image count"),
        (celeba.ATTR_FILE, 0, lambda s: "7", "announces 7 images but lists 5"),
        (celeba.ATTR_FILE, 1, lambda s: s.replace("Smiling", "Smile"), "must name the 40"),
        (celeba.ATTR_FILE, 3, lambda s: s.replace("-1", "0", 1), "line 4 must be a file name"),
        (celeba.ATTR_FILE, 2, lambda s: s.rsplit(" ", 1)[0], "line 3 must be a file name"),
        (celeba.PARTITION_FILE, 1, lambda s: s[:-1] + "3", "line 2 must be a file name and 0"),
        (celeba.PARTITION_FILE, 0, lambda s: "", "lack a line in list_eval_partition"),
    ],
)
def test_malformed_files_are_clear_errors(own_root, file, line, transform, message):
    rewrite_line(own_root / file, line, transform)
    with pytest.raises(ValueError, match=message):
        datasets.build("celeba", "train", root=own_root)


def test_bad_options_are_clear_errors(root):
    with pytest.raises(ValueError, match="no augmentation"):
        datasets.build("celeba", "train", root=root, augment=True)
    with pytest.raises(ValueError, match="positive int"):
        datasets.build("celeba", "train", root=root, size=0)
    with pytest.raises(ValueError, match="valid splits"):
        celeba.build("dev", root=root)


def test_an_undecodable_image_is_named(own_root):
    dataset = datasets.build("celeba", "train", root=own_root)
    (own_root / celeba.IMAGE_FOLDER / dataset.files[0]).write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match=rf"cannot decode .*{dataset.files[0]}"):
        dataset[0]
