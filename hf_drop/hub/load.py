"""Reading an export back: :func:`load_pruned` (a full export as it is; an indices-only export
rebuilt from its source, which is checked first)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from ..data.columns import check_identity, read_labels
from .card import CARD_FILE
from .layout import SPLIT

__all__ = ["load_pruned"]


def load_pruned(
    folder_or_repo_id: str | os.PathLike,
    source: datasets.Dataset | None = None,
    *,
    revision: str | None = None,
) -> datasets.Dataset:
    """The pruned subset an :func:`export` describes, from a local folder or a Hub repository:
    its pruned split (an export of a ``DatasetDict`` also holds untouched splits, which
    ``load_dataset(folder)`` gives).

    A full export is read as it is. An indices-only export selects its rows from ``source`` (by
    default the source dataset its card names, loaded again), and refuses a source whose row
    count, label hash or fingerprint differs from the one that was pruned.
    """
    from huggingface_hub import DatasetCard

    from ..data.sources import load_folder

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
            split = _pruned_split_name(card, name)
            table = load_folder(local, split=split)  # never another folder's cached rows
        else:
            card = DatasetCard.load(name, repo_type="dataset")
            split = _pruned_split_name(card, name)
            table = datasets.load_dataset(name, split=split, revision=revision)
    except (FileNotFoundError, _NotAnExport):
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


class _NotAnExport(ValueError):
    """A card that is not an hf-drop export's: said as it is, not as a read failure."""


def _pruned_split_name(card: Any, name: str) -> str:
    """The split that holds the pruned rows: the card's ``drop.split`` (``train`` in cards from
    before exports of several splits)."""
    drop = card.data.to_dict().get("drop")
    split = drop.get("split", SPLIT) if isinstance(drop, dict) else SPLIT
    if not isinstance(split, str) or not split:
        raise _NotAnExport(
            f"the card of {name} has 'split': {split!r} in its 'drop' block, not a split name: "
            "the card is damaged or was edited; export the subset again"
        )
    return split


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
    from ..data.sources import load_source, sample_rows, select_split

    try:
        data = load_source(expected["name"], expected.get("config"))
    except (ValueError, FileNotFoundError) as error:
        raise ValueError(f"could not reload the source of {name}: {error}; {fix}") from error
    split = expected.get("split") or "train"
    try:
        rows = select_split(data, split, f"the source of {name}, {expected['name']}: split")
    except ValueError as error:
        raise ValueError(f"{error}: {fix}") from error
    # As the probe sampled them: by class with its seed, or (older cards) its first rows.
    try:
        return sample_rows(
            rows, expected.get("max_train_samples"), expected.get("sampling"), "max_train_samples"
        )
    except ValueError as error:
        raise ValueError(f"the source of {name}: {error}; {fix}") from error
