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
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Mapping
from typing import Any, Literal

import datasets
import numpy as np
import pandas as pd
import pyarrow as pa
import xxhash
from numpy.typing import ArrayLike, NDArray

from ..core import quotas as Q
from ..core import rules as R
from ..core import selection as S
from ..core import uncertainty as U
from ..data.columns import (
    Labels,
    check_identity,
    column_to_numpy,
    dataset_identity,
    read_groups,
    read_labels,
    read_scores,
)
from ..io.environment import versions
from ..io.portable import portable_command, portable_name
from . import stream as ST

__all__ = ["DRoPFilter"]

# The built-in rules (hf_drop.core.rules registers them; register_quota_rule adds others).
QuotaRule = Literal["drop", "drop_paper", "proportional", "uniform", "strategy", "global"] | str
Keep = Literal["hard", "easy", "ccs", "k_center"] | str
# Constructor arguments that are some rule's settings, in signature order.
_QUOTA_SETTINGS = ("mode", "strength", "floor", "shrink")
_KEEP_SETTINGS = ("ccs_beta", "ccs_strata")
ClassErrorsLike = ArrayLike | Mapping[str | int, float]


class DRoPFilter:
    """Keep a ``density`` fraction of a labelled dataset, class by class.

    How many samples each class keeps is set by ``quota``:

    * ``"drop"`` (default): robust DRoP: the kept fraction of a class grows with its error as in
      Algorithm 1, with a floor (``floor``, default 0.5: no class keeps less than half of its
      share), errors shrunk by their uncertainty (``shrink``, with ``class_support``), and a
      ``strength`` and ``mode`` to choose (:func:`hf_drop.core.quotas.drop_quotas`);
    * ``"drop_paper"``: exactly DRoP, Algorithm 1 of Vysogorets et al. (ICLR 2025): the kept fraction
      of a class is proportional to its ``class_errors`` (see :func:`hf_drop.core.quotas.drop_quotas`);
    * ``"proportional"``: the same fraction of every class;
    * ``"uniform"``: the same number of every class;
    * ``"strategy"``: the class counts that keeping the globally hardest (``keep="hard"``) or
      easiest (``keep="easy"``) ``strategy_scores`` would give ("Random+StrategyQ" with
      ``within="random"``; the score's own global selection with ``within`` the same score);
    * ``"global"``: no class counts at all: the selection runs over the whole dataset, blind to
      classes (the baselines: uniform Random, EL2N, CCS, k-center CoreSet, ...).

    Which samples inside a class, by ``within``:

    * ``"random"`` (default): uniformly at random ("Random+DRoP");
    * a score column name or array: the hardest (``keep="hard"``, highest score) or easiest
      (``keep="easy"``) of each class ("Strategy+DRoP"), or CCS strata (``keep="ccs"``);
    * an embedding column name or 2-D array with ``keep="k_center"``: k-center greedy coverage.

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
        keep: ``"hard"`` (default), ``"easy"``, ``"ccs"`` or ``"k_center"``; only with a score
            ``within`` (refused with ``within="random"``, where it would mean nothing).
        quota: the class-count rule: ``"drop"``, ``"proportional"``, ``"uniform"``,
            ``"strategy"``, or ``"global"`` (none).
        mode: ``"paper"`` (kept fraction proportional to error, default) or ``"count"`` (kept
            count proportional to error, as the authors' released code); ``quota="drop"`` only.
        strength: in [0, 1], how strongly errors set the quotas (0: proportional, 1: DRoP,
            default 1); ``quota="drop"`` only.
        floor: in [0, 1], the share of each class's proportional (or, if larger, uniform) share
            that it always keeps (default 0.5); ``quota="drop"`` only.
        shrink: shrink each error towards the classes' pooled error by an empirical-Bayes Beta
            posterior, as much as its validation support is small (default True; needs
            ``class_support``); ``quota="drop"`` only.
        min_per_class: every class keeps at least this many samples (all of it if smaller).
        missing_error: error used for a class with samples but no error (absent from
            ``class_errors``, or NaN: a class missing from the validation split). ``None``
            raises a ``ValueError`` naming such classes.
        strategy_scores: score column name or array for ``quota="strategy"``; defaults to
            ``within`` when that is a score.
        ccs_beta: CCS: fraction of the hardest samples dropped before stratifying.
        ccs_strata: CCS: number of equal-width score strata.
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

    Attributes set by :meth:`fit`: ``classes_`` (names), ``class_sizes_``, ``class_errors_``
    (the errors used, NaN where none), ``quotas_`` (kept per class), ``indices_`` (sorted kept
    rows), ``num_rows_``, ``label_hash_``, ``source_fingerprint_`` and ``identity_`` (what
    :meth:`apply` checks).
    """

    def __init__(
        self,
        density: float,
        *,
        class_errors: ClassErrorsLike | None = None,
        label_column: str = "label",
        within: str | ArrayLike = "random",
        keep: Keep | None = None,
        quota: QuotaRule = "drop",
        mode: Q.QuotaMode | None = None,
        strength: float | None = None,
        floor: float | None = None,
        shrink: bool | None = None,
        class_support: ArrayLike | Mapping[str | int, int] | None = None,
        min_per_class: int = 0,
        missing_error: float | None = None,
        strategy_scores: str | ArrayLike | None = None,
        ccs_beta: float = 0.1,
        ccs_strata: int = 50,
        seed: int = 0,
        score_name: str | None = None,
        source: Mapping[str, Any] | None = None,
        id_column: str | None = None,
        class_sizes: ArrayLike | Mapping[str | int, int] | None = None,
        stream_mode: ST.StreamMode = "approximate",
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
        keep: Keep | None = None,
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

        if not isinstance(result, ProbeResult):
            result = ProbeResult.load(result)
        # The support is the number of validation images per class (not times the number of
        # initialisations: the same images judge every initialisation).
        options: dict[str, Any] = {
            "class_errors": result.class_errors,
            "class_support": result.class_errors_with_support.support,
        }
        group_column = kwargs.get("group_column")
        if group_column is not None:  # quotas per group: the probe's group errors
            wanted = [group_column] if isinstance(group_column, str) else list(group_column)
            measured = result.group_column
            measured = [measured] if isinstance(measured, str) else measured
            if measured != wanted:
                raise ValueError(
                    f"group_column={group_column!r}, but the probe in {result.folder} measured "
                    f"group errors for {measured!r}: probe with --group-column {' '.join(wanted)}"
                )
            options.update(class_errors=result.group_errors_with_support, class_support=None)
        if within == "embedding":
            options.update(within=result.score("embedding"), keep=keep or "k_center")
        elif within != "random":
            options.update(within=result.difficulty(within), keep=keep)
        elif keep is not None:
            options["keep"] = keep  # refused by fit: keep needs a score
        if strategy_score is not None:
            options["strategy_scores"] = result.difficulty(strategy_score)
            kwargs.setdefault("quota", "strategy")
        named = strategy_score if within == "random" else within
        options["score_name"] = None if named == "random" else named
        # The identity that fit() checks, and where the errors and scores came from (no
        # machine-local path: the record must mean the same thing on another machine).
        source = {key: result.source.get(key) for key in _IDENTITY_KEYS}
        for key in ("config", "split", "max_train_samples", "revision", "train_indices"):
            source[key] = result.source.get(key)
        source["name"] = portable_name(result.source.get("name"))
        model = dict(result.record["model"], name=portable_name(result.record["model"]["name"]))
        config = dict(
            result.record["config"], model=portable_name(result.record["config"]["model"])
        )
        source["probe"] = {
            "command": portable_command(result.source.get("command"), output="probe"),
            "model": model,
            "config": config,
            # What the card's reproduce command needs: the probe's names of the scores used.
            "within": within,
            "strategy_score": strategy_score,
        }
        return cls(
            density,
            label_column=result.source["label_column"],
            source=source,
            **(options | kwargs),
        )

    # --- scikit-learn-style API ---------------------------------------------------------------

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments, as given (``deep`` is accepted for scikit-learn)."""
        return {name: getattr(self, name) for name in _PARAMS}

    def set_params(self, **params: Any) -> DRoPFilter:
        """Change constructor arguments (scikit-learn style); returns self."""
        unknown = sorted(set(params) - set(_PARAMS))
        if unknown:
            raise ValueError(f"unknown parameters {unknown}; DRoPFilter takes {list(_PARAMS)}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def fit(self, dataset: datasets.Dataset) -> DRoPFilter:
        """Choose the kept rows of ``dataset``: sets ``quotas_`` and ``indices_``; returns self.

        An ``IterableDataset`` (a stream) is counted, not held: ``quotas_`` are set and each
        row's fate is left to ``apply`` (see ``stream_mode``).
        """
        self._check_params()
        if isinstance(dataset, datasets.IterableDataset):
            return self._fit_stream(dataset)
        for name in ("class_sizes", "stream_mode"):
            if not _same(getattr(self, name), _DEFAULTS[name]):
                raise ValueError(
                    f"{name} applies to a stream (IterableDataset); this Dataset's class sizes "
                    "are counted exactly: drop it"
                )
        self._decision = None
        labels = read_labels(dataset, self.label_column)
        identity = dataset_identity(dataset, self.label_column, labels=labels)
        if self.source is not None:
            self._check_source(dataset, labels, identity)
        labels, classes = self._units(dataset), labels  # the quotas' units: classes or groups
        num_classes = len(labels.names)
        sizes = np.bincount(labels.ids, minlength=num_classes)
        rule = R.quota_rule(self.quota)
        used = self._errors_in_use(rule, labels, sizes)
        within = (
            None
            if _is_random(self.within)
            else read_scores(dataset, self.within, ndim=self._keep_rule.ndim, name="within")
        )

        if rule.counts is None:  # class-blind: the class counts follow from the selection
            self.indices_ = self._select_global(len(dataset), within)
            quotas = np.bincount(labels.ids[self.indices_], minlength=num_classes)
        else:
            quotas = self._warned_quotas(dataset, labels, sizes, used, within, stacklevel=3)
            self.indices_ = self._select(labels.ids, quotas, within)
        self.quotas_ = quotas
        self.classes_ = labels.names
        self.class_sizes_ = sizes
        if rule.needs_errors:
            self._warn_diagnostics()
        self.num_rows_ = len(dataset)
        self.label_hash_ = classes.hash
        self.source_fingerprint_ = dataset._fingerprint
        self.identity_ = (
            identity
            if self.id_column is None
            else {
                "num_rows": len(dataset),
                "label_column": self.label_column,
                "id_column": self.id_column,
            }
        )
        # What batch-wise Dataset.filter calls check against: each fitted row's class, whether
        # it is kept, and (with id_column) where each id sat.
        self._labels = labels.ids.astype(np.int16 if num_classes < 2**15 else np.int32)
        self._kept = np.zeros(len(dataset), dtype=bool)
        self._kept[self.indices_] = True
        self._ids = None if self.id_column is None else _read_ids(dataset, self.id_column)
        return self

    def apply(
        self, dataset: datasets.Dataset | datasets.DatasetDict
    ) -> datasets.Dataset | datasets.DatasetDict:
        """The kept rows of ``dataset`` (the one ``fit`` saw), via ``Dataset.select``.

        Any other dataset is refused: other rows, other labels, a shuffle or a filter of it
        (with ``id_column``: the same rows in any order are accepted, and the kept ids are
        selected). A ``DatasetDict`` has the split ``fit`` saw pruned and the others untouched.
        """
        self._check_fitted()
        if isinstance(dataset, datasets.IterableDataset):
            return self._apply_stream(dataset)
        if isinstance(dataset, datasets.IterableDatasetDict):
            raise ValueError(
                "apply a DRoPFilter to the one split it was fitted on, not an IterableDatasetDict "
                f"({list(dataset)})"
            )
        if self._decision is not None:  # fitted on a stream: the same decision, in memory
            return _select_rows(dataset, self._decided_rows(dataset))
        if isinstance(dataset, datasets.DatasetDict):
            return self._apply_dict(dataset)
        return _select_rows(dataset, self._kept_rows(dataset))

    @property
    def input_columns(self) -> list[str]:
        """What to pass as ``Dataset.filter(drop, input_columns=...)``: the label column (the
        group columns, with ``group_column``), and the id column when there is one (in this
        order), so that no image is decoded."""
        return self._unit_columns + ([self.id_column] if self.id_column else [])

    @property
    def _unit_columns(self) -> list[str]:
        if self.group_column is None:
            return [self.label_column]
        return (
            [self.group_column] if isinstance(self.group_column, str) else list(self.group_column)
        )

    def _units(self, dataset: datasets.Dataset) -> Labels:
        """What the quotas count: the classes of the label column, or the groups."""
        if self.group_column is None:
            return read_labels(dataset, self.label_column)
        groups = read_groups(dataset, self.group_column)
        self._group_value_names = {  # how a batch's raw values name the groups (__call__)
            column: read_labels(dataset, column).names
            if isinstance(dataset.features[column], datasets.ClassLabel)
            else None
            for column in self._unit_columns
        }
        return groups

    def _batch_units(self, columns: Mapping[str, Any]) -> Any:
        """A batch's class labels, or its group names (``group_column``)."""
        if self.group_column is None:
            return columns[self.label_column]
        parts = []
        for column in self._unit_columns:
            values = np.asarray(columns[column], dtype=object).reshape(-1)
            names = self._group_value_names[column]
            parts.append([str(names[v]) if names is not None else str(v) for v in values])
        joined = np.array(["/".join(row) for row in zip(*parts, strict=True)], dtype=object)
        return joined if np.ndim(columns[self._unit_columns[0]]) else joined.reshape(())

    def __call__(self, *args: Any) -> bool | NDArray[np.bool_]:
        """Keep/drop mask for ``dataset.filter(drop, with_indices=True, batched=True)``.

        The batch is a dict (no ``input_columns``) or the columns of ``drop.input_columns`` in
        that order; works unbatched too. Each batch is checked: by position, the labels must be
        those of the fitted rows at these positions; with ``id_column``, every id must be a
        fitted row of the same label. A mismatch (a shuffled, filtered or other dataset) raises
        a ValueError instead of keeping other rows.
        """
        self._check_fitted()
        columns, indices = self._unpack(args)
        if self._decision is not None:  # fitted on a stream: decided by id and class
            values = {c: columns[c] for c in self.input_columns}
            scalar = np.ndim(values[self.label_column]) == 0
            table = pa.table({c: [v] if scalar else v for c, v in values.items()})
            kept = self._decision.mask(table)
            return bool(kept[0]) if scalar else kept
        if self.id_column is None:
            if indices is None:
                raise TypeError(
                    "DRoPFilter decides by row position: call dataset.filter(drop, "
                    "with_indices=True, batched=True), or fit with id_column="
                )
            rows = np.asarray(indices, dtype=np.int64)
            if rows.size and (rows.min() < 0 or rows.max() >= self.num_rows_):
                raise ValueError(
                    f"row indices {rows.min()}..{rows.max()} are out of range for the "
                    f"{self.num_rows_}-row dataset this DRoPFilter was fitted on: filter that "
                    "dataset, or fit this one"
                )
        else:
            rows = self._rows_of_ids(np.asarray(columns[self.id_column], dtype=object))
        self._check_batch_labels(self._batch_units(columns), rows)
        kept = self._kept[rows.ravel()]
        return bool(kept[0]) if rows.ndim == 0 else kept

    # --- streams ------------------------------------------------------------------------------

    def _fit_stream(self, stream: datasets.IterableDataset) -> DRoPFilter:
        """Quotas of a stream from its class sizes (counted, or ``class_sizes``); the rows are
        decided by ``apply`` (:mod:`hf_drop.pruning.stream`)."""
        rule = R.quota_rule(self.quota)
        if self.group_column is not None:
            raise ValueError(
                "group_column applies to a Dataset; a stream is pruned by the classes of its "
                "label column (combine the group columns into one label column to stream groups)"
            )
        if self.id_column is None:
            raise ValueError(
                "a stream (IterableDataset) needs id_column=, a column of unique, stable row ids: "
                "each row is kept by its id and class, the same on every shard, order and node"
            )
        if not _is_random(self.within) or rule.from_selection:
            raise ValueError(
                "a stream is pruned at random within each class (within='random', a quota rule "
                f"that needs no scores; not quota={self.quota!r}, within={_short(self.within)}): "
                "score-based selection needs all scores at once; use a Dataset"
            )
        _one_of("stream_mode", self.stream_mode, ("approximate", "exact"))
        known = stream.column_names  # None when the stream's features are unknown
        missing = [c for c in self.input_columns if known is not None and c not in known]
        if missing:
            raise ValueError(f"the stream has no column(s) {missing}; its columns are {known}")
        if self.class_sizes is not None and self.stream_mode == "approximate":
            reader = self._stream_reader(stream)
            sizes = _per_class(
                self.class_sizes,
                Labels(np.empty(0, np.int64), reader.names, self.label_column),
                "class_sizes",
                _support_value,
            )
            if np.any(np.isnan(sizes)):
                raise ValueError(f"class_sizes must give every class of {reader.names[:20]}")
            sizes = sizes.astype(np.int64)
        else:
            sizes, reader = ST.count_classes(stream, self.label_column)
        labels = Labels(np.empty(0, np.int64), reader.names, self.label_column)
        self._check_stream_source(sizes)
        used = self._errors_in_use(rule, labels, sizes)
        if rule.counts is None:  # class-blind: each class keeps its share, as random rows would
            quotas = Q.proportional_quotas(sizes, self.density)
        else:  # stacklevel: _warned_quotas, _fit_stream, fit, the caller
            quotas = self._warned_quotas(None, labels, sizes, used, None, stacklevel=4)
        if self.stream_mode == "exact":
            seen, self._decision = ST.exact_thresholds(
                stream, reader, self.id_column, self.seed, quotas
            )
            if not np.array_equal(seen, sizes):
                raise ValueError("the stream changed between its counting passes: fit it again")
        else:
            self._decision = ST.approximate_decision(
                reader, self.id_column, self.seed, sizes, quotas
            )
        self.quotas_, self.classes_, self.class_sizes_ = quotas, reader.names, sizes
        self.num_rows_ = int(sizes.sum())
        self.label_hash_ = self.source_fingerprint_ = None  # a stream is not hashed whole
        self.identity_ = {
            "num_rows": self.num_rows_,
            "label_column": self.label_column,
            "id_column": self.id_column,
            "stream_mode": self.stream_mode,
        }
        return self

    def _stream_reader(self, stream: datasets.IterableDataset) -> ST.ClassReader:
        feature = (stream.features or {}).get(self.label_column)
        if isinstance(feature, datasets.ClassLabel):
            return ST.ClassReader(self.label_column, list(feature.names), by_name=False)
        if isinstance(self.class_sizes, Mapping) and all(
            isinstance(k, str) for k in self.class_sizes
        ):
            return ST.ClassReader(self.label_column, sorted(self.class_sizes), by_name=True)
        raise ValueError(
            f"the stream's label column {self.label_column!r} is not a ClassLabel, so "
            "class_sizes must be a mapping by class name (or leave class_sizes out: one pass "
            "counts them)"
        )

    def _check_stream_source(self, sizes: NDArray[np.int64]) -> None:
        """A probe's errors may only prune the rows it saw: a stream is checked by its size."""
        expected = (self.source or {}).get("num_rows")
        if expected is not None and int(sizes.sum()) != expected:
            raise ValueError(
                f"this stream holds {int(sizes.sum())} rows, but the class errors and scores of "
                f"this DRoPFilter come from a dataset of {expected} rows: pass the data the "
                "probe saw, or probe this one"
            )

    def _apply_stream(self, stream: datasets.IterableDataset) -> datasets.IterableDataset:
        """The kept rows of a stream, as a stream in the same format; no image is decoded."""
        decision = self._decision if self._decision is not None else self._stream_ids_decision()
        formatting = stream._formatting
        kept = stream.with_format("arrow").filter(decision, batched=True, batch_size=ST.BATCH_ROWS)
        return kept.with_format(formatting.format_type if formatting else None)

    def _stream_ids_decision(self) -> Any:
        """A filter fitted on a Dataset, applied to a stream of it: the kept ids, looked up."""
        if self.id_column is None:
            raise ValueError(
                "this DRoPFilter was fitted on a Dataset without id_column=: its decisions are "
                "by position, which a stream does not have; fit with id_column="
            )
        return _KeptIds(self)

    def _decided_rows(self, dataset: datasets.Dataset) -> NDArray[np.int64]:
        """Positions of the rows a stream-fitted filter keeps in an in-memory ``dataset``."""
        table = dataset.select_columns([self.label_column, self.id_column]).with_format("arrow")
        masks = [self._decision.mask(batch) for batch in table.iter(batch_size=ST.BATCH_ROWS)]
        return np.flatnonzero(np.concatenate(masks)) if masks else np.empty(0, np.int64)

    # --- how apply and __call__ find the fitted rows ----------------------------------------

    def _kept_rows(self, dataset: datasets.Dataset) -> NDArray[np.int64]:
        """Positions in ``dataset`` of the kept rows, or a ValueError if it is not the fitted
        dataset (by identity; with ``id_column``, the same ids with the same labels)."""
        labels = read_labels(dataset, self.label_column)
        if self.id_column is None:
            check_identity(
                dataset,
                self.identity_,
                seen="this DRoPFilter was fitted on",
                fix="apply it to the dataset it was fitted on, fit it on this one, or fit with "
                "id_column= (a column of stable row ids) to follow rows through shuffles",
                labels=labels,
            )
            return self.indices_
        rows = self._rows_of_ids(_read_ids(dataset, self.id_column).to_numpy())  # unique ids
        if len(rows) != self.num_rows_:
            raise ValueError(
                f"this dataset holds {len(rows)} of the {self.num_rows_} rows this DRoPFilter "
                "was fitted on: its class quotas would not hold; fit it on this dataset"
            )
        units = labels if self.group_column is None else self._units(dataset)
        self._check_batch_labels(units.ids, rows, names=units.names)
        return np.flatnonzero(self._kept[rows])

    def _apply_dict(self, splits: datasets.DatasetDict) -> datasets.DatasetDict:
        """Prune the one split that is the fitted dataset; leave the others as they are."""
        matching, reasons = {}, {}
        for name, split in splits.items():
            try:
                matching[name] = self._kept_rows(split)
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
                name: _select_rows(split, matching[name]) if name in matching else split
                for name, split in splits.items()
            }
        )

    def _unpack(self, args: tuple) -> tuple[dict[str, Any], Any]:
        """``Dataset.filter``'s call: (batch dict | one value list per input column)[, indices]."""
        if args and isinstance(args[0], Mapping):
            batch, rest = args[0], args[1:]
            missing = [c for c in self.input_columns if c not in batch]
            if missing:
                raise ValueError(
                    f"the batch lacks column(s) {missing}, which DRoPFilter needs to check the "
                    f"rows: pass input_columns={self.input_columns} (or no input_columns)"
                )
            columns = {c: batch[c] for c in self.input_columns}
        else:
            n = len(self.input_columns)
            if len(args) not in (n, n + 1):
                raise TypeError(
                    f"DRoPFilter got {len(args)} arguments: call dataset.filter(drop, "
                    f"with_indices=True, batched=True, input_columns={self.input_columns})"
                )
            columns, rest = dict(zip(self.input_columns, args[:n], strict=True)), args[n:]
        if len(rest) > 1 or (rest and _not_ints(rest[0])):
            raise TypeError(
                f"DRoPFilter got {len(args)} arguments that are not a batch and its row indices: "
                f"call dataset.filter(drop, with_indices=True, batched=True, "
                f"input_columns={self.input_columns})"
            )
        return columns, (rest[0] if rest else None)

    def _rows_of_ids(self, ids: NDArray) -> NDArray[np.int64]:
        """Fitted positions of ``ids``; an id the fit never saw is a ValueError."""
        scalar = ids.ndim == 0
        rows = self._ids.get_indexer(ids.reshape(-1))
        unknown = rows < 0
        if np.any(unknown):
            raise ValueError(
                f"id column {self.id_column!r} has {int(unknown.sum())} id(s) this DRoPFilter was "
                f"not fitted on (e.g. {ids.reshape(-1)[unknown][:5].tolist()}): these rows come "
                "from another dataset; fit it on this one"
            )
        return rows.reshape(()) if scalar else rows

    def _check_batch_labels(
        self, values: Any, rows: NDArray[np.int64], names: list[str] | None = None
    ) -> None:
        """The labels of these rows must be those of the fitted rows at ``rows``."""
        labels = np.asarray(values)
        if labels.size and labels.dtype.kind not in "iuOUS":
            raise ValueError(
                f"DRoPFilter got {labels.dtype} values where it expects the labels of column "
                f"{self.label_column!r}: pass input_columns={self.input_columns}"
            )
        if labels.dtype.kind in "OUS":  # a string label column: class ids by name
            by_name = {name: k for k, name in enumerate(self.classes_)}
            labels = np.array([by_name.get(v, -1) for v in labels.reshape(-1)])
        elif names is not None and names != self.classes_:
            raise ValueError(
                f"label column {self.label_column!r} has classes {names[:20]}, not the fitted "
                f"classes {self.classes_[:20]}: fit it on this dataset"
            )
        expected = self._labels[rows.reshape(-1)]
        wrong = np.flatnonzero(labels.reshape(-1) != expected)
        if wrong.size:
            where = "ids" if self.id_column else "positions"
            at = (
                np.asarray(rows).reshape(-1)[wrong[:5]].tolist()
                if self.id_column is None
                else wrong[:5].tolist()
            )
            raise ValueError(
                f"{wrong.size} of {expected.size} rows carry other labels than the fitted rows "
                f"at these {where} (e.g. {at}): this is not the dataset this DRoPFilter was "
                "fitted on (shuffled, filtered, or another one). Filter the fitted dataset, or "
                "fit with id_column= to follow rows by id"
            )

    def report(self) -> pd.DataFrame:
        """Per class: name, size, kept, kept fraction, the error (with its 95% Wilson interval
        and validation support when known), the error the quotas used, and diagnostic flags:

        * ``starved``: keeps less than half of its proportional share (``density * size / 2``);
        * ``zero error``: the probe never missed it (the paper's rule would keep none of it);
        * ``indistinguishable``: its error's interval holds the classes' pooled error, so its
          quota reflects noise as much as difficulty;
        * ``no error``: the validation split had none of it.
        """
        self._check_fitted()
        with np.errstate(invalid="ignore", divide="ignore"):
            fraction = np.where(self.class_sizes_ > 0, self.quotas_ / self.class_sizes_, np.nan)
        low, high = self._error_interval()
        table = pd.DataFrame(
            {
                "name": self.classes_,
                "size": self.class_sizes_,
                "kept": self.quotas_,
                "kept_fraction": fraction,
                "error": self.class_errors_,
                "support": self.class_support_,
                "error_low": low,
                "error_high": high,
                "error_used": self.class_errors_used_,
                "flags": [", ".join(flags) for flags in self._flags()],
            },
            index=pd.RangeIndex(len(self.classes_), name="class"),
        )
        return table

    def _error_interval(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """95% Wilson interval of each class error (NaN where the support is unknown)."""
        support = np.nan_to_num(self.class_support_, nan=0.0)
        mistakes = np.nan_to_num(self.class_errors_) * support  # averaged: may be fractional
        low, high = U.wilson_interval(mistakes, support)
        return np.asarray(low, dtype=float), np.asarray(high, dtype=float)

    def _flags(self) -> list[list[str]]:
        """The diagnostic flags of :meth:`report`, class by class."""
        sizes, kept, errors = self.class_sizes_, self.quotas_, self.class_errors_
        low, high = self._error_interval()
        support = np.nan_to_num(self.class_support_, nan=0.0)
        pooled = float(np.nansum(errors * support) / support.sum()) if support.sum() > 0 else np.nan
        flags = []
        for k in range(len(sizes)):
            mine = []
            if sizes[k] > 0 and kept[k] < np.floor(0.5 * self.density * sizes[k]):
                mine.append("starved")
            if errors[k] == 0:
                mine.append("zero error")
            if support[k] > 0 and low[k] <= pooled <= high[k]:
                mine.append("indistinguishable")
            if np.isnan(errors[k]) and sizes[k] > 0:
                mine.append("no error")
            flags.append(mine)
        return flags

    def _warn_diagnostics(self) -> None:
        """QuotaWarnings for what the report flags and a user should act on before training."""
        flags = self._flags()
        starved = [self.classes_[k] for k, f in enumerate(flags) if "starved" in f]
        if starved:
            warnings.warn(
                f"classes {starved[:20]} keep less than half of their proportional share: their "
                "accuracy may collapse after training; pass quota='drop' with floor= (0.5 "
                "keeps half of each share) or min_per_class=",
                Q.QuotaWarning,
                stacklevel=3,
            )
        known = ~np.isnan(self.class_support_) & (self.class_support_ > 0)
        if known.sum() >= 2 and all("indistinguishable" in flags[k] for k in np.flatnonzero(known)):
            warnings.warn(
                "no class's error is distinguishable from the pooled error at 95% (see "
                "report(): error_low, error_high): the quotas follow validation noise as much as "
                "difficulty; use a larger validation split, or keep shrink and floor on",
                Q.QuotaWarning,
                stacklevel=3,
            )

    def provenance(self) -> dict[str, Any]:
        """How the subset was made, JSON-ready: arguments, per-class numbers, source, versions."""
        self._check_fitted()
        return {
            "method": self.method,
            "params": {name: _jsonable(value) for name, value in self.get_params().items()},
            "classes": self.classes_,
            "class_sizes": self.class_sizes_.tolist(),
            "class_errors": [None if np.isnan(e) else float(e) for e in self.class_errors_],
            "class_errors_used": [
                None if np.isnan(e) else float(e) for e in self.class_errors_used_
            ],
            "class_support": [None if np.isnan(n) else int(n) for n in self.class_support_],
            "drop_settings": self.drop_settings,
            "quotas": self.quotas_.tolist(),
            "num_rows": int(self.num_rows_),
            "num_kept": int(self.quotas_.sum())
            if self._decision is not None
            else len(self.indices_),
            "source": {
                **_jsonable(self.source or {}),
                "fingerprint": self.source_fingerprint_,
                "label_hash": self.label_hash_,
                **self.identity_,
            },
            "versions": versions("datasets", "numpy"),
        }

    @property
    def method(self) -> str:
        """A short name of the configuration, as in the paper: "Random+DRoP", "el2n+DRoP", ..."""
        within = "Random" if _is_random(self.within) else self._score_label(self.within)
        if self.keep is not None and R.keep_rule(self.keep).in_name:
            within = f"{within}({self.keep})"
        rule = R.quota_rule(self.quota)
        if rule.counts is None:
            return within
        if rule.from_selection:
            if _is_random(self.within) or (
                self.strategy_scores is not None and self.strategy_scores is not self.within
            ):
                return (
                    f"{within}+{rule.method_label({})}({self._score_label(self.strategy_scores)})"
                )
            return within
        settings = dict(self.drop_settings or {})
        settings["shrunk"] = bool(settings.get("shrink")) and (
            self.class_support is not None or isinstance(self.class_errors, U.ClassErrors)
        )
        per = "" if self.group_column is None else f" per {'+'.join(self._unit_columns)}"
        return f"{within}+{rule.method_label(settings)}{per}"

    def _score_label(self, scores: object) -> str:
        """A score's name: the column name, or ``score_name`` for an array."""
        return scores if isinstance(scores, str) else self.score_name or "scores"

    def __repr__(self) -> str:
        defaults = DRoPFilter(0.0)
        changed = [
            f"{name}={_short(value)}"
            for name, value in self.get_params().items()
            if name == "density" or not _same(value, getattr(defaults, name))
        ]
        return f"DRoPFilter({', '.join(changed)})"

    # --- the steps of fit ---------------------------------------------------------------------

    def _check_params(self) -> None:
        if isinstance(self.density, bool) or not isinstance(self.density, int | float):
            raise ValueError(f"density must be a number in [0, 1], got {self.density!r}")
        Q.budget(0, self.density)  # validates density
        rule = R.quota_rule(self.quota)
        keep = None if self.keep is None else R.keep_rule(self.keep)
        if self.mode is not None:
            _one_of("mode", self.mode, ("paper", "count"))
        given = [
            name
            for name in _QUOTA_SETTINGS
            if getattr(self, name) is not None and name not in rule.settings
        ]
        if given:
            takers = [r.name for r in R.QUOTA_RULES.values() if set(given) <= set(r.settings)]
            raise ValueError(
                f"{', '.join(given)} only appl{'ies' if len(given) == 1 else 'y'} to "
                + " or ".join(f"quota={name!r}" for name in takers)
                + (
                    f": quota={self.quota!r} is exactly the paper's Algorithm 1; use "
                    f"quota={takers[0]!r} to set them"
                    if rule.fixed and takers
                    else f", not quota={self.quota!r}"
                )
            )
        for name in ("strength", "floor"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, int | float | np.number)
                or not 0 <= value <= 1
            ):
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
        if self.shrink is not None and not isinstance(self.shrink, bool | np.bool_):
            raise ValueError(f"shrink must be True or False, got {self.shrink!r}")
        if rule.needs_errors and self.class_errors is None:
            raise ValueError(
                f"quota={self.quota!r} needs class_errors (per-class error of a probe model on held-out "
                "data); pass quota='proportional' or 'uniform' for rules that need none"
            )
        if rule.from_selection and self.strategy_scores is None and _is_random(self.within):
            raise ValueError(
                f"quota={self.quota!r} needs strategy_scores (a score column or array)"
            )
        # Arguments that would be silently ignored by this configuration are refused.
        if self.strategy_scores is not None and not rule.from_selection:
            raise ValueError(
                f"strategy_scores only applies to quota='strategy', not quota={self.quota!r}: "
                "pass quota='strategy' (Random+StrategyQ), or drop strategy_scores"
            )
        strategy_direction = rule.from_selection and keep is not None and keep.direction
        if self.keep is not None and _is_random(self.within) and not strategy_direction:
            raise ValueError(
                f"keep={self.keep!r} needs a score: pass within= a score (or embedding) column "
                "or array; with within='random' samples are kept at random"
            )
        for other in R.KEEP_RULES.values():
            changed = [n for n, d in other.settings.items() if not _same(getattr(self, n), d)]
            if changed and other is not keep:
                raise ValueError(
                    f"{' and '.join(other.settings)} only apply to keep={other.name!r}"
                )
        if isinstance(self.min_per_class, bool) or not (
            isinstance(self.min_per_class, int | np.integer) and self.min_per_class >= 0
        ):
            raise ValueError(f"min_per_class must be an int >= 0, got {self.min_per_class!r}")
        if not rule.takes_min_per_class and self.min_per_class:
            raise ValueError(
                f"min_per_class does not apply to quota={self.quota!r}: its counts are those of "
                "a global selection"
            )
        if self.missing_error is not None and not 0 <= self.missing_error <= 1:
            raise ValueError(f"missing_error must lie in [0, 1], got {self.missing_error!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer):
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")
        if self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")
        if self.id_column is not None and not isinstance(self.id_column, str):
            raise ValueError(f"id_column must be a column name, got {self.id_column!r}")

    def _errors_in_use(
        self, rule: R.QuotaRule, labels: Labels, sizes: NDArray[np.int64]
    ) -> NDArray[np.float64] | None:
        """The errors the quotas use (shrunk where that applies); records ``class_errors_``,
        ``class_errors_used_`` and ``class_support_`` (NaN where none)."""
        errors = self._resolve_errors(labels, sizes)
        support = self._resolve_support(labels)
        used = errors
        if rule.needs_errors and errors is not None:
            used = self._errors_for_quotas(errors, support)
        n = len(sizes)
        self.class_errors_ = np.full(n, np.nan) if errors is None else errors
        self.class_errors_used_ = np.full(n, np.nan) if used is None else used
        self.class_support_ = np.full(n, np.nan) if support is None else support
        return used

    def _warned_quotas(
        self, dataset, labels: Labels, sizes: NDArray, used: NDArray | None, within, stacklevel: int
    ) -> NDArray[np.int64]:
        """:meth:`_quotas`, its QuotaWarnings re-issued at ``stacklevel`` so that they point at
        the caller's ``fit()``."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", Q.QuotaWarning)
            quotas = self._quotas(dataset, labels, sizes, used, within)
        for warning in caught:
            warnings.warn(warning.message, warning.category, stacklevel=stacklevel)
        return quotas

    def _resolve_errors(self, labels: Labels, sizes: NDArray) -> NDArray[np.float64] | None:
        """Errors as an array by class id; a missing one is ``missing_error`` or an error."""
        if self.class_errors is None:
            return None
        given = self._per_unit(self.class_errors, "errors", labels)
        errors = _per_class(given, labels, "class_errors", _error_value)
        names = labels.names
        missing = np.isnan(errors)
        errors[missing & (sizes == 0)] = 0.0  # an empty class keeps nothing whatever its error
        missing &= sizes > 0
        if np.any(missing) and R.quota_rule(self.quota).needs_errors:  # others only report them
            if self.missing_error is None:
                raise ValueError(
                    f"class_errors has no error for classes "
                    f"{[names[k] for k in np.flatnonzero(missing)]} (absent from the validation "
                    "split?); pass missing_error= to give them one"
                )
            errors[missing] = self.missing_error
        return errors

    def _resolve_support(self, labels: Labels) -> NDArray[np.float64] | None:
        """Validation support by class id (NaN where unknown), or None."""
        given = self.class_support
        if given is None and isinstance(self.class_errors, U.ClassErrors):
            given = self._per_unit(self.class_errors, "support", labels)
        if given is None:
            return None
        return _per_class(given, labels, "class_support", _support_value)

    def _per_unit(self, given: Any, field: str, labels: Labels) -> Any:
        """A ``ClassErrors``' errors or support: by class id for classes (as the probe and
        ``class_errors_from_predictions`` number them), by name for groups, whose validation
        split may hold groups the training rows lack (they keep nothing: left out here)."""
        if not isinstance(given, U.ClassErrors):
            return given
        values = getattr(given, field)
        if self.group_column is None:
            return values
        return {n: v for n, v in zip(given.names, values, strict=True) if n in labels.names}

    @property
    def drop_settings(self) -> dict[str, Any] | None:
        """The DRoP settings in force (mode, strength, floor, shrink), or None for other rules."""
        rule = R.quota_rule(self.quota)
        if not rule.settings and not rule.fixed:
            return None
        return rule.settings_in_force({name: getattr(self, name) for name in _QUOTA_SETTINGS})

    def _errors_for_quotas(
        self, errors: NDArray[np.float64], support: NDArray[np.float64] | None
    ) -> NDArray[np.float64]:
        """The errors DRoP's quotas use: shrunk by an empirical-Bayes Beta posterior where the
        support is known and ``shrink`` is on; the errors as given otherwise."""
        settings = self.drop_settings
        if not settings.get("shrink") or support is None:
            return errors
        known = ~np.isnan(support) & (support > 0)
        if known.sum() < 2:
            return errors
        mistakes = errors[known] * support[known]
        prior_mean, prior_strength = U.empirical_bayes_prior(mistakes, support[known])
        shrunk = errors.copy()
        shrunk[known] = U.beta_posterior(mistakes, support[known], prior_mean, prior_strength)
        return shrunk

    def _quotas(
        self,
        dataset: datasets.Dataset,
        labels: Labels,
        sizes: NDArray,
        errors: NDArray | None,
        within: NDArray | None,
    ) -> NDArray[np.int64]:
        rule = R.quota_rule(self.quota)
        counts = None
        if rule.from_selection:
            scores = (
                within
                if self.strategy_scores is None
                else read_scores(dataset, self.strategy_scores, name="strategy_scores")
            )
            if scores.ndim != 1:
                raise ValueError(f"quota={self.quota!r} needs one score per row, not embeddings")
            n_keep = Q.budget(len(scores), self.density)
            chosen = S.global_top(scores, n_keep, keep=self._direction)
            counts = Q.quotas_from_selection(labels.ids, chosen, len(sizes))
        inputs = R.QuotaInputs(
            sizes=sizes,
            density=self.density,
            errors=errors,
            min_per_class=self.min_per_class,
            class_names=labels.names,
            settings=self.drop_settings or {},
            selection_counts=counts,
        )
        return rule.counts(inputs)

    def _select(
        self, labels: NDArray[np.int64], quotas: NDArray[np.int64], within: NDArray | None
    ) -> NDArray[np.int64]:
        if within is None:
            return S.random_within_class(labels, quotas, seed=self.seed)
        return self._keep_rule.select(within, quotas, labels, self.seed, self._keep_settings)

    def _select_global(self, n_rows: int, within: NDArray | None) -> NDArray[np.int64]:
        """The baselines' class-blind selection of ``density * n_rows`` rows."""
        n_keep = Q.budget(n_rows, self.density)
        if within is None:
            return S.global_random(n_rows, n_keep, seed=self.seed)
        return self._keep_rule.select(within, n_keep, None, self.seed, self._keep_settings)

    @property
    def _keep_rule(self) -> R.KeepRule:
        return R.keep_rule(self.keep or "hard")

    @property
    def _keep_settings(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._keep_rule.settings}

    def _check_source(self, dataset: datasets.Dataset, labels: Labels, identity: dict) -> None:
        check_identity(
            dataset,
            {key: self.source.get(key) for key in _IDENTITY_KEYS},
            seen="the class errors and scores of this DRoPFilter come from",
            fix="pass the dataset the probe saw, or probe this one",
            labels=labels,
            actual=identity,
        )

    @property
    def _direction(self) -> S.Keep:
        """Which end of a score a global selection keeps (``quota="strategy"``)."""
        return self._keep_rule.direction or "hard"

    def _check_fitted(self) -> None:
        if not hasattr(self, "quotas_"):
            raise RuntimeError("this DRoPFilter is not fitted yet: call fit(dataset) first")


