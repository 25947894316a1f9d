"""The probe's result: a directory that says what each sample and class looked like to the probe.

Layout::

    scores/              datasets.Dataset (save_to_disk): index, label, one column per score
    class_metrics.json   per class: name, support, recall by epoch and initialisation, error used,
                         and the validation mistakes behind it (by initialisation and summed)
    probe_config.json    the ProbeConfig, processes, library versions, the machine, the source's
                         fingerprint, row count and label hash (written last: it marks the
                         result complete)
    splits.json          the validation split and how it was chosen, the split left for reporting,
                         and row indices where carved from another split
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pandas as pd
import pyarrow as pa
from datasets.table import InMemoryTable
from numpy.typing import NDArray

from ..core.uncertainty import ClassErrors
from ..data.columns import check_identity, column_to_numpy
from ..io.files import check_fields, load_saved, read_json, read_record
from ..io.outputs import atomic_output, claim

__all__ = ["SCORE_DIRECTIONS", "ProbeRecord", "ProbeResult", "write_result"]

# Whether a higher value of each score means a harder ("hard") or an easier ("easy") sample.
SCORE_DIRECTIONS = {
    "loss": "hard",
    "el2n": "hard",
    "grand": "hard",
    "grand_full": "hard",
    "forgetting": "hard",
    "aum": "easy",
    "dynamic_uncertainty": "hard",
    "margin": "easy",
    "entropy": "hard",
}

CONFIG_FILE = "probe_config.json"
METRICS_FILE = "class_metrics.json"
SPLITS_FILE = "splits.json"
SCORES_DIR = "scores"

PROBE_RECORD_VERSION = 1  # probe_config.json; 0: written before it had a format_version

# What the readers of a probe result need (the filter, add_scores, the Hub card), by file.
_RECORD_FIELDS = {
    "config": dict,
    "config.model": str,
    "model": dict,
    "model.name": str,
    "source": dict,
    "source.num_rows": int,
    "source.label_column": str,
    "versions": dict,
}
_CLASS_FIELDS = {
    "name": str,
    "error": (float, None),
    "support": int,
    "train_size": int,
    "recall_by_epoch": list,
}


@dataclass(frozen=True)
class ProbeRecord:
    """What ``probe_config.json`` says: the probe's settings, its model, the data it saw (with
    that data's identity) and the library versions; ``data`` is the whole record as written."""

    config: dict[str, Any]
    model: dict[str, Any]
    source: dict[str, Any]
    versions: dict[str, Any]
    format_version: int
    data: dict[str, Any]

    @classmethod
    def read(cls, path: str | os.PathLike, fix: str = "run the probe again") -> ProbeRecord:
        """The record in ``path``, or a clear error naming the file and the missing or wrong
        field (a ``probe_config.json`` of another tool, cut short or edited)."""
        data = read_record(
            path, "the probe's configuration", fix, _RECORD_FIELDS, version=PROBE_RECORD_VERSION
        )
        return cls(
            data["config"],
            data["model"],
            data["source"],
            data["versions"],
            data.get("format_version", 0),
            data,
        )


