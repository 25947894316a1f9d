"""The rows a fit keeps, and how any later dataset, batch or stream is matched to them.

Identity, not position. A fitted filter holds one :class:`FittedRows`:

* :class:`ByPosition`: the kept positions of the one dataset that was fitted (checked by its
  identity: row count, label hash, content digest), for a dataset without an id column;
* :class:`ById`: the kept rows by a stable row id, so that the same rows in any order, shard
  or filter chain are recognised (and other rows refused);
* :class:`ByKey`: a stream fit's decision, a function of (seed, id, class) alone
  (:mod:`hf_drop.pruning.stream`).

Each answers the same questions: which rows of an in-memory dataset are kept
(:meth:`~FittedRows.positions`), the mask of a ``Dataset.filter`` batch (:meth:`~FittedRows.mask`)
or of a stream's Arrow batch (:meth:`~FittedRows.table_mask`), and whether a subset holds exactly
the kept rows (:meth:`~FittedRows.subset_positions`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import datasets
import numpy as np
import pandas as pd
import pyarrow as pa
import xxhash
from numpy.typing import NDArray

from ..data.columns import (
    Labels,
    check_identity,
    column_to_numpy,
    content_digest,
    read_groups,
    read_labels,
)

if TYPE_CHECKING:
    from .stream import StreamDecision

__all__ = [
    "ById",
    "ByKey",
    "ByPosition",
    "FittedRows",
    "UnitReader",
    "check_kept",
    "position_rows",
    "read_ids",
    "select_rows",
]

_FIX_ID = "fit with id_column= (a column of stable row ids) to follow rows through shuffles"


@dataclass(frozen=True)
class UnitReader:
    """What the quotas count, read from any dataset or batch by the *fitted* names: the classes
    of the label column, or the groups (combinations of ``columns``, named ``"a/b"``).

    ``value_names`` are, per group column, the ``ClassLabel`` names of the fitted dataset (None
    for a plain column), so that a batch's raw values name the same groups as the fit did.
    """

    columns: list[str]
    names: list[str]
    value_names: dict[str, list[str] | None]
    groups: bool

    @classmethod
    def fit(cls, dataset: datasets.Dataset, classes: Labels, group_columns: list[str] | None):
        """The reader and the units of the fitted dataset (``classes``: its label column)."""
        if group_columns is None:
            return cls([classes.column], classes.names, {}, False), classes
        units = read_groups(dataset, group_columns)
        value_names: dict[str, list[str] | None] = {
            column: list(dataset.features[column].names)
            if isinstance(dataset.features[column], datasets.ClassLabel)
            else None
            for column in group_columns
        }
        return cls(list(group_columns), units.names, value_names, True), units

    def dataset_ids(self, dataset: datasets.Dataset) -> NDArray[np.int64]:
        """Unit ids of every row of ``dataset``; units the fit did not see are refused."""
        units = (
            read_labels(dataset, self.columns[0])
            if not self.groups
            else read_groups(dataset, self.columns)
        )
        if units.names == self.names:
            return units.ids
        if not self.groups:
            raise ValueError(
                f"label column {self.columns[0]!r} has classes {units.names[:20]}, not the fitted "
                f"classes {self.names[:20]}: fit it on this dataset"
            )
        return self._by_name(np.asarray(units.names, dtype=object)[units.ids])

    def batch_ids(self, columns: Mapping[str, Any]) -> NDArray[np.int64]:
        """Unit ids of a batch's values (1-D); -1 for a value the fit did not see."""
        if not self.groups:
            values = np.asarray(columns[self.columns[0]]).reshape(-1)
            if values.size and values.dtype.kind not in "iuOUS":
                raise ValueError(
                    f"DRoPFilter got {values.dtype} values where it expects the labels of column "
                    f"{self.columns[0]!r}"
                )
            if values.dtype.kind in "OUS":  # a string label column: class ids by name
                return self._by_name(values)
            return values.astype(np.int64, copy=False)
        parts = []
        for column in self.columns:
            values = np.asarray(columns[column], dtype=object).reshape(-1)
            names = self.value_names[column]
            parts.append([str(names[v]) if names is not None else str(v) for v in values])
        joined = np.array(["/".join(row) for row in zip(*parts, strict=True)], dtype=object)
        return self._by_name(joined)

    def _by_name(self, values: NDArray) -> NDArray[np.int64]:
        return pd.Index(self.names).get_indexer(values).astype(np.int64)


