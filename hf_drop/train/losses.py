"""Loss-ranked choice for dynamic DRoP (``within="loss"``): each training row's last loss, from
the Trainer's own forward passes, and an epoch's rows chosen from them, as InfoBatch does.

InfoBatch (Qin et al., ICLR 2024) keeps, every epoch, each sample whose last loss is at least
the mean and a random share of the others (the "well learned"), and scales the losses of the
kept well-learned samples up by the inverse of that share, so that their expected gradient is
unchanged. Here the share follows from the epoch's size: a class (or, class-blind, the whole
set) keeps its quota, hard rows first, the rest of it from its well-learned rows at random.

Which row a loss belongs to: :class:`FetchedRows` stands in for the Trainer's training set and
notes, in order, the rows this process fetches; the Trainer's batches are those rows, in that
order (the DataLoader fetches each batch before it yields it; Accelerate one batch ahead), so
each training step takes the first rows of that queue. With ``dataloader_num_workers`` > 0 the
rows are fetched in other processes: refused. The epoch's losses of every process are gathered
before the next epoch is planned, so every process plans the same rows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

__all__ = ["FetchedRows", "LossChoice", "choose_by_loss", "per_sample_loss"]


class FetchedRows(torch.utils.data.Dataset):
    """``dataset``, row for row, noting the rows this process fetches, in order."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset
        self.fetched: deque[int] = deque()

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        self.fetched.append(int(index))
        return self.dataset[index]

    def __getitems__(self, indices: Sequence[int]) -> list[Any]:
        self.fetched.extend(int(i) for i in indices)
        many = getattr(self.dataset, "__getitems__", None)
        return many(list(indices)) if many is not None else [self.dataset[i] for i in indices]

    def take(self, count: int) -> NDArray[np.int64]:
        """The rows of the batch now training: the first ``count`` fetched."""
        if len(self.fetched) < count:
            raise RuntimeError(
                f"a training batch of {count} rows, but only {len(self.fetched)} were fetched "
                "through the training set: the rows were fetched elsewhere (DataLoader workers? "
                "set dataloader_num_workers=0 for within='loss')"
            )
        return np.array([self.fetched.popleft() for _ in range(count)], dtype=np.int64)


def per_sample_loss(outputs: Any, labels: torch.Tensor) -> torch.Tensor:
    """Each row's cross-entropy from a classifier's ``outputs`` (``logits`` or the second entry
    of a tuple) and its labels, with gradients."""
    logits = outputs["logits"] if isinstance(outputs, Mapping) else outputs[1]
    if logits.ndim != 2 or len(logits) != len(labels):
        raise ValueError(
            f"within='loss' needs one row of class logits per label, got logits of shape "
            f"{tuple(logits.shape)} for {len(labels)} labels (a classifier's output)"
        )
    return torch.nn.functional.cross_entropy(logits.float(), labels, reduction="none")


@dataclass(frozen=True)
class LossChoice:
    """An epoch's rows and what the choice saw: per class (or one group, class-blind), the hard
    rows (last loss at least the group's mean, or never trained on) and the well-learned ones,
    and the weight of a kept well-learned row's loss (``rescale``)."""

    rows: NDArray[np.int64]
    weights: NDArray[np.float64]  # per training row: 1, or its rescaling if kept well-learned
    hard: list[int]
    well_learned: list[int]


def choose_by_loss(
    groups: NDArray[np.int64],
    counts: NDArray[np.int64],
    losses: NDArray[np.float64],
    rng: np.random.Generator,
) -> LossChoice:
    """``counts[g]`` rows of each group ``g`` (``groups``: a group id per row), InfoBatch's way.

    In each group: its hard rows (a last loss at least the mean of the group's known losses, or
    no loss yet) are kept first, at random among them if they are more than the count; the rest
    of the count is a random sample of its well-learned rows, each of which then weighs
    ``well_learned / kept`` (the inverse of its chance to be kept).
    """
    weights = np.ones(len(groups), dtype=np.float64)
    chosen, hard_counts, easy_counts = [], [], []
    for g, count in enumerate(np.asarray(counts, dtype=np.int64)):
        members = np.flatnonzero(groups == g)
        if count > len(members):
            raise ValueError(f"group {g} has {len(members)} rows; asked for {count}")
        known = losses[members]
        seen = ~np.isnan(known)
        mean = known[seen].mean() if seen.any() else np.inf
        is_hard = ~seen | (known >= mean)
        hard, easy = members[is_hard], members[~is_hard]
        hard_counts.append(len(hard))
        easy_counts.append(len(easy))
        if count <= len(hard):
            chosen.append(rng.choice(hard, size=count, replace=False))
            continue
        extra = count - len(hard)
        kept_easy = rng.choice(easy, size=extra, replace=False)
        weights[kept_easy] = len(easy) / extra
        chosen += [hard, kept_easy]
    rows = np.sort(np.concatenate(chosen)) if chosen else np.arange(0, dtype=np.int64)
    return LossChoice(rows.astype(np.int64), weights, hard_counts, easy_counts)
