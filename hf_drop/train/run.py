"""Train on a (pruned) ``datasets.Dataset`` with ``transformers.Trainer``, judge the model class by
class, and save it.

The data path is the probe's (:class:`hf_drop.modeling.images.ImageBatches`: same transforms,
same batches); timm models train as ``TimmWrapperForImageClassification``, transformers models as
they are; ``compute_metrics`` is the class-wise accuracy of :mod:`hf_drop.evaluation.metrics`. It
runs the same under ``python`` and ``accelerate launch`` (the Trainer handles the processes).

A run's output folder appears whole once the run is done (:func:`hf_drop.io.outputs.atomic_output`):

    metrics.json   accuracy, worst-class and per-class accuracy, the settings and the
                   TrainingArguments used
    model/         the trained model (``save_pretrained``, safetensors), its preprocessing and a
                   model card (README.md); not with ``TrainConfig(save_model=False)``
    checkpoints/   the Trainer's ``output_dir``: its checkpoints (``save_strategy``) and its
                   reporters' local logs (e.g. TensorBoard's ``runs/``); absent when empty
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import datasets
import numpy as np
import torch
from numpy.typing import NDArray

from ..data.columns import Labels, read_groups, read_labels
from ..evaluation.record import METRICS_FILE, TRAIN_RECORD_VERSION
from ..io.environment import machine, versions
from ..io.outputs import atomic_output, dataset_folders, prepare_output
from .arguments import training_arguments
from .card import model_card
from .config import TrainConfig

if TYPE_CHECKING:
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from ..modeling.models import ModelSpec, Preprocess

__all__ = [
    "CHECKPOINTS_DIR",
    "METRICS_FILE",
    "MODEL_DIR",
    "Evaluation",
    "model_inputs",
    "train_and_evaluate",
]

MODEL_DIR = "model"
CHECKPOINTS_DIR = "checkpoints"


@dataclass(frozen=True)
class _Data:
    """The checked inputs: class ids of both splits, class names, image channels, and the
    evaluation rows' groups (with ``TrainConfig.group_column``)."""

    train_ids: NDArray[np.int64]
    eval_ids: NDArray[np.int64]
    names: list[str]
    channels: int
    eval_groups: Labels | None = None


@dataclass(frozen=True)
class _Model:
    """The model the Trainer trains, how its images are prepared, what its name resolved to."""

    model: torch.nn.Module  # a transformers PreTrainedModel
    preprocess: Preprocess
    spec: ModelSpec
    processor: Any | None  # the checkpoint's image processor, saved with the model


@dataclass(frozen=True)
class Evaluation:
    """The one pass over the evaluation split: predicted classes and the Trainer's metrics."""

    predictions: NDArray[np.int64]
    metrics: dict[str, float]

    @property
    def loss(self) -> float | None:
        return self.metrics.get("eval_loss")


