"""Writing and uploading: :func:`export` (a subset and its card, atomically, in the layout
``push_to_hub`` uploads), :func:`export_saved`, :func:`export_scores`, :func:`push`."""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import datasets
import numpy as np

from ..data.columns import content_digest, read_labels
from ..io.files import load_saved, read_parquet
from ..io.outputs import OUTPUT_MARKER, atomic_output, dataset_folders, output_kind
from ..pruning.artifacts import (
    IDS_FILE,
    INDICES_FILE,
    PRUNING_FILE,
    checked_subset,
    materialize,
    pruned_split,
    split_record,
)
from ..pruning.filter import DRoPFilter
from ..pruning.record import read_record as read_pruning_record
from ..pruning.rows import check_kept
from .card import (
    CARD_FILE,
    PLOT_FILE,
    check_provenance,
    class_table,
    dataset_card,
    drop_block,
    plot_kept_fraction_png,
)
from .layout import SPLIT, dataset_yaml, write_shards

__all__ = [
    "export",
    "export_saved",
    "export_scores",
    "exported",
    "push",
    "read_provenance",
]


def export(
    subset: datasets.Dataset | datasets.DatasetDict | datasets.IterableDataset,
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
    ``mode="indices"``, which publishes those indices (and labels) instead of the images.

    A ``DatasetDict`` (``drop.apply(splits)``) is published with every split: the one whose
    rows are the kept rows (found by identity, not by name or count) under its own name, the
    others as they are, and the card says which is which. ``mode="indices"`` publishes one
    split only. The folder appears only once complete. It must be new, empty, or a previous
    export with ``overwrite=True``, and may not overlap ``inputs`` nor the subset's own Arrow
    files (see :mod:`hf_drop.io.outputs`).
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
    if isinstance(subset, datasets.IterableDatasetDict):
        raise ValueError(
            "subset is an IterableDatasetDict: export the pruned stream (drop.apply(stream)) "
            "alone, or a DatasetDict of splits in memory"
        )
    split, others, order = SPLIT, {}, [SPLIT]
    if isinstance(subset, datasets.DatasetDict):
        order = list(subset)  # published in the DatasetDict's order
        split, subset, others = _split_pruned(subset, provenance, mode)
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
        check_provenance(provenance)
        if provenance.get("kept"):  # a record since format 1 identifies its kept rows
            check_kept(provenance["kept"], subset, kept_indices, "the provenance record")
    if not isinstance(subset, datasets.Dataset):
        raise TypeError(
            f"subset must be a datasets.Dataset or DatasetDict, got {type(subset).__name__}"
        )
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
    splits = {name: table if name == split else others[name] for name in order}
    drop = drop_block(provenance, mode, split, _described(splits, split, provenance))
    inputs = [*inputs, *dataset_folders(subset, *others.values())]
    with atomic_output(folder, "export", overwrite=overwrite, inputs=inputs) as tmp:
        shards = {name: (part, write_shards(part, tmp, name)) for name, part in splits.items()}
        plotted = plot_kept_fraction_png(provenance, tmp / PLOT_FILE)
        card = dataset_card(
            shards,
            drop,
            provenance,
            license or subset.info.license or None,
            tags,
            pretty_name,
            plotted,
        )
        card.save(str(tmp / CARD_FILE))
    return Path(folder)


def _described(
    splits: dict[str, datasets.Dataset], pruned: str, provenance: dict[str, Any]
) -> dict[str, Any]:
    """The card's record of the splits: a split that a saved subset's record identifies (same
    rows and content) keeps the fingerprint recorded when it was saved, the source's own, not
    that of the copy read back from disk."""
    described = split_record(datasets.DatasetDict(splits), pruned)
    recorded = (provenance.get("splits") or {}).get("others") or {}
    for name, seen in described["others"].items():
        known = recorded.get(name) or {}
        if (known.get("num_rows"), known.get("content")) == (seen["num_rows"], seen["content"]):
            seen["fingerprint"] = known.get("fingerprint", seen["fingerprint"])
    return described


def _split_pruned(
    splits: datasets.DatasetDict, provenance: dict[str, Any] | DRoPFilter, mode: str
) -> tuple[str, datasets.Dataset, dict[str, datasets.Dataset]]:
    """The pruned split's name and rows, and the other splits (published as they are)."""
    if isinstance(provenance, DRoPFilter):
        drop = provenance
        name = pruned_split(splits, lambda split: checked_subset(split, drop), "the filter")
    else:
        check_provenance(provenance)
        kept = provenance.get("kept")
        if not kept:
            raise ValueError(
                "the provenance record has no 'kept' block (it was written before format 1), "
                "so nothing tells which split of the DatasetDict is the pruned one: export that "
                "split alone, or pass the DRoPFilter"
            )
        name = pruned_split(
            splits, lambda split: check_kept(kept, split, None, "the provenance record"),
            "the provenance record",
        )  # fmt: skip
    others = {n: split for n, split in splits.items() if n != name}
    if mode == "indices" and others:
        raise ValueError(
            f"mode='indices' publishes the kept rows of one split as source indices, and the "
            f"DatasetDict has other splits ({list(others)}) that have none: export mode='full', "
            f"or the pruned split {name!r} alone"
        )
    return name, splits[name], others


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

    from ..probe import ProbeResult

    if not isinstance(result, ProbeResult):
        result = ProbeResult.load(result)
    scores = result.scores
    record = result.record
    inputs = [result.folder, *dataset_folders(scores)]
    with atomic_output(folder, "scores-export", overwrite=overwrite, inputs=inputs) as tmp:
        shards = write_shards(scores, tmp)
        # No task_categories: the table holds scores about another dataset's samples, not data
        # to learn a task from; "tabular-classification" would list it beside datasets that are
        # (in the Hub's task filter), and the source's own card says what task it serves.
        data = DatasetCardData(
            license=license,
            pretty_name=pretty_name,
            tags=list(dict.fromkeys(["hf-drop", "data-pruning", "probe-scores", *(tags or [])])),
            drop_probe={
                # Published: without the absolute path a probe keeps of a local dataset.
                "source": {k: v for k, v in record["source"].items() if k != "path"},
                "model": record["model"],
                "config": record["config"],
                "versions": record["versions"],
                "machine": record.get("machine"),  # absent from results older than the field
                "class_errors": [None if np.isnan(e) else float(e) for e in result.class_errors],
                "class_names": result.class_names,
            },
        )
        dataset_yaml(scores, data, shards)
        name = record["source"].get("name") or "a dataset"
        body = (
            f"# Probe scores for {name}\n\n{_scores_text(result, len(scores))}\n\n```python\n"
            f"{_scores_usage(result)}```\n\n## Class errors used by DRoP\n\n"
            f"{class_table(result.class_names, list(result.class_errors))}\n"
        )
        DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{body}").save(str(tmp / CARD_FILE))
    return Path(folder)


def _scores_text(result: Any, rows: int) -> str:
    """What a score table holds: every training row, or (``data_fraction`` < 1) the rows of the
    probe's sample only, whose scores cannot rank the whole set."""
    record = result.record
    scores = ", ".join(f"`{n}`" for n in result.score_names)
    if result.data_fraction < 1:
        return (
            f"The probe trained on a stratified sample of the training set: {rows} of its "
            f"{result.source['num_rows']} rows (`data_fraction` {result.data_fraction:g}). One "
            f"row per sampled row: `index` (its row in the source), `label`, and the scores "
            f"{scores}, recorded by hf-drop from one probe run of `{record['model']['name']}`. "
            "The scores do not cover the whole set, so they cannot rank it; the class errors "
            "below were measured on the whole validation split, and set DRoP's quotas of the "
            "whole set, at random within each class:"
        )
    return (
        f"One row per training sample ({rows} rows): `index` (its row in the source), "
        f"`label`, and the scores {scores}, recorded by hf-drop from one probe run of "
        f"`{record['model']['name']}` ({record['config']['epochs']} epochs x "
        f"{record['config']['num_inits']} initialisations). The card's `drop_probe` metadata "
        "holds the probe's configuration, the source's fingerprint and label hash, and the class "
        "errors below.\n\nPrune the source with them, without running the probe again:"
    )


def _scores_usage(result: Any) -> str:
    """The card's code: by the class errors and a score, or (a sample's scores) by the class
    errors alone."""
    errors = "errors = ...  # drop_probe.class_errors from this card\n"
    if result.data_fraction < 1:
        return (
            f"from hf_drop import DRoPFilter\n\n{errors}"
            "drop = DRoPFilter(0.5, class_errors=errors).fit(source)\n"
        )
    return (
        "from datasets import load_dataset\nfrom hf_drop import DRoPFilter\n\n"
        f"scores = load_dataset(REPO_ID, split='train')\n{errors}"
        "drop = DRoPFilter(0.5, class_errors=errors, within=scores['el2n'][:]).fit(source)\n"
    )


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
    path = shlex.quote(str(folder))
    retry = (
        f"the export is complete in {folder}; push it later with "
        f"`hf-drop push {path} --repo-id {repo_id}{' --private' if private else ''}` (or "
        f"`hf upload {repo_id} {path} --repo-type dataset --exclude {OUTPUT_MARKER}"
        f"{' --private' if private else ''}`)"
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
    if isinstance(subset, datasets.DatasetDict):
        _check_untouched(subset, provenance, folder, mode, fix)
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


def _check_untouched(
    splits: datasets.DatasetDict, provenance: dict[str, Any], folder: Path, mode: str, fix: str
) -> None:
    """The other splits of a saved DatasetDict subset are those its record identifies."""
    recorded = (provenance.get("splits") or {}).get("others") or {}
    others = [name for name in splits if name != (provenance.get("splits") or {}).get("pruned")]
    if mode == "indices" and len(splits) > 1:
        raise ValueError(
            f"{folder} holds the source's other splits ({others}) beside the pruned one: they "
            "have no indices form; export it in full (without --indices-only / mode='indices')"
        )
    for name in others:
        seen = recorded.get(name)
        if seen is None:
            raise ValueError(
                f"split {name!r} of {folder} is not one that hf-drop prune saved beside the "
                f"pruned split (its pruning.json lists {sorted(recorded)}): {fix}"
            )
        split = splits[name]
        if len(split) != seen.get("num_rows") or content_digest(split) != seen.get("content"):
            raise ValueError(
                f"split {name!r} of {folder} is not the split that was saved untouched beside "
                f"the pruned one ({len(split)} rows; the record says {seen.get('num_rows')}, "
                f"with another content digest): {fix}"
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
