"""The ``hf-drop`` command line.

hf-drop probe --dataset digits --model test_resnet --epochs 10 --output runs/probe
hf-drop probe probe.yaml --epochs 3           # options from a file; flags override it
accelerate launch -m hf_drop probe ...        # the same, on several processes

One file per command (``probe``, ``prune``, ``train``, ``report``, ``export``, ``push``), each a
:class:`~hf_drop.cli.base.BaseCommand` whose options are the fields of dataclasses, read by
``transformers.HfArgumentParser`` (transformers is in the core install, without torch: ``prune``,
``export`` and ``push`` run there): every option has both spellings
(``--image_column``, ``--image-column``), transformers' names are accepted where they mean the
same (``--output_dir``, ``--num_train_epochs``, ``--learning_rate``, ``--dataset_name``), and
``--help`` shows each default. ``probe``, ``train`` and ``report`` need an extra
(``COMMAND_EXTRAS``); without it they exit 2 saying which to install. A JSON or YAML file of options (keys are the option names) gives
the defaults of one run (``--config_file``, or the first argument); flags on the command line
override it. ``--config`` is the dataset's configuration name's deprecated spelling
(``--dataset_config_name``). How much a command says is :mod:`hf_drop.io.logs`'s one path.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
import warnings
from collections.abc import Sequence
from typing import Any

from .._version import __version__
from ..io.extras import MissingExtraError, explain, require_extra
from .base import (
    NOT_RECORDED,
    BaseCommand,
    CommandError,
    OptionError,
    build,
    check_twice,
    command_line,
)
from .base import unknown_message as _unknown

__all__ = ["build_parser", "main", "parse_command"]

# Each command's class, imported when needed: `import hf_drop.cli` stays light.
COMMANDS = {
    "probe": "probe:Probe",
    "prune": "prune:Prune",
    "train": "train:Train",
    "report": "report:Report",
    "export": "export:Export",
    "push": "push:Push",
}
# The extra a command needs beyond the core install (pip install 'hf-drop[probe]'); prune, export
# and push need none.
COMMAND_EXTRAS = {"probe": "probe", "train": "train", "report": "plots"}


def command_class(name: str) -> type[BaseCommand]:
    module, _, cls = COMMANDS[name].partition(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse ``argv`` (default: the process's arguments) and run the command."""
    program = argv is None  # the hf-drop process itself, not a caller in Python
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        parser = build_parser()
        if not argv:
            parser.print_help()
            sys.exit(2)
        parser.parse_args(argv)  # --help, --version, or an unknown command: argparse says so
        sys.exit(2)
    name = argv[0]
    try:
        if name in COMMAND_EXTRAS and not {"-h", "--help"} & set(argv):  # --help needs none
            require_extra(COMMAND_EXTRAS[name], f"hf-drop {name}")
        command = parse_command(argv)
    except ValueError as error:  # an OptionError, or a dataclass refusing a value
        _exit(name, error)
    except ModuleNotFoundError as error:  # an extra not installed: say which
        _missing(name, error)
        raise

    from ..io.logs import logging_options

    interrupt = _Interrupt.install()
    try:
        with logging_options(command.args.log_level, command.args.disable_tqdm):
            for notice in command.notices:
                warnings.warn(notice, FutureWarning, stacklevel=1)
            command.run()
    except KeyboardInterrupt:
        _interrupted(name, program)
    except CommandError as error:  # done in part, and kept: its own exit status
        sys.stderr.write(f"hf-drop {name}: error: {error}\n")
        sys.exit(error.status)
    except Exception as error:
        if interrupt.seen:  # e.g. a collective whose peer was stopped: the same way out
            _interrupted(name, program)
        if isinstance(error, ValueError | FileNotFoundError | TypeError):
            _exit(name, error)
        if isinstance(error, ModuleNotFoundError):
            _missing(name, error)
        raise
    finally:
        if not program:  # a caller in Python gets its own Ctrl-C back
            interrupt.uninstall()


def _exit(name: str, error: BaseException) -> None:
    sys.stderr.write(f"hf-drop {name}: error: {error}\n")
    sys.exit(2)


def _missing(name: str, error: ModuleNotFoundError) -> None:
    """Exit 2 naming the extra to install when ``error`` is an optional module's absence; any
    other missing module is left to raise."""
    explained = explain(error, COMMAND_EXTRAS.get(name, "all"), f"hf-drop {name}")
    if isinstance(explained, MissingExtraError):
        _exit(name, explained)