class FittedRows:
    """The kept rows of a fit over ``labels`` (each fitted row's unit id), read by ``units``."""

    units: UnitReader
    id_column: str | None = None

    def positions(self, dataset: datasets.Dataset) -> NDArray[np.int64]:
        """Sorted positions in ``dataset`` of the kept rows, or a ValueError if ``dataset`` is
        not the fitted rows."""
        raise NotImplementedError

    def mask(self, columns: Mapping[str, Any], indices: Any) -> NDArray[np.bool_]:
        """Keep/drop of a ``Dataset.filter`` batch: its columns and row indices (may be None)."""
        raise NotImplementedError

    def table_mask(self, table: pa.Table) -> NDArray[np.bool_]:
        """Keep/drop of an Arrow batch of a stream (the input columns)."""
        raise NotImplementedError

    def subset_positions(self, subset: datasets.Dataset, num_kept: int) -> NDArray | None:
        """The fitted position of each row of ``subset``, in its order (None for a stream fit,
        which has no positions), or a ValueError unless ``subset`` holds exactly the kept rows
        of this fit (``num_kept`` of them)."""
        raise NotImplementedError

    def check_streamable(self) -> None:
        """A ValueError, before any iteration, if these rows cannot be found in a stream."""

    def kept_identity(self) -> dict[str, Any] | None:
        """What identifies the kept rows in a record (:func:`check_kept`), or None."""
        return None

    @property
    def indices(self) -> NDArray[np.int64]:
        """The kept positions of the fitted dataset."""
        raise AttributeError(
            "a stream-fitted DRoPFilter has no row positions: its rows are kept by id "
            "(apply it to the stream, or to a Dataset of the same rows)"
        )


class _Kept(FittedRows):
    """The kept rows of an in-memory fit: positions, a mask, and each row's unit."""

    def __init__(self, units: UnitReader, labels: NDArray[np.int64], indices: NDArray[np.int64]):
        self.units = units
        small = np.int16 if len(units.names) < 2**15 else np.int32
        self.labels = labels.astype(small)
        self._indices = indices
        self.kept = np.zeros(len(labels), dtype=bool)
        self.kept[indices] = True

    @property
    def indices(self) -> NDArray[np.int64]:
        return self._indices

    def _check_units(self, values: NDArray[np.int64], rows: NDArray[np.int64]) -> None:
        """The units (classes or groups) of these rows must be those of the fitted rows."""
        expected = self.labels[rows.reshape(-1)]
        wrong = np.flatnonzero(values.reshape(-1) != expected)
        if wrong.size:
            where = "ids" if self.id_column else "positions"
            at = (rows.reshape(-1)[wrong[:5]] if self.id_column is None else wrong[:5]).tolist()
            raise ValueError(
                f"{wrong.size} of {expected.size} rows carry other labels than the fitted rows "
                f"at these {where} (e.g. {at}): this is not the dataset this DRoPFilter "
                "was fitted on (shuffled, filtered, or another one). Filter the fitted dataset, "
                "or fit with id_column= to follow rows by id"
            )


