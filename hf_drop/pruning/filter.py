"""DRoPFilter: the object users put on a ``datasets.Dataset``.

Configure it like a scikit-learn estimator, ``fit`` it on a dataset (only the label and score
columns are read; no image is decoded), then ``apply`` it, or hand it to ``Dataset.filter``::

    drop = DRoPFilter(0.5, class_errors=errors).fit(train)
    subset = drop.apply(train)                        # Dataset.select: fast, no copy
    same = train.filter(drop, with_indices=True, batched=True, input_columns="label")
    drop.report()                                     # what was kept, per class

Identity, not position: ``fit`` records what identifies the dataset (row count, label hash,
a content digest), and ``apply`` refuses any other dataset, a shuffled or filtered one included.
With ``id_column=`` the decision is keyed on a stable row id instead, so it survives
``shuffle``, ``filter``, ``select`` and sharding; without one, ``Dataset.filter`` checks the
labels of every batch against the fitted rows and refuses a mismatch.

The filter itself is small: it stores its parameters, checks them once
(:mod:`~hf_drop.pruning.params`), and hands the work to its collaborators: the fit of a
Dataset (:mod:`~hf_drop.pruning.fit`) or of a stream (:mod:`~hf_drop.pruning.stream`), the
kept rows (:mod:`~hf_drop.pruning.rows`) and the record of the fit
(:mod:`~hf_drop.pruning.record`).
"""

from __future__ import annotations

import functools
import inspect
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import datasets
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from ..core import rules as R
from ..core.quotas import QuotaMode
from . import params as P
from .fit import fit_dataset
from .persist import load_filter, save_filter
from .record import PruningRecord, as_floats, method_name, report_table, warn_diagnostics
from .rows import FittedRows, select_rows
from .stream import BATCH_ROWS, StreamMode, check_stream_columns, fit_stream

__all__ = ["DRoPFilter"]

# The built-in rules by name (hf_drop.core.rules registers them; rule objects carry settings).
QuotaRule = Literal["drop", "drop_paper", "proportional", "uniform", "strategy", "global"] | str
Keep = Literal["hard", "easy", "ccs", "k_center"] | str
ClassErrorsLike = ArrayLike | Mapping[str | int, float]


