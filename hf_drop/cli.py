"""The ``hf-drop`` command line.

hf-drop probe --dataset digits --model test_resnet --epochs 10 --output runs/probe
hf-drop probe probe.yaml --epochs 3           # options from a file; flags override it
accelerate launch -m hf_drop probe ...        # the same, on several processes

The options of ``probe``, ``prune``, ``report`` and ``push`` are declared once, as the fields of
dataclasses (:class:`~hf_drop.probe.config.ProbeConfig` and the ``*Arguments`` below), and read by
``transformers.HfArgumentParser``: every multi-word option has both spellings (``--image_column``,
``--image-column``), and ``--help`` shows each default. A JSON or YAML file of options (keys are
the option names) gives the defaults of one run, as TRL's ``--config`` does; flags given on the
command line override it.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import difflib
import functools
import json
import os
import shlex
import signal
import sys
import threading
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ._version import __version__

__all__ = ["main"]

# Files of options: `hf-drop probe run.yaml` or `--config_file run.json`.
CONFIG_SUFFIXES = (".json", ".yaml", ".yml")
# Options that say how a command talks, not what it computes: not part of a recorded command.
_NOT_RECORDED = ("help", "config_file", "log_level", "disable_tqdm")


def main(argv: Sequence[str] | None = None) -> None:
    """Parse ``argv`` (default: the process's arguments) and run the command."""
    program = argv is None  # the hf-drop process itself, not a caller in Python
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv:
        parser.print_help()
        sys.exit(2)
    command = _commands(parser).get(argv[0])
    recorded = _without_talk(argv)
    if command is not None:
        defaults = {action.dest: action.default for action in command._actions}
        argv, from_file = _read_config_file(command, argv)
    args = parser.parse_args(argv)
    if command is not None:
        if args.config_file is not None and args.config_file != from_file:
            # An abbreviation (--config_f) that argparse took but the file reader did not.
            command.error(f"spell --config_file out in full ({args.config_file} was not read)")
        _check_exclusive(command, args)
        if from_file:  # the command as it ran, without the file (which the record cannot hold)
            recorded = _command_line(command, args, defaults)
    args.argv = recorded

    from .io.logs import logging_options

    interrupt = _Interrupt.install()
    try:
        with logging_options(getattr(args, "log_level", None), args.disable_tqdm):
            args.run(args)
    except KeyboardInterrupt:
        _interrupted(args.command)
    except Exception as error:
        if interrupt.seen:  # e.g. a collective whose peer was stopped: the same way out
            _interrupted(args.command)
        if isinstance(error, ValueError | FileNotFoundError | TypeError):
            parser.exit(2, f"hf-drop {args.command}: error: {error}\n")
        raise
    finally:
        if not program:  # a caller in Python gets its own Ctrl-C back
            interrupt.uninstall()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-drop", description="Distributionally robust data pruning (DRoP) for HF datasets."
    )
    parser.add_argument("--version", action="version", version=f"hf-drop {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=_parser_class())
    _add_probe(commands)
    _add_prune(commands)
    _add_train(commands)
    _add_report(commands)
    _add_push(commands)
    for command in _commands(parser).values():
        command.add_dataclass(CommonArguments, "file of options and logging")
    return parser


# --- the parser: options from dataclass fields ----------------------------------------------


@dataclass
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
    log_level: Literal["debug", "info", "warning", "error"] | None = field(
        default=None,
        metadata={"help": "how much hf-drop logs on stderr (default: $HF_DROP_VERBOSITY, or info)"},
    )
    disable_tqdm: bool = field(
        default=False,
        metadata={
            "help": "no progress bars (also: TQDM_DISABLE=1, HF_DATASETS_DISABLE_PROGRESS_BARS=1, "
            "--log_level error)"
        },
    )


class _Defaults(argparse.ArgumentDefaultsHelpFormatter):
    """``(default: x)`` after an option's help, unless there is no default to show."""

    def _get_help_string(self, action: argparse.Action) -> str:
        default = action.default
        if action.required or default is None or default is False or default in ([], {}):
            return action.help or ""
        return super()._get_help_string(action)


@functools.cache
def _parser_class() -> type[argparse.ArgumentParser]:
    """``HfArgumentParser`` with argument groups, JSON values, positionals and plain flags.

    Built on first use: ``import hf_drop.cli`` must not import transformers."""
    from transformers import HfArgumentParser

    class Parser(HfArgumentParser):
        def __init__(self, **kwargs: Any) -> None:
            kwargs.setdefault("formatter_class", _Defaults)
            super().__init__(**kwargs)

        def add_dataclass(self, dtype: type, title: str | None = None) -> None:
            """Options from the fields of ``dtype`` (their ``metadata["help"]``), in a group."""
            self.dataclass_types.append(dtype)
            group = self.add_argument_group(title) if title else self
            hints = typing.get_type_hints(dtype)
            for each in dataclasses.fields(dtype):
                if each.init:
                    # A copy: HfArgumentParser rewrites field.type, the dataclass keeps its own.
                    each = copy.copy(each)
                    each.type = hints[each.name]
                    self._parse_dataclass_field(group, each)

        @staticmethod
        def _parse_dataclass_field(parser, each: dataclasses.Field) -> None:
            meta = dict(each.metadata)
            if each.type is bool and each.default is False:
                # A plain switch, as before: `--overwrite RUN` never reads RUN as its value.
                parser.add_argument(*_spellings(each), action="store_true", help=meta.get("help"))
            elif meta.keys() & {"json", "nargs", "positional"}:
                _add_special(parser, each, meta)
            else:
                HfArgumentParser._parse_dataclass_field(parser, each)

    return Parser


def _spellings(each: dataclasses.Field) -> list[str]:
    """``--name``, ``--name-with-dashes``, and the field's ``aliases``."""
    names = [f"--{each.name}"]
    if "_" in each.name:
        names.append(f"--{each.name.replace('_', '-')}")
    aliases = each.metadata.get("aliases", [])
    return names + ([aliases] if isinstance(aliases, str) else list(aliases))


def _add_special(parser, each: dataclasses.Field, meta: dict[str, Any]) -> None:
    """A JSON value, a list of any length, or a positional argument."""
    kwargs = {k: v for k, v in meta.items() if k not in ("json", "positional", "aliases")}
    if meta.get("json"):
        kwargs.update(type=_json_value, metavar="JSON")
    if meta.get("positional"):
        parser.add_argument(each.name, **kwargs)
        return
    if each.default is not dataclasses.MISSING:
        kwargs["default"] = each.default
    elif each.default_factory is not dataclasses.MISSING:
        kwargs["default"] = each.default_factory()
    else:
        kwargs["required"] = True
    parser.add_argument(*_spellings(each), **kwargs)


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON ({error}): {text!r}") from None


def _commands(parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The parser of each command, by name."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _dataclass(dtype: Callable[..., Any], args: argparse.Namespace) -> Any:
    """An instance of the dataclass ``dtype`` from the parsed options named as its fields."""
    return dtype(**{f.name: getattr(args, f.name) for f in dataclasses.fields(dtype) if f.init})


# Options that exclude each other, by command; the first group of prune needs one of them.
_EXCLUSIVE = {
    "probe": [(("val_split", "val_from_test", "val_fraction"), False)],
    "prune": [(("probe", "class_errors"), True)],
}


def _check_exclusive(command, args: argparse.Namespace) -> None:
    """argparse's mutually exclusive groups, checked after a file's values are in."""
    flags = {a.dest: a.option_strings[-1] for a in command._actions if a.option_strings}
    for names, required in _EXCLUSIVE.get(args.command, []):
        given = [name for name in names if getattr(args, name) is not None]
        if len(given) > 1:
            command.error(
                f"argument {flags[given[1]]}: not allowed with argument {flags[given[0]]}"
            )
        if required and not given:
            command.error(f"one of the arguments {' '.join(flags[n] for n in names)} is required")


# --- files of options ---------------------------------------------------------------------------


def _read_config_file(command, argv: list[str]) -> tuple[list[str], str | None]:
    """Set ``command``'s defaults from the file of options on ``argv`` (its first argument after
    the command, or ``--config_file``), so that flags still override them; returns ``argv``
    without a first-argument file, and the file read (or ``None``)."""
    path, rest = None, argv[1:]
    if rest and Path(rest[0]).suffix.lower() in CONFIG_SUFFIXES and not Path(rest[0]).is_dir():
        path, rest = rest[0], rest[1:]
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--config_file", "--config-file", action="append", default=[])
    flagged = pre.parse_known_args(rest)[0].config_file
    if flagged and path:
        command.error(f"one file of options at a time: {path} and --config_file {flagged[-1]}")
    path = path or (flagged[-1] if flagged else None)
    if path is None:
        return argv, None
    values = _load_options(command, path)
    actions = {a.dest: a for a in command._actions if a.dest not in ("help", "config_file")}
    for key, value in values.items():
        dest = str(key).replace("-", "_")
        if dest not in actions:
            close = difflib.get_close_matches(dest, list(actions), n=3)
            hint = f"did you mean {' or '.join(close)}?" if close else f"see {command.prog} --help"
            command.error(f"{path}: unknown option {key!r} ({hint})")
        action = actions[dest]
        if value is None and action.required:
            command.error(f"{path}: {key} needs a value")
        if action.choices is not None and not isinstance(value, list | dict):
            if value not in action.choices:
                command.error(
                    f"{path}: {key} {value!r} is not one of {', '.join(map(str, action.choices))}"
                )
        action.default = value
        action.required = False
        if not action.option_strings:  # a positional the file gives: the command line need not
            action.nargs = "*" if action.nargs == "+" else "?"
    return [argv[0], *rest], path


def _load_options(command, path: str) -> dict[str, Any]:
    """The mapping of options in a JSON or YAML file (as ``HfArgumentParser.parse_json_file``
    and ``parse_yaml_file`` read them)."""
    file = Path(path)
    if file.suffix.lower() not in CONFIG_SUFFIXES:
        command.error(f"--config_file {path}: expected a .json, .yaml or .yml file")
    if not file.is_file():
        command.error(f"no such file of options: {path}")
    text = file.read_text(encoding="utf-8")
    if file.suffix.lower() == ".json":
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            command.error(f"{path} is not readable as JSON: {error}")
    else:
        import yaml  # installed with transformers and datasets

        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError as error:
            command.error(f"{path} is not readable as YAML: {error}")
    if values is None:
        return {}
    if not isinstance(values, dict):
        command.error(f"{path} must hold a mapping of option names to values, not a list or value")
    return values


def _without_talk(argv: list[str]) -> list[str]:
    """``argv`` without ``--log_level X`` and ``--disable_tqdm``: they change no result."""
    kept, skip = [], False
    for token in argv:
        name = token.split("=", 1)[0].replace("-", "_")
        if skip:
            skip = False
        elif name == "__log_level":
            skip = "=" not in token
        elif name != "__disable_tqdm":
            kept.append(token)
    return kept


def _command_line(command, args: argparse.Namespace, defaults: dict[str, Any]) -> list[str]:
    """The command line of ``args`` (every value that is not a default), for the record."""
    tokens = [args.command]
    for action in command._actions:
        if action.dest in _NOT_RECORDED:
            continue
        value = getattr(args, action.dest, None)
        if not action.option_strings:
            tokens += [str(v) for v in (value if isinstance(value, list) else [value])]
            continue
        if value is None or (
            value == defaults.get(action.dest) and type(value) is type(defaults.get(action.dest))
        ):
            continue
        flag = next((o for o in action.option_strings if "-" in o[2:]), action.option_strings[0])
        if isinstance(action, argparse._StoreTrueAction):
            tokens += [flag] if value else []
        elif action.type is _json_value or isinstance(value, dict):
            tokens += [flag, json.dumps(value)]
        elif isinstance(value, list):
            tokens += [flag, *map(str, value)]
        else:
            tokens += [flag, str(value)]
    return tokens


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


def _interrupted(command: str) -> None:
    """One line from the main process, exit status 130 (128 + SIGINT) from each."""
    from .io.logs import is_main_process

    if is_main_process():
        # Only a probe keeps its progress (a checkpoint per epoch) and picks it up again.
        again = "; rerun the same command to resume" if command == "probe" else ""
        sys.stderr.write(f"interrupted{again}\n")
        sys.stderr.flush()
    sys.exit(130)


# --- probe --------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class ProbeDataArguments:
    """What ``hf-drop probe`` trains and validates on, and where its result goes."""

    dataset: str = field(
        metadata={"help": "fashion_mnist, digits, a local folder or file, or a Hub dataset name"}
    )
    config: str | None = field(default=None, metadata={"help": "dataset configuration (Hub)"})
    revision: str | None = field(
        default=None, metadata={"help": "dataset revision: branch, tag or commit (Hub datasets)"}
    )
    split: str = field(
        default="train",
        metadata={
            "help": "training split, or a slice of it in datasets' syntax: 'train[:1000]', "
            "'train[10%%:20%%]'"
        },
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "train on the first N rows of --split only", "metavar": "N"}
    )
    val_split: str | None = field(
        default=None, metadata={"help": "use this split (or slice) of the dataset as validation"}
    )
    val_from_test: float | None = field(
        default=None,
        metadata={
            "help": "validate on a fraction F of each class of --test-split (the paper: 0.5; "
            "the default if the dataset has no validation split)",
            "metavar": "F",
        },
    )
    val_fraction: float | None = field(
        default=None,
        metadata={"help": "carve a fraction F of each class out of --split", "metavar": "F"},
    )
    test_split: str = field(default="test", metadata={"help": "split for --val-from-test"})
    split_seed: int = field(default=0, metadata={"help": "seed of carved splits"})
    output: str = field(
        metadata={
            "help": "result folder: new or empty, or an unfinished run of this probe (resumed)",
            "aliases": ["--output_dir", "--output-dir"],
        }
    )


def _add_probe(commands) -> None:
    from .probe.config import ProbeConfig

    p = commands.add_parser(
        "probe",
        help="train a probe model; record per-sample scores and per-class errors",
        description="Train a probe (timm or transformers) on a dataset under Accelerate and write "
        "its per-sample scores and per-class validation errors to --output. Stopped (Ctrl-C), "
        "the same command resumes from the last finished epoch.",
    )
    p.add_dataclass(ProbeDataArguments, "data")
    p.add_dataclass(ProbeConfig, "model, training and scores")
    p.set_defaults(run=_probe)


def _probe(args: argparse.Namespace) -> None:
    from .data.sources import first_rows, load_source, select_split
    from .data.splits import stratified_indices
    from .probe import ProbeConfig, run_probe

    config = _dataclass(ProbeConfig, args)
    config.group_column = _group_column(config.group_column)
    count = args.max_train_samples
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ValueError(f"--max_train_samples must be a positive int, got {count!r}")
    data = load_source(args.dataset, args.config, args.revision)
    train = first_rows(
        select_split(data, args.split, "--split"), args.max_train_samples, "--max_train_samples"
    )
    source = {
        "name": args.dataset,
        "config": args.config,
        "split": args.split,
        "revision": args.revision,
        "command": shlex.join(["hf-drop", *args.argv]),
    }
    if args.max_train_samples is not None:  # reloaded the same way: prune, the card's command
        source["max_train_samples"] = args.max_train_samples
    splits: dict = {}

    if args.val_split is None and args.val_from_test is None and args.val_fraction is None:
        if "validation" in data:
            args.val_split = "validation"
        elif _has_split(data, args.test_split):
            args.val_from_test = 0.5  # the paper's protocol
        else:
            raise ValueError(
                f"{args.dataset} has no validation or {args.test_split!r} split "
                f"({list(data)}): pass --val-split, --val-from-test or --val-fraction"
            )
    if args.val_split is not None:
        val = select_split(data, args.val_split, "--val-split")
        splits = {"val_split": args.val_split}
    elif args.val_from_test is not None:
        test = select_split(data, args.test_split, "--test-split")
        chosen, rest = stratified_indices(
            test, args.val_from_test, seed=args.split_seed, label_column=config.label_column
        )
        val = test.select(chosen)
        splits = {
            "val_split": args.test_split,
            "val_indices": chosen.tolist(),
            "report_indices": rest.tolist(),
        }
    else:
        chosen, rest = stratified_indices(
            train, args.val_fraction, seed=args.split_seed, label_column=config.label_column
        )
        val, train = train.select(chosen), train.select(rest)
        splits = {
            "val_split": args.split,
            "val_indices": chosen.tolist(),
            "train_indices": rest.tolist(),
        }
        source["train_indices"] = "splits.json"
    result = run_probe(
        train,
        val,
        config,
        args.output,
        source=source,
        splits=splits,
        inputs=_local_paths(args.dataset),  # the output may not overlap a local --dataset
    )
    from accelerate import PartialState

    if not PartialState().is_main_process:
        return
    errors = ", ".join(
        f"{n}: {e:.3f}" for n, e in zip(result.class_names, result.class_errors, strict=True)
    )
    print(f"probe result in {result.folder}\nclass errors: {errors}")


def _has_split(data, spec: str) -> bool:
    from .data.sources import select_split

    try:
        select_split(data, spec)
    except ValueError:
        return False
    return True


# --- prune --------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class PruneArguments:
    """How ``hf-drop prune`` chooses the rows to keep, and where the subset goes."""

    probe: str | None = field(default=None, metadata={"help": "folder of a finished hf-drop probe"})
    class_errors: Any = field(
        default=None,
        metadata={
            "help": "per-class errors given by hand, a JSON list by class id or object by class "
            "name (with --dataset; no probe)",
            "json": True,
        },
    )
    density: float = field(metadata={"help": "fraction of the data to keep"})
    within: str = field(
        default="random",
        metadata={
            "help": "random, a probe score (el2n, grand, forgetting, aum, ...), embedding, or "
            "with --class-errors a score column of --dataset"
        },
    )
    # Choices and help of keep and quota come from the rule registry (hf_drop.core.rules) when
    # the parser is built: a rule registered later is offered too.
    keep: str | None = field(default=None, metadata={"help": "with a score: "})
    quota: str | None = field(default=None, metadata={"help": "how many per class: "})
    strategy_score: str | None = field(
        default=None, metadata={"help": "score whose global selection sets the class counts"}
    )
    mode: Literal["paper", "count"] | None = field(
        default=None,
        metadata={
            "help": "--quota drop: kept fraction (paper, default) or kept count (count) "
            "proportional to error"
        },
    )
    floor: float | None = field(
        default=None,
        metadata={"help": "--quota drop: share of each class's share always kept (default: 0.5)"},
    )
    strength: float | None = field(
        default=None, metadata={"help": "--quota drop: 0 proportional ... 1 DRoP (default: 1)"}
    )
    no_shrink: bool = field(
        default=False,
        metadata={
            "help": "--quota drop: use the probe's errors as measured, not shrunk by their support"
        },
    )
    min_per_class: int = field(default=0, metadata={"help": "floor per class"})
    group_column: list[str] | None = field(
        default=None,
        metadata={
            "help": "quotas per group (a column, or the combinations of several) instead of per "
            "class; with --probe, the probe must have measured them (hf-drop probe "
            "--group_column)",
            "nargs": "+",
            "metavar": "COLUMN",
        },
    )
    missing_error: float | None = field(
        default=None, metadata={"help": "error of a class the validation split lacks"}
    )
    ccs_beta: float | None = field(
        default=None, metadata={"help": "CCS: hardest fraction dropped (default: 0.1)"}
    )
    ccs_strata: int | None = field(
        default=None, metadata={"help": "CCS: number of strata (default: 50)"}
    )
    seed: int = field(default=0, metadata={"help": "seed of random choices"})
    dataset: str | None = field(
        default=None,
        metadata={
            "help": "with --probe: the probe's training data, if not reloadable from its record; "
            "with --class-errors: the dataset to prune"
        },
    )
    split: str | None = field(
        default=None,
        metadata={
            "help": "with --class-errors: the split (or slice) of --dataset (default: train)"
        },
    )
    with_scores: list[str] | None = field(
        default=None,
        metadata={
            "help": "save the probe's scores as columns of the subset (these, or all if none "
            "named)",
            "nargs": "*",
            "metavar": "SCORE",
        },
    )
    output: str = field(
        metadata={
            "help": "folder of the subset: new or empty (never the probe folder or the dataset's)",
            "aliases": ["--output_dir", "--output-dir"],
        }
    )
    overwrite: bool = field(
        default=False, metadata={"help": "replace a previous subset in --output"}
    )


def _add_prune(commands) -> None:

    p = commands.add_parser(
        "prune",
        help="prune the probe's training set with DRoP (or a baseline) and save it",
        description="Choose a subset of the probe's training set (or of --dataset, with "
        "--class-errors) and save it (save_to_disk) with pruning.json, the record of how it was "
        "made. Options that do not apply to the chosen rule are refused, not ignored.",
    )
    p.add_dataclass(PruneArguments)
    _offer_rules(p)
    p.set_defaults(run=_prune)


def _offer_rules(command: argparse.ArgumentParser) -> None:
    """``--keep`` and ``--quota`` choices and help from the registry of rules."""
    from .core import rules

    registry = {"keep": rules.KEEP_RULES, "quota": rules.QUOTA_RULES}
    for action in command._actions:
        if action.dest in registry:
            action.choices = list(registry[action.dest])
            action.help = (action.help or "") + "; ".join(
                f"{rule.name}: {rule.help}" for rule in registry[action.dest].values()
            )


def _prune(args: argparse.Namespace) -> None:
    from .io.outputs import prepare_output
    from .pruning.artifacts import save_subset

    options = {
        name: value
        for name, value in {
            "quota": args.quota,
            "keep": args.keep,
            "mode": args.mode,
            "floor": args.floor,
            "strength": args.strength,
            "shrink": False if args.no_shrink else None,
            "min_per_class": args.min_per_class,
            "missing_error": args.missing_error,
            "ccs_beta": args.ccs_beta,
            "ccs_strata": args.ccs_strata,
            "seed": args.seed,
            "group_column": _group_column(args.group_column),
        }.items()
        if value is not None
    }
    if args.probe is not None:
        from .probe import ProbeResult

        if args.split is not None:
            raise ValueError("--split applies to --class-errors; a probe prunes its own split")
        result = ProbeResult.load(args.probe)
        inputs = [args.probe, *_local_paths(args.dataset or result.source.get("name"))]
        prepare_output(
            args.output, "subset", overwrite=args.overwrite, inputs=inputs, what="--output"
        )
        train = probe_training_data(result, args.dataset)
        drop = _probe_filter(result, args, options)
        if args.with_scores is not None:
            train = result.add_scores(train, args.with_scores or None)
    else:
        train, drop, inputs = _hand_filter(args, options)
        prepare_output(
            args.output, "subset", overwrite=args.overwrite, inputs=inputs, what="--output"
        )
    subset = drop.fit(train).apply(train)
    save_subset(subset, args.output, drop, overwrite=args.overwrite, inputs=inputs)
    print(drop.report().to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"{drop.method}: kept {len(subset)} of {len(train)} rows -> {args.output}")


def _probe_filter(result, args: argparse.Namespace, options: dict):
    from .pruning.filter import DRoPFilter

    if args.within != "random" and args.within not in [*result.score_names, "embedding"]:
        raise ValueError(
            f"--within {args.within!r} is not a score of the probe in {args.probe}: "
            f"random, {', '.join(result.score_names)}"
            + (", embedding" if "embedding" in result.scores.column_names else "")
        )
    return DRoPFilter.from_probe(
        result, args.density, within=args.within, strategy_score=args.strategy_score, **options
    )


def _hand_filter(args: argparse.Namespace, options: dict):
    """The dataset and filter of ``--class-errors``: errors given by hand, no probe."""
    from .data.sources import load_source
    from .io.portable import portable_name
    from .pruning.filter import DRoPFilter

    if args.dataset is None:
        raise ValueError("--class-errors needs --dataset, the dataset to prune")
    if args.with_scores is not None:
        raise ValueError("--with-scores needs --probe: there are no probe scores to add")
    split = args.split or "train"
    train = _split(load_source(args.dataset), split, "--split")  # a slice is kept in the record
    if args.strategy_score is not None:
        options.setdefault("quota", "strategy")
    drop = DRoPFilter(
        args.density,
        class_errors=args.class_errors,
        within=args.within,
        strategy_scores=args.strategy_score,
        source={"name": portable_name(args.dataset), "split": split},
        **options,
    )
    return train, drop, _local_paths(args.dataset)


def probe_training_data(result, dataset: str | None = None):
    """The training set a probe saw, reloaded from its record (or from ``dataset``)."""
    from .data.sources import source_rows

    # Its split (a slice kept as given) and max_train_samples, as the probe cut them.
    train = source_rows(result.source, dataset)
    if result.source.get("train_indices"):  # the probe carved its validation rows out of this split
        train = train.select(result.splits()["train_indices"])
    return train


# --- train --------------------------------------------------------------------------------------

_TRAIN_EPILOG = """\
Any transformers.TrainingArguments field is accepted as well, as --<field> with underscores or
hyphens, e.g.:

  hf-drop train ... --report_to tensorboard --eval_strategy epoch --save_strategy epoch \\
      --gradient_accumulation_steps 2

hf-drop's flags set epochs, learning rate, batch size, weight decay and seed; the TrainingArguments
names of those are their aliases (--num_train_epochs, --learning_rate,
--per_device_train_batch_size, --weight_decay), and so is --output_dir of --output. One setting
given twice under two names is refused. OUTPUT receives metrics.json, model/ (the trained model,
its preprocessing and a model card; not with --no-save-model) and checkpoints/ (the Trainer's
output_dir: checkpoints and reporters' logs, if any), all at once when training is done."""


class _TrainParsing:
    """``hf-drop train``'s parsing, over the commands' parser class: its own flags, then any
    TrainingArguments field (with ``transformers.HfArgumentParser``) into ``args.training_args``;
    anything else is refused."""

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        namespace.training_args, unknown = {}, extras
        if extras:  # transformers is imported only when there is something for it
            from .train.arguments import parse_training_args

            try:
                namespace.training_args, unknown = parse_training_args(extras)
            except ValueError as error:
                self.error(str(error))
        if unknown:
            self.error(
                f"unrecognized arguments: {' '.join(unknown)} (hf-drop train takes its own flags "
                "and any transformers.TrainingArguments field: see hf-drop train --help)"
            )
        return namespace, []

    def format_help(self) -> str:
        import textwrap

        from .train.arguments import FIXED, training_argument_names

        names = ", ".join(sorted(training_argument_names() - {"output_dir", *FIXED}))
        return (
            super().format_help()
            + "\nTrainingArguments fields (as --<field>):\n"
            + textwrap.fill(names, width=100, initial_indent="  ", subsequent_indent="  ")
            + "\n"
        )


class _Once(argparse.Action):
    """Store a value; refuse the same setting given under two of its names."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = vars(namespace).setdefault("_given_as", {})
        earlier = given.setdefault(self.dest, option_string)
        if earlier.replace("-", "_") != option_string.replace("-", "_"):
            parser.error(f"{earlier} and {option_string} set the same thing: give one of them")
        setattr(namespace, self.dest, values)


def _train_flag(p: argparse.ArgumentParser, *names: str, **kwargs) -> None:
    """A flag under ``names``, each also spelt with underscores for hyphens and vice versa."""
    spellings = []
    for name in names:
        stem = name[2:]
        spellings += [name, f"--{stem.replace('-', '_')}", f"--{stem.replace('_', '-')}"]
    kwargs.setdefault("action", _Once)
    p.add_argument(*dict.fromkeys(spellings), **kwargs)


@functools.cache
def _train_parser_class(base: type) -> type:
    return type("TrainParser", (_TrainParsing, base), {})


def _add_train(commands) -> None:
    p = commands.add_parser(
        "train",
        help="train a classifier on a (pruned) dataset with transformers.Trainer",
        description="Train with transformers.Trainer and write metrics.json: accuracy, "
        "worst-class accuracy and the accuracy of every class; save the model with its card.",
        epilog=_TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # --optim (TrainingArguments) is not an abbreviation of --optimizer
    )
    # add_parser makes the commands' parser; this one also takes TrainingArguments fields.
    p.__class__ = _train_parser_class(type(p))

    flag = functools.partial(_train_flag, p)
    flag(
        "--dataset",
        required=True,
        help="training data: a pruned subset folder, or any dataset name or path",
    )
    flag("--split", default="train")
    flag("--eval-dataset", help="evaluation data (name or path)")
    flag("--eval-split", default="test")
    flag(
        "--eval-from-probe",
        metavar="DIR",
        help="evaluate on the probe's reported split (the rows it did not validate on)",
    )
    flag("--model", required=True)
    flag("--pretrained", action="store_true")
    flag("--model-kwargs", type=json.loads, default={}, metavar="JSON")
    flag(
        "--epochs",
        "--num_train_epochs",
        type=int,
        required=True,
        help="epochs (full-data epochs with --compute-matched)",
    )
    flag(
        "--compute-matched",
        action="store_true",
        help="train round((0.5 + 0.5 d) E / d) epochs at density d",
    )
    flag(
        "--density",
        type=float,
        help="density of the training set (default: from its pruning.json, else 1)",
    )
    flag(
        "--optimizer",
        choices=["sgd", "trainer"],
        default="sgd",
        help="sgd: momentum and step decay (hf-drop's); trainer: the Trainer's --optim and "
        "--lr_scheduler_type (default: sgd)",
    )
    flag("--lr", "--learning_rate", type=float, default=0.05)
    flag("--batch-size", "--per_device_train_batch_size", type=int, default=128)
    flag("--weight-decay", type=float, default=5e-4)
    flag("--seed", type=int, default=0)
    flag("--augment", action="store_true")
    flag("--image-column", default="image")
    flag("--label-column", default="label")
    flag(
        "--no-save-model",
        dest="save_model",
        action="store_false",
        help="save no model/ (metrics.json only)",
    )
    flag(
        "--output",
        "--output-dir",
        required=True,
        help="the run's folder: new or empty (or a previous run, with --overwrite)",
    )
    flag("--overwrite", action="store_true", help="replace a previous training run in --output")
    p.set_defaults(run=_train)


def _train(args: argparse.Namespace) -> None:
    from .io.outputs import prepare_output
    from .train import TrainConfig, train_and_evaluate

    if args.density is not None and not 0 < args.density <= 1:
        raise ValueError(f"--density must lie in (0, 1], got {args.density}")
    inputs = [
        *_local_paths(args.dataset),
        *_local_paths(args.eval_dataset),
        *_local_paths(args.eval_from_probe),
    ]
    prepare_output(args.output, "train", overwrite=args.overwrite, inputs=inputs, what="--output")
    train, provenance = _training_data(args)
    density = args.density
    if density is None:
        density = provenance["params"]["density"] if provenance else 1.0
    config = TrainConfig(
        model=args.model,
        epochs=args.epochs,
        compute_matched=args.compute_matched,
        optimizer=args.optimizer,
        lr=args.lr,
        weight_decay=args.weight_decay,
        batch_size=args.batch_size,
        seed=args.seed,
        augment=args.augment,
        pretrained=args.pretrained,
        model_kwargs=args.model_kwargs,
        image_column=args.image_column,
        label_column=args.label_column,
        save_model=args.save_model,
    )
    metrics = train_and_evaluate(
        train,
        _evaluation_data(args),
        config,
        args.output,
        training_args=args.training_args,
        density=density,
        provenance=provenance,
        dataset_name=str(args.dataset),
        reproduce=_subset_commands(provenance),
        overwrite=args.overwrite,
        inputs=inputs,
    )
    from accelerate import PartialState

    if PartialState().is_main_process:
        print(
            f"accuracy {metrics['accuracy']:.4f}, worst class {metrics['worst_class']} "
            f"{metrics['worst_class_accuracy']:.4f} -> {args.output}/metrics.json"
        )


def _training_data(args: argparse.Namespace):
    """The training split, and the subset's pruning.json if --dataset is a subset folder."""
    from .data.sources import load_source
    from .io.files import read_json
    from .pruning.artifacts import PRUNING_FILE

    train = _split(load_source(args.dataset), args.split, "--split")
    pruning_file = Path(args.dataset) / PRUNING_FILE
    provenance = (
        read_json(
            pruning_file,
            "how the subset was made",
            f"run hf-drop prune again to write {args.dataset}",
        )
        if pruning_file.exists()
        else None
    )
    if len(train) == 0:
        pruned = provenance.get("params", {}).get("density") if provenance else None
        raise ValueError(
            f"the training set is empty: split {args.split!r} of --dataset {args.dataset} has "
            "no rows"
            + (
                f" (it was pruned at density {pruned}: prune again with a larger --density)"
                if pruned is not None
                else ""
            )
        )
    return train, provenance


def _evaluation_data(args: argparse.Namespace):
    """--eval-dataset's split, or the probe's reported split (--eval-from-probe)."""
    from .data.sources import load_source

    if args.eval_from_probe:
        from .probe import ProbeResult

        result = ProbeResult.load(args.eval_from_probe)
        splits = result.splits()
        if "report_indices" not in splits:
            raise ValueError(
                f"{args.eval_from_probe} has no reported split (it was not run with "
                "--val-from-test); pass --eval-dataset"
            )
        data = load_source(result.source["name"], result.source.get("config"))
        return _split(data, splits["val_split"], "the probe's split").select(
            splits["report_indices"]
        )
    if args.eval_dataset:
        return _split(load_source(args.eval_dataset), args.eval_split, "--eval-split")
    raise ValueError("pass --eval-dataset or --eval-from-probe")


def _subset_commands(provenance: dict | None) -> list[str] | None:
    """The commands that rebuild a subset (for the model card), if its record says enough."""
    if not provenance:
        return None
    from .hub import reproduce_commands

    try:
        return reproduce_commands(provenance)
    except (KeyError, TypeError, ValueError):  # an older or hand-made pruning.json
        return None


def _group_column(columns: list[str] | None) -> str | list[str] | None:
    """``--group-column``: one column as a name, several as a list."""
    if not columns:
        return None
    return columns[0] if len(columns) == 1 else list(columns)


def _local_paths(*names: str | None) -> list[Path]:
    """Those of ``names`` (datasets, folders) that are local paths: inputs an output may not
    overlap."""
    builtin = ("fashion_mnist", "digits")  # load_source's own names, never paths
    return [Path(name) for name in names if name and name not in builtin and Path(name).exists()]


def _split(data, split: str, what: str):
    """The split (or slice, ``train[:1000]``) ``split`` of ``data``; ``what`` names the option."""
    from .data.sources import select_split

    return select_split(data, split, what)


# --- report -------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class ReportArguments:
    """The runs ``hf-drop report`` compares, and the picture it draws."""

    runs: list[str] = field(
        metadata={"help": "folders written by hf-drop train", "positional": True, "nargs": "+"}
    )
    output: str = field(default="report.png", metadata={"help": "the PNG to write (a new file)"})
    overwrite: bool = field(default=False, metadata={"help": "replace an existing --output file"})


def _add_report(commands) -> None:
    p = commands.add_parser(
        "report",
        help="compare trained runs: average and worst-class accuracy by method",
        description="Read the metrics.json of each run folder; print a table by method and "
        "density (mean and sd over seeds) and draw it.",
    )
    p.add_dataclass(ReportArguments)
    p.set_defaults(run=_report)


def _report(args: argparse.Namespace) -> None:
    from .evaluation.report import load_runs, plot_runs, summarize
    from .io.outputs import atomic_file

    # Refused before anything is read: an existing --output without --overwrite, or one inside
    # a run folder.
    with atomic_file(
        args.output, overwrite=args.overwrite, inputs=args.runs, what="--output"
    ) as tmp:
        runs = load_runs(args.runs)
        table = summarize(runs)
        print(table.to_string(float_format=lambda v: f"{v:.4f}", na_rep="-"))
        plot_runs(runs, tmp)
    print(f"wrote {args.output}")


# --- push ---------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class PushArguments:
    """What ``hf-drop push`` exports and uploads, and the card it writes."""

    folder: str = field(
        metadata={
            "help": "a subset folder (hf-drop prune), a probe folder (hf-drop probe), or an "
            "exported folder (uploaded as it is)",
            "positional": True,
        }
    )
    repo_id: str = field(metadata={"help": "the Hub dataset repository, user/name"})
    private: bool = field(default=False, metadata={"help": "make the repository private"})
    indices_only: bool = field(
        default=False,
        metadata={"help": "publish the kept row indices of the source, not its images"},
    )
    export_dir: str | None = field(
        default=None,
        metadata={
            "help": "where the export is written (default: FOLDER-hub); new or empty, never FOLDER"
        },
    )
    overwrite: bool = field(
        default=False, metadata={"help": "replace a previous export in --export-dir"}
    )
    license: str | None = field(
        default=None,
        metadata={
            "help": "the card's license, e.g. mit (default for a subset: its source's, if known)"
        },
    )
    tags: list[str] = field(
        default_factory=list,
        metadata={"help": "tags for the card, beside hf-drop's own", "nargs": "*"},
    )
    pretty_name: str | None = field(
        default=None, metadata={"help": "the card's human-readable name"}
    )


def _add_push(commands) -> None:
    p = commands.add_parser(
        "push",
        help="export a pruned subset as a Hub dataset (card included) and upload it",
        description="Export FOLDER (a subset written by hf-drop prune, or a probe folder: its "
        "score table) to a Hub repository layout with a dataset card, then upload it; a FOLDER "
        "that is already such an export is uploaded as it is. The export is written locally "
        "first, so a failed upload loses nothing.",
    )
    p.add_dataclass(PushArguments)
    p.set_defaults(run=_push)


def _push(args: argparse.Namespace) -> None:
    from .hub import export_saved, export_scores, exported, push
    from .probe.result import CONFIG_FILE
    from .pruning.artifacts import PRUNING_FILE

    folder = Path(args.folder)
    out = Path(args.export_dir or f"{str(args.folder).rstrip('/')}-hub")
    card = {"license": args.license, "tags": args.tags, "pretty_name": args.pretty_name}
    if exported(folder):
        if args.export_dir or args.indices_only or any(card.values()):
            raise ValueError(
                f"{folder} is already an export: it is uploaded as it is, card included; drop "
                "--export-dir, --indices-only, --license, --tags and --pretty-name (or pass the "
                "subset folder it was exported from)"
            )
        out = folder
    elif (folder / PRUNING_FILE).exists():
        mode = "indices" if args.indices_only else "full"
        export_saved(folder, out, mode=mode, overwrite=args.overwrite, **card)
        print(f"exported {folder} -> {out}")
    elif (folder / CONFIG_FILE).exists():
        if args.indices_only:
            raise ValueError(f"{folder} is a probe folder: its scores have no --indices-only form")
        export_scores(folder, out, overwrite=args.overwrite, **card)
        print(f"exported the probe scores of {folder} -> {out}")
    else:
        raise FileNotFoundError(
            f"{folder} is not a subset folder (no {PRUNING_FILE}), a probe folder (no "
            f"{CONFIG_FILE}) nor an hf-drop export (no README.md with a drop card)"
        )
    try:
        url = push(out, args.repo_id, private=args.private)
    except RuntimeError as error:
        raise ValueError(str(error)) from error
    print(f"uploaded to {url}")
