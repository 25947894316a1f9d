# Adapted from transformers.HfArgumentParser (src/transformers/hf_argparser.py),
# Copyright 2020 The HuggingFace Team, licensed under the Apache License, Version 2.0.
"""The parser of dataclass options: ``transformers.HfArgumentParser``'s rules, without transformers.

``hf-drop prune`` and ``hf-drop push`` run on the core install, which has no transformers, so the
command line cannot import its ``HfArgumentParser``. :class:`DataclassArgumentParser` reads
dataclass fields by the same rules (a test compares the two, option by option, where transformers
is installed):

- each field is ``--name`` (and ``--name-with-dashes``), plus ``metadata["aliases"]``; the other
  metadata (``help``, ``metavar``, ``action``, ...) goes to ``add_argument`` as it is;
- ``X | None`` is read as ``X``; a ``Literal`` or an ``Enum`` gives its choices;
- a ``bool`` takes an optional value (``--flag``, ``--flag false``), and one that defaults to
  True has a ``--no_flag`` too;
- ``list[X]`` takes one or more values;
- a field without a default is required;
- ``_argument_group_name`` on a dataclass puts its options in a group of that title.

transformers' parser also reads a ``<script>.args`` file beside the program; this one does not.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Iterable
from copy import copy
from enum import Enum
from inspect import isclass
from typing import Any, Literal

__all__ = ["DataclassArgumentParser", "string_to_bool"]


def string_to_bool(value: str | bool) -> bool:
    """``yes/no``, ``true/false``, ``t/f``, ``y/n``, ``1/0`` (any case) as a bool."""
    if isinstance(value, bool):
        return value
    if value.lower() in ("yes", "true", "t", "y", "1"):
        return True
    if value.lower() in ("no", "false", "f", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(
        f"Truthy value expected: got {value} but expected one of yes/no, true/false, t/f, y/n, "
        "1/0 (case insensitive)."
    )


def _choice_type(choices: Iterable[Any]) -> Callable[[str], Any]:
    """The choice a string names (``"1"`` -> ``1`` for ``Literal[1, 2]``), else the string."""
    by_text = {str(choice): choice for choice in choices}
    return lambda text: by_text.get(text, text)


class DataclassArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose options are the fields of ``dataclass_types``; see the
    module's docstring. ``parse_args_into_dataclasses`` returns an instance of each."""

    def __init__(self, dataclass_types: type | Iterable[type] | None = None, **kwargs: Any):
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(**kwargs)
        if dataclass_types is None:
            dataclass_types = []
        elif dataclasses.is_dataclass(dataclass_types) or not isinstance(dataclass_types, Iterable):
            dataclass_types = [dataclass_types]
        self.dataclass_types = list(dataclass_types)
        for dtype in self.dataclass_types:
            self._add_dataclass_arguments(dtype)

    def _add_dataclass_arguments(self, dtype: type) -> None:
        group_name = getattr(dtype, "_argument_group_name", None)
        parser: Any = self.add_argument_group(group_name) if group_name else self
        hints = typing.get_type_hints(dtype)
        for each in dataclasses.fields(dtype):
            if each.init:
                _add_field(parser, each, hints[each.name])

    def parse_args_into_dataclasses(
        self, args: list[str] | None = None, return_remaining_strings: bool = False
    ) -> tuple[Any, ...]:
        """An instance of each dataclass from ``args`` (default: the process's arguments), then
        a namespace of any other options, then (``return_remaining_strings``) the strings not
        read."""
        namespace, remaining = self.parse_known_args(args=args)
        outputs: list[Any] = []
        for dtype in self.dataclass_types:
            keys = {f.name for f in dataclasses.fields(dtype) if f.init}
            inputs = {k: v for k, v in vars(namespace).items() if k in keys}
            for key in keys:
                delattr(namespace, key)
            outputs.append(dtype(**inputs))
        if vars(namespace):  # options added to the parser by hand
            outputs.append(namespace)
        if return_remaining_strings:
            return (*outputs, remaining)
        if remaining:
            raise ValueError(f"Some specified arguments are not used by the parser: {remaining}")
        return tuple(outputs)


def _add_field(parser: Any, field: dataclasses.Field, kind: Any) -> None:
    """Add ``field`` (of type ``kind``) to ``parser`` by HfArgumentParser's rules."""
    options = [f"--{field.name}"]
    if "_" in field.name:
        options.append(f"--{field.name.replace('_', '-')}")
    kwargs = dict(field.metadata)
    aliases = kwargs.pop("aliases", [])
    if isinstance(aliases, str):
        aliases = [aliases]

    origin = typing.get_origin(kind) or kind
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(kind)
        if str not in args and (len(args) != 2 or type(None) not in args):
            raise ValueError(
                "Only `Union[X, NoneType]` (i.e., `Optional[X]`) is allowed for `Union` because "
                "the argument parser only supports one type per argument. Problem encountered "
                f"in field '{field.name}'."
            )
        if type(None) not in args:  # X | str: read as X
            kind = args[0] if args[1] is str else args[1]
        elif bool not in args:  # X | None: read as X (bool | None stays as it is)
            kind = args[0] if isinstance(None, args[1]) else args[1]
        origin = typing.get_origin(kind) or kind

    is_bool = kind is bool or kind == bool | None
    no_kwargs: dict[str, Any] = {}
    if origin is Literal or (isinstance(kind, type) and issubclass(kind, Enum)):
        choices = typing.get_args(kind) if origin is Literal else [x.value for x in kind]
        kwargs["choices"] = choices
        kwargs["type"] = _choice_type(choices)
        if field.default is not dataclasses.MISSING:
            kwargs["default"] = field.default
        else:
            kwargs["required"] = True
    elif is_bool:
        no_kwargs = copy(kwargs)  # the --no_ complement, added after the field itself
        kwargs["type"] = string_to_bool
        if kind is bool or (field.default is not None and field.default is not dataclasses.MISSING):
            kwargs["default"] = False if field.default is dataclasses.MISSING else field.default
            kwargs["nargs"] = "?"  # --flag alone, or --flag VALUE
            kwargs["const"] = True
    elif isclass(origin) and issubclass(origin, list):
        kwargs["type"] = typing.get_args(kind)[0]
        kwargs["nargs"] = "+"
        if field.default_factory is not dataclasses.MISSING:
            kwargs["default"] = field.default_factory()
        elif field.default is dataclasses.MISSING:
            kwargs["required"] = True
    else:
        kwargs["type"] = kind
        if field.default is not dataclasses.MISSING:
            kwargs["default"] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            kwargs["default"] = field.default_factory()
        else:
            kwargs["required"] = True
    parser.add_argument(*options, *aliases, **kwargs)

    if field.default is True and is_bool:  # after the field: same destination, order matters
        no_kwargs["default"] = False
        parser.add_argument(
            f"--no_{field.name}",
            f"--no-{field.name.replace('_', '-')}",
            action="store_false",
            dest=field.name,
            **no_kwargs,
        )
