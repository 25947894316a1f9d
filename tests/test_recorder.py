"""Specification of the probe's recorder (hf_drop.probe.recorder), on synthetic statistics."""

import json

import datasets
import numpy as np
import pytest

from hf_drop.data.columns import read_groups
from hf_drop.probe.dynamics import STATISTICS
from hf_drop.probe.recorder import NonFiniteError, ProbeLabels, ProbeRecorder, class_recall

TRAIN = datasets.Dataset.from_dict({"label": [0, 1, 2, 0, 1, 2, 0, 1]})
VAL = datasets.Dataset.from_dict({"label": [2, 1, 0, 0, 1, 2], "site": list("aabbab")})


def statistics(rng, rows: int) -> np.ndarray:
    stats = rng.random((rows, len(STATISTICS)), dtype=np.float32)
    stats[:, STATISTICS.index("correct")] = stats[:, 1] > 0.5
    return stats


def record(recorder: ProbeRecorder, init: int, epoch: int, seed: int) -> None:
    """One epoch in two batches, in a shuffled order, then its validation."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(TRAIN))
    for index in np.array_split(order, 2):
        recorder.record_batch(epoch, index, statistics(rng, len(index)))
    recorder.end_epoch(epoch)
    rows = rng.permutation(len(VAL))
    recorder.record_validation(rng.integers(0, 3, len(VAL)), rows)


def recorder(**kwargs) -> ProbeRecorder:
    labels = ProbeLabels.read(TRAIN, VAL, "label")
    return ProbeRecorder(labels, epochs=3, score_epoch=1, du_window=2, num_inits=2, **kwargs)


def test_a_recorder_restored_from_its_checkpoint_ends_as_one_never_stopped(tmp_path):
    whole, stopped = recorder(), recorder()
    for init in range(2):
        whole.start_init(init)
        for epoch in range(3):
            record(whole, init, epoch, seed=10 * init + epoch)
        whole.end_init()
    # Stopped after epoch 1 of the second initialisation; the history goes with the checkpoint.
    for init, epochs in ((0, 3), (1, 2)):
        stopped.start_init(init)
        for epoch in range(epochs):
            record(stopped, init, epoch, seed=10 * init + epoch)
        if epochs == 3:
            stopped.end_init()
    stopped.save(tmp_path)
    history = json.loads(json.dumps(stopped.history))
    resumed = recorder()
    assert resumed.load(tmp_path, init=1, epoch=1, history=history) == (1, 2)
    resumed.start_init(1)
    record(resumed, 1, 2, seed=12)
    resumed.end_init()
    for name, values in whole.scores().items():
        np.testing.assert_array_equal(resumed.scores()[name], values, err_msg=name)
    assert resumed.history == whole.history


def test_a_non_finite_batch_is_refused_and_says_which_step():
    r = recorder()
    r.start_init(0, steps_per_epoch=3)
    stats = statistics(np.random.default_rng(0), 4)
    r.record_batch(0, np.arange(4), stats)
    stats[1, STATISTICS.index("loss")] = np.inf
    with pytest.raises(NonFiniteError, match=r"train loss inf at step 2 of 3"):
        r.record_batch(0, np.arange(4, 8), stats)
    stats[1] = 0.5
    stats[1, STATISTICS.index("margin")] = -np.inf  # one class may give an infinite margin
    r.record_batch(0, np.arange(4, 8), stats)


def test_validation_is_recorded_by_row_with_the_epochs_training_summary():
    groups = read_groups(VAL, "site")
    r = ProbeRecorder(
        ProbeLabels.read(TRAIN, VAL, "label"), epochs=1, score_epoch=0, du_window=1, groups=groups
    )
    r.start_init(0)
    r.record_batch(0, np.arange(8), statistics(np.random.default_rng(0), 8))
    summary = r.end_epoch(0)
    rows = np.array([5, 0, 1, 2, 3, 4])  # any order: labels and groups are read by row
    predicted = np.array([2, 0, 1, 0, 0, 1])  # row 0 (class 2) is missed
    metrics = r.record_validation(predicted, rows)
    assert metrics["recall"] == [1.0, 1.0, 0.5]
    assert metrics["support"] == [2, 2, 2]
    assert (metrics["group_support"], metrics["group_hits"]) == ([3, 3], [2, 3])
    assert metrics["train_loss"] == summary["train_loss"] and r.pending is None
    assert r.history == [[metrics]]
    with pytest.raises(NonFiniteError, match="NaN or infinite validation logits for 1 images"):
        r.record_validation(predicted, rows, np.array([True] * 5 + [False]))


def test_embeddings_beyond_float16_are_named_before_anything_is_written():
    r = recorder(embeddings=True)
    r.start_init(0)
    assert not r.wants_embeddings(1) and r.wants_embeddings(2)
    stats = statistics(np.random.default_rng(0), 8)
    embedding = np.full((8, 2), np.inf, np.float16)
    r.record_batch(2, np.arange(8), stats, embedding)
    assert r.non_finite() == ["embedding (penultimate features beyond float16's range)"]


def test_class_recall_gives_nan_for_a_class_without_support():
    found = class_recall(np.array([0, 1, 1]), np.array([0, 1, 0]), 3)
    assert found["accuracy"] == pytest.approx(2 / 3)
    assert found["recall"][:2] == [0.5, 1.0] and np.isnan(found["recall"][2])
    assert found["support"] == [2, 1, 0]
