"""Train an image classifier on a (pruned) dataset with ``transformers.Trainer``, judge it class by
class, and save it with a model card.

    config      TrainConfig, compute_matched_epochs
    arguments   the TrainingArguments of a run: hf-drop's settings, the caller's over them
    run         train_and_evaluate: build once, train, evaluate once, save
    dynamic     DynamicDRoPCallback: DRoP while you train, inside any Trainer
    record      TrainRecord: a run's metrics.json, read back and checked
    card        the saved model's card
"""

from typing import Any

from ..evaluation.record import METRICS_FILE, TrainRecord
from .arguments import training_arguments
from .config import TrainConfig, compute_matched_epochs

__all__ = [
    "CHECKPOINTS_DIR",
    "METRICS_FILE",
    "MODEL_DIR",
    "DynamicDRoPCallback",
    "TrainConfig",
    "TrainRecord",
    "compute_matched_epochs",
    "model_inputs",
    "train_and_evaluate",
    "training_arguments",
]

# Imported when first used: they need torch and transformers, and reading a run's record (the
# report) does not.
_LAZY = {
    "CHECKPOINTS_DIR": ".run",
    "DynamicDRoPCallback": ".dynamic",
    "MODEL_DIR": ".run",
    "model_inputs": ".run",
    "train_and_evaluate": ".run",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        try:
            module = importlib.import_module(_LAZY[name], __name__)
        except ModuleNotFoundError as error:
            from ..io.extras import explain

            raise explain(error, "train", f"hf_drop.train.{name}") from None
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