class DRoPFilter:
    """Keep a ``density`` fraction of a labelled dataset, class by class.

    How many samples each class keeps is set by ``quota``, a rule of
    :mod:`hf_drop.core.rules` given as an object with its settings, or by name with its defaults:
    ``DRoP(floor=0.5, shrink=True)`` (``"drop"``, the default: robust DRoP), ``DRoPPaper()``
    (``"drop_paper"``: exactly Algorithm 1 of Vysogorets et al., ICLR 2025), ``"proportional"``,
    ``"uniform"``, ``"strategy"`` (the class counts of a global selection by
    ``strategy_scores``: "Random+StrategyQ") or ``"global"`` (no class counts: the baselines).

    Which samples inside a class, by ``within``: ``"random"`` (default, "Random+DRoP"), or a
    score column name or array, kept by ``keep``: ``Hard()`` (highest score, default), ``Easy()``,
    ``CCS(beta=0.1, strata=50)`` ("Strategy+DRoP"); or an embedding with ``KCenter()``.

    Args:
        density: fraction of the dataset to keep, in ``[0, 1]``.
        class_errors: per-class error ``1 - recall`` of a probe model on held-out data: an array
            indexed by class id, a mapping from class name or id, or a
            :class:`hf_drop.ClassErrors` (``class_errors_from_predictions``: errors with their
            support). Required by ``quota="drop"``.
        class_support: per-class number of validation samples behind each error (array by class
            id or mapping by name): shows the errors' confidence intervals in :meth:`report`
            and lets ``quota="drop"`` shrink uncertain errors. ``from_probe`` fills it in.
        label_column: the label column: ``ClassLabel``, integer or string.
        within: ``"random"``, or the score (or embedding) column name or array.
        keep: a keep rule (object, name or spec ``"ccs(beta=0.2)"``); only with a score
            ``within`` (refused with ``within="random"``, where it would mean nothing).
        quota: the class-count rule (object, name or spec ``"drop(floor=0.3)"``).
        mode: a setting of ``quota="drop"`` by its older spelling
            (:class:`hf_drop.core.rules.DRoP` documents them); None keeps the rule's.
        strength: likewise.
        floor: likewise.
        shrink: likewise.
        min_per_class: every class keeps at least this many samples (all of it if smaller).
        missing_error: error used for a class with samples but no error (absent from
            ``class_errors``, or NaN: a class missing from the validation split). ``None``
            raises a ``ValueError`` naming such classes.
        strategy_scores: score column name or array for ``quota="strategy"``; defaults to
            ``within`` when that is a score.
        ccs_beta: a setting of ``keep="ccs"`` by its older spelling.
        ccs_strata: likewise.
        seed: seed of every random choice (an int >= 0); the same seed gives the same subset.
        score_name: the name of a score given as an array (for ``method`` and the card).
        source: the identity the fitted dataset must have (set by :meth:`from_probe`).
        id_column: a column of unique, stable row ids (int or string). The kept rows are then
            recorded by id, and ``apply`` / ``Dataset.filter`` keep exactly those rows whatever
            the order (shuffle, sharding, chained filters). Without it, the decision is by
            position and only applies to the very dataset that was fitted. Required to fit a
            stream.
        class_sizes: rows per class (array by class id, or mapping by name) of a stream, when
            known: ``fit`` on an ``IterableDataset`` then reads nothing (approximate mode).
        stream_mode: how a stream (``IterableDataset``) is pruned (see
            :mod:`hf_drop.pruning.stream`): ``"approximate"`` (default; one pass over the
            labels, none with ``class_sizes``; kept counts Binomial around the quotas) or
            ``"exact"`` (two passes over labels and ids; kept counts equal to the quotas).
            Either way each row's fate depends only on ``seed``, its id and its class.
        group_column: quotas per group instead of per class (the paper's group robustness, e.g.
            Waterbirds' class x background): one column, or a list of columns whose combinations
            are the groups, named ``"value/value"`` (:func:`hf_drop.data.columns.read_groups`).
            ``class_errors``, ``class_support`` and ``report()`` are then per group, by group
            name, and selection (random or by score) runs within each group. The label column
            still identifies the dataset.

    Arguments that do not apply to the configuration (``keep`` without a score, ``mode`` with
    another rule than DRoP, ``strategy_scores`` without ``quota="strategy"``, CCS settings
    without ``keep="ccs"``) are refused rather than ignored.

    Attributes set by :meth:`fit`: ``record_`` (the :class:`~hf_drop.pruning.record.PruningRecord`
    everything downstream reads), ``rows_`` (the kept rows), and from the record ``classes_``,
    ``class_sizes_``, ``class_errors_``, ``class_errors_used_``, ``class_support_``, ``quotas_``
    (kept per class), ``indices_`` (sorted kept rows), ``num_rows_``, ``label_hash_``,
    ``source_fingerprint_`` and ``identity_``. A parameter set after ``fit`` makes the filter
    refuse to apply until it is fitted again.
    """

    def __init__(
        self,
        density: float,
        *,
        class_errors: ClassErrorsLike | None = None,
        label_column: str = "label",
        within: str | ArrayLike = "random",
        keep: Keep | R.KeepRule | None = None,
        quota: QuotaRule | R.QuotaRule = "drop",
        mode: QuotaMode | None = None,
        strength: float | None = None,
        floor: float | None = None,
        shrink: bool | None = None,
        class_support: ArrayLike | Mapping[str | int, int] | None = None,
        min_per_class: int = 0,
        missing_error: float | None = None,
        strategy_scores: str | ArrayLike | None = None,
        ccs_beta: float | None = None,
        ccs_strata: int | None = None,
        seed: int = 0,
        score_name: str | None = None,
        source: Mapping[str, Any] | None = None,
        id_column: str | None = None,
        class_sizes: ArrayLike | Mapping[str | int, int] | None = None,
        stream_mode: StreamMode = "approximate",
        group_column: str | list[str] | None = None,
    ) -> None:
        self.density = density
        self.class_errors = class_errors
        self.label_column = label_column
        self.within = within
        self.keep = keep
        self.quota = quota
        self.mode = mode
        self.strength = strength
        self.floor = floor
        self.shrink = shrink
        self.class_support = class_support
        self.min_per_class = min_per_class
        self.missing_error = missing_error
        self.strategy_scores = strategy_scores
        self.ccs_beta = ccs_beta
        self.ccs_strata = ccs_strata
        self.seed = seed
        self.score_name = score_name
        self.source = source
        self.id_column = id_column
        self.class_sizes = class_sizes
        self.stream_mode = stream_mode
        self.group_column = group_column

    @classmethod
    def from_probe(
        cls,
        result: Any,
        density: float,
        *,
        within: str = "random",
        keep: Keep | R.KeepRule | None = None,
        strategy_score: str | None = None,
        **kwargs: Any,
    ) -> DRoPFilter:
        """A filter that uses a probe's class errors and scores (a ``ProbeResult`` or its folder).

        ``within`` is ``"random"``, a score name (``"el2n"``, ``"forgetting"``, ...; oriented so
        that ``keep="hard"``, the default, keeps the hardest, AUM and margin included) or
        ``"embedding"`` (k-center). ``strategy_score`` names the score of ``quota="strategy"``.
        The filter refuses to fit a dataset other than the one the probe saw.
        """
        from ..probe.result import ProbeResult
        from .from_probe import probe_options

        if not isinstance(result, ProbeResult):
            result = ProbeResult.load(result)
        return cls(density, **probe_options(result, within, keep, strategy_score, kwargs))

    # --- scikit-learn-style API ---------------------------------------------------------------

    @classmethod
    @functools.cache
    def _param_names(cls) -> tuple[str, ...]:
        signature = inspect.signature(cls.__init__)
        return tuple(name for name in signature.parameters if name != "self")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments, as given (``deep`` is accepted for scikit-learn)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> DRoPFilter:
        """Change constructor arguments (scikit-learn style); returns self. A fitted filter then
        refuses to apply until it is fitted again."""
        unknown = sorted(set(params) - set(self._param_names()))
        if unknown:
            raise ValueError(
                f"unknown parameters {unknown}; DRoPFilter takes {list(self._param_names())}"
            )
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def fit(self, dataset: datasets.Dataset | datasets.IterableDataset) -> DRoPFilter:
        """Choose the kept rows of ``dataset``: sets ``quotas_`` and ``indices_``; returns self.

        An ``IterableDataset`` (a stream) is counted, not held: ``quotas_`` are set and each
        row's fate is left to ``apply`` (see ``stream_mode``).
        """
        given = self.get_params()
        spec = P.resolve(given)
        snapshot = P.snapshot(given)
        fit = fit_stream if isinstance(dataset, datasets.IterableDataset) else fit_dataset
        # The rules' QuotaWarnings point at the caller's fit(), not at the module that found them.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = fit(spec, snapshot, dataset)
            if spec.quota.needs_errors:
                warn_diagnostics(result.record)
        for warning in caught:
            warnings.warn(warning.message, warning.category, stacklevel=2)
        return self._set_fitted(result.record, result.rows, given, spec)

    def _set_fitted(
        self,
        record: PruningRecord,
        rows: FittedRows,
        given: dict[str, Any],
        spec: P.FilterSpec | None = None,
    ) -> DRoPFilter:
        """The fitted state (``fit``, or ``load`` of a saved fit): the record, the rows, the
        parameters they belong to (``given``: set_params after this makes apply refuse)."""
        self.spec_ = spec if spec is not None else P.resolve(given)
        self.rows_, self.record_ = rows, record
        self._given = given
        self.classes_ = record.classes
        self.class_sizes_ = np.array(record.class_sizes, dtype=np.int64)
        self.quotas_ = np.array(record.quotas, dtype=np.int64)
        self.class_errors_ = as_floats(record.class_errors)
        self.class_errors_used_ = as_floats(record.class_errors_used)
        self.class_support_ = as_floats(record.class_support)
        self.num_rows_ = record.num_rows
        self.label_hash_ = record.source.get("label_hash")
        self.source_fingerprint_ = record.source.get("fingerprint")
        self.identity_ = {key: record.source[key] for key in _IDENTITY if key in record.source}
        return self

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write this filter, with its fit if fitted, to the JSON file ``path`` (no pickle);
        :meth:`load` reads it back. An existing file is replaced only with ``overwrite=True``."""
        return save_filter(self, path, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike) -> DRoPFilter:
        """A filter written by :meth:`save`: the same parameters and, if it was fitted, the same
        record and kept rows (``apply`` still refuses any dataset but the fitted one)."""
        return load_filter(cls, path)

    @property
    def indices_(self) -> NDArray[np.int64]:
        """Sorted kept positions of the fitted dataset (a stream fit has none)."""
        return self.fitted_rows().indices

    def apply(
        self, dataset: datasets.Dataset | datasets.DatasetDict | datasets.IterableDataset
    ) -> datasets.Dataset | datasets.DatasetDict | datasets.IterableDataset:
        """The kept rows of ``dataset`` (the one ``fit`` saw), via ``Dataset.select``.

        Any other dataset is refused: other rows, other labels, a shuffle or a filter of it
        (with ``id_column``: the same rows in any order are accepted, and the kept ids are
        selected). A ``DatasetDict`` has the split ``fit`` saw pruned and the others untouched.
        A stream (``IterableDataset``) gives a stream of its kept rows, in the same format.
        """
        rows = self.fitted_rows()
        if isinstance(dataset, datasets.IterableDataset):
            rows.check_streamable()
            check_stream_columns(dataset, self.input_columns)
            formatting = dataset._formatting
            kept = dataset.with_format("arrow").filter(
                _TableMask(rows), batched=True, batch_size=BATCH_ROWS
            )
            return kept.with_format(formatting.format_type if formatting else None)
        if isinstance(dataset, datasets.IterableDatasetDict):
            raise ValueError(
                "apply a DRoPFilter to the one split it was fitted on, not an IterableDatasetDict "
                f"({list(dataset)})"
            )
        if isinstance(dataset, datasets.DatasetDict):
            return self._apply_dict(dataset, rows)
        return select_rows(dataset, rows.positions(dataset))

    @property
    def input_columns(self) -> list[str]:
        """What to pass as ``Dataset.filter(drop, input_columns=...)``: the label column (the
        group columns, with ``group_column``), and the id column when there is one (in this
        order), so that no image is decoded."""
        if hasattr(self, "spec_"):
            return self.spec_.input_columns
        groups = self.group_column
        units = (
            [self.label_column]
            if groups is None
            else [groups]
            if isinstance(groups, str)
            else list(groups)
        )
        return units + ([self.id_column] if self.id_column else [])

    def __call__(self, *args: Any) -> bool | NDArray[np.bool_]:
        """Keep/drop mask for ``dataset.filter(drop, with_indices=True, batched=True)``.

        The batch is a dict (no ``input_columns``) or the columns of ``drop.input_columns`` in
        that order; works unbatched too. Each batch is checked: by position, the labels must be
        those of the fitted rows at these positions; with ``id_column``, every id must be a
        fitted row of the same label. A mismatch (a shuffled, filtered or other dataset) raises
        a ValueError instead of keeping other rows.
        """
        rows = self.fitted_rows()
        columns, indices = self._unpack(args)
        scalar = np.ndim(columns[self.input_columns[0]]) == 0
        kept = rows.mask(columns, indices)
        return bool(kept[0]) if scalar else kept

    def report(self) -> pd.DataFrame:
        """Per class: name, size, kept, kept fraction, the error (with its 95% Wilson interval
        and validation support when known), the error the quotas used, and diagnostic flags:

        * ``starved``: keeps less than half of its proportional share (``density * size / 2``)
          and of the class-balanced share (half of the budget over the classes);
        * ``zero error``: the probe never missed it (the paper's rule would keep none of it);
        * ``indistinguishable``: its error's interval holds the classes' pooled error, so its
          quota reflects noise as much as difficulty;
        * ``no error``: the validation split had none of it.
        """
        self.fitted_rows()
        return report_table(self.record_)

    def provenance(self) -> dict[str, Any]:
        """How the subset was made, JSON-ready: the record of the last fit (arguments as they
        were at ``fit``, per-class numbers, source, versions)."""
        self.fitted_rows()
        return self.record_.to_dict()

    @property
    def method(self) -> str:
        """A short name of the configuration, as in the paper: "Random+DRoP", "el2n+DRoP", ..."""
        if hasattr(self, "record_") and not self._stale():
            return self.record_.method
        return method_name(P.resolve(self.get_params()))

    @property
    def drop_settings(self) -> dict[str, Any] | None:
        """The DRoP settings in force (mode, strength, floor, shrink), or None for other rules."""
        return P.resolve(self.get_params()).quota.drop_settings

    def __repr__(self) -> str:
        defaults = {
            n: p.default for n, p in inspect.signature(type(self).__init__).parameters.items()
        }
        changed = [
            f"{name}={_short(value)}"
            for name, value in self.get_params().items()
            if name == "density" or not _same(value, defaults.get(name))
        ]
        return f"DRoPFilter({', '.join(changed)})"

    # --- helpers ------------------------------------------------------------------------------

    def fitted_rows(self) -> FittedRows:
        """The kept rows of the last fit (``rows_``), or a RuntimeError if the filter is not
        fitted, or a parameter was set since ``fit``."""
        if not hasattr(self, "rows_"):
            raise RuntimeError("this DRoPFilter is not fitted yet: call fit(dataset) first")
        changed = self._stale()
        if changed:
            raise RuntimeError(
                f"{', '.join(changed)} changed after fit: the fitted rows and the record belong "
                "to the old value; call fit(dataset) again"
            )
        return self.rows_

    def _stale(self) -> list[str]:
        """The parameters set to another object since ``fit``."""
        return [
            name
            for name, value in self.get_params().items()
            if not (value is self._given[name] or _same(value, self._given[name]))
        ]

    def _apply_dict(self, splits: datasets.DatasetDict, rows: FittedRows) -> datasets.DatasetDict:
        """Prune the one split that is the fitted dataset; leave the others as they are."""
        matching, reasons = {}, {}
        for name, split in splits.items():
            try:
                matching[name] = rows.positions(split)
            except (ValueError, TypeError) as error:
                reasons[name] = str(error)
        if len(matching) != 1:
            found = "none" if not matching else f"several ({list(matching)})"
            raise ValueError(
                f"a DatasetDict is pruned on the one split this DRoPFilter was fitted on, but "
                f"{found} of its splits {list(splits)} is that dataset: apply it to one split"
                + (f" ({reasons})" if not matching else "")
            )
        return datasets.DatasetDict(
            {
                name: select_rows(split, matching[name]) if name in matching else split
                for name, split in splits.items()
            }
        )

    def _unpack(self, args: tuple) -> tuple[dict[str, Any], Any]:
        """``Dataset.filter``'s call: (batch dict | one value list per input column)[, indices]."""
        wanted = self.input_columns
        if args and isinstance(args[0], Mapping):
            batch, rest = args[0], args[1:]
            missing = [c for c in wanted if c not in batch]
            if missing:
                raise ValueError(
                    f"the batch lacks column(s) {missing}, which DRoPFilter needs to check the "
                    f"rows: pass input_columns={wanted} (or no input_columns)"
                )
            columns = {c: batch[c] for c in wanted}
        else:
            n = len(wanted)
            if len(args) not in (n, n + 1):
                raise TypeError(
                    f"DRoPFilter got {len(args)} arguments: call dataset.filter(drop, "
                    f"with_indices=True, batched=True, input_columns={wanted})"
                )
            columns, rest = dict(zip(wanted, args[:n], strict=True)), args[n:]
        if len(rest) > 1 or (rest and _not_ints(rest[0])):
            raise TypeError(
                f"DRoPFilter got {len(args)} arguments that are not a batch and its row indices: "
                f"call dataset.filter(drop, with_indices=True, batched=True, "
                f"input_columns={wanted})"
            )
        return columns, (rest[0] if rest else None)


# What the record's source says identifies the fitted rows (the keys fit_dataset/fit_stream set).
_IDENTITY = ("num_rows", "label_column", "label_hash", "content", "id_column", "stream_mode")


class _TableMask:
    """``IterableDataset.filter(mask, batched=True)`` on an Arrow-formatted stream: picklable,
    so that DataLoader workers can take it."""

    def __init__(self, rows: FittedRows) -> None:
        self.rows = rows

    def __call__(self, table: Any) -> Any:
        import pyarrow as pa

        return pa.array(self.rows.table_mask(table))


def _not_ints(values: object) -> bool:
    array = np.asarray(values)
    return bool(array.size) and array.dtype.kind not in "iu"


def _same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return a is b
    try:
        return bool(a == b) or (isinstance(a, float) and a != a and b != b)
    except (TypeError, ValueError):
        return False


def _short(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"array(shape={value.shape})"
    if isinstance(value, Mapping) and len(value) > 4:
        return f"{{... {len(value)} classes}}"
    return repr(value)
