"""Data sources: the real Fashion-MNIST files, digits, local folders (hf_drop.data.sources)."""

import gzip
import struct

import datasets
import numpy as np
import pytest
from conftest import image_dataset

from hf_drop.data.sources import (
    _FASHION_FILES,
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_ROOT,
    _read_idx,
    digits_splits,
    fashion_mnist,
    load_source,
)
from hf_drop.io.files import DamagedFileError


@pytest.fixture(scope="module")
def fmnist_cache(tmp_path_factory):
    """One conversion of the real files (about 5 s), shared by the tests that read it."""
    cache = tmp_path_factory.mktemp("fmnist-cache")
    # No skip: in CI the Debian package is installed, and a missing file must fail here.
    return cache, fashion_mnist(cache_dir=cache)


@pytest.mark.slow
@pytest.mark.needs_fashion_mnist
def test_fashion_mnist_is_the_real_70000_images(fmnist_cache):
    _, data = fmnist_cache
    assert {name: len(split) for name, split in data.items()} == {"train": 60000, "test": 10000}
    assert data["train"].features["label"].names == FASHION_MNIST_CLASSES
    assert np.bincount(data["train"]["label"][:]).tolist() == [6000] * 10
    assert np.bincount(data["test"]["label"][:]).tolist() == [1000] * 10
    # Known facts of the original files: the first image of each split is an ankle boot.
    assert data["train"][0]["label"] == 9 and data["test"][0]["label"] == 9
    image = data["train"][0]["image"]
    assert image.size == (28, 28) and image.mode == "L"
    raw = _read_idx(FASHION_MNIST_ROOT / "train-images-idx3-ubyte.gz")
    assert np.array_equal(np.asarray(image), raw[0])


@pytest.mark.slow
@pytest.mark.needs_fashion_mnist
def test_fashion_mnist_is_cached_with_a_stable_fingerprint(fmnist_cache):
    cache, data = fmnist_cache
    assert fashion_mnist(cache_dir=cache)["train"]._fingerprint == data["train"]._fingerprint
    assert len(list(cache.iterdir())) == 1


def test_missing_fashion_mnist_files_say_how_to_install_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        fashion_mnist(root=tmp_path / "nowhere", cache_dir=tmp_path)


def test_idx_reader_rejects_other_files(tmp_path):
    bad = tmp_path / "bad.gz"
    with gzip.open(bad, "wb") as f:
        f.write(struct.pack(">HBB", 0, 0x0D, 1) + struct.pack(">I", 2) + b"\0" * 8)
    with pytest.raises(ValueError, match="not an IDX file of unsigned bytes"):
        _read_idx(bad)


def test_digits_splits_are_stratified_and_fixed():
    a, b = digits_splits(), digits_splits()
    assert (len(a["train"]), len(a["test"])) == (1437, 360)
    assert a["test"]["label"][:] == b["test"]["label"][:]
    counts = np.bincount(a["test"]["label"][:])
    assert counts.min() >= 35 and counts.max() <= 37


def test_load_source_reads_local_folders_and_files(tmp_path):
    ds = image_dataset([0, 1, 2, 3, 0, 1])
    datasets.DatasetDict({"train": ds}).save_to_disk(str(tmp_path / "saved"))
    assert len(load_source(str(tmp_path / "saved"))["train"]) == 6
    ds.to_parquet(str(tmp_path / "data.parquet"))
    assert len(load_source(str(tmp_path / "data.parquet"))["train"]) == 6
    for i, row in enumerate(ds):
        folder = tmp_path / "images" / ("cat" if row["label"] % 2 else "dog")
        folder.mkdir(parents=True, exist_ok=True)
        row["image"].save(folder / f"{i}.png")
    loaded = load_source(str(tmp_path / "images"))["train"]
    assert len(loaded) == 6 and loaded.features["label"].names == ["cat", "dog"]


def test_an_unknown_dataset_name_says_what_was_tried():
    with pytest.raises(ValueError, match=r"not a built-in source.*not a local path"):
        load_source("no-such-org/no-such-dataset-hf-drop")


def _write_split_folders(ds, root, splits):
    """An imagefolder with one folder per split and one per class: root/train/cat/0.png, ..."""
    for split, rows in splits.items():
        for i in rows:
            row = ds[i]
            folder = root / split / ("cat" if row["label"] % 2 else "dog")
            folder.mkdir(parents=True, exist_ok=True)
            row["image"].save(folder / f"{i}.png")


def _sizes(data):
    return {name: len(split) for name, split in data.items()}


def test_a_local_hub_layout_folder_keeps_its_splits(tmp_path):
    # What push_to_hub uploads: data/train-*.parquet and data/test-*.parquet. Merging them into
    # one train split would train on the test images.
    ds = image_dataset([0, 1, 2, 3, 0, 1, 2])
    (tmp_path / "repo" / "data").mkdir(parents=True)
    ds.select(range(5)).to_parquet(str(tmp_path / "repo/data/train-00000-of-00001.parquet"))
    ds.select([5, 6]).to_parquet(str(tmp_path / "repo/data/test-00000-of-00001.parquet"))
    data = load_source(str(tmp_path / "repo"))
    assert _sizes(data) == {"train": 5, "test": 2}
    assert data["train"]["label"][:] == [0, 1, 2, 3, 0]
    assert data["test"]["label"][:] == [1, 2]


