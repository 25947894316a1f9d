"""DRoP on a stream (``datasets.IterableDataset``): every row is kept or dropped by a decision that
depends only on the seed, the row's stable id and its class.

So any shard, any order, any shuffle buffer and any node of
``datasets.distributed.split_dataset_by_node`` decides the same way without talking to the
others, and nothing is held per row: memory is O(classes).

Each row gets a 64-bit key ``splitmix64(hash(id) ^ key(seed, class))``, uniform on
``[0, 2**64)`` for distinct ids. Class ``k`` keeps a row when its key falls below a threshold:

* ``"approximate"`` (one counting pass, or none with ``class_sizes``): the threshold is the
  quota's share ``p_k = q_k / N_k`` of the key range, so the kept count is Binomial(N_k, p_k):
  its mean is the quota ``q_k`` and its standard deviation ``sqrt(q_k (1 - p_k))``; it lies
  within ``5`` of those of the quota with probability above 1 - 6e-7 per class.
* ``"exact"`` (two passes over the label and id columns): the threshold is the ``q_k``-th
  smallest key of the class, found with a histogram of the keys' top bits (pass 1, at most
  2**22 counters) and the keys of the one bucket per class that holds the threshold (pass 2,
  about ``N_k / 2**bits`` keys), so the kept count is exactly ``q_k`` unless two rows of a
  class share a 64-bit key.

Images are never decoded: the decision reads Arrow batches of the label and id columns.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import datasets
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from ..core import quotas as Q
from ..core.inputs import as_jsonable, per_class, support_value
from .fit import Fit, class_numbers, make_record
from .params import FilterSpec
from .rows import ByKey, UnitReader

__all__ = [
    "StreamDecision",
    "StreamMode",
    "class_keys",
    "count_classes",
    "exact_thresholds",
    "fit_stream",
    "row_keys",
]

StreamMode = Literal["approximate", "exact"]

# Batches read by the counting passes and by the filter: large enough that numpy does the work.
BATCH_ROWS = 65_536
# Pass 1 of the exact mode keeps at most this many counters (classes x buckets).
_MAX_COUNTERS = 2**22
_U64 = np.uint64
# pandas' hash of string ids is keyed; any fixed key gives stable ids across runs and machines.
_STRING_KEY = "hf-drop-row-ids!"  # 16 bytes, as SipHash takes


def _splitmix64(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """The splitmix64 finaliser, a bijection of uint64 that scrambles every bit; in place on
    ``x`` (which it returns), since it runs on every row of a stream."""
    scratch = np.empty_like(x)
    with np.errstate(over="ignore"):
        np.add(x, _U64(0x9E3779B97F4A7C15), out=x)
        for shift, multiplier in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
            np.right_shift(x, _U64(shift), out=scratch)
            np.bitwise_xor(x, scratch, out=x)
            np.multiply(x, _U64(multiplier), out=x)
        np.right_shift(x, _U64(31), out=scratch)
        np.bitwise_xor(x, scratch, out=x)
    return x


def class_keys(seed: int, num_classes: int) -> NDArray[np.uint64]:
    """One 64-bit key per class, from the seed: what a row's id is mixed with."""
    salt = _splitmix64(np.asarray([seed], dtype=_U64))[0]
    return _splitmix64(np.arange(num_classes, dtype=_U64) ^ salt)


def id_kind(ids_type: pa.DataType) -> str | None:
    """``"int"`` or ``"string"``: the two kinds of ids, hashed differently (None: neither)."""
    if pa.types.is_integer(ids_type):
        return "int"
    if pa.types.is_string(ids_type) or pa.types.is_large_string(ids_type):
        return "string"
    return None


