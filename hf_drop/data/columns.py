"""Reading label and score columns of a ``datasets.Dataset`` as numpy, without decoding images.

Only the named column is touched, straight from Arrow. The public formatters
(``with_format("numpy")``) take seconds per million rows once a dataset has an indices mapping
(after ``select`` or ``shuffle``), which is exactly the case for subsets; Arrow's ``take`` on the
mapping costs milliseconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "DIGEST_ROWS",
    "Labels",
    "check_identity",
    "column_to_numpy",
    "content_digest",
    "dataset_identity",
    "read_labels",
    "read_scores",
]


@dataclass(frozen=True)
class Labels:
    """Class ids of every row, the class names, and a hash that identifies the column."""

    ids: NDArray[np.int64]
    names: list[str]
    column: str

    @property
    def hash(self) -> str:
        """xxh64 of the class ids and names: equal iff the same rows carry the same classes."""
        h = xxhash.xxh64(memoryview(np.ascontiguousarray(self.ids)))  # no copy of the ids
        h.update("\x00".join(self.names).encode())
        return h.hexdigest()


def read_labels(dataset: datasets.Dataset, column: str) -> Labels:
    """Class ids and names of ``column``: a ``ClassLabel``, an integer or a string column.

    Strings are encoded as ``Dataset.class_encode_column`` would (sorted names), without touching
    the dataset itself.
    """
    _check_dataset(dataset)
    feature = _feature(dataset, column, role="label_column")
    values = _column(dataset, column)
    if values.null_count:
        raise ValueError(f"label column {column!r} has {values.null_count} missing labels")

    if isinstance(feature, datasets.ClassLabel):
        ids = values.to_numpy().astype(np.int64, copy=False)
        names = list(feature.names)
    elif isinstance(feature, datasets.Value) and pa.types.is_integer(feature.pa_type):
        ids = values.to_numpy().astype(np.int64, copy=False)
        num_classes = int(ids.max()) + 1 if ids.size else 0
        distinct = len(np.unique(ids)) if num_classes > _MAX_DENSE_CLASSES else num_classes
        if num_classes > max(_MAX_DENSE_CLASSES, 10 * distinct):
            # Integer labels are class ids 0..K-1; a sparse code (a label of 2e9) would mean
            # billions of empty classes.
            raise ValueError(
                f"label column {column!r} holds {distinct} distinct integer labels up to "
                f"{num_classes - 1}: integer labels must be class ids 0..K-1. Encode them first, "
                f"e.g. dataset.cast_column({column!r}, Value('string')).class_encode_column("
                f"{column!r})"
            )
        names = [str(k) for k in range(num_classes)]
    elif isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string"):
        names = sorted(pc.unique(values).to_pylist())
        ids = pc.index_in(values, value_set=pa.array(names, type=values.type)).to_numpy()
        ids = ids.astype(np.int64)
    else:
        raise ValueError(
            f"label column {column!r} must be a ClassLabel, integer or string column, got {feature}"
        )

    bad = (ids < 0) | (ids >= len(names))
    if np.any(bad):
        raise ValueError(
            f"label column {column!r} has labels outside the ClassLabel range [0, {len(names)}): "
            f"{np.unique(ids[bad])[:10].tolist()} at rows {np.flatnonzero(bad)[:10].tolist()}"
        )
    return Labels(ids=ids, names=names, column=column)


def read_groups(dataset: datasets.Dataset, columns: str | list[str]) -> Labels:
    """Group ids and names of one column or of the combinations of several.

    Each column is read as a label column (``ClassLabel``, integer or string; see
    :func:`read_labels`). One column gives its classes as groups; several give every combination
    that occurs, named by its values joined with ``"/"`` (``"dress/1"`` for label ``dress`` and
    frame ``1``), numbered in the order of the columns' class ids.
    """
    names = [columns] if isinstance(columns, str) else list(columns)
    if not names or not all(isinstance(c, str) for c in names) or len(set(names)) < len(names):
        raise ValueError(
            f"group_column must be a column name or a list of distinct names, got {columns!r}"
        )
    parts = [read_labels(dataset, column) for column in names]
    if len(parts) == 1:
        return Labels(ids=parts[0].ids, names=parts[0].names, column=names[0])
    code = np.zeros(len(dataset), dtype=np.int64)
    for part in parts:  # mixed radix: the combination's position in the product of classes
        code = code * len(part.names) + part.ids
    observed, ids = np.unique(code, return_inverse=True)
    labels = []
    for value in observed:
        values = []
        for part in reversed(parts):
            value, k = divmod(int(value), len(part.names))
            values.append(part.names[k])
        labels.append("/".join(reversed(values)))
    if len(set(labels)) < len(labels):  # "a/b" + "c" and "a" + "b/c": one name, two groups
        twice = sorted({name for name in labels if labels.count(name) > 1})
        raise ValueError(
            f"group columns {names} give two groups the same name {twice[:5]} (their values "
            "hold '/', which joins the values of a group): rename those values first"
        )
    return Labels(ids=ids.astype(np.int64), names=labels, column="+".join(names))


# Integer labels may leave classes empty, but not more than this many (or 10x the labels seen).
_MAX_DENSE_CLASSES = 100_000

# How many rows the content digest hashes. A change to a fraction f of the rows (a shuffle, a
# permutation within classes, other images) escapes it with probability about (1 - f) ** 256:
# below 1e-11 for f = 0.1. A change to a handful of rows needs an id column (``id_column=``).
DIGEST_ROWS = 256


def dataset_identity(
    dataset: datasets.Dataset, label_column: str, *, labels: Labels | None = None
) -> dict[str, object]:
    """What identifies ``dataset``'s rows, JSON-ready: row count, label column and hash, and a
    content digest of every column at :data:`DIGEST_ROWS` fixed positions.

    Positions change under ``shuffle``, ``filter``, ``select`` and sharding, and a label hash
    cannot see a permutation within a class; the content digest can, at the cost of reading
    a few hundred rows.
    """
    labels = read_labels(dataset, label_column) if labels is None else labels
    return {
        "num_rows": len(dataset),
        "label_column": label_column,
        "label_hash": labels.hash,
        "content": content_digest(dataset),
    }


def content_digest(
    dataset: datasets.Dataset,
    columns: list[str] | None = None,
    *,
    subset: NDArray[np.int64] | None = None,
) -> dict[str, object]:
    """xxh64 of each column's values at fixed row positions (a pure function of the row count).

    Image and audio cells hash their bytes (or the file they point to), not their path, so that
    the same images under another folder have the same digest. ``subset`` (row positions) gives
    the digest of ``dataset.select(subset)`` without making it.
    """
    positions = _digest_positions(len(dataset) if subset is None else len(subset))
    if subset is not None:
        positions = np.asarray(subset, dtype=np.int64)[positions]
    rows = pa.array(positions, pa.int64())
    if dataset._indices is not None:  # positions of the view -> rows of the underlying table
        rows = dataset._indices.column(0).take(rows)
    digests = {}
    for name in columns or dataset.column_names:
        values = dataset.data.column(name).take(rows).to_pylist()
        h = xxhash.xxh64()
        for value in values:
            h.update(_cell_bytes(value))
        digests[name] = h.hexdigest()
    return {"rows": len(positions), "columns": digests}


def check_identity(
    dataset: datasets.Dataset,
    recorded: dict[str, object],
    *,
    seen: str,
    fix: str,
    labels: Labels | None = None,
    actual: dict[str, object] | None = None,
) -> None:
    """A ValueError unless ``dataset`` has the rows ``recorded`` by :func:`dataset_identity`.

    ``actual`` is the dataset's own :func:`dataset_identity` when the caller has it already
    (its digests are then not computed again).

    Compares the row count, the label hash, and the content digest of every recorded column the
    dataset still has (columns added since, such as scores, are ignored; a recorded column that
    was removed is not compared). The message reads "{seen} ...; this dataset ...: {fix}".
    """
    problems = []
    num_rows = recorded.get("num_rows")
    if num_rows is not None and num_rows != len(dataset):
        problems.append(f"{len(dataset)} rows instead of {num_rows}")
    label_hash = recorded.get("label_hash")
    if label_hash is not None and not problems:
        column = str(recorded.get("label_column") or "label")
        labels = read_labels(dataset, column) if labels is None else labels
        if labels.hash != label_hash:
            problems.append(
                f"other labels in column {column!r} (label hash {labels.hash}, not {label_hash}): "
                "the rows were reordered, filtered or come from another dataset"
            )
    content = recorded.get("content")
    if content and not problems:
        expected = dict(content["columns"])
        present = [name for name in expected if name in dataset.column_names]
        label = recorded.get("label_column")
        content_columns = [name for name in expected if name != label]
        if content_columns and not any(name in present for name in content_columns):
            raise ValueError(
                f"{seen} a dataset with columns {content_columns}, and this one has none of them: "
                "its rows cannot be verified (a permutation within classes keeps the labels); "
                f"keep at least one of those columns, or fit with id_column=: {fix}"
            )
        digests = (
            actual["content"]["columns"]
            if actual is not None
            else content_digest(dataset, present)["columns"]
        )
        differ = [name for name in present if digests[name] != expected[name]]
        if differ:
            problems.append(
                f"other values in column(s) {differ} at the same positions: the rows were "
                "permuted (e.g. within classes) or changed"
            )
    if problems:
        raise ValueError(f"{seen} another dataset: this one has {'; '.join(problems)}: {fix}")


def _digest_positions(num_rows: int) -> NDArray[np.int64]:
    """:data:`DIGEST_ROWS` distinct positions drawn by a seed that is the row count, sorted."""
    if num_rows <= DIGEST_ROWS:
        return np.arange(num_rows, dtype=np.int64)
    rng = np.random.default_rng(num_rows)
    return np.sort(rng.choice(num_rows, DIGEST_ROWS, replace=False)).astype(np.int64)


def _cell_bytes(value: object) -> bytes:
    """A cell as length-prefixed bytes: an image/audio cell by its content, the rest by repr."""
    data = None
    if isinstance(value, dict) and value and set(value) <= {"bytes", "path", "sampling_rate"}:
        if value.get("bytes") is not None:
            data = b"B" + value["bytes"]
        elif value.get("path") and os.path.isfile(value["path"]):
            with open(value["path"], "rb") as f:
                data = b"B" + f.read()
    if data is None:
        data = repr(value).encode()
    return len(data).to_bytes(8, "little") + data


def read_scores(
    dataset: datasets.Dataset, scores: str | ArrayLike, *, ndim: int = 1, name: str = "scores"
) -> NDArray[np.float64]:
    """Per-row scores from a column name or an array, checked for length and finiteness.

    ``ndim=2`` reads one vector per row (embeddings) from a list column.
    """
    if isinstance(scores, str):
        _feature(dataset, scores, role=name)
        array = column_to_numpy(dataset, scores, role=f"{name} column")
        label = f"{name} column {scores!r}"
    else:
        array = np.asarray(scores)
        label = f"{name} array"
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{label} must be numeric, got {array.dtype}")
    if array.ndim != ndim:
        raise ValueError(f"{label} must have {ndim} dimension(s), got shape {array.shape}")
    if len(array) != len(dataset):
        raise ValueError(
            f"{label} has {len(array)} entries but the dataset has {len(dataset)} rows"
        )
    array = array.astype(np.float32 if ndim == 2 else np.float64, copy=False)
    bad = np.flatnonzero(~np.isfinite(array).reshape(len(array), -1).all(axis=1))
    if bad.size:
        raise ValueError(f"{label} has NaN or inf at rows {bad[:10].tolist()}")
    return array


def column_to_numpy(dataset: datasets.Dataset, column: str, role: str = "column") -> np.ndarray:
    """A numeric column in its stored dtype: 1-D, or 2-D for a column of equal-length vectors."""
    values = _column(dataset, column)
    if values.null_count:
        raise ValueError(f"{role} {column!r} has {values.null_count} missing values")
    if not (
        pa.types.is_list(values.type)
        or pa.types.is_large_list(values.type)
        or pa.types.is_fixed_size_list(values.type)
    ):
        return values.to_numpy(zero_copy_only=False)
    lengths = pc.list_value_length(values).to_numpy()
    if lengths.size and np.any(lengths != lengths[0]):
        raise ValueError(f"{role} {column!r} has vectors of different lengths")
    flat = pc.list_flatten(values).to_numpy(zero_copy_only=False)
    return flat.reshape(len(values), int(lengths[0]) if lengths.size else 0)


def _check_dataset(dataset: object) -> None:
    if isinstance(dataset, datasets.DatasetDict):
        raise TypeError(
            f"expected a datasets.Dataset, got a DatasetDict with splits {list(dataset)}: "
            "pass one split, e.g. dataset['train']"
        )
    if not isinstance(dataset, datasets.Dataset):
        raise TypeError(f"expected a datasets.Dataset, got {type(dataset).__name__}")


def _feature(dataset: datasets.Dataset, column: str, role: str) -> object:
    if column not in dataset.column_names:
        raise ValueError(
            f"{role} {column!r} is not a column of the dataset; its columns are "
            f"{dataset.column_names}"
        )
    return dataset.features[column]


def _column(dataset: datasets.Dataset, column: str) -> pa.Array:
    values = dataset.data.column(column)
    # `_indices` is the dataset's indices mapping (set by select/shuffle/filter): rows of the
    # view are rows of the underlying table taken through it.
    if dataset._indices is not None:
        values = values.take(dataset._indices.column(0))
    return values.combine_chunks()
