"""Evaluation metrics as local ``evaluate`` modules (loadable offline, by path), with the table by
class and a ``compute_metrics`` for ``transformers.Trainer`` computed the same way."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...io.extras import require

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CLASS_ACCURACY_PATH",
    "class_accuracy_scores",
    "class_accuracy_table",
    "load_class_accuracy",
    "trainer_compute_metrics",
]

# evaluate.load() takes this folder: it imports class_accuracy.py from it.
CLASS_ACCURACY_PATH = str(Path(__file__).parent / "class_accuracy")


def load_class_accuracy():
    """The class-wise accuracy metric (``evaluate.load`` of the module shipped with hf-drop)."""
    evaluate = require("evaluate", "train", "load_class_accuracy")
    return evaluate.load(CLASS_ACCURACY_PATH)


def class_accuracy_scores(
    predictions: Sequence[int],
    references: Sequence[int],
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    groups: Sequence[int] | None = None,
    group_names: Sequence[str] | None = None,
) -> dict[str, float]:
    """What the class-accuracy metric's ``compute`` returns, without ``evaluate``: ``accuracy``,
    ``worst_class_accuracy``, ``class_accuracy_std``, ``best_minus_worst`` and
    ``class_accuracy/<name>`` for each class present in ``references``; with ``groups`` (a group
    id per reference, e.g. ``read_groups(...).ids``) also ``worst_group_accuracy`` and
    ``group_accuracy/<name>``; every value a float."""
    from .class_accuracy.class_accuracy import class_counts, group_scores, scalar_scores

    scores = scalar_scores(*class_counts(predictions, references, num_classes, class_names))
    if groups is not None:
        scores.update(group_scores(predictions, references, groups, group_names))
    return scores


def class_accuracy_table(
    predictions: Sequence[int],
    references: Sequence[int],
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per class, indexed by class id: ``class`` (its name, else its id as a string),
    ``support`` (references of it), ``correct`` and ``accuracy``. A class absent from the
    references has ``support`` 0 and no accuracy (NaN), never a 0 or a 1."""
    import numpy as np
    import pandas as pd

    from .class_accuracy.class_accuracy import class_counts

    names, support, correct = class_counts(predictions, references, num_classes, class_names)
    present = support > 0
    accuracy = np.full(len(names), np.nan)
    accuracy[present] = correct[present] / support[present]
    table = pd.DataFrame(
        {"class": names, "support": support, "correct": correct, "accuracy": accuracy}
    )
    table.index.name = "class_id"
    return table


def trainer_compute_metrics(
    class_names: Sequence[str] | None = None, num_classes: int | None = None
) -> Callable[[Any], dict[str, float]]:
    """A ``compute_metrics`` for ``transformers.Trainer``: an ``EvalPrediction`` (logits, or class
    ids from ``preprocess_logits_for_metrics``) -> :func:`class_accuracy_scores`, all floats.

    Classes are named by ``class_names`` (e.g. ``dataset.features["label"].names``), else by id;
    their number is ``len(class_names)``, else ``num_classes``, else the width of the logits.
    """
    names = list(class_names) if class_names is not None else None

    def compute_metrics(prediction) -> dict[str, float]:
        import numpy as np

        outputs = prediction.predictions
        outputs = np.asarray(outputs[0] if isinstance(outputs, tuple) else outputs)
        labels = prediction.label_ids
        labels = labels[0] if isinstance(labels, tuple) else labels
        if labels is None:
            raise ValueError(
                "the EvalPrediction has no label_ids: the evaluation dataset needs labels "
                "(a 'labels' column from the collator)"
            )
        count = num_classes
        if count is None and names is None and outputs.ndim == 2:
            count = outputs.shape[-1]
        ids = np.argmax(outputs, axis=-1) if outputs.ndim == 2 else outputs
        return class_accuracy_scores(ids, np.asarray(labels), count, names)

    return compute_metrics
