"""The layout of a Hub dataset repository: parquet shards under ``data/`` and the YAML that
lists them (``configs``, ``dataset_info``, ``size_categories``), as ``push_to_hub`` writes it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NamedTuple

import datasets
import xxhash

__all__ = [
    "MAX_SHARD_BYTES",
    "SPLIT",
    "Shards",
    "dataset_yaml",
    "size_category",
    "splits_yaml",
    "write_shards",
]

SPLIT = "train"  # the split of a single-split export
MAX_SHARD_BYTES = 500 << 20  # push_to_hub's default


class Shards(NamedTuple):
    """What :func:`write_shards` wrote: the shard paths, and their sizes as push_to_hub records
    them in ``dataset_info``."""

    files: list[str]
    num_bytes: int  # the split's size in Arrow (uncompressed), external files embedded
    download_size: int  # the parquet files' bytes


def write_shards(table: datasets.Dataset, folder: Path, split: str = SPLIT) -> Shards:
    """Parquet shards of one split, named as push_to_hub names them plus a digest of their bytes
    (``data/train-00000-of-00001-<xxh64>.parquet``), external files embedded.

    The digest is for ``datasets``: it caches a folder whose card lists ``configs`` by the
    folder's name and those file names, not by the files' content, so two exports of the same
    name (or one export rewritten) would otherwise load the rows cached first.
    """
    from datasets.table import embed_table_storage

    (folder / "data").mkdir(exist_ok=True)
    size = table.data.nbytes * len(table) / max(len(table.data), 1)
    num_shards = max(1, math.ceil(size / MAX_SHARD_BYTES))
    names = []
    num_bytes = download_size = 0
    for index in range(num_shards):
        shard = table.shard(num_shards=num_shards, index=index, contiguous=True)
        shard = (
            shard.with_format("arrow")
            .map(embed_table_storage, batched=True, keep_in_memory=True)
            .with_format(None)
        )
        written = folder / "data" / f"{split}-{index:05d}-of-{num_shards:05d}.parquet"
        shard.to_parquet(str(written))
        with open(written, "rb") as f:
            content = f.read()
        digest = xxhash.xxh64(content).hexdigest()
        name = f"data/{written.stem}-{digest}.parquet"
        written.rename(folder / name)
        names.append(name)
        # push_to_hub records a split's num_bytes as its Arrow size with external files counted
        # (Dataset._estimate_nbytes, which guesses them from the first 1000 rows) and its
        # download_size as the parquet bytes it wrote. Here both are exact: the Arrow nbytes of
        # each shard as written, files embedded, and the parquet files' lengths.
        num_bytes += shard.data.nbytes
        download_size += len(content)
    return Shards(names, num_bytes, download_size)


def dataset_yaml(table: datasets.Dataset, data: Any, shards: Shards) -> None:
    """:func:`splits_yaml` of a one-split (``train``) repository."""
    splits_yaml({SPLIT: (table, shards)}, data)


def splits_yaml(splits: dict[str, tuple[datasets.Dataset, Shards]], data: Any) -> None:
    """``dataset_info`` (sizes included) and ``configs`` YAML of one config with these splits,
    as push_to_hub writes them, the ``configs`` listing each split's shard files by name (see
    :func:`write_shards` for why), and the Hub's ``size_categories`` bucket of the row count.
    The splits must share their features: a config has one set."""
    from datasets.info import DatasetInfosDict
    from datasets.splits import SplitDict, SplitInfo
    from datasets.utils.metadata import MetadataConfigs

    (first, (table, _)), *rest = splits.items()
    for name, (other, _) in rest:
        if other.features != table.features:
            raise ValueError(
                f"split {name!r} has other features than split {first!r} ({dict(other.features)} "
                f"vs {dict(table.features)}): a Hub dataset config has one set of features; "
                "cast the splits to the same features (Dataset.cast) before exporting"
            )
    info = datasets.DatasetInfo(
        features=table.features,
        license=table.info.license or None,
        download_size=sum(shards.download_size for _, shards in splits.values()),
        dataset_size=sum(shards.num_bytes for _, shards in splits.values()),
    )
    info.config_name = "default"
    info.splits = SplitDict(
        {
            name: SplitInfo(name, num_bytes=shards.num_bytes, num_examples=len(split))
            for name, (split, shards) in splits.items()
        }
    )
    DatasetInfosDict({"default": info}).to_dataset_card_data(data)
    files = [{"split": name, "path": shards.files} for name, (_, shards) in splits.items()]
    MetadataConfigs({"default": {"data_files": files}}).to_dataset_card_data(data)
    # push_to_hub's bucket is that of the whole repository: every split's rows.
    data.size_categories = [size_category(sum(len(split) for split, _ in splits.values()))]


# The Hub's size_categories buckets (datasets/utils/resources/size_categories.json), by the
# number of rows below which each applies.
_SIZE_CATEGORIES = (
    (10**3, "n<1K"), (10**4, "1K<n<10K"), (10**5, "10K<n<100K"), (10**6, "100K<n<1M"),
    (10**7, "1M<n<10M"), (10**8, "10M<n<100M"), (10**9, "100M<n<1B"), (10**10, "1B<n<10B"),
    (10**11, "10B<n<100B"), (10**12, "100B<n<1T"),
)  # fmt: skip


def size_category(num_rows: int) -> str:
    """The Hub's ``size_categories`` bucket of a dataset of ``num_rows`` rows: ``"n<1K"`` below
    1,000, ``"1K<n<10K"`` from 1,000 to 9,999, ..., ``"n>1T"`` from 10**12."""
    return next((name for bound, name in _SIZE_CATEGORIES if num_rows < bound), "n>1T")