@dataclass
class ProbeResult:
    """A finished probe run, read from its directory."""

    folder: Path

    @classmethod
    def load(cls, folder: str | os.PathLike) -> ProbeResult:
        """Read a probe result; a missing or half-written one is a clear error."""
        folder = Path(folder)
        if not (folder / CONFIG_FILE).exists():
            state = (
                "an unfinished probe run"
                if (folder / "checkpoints").exists()
                else "no probe result"
            )
            raise FileNotFoundError(f"{folder} holds {state} (no {CONFIG_FILE})")
        result = cls(folder)
        # Every file read now, so that a damaged result is refused before any long work.
        _ = result.record, result.class_metrics, result.scores, result.splits()
        return result

    @property
    def _fix(self) -> str:
        return f"delete {self.folder} and run the probe again"

    @cached_property
    def probe_record(self) -> ProbeRecord:
        """``probe_config.json``, read and checked."""
        return ProbeRecord.read(self.folder / CONFIG_FILE, self._fix)

    @property
    def record(self) -> dict[str, Any]:
        """Everything ``probe_config.json`` holds: config, source, processes, versions."""
        return self.probe_record.data

    @cached_property
    def class_metrics(self) -> dict[str, Any]:
        path = self.folder / METRICS_FILE
        metrics = read_record(path, "the probe's class metrics", self._fix, {"classes": list})
        for k, entry in enumerate(metrics["classes"]):
            check_fields(
                entry if isinstance(entry, dict) else {},
                _CLASS_FIELDS,
                path,
                "the probe's class metrics",
                self._fix,
                prefix=f"classes[{k}].",
            )
        return metrics

    @cached_property
    def scores(self) -> datasets.Dataset:
        """One row per training sample, in row order: index, label and the score columns."""
        return load_saved(self.folder / SCORES_DIR, "the probe's per-sample scores", self._fix)

    @property
    def source(self) -> dict[str, Any]:
        """The training dataset: name, split, fingerprint, num_rows, label_column, label_hash."""
        return self.record["source"]

    @property
    def class_names(self) -> list[str]:
        return [c["name"] for c in self.class_metrics["classes"]]

    @property
    def class_errors(self) -> NDArray[np.float64]:
        """Per-class validation error handed to DRoP (NaN for a class absent from validation)."""
        return np.array(
            [np.nan if c["error"] is None else c["error"] for c in self.class_metrics["classes"]]
        )

    @property
    def class_errors_with_support(self) -> ClassErrors:
        """The class errors with the counts they come from: per class, the validation
        ``support`` (images), the ``mistakes`` summed over the probe's initialisations, and
        ``num_inits``, so that ``errors = mistakes / (support * num_inits)``.

        A result written before mistakes were recorded (no ``"mistakes"`` in
        ``class_metrics.json``) has them reconstructed as ``round(error * support * num_inits)``:
        exact, since each recall it averages is hits / support.
        """
        classes = self.class_metrics["classes"]
        num_inits = len(classes[0]["recall_by_epoch"]) if classes else 1
        support = np.array([c["support"] for c in classes], dtype=np.int64)
        errors = self.class_errors
        recorded = [c.get("mistakes") for c in classes]
        if all(m is not None for m in recorded):
            mistakes = np.array(recorded, dtype=np.int64)
        else:
            mistakes = np.rint(np.nan_to_num(errors) * support * num_inits).astype(np.int64)
        return ClassErrors(
            self.class_names,
            errors,
            support,
            mistakes,
            train_sizes=np.array([c["train_size"] for c in classes], dtype=np.int64),
            num_inits=num_inits,
        )

    @property
    def group_errors_with_support(self) -> ClassErrors:
        """The validation errors per group of a probe run with ``group_column`` (names, errors,
        support, mistakes), for ``DRoPFilter(group_column=...)``."""
        groups = self.class_metrics.get("groups")
        if groups is None:
            raise ValueError(
                f"the probe in {self.folder} measured no group errors: run it with group_column= "
                "(hf-drop probe --group-column ...)"
            )
        errors = np.array([np.nan if e is None else e for e in groups["errors"]], dtype=float)
        return ClassErrors(
            list(groups["names"]),
            errors,
            np.array(groups["support"], dtype=np.int64),
            np.array(groups["mistakes"], dtype=np.int64),
            num_inits=groups["num_inits"],
        )

    @property
    def group_column(self) -> str | list[str] | None:
        """The probe's ``group_column`` (``None`` if it measured no group errors)."""
        return self.record["config"].get("group_column")

    def class_table(self, confidence: float = 0.95) -> pd.DataFrame:
        """One row per class, indexed by class id: name, train_size, support, mistakes (summed
        over initialisations), error, and its Wilson interval ``error_low``, ``error_high`` at
        ``confidence`` (see :meth:`hf_drop.core.uncertainty.ClassErrors.table`)."""
        return self.class_errors_with_support.table(confidence)

    @property
    def score_names(self) -> list[str]:
        return [c for c in self.scores.column_names if c in SCORE_DIRECTIONS]

    @property
    def _score_columns(self) -> list[str]:
        """Every per-sample column: the scores, and the embeddings if recorded."""
        return [c for c in self.scores.column_names if c not in ("index", "label")]

    @property
    def data_fraction(self) -> float:
        """The fraction of the training rows the probe trained on (``ProbeConfig``)."""
        return float(self.record["config"].get("data_fraction", 1.0))

    def _check_every_row(self, what: str) -> None:
        """A probe on a sample has scores for its rows only: none can rank the whole set."""
        if self.data_fraction < 1:
            n = self.record.get("trained_rows", "some")
            raise ValueError(
                f"{what}: the probe in {self.folder} trained on {n} of the "
                f"{self.source['num_rows']} training rows (data_fraction="
                f"{self.data_fraction:g}), so its per-sample scores cover those rows only and "
                "cannot rank the whole set. Its class errors are whole: prune at random within "
                "each class (within='random', no strategy_score), or probe with data_fraction=1"
            )

    def score(self, name: str) -> NDArray:
        """A score column as numpy, in the training set's row order (by the ``index`` column;
        embeddings as a 2-D float16 array)."""
        if name not in self._score_columns:
            raise ValueError(f"no score {name!r} in {self.folder}; it has {self.score_names}")
        self._check_every_row(f"score {name!r}")
        values = column_to_numpy(self.scores, name)
        return values if self._row_order is None else values[self._row_order]

    @cached_property
    def _row_order(self) -> NDArray[np.int64] | None:
        """Where row i of the training set sits in ``scores/`` (None: already in row order).

        Scores are keyed by the ``index`` column, which must name every training row once.
        """
        index = column_to_numpy(self.scores, "index").astype(np.int64)
        num_rows = self.source["num_rows"]
        if len(index) != num_rows or not np.array_equal(
            np.bincount(index[(index >= 0) & (index < num_rows)], minlength=num_rows),
            np.ones(num_rows, dtype=np.int64),
        ):
            raise ValueError(
                f"{self.folder / SCORES_DIR}: its 'index' column does not name each of the "
                f"{num_rows} training rows exactly once: the scores cannot be matched to rows; "
                "run the probe again"
            )
        if np.array_equal(index, np.arange(num_rows)):
            return None
        order = np.empty(num_rows, dtype=np.int64)
        order[index] = np.arange(num_rows)
        return order

    def difficulty(self, name: str) -> NDArray[np.float64]:
        """A score oriented so that higher means harder (AUM and margin are negated)."""
        values = self.score(name).astype(np.float64)
        return values if SCORE_DIRECTIONS.get(name, "hard") == "hard" else -values

    def add_scores(
        self,
        dataset: datasets.Dataset,
        names: Sequence[str] | None = None,
        *,
        prefix: str = "",
        id_column: str | None = "row_id",
    ) -> datasets.Dataset:
        """``dataset`` with the probe's per-sample scores as ordinary columns.

        The scores then travel with the rows (``select``, ``save_to_disk``, ``push_to_hub``) and
        ``DRoPFilter`` reads them by name: ``DRoPFilter(d, class_errors=result.class_errors,
        within="el2n")``. Columns hold the scores as stored (AUM and margin: higher is easier, so
        select those with ``keep="easy"``); ``names`` picks some (default: every score, and the
        embeddings if recorded); ``prefix`` renames them (``"probe_"`` gives ``probe_el2n``).
        ``id_column`` (default ``"row_id"``; ``None`` for none) adds each row's position in the
        probe's training set as a stable id, so that ``DRoPFilter(..., id_column="row_id")``
        follows the rows through later shuffles and filters.
        ``dataset`` must be the probe's training set (same rows, in the same order: checked by
        row count, label hash and a content digest); it is not modified.
        A dataset that is itself a selection (an indices mapping) is flattened first, as
        ``Dataset.add_column`` does, which copies its rows once.
        """
        self._check_every_row("add_scores")
        available = self._score_columns
        names = available if names is None else list(names)
        unknown = [n for n in names if n not in available]
        if unknown:
            raise ValueError(f"names: no score {unknown} in {self.folder}; it has {available}")
        check_identity(
            dataset,
            self.source,
            seen=f"the probe in {self.folder} saw",
            fix="pass the dataset the probe saw, in its order",
        )
        added = [prefix + n for n in names] + ([id_column] if id_column else [])
        clashes = [c for c in added if c in dataset.column_names]
        if clashes:
            raise ValueError(
                f"dataset already has columns {clashes}: pass another prefix (or id_column), "
                "or remove them"
            )
        columns = self.scores.select_columns(["index", *names])
        if self._row_order is not None:
            # In memory: a cache file written next to the scores would change the probe's folder.
            columns = columns.select(self._row_order, keep_in_memory=True)
        columns = columns.rename_columns({n: prefix + n for n in names})
        columns = (
            columns.rename_column("index", id_column)
            if id_column
            else columns.remove_columns("index")
        )
        if dataset._indices is not None:
            # Flattened by its own means (a cache file beside its own data, or in memory), not by
            # concatenate_datasets, which would write one into the probe's scores folder.
            dataset = dataset.flatten_indices()
        return datasets.concatenate_datasets([dataset, columns], axis=1)

    def splits(self) -> dict[str, Any]:
        path = self.folder / SPLITS_FILE
        return read_json(path, "the probe's split indices", self._fix) if path.exists() else {}