_PARAMS = (
    "density",
    "class_errors",
    "label_column",
    "within",
    "keep",
    "quota",
    "mode",
    "strength",
    "floor",
    "shrink",
    "class_support",
    "min_per_class",
    "missing_error",
    "strategy_scores",
    "ccs_beta",
    "ccs_strata",
    "seed",
    "score_name",
    "source",
    "id_column",
    "class_sizes",
    "stream_mode",
    "group_column",
)
# What a recorded source holds that identifies its rows (columns.dataset_identity).
_IDENTITY_KEYS = ("num_rows", "label_column", "label_hash", "content")


def _per_class(
    values: ArrayLike | Mapping, labels: Labels, name: str, check: Any
) -> NDArray[np.float64]:
    """A per-class argument (array by class id, or mapping by class name or id) as an array by
    class id, NaN where not given; ``check(key, value)`` validates and converts each value."""
    names = labels.names
    result = np.full(len(names), np.nan)
    if isinstance(values, Mapping):
        by_id = {class_name: k for k, class_name in enumerate(names)}
        given: dict[int, object] = {}
        for key, value in values.items():
            k = by_id.get(key, key) if isinstance(key, str) else key
            if (
                isinstance(k, bool)
                or not isinstance(k, int | np.integer)
                or not 0 <= k < len(names)
            ):
                raise ValueError(
                    f"{name} names class {key!r}, which is not a class of label column "
                    f"{labels.column!r} (classes: {names[:20]})"
                )
            if int(k) in given:
                raise ValueError(
                    f"{name} gives class {names[k]!r} twice (as {given[int(k)]!r} and {key!r}): "
                    "give each class once, by name or by id"
                )
            given[int(k)] = key
            result[k] = check(key, value, name)
        return result
    try:
        array = np.array(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be numbers: {error}") from None
    if array.ndim != 1 or len(array) != len(names):
        raise ValueError(
            f"{name} has shape {array.shape} but label column {labels.column!r} has "
            f"{len(names)} classes: one value per class id is expected"
        )
    for k, value in enumerate(array):
        result[k] = check(names[k], value, name)
    return result


def _number(key: object, value: object, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}[{key!r}] must be a number, got {value!r}") from None


def _support_value(key: object, value: object, name: str = "class_support") -> float:
    """One class's validation support: a whole number >= 0 (NaN: unknown)."""
    support = _number(key, value, name)
    if not (math.isnan(support) or (support >= 0 and support == int(support))):
        raise ValueError(f"{name}[{key!r}] must be a whole number >= 0, got {value!r}")
    return support


def _error_value(key: object, value: object, name: str = "class_errors") -> float:
    """One class error: a number in [0, 1], or NaN for "none"."""
    error = _number(key, value, name)
    if not (math.isnan(error) or 0 <= error <= 1):
        raise ValueError(
            f"{name} must lie in [0, 1] (NaN: no error for that class); got {value!r} for "
            f"class {key!r}"
        )
    return error


def _read_ids(dataset: datasets.Dataset, column: str) -> pd.Index:
    """The id column as a unique pandas Index (hash lookups for int and string ids)."""
    if column not in dataset.column_names:
        raise ValueError(
            f"id_column {column!r} is not a column of the dataset; its columns are "
            f"{dataset.column_names}"
        )
    ids = pd.Index(column_to_numpy(dataset, column, role="id_column"))
    if ids.dtype.kind not in "iuO" or (
        ids.dtype.kind == "O" and not all(isinstance(v, str) for v in ids[:1000])
    ):
        raise ValueError(f"id_column {column!r} must hold int or string ids, got {ids.dtype}")
    if not ids.is_unique:
        duplicated = ids[ids.duplicated()].unique()[:5].tolist()
        raise ValueError(f"id_column {column!r} has duplicate ids, e.g. {duplicated}")
    return ids


def _jsonable(value: object) -> object:
    if isinstance(value, U.ClassErrors):  # errors with their counts (from_probe, group errors)
        return {
            "names": list(value.names),
            "errors": [None if np.isnan(e) else float(e) for e in value.errors],
            "support": value.support.tolist(),
            "mistakes": value.mistakes.tolist(),
            "train_sizes": None if value.train_sizes is None else value.train_sizes.tolist(),
            "num_inits": value.num_inits,
        }
    if isinstance(value, np.ndarray):
        return f"<array of shape {list(value.shape)}>" if value.size > 1000 else value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


class _KeptIds:
    """The decision of a Dataset-fitted filter on a stream of the same rows: each Arrow batch's
    ids are looked up among the fitted ones (unknown ids and other labels are refused)."""

    def __init__(self, drop: DRoPFilter) -> None:
        self.drop = drop

    def __call__(self, table: pa.Table) -> pa.BooleanArray:
        drop = self.drop
        ids = table[drop.id_column].to_numpy(zero_copy_only=False)
        rows = drop._rows_of_ids(np.asarray(ids, dtype=object))
        columns = {c: table[c].to_numpy(zero_copy_only=False) for c in drop._unit_columns}
        drop._check_batch_labels(drop._batch_units(columns), rows)  # classes, or groups
        return pa.array(drop._kept[rows])


def _select_rows(dataset: datasets.Dataset, rows: NDArray[np.int64]) -> datasets.Dataset:
    """``dataset.select(rows)``, fast."""
    # Dataset.select hashes its arguments into the new fingerprint and turns a numpy index
    # array into a list of numpy scalars; handing it Python ints and a fingerprint made from
    # the source's and the indices' bytes costs about a third less (make bench-prune).
    fingerprint = xxhash.xxh64(
        f"hf-drop-select-{dataset._fingerprint}-".encode() + rows.tobytes()
    ).hexdigest()
    return dataset.select(rows.tolist(), new_fingerprint=fingerprint)


def _not_ints(values: object) -> bool:
    array = np.asarray(values)
    return bool(array.size) and array.dtype.kind not in "iu"


def _is_random(within: object) -> bool:
    return isinstance(within, str) and within == "random"


def _one_of(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def _same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return False
    try:
        return bool(a == b) or (isinstance(a, float) and math.isnan(a) and math.isnan(b))
    except (TypeError, ValueError):
        return False


def _short(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"array(shape={value.shape})"
    if isinstance(value, Mapping) and len(value) > 4:
        return f"{{... {len(value)} classes}}"
    return repr(value)


# Constructor defaults, for the checks of arguments that only apply to some inputs.
_DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(DRoPFilter.__init__).parameters.items()
    if parameter.default is not inspect.Parameter.empty
}
