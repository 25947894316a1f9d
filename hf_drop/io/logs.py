"""What hf-drop says while it works, in one place: its logs, its warnings, its progress bars, and
those of the ``Trainer`` it runs.

Status and progress messages go to ``logging.getLogger("hf_drop.<module>")`` and from there to
stderr (results a command was asked for, such as the prune report, stay on stdout). The level is
``HF_DROP_VERBOSITY`` (``debug``, ``info``, ``warning``, ``error``; default ``info``, like
``TRANSFORMERS_VERBOSITY``), or :func:`set_verbosity`. Under ``accelerate launch`` only the main
process logs, unless a record is marked ``extra={"all_processes": True}``.

hf-drop's warnings (:class:`~hf_drop.core.notices.HfDropWarning`: ``QuotaWarning``,
``ProbeWarning``) are Python warnings, so that filters and ``pytest.warns`` see them; a level
above ``warning`` silences them. While a command runs (:func:`logging_options`), every warning is
shown once, as one line through the ``hf_drop`` logger (``WARNING: ProbeWarning: ...``), without
the source line Python's own display adds, as ``logging.captureWarnings`` does for transformers.

Progress bars are shown unless one of these says otherwise: :func:`disable_progress_bars`
(``hf-drop --disable_tqdm``), ``TQDM_DISABLE=1``, ``datasets.disable_progress_bars()`` or
``HF_DATASETS_DISABLE_PROGRESS_BARS=1``, a verbosity above ``warning`` (as for
``TrainingArguments.disable_tqdm``); :func:`progress_bars_enabled` decides, in one place.
:func:`trainer_logging` hands the same decisions to a ``Trainer`` (``log_level``,
``disable_tqdm``), and a command above ``warning`` quiets transformers' own logger too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any, cast

from ..core.notices import HfDropWarning

__all__ = [
    "disable_progress_bars",
    "enable_progress_bars",
    "get_logger",
    "get_verbosity",
    "is_main_process",
    "logging_options",
    "progress_bars_enabled",
    "set_verbosity",
    "trainer_logging",
]

ROOT = "hf_drop"
ENV = "HF_DROP_VERBOSITY"
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
_TRUE = {"1", "ON", "YES", "TRUE"}
_bars_disabled = False  # disable_progress_bars(): --disable_tqdm
_command_level: str | None = None  # the --log_level of the command that runs, if one was given
_quieted = False  # whether _set_level added the filter that ignores HfDropWarning


class _Stderr(logging.StreamHandler):
    """A handler that writes to the ``sys.stderr`` of the moment, not the one at import: a
    redirected stderr (``contextlib.redirect_stderr``, pytest's capture) gets the messages."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


class _Format(logging.Formatter):
    """Info lines as they are; anything else with its level, which the reader should see."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        if record.levelno == logging.INFO:
            return message
        return f"{record.levelname}: {message}"


class _MainProcess(logging.Filter):
    """Only the main process of a distributed run logs (each process would say the same)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "all_processes", False) or is_main_process()


def is_main_process() -> bool:
    """Whether this is the main process of a distributed run (or the only process)."""
    state = sys.modules.get("accelerate.state")  # never imported here: torch is heavy
    if state is not None and state.PartialState._shared_state:
        return state.PartialState().is_main_process
    return os.environ.get("RANK", "0") == "0"  # torchrun's global rank, set before any state


def _default_level() -> int:
    name = os.environ.get(ENV)
    if not name:
        return logging.INFO
    if name.lower() not in LEVELS:
        warnings.warn(
            f"{ENV}={name!r} is not a level ({', '.join(LEVELS)}): using info", stacklevel=3
        )
        return logging.INFO
    return LEVELS[name.lower()]


def _root() -> logging.Logger:
    """The ``hf_drop`` logger, given its handler and level on first use."""
    root = logging.getLogger(ROOT)
    if not any(isinstance(h, _Stderr) for h in root.handlers):
        handler = _Stderr()
        handler.setFormatter(_Format("%(message)s"))
        handler.addFilter(_MainProcess())
        root.addHandler(handler)
        root.propagate = False  # as transformers and datasets do: one handler, no duplicates
        _set_level(root, _default_level())
    return root


def _set_level(root: logging.Logger, value: int) -> None:
    """The level of every hf-drop logger, and of hf-drop's warnings with it: above ``warning``,
    a filter ignores :class:`HfDropWarning` (``catch_warnings`` blocks keep their own); only the
    filter added here is ever taken away again."""
    global _quieted
    root.setLevel(value)
    quiet = ("ignore", None, HfDropWarning, None, 0)
    filters = cast(list, warnings.filters)
    if value > logging.WARNING:
        if quiet not in filters:
            warnings.filterwarnings("ignore", category=HfDropWarning)
            _quieted = True
    elif _quieted and quiet in filters:
        # "ignore" leaves nothing in a module's registry of shown warnings: no cache to reset.
        filters.remove(quiet)
        _quieted = False


