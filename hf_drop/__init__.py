"""hf-drop: Distributionally Robust Data Pruning (DRoP, ICLR 2025) for Hugging Face datasets."""

from .filter import DRoPFilter
from .quotas import (
    QuotaWarning,
    drop_quotas,
    proportional_quotas,
    quotas_from_selection,
    uniform_quotas,
)
from .uncertainty import ClassErrors, class_errors_from_predictions

__version__ = "0.1.0.dev0"

__all__ = [
    "ClassErrors",
    "DRoPFilter",
    "QuotaWarning",
    "__version__",
    "class_errors_from_predictions",
    "drop_quotas",
    "proportional_quotas",
    "quotas_from_selection",
    "uniform_quotas",
]
