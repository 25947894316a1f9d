"""Writing pruned subsets to disk: complete or absent, and saying how they were made."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from ..data.columns import content_digest
from ..io.outputs import atomic_output, dataset_folders
from .filter import DRoPFilter
from .record import PruningRecord, report_table

__all__ = [
    "checked_subset",
    "materialize",
    "pruned_split",
    "save_subset",
    "split_dict",
]

PRUNING_FILE = "pruning.json"
REPORT_FILE = "pruning_report.csv"
INDICES_FILE = "kept_indices.parquet"
IDS_FILE = "kept_ids.parquet"


def save_subset(
    subset: datasets.Dataset | datasets.DatasetDict | datasets.IterableDataset,
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
    A ``DatasetDict`` (``drop.apply(splits)``: one split pruned, the others untouched) is saved
    with all its splits, and ``pruning.json`` says which split is pruned and identifies the
    others (``splits``). ``folder`` must be new, empty, or a previous subset with
    ``overwrite=True`` (see :mod:`hf_drop.io.outputs`); it may not overlap ``inputs`` (e.g. the
    probe folder) nor the folder of the subset's own Arrow files. A symlinked ``folder`` is
    written through its link."""
    splits = None
    if isinstance(subset, datasets.DatasetDict):
        splits = subset
        name = pruned_split(splits, lambda split: checked_subset(split, drop), "drop.apply()")
        subset = splits[name]
    subset, record, positions = checked_subset(subset, drop)
    inputs = [*inputs, *dataset_folders(subset)]
    if splits is not None:
        inputs += dataset_folders(*splits.values())
        record = replace(record, extra={**record.extra, "splits": split_record(splits, name)})
    with atomic_output(folder, "subset", overwrite=overwrite, inputs=inputs) as tmp:
        # An empty subset (density 0) needs one (empty) shard: datasets writes none by
        # default, and load_from_disk cannot read a dataset of no shards.
        if splits is None:
            subset.save_to_disk(str(tmp), num_shards=1 if len(subset) == 0 else None)
        else:
            saved = datasets.DatasetDict({n: subset if n == name else s for n, s in splits.items()})
            empty = {n: 1 for n, s in saved.items() if len(s) == 0}
            saved.save_to_disk(str(tmp), num_shards=empty or None)
        (tmp / PRUNING_FILE).write_text(json.dumps(record.to_dict(), indent=2) + "\n")
        report_table(record).to_csv(tmp / REPORT_FILE)
        if positions is not None:  # the source row of each subset row: an indices export
            pq.write_table(pa.table({"index": pa.array(positions, pa.int64())}), tmp / INDICES_FILE)
        else:  # a stream fit has no positions: the kept ids instead
            ids = subset.select_columns([drop.spec_.id_column]).flatten_indices()
            pq.write_table(ids.data.table, tmp / IDS_FILE)
    return Path(folder)


def pruned_split(splits: datasets.DatasetDict, check: Callable[[Any], object], what: str) -> str:
    """The name of the one split of ``splits`` that ``check`` accepts (it raises a ValueError
    or TypeError for any other), or a ValueError naming the splits and why none or several are.

    The others are published as they are; that one of them is the pruned rows is what the
    caller cannot tell apart by count (a 400-row validation split beside 400 kept rows)."""
    if not isinstance(splits, datasets.DatasetDict) or not splits:
        raise ValueError(f"expected a non-empty DatasetDict of splits, got {splits!r}")
    matching, reasons = [], {}
    for name, split in splits.items():
        try:
            check(split)
        except (ValueError, TypeError) as error:
            reasons[name] = str(error)
        else:
            matching.append(name)
    if len(matching) != 1:
        found = "none" if not matching else f"several ({matching})"
        raise ValueError(
            f"a DatasetDict is saved or exported with exactly one pruned split (the rows "
            f"{what} kept) and the others untouched, but {found} of its splits {list(splits)} "
            "holds those rows"
            + (f": {reasons}" if not matching else "")
            + "; pass the DatasetDict that DRoPFilter.apply(splits) returned"
        )
    return matching[0]


def split_record(splits: datasets.DatasetDict, pruned: str) -> dict[str, Any]:
    """What a saved or exported ``DatasetDict`` records of its splits: the pruned one's name,
    and of each other (published as given) its row count, fingerprint and content digest."""
    return {
        "pruned": pruned,
        "others": {
            name: {
                "num_rows": len(split),
                "fingerprint": split._fingerprint,
                "content": content_digest(split),
            }
            for name, split in splits.items()
            if name != pruned
        },
    }


def split_dict(
    split: datasets.Dataset, name: str, source: datasets.DatasetDict
) -> datasets.DatasetDict:
    """``split`` under ``name`` beside the other splits of ``source``, untouched and in the
    source's order (``name`` first if the source has no such split): what
    ``DRoPFilter.apply`` prunes in one split and saves whole."""
    names = list(source) if name in source else [name, *source]
    return datasets.DatasetDict({n: split if n == name else source[n] for n in names})


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
