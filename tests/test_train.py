"""Training a pruned dataset with transformers.Trainer (hf_drop.train)."""

import json
import math

import numpy as np
import pytest

import hf_drop.train.run
from hf_drop import DRoPFilter
from hf_drop.data.sources import digits_splits
from hf_drop.modeling.images import ImageBatches
from hf_drop.modeling.models import Preprocess
from hf_drop.train import TrainConfig, compute_matched_epochs, train_and_evaluate

pytestmark = pytest.mark.slow  # training runs

CONFIG = TrainConfig(model="test_resnet", epochs=2, batch_size=64, lr=0.05)


@pytest.fixture(scope="module")
def digits():
    return digits_splits()


def test_compute_matched_epochs_follow_the_paper():
    assert compute_matched_epochs(10, 1.0) == 10
    assert compute_matched_epochs(10, 0.5) == 15  # (0.5 + 0.25) * 10 / 0.5
    assert compute_matched_epochs(100, 0.1) == 550
    assert compute_matched_epochs(1, 0.5) == 2  # 1.5, half up
    with pytest.raises(ValueError, match="density must lie in"):
        compute_matched_epochs(10, 0.0)


def test_trainer_sees_exactly_the_pruned_rows_once_per_epoch(digits, tmp_path, monkeypatch):
    train, test = digits["train"], digits["test"]
    drop = DRoPFilter(0.3, quota="proportional", seed=1).fit(train)
    subset = drop.apply(train)
    seen = []
    original = hf_drop.train.run.model_inputs

    def spy(batch):
        seen.append(
            (
                batch["index"].numpy(),
                batch["pixel_values"].sum((1, 2, 3)).numpy(),
                batch["labels"].numpy(),
            )
        )
        return original(batch)

    monkeypatch.setattr(hf_drop.train.run, "model_inputs", spy)
    config = TrainConfig(model="test_resnet", epochs=2, batch_size=50, compute_matched=True)
    metrics = train_and_evaluate(subset, test, config, tmp_path, density=0.3)
    assert metrics["epochs"] == compute_matched_epochs(2, 0.3) == 4

    # Training batches come first (the evaluation after them uses the same collator).
    train_batches = seen[: 4 * math.ceil(len(subset) / 50)]
    index = np.concatenate([b[0] for b in train_batches])
    assert np.array_equal(np.bincount(index, minlength=len(subset)), np.full(len(subset), 4))
    # The row the Trainer saw as subset row j is source row drop.indices_[j], label and pixels.
    source = ImageBatches(train, "image", np.array(train["label"][:]), Preprocess(channels=1))
    labels = np.concatenate([b[2] for b in train_batches])
    pixels = np.concatenate([b[1] for b in train_batches])
    for j in (0, 17, len(subset) - 1):
        row = source[int(drop.indices_[j])]
        assert labels[index == j][0] == row["labels"][0]
        assert pixels[index == j][0] == pytest.approx(float(row["pixel_values"].sum()))


def test_metrics_file_reports_every_class(digits, tmp_path):
    train, test = digits["train"], digits["test"]
    drop = DRoPFilter(0.5, quota="proportional").fit(train)
    metrics = train_and_evaluate(
        drop.apply(train), test, CONFIG, tmp_path, provenance=drop.provenance()
    )
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["accuracy"] == metrics["accuracy"]
    assert set(written["class_accuracy"]) == {str(d) for d in range(10)}
    assert written["worst_class_accuracy"] == min(written["class_accuracy"].values())
    assert written["train_rows"] == 719 and written["eval_rows"] == 360
    assert written["provenance"]["method"] == "Random+Proportional"
    assert written["model"]["kind"] == "timm" and written["processes"] == 1
    assert {"torch", "transformers", "accelerate", "timm"} <= set(written["versions"])
    assert written["machine"]["torch_threads"] >= 1
    assert 0.0 <= written["worst_class_accuracy"] <= written["accuracy"] <= 1.0


def test_group_column_adds_group_accuracy_to_the_metrics(digits, tmp_path):
    train, test = digits["train"], digits["test"]
    half = (np.arange(len(test)) % 2).tolist()
    grouped = test.add_column("half", half)
    config = TrainConfig(
        model="test_resnet", epochs=1, batch_size=64, group_column=["label", "half"]
    )
    metrics = train_and_evaluate(train, grouped, config, tmp_path / "g")
    assert metrics["group_column"] == "label+half"
    assert set(metrics["group_accuracy"]) == {f"{d}/{h}" for d in range(10) for h in (0, 1)}
    assert sum(metrics["group_support"]) == len(test)
    worst = min(metrics["group_accuracy"].values())
    assert metrics["worst_group_accuracy"] == worst
    assert metrics["group_accuracy"][metrics["worst_group"]] == worst
    assert worst <= metrics["worst_class_accuracy"]
    written = json.loads((tmp_path / "g" / "metrics.json").read_text())
    assert written["group_accuracy"] == metrics["group_accuracy"]
    # Without group_column the metrics are as before; a missing group column fails early.
    plain = train_and_evaluate(
        train, test, TrainConfig(model="test_resnet", epochs=1), tmp_path / "p"
    )
    assert "group_accuracy" not in plain and "worst_group_accuracy" not in plain
    with pytest.raises(ValueError, match="half"):
        train_and_evaluate(train, test, config, tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_bad_inputs_fail_before_training(digits, tmp_path):
    train, test = digits["train"], digits["test"]
    renamed = test.cast_column(
        "label", test.features["label"].__class__(names=[f"digit {d}" for d in range(10)])
    )
    with pytest.raises(ValueError, match=r"classes .* differ from the training dataset's"):
        train_and_evaluate(train, renamed, CONFIG, tmp_path / "a")
    empty = DRoPFilter(0.0, quota="proportional").fit(train).apply(train)
    with pytest.raises(ValueError, match="the training dataset is empty"):
        train_and_evaluate(empty, test, CONFIG, tmp_path / "b")
    with pytest.raises(ValueError, match="density must lie in"):
        train_and_evaluate(
            train,
            test,
            TrainConfig(model="test_resnet", compute_matched=True),
            tmp_path / "c",
            density=0.0,
        )
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