def write_result(
    out: Path,
    *,
    scores: Mapping[str, NDArray],
    labels: NDArray[np.int64],
    names: Sequence[str],
    history: list[list[dict[str, Any]]],
    class_errors_from: str,
    record: dict[str, Any],
    embeddings: NDArray | None = None,
    splits: dict[str, Any] | None = None,
    group_names: Sequence[str] | None = None,
    index: NDArray[np.int64] | None = None,
) -> list[str]:
    """Write a probe result into ``out``: scores, class metrics, splits, then ``probe_config.json``
    (``record``) last, whose presence marks a complete result. Returns the warnings recorded.

    ``scores`` holds one value per training row, in row order (already averaged over
    initialisations); ``labels`` the rows' class ids. ``history`` holds, per initialisation, one
    validation entry per epoch: ``accuracy``, per-class ``recall`` and ``support``, and
    ``train_loss``; with ``group_names``, also each group's ``group_support`` and
    ``group_hits``, from which the group errors are recorded. ``index``: each row's position
    in the training set, where the probe trained on a sample of it (default: row order). The
    one who calls this writes ``out`` (``run_probe``, ``ProbeCallback``): it is used by a single
    process.
    """
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_FILE).unlink(missing_ok=True)
    # Built as an Arrow table directly: embeddings go in as one flat float16 buffer.
    features = {"index": datasets.Value("int64"), "label": datasets.ClassLabel(names=list(names))}
    rows = np.arange(len(labels)) if index is None else np.asarray(index, dtype=np.int64)
    arrays = [pa.array(rows), pa.array(labels)]
    for name, values in scores.items():
        features[name] = datasets.Value("float32")
        arrays.append(pa.array(np.asarray(values).astype(np.float32)))
    if embeddings is not None:
        features["embedding"] = datasets.Sequence(
            datasets.Value("float16"), length=embeddings.shape[1]
        )
        arrays.append(
            pa.FixedSizeListArray.from_arrays(pa.array(embeddings.ravel()), embeddings.shape[1])
        )
    features = datasets.Features(features)
    table = pa.Table.from_arrays(arrays, schema=features.arrow_schema)
    dataset = datasets.Dataset(InMemoryTable(table), info=datasets.DatasetInfo(features=features))
    # Replaces only a score table of its own (an earlier, unfinished run of this probe folder).
    with atomic_output(out / SCORES_DIR, "probe-scores", overwrite=True) as tmp:
        dataset.save_to_disk(str(tmp))
    # Listed in the output's marker before they are written: `out` may be an output written in
    # place (run_probe), whose list only its writers keep.
    claim(out, SCORES_DIR, METRICS_FILE, CONFIG_FILE, *([SPLITS_FILE] if splits else []))

    # Class errors: 1 - recall at the final (or best) epoch, averaged over initialisations.
    # Mistakes at that epoch, per init: support - hits, exact since recall = hits / support
    # (the history keeps recall and support, not the predictions).
    recalls, accuracies, mistakes = [], [], []
    for epochs in history:
        chosen = epochs[-1]
        if class_errors_from == "best":
            chosen = max(epochs, key=lambda m: m["accuracy"])
        recalls.append(np.array(chosen["recall"], dtype=float))
        accuracies.append(chosen["accuracy"])
        n = np.array(chosen["support"], dtype=np.int64)
        mistakes.append(n - np.rint(np.nan_to_num(recalls[-1]) * n).astype(np.int64))
    mean_recall = np.mean(recalls, axis=0)
    support = np.array(history[0][-1]["support"])
    classes = [
        {
            "name": name,
            "train_size": int(np.sum(labels == k)),
            "support": int(support[k]),
            "recall_by_epoch": [[m["recall"][k] for m in epochs] for epochs in history],
            "recall": None if np.isnan(mean_recall[k]) else float(mean_recall[k]),
            "error": None if np.isnan(mean_recall[k]) else float(1.0 - mean_recall[k]),
            # error = mistakes / support_total (every init is judged on the same support).
            "mistakes_by_init": [int(m[k]) for m in mistakes],
            "mistakes": int(sum(m[k] for m in mistakes)),
            "support_total": int(support[k]) * len(history),
        }
        for k, name in enumerate(names)
    ]
    metrics = {
        "class_errors_from": class_errors_from,
        "classes": classes,
        "accuracy_by_epoch": [[m["accuracy"] for m in epochs] for epochs in history],
        "train_loss_by_epoch": [[m["train_loss"] for m in epochs] for epochs in history],
        "warnings": _sanity(float(np.mean(accuracies)), mean_recall, support, list(names)),
    }
    if group_names is not None:
        metrics["groups"] = _group_metrics(history, class_errors_from, list(group_names))
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=1) + "\n")
    if splits:
        (out / SPLITS_FILE).write_text(json.dumps(splits) + "\n")
    tmp = out / (CONFIG_FILE + ".partial")
    record = {"format_version": PROBE_RECORD_VERSION, **record}
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.rename(out / CONFIG_FILE)
    return metrics["warnings"]


