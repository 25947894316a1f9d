"""The record of a fit: what was kept and how, typed, versioned, and a snapshot.

``DRoPFilter.fit`` writes one :class:`PruningRecord`; everything downstream (``report()``,
``method``, ``provenance()``, ``pruning.json``, the Hub card, the reproduce command) reads it,
never the estimator. It is built from a snapshot of the parameters taken at ``fit``, so neither
``set_params`` nor a changed input can make it disagree with the rows. :func:`read_record`
reads a ``pruning.json`` back, naming the file and the field that is missing or wrong.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ..core import quotas as Q
from ..core import rules as R
from ..core import uncertainty as U
from ..io.files import DamagedFileError
from ..io.files import read_record as read_fields
from .params import FilterSpec

__all__ = [
    "FIELDS",
    "FORMAT_VERSION",
    "PruningRecord",
    "as_floats",
    "method_name",
    "read_record",
    "record_rules",
    "report_table",
]

FORMAT_VERSION = 1


@dataclass(frozen=True)
class PruningRecord:
    """How a subset was made, JSON-ready (``to_dict``); per-class lists are by class id."""

    method: str
    params: dict[str, Any]
    rules: dict[str, str | None]
    classes: list[str]
    class_sizes: list[int]
    class_errors: list[float | None]
    class_errors_used: list[float | None]
    class_support: list[int | None]
    drop_settings: dict[str, Any] | None
    quotas: list[int]
    num_rows: int
    num_kept: int
    density: float
    source: dict[str, Any]
    versions: dict[str, str | None]
    kept: dict[str, Any] | None = None  # what identifies the kept rows (rows.check_kept)
    # The Beta prior the errors were shrunk with (uncertainty.BetaPrior.as_dict), if they were.
    prior: dict[str, Any] | None = None
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The record as written to ``pruning.json`` (a fresh copy)."""
        record = asdict(self)
        record.update(record.pop("extra"))
        return json.loads(json.dumps(record))

    def with_num_kept(self, num_kept: int) -> PruningRecord:
        """The record of a stream subset whose rows were counted when saved."""
        return replace(self, num_kept=int(num_kept))


# What every reader of a pruning.json (card, reproduce commands, export) needs, with its type.
FIELDS: dict[str, Any] = {
    "method": str,
    "params": dict,
    "source": dict,
    "classes": list,
    "class_sizes": list,
    "quotas": list,
    "class_errors": list,
    "num_kept": int,
    "versions": dict,
    **{f"params.{key}": object for key in ("quota", "within", "min_per_class")},
    "params.density": float,
    "params.seed": int,
}


def read_record(
    path: str | os.PathLike, fix: str = "save the subset again with hf-drop prune"
) -> dict[str, Any]:
    """A ``pruning.json`` (``DRoPFilter.provenance()``) with every field its readers need, or a
    ``DamagedFileError`` (a ``ValueError``) naming the file and the missing or wrong field;
    files from before ``format_version`` are read when their fields are there."""
    record = read_fields(path, "how the subset was made", fix, FIELDS, version=FORMAT_VERSION)
    uneven = [
        n
        for n in ("class_sizes", "class_errors", "quotas")
        if len(record[n]) != len(record["classes"])
    ]
    if uneven:
        raise DamagedFileError(
            f"{path} (how the subset was made): field {uneven[0]!r} must hold one value per "
            f"class ({len(record['classes'])}); {fix}"
        )
    return record


def record_rules(record: dict[str, Any]) -> tuple[R.QuotaRule, R.KeepRule | None]:
    """The quota and keep rules a record's fit used, with every setting as it was in force.

    A record holds its rules as specs (``rules``) with every setting; older records left the
    settings at their defaults unsaid (``"drop(floor=0.3)"``), and DRoP's settings in force are
    in ``drop_settings``; records from before rule specs give the rules by name in ``params``
    and their settings apart (``drop_settings``, ``params.ccs_beta``, ``params.ccs_strata``).
    """
    params = record.get("params") or {}
    specs = record.get("rules") or {}
    quota = R.quota_rule(specs["quota"] if specs else params["quota"])
    # DRoP's settings in force, whatever the spec left unsaid: a record from before specs were
    # written in full says "drop" for the default, whose settings may have changed since.
    names = {f.name for f in dataclasses.fields(quota)}
    settings = record.get("drop_settings") or {}
    quota = dataclasses.replace(quota, **{k: v for k, v in settings.items() if k in names})
    if specs:
        keep = None if specs.get("keep") is None else R.keep_rule(specs["keep"])
        return quota, keep
    keep = None if params.get("keep") is None else R.keep_rule(params["keep"])
    if isinstance(keep, R.CCS):
        ccs = {"beta": params.get("ccs_beta"), "strata": params.get("ccs_strata")}
        keep = dataclasses.replace(keep, **{k: v for k, v in ccs.items() if v is not None})
    return quota, keep


def method_name(spec: FilterSpec) -> str:
    """A short name of the configuration, as in the paper: "Random+DRoP", "el2n+DRoP", ..."""
    within = "Random" if spec.within is None else _score_label(spec, spec.within)
    if spec.keep is not None and spec.keep.in_name:
        within = f"{within}({spec.keep.spec()})"
    rule = spec.quota
    if rule.class_blind:
        return within
    if rule.from_selection:
        if spec.within is None or (
            spec.strategy_scores is not None and spec.strategy_scores is not spec.within
        ):
            return f"{within}+{rule.label()}({_score_label(spec, spec.strategy_scores)})"
        return within
    per = "" if spec.group_columns is None else f" per {'+'.join(spec.group_columns)}"
    return f"{within}+{rule.label(shrunk=spec.shrunk)}{per}"


