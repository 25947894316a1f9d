"""The probe: a model trained on the full data that tells how hard each class and sample is.

Reading a probe's result (:class:`ProbeResult`) needs no torch; running one (:func:`run_probe`)
does, so the names are resolved on first use and ``from hf_drop.probe import ProbeResult`` stays
light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .callback import ProbeCallback
    from .config import ProbeConfig
    from .recorder import ProbeDivergedError, ProbeRecorder, ProbeWarning
    from .result import SCORE_DIRECTIONS, ProbeResult
    from .run import run_probe

_EXPORTS = {
    "ProbeConfig": "config",
    "ProbeResult": "result",
    "SCORE_DIRECTIONS": "result",
    "ProbeDivergedError": "recorder",
    "ProbeRecorder": "recorder",
    "ProbeWarning": "recorder",
    "run_probe": "run",
    "ProbeCallback": "callback",  # needs transformers, which nothing else here does
}

__all__ = [
    "SCORE_DIRECTIONS",
    "ProbeCallback",
    "ProbeConfig",
    "ProbeDivergedError",
    "ProbeRecorder",
    "ProbeResult",
    "ProbeWarning",
    "run_probe",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
    except ModuleNotFoundError as error:  # run_probe and ProbeCallback need torch
        from ..io.extras import explain

        raise explain(error, "probe", f"hf_drop.probe.{name}") from None
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