def get_logger(name: str) -> logging.Logger:
    """The logger of module ``name`` (``__name__``), under ``hf_drop``."""
    _root()
    if name != ROOT and not name.startswith(ROOT + "."):
        name = f"{ROOT}.{name}"
    return logging.getLogger(name)


def set_verbosity(level: int | str | None) -> None:
    """Set the level of every hf-drop logger: a name (``"info"``), a ``logging`` level, or
    ``None`` for the default (``HF_DROP_VERBOSITY``, else info)."""
    if level is None:
        value = _default_level()
    elif isinstance(level, str):
        if level.lower() not in LEVELS:
            raise ValueError(f"log level must be one of {', '.join(LEVELS)}, got {level!r}")
        value = LEVELS[level.lower()]
    else:
        value = int(level)
    _set_level(_root(), value)


def get_verbosity() -> int:
    """The level of the ``hf_drop`` logger (``logging.INFO`` by default)."""
    return _root().getEffectiveLevel()


def disable_progress_bars() -> None:
    """Hide hf-drop's progress bars (what ``--disable_tqdm`` does)."""
    global _bars_disabled
    _bars_disabled = True


def enable_progress_bars() -> None:
    """Show hf-drop's progress bars again, unless the environment hides them."""
    global _bars_disabled
    _bars_disabled = False


def progress_bars_enabled() -> bool:
    """Whether hf-drop shows progress bars: the one place that decides (see the module)."""
    if _bars_disabled or os.environ.get("TQDM_DISABLE", "").upper() in _TRUE:
        return False
    if get_verbosity() > logging.WARNING:
        return False
    if "datasets" in sys.modules:  # its switch, and HF_DATASETS_DISABLE_PROGRESS_BARS
        from datasets.utils.logging import is_progress_bar_enabled

        return is_progress_bar_enabled()
    return os.environ.get("HF_DATASETS_DISABLE_PROGRESS_BARS", "").upper() not in _TRUE


def trainer_logging() -> dict[str, Any]:
    """The ``TrainingArguments`` fields that carry hf-drop's logging to a ``Trainer``:
    ``log_level`` (the command's ``--log_level``; else hf-drop's level where it is above
    ``warning``; else ``"passive"``, transformers' own), ``log_level_replica`` to match, and
    ``disable_tqdm`` (True where hf-drop's bars are hidden, else None: the Trainer decides)."""
    level = get_verbosity()
    if _command_level is not None:
        name = _command_level
    elif level > logging.WARNING:
        name = "error" if level <= logging.ERROR else "critical"
    else:
        name = "passive"
    return {
        "log_level": name,
        "log_level_replica": name if name in ("error", "critical") else "warning",
        "disable_tqdm": None if progress_bars_enabled() else True,
    }


class _OneLine:
    """``warnings.showwarning`` while a command runs: each warning once, as one line of the
    ``hf_drop`` logger (its level decides, the main process says it), no source line."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, message, category, filename, lineno, file=None, line=None) -> None:
        text = f"{category.__name__}: {' '.join(str(message).split())}"
        if text not in self.seen:  # the same warning from two places, or from each epoch
            self.seen.add(text)
            get_logger(f"{ROOT}.warnings").warning(text)


@contextlib.contextmanager
def logging_options(log_level: str | None = None, disable_tqdm: bool = False) -> Iterator[None]:
    """What one command says: hf-drop's verbosity (``log_level``; ``None``:
    ``HF_DROP_VERBOSITY``, else info) and progress bars (``disable_tqdm``), each warning as one
    line through the logger; ``datasets``' and transformers' bars are hidden with hf-drop's, and
    transformers' logger quieted with it above ``warning``. Restored afterwards."""
    global _bars_disabled, _command_level
    root = _root()
    saved = root.level, _bars_disabled, _command_level, warnings.showwarning
    restore: list[Any] = []
    try:
        set_verbosity(log_level)
        _command_level = log_level
        _bars_disabled = _bars_disabled or disable_tqdm
        warnings.showwarning = _OneLine()
        if not progress_bars_enabled():
            restore += _hide_library_bars()
        if get_verbosity() > logging.WARNING:  # transformers is a core dependency
            from transformers.utils import logging as transformers_logging

            before = transformers_logging.get_verbosity()
            if before < get_verbosity():
                transformers_logging.set_verbosity(get_verbosity())
                restore.append(lambda: transformers_logging.set_verbosity(before))
        yield
    finally:
        _set_level(root, saved[0])
        _bars_disabled, _command_level, warnings.showwarning = saved[1:]
        for undo in reversed(restore):
            undo()


def _hide_library_bars() -> list[Any]:
    """Hide datasets' and transformers' progress bars; what undoes it."""
    import datasets

    undo = []
    if datasets.utils.logging.is_progress_bar_enabled():
        datasets.disable_progress_bars()
        undo.append(datasets.enable_progress_bars)
    from transformers.utils import logging as transformers_logging

    if transformers_logging.is_progress_bar_enabled():
        transformers_logging.disable_progress_bar()
        undo.append(transformers_logging.enable_progress_bar)
    return undo