def _id_hashes(
    ids: pa.Array | pa.ChunkedArray, column: str, kind: str | None = None
) -> NDArray[np.uint64]:
    """A 64-bit hash of each id: integers as they are (scrambled later), strings by pandas'
    keyed SipHash. ``kind``: the ids' kind at fit, which every batch must keep."""
    if ids.null_count:
        raise ValueError(f"id_column {column!r} has {ids.null_count} missing ids")
    if kind is not None and id_kind(ids.type) not in (kind, None):
        raise ValueError(
            f"id_column {column!r} holds {ids.type} ids, but the stream was fitted on {kind} ids: "
            "the same rows would get other keys; cast the ids back, or fit on this stream"
        )
    if pa.types.is_integer(ids.type):
        return ids.to_numpy().astype(np.int64, copy=False).view(_U64)
    if pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type):
        values = np.asarray(ids.to_numpy(zero_copy_only=False), dtype=object)
        return pd.util.hash_array(values, hash_key=_STRING_KEY, categorize=False)
    raise ValueError(f"id_column {column!r} must hold int or string ids, got {ids.type}")


def row_keys(
    ids: pa.Array | pa.ChunkedArray,
    classes: NDArray[np.int64],
    keys_of_classes: NDArray[np.uint64],
    column: str = "id",
    kind: str | None = None,
) -> NDArray[np.uint64]:
    """The decision key of each row, uniform 64-bit: ``splitmix64(hash(id) ^ key[class])``, a
    function of (seed, class, id) only (``keys_of_classes`` is :func:`class_keys` of the seed).
    """
    hashes = _id_hashes(ids, column, kind)
    # One fresh array to mix in place (the ids' own buffer may be Arrow's, read-only).
    return _splitmix64(np.bitwise_xor(hashes, keys_of_classes[classes]))


@dataclass(frozen=True)
class ClassReader:
    """Class ids of a stream's label column: ``ClassLabel`` or integer ids, or strings by name."""

    column: str
    names: list[str]
    by_name: bool

    def __call__(self, values: pa.Array | pa.ChunkedArray) -> NDArray[np.int64]:
        if values.null_count:
            raise ValueError(f"label column {self.column!r} has {values.null_count} missing labels")
        string = pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
        if string != self.by_name or not (string or pa.types.is_integer(values.type)):
            expected = "class names (strings)" if self.by_name else "class ids (integers)"
            raise ValueError(
                f"label column {self.column!r} holds {values.type} values, but the stream was "
                f"fitted on {expected}: the label column changed type; fit on this stream"
            )
        if self.by_name:
            ids = pd.Index(self.names).get_indexer(values.to_numpy(zero_copy_only=False))
        else:
            ids = values.to_numpy().astype(np.int64, copy=False)
        bad = (ids < 0) | (ids >= len(self.names))
        if np.any(bad):
            shown = pc.unique(values.filter(pa.array(bad))).to_pylist()[:10]
            raise ValueError(
                f"label column {self.column!r} holds labels {shown} that are not classes of the "
                f"fitted stream ({self.names[:20]}): fit on this stream"
            )
        return ids


def _arrow_batches(stream: datasets.IterableDataset, columns: list[str]) -> Iterator[pa.Table]:
    missing = [
        c for c in columns if stream.column_names is not None and c not in stream.column_names
    ]
    if missing:
        raise ValueError(
            f"the stream has no column(s) {missing}; its columns are {stream.column_names}"
        )
    arrow = stream.select_columns(columns).with_format("arrow")
    yield from arrow.iter(batch_size=BATCH_ROWS)


def count_classes(
    stream: datasets.IterableDataset, label_column: str, id_column: str | None = None
) -> tuple[NDArray[np.int64], ClassReader]:
    """One pass over the label column (and ``id_column``, whose ids may not repeat within a
    batch): rows per class, and how to read the labels."""
    feature = (stream.features or {}).get(label_column)
    columns = [label_column] + ([id_column] if id_column else [])
    if isinstance(feature, datasets.ClassLabel):
        reader = ClassReader(label_column, list(feature.names), by_name=False)
        sizes = np.zeros(len(reader.names), dtype=np.int64)
        for batch in _arrow_batches(stream, columns):
            if id_column:
                _check_unique(batch[id_column], id_column)
            sizes += np.bincount(reader(batch[label_column]), minlength=len(sizes))
        return sizes, reader
    counts: dict[object, int] = {}
    for batch in _arrow_batches(stream, columns):
        if id_column:
            _check_unique(batch[id_column], id_column)
        values = batch[label_column]
        if values.null_count:
            raise ValueError(
                f"label column {label_column!r} has {values.null_count} missing labels"
            )
        for value, n in zip(*np.unique(values.to_numpy(zero_copy_only=False), return_counts=True),
                            strict=True):  # fmt: skip
            counts[value] = counts.get(value, 0) + int(n)
    return _sizes_from_counts(counts, label_column)


