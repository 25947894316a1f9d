"""Where data comes from: the Hugging Face Hub, local folders, and datasets that ship in a package.

:func:`load_source` is what the command line uses: a built-in name (``fashion_mnist``,
``digits``), a local folder or file (``save_to_disk`` folder, parquet, imagefolder), or else a Hub
dataset name for ``load_dataset``.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import datasets
import numpy as np
import xxhash

__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_ROOT",
    "digits",
    "fashion_mnist",
    "load_source",
]

# Debian's dataset-fashion-mnist package puts the original IDX files here.
FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")
# The class names of the Hub's zalando-datasets/fashion_mnist, so that subsets line up with it.
FASHION_MNIST_CLASSES = [
    "T - shirt / top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
_FASHION_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def load_source(
    name: str, config: str | None = None, revision: str | None = None
) -> datasets.DatasetDict:
    """A ``DatasetDict`` by name: built-in, local path, or Hub dataset (``load_dataset``)."""
    if name == "fashion_mnist":
        return fashion_mnist()
    if name == "digits":
        return digits_splits()
    path = Path(name)
    if path.exists():
        return _load_local(path, config)
    try:
        loaded = datasets.load_dataset(name, config, revision=revision)
    except Exception as error:  # offline, unknown name, gated, ...: say what was tried
        raise ValueError(
            f"could not load dataset {name!r}: it is not a built-in source (fashion_mnist, "
            f"digits), not a local path, and load_dataset({name!r}) failed: {error}"
        ) from error
    if isinstance(loaded, datasets.Dataset):
        loaded = datasets.DatasetDict({"train": loaded})
    return loaded


def fashion_mnist(
    root: str | os.PathLike = FASHION_MNIST_ROOT, cache_dir: str | os.PathLike | None = None
) -> datasets.DatasetDict:
    """Fashion-MNIST (60,000 train and 10,000 test 28x28 grayscale images, 10 classes) from its
    original IDX files, as Debian's ``dataset-fashion-mnist`` package installs them.

    The first call converts the files to Arrow under ``cache_dir`` (default
    ``$HF_DROP_CACHE`` or ``~/.cache/hf_drop``); later calls memory-map it, so the dataset keeps
    the same fingerprint from one run to the next.
    """
    root = Path(root)
    paths = [root / name for pair in _FASHION_FILES.values() for name in pair]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST files not found: {missing}. Install them with "
            "`apt-get install dataset-fashion-mnist`, or pass root= a folder holding the IDX files"
        )
    key = xxhash.xxh64()
    for p in paths:  # the cache is keyed by the source files, so a changed file is re-read
        key.update(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}".encode())
    cache = Path(cache_dir or os.environ.get("HF_DROP_CACHE", Path.home() / ".cache" / "hf_drop"))
    folder = cache / f"fashion_mnist-{key.hexdigest()}"
    if not (folder / "dataset_dict.json").exists():
        from .artifacts import atomic_folder

        features = _image_features(FASHION_MNIST_CLASSES)
        splits = {}
        for split, (images, labels) in _FASHION_FILES.items():
            pixels, targets = _read_idx(root / images), _read_idx(root / labels)
            if len(pixels) != len(targets):
                raise ValueError(
                    f"{images} has {len(pixels)} images but {labels} has {len(targets)}"
                )
            splits[split] = datasets.Dataset.from_dict(
                {"image": list(pixels), "label": targets.tolist()}, features=features
            )
        with atomic_folder(folder) as tmp:
            datasets.DatasetDict(splits).save_to_disk(str(tmp))
    return datasets.load_from_disk(str(folder))


def digits() -> datasets.Dataset:
    """scikit-learn's 1,797 handwritten digits as 8x8 grayscale images with a ``ClassLabel``.

    The 0..16 pixel intensities are scaled to 0..255 so that the images look like images.
    """
    from sklearn.datasets import load_digits

    raw = load_digits()
    images = (raw.images * (255.0 / 16.0)).round().astype(np.uint8)
    data = datasets.Dataset.from_dict(
        {"image": list(images), "label": raw.target.tolist()},
        features=_image_features([str(d) for d in range(10)]),
    )
    # An in-memory dataset gets a random fingerprint; this one is a pure function of the data,
    # so that what was computed on it (probes, prunings) can be matched to it later.
    content = xxhash.xxh64(images.tobytes() + raw.target.astype(np.int64).tobytes()).hexdigest()
    return data.select(range(len(data)), new_fingerprint=f"digits-{content}")


def digits_splits(test_size: float = 0.2, seed: int = 0) -> datasets.DatasetDict:
    """:func:`digits` as train and test splits, stratified by class with a fixed seed."""
    data = digits()
    key = f"{data._fingerprint}-{test_size}-{seed}"
    return data.train_test_split(
        test_size=test_size,
        stratify_by_column="label",
        seed=seed,
        train_new_fingerprint=xxhash.xxh64(f"{key}-train".encode()).hexdigest(),
        test_new_fingerprint=xxhash.xxh64(f"{key}-test".encode()).hexdigest(),
    )


def _image_features(names: list[str]) -> datasets.Features:
    return datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)})


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format): magic, big-endian dimensions, then unsigned bytes."""
    with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (magic {data[:4].hex()})")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path} holds {array.size} bytes, its header says {shape}")
    return array.reshape(shape)


def _load_local(path: Path, config: str | None) -> datasets.DatasetDict:
    if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
        loaded = datasets.load_from_disk(str(path))
    elif (path.is_file() and path.suffix == ".parquet") or any(path.glob("**/*.parquet")):
        files = str(path) if path.is_file() else str(path / "**" / "*.parquet")
        loaded = datasets.load_dataset("parquet", data_files=files)
    elif path.is_dir():
        loaded = datasets.load_dataset("imagefolder", data_dir=str(path))
    else:
        raise ValueError(
            f"cannot read dataset path {str(path)!r}: expected a save_to_disk folder, "
            "parquet files or an imagefolder"
        )
    if isinstance(loaded, datasets.Dataset):
        loaded = datasets.DatasetDict({"train": loaded})
    return loaded