class ByPosition(_Kept):
    """Kept rows by position in the one fitted dataset, whose ``identity`` is checked."""

    def __init__(self, units, labels, indices, identity: dict, subset_identity: dict) -> None:
        super().__init__(units, labels, indices)
        self.identity = identity
        self.subset_identity = subset_identity

    def positions(self, dataset: datasets.Dataset) -> NDArray[np.int64]:
        check_identity(
            dataset,
            self.identity,
            seen="this DRoPFilter was fitted on",
            fix=f"apply it to the dataset it was fitted on, fit it on this one, or {_FIX_ID}",
        )
        return self._indices

    def mask(self, columns: Mapping[str, Any], indices: Any) -> NDArray[np.bool_]:
        if indices is None:
            raise TypeError(
                "DRoPFilter decides by row position: call dataset.filter(drop, "
                "with_indices=True, batched=True), or fit with id_column="
            )
        rows = np.asarray(indices, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self.labels)):
            raise ValueError(
                f"row indices {rows.min()}..{rows.max()} are out of range for the "
                f"{len(self.labels)}-row dataset this DRoPFilter was fitted on: filter that "
                "dataset, or fit this one"
            )
        self._check_units(self.units.batch_ids(columns), rows)
        return self.kept[rows]

    def table_mask(self, table: pa.Table) -> NDArray[np.bool_]:
        self.check_streamable()
        raise AssertionError  # unreachable: check_streamable refuses

    def check_streamable(self) -> None:
        raise ValueError(
            "this DRoPFilter was fitted on a Dataset without id_column=: its decisions are by "
            "position, which a stream does not have; fit with id_column="
        )

    def kept_identity(self) -> dict[str, Any]:
        return {**self.subset_identity, "indices_hash": indices_hash(self._indices)}

    def subset_positions(self, subset: datasets.Dataset, num_kept: int) -> NDArray:
        check_identity(
            subset,
            self.subset_identity,
            seen="the DRoPFilter's kept rows are",
            fix="pass drop.apply(dataset), the subset this very filter made",
        )
        return self._indices


class ById(_Kept):
    """Kept rows by a stable id: the same rows are recognised in any order or shard."""

    def __init__(self, units, labels, indices, ids: pd.Index, id_column: str) -> None:
        super().__init__(units, labels, indices)
        self.ids = ids
        self.id_column = self.key = id_column

    def kept_identity(self) -> dict[str, Any]:
        kept = self.ids[self._indices]
        return {
            "num_rows": len(kept),
            "id_column": self.key,
            "ids_hash": ids_hash(kept),
            "indices_hash": indices_hash(self._indices),
        }

    def rows_of(self, ids: NDArray) -> NDArray[np.int64]:
        """Fitted positions of ``ids``; an id the fit never saw is a ValueError."""
        rows = self.ids.get_indexer(ids.reshape(-1))
        unknown = rows < 0
        if np.any(unknown):
            raise ValueError(
                f"id column {self.key!r} has {int(unknown.sum())} id(s) this DRoPFilter "
                f"was not fitted on (e.g. {ids.reshape(-1)[unknown][:5].tolist()}): these rows "
                "come from another dataset; fit it on this one"
            )
        return rows

    def positions(self, dataset: datasets.Dataset) -> NDArray[np.int64]:
        rows = self.rows_of(read_ids(dataset, self.key).to_numpy())
        if len(rows) != len(self.labels):
            raise ValueError(
                f"this dataset holds {len(rows)} of the {len(self.labels)} rows this DRoPFilter "
                "was fitted on: its class quotas would not hold; fit it on this dataset"
            )
        self._check_units(self.units.dataset_ids(dataset), rows)
        return np.flatnonzero(self.kept[rows])

    def mask(self, columns: Mapping[str, Any], indices: Any) -> NDArray[np.bool_]:
        rows = self.rows_of(np.asarray(columns[self.key], dtype=object))
        self._check_units(self.units.batch_ids(columns), rows)
        return self.kept[rows]

    def table_mask(self, table: pa.Table) -> NDArray[np.bool_]:
        columns = {c: _arrow_values(table, c) for c in [*self.units.columns, self.key]}
        return self.mask(columns, None)

    def subset_positions(self, subset: datasets.Dataset, num_kept: int) -> NDArray:
        rows = self.rows_of(read_ids(subset, self.key).to_numpy())
        dropped = int((~self.kept[rows]).sum())
        if dropped or len(rows) != num_kept:
            raise ValueError(
                f"the subset is not this DRoPFilter's kept rows: it holds {len(rows)} rows, "
                f"{dropped} of them rows the filter drops, where the filter keeps {num_kept}: "
                "pass drop.apply(dataset), the subset this very filter made"
            )
        self._check_units(self.units.dataset_ids(subset), rows)
        return rows


