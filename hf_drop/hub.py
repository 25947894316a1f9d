"""Publishing pruned subsets and score tables on the Hugging Face Hub.

:func:`export` writes, atomically, exactly the layout ``push_to_hub`` uploads: parquet shards under
``data/`` and a ``README.md`` dataset card whose YAML holds ``configs``, ``dataset_info`` and a
``drop`` block that says how the subset was made. ``load_dataset(folder)`` reads it back. An
*indices-only* export publishes the kept row indices of a source dataset instead of its images;
:func:`load_pruned` rebuilds the subset from the source and refuses a source that differs.
:func:`push` uploads a folder with ``huggingface_hub``.
"""

from __future__ import annotations

import importlib.util
import math
import os
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, NamedTuple

import datasets
import numpy as np
import pandas as pd
import xxhash

from .core.rules import quota_rule
from .data.columns import check_identity, read_labels
from .io.files import load_saved, read_parquet
from .io.logs import get_logger
from .io.outputs import OUTPUT_MARKER, atomic_output, dataset_folders, output_kind
from .pruning.artifacts import (
    IDS_FILE,
    INDICES_FILE,
    PRUNING_FILE,
    checked_subset,
    materialize,
)
from .pruning.filter import DRoPFilter
from .pruning.record import FIELDS as _PROVENANCE_FIELDS
from .pruning.record import read_record as read_pruning_record
from .pruning.rows import check_kept

__all__ = [
    "export",
    "export_saved",
    "export_scores",
    "exported",
    "load_pruned",
    "push",
    "read_provenance",
]

CARD_FILE = "README.md"
PLOT_FILE = "kept_fraction.png"
SPLIT = "train"
_MAX_SHARD_BYTES = 500 << 20  # push_to_hub's default


def export(
    subset: datasets.Dataset | datasets.IterableDataset,
    folder: str | os.PathLike,
    provenance: dict[str, Any] | DRoPFilter,
    *,
    kept_indices: np.ndarray | None = None,
    mode: Literal["full", "indices"] = "full",
    license: str | None = None,
    tags: list[str] | str | None = None,
    pretty_name: str | None = None,
    overwrite: bool = False,
    inputs: Iterable[str | os.PathLike | None] = (),
) -> Path:
    """Write ``subset`` to ``folder`` as a Hub dataset repository, with its dataset card.

    ``provenance`` is the ``DRoPFilter`` that made ``subset`` (checked: the subset must be its
    rows; a stream subset is read once), or a record: ``DRoPFilter.provenance()`` or a saved
    subset's ``pruning.json``, with ``kept_indices``, the source row of each subset row, for
    ``mode="indices"``, which publishes those indices (and labels) instead of the images. The
    folder appears only once complete. It must be new, empty, or a previous export with
    ``overwrite=True``, and may not overlap ``inputs`` nor the subset's own Arrow files (see
    :mod:`hf_drop.io.outputs`).
    """
    if mode not in ("full", "indices"):
        raise ValueError(f"mode must be 'full' or 'indices', got {mode!r}")
    tags = [tags] if isinstance(tags, str) else tags  # one tag, not its letters
    if tags is not None and not (
        isinstance(tags, list | tuple) and all(isinstance(t, str) and t for t in tags)
    ):
        raise ValueError(f"tags must be a list of non-empty strings, got {tags!r}")
    for name, text in (("license", license), ("pretty_name", pretty_name)):
        if text is not None and not isinstance(text, str):
            raise ValueError(f"{name} must be a string, got {text!r}")
    if isinstance(provenance, DRoPFilter):  # its record, and where each subset row came from
        subset, record, positions = checked_subset(subset, provenance)
        provenance = record.to_dict()
        if mode == "indices" and positions is None:
            raise ValueError(
                "mode='indices' publishes source row positions, and a filter fitted on a stream "
                "has none: export mode='full'"
            )
        kept_indices = positions if kept_indices is None else kept_indices
    else:
        if isinstance(subset, datasets.IterableDataset):
            subset = materialize(subset)
        _check_provenance(provenance)
        if provenance.get("kept"):  # a record since format 1 identifies its kept rows
            check_kept(provenance["kept"], subset, kept_indices, "the provenance record")
    _check_provenance(provenance)
    if len(subset) != provenance.get("num_kept", len(subset)):
        raise ValueError(
            f"subset has {len(subset)} rows but its provenance says {provenance.get('num_kept')} "
            "were kept: pass the subset that DRoPFilter.apply() returned"
        )
    if mode == "indices":
        if kept_indices is None or len(kept_indices) != len(subset):
            raise ValueError("mode='indices' needs kept_indices, one source row per subset row")
        labels = read_labels(subset, provenance["source"]["label_column"])
        table = datasets.Dataset.from_dict(
            {"index": np.asarray(kept_indices, dtype=np.int64), "label": labels.ids},
            features=datasets.Features(
                {"index": datasets.Value("int64"), "label": datasets.ClassLabel(names=labels.names)}
            ),
        )
    else:
        table = subset
    drop = _drop_block(provenance, mode)
    inputs = [*inputs, *dataset_folders(subset)]
    with atomic_output(folder, "export", overwrite=overwrite, inputs=inputs) as tmp:
        shards = _write_shards(table, tmp)
        plotted = _plot(provenance, tmp / PLOT_FILE)
        card = _card(
            table,
            drop,
            provenance,
            license or subset.info.license or None,
            tags,
            pretty_name,
            shards,
            plotted,
        )
        card.save(str(tmp / CARD_FILE))
    return Path(folder)


