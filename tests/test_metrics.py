"""The class-wise accuracy evaluate module (hf_drop/metrics/class_accuracy)."""

import evaluate
import numpy as np
import pytest

from hf_drop.metrics import CLASS_ACCURACY_PATH, load_class_accuracy


@pytest.fixture(scope="module")
def metric():
    return load_class_accuracy()


def test_hand_computed_values(metric):
    # class 0: 2/2, class 1: 1/2, class 2: 1/4
    scores = metric.compute(
        predictions=[0, 0, 1, 0, 2, 0, 0, 1], references=[0, 0, 1, 1, 2, 2, 2, 2]
    )
    assert scores["accuracy"] == pytest.approx(4 / 8)
    assert scores["per_class_accuracy"] == pytest.approx([1.0, 0.5, 0.25])
    assert scores["worst_class_accuracy"] == pytest.approx(0.25) and scores["worst_class"] == 2
    mean = (1.0 + 0.5 + 0.25) / 3
    std = (((1.0 - mean) ** 2 + (0.5 - mean) ** 2 + (0.25 - mean) ** 2) / 3) ** 0.5
    assert scores["class_accuracy_std"] == pytest.approx(std)
    assert scores["best_minus_worst"] == pytest.approx(0.75)
    assert scores["absent_classes"] == []


def test_an_absent_class_is_reported_absent_not_zero_or_one(metric):
    scores = metric.compute(
        predictions=[0, 1, 3], references=[0, 1, 1], num_classes=4, class_names=["a", "b", "c", "d"]
    )
    assert scores["per_class_accuracy"] == [1.0, 0.5, None, None]
    assert scores["absent_classes"] == ["c", "d"]
    assert scores["worst_class"] == "b" and scores["worst_class_accuracy"] == 0.5
    assert scores["best_minus_worst"] == 0.5


def test_it_loads_offline_by_path_with_evaluate():
    metric = evaluate.load(CLASS_ACCURACY_PATH)
    assert metric.compute(predictions=[1, 1], references=[1, 0])["worst_class_accuracy"] == 0.0


def test_bad_references_are_clear_errors(metric):
    with pytest.raises(ValueError, match=r"references must lie in \[0, 2\)"):
        metric.compute(predictions=[0, 1], references=[0, 5], num_classes=2)
    with pytest.raises(ValueError, match="class_names has 3 names for 2 classes"):
        metric.compute(predictions=[0], references=[0], num_classes=2, class_names=list("abc"))


def test_float_predictions_are_refused_not_truncated(metric):
    # evaluate casts to int64, which would count 0.7 as class 0: refused before that.
    with pytest.raises(ValueError, match=r"predictions must be integer class ids.*0\.7.*argmax"):
        metric.compute(predictions=[0.7, 1.2], references=[0, 1])
    with pytest.raises(ValueError, match=r"references must be integer class ids.*0\.5"):
        metric.compute(predictions=[0, 1], references=[0.5, 1])
    with pytest.raises(ValueError, match=r"non-integral values such as nan"):
        metric.compute(predictions=[float("nan"), 1], references=[0, 1])
    with pytest.raises(ValueError, match=r"prediction must be integer class ids.*argmax"):
        metric.add(prediction=0.4, reference=0)
    # Integral floats are class ids, and numpy arrays are fine.
    assert metric.compute(predictions=[0.0, 1.0], references=[0, 1])["accuracy"] == 1.0
    assert metric.compute(predictions=np.array([1, 0]), references=np.array([1, 1]))[
        "per_class_accuracy"
    ] == [None, 0.5]


def test_logits_or_strings_are_refused_with_the_argmax_hint(metric):
    with pytest.raises(ValueError, match=r"shape \(2, 2\).*np\.argmax\(logits, axis=-1\)"):
        metric.compute(predictions=[[0.1, 0.9], [0.8, 0.2]], references=[1, 0])
    with pytest.raises(ValueError, match=r"predictions must be integer class ids, got <U"):
        metric.compute(predictions=["cat", "dog"], references=[0, 1])


def test_mismatched_lengths_and_out_of_range_predictions_are_refused(metric):
    with pytest.raises(ValueError, match=r"differ in length \(3 vs 2\)"):
        metric.compute(predictions=[0, 1, 1], references=[0, 1])
    with pytest.raises(ValueError, match=r"predictions must lie in \[0, 2\), got 0\.\.7"):
        metric.compute(predictions=[0, 7], references=[0, 1], num_classes=2)
    with pytest.raises(ValueError, match=r"predictions must lie in \[0, 2\), got -1\.\.1"):
        metric.compute(predictions=[-1, 1], references=[0, 1])
    with pytest.raises(ValueError, match=r"references must lie in \[0, 2\), got -1\.\.1"):
        metric.compute(predictions=[0, 1], references=[-1, 1], num_classes=2)


def test_batches_added_one_by_one_are_checked_too(metric):
    metric.add_batch(predictions=[0, 1], references=[0, 0])
    metric.add(prediction=1, reference=1)
    assert metric.compute()["per_class_accuracy"] == [0.5, 1.0]
    with pytest.raises(ValueError, match="non-integral"):
        metric.add_batch(predictions=[0.5], references=[0])
