"""Data sources: the real Fashion-MNIST files, digits, local folders (hf_drop.sources)."""

import gzip
import struct

import datasets
import numpy as np
import pytest
from conftest import image_dataset

from hf_drop.sources import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_ROOT,
    _read_idx,
    digits_splits,
    fashion_mnist,
    load_source,
)


def test_fashion_mnist_is_the_real_70000_images(tmp_path):
    # No skip: in CI the Debian package is installed, and a missing file must fail this test.
    data = fashion_mnist(cache_dir=tmp_path)
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


def test_fashion_mnist_is_cached_with_a_stable_fingerprint(tmp_path):
    first = fashion_mnist(cache_dir=tmp_path)["train"]._fingerprint
    assert fashion_mnist(cache_dir=tmp_path)["train"]._fingerprint == first
    assert len(list(tmp_path.iterdir())) == 1


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
