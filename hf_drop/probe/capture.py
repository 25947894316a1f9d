"""How a ``transformers.Trainer``'s batches reach the probe (for :class:`ProbeCallback`).

Each row carries its position under :data:`TRAIN_KEY` (or :data:`EVAL_KEY`) from the dataset
(:class:`IndexedDataset`) through the collator (:class:`IndexCollator`) into the batch; a forward
pre-hook on the model takes it out before the model sees it, and forward hooks read the logits and
the head's input (:class:`BatchCapture`). The per-sample statistics are those of ``hf-drop
probe`` (:func:`~hf_drop.probe.dynamics.batch_statistics`), from the same training forward pass;
they are gathered across processes once per epoch and kept by row index, so that padding,
gradient accumulation and the number of processes change nothing.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any

import datasets
import numpy as np
import torch
from accelerate import PartialState
from accelerate.utils import gather_object
from numpy.typing import NDArray

from .dynamics import batch_statistics

__all__ = ["EVAL_KEY", "TRAIN_KEY", "BatchCapture", "IndexCollator", "IndexedDataset"]

# The batch keys that carry row indices; the model never sees them.
TRAIN_KEY = "hf_drop_index"
EVAL_KEY = "hf_drop_eval_index"
INDEX_KEYS = (TRAIN_KEY, EVAL_KEY)


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


class IndexCollator:
    """``collate_fn`` on rows without the index keys, then the indices added as int64 tensors."""

    def __init__(self, collate_fn: Callable[[list], Any]) -> None:
        self.collate_fn = collate_fn

    def __call__(self, features: list[dict[str, Any]]) -> Any:
        keys = [
            k
            for k in INDEX_KEYS
            if features and isinstance(features[0], Mapping) and k in features[0]
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


class BatchCapture:
    """Forward hooks on a Trainer's model that read, from each batch of the indexed datasets,
    what the probe records: a training batch's per-sample statistics, labels and (when asked)
    embeddings; an evaluation batch's predictions. Records stay on each process until the end of
    the epoch (or evaluation), then are gathered by row index.

    Args:
        train_ids: class id of every training row (the labels the statistics are taken for).
        num_classes: logits the model must give per sample.
        label_column: named in errors.
    """

    def __init__(self, train_ids: NDArray[np.int64], num_classes: int, label_column: str) -> None:
        self.train_ids = train_ids
        self.num_classes = num_classes
        self.label_column = label_column
        self.head: torch.nn.Linear | None = None
        self.keep_embeddings = False  # this epoch's
        self._hooked: weakref.WeakSet[torch.nn.Module] = weakref.WeakSet()
        self._handles: list[Any] = []  # while recording
        self._active = False
        self._train_ids: torch.Tensor | None = None  # on the batches' device
        self._batch: tuple[str, torch.Tensor, Any] | None = None  # from the pre-hook
        self._features: torch.Tensor | None = None  # the head's input
        self._train: list[tuple] = []
        self._eval: list[tuple] = []

    def strip_indices(self, model: torch.nn.Module) -> None:
        """The pre-hook that takes the index keys out of the model's inputs; kept for the model's
        life, so that later ``trainer.evaluate``/``predict`` on the indexed datasets work too."""
        if model not in self._hooked:
            model.register_forward_pre_hook(self._before_forward, with_kwargs=True)
            self._hooked.add(model)

    def start(self, model: torch.nn.Module, head: torch.nn.Linear | None) -> None:
        """Record every batch from now on; ``head`` (the final linear layer, if any) gives the
        embeddings and last-layer GraNd."""
        self.strip_indices(model)
        self.head = head
        self._train_ids = torch.tensor(self.train_ids)
        self._handles = [model.register_forward_hook(self._after_forward)]
        if head is not None:
            self._handles.append(head.register_forward_hook(self._after_head))
        self._active = True

    def stop(self) -> None:
        """Record nothing more, and let the records go (the pre-hook keeps this object alive)."""
        self._active = False
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._batch = self._features = self._train_ids = None
        self._train, self._eval = [], []

    def start_epoch(self, keep_embeddings: bool) -> None:
        self._train = []
        self.keep_embeddings = keep_embeddings

    def end_epoch(
        self, epoch: int
    ) -> tuple[NDArray[np.int64], NDArray[np.float32], NDArray[np.float16] | None]:
        """The epoch's training rows from every process, each once (padding repeats rows
        already seen: the first counts): row indices, statistics and embeddings. A batch label
        that is not the column's class id is an error."""
        records, self._train = self._train, []
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
        keep = _first_seen(step, index)
        index, stats, labels = index[keep], stats[keep], labels[keep]
        expected = self.train_ids[index]
        wrong = (labels >= 0) & (labels != expected)
        if wrong.any():
            rows = index[wrong][:5].tolist()
            raise ValueError(
                f"ProbeCallback: the batches' labels differ from column {self.label_column!r} of "
                f"train_dataset at rows {rows} (labels {labels[wrong][:5].tolist()}, column "
                f"{expected[wrong][:5].tolist()}): the model must use the column's class ids"
            )
        return index, stats, features[0][keep] if features else None

    def end_evaluation(
        self, wanted: bool
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_]] | None:
        """The evaluation's rows from every process, each once: row indices, predicted classes,
        and whether the logits were finite. ``None`` if it saw no batch of the indexed eval set
        (on every process alike), or if not ``wanted`` (the records are dropped)."""
        records, self._eval = self._eval, []
        if not records or not wanted:
            return None
        index, predicted, finite = _gather(
            [torch.cat([r[k] for r in records]).cpu().numpy() for k in range(3)]
        )
        keep = _first_seen(np.zeros(len(index), np.int64), index)
        return index[keep], predicted[keep], finite[keep]

    @property
    def evaluated(self) -> bool:
        """Whether batches of the indexed eval set were seen since the last evaluation."""
        return bool(self._eval)

    # --- hooks ----------------------------------------------------------------------------------

    def _before_forward(self, module, args, kwargs):
        found = [key for key in INDEX_KEYS if key in kwargs]
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
        if logits.shape[-1] != self.num_classes:
            raise ValueError(
                f"ProbeCallback: the model gives {logits.shape[-1]} logits per sample, and "
                f"{self.label_column!r} has {self.num_classes} classes"
            )
        if kind == EVAL_KEY and not module.training:
            finite = torch.isfinite(logits).all(-1)
            self._eval.append((index, logits.argmax(-1), finite))
        elif kind == TRAIN_KEY and module.training:
            if self._train_ids.device != index.device:
                self._train_ids = self._train_ids.to(index.device)
            ids = self._train_ids[index]
            if self.head is not None and features is None:
                raise RuntimeError(
                    f"ProbeCallback: the model's final linear layer ({self.head}) did not run in "
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
            if self.keep_embeddings:
                embedding = features.detach().flatten(1).half().cpu()
            step = len(self._train)
            self._train.append((step, index, stats, labels.long(), embedding))


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
