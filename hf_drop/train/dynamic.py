"""DRoP while you train: every epoch trains on a fresh sample of the training set whose class
counts follow the class errors of the evaluations so far (Algorithm 1 of Vysogorets et al., ICLR
2025, with hf-drop's robust default), inside any ``transformers.Trainer``::

    drop = DynamicDRoPCallback(train, density=0.5)
    trainer = Trainer(model=model, args=args, train_dataset=rows, eval_dataset=val_rows, ...)
    drop.attach(trainer)      # its sampler, its callback, per-class errors from each evaluation
    trainer.train()

Each epoch keeps ``budget(N, density)`` rows: the first epoch in the data's own proportions (no
error is known yet), then the quota rule's counts from the errors of the evaluations after the
previous epochs, smoothed and shrunk by their support (as ``DRoPFilter`` does), random within
each class, seeded by ``(seed, epoch)`` so that every process of an ``accelerate launch`` draws
the same rows. Optionally, the last ``anneal`` share of the epochs goes back to the data's own
proportions.

Why the errors are smoothed: a model's class bias follows the class proportions of the epoch it
last trained on, so the errors right after a DRoP epoch understate the classes it favoured and
overstate the others; quotas from them alone swing from epoch to epoch (measured: Shirt 719
rows in one epoch, 204 in the next). ``smoothing`` averages each class's error over the
evaluations so far, weighing the older ones by ``smoothing`` per epoch of age.

Within each class the rows are random, or (``within="loss"``, :mod:`hf_drop.train.losses`)
chosen by their last training loss as InfoBatch does: hard rows first, the rest of the quota
from the well-learned ones at random, optionally with their losses scaled up (``rescale``).
With ``quota="global"`` that is InfoBatch's class-blind choice, the baseline.

Why every epoch has one length: the Trainer plans its learning-rate schedule, its step-based
logging and saving, and where a resumed run starts, from the length of an epoch. Annealing on
the full data (as InfoBatch does) would change that length; here it restores the class
proportions instead, at the same cost.

Per epoch, the quotas, kept rows, errors and sample-passes go to the Trainer's logs
(``drop/...``), to ``dynamic_drop.json`` in every checkpoint (a resumed run reads it back) and
in ``output_dir`` at the end. :meth:`DynamicDRoPCallback.static_filter` turns the last
evaluation's errors into a ``DRoPFilter``: the static subset they give.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from numpy.typing import NDArray
from torch.utils.data import Sampler
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from ..core import rules as R
from ..core.quotas import budget, proportional_quotas
from ..core.selection import global_random, random_within_class
from ..core.uncertainty import class_errors_from_predictions, shrink_errors
from ..data.columns import read_labels
from ..io.logs import is_main_process
from ..io.outputs import atomic_file
from .losses import FetchedRows, LossChoice, choose_by_loss, per_sample_loss

__all__ = ["LOSSES_FILE", "RECORD_FILE", "DynamicDRoPCallback", "DynamicDRoPSampler"]

RECORD_FILE = "dynamic_drop.json"
LOSSES_FILE = "dynamic_drop_losses.npz"  # within="loss": beside the record in a checkpoint


class DynamicDRoPSampler(Sampler[int]):
    """The rows of the current epoch, in a seeded order: ``plan(epoch, counts)`` sets them (per
    class counts, or None for a class-blind sample of the same size). The same on every process,
    given the same seed, epoch and counts."""

    def __init__(self, labels: NDArray[np.int64], size: int, seed: int) -> None:
        self.labels = labels
        self.size = size
        self.seed = seed
        self.rows: NDArray[np.int64] = np.arange(0)

    def plan(
        self,
        epoch: int,
        counts: NDArray[np.int64] | None,
        choose: Callable[[NDArray[np.int64] | None, np.random.Generator], NDArray] | None = None,
    ) -> NDArray[np.int64]:
        """Choose epoch ``epoch``'s rows (shuffled); returns them. ``choose(counts, rng)``
        picks them instead of at random (a loss-ranked choice)."""
        rng = np.random.default_rng([self.seed, epoch])
        if choose is not None:
            chosen = choose(counts, rng)
        elif counts is None:
            chosen = global_random(len(self.labels), self.size, seed=rng)
        else:
            chosen = random_within_class(self.labels, counts, seed=rng)
        self.rows = rng.permutation(chosen)
        return self.rows

    def __iter__(self):
        return iter(self.rows.tolist())

    def __len__(self) -> int:
        return self.size


class DynamicDRoPCallback(TrainerCallback):
    """Dynamic DRoP for a ``transformers.Trainer``: :meth:`attach` it to the Trainer.

    Args:
        train_dataset: the Trainer's training rows, as a ``datasets.Dataset`` with a label
            column (the Trainer may train on a transformed view of it, row for row).
        density: fraction of the training set each epoch trains on, in (0, 1].
        quota: the class-count rule (:mod:`hf_drop.core.rules`: object, name or spec):
            ``"drop"`` (robust DRoP, default), ``"drop_paper"``, ``"proportional"``,
            ``"uniform"``, or ``"global"`` (a class-blind random sample: the Random baseline).
        label_column: the label column of ``train_dataset``.
        anneal: the share of the last epochs trained on the data's own class proportions
            (default 0: measured, annealing undid the rebalancing; see the evidence page).
        smoothing: the weight of the past in each class's error, in [0, 1): the quotas use
            ``e_t = smoothing * e_(t-1) + (1 - smoothing) * error_t``; 0: the last evaluation
            alone (default 0.5: measured, it ended the swings of the quotas).
        min_per_class: every class keeps at least this many rows per epoch.
        seed: seed of every epoch's sample.
        within: ``"random"`` rows within each class, or ``"loss"``: InfoBatch's choice by the
            rows' last training loss (:mod:`hf_drop.train.losses`): hard rows first, then
            well-learned ones at random; with ``quota="global"``, InfoBatch's class-blind one.
            Needs ``dataloader_num_workers=0`` and a classifier's logits.
        rescale: with ``within="loss"``, a kept well-learned row's loss weighs the inverse of
            its chance to be kept (InfoBatch's rescaling; the training loss becomes the batch
            mean of the weighted per-row cross-entropy).
    """

    def __init__(
        self,
        train_dataset: datasets.Dataset,
        density: float,
        *,
        quota: Any = "drop",
        label_column: str = "label",
        anneal: float = 0.0,
        smoothing: float = 0.5,
        min_per_class: int = 1,
        seed: int = 0,
        within: str = "random",
        rescale: bool = False,
    ) -> None:
        if isinstance(train_dataset, datasets.IterableDataset):
            raise TypeError(
                "train_dataset is an IterableDataset: dynamic DRoP samples rows by class every "
                "epoch and needs a map-style datasets.Dataset (prune a stream with DRoPFilter)"
            )
        if not isinstance(train_dataset, datasets.Dataset):
            raise TypeError(f"train_dataset must be a datasets.Dataset, got {type(train_dataset)}")
        if isinstance(density, bool) or not 0.0 < float(density) <= 1.0:
            raise ValueError(f"density must lie in (0, 1], got {density!r}")
        if isinstance(anneal, bool) or not 0.0 <= float(anneal) < 1.0:
            raise ValueError(f"anneal must lie in [0, 1), got {anneal!r}")
        if isinstance(smoothing, bool) or not 0.0 <= float(smoothing) < 1.0:
            raise ValueError(f"smoothing must lie in [0, 1), got {smoothing!r}")
        if isinstance(min_per_class, bool) or not isinstance(min_per_class, int | np.integer):
            raise ValueError(f"min_per_class must be an int >= 0, got {min_per_class!r}")
        if min_per_class < 0:
            raise ValueError(f"min_per_class must be an int >= 0, got {min_per_class!r}")
        if within not in ("random", "loss"):
            raise ValueError(f"within must be 'random' or 'loss', got {within!r}")
        if not isinstance(rescale, bool):
            raise ValueError(f"rescale must be True or False, got {rescale!r}")
        if rescale and within != "loss":
            raise ValueError(
                "rescale weighs rows by their chance to be kept: it needs within='loss'"
            )
        labels = read_labels(train_dataset, label_column)
        self.labels = labels.ids
        self.class_names = list(labels.names)
        self.sizes = np.bincount(self.labels, minlength=len(self.class_names))
        self.density = float(density)
        self.rule = R.quota_rule(quota)
        if self.rule.from_selection:
            raise ValueError(f"quota={self.rule.name!r} needs a score: use drop, drop_paper, "
                             "proportional, uniform or global")  # fmt: skip
        self.anneal = float(anneal)
        self.smoothing = float(smoothing)
        self.min_per_class = int(min_per_class)
        self.seed = int(seed)
        self.size = budget(len(self.labels), self.density)
        self.sampler = DynamicDRoPSampler(self.labels, self.size, self.seed)
        self.within = within
        self.rescale = rescale
        # within="loss": each row's last training loss (NaN: not trained on yet), the losses of
        # the epoch in progress (this process's), and the loss weight of each row this epoch.
        self.losses = np.full(len(self.labels), np.nan)
        self._pending: list[tuple[NDArray[np.int64], NDArray[np.float32]]] = []
        self.weights = np.ones(len(self.labels))
        self._fetched: FetchedRows | None = None
        self._choice: LossChoice | None = None  # the last epoch's choice by loss
        self.history: list[dict[str, Any]] = []  # one entry per epoch planned
        self._errors: dict[str, Any] | None = None  # the last evaluation's, for the next epoch
        self._fresh = False  # an evaluation went through compute_metrics since the last one
        self._training = False
        self._steps_per_epoch = 0
        self._epochs = 0

    # -- wiring ------------------------------------------------------------------------------

    def attach(self, trainer: Trainer) -> Trainer:
        """Make ``trainer`` sample through this callback: its training sampler, this callback,
        and per-class errors read from every evaluation (its own ``compute_metrics`` still
        runs). Refuses a trainer without an evaluation set or with another training set size."""
        if trainer.eval_dataset is None:
            raise ValueError(
                "dynamic DRoP needs an evaluation set (eval_dataset): its class errors set each "
                "epoch's quotas"
            )
        if isinstance(trainer.eval_dataset, dict):
            raise ValueError("dynamic DRoP reads one evaluation set; got a dict of several")
        rows = trainer.train_dataset
        if rows is None or not hasattr(rows, "__len__") or len(rows) != len(self.labels):
            length = len(rows) if rows is not None and hasattr(rows, "__len__") else None
            raise ValueError(
                f"the trainer's train_dataset has {length} rows, but the callback was built on "
                f"{len(self.labels)}: give it the very rows the trainer trains on"
            )
        if self.within == "loss":
            self._follow_losses(trainer)
        trainer._get_train_sampler = lambda *args, **kwargs: self.sampler  # type: ignore[method-assign]
        trainer.compute_metrics = self.compute_metrics(trainer.compute_metrics)
        # First in line: its log entries reach the reporters (printer, tensorboard, ...) after it.
        trainer.callback_handler.callbacks.insert(0, self)
        return trainer

    def _follow_losses(self, trainer: Trainer) -> None:
        """within="loss": the training set noting which rows each process fetches, and a
        ``compute_loss`` that records each row's loss (and weighs it, with ``rescale``)."""
        if trainer.args.dataloader_num_workers:
            raise ValueError(
                "within='loss' matches each training loss to its row in this process: set "
                f"dataloader_num_workers=0 (it is {trainer.args.dataloader_num_workers})"
            )
        if self.rescale and trainer.args.label_smoothing_factor:
            raise ValueError("rescale recomputes the loss as plain cross-entropy: it cannot "
                             "keep label_smoothing_factor; set it to 0")  # fmt: skip
        if self.rescale and getattr(trainer, "compute_loss_func", None) is not None:
            raise ValueError("rescale recomputes the loss as plain cross-entropy: it would "
                             "replace your compute_loss_func; drop rescale or it")  # fmt: skip
        if self.rescale and getattr(trainer, "model_accepts_loss_kwargs", False):
            raise ValueError("rescale needs a model whose loss is a batch mean (an image "
                             "classifier); this model takes loss arguments")  # fmt: skip
        fetched = FetchedRows(trainer.train_dataset)
        self._fetched = fetched
        trainer.train_dataset = fetched
        inner = trainer.compute_loss
        label_name = (trainer.label_names or ["labels"])[0]

        def compute_loss(model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         **kwargs: Any) -> Any:  # fmt: skip
            if not model.training:  # an evaluation: as it was
                return inner(model, inputs, return_outputs=return_outputs, **kwargs)
            loss, outputs = inner(model, inputs, return_outputs=True, **kwargs)
            labels = inputs[label_name]
            per_row = per_sample_loss(outputs, labels)
            rows = fetched.take(len(labels))
            self._pending.append((rows, per_row.detach().float().cpu().numpy()))
            if self.rescale:
                weights = torch.as_tensor(self.weights[rows], device=per_row.device)
                loss = (weights.to(per_row.dtype) * per_row).mean()
            return (loss, outputs) if return_outputs else loss

        trainer.compute_loss = compute_loss  # type: ignore[method-assign]

    def _merge_losses(self) -> None:
        """This epoch's losses of every process into ``losses`` (the same on every process)."""
        pending, self._pending = self._gathered(), []
        for rows, values in pending:
            self.losses[rows] = values

    def _gathered(self) -> list[tuple[NDArray[np.int64], NDArray[np.float32]]]:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            from accelerate.utils import gather_object

            return list(gather_object(list(self._pending)))
        return list(self._pending)

    def compute_metrics(
        self, inner: Callable[[Any], dict[str, float]] | None = None
    ) -> Callable[[Any], dict[str, float]]:
        """A ``compute_metrics`` that records each class's mistakes and support on the
        evaluation set, then returns ``inner``'s metrics (or none)."""

        def compute(prediction: Any) -> dict[str, float]:
            if not self._training:  # a prediction after training: nothing to steer
                return dict(inner(prediction)) if inner is not None else {}
            outputs = prediction.predictions
            outputs = np.asarray(outputs[0] if isinstance(outputs, tuple) else outputs)
            labels = prediction.label_ids
            labels = np.asarray(labels[0] if isinstance(labels, tuple) else labels)
            # Logits (argmax) or class ids, checked against the training set's classes.
            k = len(self.class_names)
            if outputs.ndim == 2:
                measured = class_errors_from_predictions(labels, logits=outputs, num_classes=k)
            else:
                measured = class_errors_from_predictions(labels, outputs, num_classes=k)
            support, mistakes = measured.support, measured.mistakes
            missing = [
                self.class_names[c] for c in np.flatnonzero((support == 0) & (self.sizes > 0))
            ]
            if missing:
                raise ValueError(
                    f"the evaluation set has no row of class(es) {missing}, which the training "
                    "set has: dynamic DRoP cannot measure their error; use an evaluation set "
                    "with every class"
                )
            rates = mistakes / np.maximum(support, 1)
            if self._errors is not None and self.smoothing > 0:
                previous = np.asarray(self._errors["smoothed"])
                rates = self.smoothing * previous + (1 - self.smoothing) * rates
            self._errors = {
                "mistakes": mistakes.tolist(),
                "support": support.tolist(),
                "smoothed": [float(r) for r in rates],
            }
            self._fresh = True
            return dict(inner(prediction)) if inner is not None else {}

        return compute

    # -- the Trainer's events ----------------------------------------------------------------

    def on_train_begin(self, args: TrainingArguments, state: TrainerState,
                       control: TrainerControl, **kwargs: Any) -> None:  # fmt: skip
        if args.max_steps > 0:
            raise ValueError("dynamic DRoP plans by epochs: set num_train_epochs, not max_steps")
        if args.num_train_epochs != int(args.num_train_epochs):
            raise ValueError(f"num_train_epochs must be whole, got {args.num_train_epochs}")
        self._epochs = int(args.num_train_epochs)
        self._training = True
        self._steps_per_epoch = math.ceil(state.max_steps / self._epochs)
        loader = kwargs.get("train_dataloader")
        if loader is not None and _sampler_of(loader) is not self.sampler:
            raise ValueError(
                "the Trainer does not sample through this callback: call "
                "DynamicDRoPCallback.attach(trainer) instead of passing it in callbacks="
            )
        if state.global_step > 0:
            self._resume(Path(str(args.output_dir)) / f"checkpoint-{state.global_step}")

    def on_epoch_begin(self, args: TrainingArguments, state: TrainerState,
                       control: TrainerControl, **kwargs: Any) -> None:  # fmt: skip
        epoch = state.global_step // self._steps_per_epoch
        planned = {entry["epoch"]: entry for entry in self.history}
        if epoch in planned:  # a resumed epoch: the very rows it began with
            counts = planned[epoch]["quotas"]
            counts = None if counts is None else np.asarray(counts)
            self.sampler.plan(epoch, counts, self._by_loss())
            return
        entry = self._plan(epoch)
        self.history.append(entry)

    def on_epoch_end(self, args: TrainingArguments, state: TrainerState,
                     control: TrainerControl, **kwargs: Any) -> None:  # fmt: skip
        control.should_evaluate = True  # the next epoch's quotas need this epoch's errors
        if self.within == "loss":
            self._merge_losses()

    def on_evaluate(self, args: TrainingArguments, state: TrainerState,
                    control: TrainerControl, **kwargs: Any) -> None:  # fmt: skip
        if not self._fresh:
            raise RuntimeError(
                "the evaluation gave no class errors: attach the callback with "
                "DynamicDRoPCallback.attach(trainer), which wraps compute_metrics"
            )
        self._fresh = False
        if self.history and self._errors is not None:
            self.history[-1]["errors_after"] = dict(self._errors)

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, float] | None = None, **kwargs: Any) -> None:  # fmt: skip
        if logs is None or not self.history or "loss" not in logs:
            return  # the training logs only (not the evaluation's)
        last = self.history[-1]
        ours = {
            "drop/kept": float(last["kept"]),
            "drop/sample_passes": float(last["sample_passes"]),
        }
        logs.update(ours)  # first in the handler: every reporter after it sees them
        if state.log_history and state.log_history[-1].get("step") == state.global_step:
            state.log_history[-1].update(ours)  # the Trainer stored its copy before this event

    def on_save(self, args: TrainingArguments, state: TrainerState,
                control: TrainerControl, **kwargs: Any) -> None:  # fmt: skip
        folder = Path(str(args.output_dir)) / f"checkpoint-{state.global_step}"
        # Every process gathers (a collective); the main one writes. Mid-epoch, the losses so
        # far go with the ones the epoch was planned on, so a resumed run ends it alike.
        pending = self._gathered() if self.within == "loss" else []
        if is_main_process() and folder.is_dir():
            self._write(folder / RECORD_FILE)
            if self.within == "loss":
                self._write_losses(folder / LOSSES_FILE, pending)

    def on_train_end(self, args: TrainingArguments, state: TrainerState,
                     control: TrainerControl, **kwargs: Any) -> None:  # fmt: skip
        self._training = False
        if is_main_process():
            Path(str(args.output_dir)).mkdir(parents=True, exist_ok=True)
            self._write(Path(str(args.output_dir)) / RECORD_FILE)

    # -- the plan ------------------------------------------------------------------------------

    @property
    def settings(self) -> dict[str, Any]:
        """What a record needs to say how the epochs were sampled."""
        return {
            "density": self.density,
            "quota": self.rule.spec(full=True),
            "anneal": self.anneal,
            "smoothing": self.smoothing,
            "min_per_class": self.min_per_class,
            "seed": self.seed,
            "within": self.within,
            "rescale": self.rescale,
            "rows_per_epoch": self.size,
            "train_rows": len(self.labels),
        }

    def static_filter(self) -> Any:
        """A ``DRoPFilter`` (unfitted) with this run's rule, density and seed, on the class errors
        of the last evaluation: the static subset those errors give, to ``fit``, ``apply`` and
        export with its card like any other (``hf_drop.hub.export``)."""
        from ..pruning.filter import DRoPFilter

        errors = self._errors
        if errors is None:
            raise ValueError("no evaluation yet: train first (the filter needs class errors)")
        support = np.asarray(errors["support"], dtype=np.float64)
        return DRoPFilter(
            self.density,
            class_errors=np.asarray(errors["smoothed"]),
            class_support=support,
            quota=self.rule,
            min_per_class=self.min_per_class,
            seed=self.seed,
        )

    def record(self) -> dict[str, Any]:
        """The settings and every epoch's plan: quotas, kept rows, errors, sample-passes."""
        passes = sum(e["kept"] for e in self.history)
        return {
            "format_version": 1,
            "settings": self.settings,
            "class_names": self.class_names,
            "epochs": self.history,
            "sample_passes": passes,
            "full_data_sample_passes": len(self.labels) * len(self.history),
        }

    def _plan(self, epoch: int) -> dict[str, Any]:
        """Epoch ``epoch``'s counts (None: class-blind), chosen rows and its history entry."""
        annealed = epoch >= self._epochs - round(self.anneal * self._epochs)
        errors = self._errors
        counts: NDArray[np.int64] | None
        if self.rule.class_blind:
            how = "random sample" if self.within == "random" else "choice by loss"
            counts, why = None, f"class-blind {how}"
        elif annealed:
            counts, why = self._proportional(), "annealing: the data's own proportions"
        elif not self.rule.needs_errors:
            counts, why = self._counts(None), self.rule.name
        elif errors is None:
            counts, why = self._proportional(), "no evaluation yet: the data's own proportions"
        else:
            counts, why = self._counts(errors), f"{self.rule.name} on the last evaluation"
        self._choice = None
        rows = self.sampler.plan(epoch, counts, self._by_loss())
        before = self.history[-1]["sample_passes"] if self.history else 0
        entry = {
            "epoch": epoch,
            "quotas": None if counts is None else [int(c) for c in counts],
            "kept": len(rows),
            "why": why,
            "errors_before": None if errors is None else dict(errors),
            "sample_passes": before + len(rows),
        }
        if self._choice is not None:  # per class (or one group): hard and well-learned rows
            entry["hard_rows"] = self._choice.hard
            entry["well_learned_rows"] = self._choice.well_learned
        return entry

    def _by_loss(self) -> Callable[[NDArray[np.int64] | None, np.random.Generator], NDArray] | None:
        """within="loss": the sampler's choice by the losses so far (it sets ``weights``)."""
        if self.within != "loss":
            return None

        def choose(counts: NDArray[np.int64] | None, rng: np.random.Generator) -> NDArray:
            if counts is None:  # class-blind: one group, the whole set
                groups, counts = np.zeros(len(self.labels), np.int64), np.array([self.size])
            else:
                groups = self.labels
            choice = choose_by_loss(groups, counts, self.losses, rng)
            self.weights = choice.weights
            self._choice = choice
            return choice.rows

        return choose

    def _proportional(self) -> NDArray[np.int64]:
        return proportional_quotas(self.sizes, self.density, min_per_class=self.min_per_class)

    def _counts(self, errors: dict[str, Any] | None) -> NDArray[np.int64]:
        used = None
        if errors is not None:
            support = np.asarray(errors["support"], dtype=np.float64)
            rates = np.asarray(errors["smoothed"], dtype=np.float64)
            used = shrink_errors(rates, support)[0] if self.rule.shrinks_errors else rates
        inputs = R.QuotaInputs(self.sizes, self.density, used, self.min_per_class, self.class_names)
        counts = np.asarray(self.rule.counts(inputs), dtype=np.int64)
        assert counts.sum() == self.size, (counts.sum(), self.size)
        return counts

    def _write(self, path: Path) -> None:
        # Complete or absent; each save replaces the record this callback wrote before.
        with atomic_file(path, overwrite=True, what="dynamic DRoP record") as tmp:
            tmp.write_text(json.dumps(self.record(), indent=1) + "\n")

    def _resume(self, checkpoint: Path) -> None:
        path = checkpoint / RECORD_FILE
        if not path.exists():
            raise FileNotFoundError(
                f"resuming at step {checkpoint.name.split('-')[-1]}, but {path} does not exist: "
                "resume from a checkpoint that dynamic DRoP saved, in this output_dir"
            )
        record = json.loads(path.read_text())
        # A record from before within/rescale existed sampled at random, unweighted.
        if {"within": "random", "rescale": False, **record["settings"]} != self.settings:
            raise ValueError(
                f"{path} was written with other settings ({record['settings']}) than this "
                f"callback's ({self.settings}): resume with the same ones"
            )
        self.history = record["epochs"]
        last = self.history[-1] if self.history else {}
        # Saved after an epoch's evaluation: its errors; mid-epoch: the ones it was planned on
        # (the next evaluation smooths with them, as the uninterrupted run's did).
        self._errors = last.get("errors_after", last.get("errors_before"))
        if self.within == "loss":
            self._read_losses(checkpoint / LOSSES_FILE)

    def _write_losses(self, path: Path, pending: list) -> None:
        rows = [r for r, _ in pending]
        values = [v for _, v in pending]
        with atomic_file(path, overwrite=True, what="dynamic DRoP losses") as tmp:
            with tmp.open("wb") as f:
                np.savez(
                    f,
                    planned_on=self.losses,
                    rows=np.concatenate(rows) if rows else np.zeros(0, np.int64),
                    values=np.concatenate(values) if values else np.zeros(0, np.float32),
                )

    def _read_losses(self, path: Path) -> None:
        """The losses the resumed epoch was planned on, and those of its steps before the
        checkpoint (merged at its end, as the uninterrupted run did)."""
        if not path.exists():
            raise FileNotFoundError(
                f"resuming within='loss', but {path} does not exist: resume from a checkpoint "
                "that dynamic DRoP with within='loss' saved"
            )
        with np.load(path) as saved:
            self.losses = saved["planned_on"].astype(np.float64)
            self._pending = [(saved["rows"].astype(np.int64), saved["values"])]


def _sampler_of(loader: Any) -> Any:
    """The sampler under a DataLoader, through accelerate's shard wrappers."""
    batches = getattr(loader, "batch_sampler", None)
    while batches is not None and not hasattr(batches, "sampler"):
        batches = getattr(batches, "batch_sampler", None)
    sampler = getattr(batches, "sampler", None) if batches is not None else None
    return sampler if sampler is not None else getattr(loader, "sampler", None)
