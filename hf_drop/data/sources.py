"""Where data comes from: the Hugging Face Hub, local folders, and datasets that ship in a package.

:func:`load_source` is what the command line uses: a built-in name (``fashion_mnist``,
``digits``), a local folder or file (``save_to_disk`` folder, parquet, imagefolder), or else a Hub
dataset name for ``load_dataset``.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import xxhash

from ..io.extras import require
from ..io.files import load_saved

__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_ROOT",
    "digits",
    "fashion_mnist",
    "first_rows",
    "load_source",
    "local_source",
    "missing_classes",
    "recorded_dataset",
    "sample_rows",
    "select_split",
    "source_rows",
    "stratified_sampling",
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


BUILTIN_SOURCES = ("fashion_mnist", "digits")


def local_source(name: str) -> dict[str, str]:
    """What a record keeps of a dataset ``name``: ``{"name": name}``, and for a local path its
    absolute ``path`` too, so that the record resolves from any working directory."""
    if name not in BUILTIN_SOURCES and Path(name).exists():
        return {"name": name, "path": os.path.abspath(name)}
    return {"name": name}


def recorded_dataset(source: dict[str, Any], what: str = "the recorded dataset") -> str:
    """The dataset a ``source`` record names, as this process can load it: its name (built-in,
    a path that exists from here, a Hub id), else the absolute ``path`` recorded with it. A local
    dataset found under neither is a :class:`FileNotFoundError` that says where it was looked
    for (the caller adds which option gives it)."""
    name = str(source.get("name") or "")
    path = source.get("path")
    if name in BUILTIN_SOURCES or (name and Path(name).exists()) or not path:
        return name
    if Path(path).exists():
        return str(path)
    raise FileNotFoundError(
        f"{what} {name!r} is a local path that is not found from {os.getcwd()}, nor where it "
        f"was recorded ({path}): it was moved, deleted or is on another machine"
    )


def select_split(data: datasets.DatasetDict, spec: str, what: str = "--split") -> datasets.Dataset:
    """The split ``spec`` of ``data``: a name (``train``), or a slice in ``datasets``' split syntax
    (``train[:1000]``, ``train[10%:20%]``, ``train[:50%]+test``), cut from the loaded splits,
    so the same spec always gives the same rows. ``what`` names the option in errors."""
    if spec in data:
        return data[spec]
    if "[" not in spec and "+" not in spec:
        raise ValueError(f"{what} {spec!r} is not a split: {list(data)}")
    try:
        instruction = datasets.ReadInstruction.from_spec(spec)
        parts = instruction.to_absolute({name: len(split) for name, split in data.items()})
    except (ValueError, AssertionError) as error:
        raise ValueError(
            f"{what} {spec!r} is neither a split ({list(data)}) nor a slice of one, such as "
            f"train[:1000] or train[10%:20%] ({error})"
        ) from error
    rows = [data[part.splitname].select(range(part.from_, part.to)) for part in parts]
    return rows[0] if len(rows) == 1 else datasets.concatenate_datasets(rows)


def first_rows(dataset: datasets.Dataset, count: int | None, what: str) -> datasets.Dataset:
    """The first ``count`` rows of ``dataset`` (all if ``None`` or more than it has): how
    ``max_train_samples`` was read before hf-drop sampled by class (records without a
    ``sampling``)."""
    if count is None:
        return dataset
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"{what} must be a positive int, got {count!r}")
    return dataset.select(range(min(count, len(dataset))))


def sample_rows(
    dataset: datasets.Dataset,
    count: int | None,
    sampling: dict[str, Any] | None,
    what: str = "--max_train_samples",
) -> datasets.Dataset:
    """``count`` rows of ``dataset`` as ``sampling`` says (the record
    :func:`stratified_sampling` makes): a seeded sample with the class proportions of
    ``dataset``; without a ``sampling`` (a record written before it existed), its first
    ``count`` rows, as they were then. An unknown method is refused, never guessed."""
    if count is None:
        return dataset
    if sampling is None:
        return first_rows(dataset, count, what)
    if not isinstance(sampling, dict) or sampling.get("method") != "stratified":
        raise ValueError(
            f"{what}: unknown sampling {sampling!r} (this hf-drop knows 'stratified'): the "
            "record was written by a newer hf-drop; upgrade it to rebuild these rows"
        )
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"{what} must be a positive int, got {count!r}")
    seed = sampling.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(
            f"{what}: the sampling record {sampling!r} has no seed (an int >= 0): the record is "
            "damaged or was edited; these rows cannot be rebuilt"
        )
    from .splits import stratified_sample

    label_column = sampling.get("label_column", "label")
    rows = stratified_sample(dataset, count, label_column=label_column, seed=seed)
    return dataset if len(rows) == len(dataset) else dataset.select(rows)


def stratified_sampling(seed: int, label_column: str) -> dict[str, Any]:
    """The record of a ``--max_train_samples`` sample, as :func:`sample_rows` reads it."""
    return {"method": "stratified", "seed": seed, "label_column": label_column}


def missing_classes(
    data: datasets.DatasetDict, spec: str, rows: datasets.Dataset, label_column: str
) -> list[str]:
    """The classes of the splits that ``spec`` slices (``train[:50%]``) that the slice ``rows``
    lacks: a slice of a class-sorted split drops whole classes. Empty for a whole split, or a
    label column that is not a ``ClassLabel``."""
    if spec in data or "[" not in spec:
        return []
    from .columns import read_labels

    feature = rows.features.get(label_column)
    if not isinstance(feature, datasets.ClassLabel):
        return []
    try:
        parts = datasets.ReadInstruction.from_spec(spec).to_absolute(
            {name: len(split) for name, split in data.items()}
        )
    except (ValueError, AssertionError):
        return []
    present = set(np.unique(read_labels(rows, label_column).ids).tolist())
    full: set[int] = set()
    for name in {part.splitname for part in parts}:
        full |= set(np.unique(read_labels(data[name], label_column).ids).tolist())
    return [feature.int2str(k) for k in sorted(full - present)]


def source_rows(source: dict, dataset: str | None = None) -> datasets.Dataset:
    """The rows a recorded ``source`` names, loaded again: its dataset (or ``dataset``), split
    (a slice kept as given) and ``max_train_samples`` (as its ``sampling`` says)."""
    # The recorded revision with the recorded name (not with another dataset given instead).
    revision = source.get("revision") if dataset in (None, source.get("name")) else None
    name = dataset or recorded_dataset(source)
    data = load_source(name, source.get("config"), revision)
    split = source.get("split") or "train"
    rows = select_split(data, split, "the recorded split")
    return sample_rows(
        rows, source.get("max_train_samples"), source.get("sampling"), "max_train_samples"
    )


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
        from ..io.outputs import atomic_output

        features = _image_features(FASHION_MNIST_CLASSES)
        # Every file read and checked before any is converted (the slow part): a damaged file
        # fails in a second, not after 60,000 images were encoded.
        arrays = {}
        for split, (images, labels) in _FASHION_FILES.items():
            pixels, targets = _read_idx(root / images), _read_idx(root / labels)
            if len(pixels) != len(targets):
                raise ValueError(
                    f"{images} has {len(pixels)} images but {labels} has {len(targets)}"
                )
            arrays[split] = pixels, targets
        splits = {
            split: datasets.Dataset.from_dict(
                {"image": list(pixels), "label": targets.tolist()}, features=features
            )
            for split, (pixels, targets) in arrays.items()
        }
        # Replaces only an earlier cache of its own (marked), never what else is in cache_dir.
        with atomic_output(folder, "cache", overwrite=True, inputs=[root]) as tmp:
            datasets.DatasetDict(splits).save_to_disk(str(tmp))
    return load_saved(
        folder,
        "hf-drop's cache of Fashion-MNIST",
        f"delete the cache folder {folder}; the next call rebuilds it from {root}",
    )


def digits() -> datasets.Dataset:
    """scikit-learn's 1,797 handwritten digits as 8x8 grayscale images with a ``ClassLabel``.

    The 0..16 pixel intensities are scaled to 0..255 so that the images look like images.
    """
    require("sklearn", "probe", "the digits dataset")
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
    fix = "reinstall it (`apt-get install --reinstall dataset-fashion-mnist`) or download it again"
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as f:
            data = f.read()
    except (EOFError, OSError, zlib.error) as error:  # cut short, not gzip, unreadable
        raise ValueError(f"{path} is damaged or cut short ({error}): {fix}") from error
    if len(data) < 4:
        raise ValueError(f"{path} is too short ({len(data)} bytes) to be an IDX file: {fix}")
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (magic {data[:4].hex()})")
    if len(data) < 4 + 4 * ndim:
        raise ValueError(f"{path} is cut short inside its header: {fix}")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path} holds {array.size} bytes, its header says {shape}: {fix}")
    return array.reshape(shape)


# The builder that reads a single local file, by its suffix.
_FILE_BUILDERS = {
    ".parquet": "parquet",
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".arrow": "arrow",
}
_LOCAL_KINDS = (
    "a save_to_disk folder, a folder that load_dataset reads (data files named by split, e.g. "
    "data/train-*.parquet and data/test-*.parquet, an imagefolder with train/ and test/ "
    "folders, or a README.md with a configs block), or a "
    + ", ".join(sorted(_FILE_BUILDERS))
    + " file"
)


def _load_local(path: Path, config: str | None) -> datasets.DatasetDict:
    """A local folder or file, read as ``datasets`` reads it, with its splits kept.

    ``save_to_disk`` folders go through ``load_from_disk``; other folders through
    ``load_dataset(folder)``, which names splits after files and folders (``train-*``,
    ``test/``, ...) and follows a ``README.md`` ``configs`` block; a single file through its
    builder (parquet, csv, json, arrow), as one ``train`` split.
    """
    if path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "state.json").exists()):
        loaded = load_saved(
            path, "a dataset saved with save_to_disk", "save it again with save_to_disk"
        )
    else:
        suffix = path.suffix.lower()
        if not path.is_dir() and suffix not in _FILE_BUILDERS:
            raise ValueError(f"cannot read dataset path {str(path)!r}: expected {_LOCAL_KINDS}")
        try:
            if path.is_dir():
                loaded = load_folder(path, config)
            else:
                loaded = datasets.load_dataset(_FILE_BUILDERS[suffix], data_files=str(path))
        except Exception as error:  # empty folder, damaged file, mixed formats, ...: say so
            raise ValueError(
                f"cannot read dataset path {str(path)!r} ({type(error).__name__}: {error}); "
                f"expected {_LOCAL_KINDS}"
            ) from error
    if isinstance(loaded, datasets.Dataset):
        loaded = datasets.DatasetDict({"train": loaded})
    return loaded


def load_folder(path: str | os.PathLike, config: str | None = None, **kwargs):
    """``datasets.load_dataset(folder, config, **kwargs)``, with a cache that follows the files.

    ``datasets`` keys its cache of a folder whose ``README.md`` has a ``configs`` block on the
    folder's name and that block alone, not on the files: another folder of the same name (two
    exports called ``subset``), or the same folder rewritten, would load the rows cached first.
    Passing the block's data files explicitly puts the files (paths, modification times) in the
    cache key. Folders without such a block are keyed on their files already.
    """
    data_files = _readme_data_files(Path(path), config)
    if data_files is not None and "data_files" not in kwargs:
        kwargs["data_files"] = data_files
    return datasets.load_dataset(str(path), config, **kwargs)


def _readme_data_files(path: Path, config: str | None) -> dict[str, list[str]] | None:
    """The data files of ``config`` (or the default) in the README.md ``configs`` block of a
    folder, relative to it; ``None`` where there is no such block (load_dataset decides)."""
    from datasets.data_files import sanitize_patterns
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCard

    readme = path / "README.md"
    if not readme.is_file():
        return None
    configs = MetadataConfigs.from_dataset_card_data(DatasetCard.load(readme).data)
    name = config or configs.get_default_config_name()
    if name is None and len(configs) == 1:
        name = next(iter(configs))
    if name not in configs or configs[name].get("data_files") is None:
        return None
    patterns = sanitize_patterns(configs[name]["data_files"])
    data_dir = configs[name].get("data_dir")
    if data_dir:
        patterns = {split: [f"{data_dir}/{p}" for p in files] for split, files in patterns.items()}
    return patterns