class ByKey(FittedRows):
    """A stream fit: each row kept by its key of (seed, id, class) (``decision``); ``sizes`` and
    ``quotas`` per class are what a subset of the whole stream must match (exactly, with
    ``exact``; else within the Binomial spread of the approximate mode)."""

    def __init__(self, units, decision: StreamDecision, exact: bool, sizes, quotas) -> None:
        self.units = units
        self.decision = decision
        self.id_column = decision.id_column
        self.exact = exact
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.quotas = np.asarray(quotas, dtype=np.int64)

    def positions(self, dataset: datasets.Dataset) -> NDArray[np.int64]:
        if len(dataset) != int(self.sizes.sum()):
            raise ValueError(
                f"this dataset holds {len(dataset)} rows, but the stream this DRoPFilter was "
                f"fitted on held {int(self.sizes.sum())}: apply it to the same rows"
            )
        return np.flatnonzero(self._mask_of(dataset))

    def _mask_of(self, dataset: datasets.Dataset) -> NDArray[np.bool_]:
        names = [*self.units.columns, self.decision.id_column]
        table = dataset.select_columns(names).with_format("arrow")
        masks = [self.table_mask(batch) for batch in table.iter(batch_size=65_536)]
        return np.concatenate(masks) if masks else np.empty(0, bool)

    def mask(self, columns: Mapping[str, Any], indices: Any) -> NDArray[np.bool_]:
        names = [*self.units.columns, self.decision.id_column]
        table = pa.table({c: list(np.asarray(columns[c]).reshape(-1)) for c in names})
        return self.table_mask(table)

    def table_mask(self, table: pa.Table) -> NDArray[np.bool_]:
        return self.decision.mask(table)

    def subset_positions(self, subset: datasets.Dataset, num_kept: int) -> None:
        fix = "pass drop.apply(stream), the whole subset this very filter made"
        dropped = int((~self._mask_of(subset)).sum())
        if dropped:
            raise ValueError(
                f"the subset is not this DRoPFilter's kept rows: {dropped} of its {len(subset)} "
                f"rows are rows the filter drops: {fix}"
            )
        read_ids(subset, self.decision.id_column)  # unique ids: no row twice
        counts = np.bincount(self.units.dataset_ids(subset), minlength=len(self.quotas))
        # The approximate mode keeps Binomial(N_k, q_k / N_k) rows of class k: a count more
        # than 6 sd (plus one) away from its quota is part of the subset, not chance.
        share = np.divide(
            self.quotas, self.sizes, out=np.zeros(len(self.sizes)), where=self.sizes > 0
        )
        spread = 0 if self.exact else 6 * np.sqrt(self.quotas * (1 - share)) + 1
        off = np.flatnonzero(np.abs(counts - self.quotas) > spread)
        if off.size:
            k = int(off[0])
            raise ValueError(
                f"the subset holds {int(counts[k])} rows of class {self.units.names[k]!r}, but the "
                f"filter keeps {int(self.quotas[k])}"
                + ("" if self.exact else " (give or take its Binomial spread)")
                + f": it is part of the filter's kept rows, or another's; {fix}"
            )