def export_scores(
    result: Any,
    folder: str | os.PathLike,
    *,
    license: str | None = None,
    tags: list[str] | None = None,
    pretty_name: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a probe's per-sample score table as a Hub dataset repository, with a card that
    records the probe and its class metrics, so that others can prune without re-probing.

    ``folder`` must be new, empty, or a previous score export with ``overwrite=True``, and may not
    overlap the probe folder (see :mod:`hf_drop.io.outputs`)."""
    from huggingface_hub import DatasetCard, DatasetCardData

    from .probe import ProbeResult

    if not isinstance(result, ProbeResult):
        result = ProbeResult.load(result)
    scores = result.scores
    record = result.record
    inputs = [result.folder, *dataset_folders(scores)]
    with atomic_output(folder, "scores-export", overwrite=overwrite, inputs=inputs) as tmp:
        shards = _write_shards(scores, tmp)
        # No task_categories: the table holds scores about another dataset's samples, not data
        # to learn a task from; "tabular-classification" would list it beside datasets that are
        # (in the Hub's task filter), and the source's own card says what task it serves.
        data = DatasetCardData(
            license=license,
            pretty_name=pretty_name,
            tags=list(dict.fromkeys(["hf-drop", "data-pruning", "probe-scores", *(tags or [])])),
            drop_probe={
                "source": record["source"],
                "model": record["model"],
                "config": record["config"],
                "versions": record["versions"],
                "machine": record.get("machine"),  # absent from results older than the field
                "class_errors": [None if np.isnan(e) else float(e) for e in result.class_errors],
                "class_names": result.class_names,
            },
        )
        _dataset_yaml(scores, data, shards)
        name = record["source"].get("name") or "a dataset"
        body = (
            f"# Probe scores for {name}\n\n"
            f"One row per training sample ({len(scores)} rows): `index` (its row in the source), "
            f"`label`, and the scores {', '.join(f'`{n}`' for n in result.score_names)}, "
            f"recorded by hf-drop from one probe run of `{record['model']['name']}` "
            f"({record['config']['epochs']} epochs x {record['config']['num_inits']} "
            "initialisations). The card's `drop_probe` metadata holds the probe's configuration, "
            "the source's fingerprint and label hash, and the class errors below.\n\n"
            "Prune the source with them, without running the probe again:\n\n```python\n"
            "from datasets import load_dataset\nfrom hf_drop import DRoPFilter\n\n"
            f"scores = load_dataset(REPO_ID, split='train')\n"
            "errors = ...  # drop_probe.class_errors from this card\n"
            "drop = DRoPFilter(0.5, class_errors=errors, within=scores['el2n'][:]).fit(source)\n"
            "```\n\n"
            f"## Class errors used by DRoP\n\n"
            f"{_class_table(result.class_names, list(result.class_errors))}\n"
        )
        DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{body}").save(str(tmp / CARD_FILE))
    return Path(folder)


def load_pruned(
    folder_or_repo_id: str | os.PathLike,
    source: datasets.Dataset | None = None,
    *,
    revision: str | None = None,
) -> datasets.Dataset:
    """The pruned subset an :func:`export` describes, from a local folder or a Hub repository.

    A full export is read as it is. An indices-only export selects its rows from ``source`` (by
    default the source dataset its card names, loaded again), and refuses a source whose row
    count, label hash or fingerprint differs from the one that was pruned.
    """
    from huggingface_hub import DatasetCard

    from .data.sources import load_folder

    name = str(folder_or_repo_id)
    local = Path(folder_or_repo_id)
    try:
        if local.is_dir():
            if not (local / CARD_FILE).is_file():
                raise FileNotFoundError(
                    f"{local} holds no {CARD_FILE}: not an hf-drop export (write one with "
                    "hf_drop.hub.export or hf-drop push)"
                )
            card = DatasetCard.load(local / CARD_FILE)
            table = load_folder(local, split=SPLIT)  # never another folder's cached rows
        else:
            card = DatasetCard.load(name, repo_type="dataset")
            table = datasets.load_dataset(name, split=SPLIT, revision=revision)
    except FileNotFoundError:
        raise
    except Exception as error:  # damaged card or shards, offline, unknown repo: name it
        raise ValueError(
            f"could not read the hf-drop export {name} ({type(error).__name__}: {error}): "
            "export it again with hf_drop.hub.export or hf-drop push"
        ) from error
    drop = _read_drop_block(card.data.to_dict(), name)
    if drop["export"] == "full":
        if len(table) != drop["num_kept"]:
            raise ValueError(
                f"{name} holds {len(table)} rows but its card says {drop['num_kept']} were kept: "
                "the export is incomplete or was edited; export it again"
            )
        return table

    expected = drop["source"]
    index = _check_index_column(table, drop, name)  # before the source is loaded
    if source is None:
        source = _reload_source(expected, name)
    labels = read_labels(source, expected["label_column"])
    fix = (
        "this source is not the dataset that was pruned: the kept indices would pick the wrong rows"
    )
    check_identity(
        source,
        {key: expected.get(key) for key in ("num_rows", "label_column", "label_hash", "content")},
        seen="the subset was pruned from",
        fix=fix,
        labels=labels,
    )
    # Cards written before content digests: the fingerprint is the only other evidence.
    fingerprint = expected.get("fingerprint")
    if not expected.get("content") and fingerprint and source._fingerprint != fingerprint:
        raise ValueError(f"fingerprint {source._fingerprint} instead of {fingerprint}: {fix}")
    _check_kept_labels(table, index, labels.ids, drop, name)
    return source.select(index)


def _read_drop_block(meta: dict[str, Any], name: str) -> dict[str, Any]:
    """The card's ``drop`` block, with the keys :func:`load_pruned` needs, or a clear error."""
    drop = meta.get("drop")
    if not isinstance(drop, dict) or not drop:
        raise ValueError(
            f"{name} has no 'drop' block in its card ({CARD_FILE}): not an hf-drop export; "
            "write one with hf_drop.hub.export or hf-drop push"
        )
    if drop.get("export") not in ("full", "indices"):
        raise ValueError(
            f"the card of {name} has 'export': {drop.get('export')!r} in its 'drop' block, not "
            "'full' or 'indices': the card is damaged or not hf-drop's; export it again"
        )
    needed = ["num_kept"]
    if drop["export"] == "indices":
        needed += ["quotas", "source"]
    missing = [key for key in needed if drop.get(key) is None]
    source = drop.get("source") if isinstance(drop.get("source"), dict) else {}
    if drop["export"] == "indices":
        missing += [
            f"source.{key}"
            for key in ("num_rows", "label_column", "label_hash")
            if source.get(key) is None
        ]
    if missing:
        raise ValueError(
            f"the 'drop' block in the card of {name} lacks {missing}: the card is damaged or was "
            "edited; export the subset again"
        )
    quotas = drop.get("quotas")
    counts = {"num_kept": drop["num_kept"]}
    if source.get("num_rows") is not None:
        counts["source.num_rows"] = source["num_rows"]
    if isinstance(quotas, list):
        counts.update({f"quotas[{k}]": q for k, q in enumerate(quotas)})
    elif quotas is not None:
        counts["quotas"] = quotas
    wrong = [f"{key}: {value!r}" for key, value in counts.items() if not _is_count(value)]
    if wrong:
        raise ValueError(
            f"the 'drop' block in the card of {name} holds {'; '.join(wrong)}, not counts (ints "
            ">= 0): the card is damaged or was edited; export the subset again"
        )
    return drop


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_index_column(table: datasets.Dataset, drop: dict[str, Any], name: str) -> np.ndarray:
    """The kept source rows of an indices-only export, refused unless they can be right: one
    per kept row, inside the source, no row twice."""
    if "index" not in table.column_names:
        raise ValueError(f"{name} has no 'index' column: not an indices-only hf-drop export")
    index = np.asarray(table["index"][:], dtype=np.int64)
    num_rows = drop["source"]["num_rows"]
    problems = []
    if len(index) != drop["num_kept"]:
        problems.append(f"{len(index)} indices but the card says {drop['num_kept']} rows were kept")
    if sum(drop["quotas"]) != drop["num_kept"]:
        problems.append(f"quotas sums to {sum(drop['quotas'])}, not num_kept {drop['num_kept']}")
    outside = index[(index < 0) | (index >= num_rows)]
    if outside.size:
        problems.append(
            f"{outside.size} indices outside the source's {num_rows} rows "
            f"(e.g. {outside[:5].tolist()})"
        )
    unique, counts = np.unique(index, return_counts=True)
    if np.any(counts > 1):
        problems.append(
            f"{int(np.sum(counts - 1))} repeated indices (e.g. {unique[counts > 1][:5].tolist()})"
        )
    if problems:
        raise ValueError(
            f"the index column of {name} is damaged ({'; '.join(problems)}): it would pick the "
            "wrong rows; export the subset again"
        )
    return index


def _check_kept_labels(
    table: datasets.Dataset, index: np.ndarray, source_labels: np.ndarray, drop, name: str
) -> None:
    """The source's labels at the kept rows must give the card's per-class counts and, where the
    export recorded them, be the labels it recorded (a shifted index column fails here)."""
    kept = source_labels[index]
    quotas = np.asarray(drop["quotas"], dtype=np.int64)
    counts = np.bincount(kept, minlength=len(quotas))
    if len(counts) != len(quotas) or not np.array_equal(counts, quotas):
        raise ValueError(
            f"the rows that {name} indexes hold {counts.tolist()} samples per class, but its card "
            f"says {quotas.tolist()} were kept: the index column does not match the source; "
            "export the subset again"
        )
    if "label" in table.column_names:
        recorded = read_labels(table, "label").ids
        wrong = np.flatnonzero(recorded != kept)
        if wrong.size:
            raise ValueError(
                f"the labels recorded in {name} differ from the source's labels at its indices "
                f"in {wrong.size} of {len(index)} rows (first at row {int(wrong[0])}): the index "
                "column is shifted or belongs to another dataset; export the subset again"
            )


def _reload_source(expected: dict[str, Any], name: str) -> datasets.Dataset:
    """The source an indices-only export names, loaded again, or a clear error saying to pass it."""
    fix = "pass source= the dataset that was pruned"
    if expected.get("train_indices"):
        raise ValueError(
            "the probe carved its training rows out of the source split: pass "
            "source= the probe's training rows"
        )
    if not expected.get("name"):
        raise ValueError(
            f"the card of {name} names no reloadable source dataset (it was pruned from an "
            f"in-memory dataset): {fix}"
        )
    from .data.sources import first_rows, load_source, select_split

    try:
        data = load_source(expected["name"], expected.get("config"))
    except (ValueError, FileNotFoundError) as error:
        raise ValueError(f"could not reload the source of {name}: {error}; {fix}") from error
    split = expected.get("split") or "train"
    try:
        rows = select_split(data, split, f"the source of {name}, {expected['name']}: split")
    except ValueError as error:
        raise ValueError(f"{error}: {fix}") from error
    return first_rows(rows, expected.get("max_train_samples"), "max_train_samples")


def push(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    commit_message: str = "Upload pruned dataset (hf-drop)",
) -> str:
    """Upload an exported folder to a Hub dataset repository; returns the repository URL.

    Offline or without a token this fails with a clear message; the folder stays on disk.
    """
    from huggingface_hub import HfApi, get_token

    folder = Path(folder)
    if not (folder / CARD_FILE).exists():
        raise FileNotFoundError(f"{folder} is not an exported folder (no {CARD_FILE})")
    if exported(folder) is None:  # never publish a folder of someone's own files
        raise ValueError(
            f"{folder} is not an hf-drop export (no hf-drop marker or drop card): export a subset "
            "with hf_drop.hub.export / hf-drop push, or upload it with huggingface_hub yourself"
        )
    token = token or get_token()
    retry = (
        f"the export is complete in {folder}; push it later with "
        f"`hf-drop push {shlex.quote(str(folder))} --repo-id {repo_id}"
        f"{' --private' if private else ''}`"
    )
    if token is None:
        raise RuntimeError(
            f"no Hugging Face token: log in with `hf auth login` or set HF_TOKEN; {retry}"
        )
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        commit = api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            repo_type="dataset",
            commit_message=commit_message,
            ignore_patterns=[OUTPUT_MARKER],  # hf-drop's local bookkeeping, not the dataset's
        )
    except Exception as error:  # offline, refused, ...: say so, keep the folder
        raise RuntimeError(f"could not upload to {repo_id}: {error}; {retry}") from error
    return str(getattr(commit, "repo_url", f"https://huggingface.co/datasets/{repo_id}"))