def _check_unique(ids: pa.Array | pa.ChunkedArray, column: str) -> None:
    """Refuse a batch that repeats an id (ids must be unique per row)."""
    if len(ids) and pc.count_distinct(ids).as_py() != len(ids) - ids.null_count:
        raise ValueError(
            f"id_column {column!r} repeats ids within a batch: ids must be unique per row"
        )


def _sizes_from_counts(
    counts: dict[object, int], column: str
) -> tuple[NDArray[np.int64], ClassReader]:
    """Sizes by class id as ``read_labels`` numbers them: integers are ids, strings sorted."""
    if all(isinstance(v, str) for v in counts):
        names = sorted(str(v) for v in counts)
        return np.array([counts[n] for n in names], dtype=np.int64), ClassReader(
            column, names, by_name=True
        )
    if not all(isinstance(v, int | np.integer) and v >= 0 for v in counts):
        raise ValueError(
            f"label column {column!r} must hold class ids 0..K-1 or class names, got "
            f"{sorted(map(repr, counts))[:10]}"
        )
    ids = {int(v): n for v, n in counts.items()}  # type: ignore[call-overload]
    num_classes = max(ids) + 1 if ids else 0
    if num_classes > max(100_000, 10 * len(counts)):
        raise ValueError(
            f"label column {column!r} holds {len(counts)} distinct integer labels up to "
            f"{num_classes - 1}: integer labels must be class ids 0..K-1"
        )
    sizes = np.zeros(num_classes, dtype=np.int64)
    for value, n in ids.items():
        sizes[value] = n
    return sizes, ClassReader(column, [str(k) for k in range(num_classes)], by_name=False)


@dataclass(frozen=True)
class StreamDecision:
    """The keep/drop rule of a fitted stream, picklable (DataLoader workers take it): a row is
    kept when its key is at most ``thresholds[class]``; classes with ``keep_none`` keep nothing."""

    reader: ClassReader
    id_column: str
    keys: NDArray[np.uint64]  # class_keys(seed, classes)
    thresholds: NDArray[np.uint64]
    keep_none: NDArray[np.bool_]
    id_kind: str | None = None  # "int" or "string" as fitted; None: not known at fit

    def mask(self, table: pa.Table) -> NDArray[np.bool_]:
        missing = [c for c in (self.reader.column, self.id_column) if c not in table.column_names]
        if missing:
            raise ValueError(
                f"the stream's batch has no column(s) {missing}, which decide its rows; its "
                f"columns are {table.column_names}"
            )
        classes = self.reader(table[self.reader.column])
        keys = row_keys(table[self.id_column], classes, self.keys, self.id_column, self.id_kind)
        keep = keys <= self.thresholds[classes]
        if self.keep_none.any():  # rare: a class that keeps nothing (no inclusive limit says so)
            keep &= ~self.keep_none[classes]
        return keep

    def __call__(self, table: pa.Table) -> pa.BooleanArray:
        """``IterableDataset.filter(decision, batched=True)`` on an Arrow-formatted stream."""
        return pa.array(self.mask(table))


def approximate_decision(
    reader: ClassReader,
    id_column: str,
    seed: int,
    sizes: NDArray,
    quotas: NDArray,
    kind: str | None = None,
) -> StreamDecision:
    """Keep each row of class ``k`` with probability ``q_k / N_k``: a key below that share of
    the key range."""
    share = np.divide(quotas, sizes, out=np.zeros(len(sizes)), where=sizes > 0)
    # Inclusive limits: keys < p * 2**64 are keys <= floor(p * 2**64) - 1; a class kept whole
    # takes every key up to 2**64 - 1. (float64 keeps 53 bits of p: ample for a probability.)
    thresholds = np.array(
        [2**64 - 1 if p >= 1 else max(math.floor(p * 2.0**64) - 1, 0) for p in share],
        dtype=_U64,
    )
    keys = class_keys(seed, len(sizes))
    return StreamDecision(reader, id_column, keys, thresholds, share <= 0, kind)


