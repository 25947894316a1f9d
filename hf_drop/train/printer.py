"""The Trainer's log lines through hf-drop's logger, where transformers would ``print`` them.

Without progress bars (``disable_tqdm``) the Trainer's ``PrinterCallback`` prints each log
(``{'loss': ...}``) to stdout, whatever the level, and stdout is for a command's results. Here
they go to the ``hf_drop.train`` logger at info, so ``--log_level`` decides like everything else.
"""

from __future__ import annotations

from transformers import Trainer, TrainerCallback
from transformers.trainer_callback import PrinterCallback

from ..io.logs import get_logger

__all__ = ["LoggerCallback", "log_through_hf_drop"]

logger = get_logger(__name__)


class LoggerCallback(TrainerCallback):
    """Each of the Trainer's logs as one info line of the ``hf_drop`` logger."""

    def on_log(self, args, state, control, logs=None, **kwargs) -> None:
        if state.is_local_process_zero and logs:
            shown = {k: f"{v:.4g}" if isinstance(v, float) else v for k, v in logs.items()}
            shown.pop("total_flos", None)
            logger.info(", ".join(f"{k} {v}" for k, v in shown.items()))


def log_through_hf_drop(trainer: Trainer) -> Trainer:
    """``trainer`` with its ``PrinterCallback`` (if any) replaced by :class:`LoggerCallback`."""
    if any(isinstance(c, PrinterCallback) for c in trainer.callback_handler.callbacks):
        trainer.remove_callback(PrinterCallback)
        trainer.add_callback(LoggerCallback())
    return trainer
