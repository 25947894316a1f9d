"""What every command shares: options declared as dataclass fields, parsed by
``transformers.HfArgumentParser`` through its public API, and written back as a command line.

A command lists its dataclasses; each field is an option (``--name`` and ``--name-with-dashes``,
its ``help`` metadata, its default). Before the parser sees a dataclass, :func:`parser_view`
derives the parser's view of it: the defaults a file of options gives, the help that shows a
default, a plain switch for a ``False`` boolean (``--overwrite RUN`` never reads ``RUN`` as its
value), a JSON value where ``metadata["json"]`` asks for one, a list of any length where
``metadata["nargs"]`` says so, and transformers' names as aliases. The dataclass itself stays as
declared: it is what the command builds and what :func:`command_line` writes back.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import shlex
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

__all__ = [
    "BaseCommand",
    "CommandError",
    "CommonArguments",
    "OptionError",
    "command_line",
    "option_spellings",
]

# transformers' names of hf-drop's options, accepted wherever the field exists.
TRANSFORMERS_NAMES = {
    "dataset": "dataset_name",
    "output": "output_dir",
    "epochs": "num_train_epochs",
    "lr": "learning_rate",
}
# Options that say how a command talks, not what it computes: not part of a recorded command.
NOT_RECORDED = ("config_file", "log_level", "disable_tqdm")


class OptionError(ValueError):
    """A command line or a file of options that cannot be read; the message says why."""


class CommandError(Exception):
    """A command that failed after part of its work was done and kept: the process exits with
    ``status`` (not 2, which says nothing was done: a bad option or input) and the message."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(kw_only=True)
class CommonArguments:
    """Options of every command: a file of options, and how much the command says."""

    config_file: str | None = field(
        default=None,
        metadata={
            "help": "a JSON or YAML file of options, keys named as the options (image_column: "
            "img); flags on the command line override it. Also: the first argument, "
            "hf-drop COMMAND FILE.yaml",
            "metavar": "FILE",
        },
    )
    log_level: Literal["debug", "info", "warning", "error", "critical"] | None = field(
        default=None,
        metadata={
            "help": "how much hf-drop logs on stderr, its warnings included (default: "
            "$HF_DROP_VERBOSITY, or info)"
        },
    )
    disable_tqdm: bool = field(
        default=False,
        metadata={
            "help": "no progress bars (also: TQDM_DISABLE=1, HF_DATASETS_DISABLE_PROGRESS_BARS=1, "
            "--log_level error)"
        },
    )


# --- the parser's view of a dataclass -----------------------------------------------------------


class Switch(argparse.Action):
    """``--flag``: sets True and takes no value (the type and value count the parser offers a
    boolean field are not used)."""

    def __init__(self, option_strings, dest, default=False, required=False, help=None, **_):
        super().__init__(
            option_strings, dest, nargs=0, default=default, required=required, help=help
        )

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, True)


class JsonValue(argparse.Action):
    """A JSON value, given inline or as the path of a ``.json`` file."""

    def __init__(self, option_strings, dest, type=None, **kwargs):
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        try:
            setattr(namespace, self.dest, json_value(values))
        except ValueError as error:
            raise argparse.ArgumentError(self, str(error)) from None