def export_saved(
    folder: str | os.PathLike,
    out: str | os.PathLike,
    *,
    mode: Literal["full", "indices"] = "full",
    license: str | None = None,
    tags: list[str] | None = None,
    pretty_name: str | None = None,
    overwrite: bool = False,
) -> Path:
    """:func:`export` of a subset saved by ``save_subset`` / ``hf-drop prune``; ``out`` may not
    overlap ``folder``, and replaces a previous export only with ``overwrite=True``. ``license``,
    ``tags`` and ``pretty_name`` go to the card as in :func:`export`."""
    folder = Path(folder)
    if not (folder / PRUNING_FILE).exists():
        raise FileNotFoundError(f"{folder} holds no {PRUNING_FILE}: save it with hf-drop prune")
    fix = f"run hf-drop prune again to write {folder}"
    provenance = read_provenance(folder / PRUNING_FILE, fix)
    indices = None
    if (folder / IDS_FILE).exists() and not (folder / INDICES_FILE).exists():
        if mode == "indices":  # a stream's subset: ids, no positions
            raise ValueError(
                f"{folder} is the subset of a filter fitted on a stream: it records kept ids, "
                "not source positions, so it cannot be published as indices; export mode='full'"
            )
    else:
        table = read_parquet(folder / INDICES_FILE, "the kept source rows", fix)
        indices = table["index"].to_numpy()
    subset = load_saved(folder, "a subset saved by hf-drop prune", fix)
    return export(
        subset,
        out,
        provenance,
        kept_indices=indices,
        mode=mode,
        license=license,
        tags=tags,
        pretty_name=pretty_name,
        overwrite=overwrite,
        inputs=[folder],
    )


