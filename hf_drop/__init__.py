"""hf-drop: Distributionally Robust Data Pruning (DRoP, ICLR 2025) for Hugging Face datasets.

The package is layered, one folder per pipeline stage; each imports only from those before it:

    core        numpy: quotas (Algorithm 1 and its robust form), selection, error intervals, rules
    io          safe outputs, damaged-file errors, provenance, portable names, logging
    data        sources, label and identity columns, carved splits
    evaluation  the class-wise accuracy metric, run reports, plots
    modeling    models (timm, transformers), the pixel path, transforms for your own scripts
    probe       the probe run (Accelerate), its callback for your own Trainer, its result
    pruning     DRoPFilter and the saved subset
    train       transformers.Trainer on a subset
    hub         export with a dataset card, push
    cli         the hf-drop command

The names below are resolved on first use, so ``from hf_drop import DRoPFilter`` and
``ProbeResult.load`` never import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .core.quotas import (
        QuotaWarning,
        drop_quotas,
        proportional_quotas,
        quotas_from_selection,
        uniform_quotas,
    )
    from .core.uncertainty import ClassErrors, class_errors_from_predictions
    from .modeling.transforms import collate_images, image_transform
    from .probe import ProbeConfig, ProbeResult, run_probe
    from .pruning.filter import DRoPFilter

_EXPORTS = {
    "DRoPFilter": ".pruning.filter",
    "ClassErrors": ".core.uncertainty",
    "class_errors_from_predictions": ".core.uncertainty",
    "QuotaWarning": ".core.quotas",
    "drop_quotas": ".core.quotas",
    "proportional_quotas": ".core.quotas",
    "quotas_from_selection": ".core.quotas",
    "uniform_quotas": ".core.quotas",
    "ProbeConfig": ".probe.config",
    "ProbeResult": ".probe.result",
    "run_probe": ".probe.run",
    "image_transform": ".modeling.transforms",
    "collate_images": ".modeling.transforms",
}

__all__ = [
    "ClassErrors",
    "DRoPFilter",
    "ProbeConfig",
    "ProbeResult",
    "QuotaWarning",
    "__version__",
    "class_errors_from_predictions",
    "collate_images",
    "drop_quotas",
    "image_transform",
    "proportional_quotas",
    "quotas_from_selection",
    "run_probe",
    "uniform_quotas",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = importlib.import_module(_EXPORTS[name], __name__)
    except ModuleNotFoundError as error:  # the probe's names need torch: say which extra
        from .io.extras import explain

        raise explain(error, "probe", f"hf_drop.{name}") from None
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
