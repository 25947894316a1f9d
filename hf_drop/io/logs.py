"""What hf-drop says while it works: the ``hf_drop`` logger hierarchy, and progress bars.

Status and progress messages go to ``logging.getLogger("hf_drop.<module>")`` and from there to
stderr (results a command was asked for, such as the prune report, stay on stdout). The level is
``HF_DROP_VERBOSITY`` (``debug``, ``info``, ``warning``, ``error``; default ``info``, like
``TRANSFORMERS_VERBOSITY``), or :func:`set_verbosity`. Under ``accelerate launch`` only the main
process logs, unless a record is marked ``extra={"all_processes": True}``.

Progress bars are shown unless one of these says otherwise: :func:`disable_progress_bars`
(``hf-drop --disable_tqdm``), ``TQDM_DISABLE=1``, ``datasets.disable_progress_bars()`` or
``HF_DATASETS_DISABLE_PROGRESS_BARS=1``, a verbosity above ``warning`` (as for
``TrainingArguments.disable_tqdm``); :func:`progress_bars_enabled` decides, in one place.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator

__all__ = [
    "disable_progress_bars",
    "enable_progress_bars",
    "get_logger",
    "get_verbosity",
    "is_main_process",
    "logging_options",
    "progress_bars_enabled",
    "set_verbosity",
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
        root.setLevel(_default_level())
        root.propagate = False  # as transformers and datasets do: one handler, no duplicates
    return root


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
    _root().setLevel(value)


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


@contextlib.contextmanager
def logging_options(log_level: str | None = None, disable_tqdm: bool = False) -> Iterator[None]:
    """hf-drop's verbosity and progress bars for one command: ``log_level`` (``None``:
    ``HF_DROP_VERBOSITY``, else info) and ``disable_tqdm``; ``datasets``' bars are hidden with
    hf-drop's. Restored afterwards."""
    global _bars_disabled
    root = _root()
    saved_level, saved_bars = root.level, _bars_disabled
    datasets_bars = None
    try:
        set_verbosity(log_level)
        _bars_disabled = _bars_disabled or disable_tqdm
        if not progress_bars_enabled():
            import datasets

            datasets_bars = datasets.utils.logging.is_progress_bar_enabled()
            if datasets_bars:
                datasets.disable_progress_bars()
        yield
    finally:
        root.setLevel(saved_level)
        _bars_disabled = saved_bars
        if datasets_bars:
            import datasets

            datasets.enable_progress_bars()
