"""The probe's result: a directory that says what each sample and class looked like to the probe.

Layout::

    scores/              datasets.Dataset (save_to_disk): index, label, one column per score
    class_metrics.json   per class: name, support, recall by epoch and initialisation, error used
    probe_config.json    the ProbeConfig, processes, library versions, the machine, the source's
                         fingerprint, row count and label hash (written last: it marks the
                         result complete)
    splits.json          validation (and reported) row indices, when carved from another split
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from numpy.typing import NDArray

from ..columns import check_same_rows, column_to_numpy, read_labels

__all__ = ["SCORE_DIRECTIONS", "ProbeResult"]

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
        return cls(folder)

    @cached_property
    def record(self) -> dict[str, Any]:
        """Everything ``probe_config.json`` holds: config, source, processes, versions."""
        return json.loads((self.folder / CONFIG_FILE).read_text())

    @cached_property
    def class_metrics(self) -> dict[str, Any]:
        return json.loads((self.folder / METRICS_FILE).read_text())

    @cached_property
    def scores(self) -> datasets.Dataset:
        """One row per training sample, in row order: index, label and the score columns."""
        return datasets.load_from_disk(str(self.folder / SCORES_DIR))

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
    def score_names(self) -> list[str]:
        return [c for c in self.scores.column_names if c in SCORE_DIRECTIONS]

    @property
    def _score_columns(self) -> list[str]:
        """Every per-sample column: the scores, and the embeddings if recorded."""
        return [c for c in self.scores.column_names if c not in ("index", "label")]

    def score(self, name: str) -> NDArray:
        """A score column as numpy, in row order (embeddings as a 2-D float16 array)."""
        if name not in self._score_columns:
            raise ValueError(f"no score {name!r} in {self.folder}; it has {self.score_names}")
        return column_to_numpy(self.scores, name)

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
    ) -> datasets.Dataset:
        """``dataset`` with the probe's per-sample scores as ordinary columns.

        The scores then travel with the rows (``select``, ``save_to_disk``, ``push_to_hub``) and
        ``DRoPFilter`` reads them by name: ``DRoPFilter(d, class_errors=result.class_errors,
        within="el2n")``. Columns hold the scores as stored (AUM and margin: higher is easier, so
        select those with ``keep="easy"``); ``names`` picks some (default: every score, and the
        embeddings if recorded); ``prefix`` renames them (``"probe_"`` gives ``probe_el2n``).
        ``dataset`` must be the probe's training set (same rows and labels); it is not modified.
        A dataset that is itself a selection (an indices mapping) is flattened first, as
        ``Dataset.add_column`` does, which copies its rows once.
        """
        available = self._score_columns
        names = available if names is None else list(names)
        unknown = [n for n in names if n not in available]
        if unknown:
            raise ValueError(f"names: no score {unknown} in {self.folder}; it has {available}")
        check_same_rows(
            dataset,
            read_labels(dataset, self.source["label_column"]),
            self.source["num_rows"],
            self.source["label_hash"],
            seen=f"the probe in {self.folder} saw",
            fix="pass the dataset the probe saw",
        )
        clashes = [prefix + n for n in names if prefix + n in dataset.column_names]
        if clashes:
            raise ValueError(
                f"dataset already has columns {clashes}: pass another prefix, or remove them"
            )
        columns = self.scores.select_columns(names)
        if prefix:
            columns = columns.rename_columns({n: prefix + n for n in names})
        return datasets.concatenate_datasets([dataset, columns], axis=1)

    def splits(self) -> dict[str, list[int]]:
        path = self.folder / SPLITS_FILE
        return json.loads(path.read_text()) if path.exists() else {}
