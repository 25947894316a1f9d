"""Stratified splits: a held-out set with the same class proportions, by a fixed seed."""

from __future__ import annotations

import datasets
import numpy as np
from numpy.typing import NDArray

from ..core.quotas import proportional_quotas
from ..core.selection import random_within_class
from .columns import read_labels

__all__ = ["stratified_indices", "stratified_rows", "stratified_sample"]


def stratified_indices(
    dataset: datasets.Dataset, fraction: float, *, label_column: str = "label", seed: int = 0
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Row indices of a ``fraction`` of every class (exact total, at random), and of the rest.

    The paper's protocol: half of each class of the test split measures the probe's class errors
    (``fraction=0.5``), the other half is what gets reported.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie strictly between 0 and 1, got {fraction!r}")
    labels = read_labels(dataset, label_column)
    counts = proportional_quotas(np.bincount(labels.ids, minlength=len(labels.names)), fraction)
    chosen = random_within_class(labels.ids, counts, seed=seed)
    rest = np.setdiff1d(np.arange(len(dataset)), chosen, assume_unique=True)
    return chosen, rest


def stratified_sample(
    dataset: datasets.Dataset, count: int, *, label_column: str = "label", seed: int = 0
) -> NDArray[np.int64]:
    """Row indices (in the dataset's order) of ``count`` rows with the dataset's class
    proportions: per-class counts by largest remainder (exact total), rows chosen at random
    within each class by ``seed``. What ``--max_train_samples`` keeps: the first ``count`` rows
    of a class-sorted split would drop whole classes."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive int, got {count!r}")
    if count >= len(dataset):
        return np.arange(len(dataset), dtype=np.int64)
    labels = read_labels(dataset, label_column)
    rows = stratified_rows(labels.ids, count / len(dataset), seed=seed)
    if len(rows) != count:  # the budget of count / n is count; never off, but never silent
        raise AssertionError(f"stratified sample of {len(rows)} rows, not {count}")
    return rows


def stratified_rows(
    class_ids: NDArray[np.int64], fraction: float, *, seed: int = 0, min_per_class: int = 0
) -> NDArray[np.int64]:
    """Sorted positions of ``budget(N, fraction)`` rows with the class proportions of
    ``class_ids`` (largest remainder, at least ``min_per_class`` of each class), at random
    within each class by ``seed``: what :func:`stratified_sample` and a probe on a part of the
    data (``ProbeConfig.data_fraction``) keep."""
    counts = proportional_quotas(np.bincount(class_ids), fraction, min_per_class=min_per_class)
    return np.sort(random_within_class(class_ids, counts, seed=seed))