def read_provenance(
    path: str | os.PathLike, fix: str = "save the subset again with hf-drop prune"
) -> dict[str, Any]:
    """A subset's ``pruning.json``, checked field by field (:func:`hf_drop.pruning.record.read_record`)."""
    return read_pruning_record(path, fix)


def exported(folder: str | os.PathLike) -> str | None:
    """``"export"`` or ``"scores-export"`` if ``folder`` is a folder that :func:`export` or
    :func:`export_scores` wrote (its marker, or for older exports its card's ``drop`` or
    ``drop_probe`` block), ready for :func:`push` as it is; otherwise ``None``."""
    folder = Path(folder)
    kind = output_kind(folder)
    if kind in ("export", "scores-export"):
        return kind
    if kind is not None or not (folder / CARD_FILE).is_file():
        return None
    from huggingface_hub import DatasetCard

    try:
        data = DatasetCard.load(folder / CARD_FILE).data.to_dict()
    except Exception:  # not a card with YAML metadata: not ours
        return None
    if data.get("drop"):
        return "export"
    return "scores-export" if data.get("drop_probe") else None


# --- the pieces --------------------------------------------------------------------------------


class _Shards(NamedTuple):
    """What :func:`_write_shards` wrote: the shard paths, and their sizes as push_to_hub records
    them in ``dataset_info``."""

    files: list[str]
    num_bytes: int  # the split's size in Arrow (uncompressed), external files embedded
    download_size: int  # the parquet files' bytes


