"""Selection rules as objects that carry their settings: how many samples each class keeps
(quota rules) and which ones, by a score (keep rules).

A rule is a frozen dataclass whose fields are its settings, each with its default in one place::

    DRoPFilter(0.5, quota=DRoP(floor=0.3), keep=CCS(beta=0.2), within="el2n", ...)
    DRoPFilter(0.5, quota="drop")                       # the name: the rule with its defaults
    DRoPFilter(0.5, quota="drop(floor=0.3, shrink=false)")   # a spec, as the command line takes

Rules are registered by name, as timm registers models (:func:`register_quota_rule`,
:func:`register_keep_rule`, usable as class decorators); ``DRoPFilter``, the command line's
``--quota``/``--keep`` choices and help, and the dataset card's text and reproduce command all
read the registry, so a registered rule with settings of its own works end to end.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

from . import quotas as Q
from . import selection as S
from .inputs import check_choice, check_int, check_number

__all__ = [
    "CCS",
    "KEEP_RULES",
    "QUOTA_RULES",
    "DRoP",
    "DRoPPaper",
    "Easy",
    "Global",
    "Hard",
    "KCenter",
    "KeepRule",
    "Proportional",
    "QuotaInputs",
    "QuotaRule",
    "Rule",
    "StrategyQ",
    "Uniform",
    "keep_rule",
    "quota_rule",
    "register_keep_rule",
    "register_quota_rule",
    "spec_settings",
]


@dataclass(frozen=True)
class QuotaInputs:
    """What a quota rule sees: class sizes (by class id), the density, the errors it should use
    (NaN-free, already shrunk where that applies), ``min_per_class``, class names, and, for
    rules ``from_selection``, the class counts of the global selection by a score."""

    sizes: NDArray[np.int64]
    density: float
    errors: NDArray[np.float64] | None
    min_per_class: int
    class_names: list[str]
    selection_counts: NDArray[np.int64] | None = None


@dataclass(frozen=True)
class Rule:
    """A rule: its registered ``name``, one line of ``help``, and its settings (the fields)."""

    name: ClassVar[str] = ""
    help: ClassVar[str] = ""

    @property
    def settings(self) -> dict[str, Any]:
        """The settings in force, by name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def spec(self, full: bool = False) -> str:
        """The rule as text: its name, with the settings that differ from their defaults
        (``"drop(floor=0.3)"``; every setting with ``full``, so that a later change of default
        cannot change what the text means); :func:`quota_rule`/:func:`keep_rule` read it back."""
        shown = [
            f"{f.name}={_text(getattr(self, f.name))}"
            for f in dataclasses.fields(self)
            if full or getattr(self, f.name) != f.default
        ]
        return f"{self.name}({', '.join(shown)})" if shown else self.name


@dataclass(frozen=True)
class QuotaRule(Rule):
    """A class-count rule: ``counts(inputs) -> kept per class``.

    Class attributes say what it needs: ``needs_errors`` (class errors; a missing one is an
    error or ``missing_error``), ``from_selection`` (the counts of a global selection by
    ``strategy_scores``), ``class_blind`` (no counts: the selection runs over the whole dataset),
    ``takes_min_per_class``.
    """

    needs_errors: ClassVar[bool] = False
    from_selection: ClassVar[bool] = False
    class_blind: ClassVar[bool] = False
    takes_min_per_class: ClassVar[bool] = True

    def counts(self, inputs: QuotaInputs) -> NDArray[np.int64]:
        raise NotImplementedError

    title: ClassVar[str | None] = None  # its part of a method name; None: its name

    def label(self, shrunk: bool = False) -> str:
        """Its part of a method name, ``"Random+<label>"``; ``shrunk``: errors were shrunk."""
        return self.name if self.title is None else self.title

    @property
    def shrinks_errors(self) -> bool:
        """Whether the errors are shrunk by their support before :meth:`counts`."""
        return False

    @property
    def drop_settings(self) -> dict[str, Any] | None:
        """DRoP's settings (mode, strength, floor, shrink) in force, or None for other rules."""
        return None


@dataclass(frozen=True)
class KeepRule(Rule):
    """A rule that keeps samples by a score (``ndim`` 1) or an embedding (``ndim`` 2).

    ``select(scores, budget, labels, seed)`` returns sorted kept rows; ``budget`` is the kept
    count per class when ``labels`` is given, else the number of rows to keep overall.
    ``direction`` is the end of the score a global selection keeps (``quota="strategy"``);
    ``in_name``: the method name shows the rule (``"el2n(easy)"``).
    """

    ndim: ClassVar[int] = 1
    direction: ClassVar[Literal["hard", "easy"] | None] = None
    in_name: ClassVar[bool] = True

    def select(
        self,
        scores: NDArray,
        budget: Any,
        labels: NDArray[np.int64] | None,
        seed: int,
    ) -> NDArray[np.int64]:
        raise NotImplementedError