def _group_metrics(
    history: list[list[dict[str, Any]]], class_errors_from: str, names: list[str]
) -> dict[str, Any]:
    """Group errors at the same epoch as the class errors: mistakes summed over
    initialisations, errors their mean (every init is judged on the same images)."""
    support = np.zeros(len(names), dtype=np.int64)
    mistakes = np.zeros(len(names), dtype=np.int64)
    for epochs in history:
        chosen = epochs[-1]
        if class_errors_from == "best":
            chosen = max(epochs, key=lambda m: m["accuracy"])
        support = np.array(chosen["group_support"], dtype=np.int64)
        mistakes += support - np.array(chosen["group_hits"], dtype=np.int64)
    total = support * len(history)
    errors = [None if n == 0 else float(m / n) for m, n in zip(mistakes, total, strict=True)]
    return {
        "names": names,
        "support": support.tolist(),
        "mistakes": mistakes.tolist(),
        "errors": errors,
        "num_inits": len(history),
    }


def _sanity(accuracy: float, recall: np.ndarray, support: np.ndarray, names: list) -> list[str]:
    """Why the class errors of a finished probe may be noise rather than difficulty."""
    alerts = []
    present = int(np.sum(support > 0))
    if present >= 2 and accuracy <= 1.5 / present:
        alerts.append(
            f"validation accuracy {accuracy:.3f} is near chance (1/{present} = {1 / present:.3f}): "
            "the probe barely learned, so its class errors say little about class difficulty; "
            "train longer, or check --lr and the data"
        )
    never = [
        f"{name} ({1 - r:.2f})"
        for name, r, s in zip(names, recall, support, strict=True)
        if s > 0 and not np.isnan(r) and 1 - r >= 0.95
    ]
    if never:
        alerts.append(
            f"class(es) {', '.join(never)} have a validation error >= 0.95: the probe (almost) "
            "never recognises them, and DRoP gives such classes the largest quotas; check that "
            "the probe trained long enough and that their labels are right"
        )
    return alerts