def build_parser(defaults: dict[str, dict[str, Any]] | None = None) -> argparse.ArgumentParser:
    """The ``hf-drop`` parser, each command a sub-parser (``HfArgumentParser``)."""
    from transformers import HfArgumentParser

    parser = argparse.ArgumentParser(
        prog="hf-drop", description="Distributionally robust data pruning (DRoP) for HF datasets."
    )
    parser.add_argument("--version", action="version", version=f"hf-drop {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=HfArgumentParser)
    for name in COMMANDS:
        command_class(name).register_subcommand(commands, (defaults or {}).get(name, {}))
    return parser


def parse_command(argv: Sequence[str]) -> BaseCommand:
    """The command ``argv`` names (``["prune", ...]``), parsed: its options from the file of
    options (if any) and the flags over them. A wrong option is an :class:`OptionError`;
    ``--help`` exits as argparse does."""
    from .options import coerce_options, find_option_file, load_option_file

    name, rest = argv[0], list(argv[1:])
    cls = command_class(name)
    path, rest = find_option_file(rest)
    values, given = {}, list(rest)
    if path is not None:
        loaded = load_option_file(path)
        given += [f"--{key}" for key in loaded]
        values = coerce_options(
            loaded,
            cls.dataclasses(),
            path,
            command=name,
            choices=cls.choices(),
            aliases=cls.aliases,
        )
    parser = cls.parser(values)
    spellings = cls.spellings()
    check_twice(rest, spellings)
    # argparse's own errors (a bad value, a missing option) exit 2 here, saying why.
    *parsed, remaining = parser.parse_args_into_dataclasses(
        args=rest, return_remaining_strings=True
    )
    merged: dict[str, Any] = {}
    for each in parsed:
        merged.update(vars(each))
    if merged.get("config_file") is not None and merged["config_file"] != path:
        raise OptionError(f"spell --config_file out in full ({merged['config_file']} was not read)")
    options = {dtype: build(dtype, merged) for dtype in cls.dataclasses()}
    command = cls(options, [], [name, *_without_talk(rest)])
    unknown = command.take_extra(remaining)
    if unknown:
        raise OptionError(_unknown(unknown, [*spellings, *command.extra_names()]))
    cls.check_values(merged)
    _check_exclusive(cls, merged, spellings)
    command.notices = _deprecations(cls, given)
    if path is not None:  # the command as it ran, without the file (which the record cannot hold)
        command.argv = command_line(name, list(options.values()))[1:]
    return command


def _deprecations(cls: type[BaseCommand], tokens: list[str]) -> list[str]:
    """What to say about old spellings among ``tokens`` (flags, and a file's keys as flags)."""
    old = cls.deprecated_spellings()
    said = []
    for token in tokens:
        flag = token.split("=", 1)[0]
        if flag in old and flag not in said:
            said.append(flag)
    return [
        f"{flag} is deprecated for hf-drop {cls.name}: it is {old[flag]} (transformers' name); "
        "a file of options is --config_file"
        for flag in said
    ]


def _check_exclusive(cls: type[BaseCommand], values: dict, spellings: dict[str, str]) -> None:
    """Options that exclude each other, checked after a file's values are in."""
    flag = {}
    for spelling, name in spellings.items():
        flag.setdefault(name, spelling)
    for names, required in cls.exclusive:
        given = [name for name in names if values.get(name) is not None]
        if len(given) > 1:
            raise OptionError(
                f"argument {flag[given[1]]}: not allowed with argument {flag[given[0]]}"
            )
        if required and not given:
            raise OptionError(
                f"one of the arguments {' '.join(flag[n] for n in names)} is required"
            )


def _without_talk(argv: list[str]) -> list[str]:
    """``argv`` without ``--log_level X`` and ``--disable_tqdm``: they change no result."""
    talk = {f"__{name}" for name in NOT_RECORDED if name != "config_file"}
    kept, skip = [], False
    for token in argv:
        name = token.split("=", 1)[0].replace("-", "_")
        if skip:
            skip = False
        elif name == "__log_level":
            skip = "=" not in token
        elif name not in talk:
            kept.append(token)
    return kept


# --- Ctrl-C -------------------------------------------------------------------------------------


class _Interrupt:
    """SIGINT while a command runs. The first raises KeyboardInterrupt; the second (under
    ``accelerate launch``, the launcher forwards each Ctrl-C to its processes) is ignored, so
    that the way out prints no traceback; a third ends the process at once."""

    def __init__(self) -> None:
        self.count = 0
        self.previous: Any = None

    @property
    def seen(self) -> bool:
        return self.count > 0

    @classmethod
    def install(cls) -> _Interrupt:
        interrupt = cls()
        if threading.current_thread() is threading.main_thread():
            interrupt.previous = signal.signal(signal.SIGINT, interrupt)
        return interrupt

    def uninstall(self) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)

    def __call__(self, signum, frame) -> None:
        self.count += 1
        if self.count == 1:
            raise KeyboardInterrupt
        if self.count > 2:
            os._exit(130)


def _close_progress_bars() -> None:
    """Close every tqdm bar still open (a bar left to the garbage collector stays on its line)."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        try:
            bar.close()
        except AttributeError:  # one an interrupt cut short in its __init__ (see _interrupted)
            pass


def _interrupted(command: str, program: bool = False) -> None:
    """One line from the main process, exit status 130 (128 + SIGINT) from each."""
    from ..io.logs import is_main_process

    if program:
        # The interrupt can land while a progress bar is on screen, or cut a bar's __init__
        # short (no `pos` yet). Close the open bars, so that the one line starts a line of its
        # own; one cut short cannot close (it has shown nothing yet), and its __del__ fails as
        # the process exits, where Python would print "Exception ignored ... Traceback" after
        # the line. The process is ending: such errors are noise.
        _close_progress_bars()
        sys.unraisablehook = lambda unraisable: None
    if is_main_process():
        # Only a probe keeps its progress (a checkpoint per epoch) and picks it up again.
        again = "; rerun the same command to resume" if command == "probe" else ""
        sys.stderr.write(f"interrupted{again}\n")
        sys.stderr.flush()
    sys.exit(130)