QUOTA_RULES: dict[str, type[QuotaRule]] = {}
KEEP_RULES: dict[str, type[KeepRule]] = {}
_R = TypeVar("_R", bound=type[Rule])


def register_quota_rule(rule: _R) -> _R:
    """Register a :class:`QuotaRule` subclass under its ``name`` (new); returns it (a decorator)."""
    return _register(rule, QUOTA_RULES, QuotaRule, "quota")


def register_keep_rule(rule: _R) -> _R:
    """Register a :class:`KeepRule` subclass under its ``name`` (new); returns it (a decorator)."""
    return _register(rule, KEEP_RULES, KeepRule, "keep")


def _register(rule: Any, registry: dict, base: type, kind: str) -> Any:
    if not (isinstance(rule, type) and issubclass(rule, base)) or not dataclasses.is_dataclass(
        rule
    ):
        raise TypeError(f"a {kind} rule is a frozen dataclass subclass of {base.__name__}")
    name = getattr(rule, "name", "")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name or ""):
        raise ValueError(f"a {kind} rule needs a name of lowercase letters, digits and _")
    if name in registry:
        raise ValueError(f"{kind} rule {name!r} is already registered")
    registry[name] = rule
    return rule


def quota_rule(value: object) -> QuotaRule:
    """A quota rule from a rule object, a registered name, or a spec ``"name(k=v, ...)"``."""
    return _rule(value, QUOTA_RULES, QuotaRule, "quota")  # type: ignore[return-value]


def keep_rule(value: object) -> KeepRule:
    """A keep rule from a rule object, a registered name, or a spec ``"name(k=v, ...)"``."""
    return _rule(value, KEEP_RULES, KeepRule, "keep")  # type: ignore[return-value]


def _rule(value: object, registry: Mapping[str, type[Rule]], base: type[Rule], kind: str) -> Rule:
    if isinstance(value, base):
        return value
    if isinstance(value, type) and issubclass(value, base):
        return value()
    if isinstance(value, str):
        match = re.fullmatch(r"\s*([A-Za-z_][\w]*)\s*(?:\((.*)\))?\s*", value, flags=re.S)
        if match and match.group(1) in registry:
            cls = registry[match.group(1)]
            return cls(**_parse_settings(cls, match.group(2) or "", kind))
    raise ValueError(
        f"{kind} must be one of {tuple(registry)} (or a rule object, or a spec like "
        f"'{next(iter(registry), 'name')}(setting=value)'), got {value!r}"
    )


def spec_settings(value: object) -> set[str]:
    """The settings a spec string names (``"drop(floor=0.3)"`` -> ``{"floor"}``); none for a
    name or a rule object."""
    if not isinstance(value, str) or "(" not in value:
        return set()
    try:
        call = ast.parse(f"f({value[value.index('(') + 1 : value.rindex(')')]})", mode="eval")
    except (SyntaxError, ValueError):
        return set()
    body = call.body
    return {k.arg for k in body.keywords if k.arg} if isinstance(body, ast.Call) else set()


def _parse_settings(cls: type[Rule], text: str, kind: str) -> dict[str, Any]:
    """``"floor=0.3, shrink=false"`` as settings of ``cls``, each coerced by its field's type.

    The text is read as the keyword arguments of a Python call (quotes, commas inside quoted
    strings); a bare word is text (``mode=count``, ``shrink=false``)."""
    fields = [f.name for f in dataclasses.fields(cls)]
    usage = f"{kind}={cls.name}(...) takes settings {fields or 'none'} as key=value"
    try:
        call = ast.parse(f"f({text})", mode="eval").body
    except SyntaxError:
        raise ValueError(f"{usage}; got {text!r}") from None
    assert isinstance(call, ast.Call)
    if call.args or any(k.arg is None for k in call.keywords):
        raise ValueError(f"{usage}; got {text!r}")
    types = typing.get_type_hints(cls)
    settings: dict[str, Any] = {}
    for keyword in call.keywords:
        key = keyword.arg
        assert key is not None
        if key not in fields:
            raise ValueError(f"{usage}; got {key!r}")
        if key in settings:
            raise ValueError(f"{kind}={cls.name}(...) gives {key} twice: give it once")
        node = keyword.value
        if isinstance(node, ast.Name):
            raw: object = node.id
        elif isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant):
            raw = ast.literal_eval(node)
        elif isinstance(node, ast.Constant):
            raw = node.value
        else:
            raise ValueError(f"{usage}: {key} must be a number, a word or a quoted text")
        settings[key] = _coerce(raw, types[key], f"{cls.name}({key}=...)")
    return settings


