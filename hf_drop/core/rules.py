"""The registry of selection rules: how many samples each class keeps (quota rules) and which
ones, by a score (keep rules).

A rule is declared once, here. ``DRoPFilter`` reads it for its checks, its choice and its
method name; ``hf-drop prune`` for its ``--quota``/``--keep`` choices and their help; the dataset
card for its reproduce command. Adding a rule is one :func:`register_quota_rule` or
:func:`register_keep_rule` call (see ``tests/test_rules.py``, which adds one and uses it end to
end).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from . import quotas as Q
from . import selection as S

__all__ = [
    "KEEP_RULES",
    "QUOTA_RULES",
    "KeepRule",
    "QuotaInputs",
    "QuotaRule",
    "keep_rule",
    "quota_rule",
    "register_keep_rule",
    "register_quota_rule",
]


@dataclass(frozen=True)
class QuotaInputs:
    """What a quota rule sees: class sizes (by class id), the density, the errors it should use
    (NaN-free, already shrunk where that applies), ``min_per_class``, class names, the rule's
    settings in force, and, for rules ``from_selection``, the class counts of the global
    selection by a score."""

    sizes: NDArray[np.int64]
    density: float
    errors: NDArray[np.float64] | None
    min_per_class: int
    class_names: list[str]
    settings: Mapping[str, Any]
    selection_counts: NDArray[np.int64] | None = None


@dataclass(frozen=True)
class QuotaRule:
    """A class-count rule.

    Args:
        name: its ``quota=`` value and ``--quota`` choice.
        help: one line for the CLI and the docs.
        label: its part of a method name, ``"Random+<label>"``; a callable gets the settings in
            force (DRoP writes them: ``"DRoP(paper, floor 0.5, shrunk)"``).
        counts: ``QuotaInputs -> kept per class``; ``None`` for a class-blind rule (the
            selection runs over the whole dataset and the counts follow from it).
        needs_errors: the rule reads class errors (a missing one is then an error, or
            ``missing_error``).
        settings: tunable settings and their defaults (``DRoPFilter`` takes each as an argument,
            ``None`` meaning the default); ``fixed`` holds settings that cannot be changed.
        from_selection: the counts are those of a global selection by ``strategy_scores``.
        takes_min_per_class: ``min_per_class`` applies.
    """

    name: str
    help: str
    label: str | Callable[[Mapping[str, Any]], str]
    counts: Callable[[QuotaInputs], NDArray[np.int64]] | None
    needs_errors: bool = False
    settings: Mapping[str, Any] = field(default_factory=dict)
    fixed: Mapping[str, Any] = field(default_factory=dict)
    from_selection: bool = False
    takes_min_per_class: bool = True

    def settings_in_force(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """The rule's settings: the given ones (``None``: not given) over its defaults."""
        chosen = {name: given.get(name) for name in self.settings}
        return {
            **self.fixed,
            **{k: self.settings[k] if v is None else v for k, v in chosen.items()},
        }

    def method_label(self, settings: Mapping[str, Any]) -> str:
        return self.label(settings) if callable(self.label) else self.label


@dataclass(frozen=True)
class KeepRule:
    """A rule that keeps samples by a score (or an embedding).

    Args:
        name: its ``keep=`` value and ``--keep`` choice.
        help: one line for the CLI and the docs.
        select: ``(scores, budget, labels, seed, settings) -> sorted kept rows``; ``budget`` is
            kept-per-class counts when ``labels`` is given, else the number of rows to keep from
            the whole dataset.
        ndim: 1 for one score per row, 2 for embeddings.
        settings: its settings (``DRoPFilter`` argument name -> default).
        direction: for ``quota="strategy"``: which end of the score the global selection keeps.
        in_name: the method name shows the rule (``"el2n(easy)"``); the default one does not.
    """

    name: str
    help: str
    select: Callable[..., NDArray[np.int64]]
    ndim: int = 1
    settings: Mapping[str, Any] = field(default_factory=dict)
    direction: Literal["hard", "easy"] | None = None
    in_name: bool = True


QUOTA_RULES: dict[str, QuotaRule] = {}
KEEP_RULES: dict[str, KeepRule] = {}


def register_quota_rule(rule: QuotaRule) -> QuotaRule:
    """Add a quota rule (its name must be new); returns it."""
    if rule.name in QUOTA_RULES:
        raise ValueError(f"quota rule {rule.name!r} is already registered")
    QUOTA_RULES[rule.name] = rule
    return rule


def register_keep_rule(rule: KeepRule) -> KeepRule:
    """Add a keep rule (its name must be new); returns it."""
    if rule.name in KEEP_RULES:
        raise ValueError(f"keep rule {rule.name!r} is already registered")
    KEEP_RULES[rule.name] = rule
    return rule