def json_value(text: str) -> Any:
    """``text`` as JSON, or the JSON in the ``.json`` file it names."""
    if text.endswith(".json") and Path(text).is_file():
        try:
            return json.loads(Path(text).read_text(encoding="utf-8"), object_pairs_hook=unique_keys)
        except json.JSONDecodeError as error:
            raise ValueError(f"{text} is not readable as JSON: {error}") from None
    try:
        return json.loads(text, object_pairs_hook=unique_keys)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON ({error}), nor a .json file: {text!r}") from None


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are given once each (json keeps the last of a repeated key)."""
    keys = [key for key, _ in pairs]
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:
        raise ValueError(f"the JSON object gives {twice} more than once: give each key once")
    return dict(pairs)


def union_args(kind: Any) -> tuple[Any, ...]:
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return typing.get_args(kind)
    return (kind,)


def list_item(kind: Any) -> Any | None:
    """``X`` if ``kind`` is (or includes) ``list[X]`` or ``tuple[X, ...]``, else None."""
    for arg in union_args(kind):
        if typing.get_origin(arg) in (list, tuple):
            return typing.get_args(arg)[0]
    return None


def option_spellings(name: str, metadata: Mapping[str, Any], extra: Mapping[str, str]) -> list[str]:
    """Every flag of the field ``name``: ``--name``, ``--name-with-dashes``, then its aliases
    (``metadata["aliases"]``, else transformers' name of it), each in both spellings."""
    aliases = metadata.get("aliases")
    if aliases is None:
        other = extra.get(name) or TRANSFORMERS_NAMES.get(name)
        aliases = [f"--{other}"] if other else []
    names = [f"--{name}"]
    for alias in [names[0], *([aliases] if isinstance(aliases, str) else aliases)]:
        stem = alias[2:]
        names += [f"--{stem.replace('-', '_')}", f"--{stem.replace('_', '-')}"]
    return list(dict.fromkeys(names))


def _shows_default(value: Any) -> bool:
    return value is not None and value is not False and value not in ([], {}, ())


def parser_view(
    dtype: type,
    defaults: Mapping[str, Any],
    *,
    group: str | None = None,
    choices: Mapping[str, Sequence[str]] | None = None,
    notes: Mapping[str, str] | None = None,
    required: Iterable[str] = (),
    aliases: Mapping[str, str] | None = None,
) -> type:
    """The dataclass ``HfArgumentParser`` is given for ``dtype`` (see the module's docstring):
    its options, without the positional ones (:func:`add_positionals`)."""
    hints = typing.get_type_hints(dtype)
    required, choices, aliases = set(required), choices or {}, aliases or {}
    fields = []
    for each in dataclasses.fields(dtype):
        if not each.init or each.metadata.get("positional"):
            continue
        kind, meta = hints[each.name], dict(each.metadata)
        meta.pop("deprecated", None)  # hf-drop's, for the notice (parse_command); not argparse's
        names = option_spellings(each.name, meta, aliases)
        meta["aliases"] = names[2 if "_" in each.name else 1 :]
        if each.name in defaults:
            default, factory = defaults[each.name], dataclasses.MISSING
        else:
            default, factory = each.default, each.default_factory
        optional = type(None) in union_args(kind)
        item = list_item(kind)
        if meta.pop("json", False):
            kind = str | None
            meta.update(action=JsonValue, metavar=meta.get("metavar", "JSON"))
        elif kind is bool and default is False:
            meta["action"] = Switch
        elif item is not None:  # any count with nargs (HfArgumentParser's lists take 1 or more)
            meta.setdefault("nargs", "+")
            kind = item | None if optional or default is None else item
        if each.name in choices:
            meta["choices"] = list(choices[each.name])
        if notes and each.name in notes:
            meta["help"] = meta.get("help", "") + notes[each.name].replace("%", "%%")
        if each.name in required and each.name not in defaults:
            meta["required"] = True
        if meta.get("help") and kind is bool and default is True:
            # Literal text: the parser's --no_<name> shares this help, with a default of False.
            meta["help"] += f" (default: on; --no-{each.name.replace('_', '-')} turns it off)"
        elif meta.get("help") and "%(default)" not in meta["help"]:
            shown = factory() if factory is not dataclasses.MISSING else default
            if shown is not dataclasses.MISSING and _shows_default(shown):
                meta["help"] += " (default: %(default)s)"
        if isinstance(default, list | dict | tuple):
            default, factory = dataclasses.MISSING, (lambda value=default: _copy(value))
        fields.append(
            (each.name, kind, field(default=default, default_factory=factory, metadata=meta))
        )
    view = dataclasses.make_dataclass(f"{dtype.__name__}View", fields, kw_only=True)
    if group:
        view._argument_group_name = group  # HfArgumentParser's group for a dataclass
    return view


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value)) if isinstance(value, list | dict) else value


def add_positionals(parser: argparse.ArgumentParser, dtype: type, defaults: Mapping) -> None:
    """The positional fields of ``dtype`` (``metadata["positional"]``); one a file gives need
    not be on the command line."""
    for each in dataclasses.fields(dtype):
        if not each.metadata.get("positional"):
            continue
        nargs = each.metadata.get("nargs")
        kwargs: dict[str, Any] = {"help": each.metadata.get("help"), "nargs": nargs}
        if each.name in defaults:
            kwargs.update(default=defaults[each.name], nargs="*" if nargs in ("+", "*") else "?")
        parser.add_argument(each.name, **kwargs)


def build(dtype: type, values: Mapping[str, Any]) -> Any:
    """An instance of ``dtype`` from parsed ``values`` named as its fields (tuples as declared)."""
    hints = typing.get_type_hints(dtype)
    kwargs = {}
    for each in dataclasses.fields(dtype):
        if each.init and each.name in values:
            value = values[each.name]
            if isinstance(value, list) and any(
                typing.get_origin(a) is tuple for a in union_args(hints[each.name])
            ):
                value = tuple(value)
            kwargs[each.name] = value
    return dtype(**kwargs)


