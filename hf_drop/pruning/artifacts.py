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

__all__ = ["save_subset"]

PRUNING_FILE = "pruning.json"
REPORT_FILE = "pruning_report.csv"
INDICES_FILE = "kept_indices.parquet"


def save_subset(
    subset: datasets.Dataset,
    folder: str | os.PathLike,
    drop: DRoPFilter,
    *,
    overwrite: bool = False,
    inputs: Iterable[str | os.PathLike | None] = (),
) -> Path:
    """``subset.save_to_disk(folder)`` plus ``pruning.json`` (how it was made),
    ``pruning_report.csv`` (kept per class) and ``kept_indices.parquet`` (the source rows kept),
    all written atomically.

    ``folder`` must be new, empty, or a previous subset with ``overwrite=True`` (see
    :mod:`hf_drop.io.outputs`); it may not overlap ``inputs`` (e.g. the probe folder) nor the folder
    of the subset's own Arrow files. A symlinked ``folder`` is written through its link."""
    if len(subset) != len(drop.indices_):
        raise ValueError(
            f"subset has {len(subset)} rows but the DRoPFilter kept {len(drop.indices_)}: "
            "pass drop.apply(dataset)"
        )
    inputs = [*inputs, *dataset_folders(subset)]
    with atomic_output(folder, "subset", overwrite=overwrite, inputs=inputs) as tmp:
        # An empty subset (density 0) needs one (empty) shard: datasets writes none by
        # default, and load_from_disk cannot read a dataset of no shards.
        subset.save_to_disk(str(tmp), num_shards=1 if len(subset) == 0 else None)
        (tmp / PRUNING_FILE).write_text(json.dumps(drop.provenance(), indent=2) + "\n")
        drop.report().to_csv(tmp / REPORT_FILE)
        # The rows of the source that were kept: what an indices-only export publishes.
        pq.write_table(pa.table({"index": pa.array(drop.indices_, pa.int64())}), tmp / INDICES_FILE)
    return Path(folder)