def quota_rule(name: object) -> QuotaRule:
    """The registered quota rule ``name``, or a ValueError listing them."""
    if not isinstance(name, str) or name not in QUOTA_RULES:
        raise ValueError(f"quota must be one of {tuple(QUOTA_RULES)}, got {name!r}")
    return QUOTA_RULES[name]


def keep_rule(name: object) -> KeepRule:
    """The registered keep rule ``name``, or a ValueError listing them."""
    if not isinstance(name, str) or name not in KEEP_RULES:
        raise ValueError(f"keep must be one of {tuple(KEEP_RULES)}, got {name!r}")
    return KEEP_RULES[name]


# --- the built-in rules -------------------------------------------------------------------------

# DRoP: quota="drop_paper" is exactly Algorithm 1 of the paper; quota="drop" is the robust
# default, chosen by the data-shape sweep (README, "Robust DRoP"): errors shrunk by their
# uncertainty when the validation support is known, and a floor of half of each class's share.
PAPER_SETTINGS = {"mode": "paper", "strength": 1.0, "floor": 0.0, "shrink": False}
DROP_DEFAULTS = {"mode": "paper", "strength": 1.0, "floor": 0.5, "shrink": True}


def _drop_counts(inputs: QuotaInputs) -> NDArray[np.int64]:
    s = inputs.settings
    return Q.drop_quotas(
        inputs.sizes,
        inputs.errors,
        inputs.density,
        mode=s["mode"],
        strength=s["strength"],
        floor=s["floor"],
        min_per_class=inputs.min_per_class,
        class_names=inputs.class_names,
    )


def _drop_label(settings: Mapping[str, Any]) -> str:
    """DRoP's settings in a method name: "DRoP(paper)", "DRoP(paper, floor 0.5, shrunk)"."""
    parts = [settings["mode"]]
    if settings["strength"] != 1:
        parts.append(f"strength {settings['strength']:g}")
    if settings["floor"]:
        parts.append(f"floor {settings['floor']:g}")
    if settings.get("shrunk"):
        parts.append("shrunk")
    return f"DRoP({', '.join(parts)})"


register_quota_rule(
    QuotaRule(
        "drop",
        "robust DRoP (default): Algorithm 1 with a floor and errors shrunk by their support",
        _drop_label,
        _drop_counts,
        needs_errors=True,
        settings=DROP_DEFAULTS,
    )
)
register_quota_rule(
    QuotaRule(
        "drop_paper",
        "exactly the paper's Algorithm 1: kept fraction proportional to the class error",
        _drop_label,
        _drop_counts,
        needs_errors=True,
        fixed=PAPER_SETTINGS,
    )
)
register_quota_rule(
    QuotaRule(
        "proportional",
        "the same fraction of every class",
        "Proportional",
        lambda i: Q.proportional_quotas(i.sizes, i.density, min_per_class=i.min_per_class),
    )
)
register_quota_rule(
    QuotaRule(
        "uniform",
        "the same number of every class",
        "Uniform",
        lambda i: Q.uniform_quotas(i.sizes, i.density, min_per_class=i.min_per_class),
    )
)
register_quota_rule(
    QuotaRule(
        "strategy",
        "the class counts of a global selection by --strategy-score (StrategyQ)",
        "StrategyQ",
        lambda i: i.selection_counts,
        from_selection=True,
        takes_min_per_class=False,
    )
)
register_quota_rule(
    QuotaRule(
        "global",
        "no class counts: the selection runs over the whole dataset (the baselines)",
        "",
        None,
        takes_min_per_class=False,
    )
)


def _top(direction: Literal["hard", "easy"]) -> Callable[..., NDArray[np.int64]]:
    def select(scores, budget, labels, seed, settings):
        if labels is None:
            return S.global_top(scores, budget, keep=direction)
        return S.top_within_class(labels, budget, scores, keep=direction)

    return select


def _ccs(scores, budget, labels, seed, settings):
    beta, strata = settings["ccs_beta"], settings["ccs_strata"]
    return S.ccs(scores, budget, labels, beta=beta, num_strata=strata, seed=seed)


def _k_center(scores, budget, labels, seed, settings):
    return S.k_center(scores, budget, labels, seed=seed)


register_keep_rule(
    KeepRule("hard", "the highest scores (default)", _top("hard"), direction="hard", in_name=False)
)
register_keep_rule(KeepRule("easy", "the lowest scores", _top("easy"), direction="easy"))
register_keep_rule(
    KeepRule(
        "ccs",
        "CCS: equal-width score strata after dropping the hardest ccs_beta",
        _ccs,
        settings={"ccs_beta": 0.1, "ccs_strata": 50},
    )
)
register_keep_rule(
    KeepRule("k_center", "k-center greedy coverage of an embedding", _k_center, ndim=2)
)