def _coerce(raw: object, annotation: Any, name: str) -> Any:
    """A setting's value as its declared type: bool from true/false only, numbers from their
    text, a Literal checked, an optional type by its other member (``none`` is None)."""
    members = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and members:
        if isinstance(raw, str) and raw.lower() == "none":
            return None
        return _coerce(raw, members[0] if len(members) == 1 else str, name)
    text = str(raw)
    if annotation is bool:
        if text.lower() not in ("true", "false"):
            raise ValueError(f"{name} must be true or false, got {text!r}")
        return text.lower() == "true"
    if typing.get_origin(annotation) is Literal:
        return check_choice(name, text, typing.get_args(annotation))
    for kind in (int, float):
        if annotation is kind:
            try:
                return kind(text)
            except ValueError:
                raise ValueError(f"{name} must be {kind.__name__}, got {text!r}") from None
    return text


def _text(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str) and not value.isidentifier():
        return repr(value)  # quoted: commas, spaces and parentheses read back as they were
    return f"{value}"


def _set(rule: Rule, **values: Any) -> None:
    """Store validated settings on a frozen rule (numpy scalars become Python values)."""
    for name, value in values.items():
        object.__setattr__(rule, name, value)


# --- the built-in quota rules -------------------------------------------------------------------
# DRoP: "drop_paper" is exactly Algorithm 1 of the paper; "drop" is the robust default, chosen by
# the data-shape sweep (docs, "Robust DRoP"): errors shrunk by their uncertainty when the
# validation support is known, and a floor of half of each class's share.


@dataclass(frozen=True)
class _DRoPCounts(QuotaRule):
    """Algorithm 1 (Vysogorets et al., ICLR 2025) with the robust settings of ``drop_settings``."""

    needs_errors: ClassVar[bool] = True

    def counts(self, inputs: QuotaInputs) -> NDArray[np.int64]:
        s = self.drop_settings
        assert s is not None and inputs.errors is not None
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

    def label(self, shrunk: bool = False) -> str:
        """DRoP's settings in a method name: "DRoP(paper)", "DRoP(paper, floor 0.5, shrunk)"."""
        s = self.drop_settings or {}
        parts = [s["mode"]]
        if s["strength"] != 1:
            parts.append(f"strength {s['strength']:g}")
        if s["floor"]:
            parts.append(f"floor {s['floor']:g}")
        if shrunk:
            parts.append("shrunk")
        return f"DRoP({', '.join(parts)})"

    @property
    def shrinks_errors(self) -> bool:
        return bool((self.drop_settings or {}).get("shrink"))

    @property
    def effect(self) -> str:
        """What the class errors do to the counts, in words (for cards)."""
        mode = (self.drop_settings or {})["mode"]
        grows = "grows with the class's error on held-out data"
        if mode == "paper":
            return f"the fraction of a class that is kept {grows}"
        if mode == "count":
            return f"the number of rows a class keeps {grows}"
        return (
            f"the number of rows a class keeps {grows} until one class is kept whole, and the "
            "rest of the budget is shared equally among the classes with room"
        )


@register_quota_rule
@dataclass(frozen=True)
class DRoP(_DRoPCounts):
    """Robust DRoP (the default): errors shrunk by their validation support (``shrink``) and
    tempered by ``strength``, a ``floor`` (the share of each class's share it always keeps), and
    ``mode``: "saturating" (the default: kept count proportional to error until the first class
    is kept whole, then equal shares; its floor is a share of the uniform share), "paper" (kept
    fraction proportional to error, Algorithm 1, the default before issue 19) or "count" (kept
    count proportional to error, as the authors' released code; the floors of these two are a
    share of the larger of the proportional and uniform shares).
    :func:`hf_drop.core.quotas.drop_quotas` has the details."""

    name: ClassVar[str] = "drop"
    help: ClassVar[str] = (
        "robust DRoP (default): errors shrunk by their support, counts that follow them until a "
        "class is kept whole and equal shares after, and a floor per class"
    )
    mode: Q.QuotaMode = "saturating"
    strength: float = 1.0
    floor: float = 0.5
    shrink: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.shrink, bool | np.bool_):
            raise ValueError(f"shrink must be True or False, got {self.shrink!r}")
        _set(
            self,
            mode=check_choice("mode", self.mode, Q.QUOTA_MODES),
            strength=check_number("strength", self.strength, 0, 1),
            floor=check_number("floor", self.floor, 0, 1),
            shrink=bool(self.shrink),
        )

    @property
    def drop_settings(self) -> dict[str, Any]:
        return self.settings


