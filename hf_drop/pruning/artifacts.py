"""Writing pruned subsets to disk: complete or absent, and saying how they were made."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

from ..io.outputs import atomic_output, dataset_folders
from .filter import DRoPFilter
from .record import report_table

__all__ = ["materialize", "save_subset"]

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
    rows = drop._fitted_rows()
    record = drop.record_
    if isinstance(subset, datasets.IterableDataset):
        subset = materialize(subset)
        record = record.with_num_kept(len(subset))
    if not isinstance(subset, datasets.Dataset):
        raise TypeError(f"subset must be a datasets.Dataset, got {type(subset).__name__}")
    rows.check_subset(subset, record.num_kept)
    inputs = [*inputs, *dataset_folders(subset)]
    with atomic_output(folder, "subset", overwrite=overwrite, inputs=inputs) as tmp:
        # An empty subset (density 0) needs one (empty) shard: datasets writes none by
        # default, and load_from_disk cannot read a dataset of no shards.
        subset.save_to_disk(str(tmp), num_shards=1 if len(subset) == 0 else None)
        (tmp / PRUNING_FILE).write_text(json.dumps(record.to_dict(), indent=2) + "\n")
        report_table(record).to_csv(tmp / REPORT_FILE)
        try:  # the rows of the source that were kept: what an indices-only export publishes
            kept = pa.table({"index": pa.array(rows.indices, pa.int64())})
            pq.write_table(kept, tmp / INDICES_FILE)
        except AttributeError:  # a stream fit has no positions: its kept ids instead
            column = drop.spec_.id_column
            pq.write_table(subset.data.table.select([column]) if subset._indices is None
                           else subset.select_columns([column]).flatten_indices().data.table,
                           tmp / IDS_FILE)  # fmt: skip
    return Path(folder)


def materialize(stream: datasets.IterableDataset) -> datasets.Dataset:
    """A stream's rows as an in-memory ``Dataset`` (one pass, Arrow batches, features kept)."""
    tables = list(stream.with_format("arrow").iter(batch_size=10_000))
    features = stream.features
    if not tables:
        table = features.arrow_schema.empty_table() if features is not None else pa.table({})
    else:
        table = pa.concat_tables(tables)
    return datasets.Dataset(table, info=datasets.DatasetInfo(features=features))
