"""A training run's record, ``metrics.json``, read back: :class:`TrainRecord`.

:func:`hf_drop.train.run.train_and_evaluate` writes the record; the report (and anything else that
compares runs) reads it here, once, checked: a ``metrics.json`` of another tool, cut short or
edited, is a clear error that names the file and the field, never a ``KeyError``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..io.files import read_record

__all__ = ["TRAIN_RECORD_VERSION", "TrainRecord"]

METRICS_FILE = "metrics.json"
TRAIN_RECORD_VERSION = 1  # 0: written before metrics.json had a format_version and a run_id

# What the report reads; the rest of the record (per class, the model, versions) is optional.
_FIELDS = {
    "accuracy": float,
    "worst_class_accuracy": float,
    "worst_class": (str, None),
    "class_accuracy_std": float,
    "train_rows": int,
    "epochs": float,
    "density": (float, None),
    "config": dict,
    "config.seed": int,
    "config.model": str,
    "provenance": (dict, None),
}

# Settings that do not change the trained model: the seeds (runs that differ only there are
# seeds of one experiment), and where and how a run logs, saves and reports. hf-drop's own
# names of TrainingArguments fields are left to the TrainingArguments, which hold what was used.
_NOT_SETTINGS = re.compile(
    r"config\.(?:seed|num_workers|save_model|lr|epochs|batch_size|weight_decay)"
    r"|training_args\.(?:seed|data_seed|output_dir|run_name|project|report_to|disable_tqdm"
    r"|resume_from_checkpoint|overwrite_output_dir|local_rank|debug|skip_memory_metrics"
    r"|per_device_eval_batch_size|prediction_loss_only|batch_eval_metrics|include_.*"
    r"|(?:logging|log|save|eval|hub|push_to_hub|trackio|ddp)(?:_.*)?|.*_token"
    r"|dataloader_(?:num_workers|pin_memory|persistent_workers|prefetch_factor"
    r"|multiprocessing_context))"
    r"|prune\.(?:seed|density|class_errors|class_support|source|label_column)"
)

# Settings that runs recorded before them lack, with the default they then had: a run at the
# default and an older run are seeds of one experiment, not two settings.
_ADDED_LATER: dict[str, Any] = {"config.image_size": None}


@dataclass(frozen=True)
class TrainRecord:
    """What a training run's ``metrics.json`` says: its accuracies, what was trained how (the
    ``config``) and on what (the subset's ``provenance``, ``None`` for all the data); ``data``
    is the whole record as written."""

    folder: Path
    run_id: str
    accuracy: float
    worst_class_accuracy: float
    worst_class: str | None
    class_accuracy_std: float
    train_rows: int
    epochs: float
    density: float | None
    config: dict[str, Any]
    provenance: dict[str, Any] | None
    format_version: int
    data: dict[str, Any]

    @classmethod
    def read(cls, folder: str | os.PathLike) -> TrainRecord:
        """The record of the run in ``folder``, or a clear error naming the file and the missing
        or wrong field."""
        folder = Path(folder)
        path = folder / METRICS_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"{folder} holds no {METRICS_FILE}: is it a run of hf-drop train?"
            )
        fix = f"pass the folder of a run of hf-drop train (train it again into {folder})"
        data = read_record(
            path, "a training run's record", fix, _FIELDS, version=TRAIN_RECORD_VERSION
        )
        # Runs written before run ids are known by their record's bytes: a copy has the same.
        run_id = data.get("run_id") or hashlib.sha256(path.read_bytes()).hexdigest()[:32]
        return cls(
            folder,
            str(run_id),
            data["accuracy"],
            data["worst_class_accuracy"],
            data["worst_class"],
            data["class_accuracy_std"],
            data["train_rows"],
            data["epochs"],
            data["density"],
            data["config"],
            data["provenance"],
            data.get("format_version", 0),
            data,
        )

    @property
    def eval_data(self) -> dict[str, Any] | None:
        """What the model was judged on (``name``, ``split``, ``rows``, ``fingerprint``, ...);
        ``None`` for a run recorded before metrics.json said it."""
        described = self.data.get("eval_data")
        return described if isinstance(described, dict) else None

    @property
    def method(self) -> str:
        """How the training data was chosen: the pruning method, or ``"Full data"``."""
        return (self.provenance or {}).get("method") or "Full data"

    @property
    def seed(self) -> int:
        """The pruning seed of a pruned run, else the training seed."""
        params = (self.provenance or {}).get("params")
        seed = params.get("seed") if isinstance(params, dict) else None
        return self.config["seed"] if seed is None else seed

    def settings(self) -> dict[str, str]:
        """Every setting that shapes the trained model, by dotted name (``config.optimizer``,
        ``training_args.lr_scheduler_type``, ``prune.quota``, ``processes``), as JSON text; the
        seeds, the density and the method (the report's own columns) and where a run logs and
        saves are not settings. Runs that differ in one are not seeds of one another."""
        params = (self.provenance or {}).get("params")
        groups = {
            "config": self.config,
            "training_args": self.data.get("training_args") or {},
            "prune": params if isinstance(params, dict) else {},
        }
        found = {"processes": json.dumps(self.data.get("processes", 1))}
        for prefix, values in groups.items():
            for key, value in values.items():
                name = f"{prefix}.{key}"
                if name in _ADDED_LATER and value == _ADDED_LATER[name]:
                    continue  # as in a run recorded before the field: the same setting
                if not _NOT_SETTINGS.fullmatch(name):
                    found[name] = json.dumps(value, sort_keys=True, default=str)
        if self.config.get("compute_matched"):
            # Epochs follow from config.epochs and the density: not a setting of their own.
            found.pop("training_args.num_train_epochs", None)
            found["config.epochs"] = json.dumps(self.config.get("epochs"))
        return found