@register_quota_rule
@dataclass(frozen=True)
class DRoPPaper(_DRoPCounts):
    """Exactly the paper's Algorithm 1: kept fraction proportional to the class error."""

    name: ClassVar[str] = "drop_paper"
    help: ClassVar[str] = (
        "exactly the paper's Algorithm 1: kept fraction proportional to the class error"
    )

    @property
    def drop_settings(self) -> dict[str, Any]:
        return {"mode": "paper", "strength": 1.0, "floor": 0.0, "shrink": False}


@register_quota_rule
@dataclass(frozen=True)
class Proportional(QuotaRule):
    name: ClassVar[str] = "proportional"
    help: ClassVar[str] = "the same fraction of every class"
    title: ClassVar[str | None] = "Proportional"

    def counts(self, inputs: QuotaInputs) -> NDArray[np.int64]:
        return Q.proportional_quotas(
            inputs.sizes, inputs.density, min_per_class=inputs.min_per_class
        )


@register_quota_rule
@dataclass(frozen=True)
class Uniform(QuotaRule):
    name: ClassVar[str] = "uniform"
    help: ClassVar[str] = "the same number of every class"
    title: ClassVar[str | None] = "Uniform"

    def counts(self, inputs: QuotaInputs) -> NDArray[np.int64]:
        return Q.uniform_quotas(inputs.sizes, inputs.density, min_per_class=inputs.min_per_class)


@register_quota_rule
@dataclass(frozen=True)
class StrategyQ(QuotaRule):
    name: ClassVar[str] = "strategy"
    help: ClassVar[str] = "the class counts of a global selection by --strategy-score (StrategyQ)"
    title: ClassVar[str | None] = "StrategyQ"
    from_selection: ClassVar[bool] = True
    takes_min_per_class: ClassVar[bool] = False

    def counts(self, inputs: QuotaInputs) -> NDArray[np.int64]:
        assert inputs.selection_counts is not None
        return inputs.selection_counts


@register_quota_rule
@dataclass(frozen=True)
class Global(QuotaRule):
    name: ClassVar[str] = "global"
    help: ClassVar[str] = "no class counts: the selection runs over the whole dataset (baselines)"
    title: ClassVar[str | None] = ""  # the selection's own name: "el2n", "Random"
    class_blind: ClassVar[bool] = True
    takes_min_per_class: ClassVar[bool] = False


# --- the built-in keep rules --------------------------------------------------------------------


@register_keep_rule
@dataclass(frozen=True)
class Hard(KeepRule):
    name: ClassVar[str] = "hard"
    help: ClassVar[str] = "the highest scores (default)"
    direction: ClassVar[Literal["hard", "easy"] | None] = "hard"
    in_name: ClassVar[bool] = False

    def select(self, scores, budget, labels, seed):
        if labels is None:
            return S.global_top(scores, budget, keep=self.direction or "hard")
        return S.top_within_class(labels, budget, scores, keep=self.direction or "hard")


@register_keep_rule
@dataclass(frozen=True)
class Easy(Hard):
    name: ClassVar[str] = "easy"
    help: ClassVar[str] = "the lowest scores"
    direction: ClassVar[Literal["hard", "easy"] | None] = "easy"
    in_name: ClassVar[bool] = True


@register_keep_rule
@dataclass(frozen=True)
class CCS(KeepRule):
    """Coverage-centric selection: drop the hardest ``beta``, then equal-width ``strata``."""

    name: ClassVar[str] = "ccs"
    help: ClassVar[str] = "CCS: equal-width score strata after dropping the hardest beta"
    beta: float = 0.1
    strata: int = 50

    def __post_init__(self) -> None:
        _set(
            self,
            beta=check_number("ccs beta", self.beta, 0, 0.999999),
            strata=check_int("ccs strata", self.strata, 1),
        )

    def select(self, scores, budget, labels, seed):
        return S.ccs(scores, budget, labels, beta=self.beta, num_strata=self.strata, seed=seed)


@register_keep_rule
@dataclass(frozen=True)
class KCenter(KeepRule):
    name: ClassVar[str] = "k_center"
    help: ClassVar[str] = "k-center greedy coverage of an embedding"
    ndim: ClassVar[int] = 2

    def select(self, scores, budget, labels, seed):
        return S.k_center(scores, budget, labels, seed=seed)
