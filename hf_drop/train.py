"""Train an image classifier on a (pruned) ``datasets.Dataset`` with ``transformers.Trainer`` and
judge it class by class.

The data path is the probe's (:class:`hf_drop.modeling.images.ImageBatches`: same transforms, same
batches); timm models train as ``TimmWrapperForImageClassification``, transformers models as they
are; ``compute_metrics`` is the class-wise accuracy of :mod:`hf_drop.evaluation.metrics`. It runs the
same under ``python`` and ``accelerate launch`` (the Trainer handles the processes).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import datasets
import numpy as np
import torch

from .data.columns import read_labels
from .io.environment import machine, versions
from .io.outputs import atomic_output, dataset_folders, prepare_output

__all__ = ["TrainConfig", "compute_matched_epochs", "train_and_evaluate"]

METRICS_FILE = "metrics.json"


def compute_matched_epochs(full_epochs: int, density: float) -> int:
    """Epochs at density ``d`` that cost about as much as ``full_epochs`` on all the data, as in the
    paper: ``round((0.5 + 0.5 d) * E / d)``, rounded half up."""
    if not 0.0 < density <= 1.0:
        raise ValueError(
            f"density must lie in (0, 1] for a compute-matched schedule, got {density}"
        )
    # Half up, like the pruning budget: Python's round() would send 2.5 to 2 but 3.5 to 4.
    return max(1, math.floor((0.5 + 0.5 * density) * full_epochs / density + 0.5))


@dataclass
class TrainConfig:
    """How the final model is trained.

    Args:
        model: timm architecture, Hub checkpoint id or local ``save_pretrained`` folder.
        epochs: training epochs; with ``compute_matched`` the full-data epochs ``E``.
        compute_matched: train ``round((0.5 + 0.5 d) * E / d)`` epochs at density ``d``.
        optimizer: ``"sgd"`` (momentum, step decay by ``lr_gamma`` at ``lr_milestones`` of the
            schedule) or ``"trainer"`` (the Trainer's AdamW and linear decay).
        lr, momentum, weight_decay, batch_size (per process), seed, augment, pretrained,
        model_kwargs, image_column, label_column, num_workers: as in the probe.
    """

    model: str
    epochs: int = 10
    compute_matched: bool = False
    optimizer: Literal["sgd", "trainer"] = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_milestones: tuple[float, ...] = (0.5, 0.75)
    lr_gamma: float = 0.1
    batch_size: int = 128
    seed: int = 0
    augment: bool = False
    pretrained: bool = False
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    image_column: str = "image"
    label_column: str = "label"
    num_workers: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs must be a positive int, got {self.epochs!r}")
        if self.optimizer not in ("sgd", "trainer"):
            raise ValueError(f"optimizer must be 'sgd' or 'trainer', got {self.optimizer!r}")


def train_and_evaluate(
    train: datasets.Dataset,
    eval_dataset: datasets.Dataset,
    config: TrainConfig,
    output_dir: str | Path,
    *,
    density: float | None = None,
    provenance: dict[str, Any] | None = None,
    overwrite: bool = False,
    inputs: Iterable[str | os.PathLike | None] = (),
) -> dict[str, Any]:
    """Train on ``train``, evaluate on ``eval_dataset``, write ``metrics.json`` and return it.

    ``density`` (the fraction of the full training set that ``train`` is) sets the compute-matched
    schedule; ``provenance`` (e.g. a subset's ``pruning.json``) is recorded with the metrics.
    ``output_dir`` is checked before training (see :mod:`hf_drop.io.outputs`): new, empty, or a
    previous training run with ``overwrite=True``; never overlapping ``inputs`` or the datasets'
    files. It appears, complete, once training is done.
    """
    from transformers import Trainer, TrainingArguments, set_seed

    from .evaluation.metrics import trainer_compute_metrics
    from .modeling.images import ImageBatches
    from .modeling.models import build_model

    out = Path(output_dir)
    labels, eval_ids, names, channels = _check_inputs(train, eval_dataset, config)
    inputs = [*inputs, *dataset_folders(train, eval_dataset)]
    prepare_output(out, "train", overwrite=overwrite, inputs=inputs)  # refused before training
    epochs = config.epochs
    if config.compute_matched:
        if density is None:
            raise ValueError("compute_matched needs the density of the training subset")
        epochs = compute_matched_epochs(config.epochs, density)

    set_seed(config.seed)
    classifier, preprocess, spec = build_model(
        config.model,
        len(names),
        channels,
        pretrained=config.pretrained,
        model_kwargs=config.model_kwargs,
        class_names=names,
        as_transformers=True,
    )
    model = classifier.model
    train_rows = ImageBatches(train, config.image_column, labels.ids, preprocess, config.augment)
    eval_rows = ImageBatches(eval_dataset, config.image_column, eval_ids, preprocess)

    # The Trainer saves nothing (save_strategy="no") but creates its output_dir: a scratch folder.
    scratch = tempfile.TemporaryDirectory(prefix="hf-drop-trainer-")
    try:
        args = TrainingArguments(
            output_dir=scratch.name,
            num_train_epochs=epochs,
            per_device_train_batch_size=config.batch_size,
            per_device_eval_batch_size=config.batch_size,
            learning_rate=config.lr,
            weight_decay=config.weight_decay,
            seed=config.seed,
            data_seed=config.seed,
            eval_strategy="no",
            save_strategy="no",
            logging_strategy="epoch",
            report_to="none",
            remove_unused_columns=False,  # ImageBatches yields exactly what the model takes
            dataloader_num_workers=config.num_workers,
            dataloader_pin_memory=torch.cuda.is_available(),
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=train_rows,
            eval_dataset=eval_rows,
            data_collator=model_inputs,
            compute_metrics=trainer_compute_metrics(names),
            optimizers=_sgd(model, config, epochs, len(train_rows), args)
            if config.optimizer == "sgd"
            else (None, None),
        )
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        evaluation = trainer.evaluate()
        logits = trainer.predict(eval_rows).predictions
        predictions = np.argmax(logits[0] if isinstance(logits, tuple) else logits, axis=-1)
        result = {
            **_class_accuracy_record(predictions, eval_ids, names),
            "eval_loss": evaluation.get("eval_loss"),
            "train_rows": len(train),
            "eval_rows": len(eval_dataset),
            "epochs": epochs,
            "density": density,
            "train_seconds": round(seconds, 2),
            "config": asdict(config),
            "model": {"name": spec.name, "kind": spec.kind, "pretrained": spec.pretrained},
            "processes": trainer.accelerator.num_processes,
            "versions": versions(
                "torch", "transformers", "accelerate", "datasets", "timm", "numpy"
            ),
            "machine": machine(),
            "provenance": provenance,
        }
    finally:  # also when training fails: the scratch folder is ours to remove
        scratch.cleanup()
    if trainer.is_world_process_zero():
        with atomic_output(out, "train", overwrite=overwrite, inputs=inputs) as tmp:
            (tmp / METRICS_FILE).write_text(json.dumps(result, indent=1) + "\n")
    return result


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The Trainer's collator: an ImageBatches batch without its row indices."""
    return {"pixel_values": batch["pixel_values"], "labels": batch["labels"]}


def _class_accuracy_record(predictions, references, names: list[str]) -> dict[str, Any]:
    """metrics.json's accuracy keys: the metric's scalars, the worst class, and the accuracy of
    every class by name (None for a class absent from the references, listed in absent_classes)."""
    from .evaluation.metrics import class_accuracy_scores, class_accuracy_table

    scores = class_accuracy_scores(predictions, references, len(names), names)
    table = class_accuracy_table(predictions, references, len(names), names)
    by_class = [None if np.isnan(a) else float(a) for a in table["accuracy"]]
    return {
        "accuracy": scores["accuracy"],
        "worst_class_accuracy": scores["worst_class_accuracy"],
        "worst_class": table.loc[table["accuracy"].idxmin(), "class"],
        "per_class_accuracy": by_class,
        "class_accuracy_std": scores["class_accuracy_std"],
        "best_minus_worst": scores["best_minus_worst"],
        "absent_classes": table.loc[table["support"] == 0, "class"].tolist(),
        "class_names": names,
        "class_accuracy": dict(zip(names, by_class, strict=True)),
    }


def _sgd(model, config: TrainConfig, epochs: int, rows: int, args) -> tuple:
    """SGD with momentum and step decay at fractions of the schedule, in optimizer steps."""
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    steps_per_epoch = math.ceil(rows / (config.batch_size * max(args.world_size, 1)))
    milestones = [round(f * epochs * steps_per_epoch) for f in config.lr_milestones]
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, config.lr_gamma)
    return optimizer, scheduler


def _check_inputs(train: datasets.Dataset, eval_dataset: datasets.Dataset, config: TrainConfig):
    """Every input problem as a clear error, before a model is built."""
    from .modeling.images import check_image_split

    channels = check_image_split(train, "training dataset", config.image_column)
    check_image_split(eval_dataset, "evaluation dataset", config.image_column)
    labels = read_labels(train, config.label_column)
    eval_labels = read_labels(eval_dataset, config.label_column)
    if eval_labels.names != labels.names:
        raise ValueError(
            f"the evaluation dataset's classes {eval_labels.names[:12]} differ from the training "
            f"dataset's {labels.names[:12]}: both must use the same ClassLabel names"
        )
    return labels, eval_labels.ids, labels.names, channels
