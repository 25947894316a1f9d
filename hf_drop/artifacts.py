"""Writing pruned subsets to disk: complete or absent, and saying how they were made."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

from .filter import DRoPFilter

__all__ = ["atomic_folder", "save_subset"]

PRUNING_FILE = "pruning.json"
REPORT_FILE = "pruning_report.csv"
INDICES_FILE = "kept_indices.parquet"


@contextmanager
def atomic_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``folder``; it becomes ``folder`` only if the block succeeds.

    A crash or an exception leaves no half-written ``folder`` behind (a previous one stays as it
    was until the new one is complete).
    """
    target = Path(folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            # Two renames: the old folder is only removed once the new one is in place.
            old = tmp.with_suffix(".old")
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old)
        else:
            tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def save_subset(subset: datasets.Dataset, folder: str | os.PathLike, drop: DRoPFilter) -> Path:
    """``subset.save_to_disk(folder)`` plus ``pruning.json`` (how it was made),
    ``pruning_report.csv`` (kept per class) and ``kept_indices.parquet`` (the source rows kept),
    all written atomically."""
    if len(subset) != len(drop.indices_):
        raise ValueError(
            f"subset has {len(subset)} rows but the DRoPFilter kept {len(drop.indices_)}: "
            "pass drop.apply(dataset)"
        )
    with atomic_folder(folder) as tmp:
        subset.save_to_disk(str(tmp))
        (tmp / PRUNING_FILE).write_text(json.dumps(drop.provenance(), indent=2) + "\n")
        drop.report().to_csv(tmp / REPORT_FILE)
        # The rows of the source that were kept: what an indices-only export publishes.
        pq.write_table(pa.table({"index": pa.array(drop.indices_, pa.int64())}), tmp / INDICES_FILE)
    return Path(folder)
