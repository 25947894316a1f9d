"""What a probe records, whichever loop trains the model: the per-sample dynamics, the class
(and group) errors on the validation split, and the result folder with its record.

Two loops drive it, :func:`hf_drop.probe.run_probe` (Accelerate) and
:class:`hf_drop.probe.ProbeCallback` (a user's ``transformers.Trainer``), in the same order::

    labels = ProbeLabels.read(train, val, "label")    # every label error before training
    recorder = ProbeRecorder(labels, epochs=10, score_epoch=1, du_window=10)
    for init in range(recorder.num_inits):
        recorder.start_init(init)
        for epoch in range(10):
            for batch in ...:  # train a step; its rows' statistics, gathered from every process
                recorder.record_batch(epoch, index, stats)  # stats: batch_statistics(...)
            recorder.end_epoch(epoch)
            recorder.record_validation(predictions, rows)  # rows: validation row indices
        recorder.end_init()
    recorder.write(folder, recorder.record(config=..., model=..., ...))

The loop gathers across processes (every process then holds the same values and records the
same, so a non-finite value stops them all alike); the recorder is plain numpy, keyed by row index.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import datasets
import numpy as np
from numpy.typing import NDArray

from ..core.notices import HfDropWarning
from ..data.columns import Labels, dataset_identity, read_labels
from ..io.environment import machine, versions
from .dynamics import STATISTICS, Dynamics
from .result import write_result

__all__ = [
    "NonFiniteError",
    "ProbeDivergedError",
    "ProbeLabels",
    "ProbeRecorder",
    "ProbeWarning",
    "class_recall",
]


class ProbeDivergedError(ValueError, FloatingPointError):
    """The probe's loss, logits or scores became NaN or infinite: nothing was recorded."""


class ProbeWarning(HfDropWarning):
    """A finished probe whose class errors are suspect: near-chance accuracy, a class never
    predicted. Also recorded in ``class_metrics.json`` under ``"warnings"``."""


class NonFiniteError(ArithmeticError):
    """A NaN or infinite value in what was just recorded; the loop says where, as a
    :class:`ProbeDivergedError`."""


# Statistics that must be finite in every batch: a margin may be infinite with one class, and
# NaN logits make the loss NaN anyway.
_CHECKED = [k for k, name in enumerate(STATISTICS) if name != "margin"]


@dataclass
class ProbeLabels:
    """The classes (the train split's), the class ids of both splits in them, and what
    identifies both splits (recorded with the result, checked on resume and reuse)."""

    train: Labels
    validation: Labels
    train_ids: NDArray[np.int64]
    val_ids: NDArray[np.int64]
    identity: dict[str, dict[str, Any]]
    fingerprint: str  # the train split's, as datasets computes it

    @property
    def names(self) -> list[str]:
        return self.train.names

    @property
    def num_classes(self) -> int:
        return len(self.train.names)

    @classmethod
    def read(cls, train: datasets.Dataset, val: datasets.Dataset, label_column: str) -> ProbeLabels:
        """Read both splits' labels; a validation class that train lacks is an error."""
        labels = read_labels(train, label_column)
        val_labels = read_labels(val, label_column)
        position = {name: k for k, name in enumerate(labels.names)}
        in_train = {labels.names[k] for k in np.unique(labels.ids)}
        in_val = sorted({val_labels.names[k] for k in np.unique(val_labels.ids)})
        unknown = [name for name in in_val if name not in in_train]
        if unknown:
            raise ValueError(
                f"validation classes {unknown} do not occur in the train split's labels"
            )
        lookup = np.array([position.get(name, -1) for name in val_labels.names])
        return cls(
            train=labels,
            validation=val_labels,
            train_ids=labels.ids,
            val_ids=lookup[val_labels.ids],
            identity={
                "train": dataset_identity(train, label_column, labels=labels),
                "validation": dataset_identity(val, label_column, labels=val_labels),
            },
            fingerprint=train._fingerprint,
        )


def class_recall(
    predictions: NDArray[np.int64], labels: NDArray[np.int64], num_classes: int
) -> dict[str, Any]:
    """Accuracy, per-class recall (NaN for a class without support) and support."""
    p, y = predictions, labels
    support = np.bincount(y, minlength=num_classes)
    hits = np.bincount(y[p == y], minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, hits / np.maximum(support, 1), np.nan)
    return {
        "accuracy": float((p == y).mean()),
        "recall": recall.tolist(),
        "support": support.tolist(),
    }