def train_and_evaluate(
    train: datasets.Dataset,
    eval_dataset: datasets.Dataset,
    config: TrainConfig,
    output_dir: str | os.PathLike,
    *,
    training_args: Mapping[str, Any] | TrainingArguments | None = None,
    callbacks: Sequence[TrainerCallback] = (),
    density: float | None = None,
    provenance: dict[str, Any] | None = None,
    dataset_name: str | None = None,
    reproduce: Sequence[str] | None = None,
    train_source: Mapping[str, Any] | None = None,
    eval_source: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    inputs: Iterable[str | os.PathLike | None] = (),
    steer_dataset: datasets.Dataset | None = None,
    steer_source: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Train on ``train``, evaluate on ``eval_dataset``, write ``metrics.json`` (and ``model/``)
    into ``output_dir`` and return the metrics.

    ``training_args``: any ``TrainingArguments`` fields (a dict, or a whole object) over
    ``config``'s settings, by the rule of :mod:`hf_drop.train.arguments`; ``callbacks`` go to
    the Trainer. ``density`` (the fraction of the full training set that ``train`` is) sets the
    compute-matched schedule; ``provenance`` (e.g. a subset's ``pruning.json``) is recorded with
    the metrics and, with ``dataset_name`` and ``reproduce`` (the commands that rebuild the
    training data), described in the model card; ``eval_source`` (``name``, ``split``, ...) says
    what ``eval_dataset`` is, recorded with its row count, fingerprint and content digest as
    ``eval_data`` in the metrics and the card, and ``train_source`` likewise what ``train`` is
    (``train_data``: e.g. its ``max_train_samples`` and ``sampling``). ``output_dir`` is checked before training (see
    :mod:`hf_drop.io.outputs`): new, empty, or a previous training run with ``overwrite=True``;
    never overlapping ``inputs`` or the datasets' files. It appears, complete, once done.

    With ``config.dynamic_drop`` (:mod:`hf_drop.train.dynamic`), every epoch trains on that
    fraction of ``train``, chosen from the class errors on ``steer_dataset`` (described by
    ``steer_source``), which must not be ``eval_dataset``: the model is judged on rows that chose
    nothing. The epochs' plan is recorded as ``dynamic_drop`` in the metrics.
    """
    from transformers import set_seed

    data = _check_inputs(train, eval_dataset, config)
    dynamic, steer_ids = _dynamic(train, eval_dataset, steer_dataset, config, data)
    out = Path(output_dir)
    # Everything that can be refused is, before a model is built or anything is written.
    args = training_arguments(
        config, config.epochs_at(density), out / CHECKPOINTS_DIR, training_args
    )
    inputs = [*inputs, *dataset_folders(train, eval_dataset), args.resume_from_checkpoint]
    prepare_output(out, "train", overwrite=overwrite, inputs=inputs)
    set_seed(args.seed)
    built = _build(config, data)
    _check_sizes(train, eval_dataset, steer_dataset, built.preprocess, config)  # batches stack
    train_rows, eval_rows = _rows(train, eval_dataset, data, built.preprocess, config)
    if built.spec.kind == "timm":
        _describe_timm_preprocessing(built, eval_rows)
    steer_rows = None
    if dynamic is not None:
        from ..modeling.images import ImageBatches

        steer_rows = ImageBatches(steer_dataset, config.image_column, steer_ids, built.preprocess)
    with _staging(out, overwrite, inputs) as stage:
        args = dataclasses.replace(args, output_dir=str(stage / CHECKPOINTS_DIR))
        trainer = _trainer(
            built, args, config, data, train_rows, steer_rows or eval_rows, callbacks
        )
        if dynamic is not None:
            dynamic.attach(trainer)
        seconds = _fit(trainer, args)
        evaluation = _evaluate(trainer, eval_rows)
        record = _record(trainer, config, data, built, evaluation, seconds, density, provenance)
        record["train_data"] = _data_record(train, config, train_source)
        record["eval_data"] = _data_record(eval_dataset, config, eval_source)
        if dynamic is not None:
            record["dynamic_drop"] = dynamic.record()
            record["steer_data"] = _data_record(steer_dataset, config, steer_source)
        record["training_args"]["output_dir"] = str(out / CHECKPOINTS_DIR)
        if config.save_model:
            _save_model(trainer, stage / MODEL_DIR, record, dataset_name, reproduce)
        if trainer.is_world_process_zero():
            _finish(stage, record)
    return record


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The Trainer's collator: an ImageBatches batch without its row indices."""
    return {"pixel_values": batch["pixel_values"], "labels": batch["labels"]}


def _build(config: TrainConfig, data: _Data) -> _Model:
    """The model, once: a timm model inside TimmWrapperForImageClassification, or a transformers
    model with its checkpoint's image processor (if it has one)."""
    from ..modeling.models import build_model
    from ..modeling.sizes import parse_image_size

    classifier, preprocess, spec = build_model(
        config.model,
        len(data.names),
        data.channels,
        pretrained=config.pretrained,
        model_kwargs=config.model_kwargs,
        class_names=data.names,
        as_transformers=True,
        image_size=parse_image_size(config.image_size),
    )
    processor = _image_processor(spec.name) if spec.kind == "transformers" else None
    if processor is not None and config.image_size is not None:
        # Saved with the model: it must prepare images as they were trained, at image_size.
        height, width = preprocess.image_size or (0, 0)
        processor.size = {"height": height, "width": width}
        if getattr(processor, "do_center_crop", False):
            processor.do_center_crop = False
    return _Model(classifier.model, preprocess, spec, processor)


def _check_sizes(
    train, eval_dataset, steer_dataset, preprocess: Preprocess, config: TrainConfig
) -> None:
    """Images of several sizes only if the preprocessing resizes them (``image_size``); the
    steering split (dynamic DRoP) is evaluated every epoch, so its images count too."""
    from ..modeling.images import check_one_size, image_sizes

    if preprocess.image_size is not None:
        return
    splits = [("training dataset", train), ("evaluation dataset", eval_dataset)]
    if steer_dataset is not None:
        splits.append(("steering dataset", steer_dataset))
    sizes = {role: image_sizes(split, role, config.image_column) for role, split in splits}
    check_one_size(sizes, preprocess, config.model)


def _image_processor(name: str) -> Any | None:
    from transformers import AutoImageProcessor

    try:
        return AutoImageProcessor.from_pretrained(name)
    except Exception:  # no preprocessor_config.json: the card states the preprocessing instead
        return None


def _rows(train, eval_dataset, data: _Data, preprocess: Preprocess, config: TrainConfig):
    from ..modeling.images import ImageBatches

    return (
        ImageBatches(train, config.image_column, data.train_ids, preprocess, config.augment),
        ImageBatches(eval_dataset, config.image_column, data.eval_ids, preprocess),
    )


def _describe_timm_preprocessing(built: _Model, eval_rows) -> None:
    """Write the preprocessing into the wrapper's config as a timm ``pretrained_cfg``: what
    ``AutoImageProcessor.from_pretrained`` of the saved model (a TimmWrapperImageProcessor)
    reads. Resized to the exact size (``squash``, no crop), as hf-drop prepares images."""
    p = built.preprocess
    size = p.image_size or tuple(eval_rows[0]["pixel_values"].shape[-2:])  # the images' own
    built.model.config.pretrained_cfg = {
        "input_size": [p.channels, *size],
        "mean": list(p.mean),
        "std": list(p.std),
        "interpolation": p.interpolation,
        "crop_pct": 1.0,
        "crop_mode": "squash",
    }


@contextmanager
def _staging(out: Path, overwrite: bool, inputs: list) -> Iterator[Path]:
    """The folder a run writes into, the same on every process: the main process's temporary
    sibling of ``out`` (:func:`atomic_output`), which becomes ``out`` once the block succeeds."""
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    state = PartialState()
    with ExitStack() as stack:
        tmp = None
        if state.is_main_process:
            tmp = stack.enter_context(
                atomic_output(out, "train", overwrite=overwrite, inputs=inputs)
            )
        shared = broadcast_object_list([None if tmp is None else str(tmp)])[0]
        yield Path(shared)
        state.wait_for_everyone()  # every process is done writing before the folder moves


def _trainer(built: _Model, args, config, data: _Data, train_rows, eval_rows, callbacks):
    from transformers import Trainer

    from ..evaluation.metrics import trainer_compute_metrics
    from .printer import log_through_hf_drop

    trainer_class = _sgd_trainer(config) if config.optimizer == "sgd" else Trainer
    trainer = trainer_class(
        model=built.model,
        args=args,
        train_dataset=train_rows,
        eval_dataset=eval_rows,
        data_collator=model_inputs,
        compute_metrics=trainer_compute_metrics(data.names),
        processing_class=built.processor,
        callbacks=list(callbacks),
    )
    return log_through_hf_drop(trainer)


def _sgd_trainer(config: TrainConfig) -> type[Trainer]:
    """A Trainer whose optimizer is SGD with momentum, decayed by ``lr_gamma`` at the
    ``lr_milestones`` fractions of the optimizer steps the Trainer counted (gradient
    accumulation, ``max_steps`` and the number of processes included)."""
    from transformers import Trainer

    class SGDTrainer(Trainer):
        def create_optimizer(self, model=None):
            if self.optimizer is None:
                self.optimizer = torch.optim.SGD(
                    (model or self.model).parameters(),
                    lr=self.args.learning_rate,
                    momentum=config.momentum,
                    weight_decay=self.args.weight_decay,
                )
            return self.optimizer

        def create_scheduler(self, num_training_steps, optimizer=None):
            if self.lr_scheduler is None:
                milestones = [round(f * num_training_steps) for f in config.lr_milestones]
                self.lr_scheduler = torch.optim.lr_scheduler.MultiStepLR(
                    optimizer or self.optimizer, milestones, config.lr_gamma
                )
            return self.lr_scheduler

    return SGDTrainer


def _fit(trainer: Trainer, args: TrainingArguments) -> float:
    """Train (from ``resume_from_checkpoint`` if given); the seconds it took."""
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    return time.perf_counter() - start


def _evaluate(trainer: Trainer, eval_rows) -> Evaluation:
    """One prediction pass: the loss, compute_metrics' scalars and the predicted classes. The
    metrics are logged too, so that every reporter (``report_to``, callbacks) gets them."""
    output = trainer.predict(eval_rows, metric_key_prefix="eval")
    logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    trainer.log(dict(output.metrics))
    return Evaluation(np.argmax(logits, axis=-1), dict(output.metrics))


def _record(
    trainer: Trainer,
    config: TrainConfig,
    data: _Data,
    built: _Model,
    evaluation: Evaluation,
    seconds: float,
    density: float | None,
    provenance: dict[str, Any] | None,
) -> dict[str, Any]:
    """metrics.json: the accuracies, what was trained how, on what, with what."""
    args = trainer.args
    # With max_steps, the epochs the steps came to (state.epoch: 0.5 is half an epoch).
    epochs = args.num_train_epochs if args.max_steps <= 0 else round(trainer.state.epoch, 4)
    groups = {}
    if data.eval_groups is not None:
        groups = _group_accuracy_record(evaluation.predictions, data.eval_ids, data.eval_groups)
    return {
        "format_version": TRAIN_RECORD_VERSION,
        # Who this run is, wherever its folder is copied: the report counts each run once.
        "run_id": uuid.uuid4().hex,
        **_class_accuracy_record(evaluation.predictions, data.eval_ids, data.names),
        **groups,
        "eval_loss": evaluation.loss,
        "train_rows": len(data.train_ids),
        "eval_rows": len(data.eval_ids),
        "epochs": int(epochs) if float(epochs).is_integer() else epochs,
        "density": density,
        "train_seconds": round(seconds, 2),
        "config": dataclasses.asdict(config),
        "model": {
            "name": built.spec.name,
            "kind": built.spec.kind,
            "pretrained": built.spec.pretrained,
            # Saved with it: a transformers checkpoint's, or timm's from its config.
            "image_processor": built.spec.kind == "timm" or built.processor is not None,
        },
        "model_dir": MODEL_DIR if config.save_model else None,
        "preprocess": dataclasses.asdict(built.preprocess),
        "training_args": json.loads(json.dumps(args.to_dict(), default=str)),
        "processes": trainer.accelerator.num_processes,
        "versions": versions("torch", "transformers", "accelerate", "datasets", "timm", "numpy"),
        "machine": machine(),
        "provenance": provenance,
    }


def _data_record(
    dataset: datasets.Dataset, config: TrainConfig, described: Mapping[str, Any] | None
) -> dict[str, Any]:
    """What the model was trained or judged on: the caller's description (name, split, ...) and
    what identifies the rows (count, fingerprint, label hash and content digest)."""
    from ..data.columns import dataset_identity

    identity = dataset_identity(dataset, config.label_column)
    return {
        "name": None,
        "split": None,
        **dict(described or {}),
        "rows": len(dataset),
        "fingerprint": dataset._fingerprint,
        **{key: identity[key] for key in ("label_column", "label_hash", "content")},
    }


def _save_model(trainer: Trainer, folder: Path, record: dict[str, Any], dataset_name, reproduce):
    """``model/``: weights and config (``save_pretrained``, safetensors), the image processor
    (a transformers checkpoint's, or a timm model's ``pretrained_cfg`` in its config), a card."""
    trainer.save_model(str(folder))  # on every process: sharded weights are gathered
    if trainer.is_world_process_zero():
        # A pickle the card and metrics.json already describe, in JSON.
        (folder / "training_args.bin").unlink(missing_ok=True)
        card = model_card(record, dataset_name=dataset_name, reproduce=reproduce)
        card.save(folder / "README.md")


def _finish(stage: Path, record: dict[str, Any]) -> None:
    checkpoints = stage / CHECKPOINTS_DIR
    if checkpoints.is_dir() and not any(checkpoints.iterdir()):
        checkpoints.rmdir()  # the Trainer made it but wrote nothing there
    record["checkpoints_dir"] = CHECKPOINTS_DIR if checkpoints.exists() else None
    (stage / METRICS_FILE).write_text(json.dumps(record, indent=1) + "\n")


def _class_accuracy_record(predictions, references, names: list[str]) -> dict[str, Any]:
    """metrics.json's accuracy keys: the metric's scalars, the worst class, and the accuracy of
    every class by name (None for a class absent from the references, listed in absent_classes)."""
    from ..evaluation.metrics import class_accuracy_scores, class_accuracy_table

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
        "class_support": table["support"].astype(int).tolist(),
    }


def _group_accuracy_record(predictions, references, groups: Labels) -> dict[str, Any]:
    """metrics.json's group keys: the worst group, its accuracy, and every group's accuracy and
    support by name (a group is judged like a class: its rows predicted as their own class)."""
    from ..evaluation.metrics import class_accuracy_scores

    scores = class_accuracy_scores(
        predictions, references, groups=groups.ids, group_names=groups.names
    )
    by_group = {name: scores[f"group_accuracy/{name}"] for name in groups.names}
    return {
        "group_column": groups.column,
        "worst_group_accuracy": scores["worst_group_accuracy"],
        "worst_group": min(by_group, key=by_group.__getitem__),
        "group_accuracy": by_group,
        "group_support": np.bincount(groups.ids, minlength=len(groups.names)).tolist(),
    }


def _dynamic(train, eval_dataset, steer_dataset, config: TrainConfig, data: _Data):
    """The dynamic DRoP callback of ``config.dynamic_drop`` and the steering split's class ids,
    its data checked (None, None without)."""
    if config.dynamic_drop is None:
        if steer_dataset is not None:
            raise ValueError("steer_dataset is only read with TrainConfig.dynamic_drop")
        return None, None
    from .dynamic import DynamicDRoPCallback

    if steer_dataset is None:
        raise ValueError(
            "dynamic_drop needs a steering split (steer_dataset; --dynamic_eval_split): the "
            "rows whose class errors choose each epoch's sample, apart from the evaluation data"
        )
    if steer_dataset._fingerprint == eval_dataset._fingerprint:
        raise ValueError(
            "the steering split is the evaluation split: the model would be judged on the rows "
            "that chose its training data; steer on another split (e.g. a validation split, or "
            "another slice of the test split)"
        )
    steer_ids = _class_ids_like(steer_dataset, "steering dataset", data.names, config)
    callback = DynamicDRoPCallback(
        train,
        config.dynamic_drop,
        quota=config.dynamic_quota,
        label_column=config.label_column,
        anneal=config.dynamic_anneal,
        smoothing=config.dynamic_smoothing,
        seed=config.seed,
        within=config.dynamic_within,
        rescale=config.dynamic_rescale,
    )
    return callback, steer_ids


def _check_inputs(train: datasets.Dataset, eval_dataset: datasets.Dataset, config: TrainConfig):
    """Every input problem as a clear error, before a model is built."""
    from ..modeling.images import check_image_split

    channels = check_image_split(train, "training dataset", config.image_column)
    labels = read_labels(train, config.label_column)
    eval_ids = _class_ids_like(eval_dataset, "evaluation dataset", labels.names, config)
    groups = None
    if config.group_column is not None:
        groups = read_groups(eval_dataset, config.group_column)
    return _Data(labels.ids, eval_ids, labels.names, channels, groups)


def _class_ids_like(
    dataset: datasets.Dataset, role: str, names: list[str], config: TrainConfig
) -> NDArray[np.int64]:
    """The class ids of a split judged beside the training set (``role`` names it): an image
    split whose classes are the training set's, by name."""
    from ..modeling.images import check_image_split

    check_image_split(dataset, role, config.image_column)
    labels = read_labels(dataset, config.label_column)
    if labels.names != names:
        raise ValueError(
            f"the {role}'s classes {labels.names[:12]} differ from the training dataset's "
            f"{names[:12]}: both must use the same ClassLabel names"
        )
    return labels.ids