def _write_shards(table: datasets.Dataset, folder: Path) -> _Shards:
    """Parquet shards named as push_to_hub names them plus a digest of their bytes
    (``data/train-00000-of-00001-<xxh64>.parquet``), external files embedded.

    The digest is for ``datasets``: it caches a folder whose card lists ``configs`` by the
    folder's name and those file names, not by the files' content, so two exports of the same
    name (or one export rewritten) would otherwise load the rows cached first.
    """
    from datasets.table import embed_table_storage

    (folder / "data").mkdir()
    size = table.data.nbytes * len(table) / max(len(table.data), 1)
    num_shards = max(1, math.ceil(size / _MAX_SHARD_BYTES))
    names = []
    num_bytes = download_size = 0
    for index in range(num_shards):
        shard = table.shard(num_shards=num_shards, index=index, contiguous=True)
        shard = (
            shard.with_format("arrow")
            .map(embed_table_storage, batched=True, keep_in_memory=True)
            .with_format(None)
        )
        written = folder / "data" / f"{SPLIT}-{index:05d}-of-{num_shards:05d}.parquet"
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
    return _Shards(names, num_bytes, download_size)


def _dataset_yaml(table: datasets.Dataset, data: Any, shards: _Shards) -> None:
    """``dataset_info`` (sizes included) and ``configs`` YAML, as push_to_hub writes them, the
    ``configs`` listing the shard files by name (see :func:`_write_shards` for why), and the
    Hub's ``size_categories`` bucket of the row count."""
    from datasets.info import DatasetInfosDict
    from datasets.splits import SplitDict, SplitInfo
    from datasets.utils.metadata import MetadataConfigs

    info = datasets.DatasetInfo(
        features=table.features,
        license=table.info.license or None,
        download_size=shards.download_size,
        dataset_size=shards.num_bytes,  # the sum over splits; there is one
    )
    info.config_name = "default"
    info.splits = SplitDict(
        {SPLIT: SplitInfo(SPLIT, num_bytes=shards.num_bytes, num_examples=len(table))}
    )
    DatasetInfosDict({"default": info}).to_dataset_card_data(data)
    MetadataConfigs(
        {"default": {"data_files": [{"split": SPLIT, "path": shards.files}]}}
    ).to_dataset_card_data(data)
    data.size_categories = [_size_category(len(table))]