class ProbeRecorder:
    """The bookkeeping of one probe run: per-sample dynamics of each initialisation, their
    scores summed over initialisations, the validation history, the embeddings, and the result.

    Args:
        labels: the classes and class ids of both splits (:meth:`ProbeLabels.read`).
        epochs, score_epoch, du_window: the schedule, the epoch of EL2N and GraNd, and the window
            of dynamic uncertainty (:class:`~hf_drop.probe.dynamics.Dynamics`).
        num_inits: initialisations; the scores written are their mean.
        embeddings: keep the head's input at the last epoch of the first initialisation.
        class_errors_from: ``"final"`` epoch's recall, or the ``"best"`` epoch's (by accuracy).
        groups: group ids of the validation rows, to record each group's errors too.
        grand: last-layer GraNd is recorded (``False``: the model has no linear head).
    """

    def __init__(
        self,
        labels: ProbeLabels,
        *,
        epochs: int,
        score_epoch: int,
        du_window: int,
        num_inits: int = 1,
        embeddings: bool = False,
        class_errors_from: Literal["final", "best"] = "final",
        groups: Labels | None = None,
        grand: bool = True,
    ) -> None:
        self.labels = labels
        self.epochs = epochs
        self.score_epoch = score_epoch
        self.du_window = du_window
        self.num_inits = num_inits
        self.keep_embeddings = embeddings
        self.class_errors_from = class_errors_from
        self.groups = groups
        self.grand = grand
        self.init = 0
        self.dynamics: Dynamics | None = None  # of the initialisation in progress
        self.totals: dict[str, NDArray[np.float64]] = {}  # scores summed over finished inits
        self.history: list[list[dict[str, Any]]] = []  # per init, per epoch: validation metrics
        self.embeddings: NDArray[np.float16] | None = None
        self.pending: dict[str, Any] | None = None  # the closed epoch awaiting its validation
        self._steps: int | None = None
        self._batches = 0

    # --- one initialisation -----------------------------------------------------------------

    def start_init(self, init: int, steps_per_epoch: int | None = None) -> None:
        """Begin initialisation ``init`` (or go on with it, restored by :meth:`load`).
        ``steps_per_epoch`` only says where a non-finite batch was."""
        if self.dynamics is None or init != self.init:
            self.dynamics = Dynamics(
                len(self.labels.train_ids), self.epochs, self.score_epoch, self.du_window
            )
        self.init = init
        while len(self.history) <= init:
            self.history.append([])
        self._steps, self._batches = steps_per_epoch, 0

    def wants_embeddings(self, epoch: int) -> bool:
        """Whether this epoch's embeddings are kept (give them to :meth:`record_batch`)."""
        return self.keep_embeddings and self.init == 0 and epoch == self.epochs - 1

    def record_batch(
        self,
        epoch: int,
        index: NDArray[np.int64],
        stats: NDArray[np.float32],
        embeddings: NDArray[np.float16] | None = None,
    ) -> None:
        """Record the rows ``index`` (gathered from every process, each row once): ``stats``
        has the columns of :data:`~hf_drop.probe.dynamics.STATISTICS`."""
        self._batches += 1
        if not np.isfinite(stats[:, _CHECKED]).all():
            where = "" if self._steps is None else f" at step {self._batches} of {self._steps}"
            raise NonFiniteError(f"train loss {float(np.mean(stats[:, 0])):.4g}{where}")
        self.dynamics.update(epoch, index, stats)
        if embeddings is not None:
            if self.embeddings is None:
                self.embeddings = np.zeros(
                    (len(self.labels.train_ids), embeddings.shape[1]), np.float16
                )
            self.embeddings[index] = embeddings

    def end_epoch(self, epoch: int) -> dict[str, Any]:
        """Close an epoch (every row recorded once, or a RuntimeError); returns its training
        loss and accuracy, which the validation that follows records with it."""
        self.dynamics.end_epoch(epoch)
        self._batches = 0
        loss, accuracy = self.dynamics.epoch_summary()
        self.pending = {"epoch": epoch, "train_loss": loss, "train_accuracy": accuracy}
        return self.pending

    def record_validation(
        self,
        predictions: NDArray[np.int64],
        rows: NDArray[np.int64],
        finite: NDArray[np.bool_] | None = None,
    ) -> dict[str, Any]:
        """The closed epoch's validation: predicted classes of the validation ``rows`` (each
        once, in any order), and whether each row's logits were ``finite``. Returns the
        metrics recorded: accuracy, per-class recall and support, with ``groups`` each group's
        support and hits, and the epoch's training loss and accuracy."""
        if finite is not None and not finite.all():
            raise NonFiniteError(
                f"NaN or infinite validation logits for {int((~finite).sum())} images"
            )
        labels = self.labels.val_ids[rows]
        metrics = class_recall(predictions, labels, self.labels.num_classes)
        if self.groups is not None:  # by row index: the gathered order need not be the rows'
            g, n = self.groups.ids[rows], len(self.groups.names)
            metrics["group_support"] = np.bincount(g, minlength=n).tolist()
            metrics["group_hits"] = np.bincount(g[predictions == labels], minlength=n).tolist()
        pending, self.pending = self.pending or {}, None
        metrics["train_loss"] = pending.get("train_loss")
        metrics["train_accuracy"] = pending.get("train_accuracy")
        self.history[self.init].append(metrics)
        return metrics

    def end_init(self) -> None:
        """Add the finished initialisation's scores to the totals."""
        scores = self.dynamics.scores()
        if not self.grand:
            del scores["grand"]  # no linear head: no last-layer GraNd
        for name, values in scores.items():
            self.totals[name] = self.totals.get(name, 0.0) + values.astype(np.float64)
        self.dynamics = None

    # --- the result -------------------------------------------------------------------------

    def scores(self) -> dict[str, NDArray[np.float64]]:
        """Each score, averaged over the initialisations."""
        return {name: total / self.num_inits for name, total in self.totals.items()}

    def non_finite(self) -> list[str]:
        """The scores (and embeddings) that hold a NaN or infinite value: the last guard before
        the result is written."""
        bad = [name for name, values in self.totals.items() if not np.isfinite(values).all()]
        if self.embeddings is not None and not np.isfinite(self.embeddings).all():
            bad.append("embedding (penultimate features beyond float16's range)")
        return bad

    def record(
        self,
        *,
        config: dict[str, Any],
        model: dict[str, Any],
        processes: int,
        batch: dict[str, Any],
        device: str,
        source: Mapping[str, Any] | None,
        libraries: Iterable[str],
    ) -> dict[str, Any]:
        """What ``probe_config.json`` holds: how the loop trained (its ``config``, ``model``,
        ``processes``, ``batch`` and ``device``), the data (``source``, then the train split's
        fingerprint and identity; the validation split's identity), the versions of
        ``libraries`` and the machine."""
        return {
            "config": config,
            "model": model,
            "processes": processes,
            "batch": batch,
            "device": device,
            "source": {
                **(source or {}),
                "fingerprint": self.labels.fingerprint,
                **self.labels.identity["train"],
            },
            "validation": self.labels.identity["validation"],
            "versions": versions(*libraries),
            "machine": machine(),
        }

    def write(
        self,
        out: Path,
        record: dict[str, Any],
        splits: dict[str, Any] | None = None,
        index: NDArray[np.int64] | None = None,
    ) -> list[str]:
        """Write the result folder (:func:`~hf_drop.probe.result.write_result`), by one
        process; returns the warnings it recorded. ``index``: the training set's row of each
        recorded row (a probe on a sample; default: they are the training set)."""
        return write_result(
            out,
            scores=self.scores(),
            labels=self.labels.train_ids,
            index=index,
            names=self.labels.names,
            history=self.history,
            class_errors_from=self.class_errors_from,
            record=record,
            embeddings=self.embeddings,
            splits=splits,
            group_names=None if self.groups is None else self.groups.names,
        )

    # --- checkpoints ------------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        """The state of the run in a checkpoint ``folder`` (by one process), mid-initialisation:
        the dynamics, the totals of the finished initialisations and the embeddings. The
        history is the loop's to save, with its own record of the checkpoint."""
        np.savez(folder / "dynamics.npz", **self.dynamics.state_dict())
        np.savez(folder / "totals.npz", **self.totals)
        if self.embeddings is not None:
            np.save(folder / "embeddings.npy", self.embeddings)

    def load(
        self, folder: Path, *, init: int, epoch: int, history: list[list[dict[str, Any]]]
    ) -> tuple[int, int]:
        """Go on from a checkpoint :meth:`save` wrote after ``epoch`` of ``init``, with the
        ``history`` saved beside it. Returns the (initialisation, epoch) to train next."""
        with np.load(folder / "totals.npz") as f:
            self.totals = {k: f[k] for k in f.files}
        with np.load(folder / "dynamics.npz") as f:
            state = {k: f[k] for k in f.files}
        path = folder / "embeddings.npy"
        self.embeddings = np.load(path) if path.exists() else None
        self.history = history
        self.dynamics = None
        self.start_init(init)
        self.dynamics.load_state_dict(state)
        if epoch == self.epochs - 1:  # that initialisation had finished: its scores count now
            self.end_init()
            return init + 1, 0
        return init, epoch + 1
