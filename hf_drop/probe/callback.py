"""Your own ``transformers.Trainer`` run as the probe: a callback that records what ``hf-drop
probe`` records and writes the same result folder.

::

    probe = ProbeCallback("probe", train_dataset=train, eval_dataset=val)
    trainer = Trainer(
        model=model,
        args=TrainingArguments("out", remove_unused_columns=False, num_train_epochs=10),
        train_dataset=probe.train_dataset,        # the same rows, each with its row index
        eval_dataset=probe.eval_dataset,
        data_collator=probe.collator(collate_fn),  # your collator; the index rides along
        callbacks=[probe],
    )
    trainer.train()
    drop = DRoPFilter.from_probe("probe", 0.5).fit(train)

How: each batch carries its rows' indices, and hooks on the model read what it computes
(:mod:`hf_drop.probe.capture`); what is read goes to the probe's recorder
(:class:`~hf_drop.probe.recorder.ProbeRecorder`), as in ``hf-drop probe``. After every epoch the
callback makes the Trainer evaluate and records per-class recall on the eval set.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import datasets
import torch
from accelerate import PartialState
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.data.data_collator import default_data_collator

from ..io.outputs import atomic_output, dataset_folders, prepare_output
from ..modeling.models import find_head
from .capture import EVAL_KEY, TRAIN_KEY, BatchCapture, IndexCollator, IndexedDataset
from .config import ProbeConfig
from .recorder import (
    NonFiniteError,
    ProbeDivergedError,
    ProbeLabels,
    ProbeRecorder,
    ProbeWarning,
)
from .result import ProbeResult

__all__ = ["EVAL_KEY", "TRAIN_KEY", "IndexedDataset", "ProbeCallback"]

# TrainingArguments recorded with the result: how the Trainer trained (no machine-local paths).
_TRAINER_ARGS = (
    "num_train_epochs",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "learning_rate",
    "lr_scheduler_type",
    "warmup_steps",
    "warmup_ratio",
    "optim",
    "weight_decay",
    "max_grad_norm",
    "label_smoothing_factor",
    "seed",
    "data_seed",
    "fp16",
    "bf16",
)


class ProbeCallback(TrainerCallback):
    """Turns a ``transformers.Trainer`` run into a probe: per-sample training dynamics and
    per-class validation errors, written as a :class:`~hf_drop.probe.ProbeResult` folder that
    ``ProbeResult.load`` and ``DRoPFilter.from_probe`` read, like one of ``hf-drop probe``.

    Give the Trainer ``train_dataset=probe.train_dataset``, ``eval_dataset=probe.eval_dataset``
    (the datasets passed here, each row with its index), ``data_collator=probe.collator(your
    collator)`` and ``TrainingArguments(remove_unused_columns=False)`` (which keeps the index, as
    it keeps the image column for an image transform). The callback makes the Trainer evaluate
    after every epoch; the class errors are ``1 - recall`` of the last (or best) of those
    evaluations. Training must run whole epochs, from the start: ``max_steps``, a fractional
    ``num_train_epochs``, ``dataloader_drop_last``, resuming from a checkpoint, and a training
    stopped early are refused. Under ``accelerate launch``/``torchrun`` every process records,
    statistics are gathered by row index, and the main process writes ``output_dir`` (atomically:
    it appears complete or not at all).

    Args:
        output_dir: the result folder: new, empty, or a previous probe result with ``overwrite``;
            never overlapping the datasets' files or the Trainer's ``output_dir``.
        train_dataset: the data to prune, a ``datasets.Dataset`` with a class label column
            (transforms are fine: the identity recorded is that of the stored rows, which
            ``DRoPFilter`` checks).
        eval_dataset: the validation data, likewise.
        label_column: ``ClassLabel``, integer or string column of both; the model's class ids
            must be those of the train split (the batch's ``labels`` are checked against it).
        score_epoch: epoch (0-based) whose logits give EL2N and GraNd; default 10% of the
            schedule, as ``ProbeConfig``.
        du_window: window of dynamic uncertainty, in epochs.
        embeddings: also keep the head's input (float16) at the last epoch, for k-center.
        class_errors_from: ``"final"`` epoch's recall, or the ``"best"`` epoch's (by accuracy).
        source: what the training data is (name, split, ...), recorded with the result.
        overwrite: replace a previous probe result in ``output_dir``.

    After training, ``result_`` is the :class:`~hf_drop.probe.ProbeResult` (on every process).
    Last-layer GraNd and embeddings need a final ``nn.Linear`` with one output per class (found
    as ``hf-drop probe`` finds it); without one, ``grand`` is left out.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        train_dataset: datasets.Dataset,
        eval_dataset: datasets.Dataset,
        *,
        label_column: str = "label",
        score_epoch: int | None = None,
        du_window: int = 10,
        embeddings: bool = False,
        class_errors_from: Literal["final", "best"] = "final",
        source: Mapping[str, Any] | None = None,
        overwrite: bool = False,
    ) -> None:
        if score_epoch is not None and (
            isinstance(score_epoch, bool) or not isinstance(score_epoch, int) or score_epoch < 0
        ):
            raise ValueError(f"score_epoch must be None or an int >= 0, got {score_epoch!r}")
        if isinstance(du_window, bool) or not isinstance(du_window, int) or du_window < 1:
            raise ValueError(f"du_window must be a positive int, got {du_window!r}")
        if class_errors_from not in ("final", "best"):
            raise ValueError(
                f"class_errors_from must be 'final' or 'best', got {class_errors_from!r}"
            )
        self.output_dir = Path(output_dir)
        self.label_column = label_column
        self.score_epoch = score_epoch
        self.du_window = du_window
        self.embeddings = embeddings
        self.class_errors_from = class_errors_from
        self.source = dict(source or {})
        self.overwrite = overwrite
        # Labels, classes and the identity of both splits: a bad column fails here, not after
        # training.
        self._labels = ProbeLabels.read(train_dataset, eval_dataset, label_column)
        self.train_dataset = IndexedDataset(train_dataset, TRAIN_KEY)
        self.eval_dataset = IndexedDataset(eval_dataset, EVAL_KEY)
        self.result_: ProbeResult | None = None
        self._capture = BatchCapture(self._labels.train_ids, self._labels.num_classes, label_column)
        self._recorder: ProbeRecorder | None = None  # while training
        self._active = False

    def collator(self, collate_fn: Callable[[list], Any] | None = None) -> Callable[[list], Any]:
        """``collate_fn`` (default: ``transformers.default_data_collator``) that also carries
        the rows' indices, for ``Trainer(data_collator=...)``. ``collate_fn`` never sees them."""
        return IndexCollator(collate_fn or default_data_collator)

    # --- Trainer events -------------------------------------------------------------------------

    def on_init_end(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: torch.nn.Module | None = None,
        **kwargs: Any,
    ) -> None:
        _check_arguments(args)
        if model is not None:
            self._capture.strip_indices(model)

    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: torch.nn.Module | None = None,
        train_dataloader: Any = None,
        **kwargs: Any,
    ) -> None:
        _check_arguments(args)
        self._stop_recording()  # hooks left by a train() that failed
        if args.max_steps > 0 or args.num_train_epochs != int(args.num_train_epochs):
            raise ValueError(
                "ProbeCallback needs whole epochs: pass an integer num_train_epochs and no "
                f"max_steps (got num_train_epochs={args.num_train_epochs}, "
                f"max_steps={args.max_steps})"
            )
        if args.dataloader_drop_last:
            raise ValueError(
                "ProbeCallback scores every training row each epoch: dataloader_drop_last=True "
                "would leave rows out; pass dataloader_drop_last=False"
            )
        if state.global_step > 0:
            raise ValueError(
                "ProbeCallback cannot resume a Trainer run: the per-sample history of the steps "
                "before the checkpoint is not in it; train from the start"
            )
        self._check_output(args)
        epochs = int(state.num_train_epochs)
        score_epoch = self.score_epoch
        if score_epoch is None:  # ProbeConfig's default: 10% of the schedule
            score_epoch = ProbeConfig(model="trainer", epochs=epochs).resolved_score_epoch
        if score_epoch >= epochs:
            raise ValueError(f"score_epoch must lie in [0, {epochs}), got {score_epoch}")
        self._epoch = 0
        head = _head_or_none(model, self._labels.num_classes)
        if self.embeddings and head is None:
            raise ValueError(
                f"embeddings=True needs a final nn.Linear with {self._labels.num_classes} "
                f"outputs (its input is the embedding); {type(model).__name__} has none"
            )
        self._recorder = ProbeRecorder(
            self._labels,
            epochs=epochs,
            score_epoch=score_epoch,
            du_window=self.du_window,
            embeddings=self.embeddings,
            class_errors_from=self.class_errors_from,
            grand=head is not None,
        )
        self._recorder.start_init(0)
        self._record = self._describe(args, model, epochs, score_epoch, train_dataloader)
        self._capture.start(model, head)
        self._active = True

    def on_epoch_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self._active and self._recorder.pending is not None:
            raise RuntimeError(self._no_evaluation(self._recorder.pending["epoch"]))
        if self._active:
            self._capture.start_epoch(self._recorder.wants_embeddings(self._epoch))

    def on_epoch_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> TrainerControl:
        if not self._active:
            return control
        self._record_epoch(self._epoch)
        self._epoch += 1
        control.should_evaluate = True  # the Trainer evaluates right after this event
        return control

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict | None = None,
        **kwargs: Any,
    ) -> None:
        if not self._active:
            return
        # None: an evaluation of the user's schedule, between epochs (its rows are dropped).
        pending = self._recorder.pending
        seen = self._capture.end_evaluation(wanted=pending is not None)
        if seen is None:  # no batch of the indexed eval set (on every process alike)
            return
        index, predicted, finite = seen
        if len(index) != len(self.eval_dataset):
            raise RuntimeError(
                f"ProbeCallback: the evaluation after epoch {pending['epoch'] + 1} saw "
                f"{len(index)} of the {len(self.eval_dataset)} rows of eval_dataset"
            )
        try:
            self._recorder.record_validation(predicted, index, finite)
        except NonFiniteError as what:
            raise ProbeDivergedError(
                f"the Trainer's model diverged: {what} after epoch {pending['epoch'] + 1}; "
                f"nothing was written to {self.output_dir}"
            ) from None

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if not self._active:
            return
        self._stop_recording()
        recorder = self._recorder
        if recorder.pending is not None:
            raise RuntimeError(self._no_evaluation(recorder.pending["epoch"]))
        done, epochs = len(recorder.history[0]), recorder.epochs
        if done != epochs:
            raise RuntimeError(
                f"ProbeCallback: training stopped after {done} of {epochs} epochs "
                f"(early stopping?): the probe needs its whole schedule; nothing was written to "
                f"{self.output_dir}"
            )
        recorder.end_init()
        bad = recorder.non_finite()
        if bad:
            raise ProbeDivergedError(
                f"the Trainer's model diverged: NaN or infinite scores {bad}; nothing was "
                f"written to {self.output_dir}"
            )
        if state.is_world_process_zero:
            with atomic_output(
                self.output_dir, "probe", overwrite=self.overwrite, inputs=self._inputs()
            ) as tmp:
                alerts = recorder.write(tmp, self._record)
            for message in alerts:
                warnings.warn(message, ProbeWarning, stacklevel=2)
        # The Trainer keeps its callbacks (and the model the capture's pre-hook): let the
        # per-sample arrays go.
        self._recorder = None
        PartialState().wait_for_everyone()
        self.result_ = ProbeResult.load(self.output_dir)

    # --- bookkeeping --------------------------------------------------------------------------

    def _stop_recording(self) -> None:
        self._active = False
        self._capture.stop()

    def _record_epoch(self, epoch: int) -> None:
        """The epoch's rows, gathered from every process, to the recorder."""
        index, stats, embeddings = self._capture.end_epoch(epoch)
        try:
            self._recorder.record_batch(epoch, index, stats, embeddings)
        except NonFiniteError:
            raise ProbeDivergedError(
                f"the Trainer's model diverged in epoch {epoch + 1}: NaN or infinite training "
                f"loss or logits; nothing was written to {self.output_dir}"
            ) from None
        try:
            self._recorder.end_epoch(epoch)
        except RuntimeError as error:
            raise RuntimeError(
                f"ProbeCallback: the Trainer did not show every row of train_dataset in epoch "
                f"{epoch + 1} ({error}); a custom sampler or an IterableDataset cannot be probed"
            ) from None

    def _no_evaluation(self, epoch: int) -> str:
        return (
            f"ProbeCallback: the evaluation after epoch {epoch + 1} did not run on "
            "probe.eval_dataset: pass eval_dataset=probe.eval_dataset to the Trainer (and "
            "data_collator=probe.collator(...))"
        )

    def _inputs(self) -> list[Path]:
        return dataset_folders(self.train_dataset.dataset, self.eval_dataset.dataset)

    def _check_output(self, args: TrainingArguments) -> None:
        """Refused before any training (on every process; nothing is written)."""
        out = Path(os.path.realpath(self.output_dir))
        trainer_out = Path(os.path.realpath(args.output_dir)) if args.output_dir else None
        if trainer_out is not None and (out == trainer_out or trainer_out.is_relative_to(out)):
            raise ValueError(
                f"ProbeCallback output_dir {self.output_dir} holds the Trainer's output_dir "
                f"{args.output_dir} (its checkpoints): choose another folder for the probe"
            )
        prepare_output(
            self.output_dir,
            "probe",
            overwrite=self.overwrite,
            inputs=self._inputs(),
            what="ProbeCallback output_dir",
        )

    def _describe(self, args, model, epochs: int, score_epoch: int, loader) -> dict[str, Any]:
        """What ``probe_config.json`` records: the ProbeConfig fields that mean the same thing
        for a Trainer run, the Trainer's own settings under ``trainer``, and the data."""
        name = getattr(getattr(model, "config", None), "name_or_path", None) or ""
        per_process = args.per_device_train_batch_size
        accumulation = args.gradient_accumulation_steps
        steps = len(loader) if loader is not None and hasattr(loader, "__len__") else None
        trainer = {}
        for key in _TRAINER_ARGS:
            value = getattr(args, key, None)
            trainer[key] = (
                value
                if value is None or isinstance(value, (int, float))
                else str(getattr(value, "value", value))
            )
        return self._recorder.record(
            config={
                "model": name or type(model).__name__,
                "epochs": epochs,
                "batch_size": per_process,
                "global_batch_size": per_process * args.world_size * accumulation,
                "lr": args.learning_rate,
                "weight_decay": args.weight_decay,
                "num_inits": 1,
                "seed": args.seed,
                "score_epoch": self.score_epoch,
                "resolved_score_epoch": score_epoch,
                "du_window": self.du_window,
                "full_grand": False,
                "embeddings": self.embeddings,
                "class_errors_from": self.class_errors_from,
                "label_column": self.label_column,
                "trainer": trainer,
            },
            model={
                "name": name or type(model).__name__,
                "kind": "transformers" if hasattr(model, "config") else "torch",
                "pretrained": bool(name),
                "class": type(model).__name__,
            },
            processes=args.world_size,
            batch={
                "processes": args.world_size,
                "per_process_batch_size": per_process,
                "gradient_accumulation_steps": accumulation,
                "global_batch_size": per_process * args.world_size * accumulation,
                "steps_per_epoch": None if steps is None else math.ceil(steps / accumulation),
            },
            device=str(args.device),
            source=self.source,
            libraries=("torch", "accelerate", "datasets", "transformers", "numpy"),
        )


def _check_arguments(args: TrainingArguments) -> None:
    if args.remove_unused_columns:
        raise ValueError(
            "ProbeCallback needs TrainingArguments(remove_unused_columns=False): the Trainer "
            f"would drop the rows' {TRAIN_KEY!r} before the collator (a transform that reads "
            "the image column needs it too)"
        )
    if args.n_gpu > 1:
        raise ValueError(
            f"ProbeCallback cannot follow torch.nn.DataParallel ({args.n_gpu} GPUs in one "
            "process): launch one process per GPU (accelerate launch, torchrun)"
        )


def _head_or_none(model: torch.nn.Module, num_classes: int) -> torch.nn.Linear | None:
    try:
        return find_head(model, num_classes)
    except ValueError:
        return None
