"""The one input layer: every value a user passes, read by name and type in one place.

numpy and pandas only. Numbers may be Python or numpy scalars (never bools, never strings: an
option file's strings are coerced by the command line, which knows each field's type). Per-class
values (class errors, validation support, class sizes) may be a list or array by class id, a
mapping or a pandas Series by class name or id, or a :class:`~hf_drop.core.uncertainty.ClassErrors`
(read by the names it carries), and become one array by class id, NaN where not given.

An int key is a class id and a str key a class name. Where the class names are themselves
digit strings ("0".."11", sorted as text), an int key whose id and name differ is ambiguous and
refused with the fix, instead of landing on the wrong class.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .uncertainty import ClassErrors

__all__ = [
    "as_jsonable",
    "check_choice",
    "check_int",
    "check_number",
    "error_value",
    "per_class",
    "support_value",
]


def check_number(name: str, value: object, low: float = -math.inf, high: float = math.inf) -> float:
    """``value`` as a float in ``[low, high]``: a Python or numpy number, not a bool or a str."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real | Decimal):
        raise ValueError(f"{name} must be a number in [{low:g}, {high:g}], got {value!r}")
    number = float(value)
    if not low <= number <= high:  # NaN fails too
        raise ValueError(f"{name} must be a number in [{low:g}, {high:g}], got {value!r}")
    return number


def check_int(name: str, value: object, low: int = 0) -> int:
    """``value`` as an int >= ``low``: a Python or numpy integer, not a bool, float or str."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    if int(value) < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


def check_choice(name: str, value: object, allowed: Sequence[str]) -> str:
    """``value`` if it is one of ``allowed`` (strings), else a ValueError listing them."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")
    return value


def error_value(name: str, key: object, value: object) -> float:
    """One class error: a number in [0, 1], or NaN for "none"."""
    error = _float(name, key, value)
    if not (math.isnan(error) or 0 <= error <= 1):
        raise ValueError(
            f"{name} must lie in [0, 1] (NaN: no error for that class); got {value!r} for "
            f"class {key!r}"
        )
    return error


def support_value(name: str, key: object, value: object) -> float:
    """One class's count (validation support, class size): a whole number >= 0 (NaN: unknown)."""
    count = _float(name, key, value)
    if not (math.isnan(count) or (count >= 0 and count == int(count))):
        raise ValueError(f"{name}[{key!r}] must be a whole number >= 0, got {value!r}")
    return count


Check = Callable[[str, object, object], float]


def per_class(
    values: object,
    names: Sequence[str],
    *,
    name: str,
    column: str,
    check: Check,
    field: str = "errors",
) -> NDArray[np.float64]:
    """``values`` as an array by class id (``names`` are the classes), NaN where not given.

    ``field`` picks what a :class:`ClassErrors` contributes (``"errors"`` or ``"support"``); its
    names that are not classes of ``column`` are refused, unless they are the default names
    ``"0".."K-1"`` of errors computed without class names, which are then class ids.
    ``check(name, key, value)`` validates and converts each value.
    """
    names = list(names)
    if isinstance(values, ClassErrors):
        return _from_class_errors(values, names, name=name, column=column, check=check, field=field)
    if _is_series(values):
        index = values.index  # type: ignore[attr-defined]
        if not index.is_unique:
            twice = index[index.duplicated()].unique()[:5].tolist()
            raise ValueError(f"{name} gives class(es) {twice} more than once: give each once")
        values = dict(values.items())  # type: ignore[attr-defined]
    if isinstance(values, Mapping):
        return _from_mapping(values, names, name=name, column=column, check=check)
    if isinstance(values, str | bytes) or not _is_sequence(values):
        raise ValueError(
            f"{name} must be a list or array by class id, a mapping or pandas Series by class "
            f"name, or a ClassErrors; got {type(values).__name__}"
        )
    try:
        array = np.array(values, dtype=object)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be numbers: {error}") from None
    if array.ndim != 1 or len(array) != len(names):
        raise ValueError(
            f"{name} has shape {array.shape} but label column {column!r} has {len(names)} "
            "classes: one value per class id is expected"
        )
    return np.array([check(name, names[k], v) for k, v in enumerate(array)], dtype=np.float64)