def position_rows(
    dataset: datasets.Dataset,
    units: UnitReader,
    unit_ids: NDArray[np.int64],
    indices: NDArray[np.int64],
    classes: Labels,
    identity: dict,
) -> ByPosition:
    """A fit's kept positions, with the identity of the fitted dataset and of its subset."""
    # What dataset_identity(dataset.select(indices)) would be, without the select.
    subset_identity = {
        "num_rows": len(indices),
        "label_column": classes.column,
        "label_hash": Labels(classes.ids[indices], classes.names, classes.column).hash,
        "content": content_digest(dataset, subset=indices),
    }
    return ByPosition(units, unit_ids, indices, identity, subset_identity)


def select_rows(dataset: datasets.Dataset, rows: NDArray[np.int64]) -> datasets.Dataset:
    """``dataset.select(rows)``, fast."""
    # Dataset.select hashes its arguments into the new fingerprint and turns a numpy index
    # array into a list of numpy scalars; handing it Python ints and a fingerprint made from
    # the source's and the indices' bytes costs about a third less (make bench-prune).
    fingerprint = xxhash.xxh64(
        f"hf-drop-select-{dataset._fingerprint}-".encode() + rows.tobytes()
    ).hexdigest()
    return dataset.select(rows.tolist(), new_fingerprint=fingerprint)


def indices_hash(positions: NDArray) -> str:
    """xxh64 of a set of row positions (sorted first: the order of a subset does not count)."""
    return xxhash.xxh64(np.sort(np.asarray(positions, dtype=np.int64)).tobytes()).hexdigest()


def ids_hash(ids: pd.Index) -> str:
    """xxh64 of a set of row ids (sorted first), ints and strings alike."""
    h = xxhash.xxh64()
    for value in sorted(ids.tolist()):
        h.update(repr(value).encode() + b"\x00")
    return h.hexdigest()


def check_kept(
    kept: dict[str, Any], subset: datasets.Dataset, kept_indices: NDArray | None, what: str
) -> None:
    """A ValueError unless ``subset`` (and ``kept_indices``, its source positions) are the kept
    rows a record's ``kept`` block identifies."""
    fix = f"{what} belongs to another subset: pass the record of this subset"
    if "ids_hash" in kept:
        ids = read_ids(subset, kept["id_column"])
        if len(ids) != kept["num_rows"] or ids_hash(ids) != kept["ids_hash"]:
            raise ValueError(f"the subset holds other ids than the kept rows: {fix}")
    elif "label_hash" in kept:
        check_identity(subset, kept, seen=f"the kept rows of {what} are", fix=fix)
    if kept_indices is not None and indices_hash(kept_indices) != kept.get("indices_hash"):
        raise ValueError(f"kept_indices are not the kept rows' source positions: {fix}")


def read_ids(dataset: datasets.Dataset, column: str) -> pd.Index:
    """The id column as a unique pandas Index (hash lookups for int and string ids)."""
    if column not in dataset.column_names:
        raise ValueError(
            f"id_column {column!r} is not a column of the dataset; its columns are "
            f"{dataset.column_names}"
        )
    ids = pd.Index(column_to_numpy(dataset, column, role="id_column"))
    if ids.dtype.kind not in "iuO" or (
        ids.dtype.kind == "O" and not all(isinstance(v, str) for v in ids[:1000])
    ):
        raise ValueError(f"id_column {column!r} must hold int or string ids, got {ids.dtype}")
    if not ids.is_unique:
        duplicated = ids[ids.duplicated()].unique()[:5].tolist()
        raise ValueError(f"id_column {column!r} has duplicate ids, e.g. {duplicated}")
    return ids


def _arrow_values(table: pa.Table, column: str) -> NDArray:
    if column not in table.column_names:
        raise ValueError(
            f"the batch has no column {column!r}, which decides its rows; its columns are "
            f"{table.column_names}"
        )
    values = table[column]
    if values.null_count:
        raise ValueError(f"column {column!r} has {values.null_count} missing values in a batch")
    return np.asarray(values.to_numpy(zero_copy_only=False))