# The Hub's size_categories buckets (datasets/utils/resources/size_categories.json), by the
# number of rows below which each applies.
_SIZE_CATEGORIES = (
    (10**3, "n<1K"), (10**4, "1K<n<10K"), (10**5, "10K<n<100K"), (10**6, "100K<n<1M"),
    (10**7, "1M<n<10M"), (10**8, "10M<n<100M"), (10**9, "100M<n<1B"), (10**10, "1B<n<10B"),
    (10**11, "10B<n<100B"), (10**12, "100B<n<1T"),
)  # fmt: skip


def _size_category(num_rows: int) -> str:
    """The Hub's ``size_categories`` bucket of a dataset of ``num_rows`` rows: ``"n<1K"`` below
    1,000, ``"1K<n<10K"`` from 1,000 to 9,999, ..., ``"n>1T"`` from 10**12."""
    return next((name for bound, name in _SIZE_CATEGORIES if num_rows < bound), "n>1T")


def _check_provenance(provenance: Any) -> None:
    """Refuse a provenance record that lacks what the card needs (the fields a pruning.json
    must have, :data:`hf_drop.pruning.record.FIELDS`), naming the missing keys."""
    fix = "pass DRoPFilter.provenance() or a saved subset's pruning.json"
    if not isinstance(provenance, dict):
        raise ValueError(f"provenance must be a dict, got {type(provenance).__name__}: {fix}")
    missing = []
    for name in _PROVENANCE_FIELDS:
        value: Any = provenance
        for key in name.split("."):
            value = value.get(key, _ABSENT) if isinstance(value, dict) else _ABSENT
        if value is _ABSENT and not any(name.startswith(f"{m}.") for m in missing):
            missing.append(name)
    if not isinstance(provenance.get("source", {}), dict):
        missing.append("source (a dict)")
    if missing:
        raise ValueError(f"provenance lacks {missing}: {fix}")


