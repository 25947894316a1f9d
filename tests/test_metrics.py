"""The class-wise accuracy evaluate module (hf_drop/evaluation/metrics/class_accuracy), its table and the
Trainer's compute_metrics."""

import evaluate
import numpy as np
import pandas as pd
import pytest
from transformers import EvalPrediction

from hf_drop.evaluation.metrics import (
    CLASS_ACCURACY_PATH,
    class_accuracy_scores,
    class_accuracy_table,
    load_class_accuracy,
    trainer_compute_metrics,
)


@pytest.fixture(scope="module")
def metric():
    return load_class_accuracy()


def test_hand_computed_values(metric):
    # class 0: 2/2, class 1: 1/2, class 2: 1/4
    scores = metric.compute(
        predictions=[0, 0, 1, 0, 2, 0, 0, 1], references=[0, 0, 1, 1, 2, 2, 2, 2]
    )
    assert scores["accuracy"] == pytest.approx(4 / 8)
    by_class = [scores[f"class_accuracy/{k}"] for k in range(3)]
    assert by_class == pytest.approx([1.0, 0.5, 0.25])
    assert scores["worst_class_accuracy"] == pytest.approx(0.25)
    mean = (1.0 + 0.5 + 0.25) / 3
    std = (((1.0 - mean) ** 2 + (0.5 - mean) ** 2 + (0.25 - mean) ** 2) / 3) ** 0.5
    assert scores["class_accuracy_std"] == pytest.approx(std)
    assert scores["best_minus_worst"] == pytest.approx(0.75)


def test_every_value_is_a_float_for_the_trainer_to_log(metric):
    scores = metric.compute(
        predictions=[0, 1, 3], references=[0, 1, 1], num_classes=4, class_names=["a", "b", "c", "d"]
    )
    assert set(scores) == {
        "accuracy",
        "worst_class_accuracy",
        "class_accuracy_std",
        "best_minus_worst",
        "class_accuracy/a",
        "class_accuracy/b",
    }
    assert all(type(value) is float for value in scores.values())


def test_an_absent_class_is_reported_absent_not_zero_or_one(metric):
    scores = metric.compute(
        predictions=[0, 1, 3], references=[0, 1, 1], num_classes=4, class_names=["a", "b", "c", "d"]
    )
    assert scores["class_accuracy/a"] == 1.0 and scores["class_accuracy/b"] == 0.5
    assert "class_accuracy/c" not in scores and "class_accuracy/d" not in scores
    assert scores["worst_class_accuracy"] == 0.5
    assert scores["best_minus_worst"] == 0.5


def test_the_table_has_a_row_per_class_and_no_accuracy_for_an_absent_one():
    table = class_accuracy_table(
        [0, 1, 3, 0], [0, 1, 1, 0], num_classes=4, class_names=["a", "b", "c", "d"]
    )
    assert isinstance(table, pd.DataFrame) and table.index.name == "class_id"
    assert table["class"].tolist() == ["a", "b", "c", "d"]
    assert table["support"].tolist() == [2, 2, 0, 0]
    assert table["correct"].tolist() == [2, 1, 0, 0]
    assert table["accuracy"].iloc[:2].tolist() == [1.0, 0.5]
    assert table["accuracy"].iloc[2:].isna().all()  # absent: neither 0 nor 1


def test_the_table_and_the_metric_agree(metric):
    rng = np.random.default_rng(0)
    predictions, references = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    scores = metric.compute(predictions=predictions, references=references)
    table = class_accuracy_table(predictions, references)
    assert table["class"].tolist() == ["0", "1", "2", "3", "4"]
    for name, accuracy in zip(table["class"], table["accuracy"], strict=True):
        assert scores[f"class_accuracy/{name}"] == accuracy
    assert scores["worst_class_accuracy"] == table["accuracy"].min()
    assert scores == class_accuracy_scores(predictions, references)


def test_trainer_compute_metrics_takes_logits_and_names_classes():
    compute_metrics = trainer_compute_metrics(["cat", "dog", "fox"])
    logits = np.array([[2.0, 0.1, 0.0], [0.0, 3.0, 0.0], [0.0, 3.0, 0.0], [1.0, 0.0, 0.0]])
    scores = compute_metrics(
        EvalPrediction(predictions=(logits,), label_ids=np.array([0, 1, 0, 0]))
    )
    assert scores["accuracy"] == 0.75
    assert scores["class_accuracy/cat"] == pytest.approx(2 / 3)
    assert scores["class_accuracy/dog"] == 1.0 and "class_accuracy/fox" not in scores
    assert all(type(value) is float for value in scores.values())
    # Class ids (from preprocess_logits_for_metrics) work too; without names, ids name classes.
    ids = EvalPrediction(predictions=np.array([0, 2]), label_ids=np.array([0, 2]))
    assert trainer_compute_metrics(num_classes=3)(ids)["class_accuracy/2"] == 1.0


def test_class_names_must_be_distinct():
    with pytest.raises(ValueError, match=r"class_names must be distinct, got \['a'\]"):
        class_accuracy_table([0, 1], [0, 1], class_names=["a", "a"])


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
    scores = metric.compute(predictions=np.array([1, 0]), references=np.array([1, 1]))
    assert scores["class_accuracy/1"] == 0.5 and "class_accuracy/0" not in scores


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
    scores = metric.compute()
    assert scores["class_accuracy/0"] == 0.5 and scores["class_accuracy/1"] == 1.0
    with pytest.raises(ValueError, match="non-integral"):
        metric.add_batch(predictions=[0.5], references=[0])
