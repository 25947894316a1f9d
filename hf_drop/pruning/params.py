"""A DRoPFilter's parameters, read and checked once: :func:`resolve` turns the constructor
arguments, as the user gave them, into a :class:`FilterSpec` of checked values and rule objects.

Every refusal of a parameter lives here, before any data is read; arguments that would be
silently ignored by the configuration (``keep`` without a score, DRoP settings with another
rule, CCS settings without ``keep="ccs"``, ...) are refused rather than ignored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from numpy.typing import ArrayLike

from ..core import rules as R
from ..core.inputs import as_jsonable, check_choice, check_int, check_number
from ..core.uncertainty import ClassErrors

__all__ = ["FilterSpec", "resolve", "snapshot"]

# Constructor arguments that set a built-in rule's settings (the older spelling; a rule object
# carries its own): argument -> (which rule, its setting).
LEGACY_SETTINGS = {
    "mode": ("quota", "mode"),
    "strength": ("quota", "strength"),
    "floor": ("quota", "floor"),
    "shrink": ("quota", "shrink"),
    "ccs_beta": ("keep", "beta"),
    "ccs_strata": ("keep", "strata"),
}


@dataclass(frozen=True)
class FilterSpec:
    """A filter's parameters, checked: rule objects in place of names and legacy settings,
    ``within=None`` for random selection, ``group_columns`` as a list (or None)."""

    density: float
    quota: R.QuotaRule
    keep: R.KeepRule | None
    within: Any  # a column name, per-row values (array, list, pandas Series), or None: random
    strategy_scores: Any
    class_errors: Any
    class_support: Any
    label_column: str
    group_columns: list[str] | None
    min_per_class: int
    missing_error: float | None
    seed: int
    score_name: str | None
    source: Mapping[str, Any] | None
    id_column: str | None
    class_sizes: Any
    stream_mode: str

    @property
    def keep_rule(self) -> R.KeepRule:
        """The keep rule a score selection uses (``hard`` unless given)."""
        return self.keep or R.Hard()

    @property
    def unit_columns(self) -> list[str]:
        """What the quotas count: the label column, or the group columns."""
        return self.group_columns or [self.label_column]

    @property
    def input_columns(self) -> list[str]:
        """The columns that decide a row: the unit columns, then the id column."""
        return self.unit_columns + ([self.id_column] if self.id_column else [])

    @property
    def shrunk(self) -> bool:
        """Whether the quotas use errors shrunk by their validation support."""
        has_support = self.class_support is not None or isinstance(self.class_errors, ClassErrors)
        return self.quota.shrinks_errors and has_support


def snapshot(params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters as the record shows them: JSON values, copied, so that later changes to
    the user's objects cannot reach the record (per-row arrays are summarised)."""
    return {name: as_jsonable(value) for name, value in params.items()}


def resolve(params: Mapping[str, Any]) -> FilterSpec:
    """Check ``params`` (``DRoPFilter.get_params()``) and resolve the rules; a ValueError names
    the first argument that is wrong and what was expected."""
    p = dict(params)
    density = check_number("density", p["density"], 0, 1)
    quota = _quota(p)
    keep = _keep(p)
    within = None if _is_random(p["within"]) else p["within"]
    if quota.needs_errors and p["class_errors"] is None:
        raise ValueError(
            f"quota={quota.name!r} needs class_errors (per-class error of a probe model on "
            "held-out data); pass quota='proportional' or 'uniform' for rules that need none"
        )
    if quota.from_selection and p["strategy_scores"] is None and within is None:
        raise ValueError(f"quota={quota.name!r} needs strategy_scores (a score column or array)")
    if p["strategy_scores"] is not None and not quota.from_selection:
        raise ValueError(
            f"strategy_scores only applies to quota='strategy', not quota={quota.name!r}: pass "
            "quota='strategy' (Random+StrategyQ), or drop strategy_scores"
        )
    strategy_direction = quota.from_selection and keep is not None and keep.direction
    if keep is not None and within is None and not strategy_direction:
        raise ValueError(
            f"keep={keep.name!r} needs a score: pass within= a score (or embedding) column or "
            "array; with within='random' samples are kept at random"
        )
    min_per_class = check_int("min_per_class", p["min_per_class"])
    if min_per_class and not quota.takes_min_per_class:
        raise ValueError(
            f"min_per_class does not apply to quota={quota.name!r}: its counts are those of a "
            "global selection"
        )
    missing = p["missing_error"]
    if missing is not None:
        try:
            missing = check_number("missing_error", missing, 0, 1)
        except ValueError:
            raise ValueError(f"missing_error must lie in [0, 1], got {missing!r}") from None
    seed = check_int("seed", p["seed"])
    id_column = p["id_column"]
    if id_column is not None and not isinstance(id_column, str):
        raise ValueError(f"id_column must be a column name, got {id_column!r}")
    label_column = p["label_column"]
    if not isinstance(label_column, str):
        raise ValueError(f"label_column must be a column name, got {label_column!r}")
    if id_column is not None and id_column == label_column:
        raise ValueError(
            f"id_column {id_column!r} is the label column: ids must be unique per row; pass a "
            "column of row ids"
        )
    return FilterSpec(
        density=density,
        quota=quota,
        keep=keep,
        within=within,
        strategy_scores=p["strategy_scores"],
        class_errors=p["class_errors"],
        class_support=p["class_support"],
        label_column=label_column,
        group_columns=_group_columns(p["group_column"]),
        min_per_class=min_per_class,
        missing_error=missing,
        seed=seed,
        score_name=p["score_name"],
        source=p["source"],
        id_column=id_column,
        class_sizes=p["class_sizes"],
        stream_mode=check_choice("stream_mode", p["stream_mode"], ("approximate", "exact")),
    )


