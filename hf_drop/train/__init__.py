"""Train an image classifier on a (pruned) dataset with ``transformers.Trainer``, judge it class by
class, and save it with a model card.

    config      TrainConfig, compute_matched_epochs
    arguments   the TrainingArguments of a run: hf-drop's settings, the caller's over them
    run         train_and_evaluate: build once, train, evaluate once, save
    card        the saved model's card
"""

from .arguments import training_arguments
from .config import TrainConfig, compute_matched_epochs
from .run import CHECKPOINTS_DIR, METRICS_FILE, MODEL_DIR, model_inputs, train_and_evaluate

__all__ = [
    "CHECKPOINTS_DIR",
    "METRICS_FILE",
    "MODEL_DIR",
    "TrainConfig",
    "compute_matched_epochs",
    "model_inputs",
    "train_and_evaluate",
    "training_arguments",
]