def _score_label(spec: FilterSpec, scores: object) -> str:
    return scores if isinstance(scores, str) else spec.score_name or "scores"


def report_table(record: PruningRecord) -> pd.DataFrame:
    """Per class: name, size, kept, kept fraction, the error (with its 95% Wilson interval and
    validation support when known), the error the quotas used, and the diagnostic flags
    (see ``DRoPFilter.report``); ``attrs["prior"]`` is the prior the errors were shrunk with."""
    sizes, kept = np.array(record.class_sizes), np.array(record.quotas)
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(sizes > 0, kept / np.maximum(sizes, 1), np.nan)
    low, high = _error_interval(record)
    table = pd.DataFrame(
        {
            "name": record.classes,
            "size": sizes,
            "kept": kept,
            "kept_fraction": fraction,
            "error": as_floats(record.class_errors),
            "support": as_floats(record.class_support),
            "error_low": low,
            "error_high": high,
            "error_used": as_floats(record.class_errors_used),
            "flags": [", ".join(flags) for flags in flags_of(record)],
        },
        index=pd.RangeIndex(len(record.classes), name="class"),
    )
    table.attrs["prior"] = record.prior  # how the errors were shrunk (None: they were not)
    return table


def flags_of(record: PruningRecord) -> list[list[str]]:
    """The diagnostic flags of each class: starved, zero error, indistinguishable, no error."""
    sizes, kept = np.array(record.class_sizes), np.array(record.quotas)
    errors, support = as_floats(record.class_errors), np.nan_to_num(as_floats(record.class_support))
    low, high = _error_interval(record)
    pooled = float(np.nansum(errors * support) / support.sum()) if support.sum() > 0 else np.nan
    # Starved: under half of what both proportional and class-balanced sampling would keep (a
    # large class at half its uniform share B / K is not starved: Uniform on long tails).
    uniform = Q.budget(int(sizes.sum()), record.density) / max(int(np.count_nonzero(sizes)), 1)
    share = np.minimum(record.density * sizes, uniform)
    flags = []
    for k in range(len(sizes)):
        mine = []
        if sizes[k] > 0 and kept[k] < np.floor(0.5 * share[k]):
            mine.append("starved")
        if errors[k] == 0:
            mine.append("zero error")
        if support[k] > 0 and low[k] <= pooled <= high[k]:
            mine.append("indistinguishable")
        if np.isnan(errors[k]) and sizes[k] > 0:
            mine.append("no error")
        flags.append(mine)
    return flags


def warn_diagnostics(record: PruningRecord) -> None:
    """QuotaWarnings for what the report flags and a user should act on before training."""
    flags = flags_of(record)
    starved = [record.classes[k] for k, f in enumerate(flags) if "starved" in f]
    if starved:
        warnings.warn(
            f"classes {starved[:20]} keep less than half of their proportional share (and of "
            "the class-balanced share): their accuracy may collapse after training; pass "
            "quota='drop' with floor= (0.5 keeps half of each share) or min_per_class=",
            Q.QuotaWarning,
            stacklevel=2,
        )
    if record.prior is not None and record.prior["status"] == "pooled":
        warnings.warn(
            f"the class errors were pooled into one ({record.prior['mean']:.3g}): "
            f"{record.prior['why']}; the quotas then follow class sizes, not the probe's errors "
            "(shrink=False uses the errors as measured)",
            Q.QuotaWarning,
            stacklevel=2,
        )
        return
    support = as_floats(record.class_support)
    known = ~np.isnan(support) & (support > 0)
    if known.sum() >= 2 and all("indistinguishable" in flags[k] for k in np.flatnonzero(known)):
        warnings.warn(
            "no class's error is distinguishable from the pooled error at 95% (see report(): "
            "error_low, error_high): the quotas follow validation noise as much as difficulty; "
            "use a larger validation split, or keep shrink and floor on",
            Q.QuotaWarning,
            stacklevel=2,
        )


def _error_interval(record: PruningRecord) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """95% Wilson interval of each class error (NaN where the support is unknown)."""
    support = np.nan_to_num(as_floats(record.class_support), nan=0.0)
    mistakes = np.nan_to_num(as_floats(record.class_errors)) * support  # averaged: fractional
    low, high = U.wilson_interval(mistakes, support)
    return np.asarray(low, dtype=float), np.asarray(high, dtype=float)


def as_floats(values: list) -> NDArray[np.float64]:
    """A JSON list of numbers as an array, None as NaN."""
    return np.array([math.nan if v is None else v for v in values], dtype=float)


def floats_or_none(values: NDArray) -> list[float | None]:
    """An array as a JSON list, NaN as None."""
    return [None if math.isnan(v) else float(v) for v in np.asarray(values, dtype=float)]


def ints_or_none(values: NDArray) -> list[int | None]:
    """Counts as a JSON list, NaN as None."""
    return [None if math.isnan(v) else int(v) for v in np.asarray(values, dtype=float)]
