"""Reading label and score columns of a ``datasets.Dataset`` as numpy, without decoding images.

Only the named column is touched, straight from Arrow. The public formatters
(``with_format("numpy")``) take seconds per million rows once a dataset has an indices mapping
(after ``select`` or ``shuffle``), which is exactly the case for subsets; Arrow's ``take`` on the
mapping costs milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from numpy.typing import ArrayLike, NDArray

__all__ = ["Labels", "check_same_rows", "column_to_numpy", "read_labels", "read_scores"]


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
        names = [str(k) for k in range(int(ids.max()) + 1 if ids.size else 0)]
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


def check_same_rows(
    dataset: datasets.Dataset,
    labels: Labels,
    num_rows: int | None,
    label_hash: str | None,
    *,
    seen: str,
    fix: str,
) -> None:
    """A ValueError unless ``dataset`` has the row count and label hash recorded elsewhere.

    The message reads "{seen} a dataset of N rows with label hash H; this dataset has ...: {fix}".
    A recorded value of ``None`` is not checked.
    """
    if (num_rows is not None and num_rows != len(dataset)) or (
        label_hash is not None and label_hash != labels.hash
    ):
        raise ValueError(
            f"{seen} a dataset of {num_rows} rows with label hash {label_hash}; this dataset has "
            f"{len(dataset)} rows and label hash {labels.hash}: {fix}"
        )


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