def exact_thresholds(
    stream: datasets.IterableDataset,
    reader: ClassReader,
    id_column: str,
    seed: int,
    quotas: NDArray[np.int64],
    kind: str | None = None,
) -> tuple[NDArray[np.int64], StreamDecision]:
    """Two passes over the label and id columns: the ``q_k``-th smallest key of every class.

    Returns the class sizes seen and the decision that keeps exactly ``q_k`` rows of class ``k``.
    Ids repeated within a batch, or two rows of a class on the threshold's key (one id twice),
    are refused: the kept count could not be exact.
    """
    num_classes = len(reader.names)
    mixers = class_keys(seed, num_classes)
    bits = int(np.clip(math.floor(math.log2(_MAX_COUNTERS / max(num_classes, 1))), 1, 16))
    shift = _U64(64 - bits)
    histogram = np.zeros(num_classes << bits, dtype=np.int64)
    for batch in _arrow_batches(stream, [reader.column, id_column]):  # pass 1
        classes = reader(batch[reader.column])
        _check_unique(batch[id_column], id_column)
        keys = row_keys(batch[id_column], classes, mixers, id_column, kind)
        slots = (classes.astype(_U64) << _U64(bits)) | (keys >> shift)
        histogram += np.bincount(slots.astype(np.int64), minlength=len(histogram))
    per_class = histogram.reshape(num_classes, 1 << bits)
    sizes = per_class.sum(axis=1)
    if np.any(quotas > sizes):
        raise ValueError(
            "the stream changed between passes: a class holds fewer rows than its quota"
        )
    cumulative = np.cumsum(per_class, axis=1)
    # The bucket that holds the q_k-th smallest key, and how many keys lie below it.
    bucket = np.array([np.searchsorted(cumulative[k], max(q, 1)) for k, q in enumerate(quotas)])
    below = np.where(bucket > 0, cumulative[np.arange(num_classes), np.maximum(bucket - 1, 0)], 0)
    found: list[list[NDArray[np.uint64]]] = [[] for _ in range(num_classes)]
    for batch in _arrow_batches(stream, [reader.column, id_column]):  # pass 2
        classes = reader(batch[reader.column])
        keys = row_keys(batch[id_column], classes, mixers, id_column, kind)
        inside = (keys >> shift).astype(np.int64) == bucket[classes]
        for k in np.unique(classes[inside]):
            found[k].append(keys[inside & (classes == k)])
    thresholds = np.zeros(num_classes, dtype=_U64)
    for k, q in enumerate(quotas):
        if q == 0:
            continue
        keys = np.sort(np.concatenate(found[k])) if found[k] else np.empty(0, _U64)
        rank = int(q - below[k]) - 1
        if not 0 <= rank < len(keys):
            raise ValueError("the stream changed between passes: a class's keys moved")
        if rank + 1 < len(keys) and keys[rank + 1] == keys[rank]:
            raise ValueError(
                f"id_column {id_column!r} repeats ids in class {reader.names[k]!r} (two rows share "
                "a key): ids must be unique per row"
            )
        thresholds[k] = keys[rank]
    decision = StreamDecision(reader, id_column, mixers, thresholds, quotas == 0, kind)
    return sizes, decision


# --- fitting a filter on a stream ---------------------------------------------------------------


