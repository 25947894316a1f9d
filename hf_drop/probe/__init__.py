"""The probe: a model trained on the full data that tells how hard each class and sample is."""

from .config import ProbeConfig
from .result import SCORE_DIRECTIONS, ProbeResult
from .run import run_probe

__all__ = ["SCORE_DIRECTIONS", "ProbeCallback", "ProbeConfig", "ProbeResult", "run_probe"]


def __getattr__(name: str):
    # Imported on first use: it needs transformers, which nothing else here does.
    if name == "ProbeCallback":
        from .callback import ProbeCallback

        return ProbeCallback
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
