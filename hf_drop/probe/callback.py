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

How: each batch carries its rows' indices under :data:`TRAIN_KEY` (or :data:`EVAL_KEY`); a
forward pre-hook on the model takes them out before the model sees them, and a forward hook
reads the logits (and the head's input, for last-layer GraNd). The per-sample statistics are
those of ``hf-drop probe`` (:func:`~hf_drop.probe.dynamics.batch_statistics`), from the same
training forward pass; they are gathered across processes once per epoch and kept by row index,
so that padding, gradient accumulation and the number of processes change nothing. After every
epoch the callback makes the Trainer evaluate and records per-class recall on the eval set.
"""

from __future__ import annotations

import math
import os
import warnings
import weakref
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any, Literal

import datasets
import numpy as np
import torch
from accelerate import PartialState
from accelerate.utils import gather_object
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.data.data_collator import default_data_collator

from ..io.environment import machine, versions
from ..io.outputs import atomic_output, dataset_folders, prepare_output
from ..modeling.models import _find_head
from .config import ProbeConfig
from .dynamics import Dynamics, batch_statistics
from .result import ProbeResult, write_result
from .run import (
    _CHECKED,
    ProbeDivergedError,
    ProbeWarning,
    _class_recall,
    _label_plan,
    _train_summary,
)

__all__ = ["EVAL_KEY", "TRAIN_KEY", "IndexedDataset", "ProbeCallback"]

# The batch keys that carry row indices; the model never sees them.
TRAIN_KEY = "hf_drop_index"
EVAL_KEY = "hf_drop_eval_index"
_KEYS = (TRAIN_KEY, EVAL_KEY)

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


class IndexedDataset(torch.utils.data.Dataset):
    """The rows of ``dataset`` (as it returns them, transform included), each a dict with its
    row position under ``key``: what the Trainer reads."""

    def __init__(self, dataset: datasets.Dataset, key: str) -> None:
        self.dataset = dataset
        self.key = key

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self._with_index(self.dataset[int(index)], int(index))

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        # One Arrow query (and one transform call) per batch, as datasets does for the Trainer.
        indices = [int(i) for i in indices]
        rows = self.dataset.__getitems__(indices)
        return [self._with_index(row, i) for row, i in zip(rows, indices, strict=True)]

    def _with_index(self, row: Any, index: int) -> dict[str, Any]:
        if not isinstance(row, Mapping):
            raise TypeError(
                f"ProbeCallback: row {index} of the dataset is a {type(row).__name__}, not a dict: "
                "the rows must be dicts (a datasets.Dataset, with or without a transform)"
            )
        return {**row, self.key: index}


class _IndexCollator:
    """``collate_fn`` on rows without the index keys, then the indices added as int64 tensors."""

    def __init__(self, collate_fn: Callable[[list], Any]) -> None:
        self.collate_fn = collate_fn

    def __call__(self, features: list[dict[str, Any]]) -> Any:
        keys = [
            k for k in _KEYS if features and isinstance(features[0], Mapping) and k in features[0]
        ]
        if not keys:
            return self.collate_fn(features)
        batch = self.collate_fn([{k: v for k, v in f.items() if k not in keys} for f in features])
        if not isinstance(batch, MutableMapping):
            raise TypeError(
                f"ProbeCallback: the collator returned a {type(batch).__name__}; it must return "
                "a dict of model inputs (as Trainer collators do)"
            )
        for key in keys:
            batch[key] = torch.tensor([f[key] for f in features], dtype=torch.int64)
        return batch


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
        self._plan = _label_plan(train_dataset, eval_dataset, label_column)
        self.train_dataset = IndexedDataset(train_dataset, TRAIN_KEY)
        self.eval_dataset = IndexedDataset(eval_dataset, EVAL_KEY)
        self.result_: ProbeResult | None = None
        self._hooked: weakref.WeakSet[torch.nn.Module] = weakref.WeakSet()
        self._recording: list[Any] = []  # hook handles while training
        self._active = False
        self._batch: tuple[str, torch.Tensor, Any] | None = None  # from the pre-hook
        self._features: torch.Tensor | None = None  # the head's input
        self._train_records: list[tuple] = []
        self._eval_records: list[tuple] = []

    def collator(self, collate_fn: Callable[[list], Any] | None = None) -> Callable[[list], Any]:
        """``collate_fn`` (default: ``transformers.default_data_collator``) that also carries
        the rows' indices, for ``Trainer(data_collator=...)``. ``collate_fn`` never sees them."""
        return _IndexCollator(collate_fn or default_data_collator)

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
            self._strip_indices(model)

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
        self._dynamics = Dynamics(len(self.train_dataset), epochs, score_epoch, self.du_window)
        self._train_ids = torch.tensor(self._plan.train_ids)  # moved to the batches' device
        self._epoch = 0
        self._history: list[dict[str, Any]] = []
        self._pending: dict[str, Any] | None = None  # the epoch awaiting its evaluation
        self._embeddings: np.ndarray | None = None
        self._record = self._describe(args, model, epochs, score_epoch, train_dataloader)
        self._strip_indices(model)
        self._head = _head_or_none(model, self._plan.num_classes)
        if self.embeddings and self._head is None:
            raise ValueError(
                f"embeddings=True needs a final nn.Linear with {self._plan.num_classes} "
                f"outputs (its input is the embedding); {type(model).__name__} has none"
            )
        self._recording = [model.register_forward_hook(self._after_forward)]
        if self._head is not None:
            self._recording.append(self._head.register_forward_hook(self._after_head))
        self._active = True

    def on_epoch_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self._active and self._pending is not None:
            raise RuntimeError(self._no_evaluation(self._pending["epoch"]))
        self._train_records = []

    def on_epoch_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> TrainerControl:
        if not self._active:
            return control
        epoch = self._epoch
        self._record_epoch(epoch)
        loss, accuracy = _train_summary(self._dynamics)
        self._pending = {"epoch": epoch, "train_loss": loss, "train_accuracy": accuracy}
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
        # Every process saw batches of the eval set, or none did (another eval dataset).
        if not self._active or not self._eval_records:
            return
        records, self._eval_records = self._eval_records, []
        if self._pending is None:  # an evaluation of the user's schedule, between epochs
            return
        index, predicted, finite = _gather(
            [torch.cat([r[k] for r in records]).cpu().numpy() for k in range(3)]
        )
        keep = _first_seen(np.zeros(len(index), np.int64), index)
        if len(keep) != len(self.eval_dataset):
            raise RuntimeError(
                f"ProbeCallback: the evaluation after epoch {self._pending['epoch'] + 1} saw "
                f"{len(keep)} of the {len(self.eval_dataset)} rows of eval_dataset"
            )
        if not finite[keep].all():
            raise ProbeDivergedError(
                f"the Trainer's model diverged: NaN or infinite validation logits for "
                f"{int((~finite[keep]).sum())} images after epoch {self._pending['epoch'] + 1}; "
                f"nothing was written to {self.output_dir}"
            )
        labels = self._plan.val_ids[index[keep]]
        recall = _class_recall(predicted[keep], labels, self._plan.num_classes)
        self._history.append({**self._pending, **recall})
        self._pending = None

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if not self._active:
            return
        self._stop_recording()
        epochs = self._dynamics.num_epochs
        if self._pending is not None:
            raise RuntimeError(self._no_evaluation(self._pending["epoch"]))
        if len(self._history) != epochs:
            raise RuntimeError(
                f"ProbeCallback: training stopped after {len(self._history)} of {epochs} epochs "
                f"(early stopping?): the probe needs its whole schedule; nothing was written to "
                f"{self.output_dir}"
            )
        scores = self._dynamics.scores()
        if self._head is None:
            del scores["grand"]  # no linear head: no last-layer GraNd
        bad = [name for name, values in scores.items() if not np.isfinite(values).all()]
        if bad:
            raise ProbeDivergedError(
                f"the Trainer's model diverged: NaN or infinite scores {bad}; nothing was "
                f"written to {self.output_dir}"
            )
        if state.is_world_process_zero:
            with atomic_output(
                self.output_dir, "probe", overwrite=self.overwrite, inputs=self._inputs()
            ) as tmp:
                alerts = write_result(
                    tmp,
                    scores=scores,
                    labels=self._plan.train_ids,
                    names=self._plan.names,
                    history=[self._history],
                    class_errors_from=self.class_errors_from,
                    record=self._record,
                    embeddings=self._embeddings,
                )
            for message in alerts:
                warnings.warn(message, ProbeWarning, stacklevel=2)
        # The model's pre-hook keeps this callback alive: let the per-sample arrays go.
        self._dynamics = self._embeddings = self._train_ids = None
        PartialState().wait_for_everyone()
        self.result_ = ProbeResult.load(self.output_dir)

    # --- hooks ------------------------------------------------------------------------------------

    def _stop_recording(self) -> None:
        self._active = False
        for handle in self._recording:
            handle.remove()
        self._recording = []
        self._batch = self._features = None

    def _strip_indices(self, model: torch.nn.Module) -> None:
        """The pre-hook that takes the index keys out of the model's inputs; kept for the model's
        life, so that later ``trainer.evaluate``/``predict`` on the indexed datasets work too."""
        if model not in self._hooked:
            model.register_forward_pre_hook(self._before_forward, with_kwargs=True)
            self._hooked.add(model)

    def _before_forward(self, module, args, kwargs):
        found = [key for key in _KEYS if key in kwargs]
        if not found:
            return None
        index = {key: kwargs.pop(key) for key in found}
        if self._active:
            kind = TRAIN_KEY if TRAIN_KEY in index else EVAL_KEY
            self._batch = (kind, index[kind], kwargs.get("labels"))
        return args, kwargs

    def _after_head(self, module, inputs, output) -> None:
        if self._batch is not None and inputs:
            self._features = inputs[0]

    @torch.no_grad()
    def _after_forward(self, module, inputs, output) -> None:
        batch, features = self._batch, self._features
        self._batch = self._features = None
        if batch is None:
            if module.training:
                raise RuntimeError(
                    f"ProbeCallback: a training batch without {TRAIN_KEY!r}: pass "
                    "train_dataset=probe.train_dataset and data_collator=probe.collator(...) to "
                    "the Trainer, with TrainingArguments(remove_unused_columns=False)"
                )
            return
        kind, index, labels = batch
        logits = _logits(output, len(index))
        if logits.shape[-1] != self._plan.num_classes:
            raise ValueError(
                f"ProbeCallback: the model gives {logits.shape[-1]} logits per sample, and "
                f"{self.label_column!r} has {self._plan.num_classes} classes"
            )
        if kind == EVAL_KEY and not module.training:
            finite = torch.isfinite(logits).all(-1)
            self._eval_records.append((index, logits.argmax(-1), finite))
        elif kind == TRAIN_KEY and module.training:
            if self._train_ids.device != index.device:
                self._train_ids = self._train_ids.to(index.device)
            ids = self._train_ids[index]
            if self._head is not None and features is None:
                raise RuntimeError(
                    f"ProbeCallback: the model's final linear layer ({self._head}) did not run in "
                    "the forward pass: last-layer GraNd cannot be computed"
                )
            stats = batch_statistics(logits, ids.to(logits.device), features)
            if not (
                isinstance(labels, torch.Tensor)
                and labels.shape == index.shape
                and not labels.is_floating_point()
            ):
                labels = torch.full_like(index, -1)  # none to check (e.g. popped for the loss)
            embedding = None
            if self.embeddings and self._epoch == self._dynamics.num_epochs - 1:
                embedding = features.detach().flatten(1).half().cpu()
            step = len(self._train_records)
            self._train_records.append((step, index, stats, labels.long(), embedding))

    # --- bookkeeping --------------------------------------------------------------------------

    def _record_epoch(self, epoch: int) -> None:
        """Gather the epoch's statistics from every process and hand them to the dynamics."""
        records = self._train_records
        self._train_records = []
        if not records:
            raise RuntimeError(
                f"ProbeCallback: epoch {epoch + 1} recorded no training batch: pass "
                "train_dataset=probe.train_dataset to the Trainer"
            )
        local = [
            np.concatenate([np.full(len(r[1]), r[0], np.int64) for r in records]),
            *(torch.cat([r[k] for r in records]).cpu().numpy() for k in (1, 2, 3)),
        ]
        if records[0][4] is not None:
            local.append(torch.cat([r[4] for r in records]).numpy())
        step, index, stats, labels, *features = _gather(local)
        keep = _first_seen(step, index)  # padding repeats rows already seen: the first counts
        index, stats, labels = index[keep], stats[keep], labels[keep]
        expected = self._plan.train_ids[index]
        wrong = (labels >= 0) & (labels != expected)
        if wrong.any():
            rows = index[wrong][:5].tolist()
            raise ValueError(
                f"ProbeCallback: the batches' labels differ from column {self.label_column!r} of "
                f"train_dataset at rows {rows} (labels {labels[wrong][:5].tolist()}, column "
                f"{expected[wrong][:5].tolist()}): the model must use the column's class ids"
            )
        if not np.isfinite(stats[:, _CHECKED]).all():
            raise ProbeDivergedError(
                f"the Trainer's model diverged in epoch {epoch + 1}: NaN or infinite training "
                f"loss or logits; nothing was written to {self.output_dir}"
            )
        self._dynamics.update(epoch, index, stats)
        try:
            self._dynamics.end_epoch(epoch)
        except RuntimeError as error:
            raise RuntimeError(
                f"ProbeCallback: the Trainer did not show every row of train_dataset in epoch "
                f"{epoch + 1} ({error}); a custom sampler or an IterableDataset cannot be probed"
            ) from None
        if features:
            if self._embeddings is None:
                self._embeddings = np.zeros(
                    (len(self.train_dataset), features[0].shape[1]), np.float16
                )
            self._embeddings[index] = features[0][keep]

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
        return {
            "config": {
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
            "model": {
                "name": name or type(model).__name__,
                "kind": "transformers" if hasattr(model, "config") else "torch",
                "pretrained": bool(name),
                "class": type(model).__name__,
            },
            "processes": args.world_size,
            "batch": {
                "processes": args.world_size,
                "per_process_batch_size": per_process,
                "gradient_accumulation_steps": accumulation,
                "global_batch_size": per_process * args.world_size * accumulation,
                "steps_per_epoch": None if steps is None else math.ceil(steps / accumulation),
            },
            "device": str(args.device),
            "source": {
                **self.source,
                "fingerprint": self.train_dataset.dataset._fingerprint,
                **self._plan.identity["train"],
            },
            "validation": self._plan.identity["validation"],
            "versions": versions("torch", "accelerate", "datasets", "transformers", "numpy"),
            "machine": machine(),
        }


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
        return _find_head(model, num_classes)
    except ValueError:
        return None


def _logits(output: Any, batch_size: int) -> torch.Tensor:
    """The logits in a model's output: a tensor, ``output.logits``/``["logits"]``, or the first
    (batch, classes) tensor of a tuple."""
    if isinstance(output, Mapping) and "logits" in output:
        return output["logits"]
    if isinstance(output, torch.Tensor):
        candidates = [output]
    elif isinstance(output, (tuple, list)):
        candidates = list(output)
    else:
        candidates = []
    for value in candidates:
        if isinstance(value, torch.Tensor) and value.ndim == 2 and len(value) == batch_size:
            return value
    raise TypeError(
        f"ProbeCallback: no (batch, classes) logits in the model's output "
        f"({type(output).__name__}); the model must return logits, or an output with .logits"
    )


def _gather(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Each array concatenated over the processes, in process order."""
    if PartialState().num_processes == 1:
        return arrays
    parts = gather_object([arrays])
    return [np.concatenate([part[k] for part in parts]) for k in range(len(arrays))]


def _first_seen(step: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Positions of each row's first record (by step, then process), in row order."""
    order = np.argsort(step, kind="stable")
    _, first = np.unique(index[order], return_index=True)
    return order[first]