def test_a_local_imagefolder_with_split_folders_keeps_its_splits(tmp_path):
    ds = image_dataset([0, 1, 2, 3, 0, 1])
    _write_split_folders(ds, tmp_path / "images", {"train": [0, 1, 2, 3], "test": [4, 5]})
    data = load_source(str(tmp_path / "images"))
    assert _sizes(data) == {"train": 4, "test": 2}
    assert data["test"].features["label"].names == ["cat", "dog"]
    assert sorted(data["test"]["label"][:]) == [0, 1]


def test_save_to_disk_folders_keep_their_splits(tmp_path):
    ds = image_dataset([0, 1, 2, 3, 0, 1])
    splits = datasets.DatasetDict({"train": ds.select(range(4)), "test": ds.select([4, 5])})
    splits.save_to_disk(str(tmp_path / "dict"))
    assert _sizes(load_source(str(tmp_path / "dict"))) == {"train": 4, "test": 2}
    ds.select(range(3)).save_to_disk(str(tmp_path / "single"))
    assert _sizes(load_source(str(tmp_path / "single"))) == {"train": 3}


def test_single_files_are_read_by_their_builder(tmp_path):
    ds = image_dataset([0, 1, 2, 3, 0, 1])
    ds.to_parquet(str(tmp_path / "data.parquet"))
    assert _sizes(load_source(str(tmp_path / "data.parquet"))) == {"train": 6}
    table = datasets.Dataset.from_dict({"x": [1, 2, 3], "label": [0, 1, 0]})
    table.to_csv(str(tmp_path / "data.csv"))
    table.to_json(str(tmp_path / "data.jsonl"))
    assert load_source(str(tmp_path / "data.csv"))["train"]["x"][:] == [1, 2, 3]
    assert load_source(str(tmp_path / "data.jsonl"))["train"]["label"][:] == [0, 1, 0]


def test_an_unreadable_local_path_is_a_clear_error_naming_it(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"cannot read dataset path .*empty.*expected a save_to"):
        load_source(str(tmp_path / "empty"))
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ValueError, match=r"cannot read dataset path .*bad\.parquet"):
        load_source(str(tmp_path / "bad.parquet"))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"cannot read dataset path .*notes\.txt.*\.parquet"):
        load_source(str(tmp_path / "notes.txt"))


def test_a_damaged_save_to_disk_folder_names_the_folder_and_the_fix(tmp_path):
    image_dataset([0, 1, 2, 3] * 20).save_to_disk(str(tmp_path / "saved"))
    arrow = next((tmp_path / "saved").glob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[:200])
    with pytest.raises(DamagedFileError, match=r"saved .*cannot be read.*save it again"):
        load_source(str(tmp_path / "saved"))


def _write_idx(path, array):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _small_fashion_root(root):
    """Four tiny IDX files under the Fashion-MNIST names: 20 train and 10 test 28x28 images."""
    root.mkdir()
    for (images, labels), n in zip(_FASHION_FILES.values(), [20, 10], strict=True):
        _write_idx(root / images, np.zeros((n, 28, 28), np.uint8))
        _write_idx(root / labels, np.arange(n) % 10)
    return root


def test_a_truncated_or_garbage_idx_file_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    _write_idx(path, np.arange(28 * 28 * 50).reshape(50, 28, 28) % 251)
    assert _read_idx(path).shape == (50, 28, 28)
    path.write_bytes(path.read_bytes()[:-40])  # a download cut short
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz is damaged.*reinstall"):
        _read_idx(path)
    path.write_bytes(b"garbage, not gzip")
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz is damaged"):
        _read_idx(path)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz .*too short"):
        _read_idx(path)


def test_a_damaged_fashion_mnist_cache_says_to_delete_it(tmp_path):
    root = _small_fashion_root(tmp_path / "fashion")
    data = fashion_mnist(root=root, cache_dir=tmp_path / "cache")
    assert _sizes(data) == {"train": 20, "test": 10}
    (cache,) = (tmp_path / "cache").iterdir()
    for arrow in cache.glob("*/*.arrow"):
        arrow.write_bytes(b"")
    with pytest.raises(DamagedFileError, match=rf"{cache}.*delete the cache folder {cache}"):
        fashion_mnist(root=root, cache_dir=tmp_path / "cache")


def test_folders_with_a_readme_configs_block_never_load_another_folders_cached_rows(tmp_path):
    # datasets keys the cache of such a folder on its name and its configs block only: two
    # exports both called "repo" (or one rewritten in place) must still each give their own rows.
    card = (
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n"
        "    path: data/train-*\n  - split: test\n    path: data/test-*\n---\n"
    )

    def write(folder, train_labels):
        (folder / "data").mkdir(parents=True, exist_ok=True)
        (folder / "README.md").write_text(card)
        image_dataset(train_labels).to_parquet(str(folder / "data/train-00000-of-00001.parquet"))
        image_dataset([3]).to_parquet(str(folder / "data/test-00000-of-00001.parquet"))

    write(tmp_path / "a" / "repo", [0, 1, 2])
    write(tmp_path / "b" / "repo", [2, 2, 0])
    assert load_source(str(tmp_path / "a" / "repo"))["train"]["label"][:] == [0, 1, 2]
    assert load_source(str(tmp_path / "b" / "repo"))["train"]["label"][:] == [2, 2, 0]
    write(tmp_path / "a" / "repo", [1, 1, 1])  # rewritten in place
    data = load_source(str(tmp_path / "a" / "repo"))
    assert data["train"]["label"][:] == [1, 1, 1] and _sizes(data) == {"train": 3, "test": 1}