_ABSENT = object()


def _drop_block(provenance: dict[str, Any], mode: str) -> dict[str, Any]:
    """The card's ``drop`` metadata: everything needed to reproduce or verify the subset."""
    params = provenance["params"]
    source = provenance["source"]
    probe = source.get("probe") or {}
    return {
        "export": mode,
        "method": provenance["method"],
        "density": params["density"],
        "seed": params["seed"],
        "mode": params["mode"],
        "quota": params["quota"],
        "within": _score_name(params),
        "min_per_class": params["min_per_class"],
        "classes": provenance["classes"],
        "class_sizes": provenance["class_sizes"],
        "quotas": provenance["quotas"],
        "class_errors": provenance["class_errors"],
        "num_kept": provenance["num_kept"],
        "probe": {
            "model": probe.get("model"),
            "config": probe.get("config"),
            "command": probe.get("command"),
        }
        if probe
        else None,
        "source": {
            "name": source.get("name"),
            "config": source.get("config"),
            "split": source.get("split") or "train",
            "max_train_samples": source.get("max_train_samples"),
            "train_indices": source.get("train_indices"),
            "revision": source.get("revision"),
            "fingerprint": source.get("fingerprint"),
            "num_rows": source.get("num_rows"),
            "label_column": source.get("label_column"),
            "label_hash": source.get("label_hash"),
            "content": source.get("content"),
        },
        "versions": provenance["versions"],
        "reproduce": reproduce_commands(provenance),
    }


def _score_name(params: dict[str, Any]) -> str:
    """What chose samples inside classes: "random", a column name, or a named score array."""
    within = params["within"]
    if isinstance(within, str) and within == "random":
        return "random"
    if isinstance(within, str) and not within.startswith("<array"):
        return within
    return params.get("score_name") or "scores"


def _card(table, drop, provenance, license, tags, pretty_name, shards, plotted):
    from huggingface_hub import DatasetCard, DatasetCardData

    # A table with images (and, as every subset has, a class label) serves image
    # classification. An indices-only export holds row numbers, not images: the Hub's
    # task filter would list a table that cannot be trained on as it is, so it names no task.
    images = any(isinstance(f, datasets.Image) for f in table.features.values())
    data = DatasetCardData(
        license=license,
        pretty_name=pretty_name,
        task_categories=["image-classification"] if images else None,
        tags=list(dict.fromkeys(["hf-drop", "data-pruning", "drop", *(tags or [])])),
        drop=drop,
    )
    _dataset_yaml(table, data, shards)
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{_body(drop, provenance, plotted)}")