def _quota(p: Mapping[str, Any]) -> R.QuotaRule:
    """The quota rule with the legacy settings (``floor=`` ...) folded in."""
    rule = R.quota_rule(p["quota"])
    given = {name: p[name] for name, (kind, _) in LEGACY_SETTINGS.items() if kind == "quota"}
    given = {name: value for name, value in given.items() if value is not None}
    if not given:
        return rule
    names = ", ".join(given)
    verb = "applies" if len(given) == 1 else "apply"
    if not isinstance(p["quota"], str):
        raise ValueError(
            f"{names} {verb} to the rule object itself: pass "
            f"quota={type(rule).__name__}({', '.join(f'{k}={v!r}' for k, v in given.items())})"
        )
    twice = sorted(set(given) & R.spec_settings(p["quota"]))
    if twice:
        raise ValueError(
            f"{twice[0]} is given twice, in quota={p['quota']!r} and as {twice[0]}=: give it once"
        )
    fields = {f.name for f in dataclasses.fields(rule)}
    if not set(given) <= fields:
        takers = [n for n, cls in R.QUOTA_RULES.items() if set(given) <= _field_names(cls)]
        where = " or ".join(f"quota={n!r}" for n in takers) or "no quota rule"
        if rule.drop_settings is not None and takers:
            raise ValueError(
                f"{names} only {verb} to {where}: quota={rule.name!r} is exactly the paper's "
                f"Algorithm 1; use quota={takers[0]!r} to set them"
            )
        raise ValueError(f"{names} only {verb} to {where}, not quota={rule.name!r}")
    return dataclasses.replace(rule, **given)


def _keep(p: Mapping[str, Any]) -> R.KeepRule | None:
    """The keep rule (None: not given) with ``ccs_beta``/``ccs_strata`` folded in."""
    rule = None if p["keep"] is None else R.keep_rule(p["keep"])
    given = {
        setting: p[name]
        for name, (kind, setting) in LEGACY_SETTINGS.items()
        if kind == "keep" and p[name] is not None
    }
    if not given:
        return rule
    names = " and ".join(
        n for n, (k, _) in LEGACY_SETTINGS.items() if k == "keep" and p[n] is not None
    )
    if rule is None or not set(given) <= _field_names(type(rule)):
        takers = [n for n, cls in R.KEEP_RULES.items() if set(given) <= _field_names(cls)]
        raise ValueError(f"{names} only apply to keep={' or '.join(map(repr, takers))}")
    if not isinstance(p["keep"], str):
        raise ValueError(f"{names} apply to the rule object itself: set them in keep={rule!r}")
    twice = sorted(set(given) & R.spec_settings(p["keep"]))
    if twice:
        legacy = next(n for n, (k, s) in LEGACY_SETTINGS.items() if k == "keep" and s == twice[0])
        raise ValueError(
            f"{twice[0]} is given twice, in keep={p['keep']!r} and as {legacy}=: give it once"
        )
    return dataclasses.replace(rule, **given)


def _field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _group_columns(value: object) -> list[str] | None:
    if value is None:
        return None
    columns = [value] if isinstance(value, str) else value
    if (
        not isinstance(columns, list | tuple)
        or not columns
        or not all(isinstance(c, str) for c in columns)
        or len(set(columns)) < len(columns)
    ):
        raise ValueError(
            f"group_column must be a column name or a list of distinct names, got {value!r}"
        )
    return list(columns)


def _is_random(within: object) -> bool:
    return isinstance(within, str) and within == "random"


ArrayOrName = str | ArrayLike