# --- a command ----------------------------------------------------------------------------------


class BaseCommand(ABC):
    """One ``hf-drop`` command: its options (dataclasses), how it registers, how it runs.

    ``options`` lists ``(dataclass, group title)``; every command also takes
    :class:`CommonArguments`. A parsed command holds an instance of each dataclass
    (``self.options[dtype]``), their fields merged in ``self.args``, the remaining strings
    (``self.extra``, for a command that takes others) and the command line to record
    (``self.argv``)."""

    name: ClassVar[str]
    help: ClassVar[str]
    description: ClassVar[str]
    epilog: ClassVar[str | None] = None
    formatter_class: ClassVar[type] = argparse.HelpFormatter
    options: ClassVar[tuple[tuple[type, str | None], ...]] = ()
    required: ClassVar[tuple[str, ...]] = ()  # fields with a default that a command line needs
    aliases: ClassVar[dict[str, str]] = {}  # more transformers names, field -> name
    # Options that exclude each other, and whether one of them is needed.
    exclusive: ClassVar[tuple[tuple[tuple[str, ...], bool], ...]] = ()
    allow_abbrev: ClassVar[bool] = True

    def __init__(self, options: dict[type, Any], extra: list[str], argv: list[str]) -> None:
        self.options = options
        self.extra = extra
        self.argv = argv
        self.args = argparse.Namespace(
            **{k: v for o in options.values() for k, v in vars(o).items()}
        )
        self.notices: list[str] = []  # said (as FutureWarnings) when the command runs

    @classmethod
    def dataclasses(cls) -> list[type]:
        return [dtype for dtype, _ in cls.options] + [CommonArguments]

    @classmethod
    def choices(cls) -> dict[str, list[str]]:
        """Choices known only when the parser is built (e.g. registered rules), by field."""
        return {}

    @classmethod
    def check_values(cls, values: Mapping[str, Any]) -> None:
        """Refuse (OptionError) option values that only the library can judge, once the flags
        and the file of options are merged, before anything is read."""
        return None  # most commands have none

    @classmethod
    def help_notes(cls) -> dict[str, str]:
        """Help known only when the parser is built, added to a field's, by field."""
        return {}

    @classmethod
    def parser_arguments(cls, defaults: Mapping[str, Any] = {}) -> dict[str, Any]:
        """What ``HfArgumentParser(**...)`` is given: the parser's view of each dataclass."""
        groups = [*cls.options, (CommonArguments, "file of options and logging")]
        views = [
            parser_view(
                dtype,
                defaults,
                group=title,
                choices=cls.choices(),
                notes=cls.help_notes(),
                required=cls.required,
                aliases=cls.aliases,
            )
            for dtype, title in groups
        ]
        return {
            "dataclass_types": views,
            "description": cls.description,
            "epilog": cls.epilog_text(),
            "formatter_class": cls.formatter_class,
            "allow_abbrev": cls.allow_abbrev,
        }

    @classmethod
    def epilog_text(cls) -> str | None:
        return cls.epilog

    @classmethod
    def register_subcommand(cls, commands: Any, defaults: Mapping[str, Any] = {}) -> Any:
        """Add this command to ``commands`` (``ArgumentParser.add_subparsers()``)."""
        parser = commands.add_parser(cls.name, help=cls.help, **cls.parser_arguments(defaults))
        for dtype in cls.dataclasses():
            add_positionals(parser, dtype, defaults)
        parser.set_defaults(command=cls)
        return parser

    @classmethod
    def parser(cls, defaults: Mapping[str, Any] = {}) -> Any:
        """This command's parser on its own, with ``defaults`` (a file's options)."""
        from transformers import HfArgumentParser

        parser = HfArgumentParser(prog=f"hf-drop {cls.name}", **cls.parser_arguments(defaults))
        for dtype in cls.dataclasses():
            add_positionals(parser, dtype, defaults)
        return parser

    @classmethod
    def spellings(cls) -> dict[str, str]:
        """Every flag of the command -> its field (``--no_x`` included)."""
        hints_all = {}
        for dtype in cls.dataclasses():
            hints = typing.get_type_hints(dtype)
            for each in dataclasses.fields(dtype):
                if not each.init or each.metadata.get("positional"):
                    continue
                for flag in option_spellings(each.name, each.metadata, cls.aliases):
                    hints_all[flag] = each.name
                if hints[each.name] is bool and each.default is True:
                    hints_all[f"--no_{each.name}"] = each.name
                    hints_all[f"--no-{each.name.replace('_', '-')}"] = each.name
        return hints_all

    @classmethod
    def deprecated_spellings(cls) -> dict[str, str]:
        """Old flags still read (``metadata["deprecated"]``), each -> the flag to use now."""
        found = {}
        for dtype in cls.dataclasses():
            for each in dataclasses.fields(dtype):
                old = each.metadata.get("deprecated")
                for flag in [old] if isinstance(old, str) else old or []:
                    found[flag] = f"--{each.name}"
        return found

    def take_extra(self, strings: list[str]) -> list[str]:
        """Strings none of the options took: those this command reads itself are consumed
        here; the rest is returned (and refused)."""
        return strings

    def extra_names(self) -> list[str]:
        """Flags the command takes besides its options (for "did you mean")."""
        return []

    @abstractmethod
    def run(self) -> None:
        """Do the work; the library does it, the command only parses."""


