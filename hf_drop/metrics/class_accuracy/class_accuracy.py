"""Class-wise accuracy: overall accuracy, worst-class accuracy, and the accuracy of every class.

A class that does not occur in the references has no accuracy: it is reported as absent (None),
never as 0 or 1, and it takes no part in the worst class, the spread or the gap.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
Accuracy of a classifier overall and class by class. DRoP (Vysogorets et al., ICLR 2025) is about
the worst class: this metric reports worst_class_accuracy beside the usual accuracy, with the
per-class accuracies (recalls), their standard deviation and the best-minus-worst gap.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class ids.
    references (list of int): true class ids.
    num_classes (int, optional): number of classes; default 1 + the largest id seen.
    class_names (list of str, optional): names of the classes, in id order.
Returns:
    accuracy (float): fraction of correct predictions.
    worst_class_accuracy (float): lowest accuracy of a class present in the references.
    worst_class (int or str): that class (its name if class_names is given).
    per_class_accuracy (list): accuracy of each class id, None for a class absent from references.
    class_accuracy_std (float): standard deviation of the present classes' accuracies.
    best_minus_worst (float): highest minus lowest present-class accuracy.
    absent_classes (list): classes absent from the references.
    class_names (list of str): the names used, or the ids as strings.
Examples:
    >>> metric = evaluate.load("hf_drop/metrics/class_accuracy")
    >>> metric.compute(predictions=[0, 1, 1, 2], references=[0, 1, 2, 2])["worst_class_accuracy"]
    0.5
"""

_CITATION = """
@inproceedings{vysogorets2025drop,
  title={{DRoP}: Distributionally Robust Data Pruning},
  author={Vysogorets, Artem and Ahuja, Kartik and Kempe, Julia},
  booktitle={International Conference on Learning Representations},
  year={2025}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ClassAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    # Inputs are checked before evaluate casts them to int64, which would truncate 0.7 to 0.
    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of predicted and true class ids (integers; floats only if integral)."""
        if predictions is not None or references is not None:
            predictions = _class_ids(predictions, "predictions")
            references = _class_ids(references, "references")
            _check_lengths(predictions, references)
        return super().add_batch(predictions=predictions, references=references, **kwargs)

    def add(self, *, prediction=None, reference=None, **kwargs):
        """Add one predicted and one true class id (integers; floats only if integral)."""
        if prediction is not None or reference is not None:
            prediction = _class_ids(prediction, "prediction", scalar=True)
            reference = _class_ids(reference, "reference", scalar=True)
        return super().add(prediction=prediction, reference=reference, **kwargs)

    def _compute(self, predictions, references, num_classes=None, class_names=None):
        p = np.asarray(predictions, dtype=np.int64)
        y = np.asarray(references, dtype=np.int64)
        _check_lengths(p, y)
        if len(y) == 0:
            raise ValueError("class accuracy needs at least one reference")
        if num_classes is None:
            num_classes = (
                len(class_names) if class_names is not None else int(max(p.max(), y.max())) + 1
            )
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"class_names has {len(class_names)} names for {num_classes} classes")
        if y.min() < 0 or y.max() >= num_classes:
            raise ValueError(f"references must lie in [0, {num_classes}), got {y.min()}..{y.max()}")
        if p.min() < 0 or p.max() >= num_classes:
            raise ValueError(
                f"predictions must lie in [0, {num_classes}), got {p.min()}..{p.max()}: pass "
                "class ids (the argmax of the logits) of the same classes as the references"
            )
        names = (
            list(class_names) if class_names is not None else [str(k) for k in range(num_classes)]
        )
        support = np.bincount(y, minlength=num_classes)
        hits = np.bincount(y[p == y], minlength=num_classes)
        present = support > 0
        accuracy = np.where(present, hits / np.maximum(support, 1), np.nan)
        worst = int(np.nanargmin(accuracy))
        return {
            "accuracy": float(np.mean(p == y)),
            "worst_class_accuracy": float(accuracy[worst]),
            "worst_class": names[worst] if class_names is not None else worst,
            "per_class_accuracy": [
                float(a) if ok else None for a, ok in zip(accuracy, present, strict=True)
            ],
            "class_accuracy_std": float(np.nanstd(accuracy)),
            "best_minus_worst": float(np.nanmax(accuracy) - np.nanmin(accuracy)),
            "absent_classes": [names[k] for k in np.flatnonzero(~present)],
            "class_names": names,
        }


def _class_ids(values, role: str, scalar: bool = False):
    """``values`` as integer class ids (a list, or an int if ``scalar``), or a clear error: never
    a float silently truncated."""
    argmax = (
        "pass class ids, e.g. the argmax of the logits (np.argmax(logits, axis=-1))"
        if role.startswith("prediction")
        else "pass the true class ids (the ClassLabel ids of the dataset)"
    )
    if values is None:
        raise ValueError(f"{role} is missing: pass both predictions and references")
    try:
        array = np.asarray(values)
    except Exception as error:  # ragged nested lists, ...
        raise ValueError(f"{role} must be integer class ids: {error}; {argmax}") from error
    if array.ndim != (0 if scalar else 1):
        raise ValueError(
            f"{role} must be {'one class id' if scalar else 'one class id per sample'}, got an "
            f"array of shape {array.shape} (logits or probabilities?): {argmax}"
        )
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array) | (array != np.round(array))
        if np.any(bad):
            example = array[bad].flat[0] if array.ndim else array.item()
            raise ValueError(
                f"{role} must be integer class ids, got non-integral values such as {example} "
                f"({int(np.sum(bad))} of {array.size}): {argmax}"
            )
    elif array.dtype.kind not in "iub":
        raise ValueError(f"{role} must be integer class ids, got {array.dtype} values: {argmax}")
    ids = array.astype(np.int64)
    return int(ids) if scalar else ids.tolist()


def _check_lengths(predictions, references) -> None:
    if len(predictions) != len(references):
        raise ValueError(
            f"predictions and references differ in length ({len(predictions)} vs "
            f"{len(references)}): pass one prediction per reference"
        )
