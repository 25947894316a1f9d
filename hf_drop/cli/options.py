"""Files of options (JSON or YAML), read once and coerced by each field's declared type.

``hf-drop prune run.yaml`` or ``--config_file run.json``: keys are option names, in either
spelling (``image_column``, ``image-column``, transformers' ``output_dir``); the values become
the command's defaults, so that flags still override them. Every value is checked against the
type its field declares, in :func:`coerce_options`, before anything runs:

- a boolean is ``true``/``false`` (or the strings ``"true"``/``"false"``, any case), nothing else;
- a single value where a list is expected is a one-element list (``tags: fashion``);
- a number where a string is expected is its text (``output: 2024``); a string where a number is
  expected is read as one; anything else of the wrong type is refused;

each refusal naming the file and the key; an unknown key gets the closest option's name.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from .base import OptionError, json_value, option_spellings, union_args, unique_keys

__all__ = ["CONFIG_SUFFIXES", "coerce_options", "find_option_file", "load_option_file"]

CONFIG_SUFFIXES = (".json", ".yaml", ".yml")
_FLAG = ("--config_file", "--config-file")


def find_option_file(argv: list[str]) -> tuple[str | None, list[str]]:
    """The file of options on a command's ``argv`` (its first argument, or ``--config_file``),
    and ``argv`` without a first-argument file."""
    path, rest = None, list(argv)
    if rest and Path(rest[0]).suffix.lower() in CONFIG_SUFFIXES and not Path(rest[0]).is_dir():
        path, rest = rest[0], rest[1:]
    flagged = []
    for index, token in enumerate(rest):
        name, _, value = token.partition("=")
        if name in _FLAG:
            flagged.append(value if value else (rest[index + 1] if index + 1 < len(rest) else ""))
    if flagged and path:
        raise OptionError(f"one file of options at a time: {path} and --config_file {flagged[-1]}")
    return path or (flagged[-1] if flagged else None), rest


def load_option_file(path: str) -> dict[str, Any]:
    """The mapping in a JSON or YAML file of options."""
    file = Path(path)
    if file.suffix.lower() not in CONFIG_SUFFIXES:
        raise OptionError(f"--config_file {path}: expected a .json, .yaml or .yml file")
    if not file.is_file():
        raise OptionError(f"no such file of options: {path}")
    text = file.read_text(encoding="utf-8")
    if file.suffix.lower() == ".json":
        try:
            values = json.loads(text, object_pairs_hook=unique_keys)
        except json.JSONDecodeError as error:
            raise OptionError(f"{path} is not readable as JSON: {error}") from None
    else:
        import yaml  # installed with transformers and datasets

        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise OptionError(f"{path} is not readable as YAML: {error}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise OptionError(
            f"{path} must hold a mapping of option names to values, not a list or value"
        )
    return values


def coerce_options(
    values: Mapping[Any, Any],
    dtypes: Sequence[type],
    path: str,
    *,
    command: str,
    choices: Mapping[str, Sequence[str]] | None = None,
    aliases: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The options in ``values`` (a file's mapping), by field name, each of its field's type."""
    fields: dict[str, tuple[dataclasses.Field, Any]] = {}
    names: dict[str, str] = {}  # every spelling, without its dashes -> field
    for dtype in dtypes:
        hints = typing.get_type_hints(dtype)
        for each in dataclasses.fields(dtype):
            if not each.init or each.name == "config_file":
                continue
            fields[each.name] = (each, hints[each.name])
            for flag in option_spellings(each.name, each.metadata, aliases or {}):
                names[flag[2:].replace("-", "_")] = each.name
    result: dict[str, Any] = {}
    given_as: dict[str, str] = {}
    for key, value in values.items():
        name = names.get(str(key).replace("-", "_"))
        if name is None:
            close = difflib.get_close_matches(str(key).replace("-", "_"), list(names), n=1)
            hint = f"did you mean {close[0]}?" if close else f"see hf-drop {command} --help"
            raise OptionError(f"{path}: unknown option {key!r} ({hint})")
        if name in given_as:
            raise OptionError(
                f"{path}: {given_as[name]} and {key} set the same option: give one of them"
            )
        given_as[name] = str(key)
        each, kind = fields[name]
        allowed = (choices or {}).get(name)
        result[name] = coerce(value, kind, f"{path}: {key}", each, allowed)
    return result


def coerce(
    value: Any,
    kind: Any,
    what: str,
    each: dataclasses.Field | None = None,
    choices: Sequence[str] | None = None,
) -> Any:
    """``value`` as the declared type ``kind``, or an :class:`OptionError` naming ``what``."""
    args = union_args(kind)
    if value is None:
        if type(None) in args and (each is None or not _required(each)):
            return None
        raise OptionError(f"{what} needs a value")
    if each is not None and each.metadata.get("json") and isinstance(value, str):
        try:
            value = json_value(value)  # JSON text or a .json file, as on the command line
        except ValueError as error:
            raise OptionError(f"{what}: {error}") from None
    for arg in args:  # a list (or tuple) of items; one item alone is a list of one
        origin = typing.get_origin(arg)
        if origin in (list, tuple):
            item = typing.get_args(arg)[0]
            if isinstance(value, dict):
                raise OptionError(f"{what} must be a list, got a mapping")
            items = list(value) if isinstance(value, list | tuple) else [value]
            coerced = [coerce(v, item, what, None, choices) for v in items]
            return tuple(coerced) if origin is tuple else coerced
    kinds = [a for a in args if a is not type(None)]
    if len(kinds) != 1:
        raise OptionError(f"{what}: no single type to read {value!r} as")  # not declared so
    single = kinds[0]
    if single is Any:
        return value
    origin = typing.get_origin(single)
    if origin is Literal:
        return _one_of(value, [str(c) for c in typing.get_args(single)], what)
    if single is dict or origin is dict:
        if not isinstance(value, dict):
            raise OptionError(f"{what} must be a mapping, got {type(value).__name__} {value!r}")
        return value
    if single is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise OptionError(f"{what} must be true or false, got {value!r}")
    if single is int:
        return _int(value, what)
    if single is float:
        return _float(value, what)
    if single is str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise OptionError(f"{what} must be a string, got {type(value).__name__} {value!r}")
        text = str(value)
        return _one_of(text, choices, what) if choices else text
    raise OptionError(f"{what}: cannot read a value of type {single!r}")  # not declared so


def _required(each: dataclasses.Field) -> bool:
    return each.default is dataclasses.MISSING and each.default_factory is dataclasses.MISSING


def _one_of(value: Any, choices: Sequence[str], what: str) -> str:
    if not isinstance(value, str) or value not in choices:
        raise OptionError(f"{what} {value!r} is not one of {', '.join(choices)}")
    return value


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise OptionError(f"{what} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise OptionError(f"{what} must be an integer, got {type(value).__name__} {value!r}")


def _float(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise OptionError(f"{what} must be a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            pass
        else:
            if math.isfinite(number) or value.strip().lower() == "nan":
                return number
    raise OptionError(f"{what} must be a number, got {type(value).__name__} {value!r}")
