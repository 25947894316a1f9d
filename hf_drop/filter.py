"""DRoPFilter: the object users put on a ``datasets.Dataset``.

Configure it like a scikit-learn estimator, ``fit`` it on a dataset (only the label and score
columns are read; no image is decoded), then ``apply`` it, or hand it to ``Dataset.filter``::

    drop = DRoPFilter(0.5, class_errors=errors).fit(train)
    subset = drop.apply(train)                        # Dataset.select: fast, no copy
    same = train.filter(drop, with_indices=True, batched=True, input_columns="label")
    drop.report()                                     # what was kept, per class
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any, Literal

import datasets
import numpy as np
import pandas as pd
import xxhash
from numpy.typing import ArrayLike, NDArray

from . import quotas as Q
from . import select as S
from .columns import Labels, check_same_rows, read_labels, read_scores
from .environment import versions

__all__ = ["DRoPFilter"]

QuotaRule = Literal["drop", "proportional", "uniform", "strategy", "global"]
Keep = Literal["hard", "easy", "ccs", "k_center"]
ClassErrors = ArrayLike | Mapping[str | int, float]


class DRoPFilter:
    """Keep a ``density`` fraction of a labelled dataset, class by class.

    How many samples each class keeps is set by ``quota``:

    * ``"drop"`` (default): DRoP, Algorithm 1 of Vysogorets et al. (ICLR 2025): the kept fraction
      of a class is proportional to its ``class_errors`` (see :func:`hf_drop.quotas.drop_quotas`);
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
            indexed by class id, or a mapping from class name or id. Required by ``quota="drop"``.
        label_column: the label column: ``ClassLabel``, integer or string.
        within: ``"random"``, or the score (or embedding) column name or array.
        keep: ``"hard"``, ``"easy"``, ``"ccs"`` or ``"k_center"`` (with a score ``within``).
        quota: the class-count rule: ``"drop"``, ``"proportional"``, ``"uniform"``,
            ``"strategy"``, or ``"global"`` (none).
        mode: ``"paper"`` (kept fraction proportional to error) or ``"count"`` (kept count
            proportional to error, as the authors' released code); ``quota="drop"`` only.
        min_per_class: every class keeps at least this many samples (all of it if smaller).
        missing_error: error used for a class with samples but no error (absent from
            ``class_errors``, or NaN: a class missing from the validation split). ``None``
            raises a ``ValueError`` naming such classes.
        strategy_scores: score column name or array for ``quota="strategy"``; defaults to
            ``within`` when that is a score.
        ccs_beta: CCS: fraction of the hardest samples dropped before stratifying.
        ccs_strata: CCS: number of equal-width score strata.
        seed: seed of every random choice; the same seed gives the same subset.

    Attributes set by :meth:`fit`: ``classes_`` (names), ``class_sizes_``, ``class_errors_``
    (the errors used, NaN where none), ``quotas_`` (kept per class), ``indices_`` (sorted kept
    rows), ``n_samples_``, ``label_hash_`` and ``source_fingerprint_``.
    """

    def __init__(
        self,
        density: float,
        *,
        class_errors: ClassErrors | None = None,
        label_column: str = "label",
        within: str | ArrayLike = "random",
        keep: Keep = "hard",
        quota: QuotaRule = "drop",
        mode: Q.QuotaMode = "paper",
        min_per_class: int = 0,
        missing_error: float | None = None,
        strategy_scores: str | ArrayLike | None = None,
        ccs_beta: float = 0.1,
        ccs_strata: int = 50,
        seed: int = 0,
        score_name: str | None = None,
        source: Mapping[str, Any] | None = None,
    ) -> None:
        self.density = density
        self.class_errors = class_errors
        self.label_column = label_column
        self.within = within
        self.keep = keep
        self.quota = quota
        self.mode = mode
        self.min_per_class = min_per_class
        self.missing_error = missing_error
        self.strategy_scores = strategy_scores
        self.ccs_beta = ccs_beta
        self.ccs_strata = ccs_strata
        self.seed = seed
        self.score_name = score_name
        self.source = source

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
        from .probe.result import ProbeResult

        if not isinstance(result, ProbeResult):
            result = ProbeResult.load(result)
        options: dict[str, Any] = {"class_errors": result.class_errors}
        if within == "embedding":
            options.update(within=result.score("embedding"), keep=keep or "k_center")
        elif within != "random":
            options.update(within=result.difficulty(within), keep=keep or "hard")
        if strategy_score is not None:
            options["strategy_scores"] = result.difficulty(strategy_score)
            kwargs.setdefault("quota", "strategy")
        named = strategy_score if within == "random" else within
        options["score_name"] = None if named == "random" else named
        # The identity that fit() checks, and where the errors and scores came from.
        source = {key: result.source[key] for key in ("num_rows", "label_hash")}
        for key in ("name", "config", "split", "revision"):
            source[key] = result.source.get(key)
        source["probe"] = {
            "folder": str(result.folder),
            "command": result.source.get("command"),
            "model": result.record["model"],
            "config": result.record["config"],
        }
        return cls(
            density,
            label_column=result.source["label_column"],
            source=source,
            **(options | kwargs),
        )

    # --- scikit-learn-style API ---------------------------------------------------------------

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments, as given."""
        return {name: getattr(self, name) for name in _PARAMS}

    def fit(self, dataset: datasets.Dataset) -> DRoPFilter:
        """Choose the kept rows of ``dataset``: sets ``quotas_`` and ``indices_``; returns self."""
        self._check_params()
        labels = read_labels(dataset, self.label_column)
        if self.source is not None:
            self._check_source(dataset, labels)
        num_classes = len(labels.names)
        sizes = np.bincount(labels.ids, minlength=num_classes)
        errors = self._resolve_errors(labels, sizes)
        within = (
            None
            if _is_random(self.within)
            else read_scores(
                dataset, self.within, ndim=2 if self.keep == "k_center" else 1, name="within"
            )
        )

        if self.quota == "global":  # class-blind: the class counts follow from the selection
            self.indices_ = self._select_global(len(dataset), within)
            quotas = np.bincount(labels.ids[self.indices_], minlength=num_classes)
        else:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", Q.QuotaWarning)
                quotas = self._quotas(dataset, labels, sizes, errors, within)
            for warning in caught:  # re-issued so that they point at the caller's fit()
                warnings.warn(warning.message, warning.category, stacklevel=2)
            self.indices_ = self._select(labels.ids, quotas, within)
        self.quotas_ = quotas
        self.classes_ = labels.names
        self.class_sizes_ = sizes
        self.class_errors_ = np.full(num_classes, np.nan) if errors is None else errors
        self.n_samples_ = len(dataset)
        self.label_hash_ = labels.hash
        self.source_fingerprint_ = dataset._fingerprint
        return self

    def apply(self, dataset: datasets.Dataset) -> datasets.Dataset:
        """The kept rows of ``dataset`` (the one ``fit`` saw), via ``Dataset.select``."""
        self._check_fitted()
        check_same_rows(
            dataset,
            read_labels(dataset, self.label_column),
            self.n_samples_,
            self.label_hash_,
            seen="this DRoPFilter was fitted on",
            fix="fit it on this dataset",
        )
        # Dataset.select hashes its arguments into the new fingerprint and turns a numpy index
        # array into a list of numpy scalars; handing it Python ints and a fingerprint made from
        # the source's and the indices' bytes costs about a third less (make bench-prune).
        fingerprint = xxhash.xxh64(
            f"hf-drop-select-{dataset._fingerprint}-".encode() + self.indices_.tobytes()
        ).hexdigest()
        return dataset.select(self.indices_.tolist(), new_fingerprint=fingerprint)

    def __call__(
        self, batch: Any, indices: int | list[int] | NDArray[np.integer] | None = None
    ) -> bool | NDArray[np.bool_]:
        """Keep/drop mask for ``dataset.filter(self, with_indices=True, batched=True)``; also
        works unbatched (one row index at a time).

        Pass ``input_columns=label_column`` to ``filter`` so that it decodes no images.
        """
        self._check_fitted()
        if indices is None:
            raise TypeError(
                "DRoPFilter decides by row index: call dataset.filter(drop, with_indices=True, "
                "batched=True)"
            )
        rows = np.asarray(indices, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= self.n_samples_):
            raise ValueError(
                f"row indices {rows.min()}..{rows.max()} are out of range for the "
                f"{self.n_samples_}-row dataset this DRoPFilter was fitted on"
            )
        position = np.searchsorted(self.indices_, rows.ravel())
        found = position < len(self.indices_)
        found[found] = self.indices_[position[found]] == rows.ravel()[found]
        return bool(found[0]) if rows.ndim == 0 else found

    def report(self) -> pd.DataFrame:
        """Per class: name, original size, kept, kept fraction and the error used."""
        self._check_fitted()
        with np.errstate(invalid="ignore", divide="ignore"):
            fraction = np.where(self.class_sizes_ > 0, self.quotas_ / self.class_sizes_, np.nan)
        return pd.DataFrame(
            {
                "name": self.classes_,
                "size": self.class_sizes_,
                "kept": self.quotas_,
                "kept_fraction": fraction,
                "error": self.class_errors_,
            },
            index=pd.RangeIndex(len(self.classes_), name="class"),
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
            "quotas": self.quotas_.tolist(),
            "n_samples": int(self.n_samples_),
            "n_kept": len(self.indices_),
            "source": {
                **_jsonable(self.source or {}),
                "fingerprint": self.source_fingerprint_,
                "num_rows": int(self.n_samples_),
                "label_column": self.label_column,
                "label_hash": self.label_hash_,
            },
            "versions": versions("datasets", "numpy"),
        }

    @property
    def method(self) -> str:
        """A short name of the configuration, as in the paper: "Random+DRoP", "el2n+DRoP", ..."""
        within = "Random" if _is_random(self.within) else self._score_label(self.within)
        if self.keep in ("easy", "ccs", "k_center") and not _is_random(self.within):
            within = f"{within}({self.keep})"
        if self.quota == "global":
            return within
        if self.quota == "strategy":
            if _is_random(self.within) or (
                self.strategy_scores is not None and self.strategy_scores is not self.within
            ):
                return f"{within}+StrategyQ({self._score_label(self.strategy_scores)})"
            return within
        rule = {"drop": "DRoP", "proportional": "Proportional", "uniform": "Uniform"}[self.quota]
        return f"{within}+{rule}"

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
        Q.budget(0, self.density)  # validates density
        _one_of("quota", self.quota, ("drop", "proportional", "uniform", "strategy", "global"))
        _one_of("keep", self.keep, ("hard", "easy", "ccs", "k_center"))
        _one_of("mode", self.mode, ("paper", "count"))
        if self.quota == "drop" and self.class_errors is None:
            raise ValueError(
                "quota='drop' needs class_errors (per-class error of a probe model on held-out "
                "data); pass quota='proportional' or 'uniform' for rules that need none"
            )
        if self.quota == "strategy" and self.strategy_scores is None and _is_random(self.within):
            raise ValueError("quota='strategy' needs strategy_scores (a score column or array)")
        if self.quota in ("strategy", "global") and self.min_per_class:
            raise ValueError(
                f"min_per_class does not apply to quota={self.quota!r}: its counts are those of "
                "a global selection"
            )
        if self.keep == "k_center" and _is_random(self.within):
            raise ValueError("keep='k_center' needs within= an embedding column or 2-D array")
        if self.missing_error is not None and not 0 <= self.missing_error <= 1:
            raise ValueError(f"missing_error must lie in [0, 1], got {self.missing_error!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer):
            raise ValueError(f"seed must be an int, got {self.seed!r}")

    def _resolve_errors(self, labels: Labels, sizes: NDArray) -> NDArray[np.float64] | None:
        """Errors as an array by class id; a missing one is ``missing_error`` or an error."""
        if self.class_errors is None:
            return None
        names = labels.names
        if isinstance(self.class_errors, Mapping):
            by_id = {name: k for k, name in enumerate(names)}
            errors = np.full(len(names), np.nan)
            for key, value in self.class_errors.items():
                k = by_id.get(key, key) if isinstance(key, str) else key
                if not isinstance(k, int | np.integer) or not 0 <= k < len(names):
                    raise ValueError(
                        f"class_errors names class {key!r}, which is not a class of label column "
                        f"{labels.column!r} (classes: {names[:20]})"
                    )
                errors[k] = value
        else:
            errors = np.asarray(self.class_errors, dtype=float)
            if errors.ndim != 1 or len(errors) != len(names):
                raise ValueError(
                    f"class_errors has shape {errors.shape} but label column {labels.column!r} "
                    f"has {len(names)} classes: one error per class id is expected"
                )
            errors = errors.copy()
        missing = np.isnan(errors)
        errors[missing & (sizes == 0)] = 0.0  # an empty class keeps nothing whatever its error
        missing &= sizes > 0
        if np.any(missing) and self.quota == "drop":  # the other rules only report errors
            if self.missing_error is None:
                raise ValueError(
                    f"class_errors has no error for classes "
                    f"{[names[k] for k in np.flatnonzero(missing)]} (absent from the validation "
                    "split?); pass missing_error= to give them one"
                )
            errors[missing] = self.missing_error
        return errors

    def _quotas(
        self,
        dataset: datasets.Dataset,
        labels: Labels,
        sizes: NDArray,
        errors: NDArray | None,
        within: NDArray | None,
    ) -> NDArray[np.int64]:
        if self.quota == "drop":
            return Q.drop_quotas(
                sizes,
                errors,
                self.density,
                mode=self.mode,
                min_per_class=self.min_per_class,
                class_names=labels.names,
            )
        if self.quota == "proportional":
            return Q.proportional_quotas(sizes, self.density, min_per_class=self.min_per_class)
        if self.quota == "uniform":
            return Q.uniform_quotas(sizes, self.density, min_per_class=self.min_per_class)
        scores = (
            within
            if self.strategy_scores is None
            else read_scores(dataset, self.strategy_scores, name="strategy_scores")
        )
        if scores.ndim != 1:
            raise ValueError("quota='strategy' needs one score per row, not embeddings")
        chosen = S.global_top(scores, Q.budget(len(scores), self.density), keep=self._direction)
        return Q.quotas_from_selection(labels.ids, chosen, len(sizes))

    def _select(
        self, labels: NDArray[np.int64], quotas: NDArray[np.int64], within: NDArray | None
    ) -> NDArray[np.int64]:
        if within is None:
            return S.random_within_class(labels, quotas, seed=self.seed)
        if self.keep == "ccs":
            return S.ccs(
                within,
                quotas,
                labels,
                beta=self.ccs_beta,
                num_strata=self.ccs_strata,
                seed=self.seed,
            )
        if self.keep == "k_center":
            return S.k_center(within, quotas, labels, seed=self.seed)
        return S.top_within_class(labels, quotas, within, keep=self.keep)

    def _select_global(self, n_rows: int, within: NDArray | None) -> NDArray[np.int64]:
        """The baselines' class-blind selection of ``density * n_rows`` rows."""
        n_keep = Q.budget(n_rows, self.density)
        if within is None:
            return S.global_random(n_rows, n_keep, seed=self.seed)
        if self.keep == "ccs":
            return S.ccs(
                within, n_keep, beta=self.ccs_beta, num_strata=self.ccs_strata, seed=self.seed
            )
        if self.keep == "k_center":
            return S.k_center(within, n_keep, seed=self.seed)
        return S.global_top(within, n_keep, keep=self.keep)

    def _check_source(self, dataset: datasets.Dataset, labels: Labels) -> None:
        check_same_rows(
            dataset,
            labels,
            self.source.get("num_rows"),
            self.source.get("label_hash"),
            seen="the class errors and scores of this DRoPFilter come from",
            fix="pass the dataset the probe saw, or probe this one",
        )

    @property
    def _direction(self) -> S.Keep:
        return "easy" if self.keep == "easy" else "hard"

    def _check_fitted(self) -> None:
        if not hasattr(self, "indices_"):
            raise RuntimeError("this DRoPFilter is not fitted yet: call fit(dataset) first")


_PARAMS = (
    "density",
    "class_errors",
    "label_column",
    "within",
    "keep",
    "quota",
    "mode",
    "min_per_class",
    "missing_error",
    "strategy_scores",
    "ccs_beta",
    "ccs_strata",
    "seed",
    "score_name",
    "source",
)


def _jsonable(value: object) -> object:
    if isinstance(value, np.ndarray):
        return f"<array of shape {list(value.shape)}>" if value.size > 1000 else value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


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
