"""Fitting a filter on an in-memory ``datasets.Dataset``: one function per step, data flowing
one way, from a checked :class:`~hf_drop.pruning.params.FilterSpec` to the kept rows and the
record of the fit.

    units (classes or groups) -> errors in use -> quotas -> rows (by position or by id) -> record

A stream is fitted by :func:`hf_drop.pruning.stream.fit_stream`, with the same steps for
the errors and the quotas.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Container
from dataclasses import dataclass, replace
from typing import Any

import datasets
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ..core import quotas as Q
from ..core import rules as R
from ..core import selection as S
from ..core import uncertainty as U
from ..core.inputs import as_jsonable, error_value, per_class, support_value
from ..data.columns import check_identity, dataset_identity, read_labels, read_scores
from ..io.environment import versions
from .params import FilterSpec
from .record import PruningRecord, floats_or_none, ints_or_none, method_name
from .rows import ById, FittedRows, UnitReader, position_rows, read_ids

__all__ = ["ClassNumbers", "Fit", "class_numbers", "fit_dataset", "make_record"]

# What a recorded source holds that identifies its rows (columns.dataset_identity).
IDENTITY_KEYS = ("num_rows", "label_column", "label_hash", "content")


@dataclass(frozen=True)
class Fit:
    """What a fit produced: the kept rows and the record."""

    rows: FittedRows
    record: PruningRecord


@dataclass(frozen=True)
class ClassNumbers:
    """Per unit (class or group), by id: sizes, the errors as given, the errors the quotas use
    (shrunk where that applies), the validation support (NaN where unknown), and the quotas."""

    sizes: NDArray[np.int64]
    errors: NDArray[np.float64]
    used: NDArray[np.float64]
    support: NDArray[np.float64]
    quotas: NDArray[np.int64]
    prior: U.BetaPrior | None = None  # the prior the errors were shrunk with, if they were


def fit_dataset(spec: FilterSpec, params: dict[str, Any], dataset: datasets.Dataset) -> Fit:
    """Choose the kept rows of ``dataset`` (``params``: the snapshot the record shows)."""
    if spec.class_sizes is not None or spec.stream_mode != "approximate":
        name = "class_sizes" if spec.class_sizes is not None else "stream_mode"
        raise ValueError(
            f"{name} applies to a stream (IterableDataset); this Dataset's class sizes are "
            "counted exactly: drop it"
        )
    classes = read_labels(dataset, spec.label_column)
    identity = dataset_identity(dataset, spec.label_column, labels=classes)
    if spec.source is not None:
        check_identity(
            dataset,
            {key: spec.source.get(key) for key in IDENTITY_KEYS},
            seen="the class errors and scores of this DRoPFilter come from",
            fix="pass the dataset the probe saw, or probe this one",
            labels=classes,
            actual=identity,
        )
    units, labels = UnitReader.fit(dataset, classes, spec.group_columns)
    combinations = _combinations(dataset, spec.group_columns)
    sizes = np.bincount(labels.ids, minlength=len(labels.names))
    within = _scores(spec, dataset, spec.within, "within", ndim=spec.keep_rule.ndim)
    if spec.quota.class_blind:  # the baselines: the class counts follow from the selection
        n_keep = Q.budget(len(dataset), spec.density)
        if within is None:
            indices = S.global_random(len(dataset), n_keep, seed=spec.seed)
        else:
            indices = spec.keep_rule.select(within, n_keep, None, spec.seed)
        quotas = np.bincount(labels.ids[indices], minlength=len(sizes))
        numbers = class_numbers(spec, labels.names, sizes, quotas=quotas, combinations=combinations)
    else:
        selection = _selection_counts(spec, dataset, labels.ids, len(sizes), within)
        numbers = class_numbers(
            spec, labels.names, sizes, selection=selection, combinations=combinations
        )
        indices = _select(spec, labels.ids, numbers.quotas, within)
    if spec.id_column is None:
        rows: FittedRows = position_rows(dataset, units, labels.ids, indices, classes, identity)
        rows_identity = identity
    else:
        ids = read_ids(dataset, spec.id_column)
        rows = ById(units, labels.ids, indices, ids, spec.id_column)
        rows_identity = {
            "num_rows": len(dataset),
            "label_column": spec.label_column,
            "id_column": spec.id_column,
        }
    source = {
        **as_jsonable(dict(spec.source or {})),
        "fingerprint": dataset._fingerprint,
        "label_hash": classes.hash,
        **rows_identity,
    }
    record = make_record(spec, params, labels.names, numbers, len(dataset), len(indices), source)
    return Fit(rows, replace(record, kept=rows.kept_identity()))


def class_numbers(
    spec: FilterSpec,
    names: list[str],
    sizes: NDArray[np.int64],
    *,
    quotas: NDArray[np.int64] | None = None,
    selection: NDArray[np.int64] | None = None,
    combinations: Container[str] = (),
) -> ClassNumbers:
    """The errors as given and in use, the support, and the quotas (``quotas`` when a global
    selection set them already; ``selection``: the counts of one by a score; ``combinations``:
    every group name the group columns' values can make)."""
    column = "+".join(spec.unit_columns)
    errors = _errors(spec, names, sizes, column, combinations)
    support = _support(spec, names, column, combinations)
    used, prior = errors, None
    if spec.quota.needs_errors and spec.quota.shrinks_errors:
        used, prior = U.shrink_errors(errors, support)
    if quotas is None:
        inputs = R.QuotaInputs(
            sizes=sizes,
            density=spec.density,
            errors=used,
            min_per_class=spec.min_per_class,
            class_names=names,
            selection_counts=selection,
        )
        quotas = _checked_counts(spec, spec.quota.counts(inputs), sizes)
    return ClassNumbers(sizes, errors, used, support, np.asarray(quotas, dtype=np.int64), prior)


def _checked_counts(spec: FilterSpec, counts: Any, sizes: NDArray[np.int64]) -> NDArray[np.int64]:
    """A quota rule's counts, checked: whole numbers per class, within the class sizes, summing
    to the budget (a registered rule is code the filter did not write)."""
    name = f"quota rule {spec.quota.spec()!r}"
    array = np.asarray(counts)
    if array.shape != sizes.shape or array.dtype.kind not in "iu":
        raise ValueError(
            f"{name} returned {array.dtype} counts of shape {array.shape}; expected one whole "
            f"number per class ({len(sizes)})"
        )
    if np.any(array < 0) or np.any(array > sizes):
        raise ValueError(f"{name} returned counts outside [0, class size]: {array.tolist()[:20]}")
    expected = Q.budget(int(sizes.sum()), spec.density)
    if int(array.sum()) != expected:
        raise ValueError(
            f"{name} returned counts that sum to {int(array.sum())}, but density "
            f"{spec.density} keeps {expected} of {int(sizes.sum())} rows"
        )
    return array.astype(np.int64)


def make_record(
    spec: FilterSpec,
    params: dict[str, Any],
    names: list[str],
    numbers: ClassNumbers,
    num_rows: int,
    num_kept: int,
    source: dict[str, Any],
) -> PruningRecord:
    """The record of a fit (``params``: the snapshot taken at ``fit``)."""
    return PruningRecord(
        method=method_name(spec),
        params=dict(params),
        # Every setting, so that a later change of a rule's defaults cannot change what the
        # record means (the default DRoP mode did change, paper to saturating: see record_rules).
        rules={
            "quota": spec.quota.spec(full=True),
            "keep": None if spec.keep is None else spec.keep.spec(full=True),
        },
        classes=list(names),
        class_sizes=numbers.sizes.tolist(),
        class_errors=floats_or_none(numbers.errors),
        class_errors_used=floats_or_none(numbers.used),
        class_support=ints_or_none(numbers.support),
        drop_settings=spec.quota.drop_settings,
        quotas=numbers.quotas.tolist(),
        prior=None if numbers.prior is None else numbers.prior.as_dict(),
        num_rows=int(num_rows),
        num_kept=int(num_kept),
        density=spec.density,
        source=source,
        versions=versions("datasets", "numpy"),
    )


def _errors(
    spec: FilterSpec, names: list[str], sizes: NDArray, column: str, combinations: Container[str]
) -> NDArray:
    """Errors by unit id (NaN: none); a missing one is ``missing_error`` or an error."""
    if spec.class_errors is None:
        return np.full(len(names), np.nan)
    errors = _per_unit(
        spec, spec.class_errors, names, column, "class_errors", "errors", combinations
    )
    missing = np.isnan(errors)
    errors[missing & (sizes == 0)] = 0.0  # an empty class keeps nothing whatever its error
    missing &= sizes > 0
    if np.any(missing) and spec.quota.needs_errors:  # other rules only report them
        if spec.missing_error is None:
            raise ValueError(
                f"class_errors has no error for classes "
                f"{[names[k] for k in np.flatnonzero(missing)]} (absent from the validation "
                "split?); pass missing_error= to give them one"
            )
        errors[missing] = spec.missing_error
    return errors


def _support(
    spec: FilterSpec, names: list[str], column: str, combinations: Container[str]
) -> NDArray:
    """Validation support by unit id (NaN where unknown)."""
    given = spec.class_support
    if given is None and isinstance(spec.class_errors, U.ClassErrors):
        given = spec.class_errors
    if given is None:
        return np.full(len(names), np.nan)
    return _per_unit(spec, given, names, column, "class_support", "support", combinations)


def _combinations(dataset: datasets.Dataset, columns: list[str] | None) -> set[str]:
    """Every group name the values of ``columns`` can make ("dress/1"), up to a million."""
    if columns is None:
        return set()
    values = [read_labels(dataset, column).names for column in columns]
    if math.prod(len(v) for v in values) > 1_000_000:
        return set()
    return {"/".join(parts) for parts in itertools.product(*values)}


def _per_unit(
    spec: FilterSpec,
    given: Any,
    names: list[str],
    column: str,
    name: str,
    field: str,
    combinations: Container[str] = (),
):
    """``given`` by unit id; for groups, ``combinations`` are the names of every combination of
    the group columns' values (a group of the validation split the training rows lack)."""
    check = error_value if field == "errors" else support_value
    if isinstance(given, U.ClassErrors) and spec.group_columns is not None:
        # A validation split may hold groups the training rows lack (they keep nothing): a
        # combination of values the training rows have, which is left out. Any other name
        # (misspelled, or a class where groups are expected) is refused.
        foreign = [n for n in given.names if n not in names and n not in combinations]
        if foreign:
            raise ValueError(
                f"{name} is a ClassErrors for groups {foreign[:10]} that are not groups of "
                f"{column!r} (groups: {names[:20]}): measure the errors per group of "
                f"group_column={spec.group_columns!r}"
            )
        values = getattr(given, field)
        given = {n: v for n, v in zip(given.names, values, strict=True) if n in names}
    return per_class(given, names, name=name, column=column, check=check, field=field)


def _selection_counts(
    spec: FilterSpec,
    dataset: datasets.Dataset,
    labels: NDArray[np.int64],
    num_units: int,
    within: NDArray | None,
) -> NDArray[np.int64] | None:
    """The class counts of a global selection by a score (``quota="strategy"``), else None."""
    if not spec.quota.from_selection:
        return None
    scores = (
        within
        if spec.strategy_scores is None
        else _scores(spec, dataset, spec.strategy_scores, "strategy_scores")
    )
    if scores is None or scores.ndim != 1:
        raise ValueError(f"quota={spec.quota.name!r} needs one score per row, not embeddings")
    chosen = S.global_top(
        scores, Q.budget(len(scores), spec.density), keep=spec.keep_rule.direction or "hard"
    )
    return Q.quotas_from_selection(labels, chosen, num_units)


def _scores(
    spec: FilterSpec, dataset: datasets.Dataset, scores: Any, name: str, ndim: int = 1
) -> NDArray | None:
    """Per-row scores (a column, an array, a pandas Series by its index) checked, or None."""
    if scores is None:
        return None
    return read_scores(dataset, _by_row(spec, dataset, scores, name), ndim=ndim, name=name)


def _by_row(spec: FilterSpec, dataset: datasets.Dataset, scores: Any, name: str) -> Any:
    """Per-row scores in row order: a pandas Series is read by its index (the row ids with
    ``id_column``, else the row positions 0..N-1, in any order), never by its order."""
    if not isinstance(scores, pd.Series):
        return scores
    index = scores.index
    if spec.id_column is not None:
        rows, what = read_ids(dataset, spec.id_column), f"the ids of id_column {spec.id_column!r}"
    else:
        rows, what = pd.RangeIndex(len(dataset)), f"the row positions 0..{len(dataset) - 1}"
    if not index.is_unique or len(index) != len(rows) or not index.isin(rows).all():
        raise ValueError(
            f"{name} is a pandas Series whose index is not {what}: its values are read by its "
            "index; pass a Series indexed that way, or an array in row order"
        )
    return scores.reindex(rows).to_numpy()


def _select(
    spec: FilterSpec, labels: NDArray[np.int64], quotas: NDArray[np.int64], within: NDArray | None
) -> NDArray[np.int64]:
    if within is None:
        return S.random_within_class(labels, quotas, seed=spec.seed)
    return spec.keep_rule.select(within, quotas, labels, spec.seed)