def unknown_message(strings: list[str], known: Iterable[str]) -> str:
    """ "unrecognized arguments: ... (did you mean --x?)"."""
    known = list(known)
    hints = []
    for token in strings:
        if token.startswith("--"):
            close = difflib.get_close_matches(token.split("=", 1)[0], known, n=1)
            hints += [f"{token.split('=', 1)[0]}: did you mean {close[0]}?"] if close else []
    hint = f" ({'; '.join(hints)})" if hints else ""
    return f"unrecognized arguments: {' '.join(strings)}{hint}"


def check_twice(argv: list[str], spellings: Mapping[str, str]) -> None:
    """Refuse one setting given under two of its names (``--lr 0.1 --learning_rate 0.2``)."""
    seen: dict[str, str] = {}
    for token in argv:
        flag = token.split("=", 1)[0]
        name = spellings.get(flag)
        if name is None:
            continue
        earlier = seen.setdefault(name, flag)
        if earlier.replace("-", "_") != flag.replace("-", "_"):
            raise OptionError(f"{earlier} and {flag} set the same thing: give one of them")


# --- the command line of parsed options ---------------------------------------------------------


def command_line(
    name: str, instances: Sequence[Any], *, explicit: bool = False, last: str = "output"
) -> list[str]:
    """``["hf-drop", name, ...]`` that parses back to ``instances``: positionals first, then
    every option that is not its default (every one that is set, with ``explicit``), ``last``
    at the end, with dashes (``--min-per-class``)."""
    positional, options, tail = [], [], []
    for instance in instances:
        hints = typing.get_type_hints(type(instance))
        for each in dataclasses.fields(instance):
            value = getattr(instance, each.name)
            if not each.init or each.name in NOT_RECORDED:
                continue
            if each.metadata.get("positional"):
                positional += [str(v) for v in (value if isinstance(value, list) else [value])]
                continue
            default = (
                each.default_factory()
                if each.default_factory is not dataclasses.MISSING
                else each.default
            )
            if value is None or (
                not explicit and value == default and type(value) is type(default)
            ):
                continue
            tokens = _tokens(each, hints[each.name], value)
            (tail if each.name == last else options).extend(tokens)
    return ["hf-drop", name, *positional, *options, *tail]


def _tokens(each: dataclasses.Field, kind: Any, value: Any) -> list[str]:
    flag = "--" + each.name.replace("_", "-")
    if each.metadata.get("json"):
        return [flag, json.dumps(value)]
    if kind is bool:
        if value:
            return [flag] if each.default is not True else []
        return [f"--no-{each.name.replace('_', '-')}"] if each.default is True else []
    if isinstance(value, list | tuple):
        return [flag, *map(_text, value)]
    return [flag, _text(value)]


def _text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def join(tokens: Sequence[str]) -> str:
    return shlex.join(tokens)


# --- small helpers the commands share -----------------------------------------------------------


def local_paths(*names: str | None) -> list[Path]:
    """Those of ``names`` (datasets, folders) that are local paths: inputs an output may not
    overlap."""
    builtin = ("fashion_mnist", "digits")  # load_source's own names, never paths
    return [Path(name) for name in names if name and name not in builtin and Path(name).exists()]


def one_or_many(columns: str | list[str] | None) -> str | list[str] | None:
    """``--group-column``: one column as a name, several as a list."""
    if not columns:
        return None
    if isinstance(columns, str):
        return columns
    return columns[0] if len(columns) == 1 else list(columns)
