"""Class-wise accuracy: overall accuracy, worst-class accuracy, and the accuracy of every class.

Every value is a float (what ``transformers.Trainer`` logs as it is): the accuracy of class
``name`` is ``class_accuracy/<name>``. A class that does not occur in the references has no
accuracy: it has no ``class_accuracy/<name>`` entry, never a 0 or a 1, and it takes no part in the
worst class, the spread or the gap. The table by class is ``hf_drop.evaluation.metrics.class_accuracy_table``.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
Accuracy of a classifier overall and class by class. DRoP (Vysogorets et al., ICLR 2025) is about
the worst class: this metric reports worst_class_accuracy beside the usual accuracy, with the
per-class accuracies (recalls), their standard deviation and the best-minus-worst gap, all floats.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class ids.
    references (list of int): true class ids.
    num_classes (int, optional): number of classes; default 1 + the largest id seen.
    class_names (list of str, optional): names of the classes, in id order.
Returns (every value a float):
    accuracy: fraction of correct predictions.
    worst_class_accuracy: lowest accuracy of a class present in the references.
    class_accuracy_std: standard deviation of the present classes' accuracies.
    best_minus_worst: highest minus lowest present-class accuracy.
    class_accuracy/<name>: accuracy of each class present in the references, by its name in
        class_names (else its id); a class absent from the references has no entry.
    With groups (list of int, optional: a group id per reference, e.g. class x background) and
    group_names (list of str, optional), also:
    worst_group_accuracy: lowest accuracy of a group present in the references.
    group_accuracy/<name>: accuracy of each group present.
Examples:
    >>> from hf_drop.evaluation.metrics import CLASS_ACCURACY_PATH  # this module's folder
    >>> metric = evaluate.load(CLASS_ACCURACY_PATH)  # or load_class_accuracy()
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

    def _compute(
        self,
        predictions,
        references,
        num_classes=None,
        class_names=None,
        groups=None,
        group_names=None,
    ):
        scores = scalar_scores(*class_counts(predictions, references, num_classes, class_names))
        if groups is not None:
            scores.update(group_scores(predictions, references, groups, group_names))
        return scores


def group_scores(predictions, references, groups, group_names=None) -> dict[str, float]:
    """``worst_group_accuracy`` and ``group_accuracy/<name>`` of the groups present: a group is
    judged like a class, by the fraction of its samples predicted as their own class."""
    p = np.asarray(_class_ids(predictions, "predictions"), dtype=np.int64)
    y = np.asarray(_class_ids(references, "references"), dtype=np.int64)
    g = np.asarray(_class_ids(groups, "groups"), dtype=np.int64)
    _check_lengths(p, y)
    if len(g) != len(y):
        raise ValueError(f"groups has {len(g)} values for {len(y)} references: one per reference")
    if len(g) and g.min() < 0:
        raise ValueError(f"groups must be group ids >= 0, got {g.min()}")
    count = len(group_names) if group_names is not None else (int(g.max()) + 1 if len(g) else 0)
    if len(g) and g.max() >= count:
        raise ValueError(f"groups must lie in [0, {count}) (group_names has {count} names)")
    names = (
        [str(n) for n in group_names] if group_names is not None else [str(k) for k in range(count)]
    )
    support = np.bincount(g, minlength=count)
    correct = np.bincount(g[p == y], minlength=count)
    present = support > 0
    accuracy = correct[present] / support[present]
    scores = {"worst_group_accuracy": float(accuracy.min())}
    for name, value in zip(np.asarray(names, dtype=object)[present], accuracy, strict=True):
        scores[f"group_accuracy/{name}"] = float(value)
    return scores


def class_counts(predictions, references, num_classes=None, class_names=None):
    """Checked inputs -> ``(names, support, correct)``: each class's name (its id as a string
    without ``class_names``), number of references and of correct predictions."""
    p = np.asarray(_class_ids(predictions, "predictions"), dtype=np.int64)
    y = np.asarray(_class_ids(references, "references"), dtype=np.int64)
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
        [str(n) for n in class_names]
        if class_names is not None
        else [str(k) for k in range(num_classes)]
    )
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"class_names must be distinct, got {twice} more than once")
    support = np.bincount(y, minlength=num_classes)
    correct = np.bincount(y[p == y], minlength=num_classes)
    return names, support, correct


def scalar_scores(names, support, correct) -> dict[str, float]:
    """The metric's floats from :func:`class_counts`; absent classes take no part."""
    present = support > 0
    accuracy = correct[present] / support[present]
    scores = {
        "accuracy": float(correct.sum() / support.sum()),
        "worst_class_accuracy": float(accuracy.min()),
        "class_accuracy_std": float(accuracy.std()),
        "best_minus_worst": float(accuracy.max() - accuracy.min()),
    }
    for name, value in zip(np.asarray(names, dtype=object)[present], accuracy, strict=True):
        scores[f"class_accuracy/{name}"] = float(value)
    return scores


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
