"""Writing pruned subsets to disk: complete or absent, and saying how they were made."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from ..io.outputs import atomic_output, dataset_folders
from .filter import DRoPFilter
from .record import PruningRecord, report_table

__all__ = ["checked_subset", "materialize", "save_subset"]

PRUNING_FILE = "pruning.json"
REPORT_FILE = "pruning_report.csv"
INDICES_FILE = "kept_indices.parquet"
IDS_FILE = "kept_ids.parquet"


def save_subset(
    subset: datasets.Dataset | datasets.IterableDataset,
    folder: str | os.PathLike,
    drop: DRoPFilter,
    *,
    overwrite: bool = False,
    inputs: Iterable[str | os.PathLike | None] = (),
) -> Path:
    """``subset.save_to_disk(folder)`` plus ``pruning.json`` (how it was made),
    ``pruning_report.csv`` (kept per class) and ``kept_indices.parquet`` (the source rows kept;
    ``kept_ids.parquet``, the kept ids, for a filter fitted on a stream), all written atomically.

    ``subset`` must be ``drop``'s kept rows (checked by identity, not by count: the same rows
    of another filter are refused); a stream (``drop.apply(stream)``) is read once and saved.
    ``folder`` must be new, empty, or a previous subset with ``overwrite=True`` (see
    :mod:`hf_drop.io.outputs`); it may not overlap ``inputs`` (e.g. the probe folder) nor the folder
    of the subset's own Arrow files. A symlinked ``folder`` is written through its link."""
    subset, record, positions = checked_subset(subset, drop)
    inputs = [*inputs, *dataset_folders(subset)]
    with atomic_output(folder, "subset", overwrite=overwrite, inputs=inputs) as tmp:
        # An empty subset (density 0) needs one (empty) shard: datasets writes none by
        # default, and load_from_disk cannot read a dataset of no shards.
        subset.save_to_disk(str(tmp), num_shards=1 if len(subset) == 0 else None)
        (tmp / PRUNING_FILE).write_text(json.dumps(record.to_dict(), indent=2) + "\n")
        report_table(record).to_csv(tmp / REPORT_FILE)
        if positions is not None:  # the source row of each subset row: an indices export
            pq.write_table(pa.table({"index": pa.array(positions, pa.int64())}), tmp / INDICES_FILE)
        else:  # a stream fit has no positions: the kept ids instead
            ids = subset.select_columns([drop.spec_.id_column]).flatten_indices()
            pq.write_table(ids.data.table, tmp / IDS_FILE)
    return Path(folder)


def checked_subset(
    subset: datasets.Dataset | datasets.IterableDataset, drop: DRoPFilter
) -> tuple[datasets.Dataset, PruningRecord, NDArray[np.int64] | None]:
    """``subset`` in memory, the record that describes it, and the fitted position of each of
    its rows (None after a stream fit); a ValueError unless it is ``drop``'s kept rows."""
    rows = drop.fitted_rows()
    record = drop.record_
    if isinstance(subset, datasets.IterableDataset):
        subset = materialize(subset)
    if not isinstance(subset, datasets.Dataset):
        raise TypeError(f"subset must be a datasets.Dataset, got {type(subset).__name__}")
    positions = rows.subset_positions(subset, record.num_kept)
    if len(subset) != record.num_kept:  # a stream fit's approximate count, as it came out
        record = record.with_num_kept(len(subset))
    return subset, record, positions


def materialize(stream: datasets.IterableDataset) -> datasets.Dataset:
    """A stream's rows as an in-memory ``Dataset`` (one pass, Arrow batches, features kept)."""
    tables = list(stream.with_format("arrow").iter(batch_size=10_000))
    features = stream.features
    if not tables:
        table = features.arrow_schema.empty_table() if features is not None else pa.table({})
    else:
        table = pa.concat_tables(tables)
    return datasets.Dataset(table, info=datasets.DatasetInfo(features=features))