def fit_stream(spec: FilterSpec, params: dict[str, Any], stream: datasets.IterableDataset) -> Fit:
    """Quotas of a stream from its class sizes (counted, or ``class_sizes``) and the decision
    that keeps its rows by (seed, id, class); nothing is held per row."""
    if spec.group_columns is not None:
        raise ValueError(
            "group_column applies to a Dataset; a stream is pruned by the classes of its label "
            "column (combine the group columns into one label column to stream groups)"
        )
    if spec.id_column is None:
        raise ValueError(
            "a stream (IterableDataset) needs id_column=, a column of unique, stable row ids: "
            "each row is kept by its id and class, the same on every shard, order and node"
        )
    if spec.within is not None or spec.quota.from_selection:
        raise ValueError(
            "a stream is pruned at random within each class (within='random', a quota rule "
            f"that needs no scores; not quota={spec.quota.spec()!r}, within=<scores>): "
            "score-based selection needs all scores at once; use a Dataset"
        )
    check_stream_columns(stream, spec.input_columns)
    if spec.class_sizes is not None and spec.stream_mode == "approximate":
        reader = _reader_of(stream, spec)
        given = per_class(
            spec.class_sizes,
            reader.names,
            name="class_sizes",
            column=spec.label_column,
            check=support_value,
        )
        if np.any(np.isnan(given)):
            raise ValueError(f"class_sizes must give every class of {reader.names[:20]}")
        sizes = given.astype(np.int64)
    else:
        sizes, reader = count_classes(stream, spec.label_column, spec.id_column)
    expected = (spec.source or {}).get("num_rows")
    if expected is not None and int(sizes.sum()) != expected:
        raise ValueError(
            f"this stream holds {int(sizes.sum())} rows, but the class errors and scores of "
            f"this DRoPFilter come from a dataset of {expected} rows: pass the data the probe "
            "saw, or probe this one"
        )
    # A class-blind rule: each class keeps its share, as random rows would.
    blind = Q.proportional_quotas(sizes, spec.density) if spec.quota.class_blind else None
    numbers = class_numbers(spec, reader.names, sizes, quotas=blind)
    feature = (stream.features or {}).get(spec.id_column)
    kind = id_kind(feature.pa_type) if isinstance(feature, datasets.Value) else None
    if spec.stream_mode == "exact":
        seen, decision = exact_thresholds(
            stream, reader, spec.id_column, spec.seed, numbers.quotas, kind
        )
        if not np.array_equal(seen, sizes):
            raise ValueError("the stream changed between its counting passes: fit it again")
    else:
        decision = approximate_decision(
            reader, spec.id_column, spec.seed, sizes, numbers.quotas, kind
        )
    units = UnitReader([spec.label_column], reader.names, {}, False)
    rows = ByKey(units, decision, spec.stream_mode == "exact", sizes, numbers.quotas)
    source = {
        **as_jsonable(dict(spec.source or {})),
        "fingerprint": None,  # a stream is not hashed whole
        "label_hash": None,
        "num_rows": int(sizes.sum()),
        "label_column": spec.label_column,
        "id_column": spec.id_column,
        "stream_mode": spec.stream_mode,
    }
    num_kept = int(numbers.quotas.sum())
    record = make_record(spec, params, reader.names, numbers, int(sizes.sum()), num_kept, source)
    return Fit(rows, record)


def check_stream_columns(stream: datasets.IterableDataset, columns: list[str]) -> None:
    """Refuse, before any iteration, a stream whose known columns lack one of ``columns``."""
    known = stream.column_names  # None when the stream's features are unknown
    missing = [c for c in columns if known is not None and c not in known]
    if missing:
        raise ValueError(f"the stream has no column(s) {missing}; its columns are {known}")


def _reader_of(stream: datasets.IterableDataset, spec: FilterSpec) -> ClassReader:
    """How to read the labels of a stream whose class sizes were given."""
    feature = (stream.features or {}).get(spec.label_column)
    if isinstance(feature, datasets.ClassLabel):
        return ClassReader(spec.label_column, list(feature.names), by_name=False)
    sizes = spec.class_sizes
    if isinstance(sizes, Mapping) and all(isinstance(k, str) for k in sizes):
        return ClassReader(spec.label_column, sorted(sizes), by_name=True)
    raise ValueError(
        f"the stream's label column {spec.label_column!r} is not a ClassLabel, so class_sizes "
        "must be a mapping by class name (or leave class_sizes out: one pass counts them)"
    )