def _from_mapping(
    values: Mapping, names: list[str], *, name: str, column: str, check: Check
) -> NDArray[np.float64]:
    result = np.full(len(names), np.nan)
    by_name = {class_name: k for k, class_name in enumerate(names)}
    digit_names = all(n.isdigit() for n in names)
    given: dict[int, object] = {}
    for key, value in values.items():
        k = _class_id(key, by_name, names, digit_names, name=name, column=column)
        if k in given:
            raise ValueError(
                f"{name} gives class {names[k]!r} twice (as {given[k]!r} and {key!r}): give each "
                "class once, by name or by id"
            )
        given[k] = key
        result[k] = check(name, key, value)
    return result


def _class_id(
    key: object,
    by_name: dict[str, int],
    names: list[str],
    digit_names: bool,
    *,
    name: str,
    column: str,
) -> int:
    """The class id a mapping key means: a str is a name, an int an id (ambiguity refused)."""
    if isinstance(key, str):
        if key in by_name:
            return by_name[key]
    elif isinstance(key, numbers.Integral) and not isinstance(key, bool | np.bool_):
        k = int(key)
        if 0 <= k < len(names):
            if digit_names and names[k] != str(k):
                raise ValueError(
                    f"{name} key {key!r} is ambiguous: label column {column!r} names its classes "
                    f"with digits, and class id {k} is named {names[k]!r}; give the keys as the "
                    f"class names (strings, e.g. {str(k)!r} for the class named {str(k)!r}), or "
                    "a list by class id"
                )
            return k
    raise ValueError(
        f"{name} names class {key!r}, which is not a class of label column {column!r} "
        f"(classes: {names[:20]})"
    )


def _from_class_errors(
    errors: ClassErrors, names: list[str], *, name: str, column: str, check: Check, field: str
) -> NDArray[np.float64]:
    """A ClassErrors by its names; default names ``"0".."K-1"`` read as class ids."""
    values = getattr(errors, field)
    carried = list(errors.names)
    unknown = [n for n in carried if n not in names]
    default = carried == [str(k) for k in range(len(carried))]
    if default and not unknown and carried != names[: len(carried)]:
        # "0".."K-1" are the names of errors computed without class names, i.e. class ids; on
        # classes named by digits in another order they would land on other classes.
        raise ValueError(
            f"{name} is a ClassErrors named '0'..'{len(carried) - 1}' (class ids, as "
            f"class_errors_from_predictions names them without class_names=), but label column "
            f"{column!r} names its classes with digits in another order ({names[:12]}): it is "
            "ambiguous; build it with class_names= the dataset's class names"
        )
    if unknown and default and len(carried) == len(names):
        return np.array([check(name, names[k], v) for k, v in enumerate(values)], np.float64)
    if unknown:
        raise ValueError(
            f"{name} is a ClassErrors for classes {unknown[:10]} that are not classes of label "
            f"column {column!r} (classes: {names[:20]}): build it with class_names= the "
            "dataset's class names, or pass errors by class id"
        )
    result = np.full(len(names), np.nan)
    for n, v in zip(carried, values, strict=True):
        result[names.index(n)] = check(name, n, v)
    return result


def _float(name: str, key: object, value: object) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}[{key!r}] must be a number, got {value!r}")
    return float(value)


def _is_series(values: object) -> bool:
    """A pandas Series (by name and module: the core does not import pandas)."""
    kind = type(values)
    return kind.__name__ == "Series" and kind.__module__.startswith("pandas")


def _is_sequence(values: object) -> bool:
    return isinstance(values, Sequence | np.ndarray) or hasattr(values, "__array__")


def as_jsonable(value: Any) -> Any:
    """A parameter as JSON: numpy values as Python ones, mappings with str keys, large arrays
    summarised, ClassErrors with their counts."""
    if isinstance(value, ClassErrors):
        return {
            "names": list(value.names),
            "errors": [None if np.isnan(e) else float(e) for e in value.errors],
            "support": value.support.tolist(),
            "mistakes": value.mistakes.tolist(),
            "train_sizes": None if value.train_sizes is None else value.train_sizes.tolist(),
            "num_inits": value.num_inits,
        }
    if (isinstance(value, np.ndarray | list | tuple) or _is_series(value)) and len(value) > 1000:
        # Per-row values (scores given as an array): summarised, the record stays small.
        shape = list(np.shape(value)) if isinstance(value, np.ndarray) else [len(value)]
        return f"<{type(value).__name__} of shape {shape}>"
    if _is_series(value):
        return {str(k): as_jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return as_jsonable(value.tolist())
    if isinstance(value, Mapping):
        return {str(k): as_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    to_spec = getattr(value, "spec", None)
    if callable(to_spec):  # a rule object: its spec string ("drop(floor=0.3)")
        return to_spec()
    return value
