"""The probe: a model trained on the full data that tells how hard each class and sample is."""

from .config import ProbeConfig
from .result import SCORE_DIRECTIONS, ProbeResult
from .run import run_probe

__all__ = ["SCORE_DIRECTIONS", "ProbeConfig", "ProbeResult", "run_probe"]