def _body(drop: dict[str, Any], provenance: dict[str, Any], plotted: bool) -> str:
    source = drop["source"]["name"] or "the source dataset"
    what = (
        "the kept row indices of the source (and their labels), not its images: rebuild the "
        "subset with `hf_drop.hub.load_pruned(...)`, which checks that the source matches"
        if drop["export"] == "indices"
        else "the kept rows themselves, images included"
    )
    quota = quota_rule(drop["quota"])
    rule = (
        "DRoP (Vysogorets, Ahuja & Kempe, *Distributionally Robust Data Pruning*, ICLR 2025), "
        f"as `quota={quota.name!r}` ({quota.help}): the fraction of a class that is kept grows "
        "with a probe model's validation error on that class, so that the model trained on the "
        "subset does better on its worst class"
        if quota.needs_errors
        else f"the `{quota.name}` class-count rule ({quota.help})"
    )
    how = "at random" if drop["within"] == "random" else f"by the score `{drop['within']}`"
    probe = drop["probe"] or {}
    probe_line = (
        f"Class errors and scores came from a `{probe['model']['name']}` probe "
        f"({_plural(probe['config']['epochs'], 'epoch')}, "
        f"{_plural(probe['config']['num_inits'], 'initialisation')})."
        if probe
        else "Class errors were given by hand (no probe)."
        if quota.needs_errors
        else ""
    )
    reproduce = "\n".join(drop["reproduce"])
    plot = f"![kept fraction per class against class error]({PLOT_FILE})\n\n" if plotted else ""
    return (
        f"# {drop['method']} subset of {source} at density {drop['density']}\n\n"
        f"This dataset keeps {drop['num_kept']} of the {drop['source']['num_rows']} rows of "
        f"{source}, chosen by {rule}. Inside each class, samples were kept "
        f"{how} "
        f"(seed {drop['seed']}). {probe_line} It holds {what}. The card's `drop` metadata "
        "records every number below, the source's fingerprint and label hash, and the library "
        "versions.\n\n"
        f"## Kept per class\n\n{_class_table(drop['classes'], drop['class_errors'], drop)}\n\n"
        f"{plot}"
        f"## Reproduce\n\nIn an empty folder:\n\n```bash\n{reproduce}\n```\n"
    )


def _class_table(names, errors, drop: dict[str, Any] | None = None) -> str:
    """A markdown table of the classes: error, and with ``drop`` size, kept, kept fraction."""

    def number(value) -> str:
        return (
            "-"
            if value is None or (isinstance(value, float) and np.isnan(value))
            else (f"{value:.3f}" if isinstance(value, float) else str(value))
        )

    header = ["class", "error"] + (["size", "kept", "kept fraction"] if drop else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for k, name in enumerate(names):
        row = [str(name), number(errors[k])]
        if drop:
            size, kept = drop["class_sizes"][k], drop["quotas"][k]
            row += [str(size), str(kept), number(kept / size if size else None)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def reproduce_commands(provenance: dict[str, Any]) -> list[str]:
    """The ``hf-drop`` commands that make this subset again, run in an empty folder (built by
    the command line, :func:`hf_drop.cli.reproduce.reproduce_commands`)."""
    from .cli.reproduce import reproduce_commands as commands

    return commands(provenance)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _plot(provenance: dict[str, Any], path: Path) -> bool:
    """Draw the card's picture of the kept fraction per class; without matplotlib (the extra
    ``plots``) the card goes without it, and says nothing of it (False)."""
    if importlib.util.find_spec("matplotlib") is None:
        get_logger(__name__).info(
            "the dataset card has no plot of the kept fraction per class: "
            "pip install 'hf-drop[plots]' to draw one"
        )
        return False
    from .evaluation.plots import plot_kept_fraction

    sizes = np.array(provenance["class_sizes"], dtype=float)
    report = pd.DataFrame(
        {
            "name": provenance["classes"],
            "kept_fraction": np.divide(
                provenance["quotas"], sizes, out=np.full(len(sizes), np.nan), where=sizes > 0
            ),
            "error": [np.nan if e is None else e for e in provenance["class_errors"]],
        }
    )
    plot_kept_fraction(report, path, title=f"{provenance['method']}: kept fraction per class")
    return True
