"""A user's own transformers.Trainer run as the probe (hf_drop.probe.ProbeCallback).

Run as a script (``accelerate launch tests/test_callback.py FOLDER``), this file trains the
frozen Trainer of the tests and writes its probe result to FOLDER/probe.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import Trainer, TrainingArguments, ViTConfig, ViTForImageClassification, set_seed

from hf_drop import DRoPFilter
from hf_drop.data.sources import digits_splits
from hf_drop.hub import reproduce_commands
from hf_drop.modeling.models import Preprocess
from hf_drop.modeling.transforms import collate_images, image_transform
from hf_drop.probe import ProbeCallback, ProbeResult
from hf_drop.probe.run import ProbeWarning

pytestmark = pytest.mark.slow  # each test trains with Trainer

# Odd sizes: with 2 processes, the last training and evaluation batches are padded.
TRAIN_ROWS, EVAL_ROWS, BATCH = 301, 101, 8


def digits_subsets():
    digits = digits_splits()
    return digits["train"].select(range(TRAIN_ROWS)), digits["test"].select(range(EVAL_ROWS))


def probe_with_trainer(
    train, val, output, trainer_dir, *, lr=0.005, epochs=12, accumulation=3, **kwargs
):
    """An ordinary Trainer script: a tiny ViT (no BatchNorm, no dropout: a sample's logits do
    not depend on its batch) on 8x8 digits, with the callback added."""
    set_seed(0)
    config = ViTConfig(
        image_size=8,
        patch_size=2,
        num_channels=1,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=10,
    )
    model = ViTForImageClassification(config)
    transform = image_transform(Preprocess(channels=1))
    probe = ProbeCallback(
        output,
        train.with_transform(transform),
        val.with_transform(transform),
        source={"name": "digits"},
        **kwargs,
    )
    args = TrainingArguments(
        output_dir=str(trainer_dir),
        num_train_epochs=epochs,
        per_device_train_batch_size=BATCH,
        per_device_eval_batch_size=BATCH,
        gradient_accumulation_steps=accumulation,
        learning_rate=lr,
        seed=0,
        remove_unused_columns=False,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=probe.train_dataset,
        eval_dataset=probe.eval_dataset,
        data_collator=probe.collator(collate_images),
        callbacks=[probe],
    )
    trainer.train()
    return trainer, probe


@pytest.fixture(scope="module")
def subsets():
    return digits_subsets()


@pytest.fixture(scope="module")
def frozen(subsets, tmp_path_factory):
    """A run with lr=0: the model never changes, so any number of processes must agree."""
    folder = tmp_path_factory.mktemp("frozen")
    with pytest.warns(ProbeWarning) as emitted:
        probe_with_trainer(*subsets, folder / "probe", folder / "trainer", lr=0.0, epochs=3)
    assert any("near chance" in str(w.message) for w in emitted)  # a frozen model is flagged
    return ProbeResult.load(folder / "probe")


def test_a_trainer_run_writes_the_probe_result(subsets, tmp_path):
    train, val = subsets
    trainer, probe = probe_with_trainer(
        train, val, tmp_path / "probe", tmp_path / "trainer", embeddings=True
    )
    result = ProbeResult.load(tmp_path / "probe")
    assert probe.result_.folder == result.folder

    # One row per training sample, keyed by its row index, with its label.
    scores = result.scores
    assert scores["index"][:] == list(range(TRAIN_ROWS))
    assert scores["label"][:] == train["label"][:]
    assert set(result.score_names) == {
        "loss", "el2n", "grand", "forgetting", "aum", "dynamic_uncertainty", "margin", "entropy"
    }  # fmt: skip
    for name in result.score_names:
        assert np.isfinite(result.score(name)).all(), name
    assert result.score("embedding").shape == (TRAIN_ROWS, 32)  # the ViT head's input
    # Every epoch judged on the eval set; the record says how the Trainer trained.
    assert len(result.class_metrics["accuracy_by_epoch"][0]) == 12
    assert result.class_metrics["warnings"] == []  # it learned: 0.67 accuracy at the end
    assert result.record["config"]["trainer"]["gradient_accumulation_steps"] == 3
    assert result.record["batch"]["global_batch_size"] == 3 * BATCH
    assert result.record["processes"] == 1

    # The class errors are those of the trained model's predictions on the eval set.
    logits = trainer.predict(probe.eval_dataset).predictions
    predicted = np.argmax(logits, axis=-1)
    labels = np.array(val["label"][:])
    support = np.bincount(labels, minlength=10)
    mistakes = np.bincount(labels[predicted != labels], minlength=10)
    table = result.class_table()
    assert table["support"].tolist() == support.tolist()
    assert table["mistakes"].tolist() == mistakes.tolist()
    np.testing.assert_allclose(result.class_errors, mistakes / support)

    # DRoP reads it like a result of hf-drop probe, and checks the data is the probe's.
    drop = DRoPFilter.from_probe(tmp_path / "probe", 0.5, within="el2n").fit(train)
    assert len(drop.indices_) == 151  # 150.5, rounded half up
    with pytest.raises(ValueError, match="another dataset"):
        DRoPFilter.from_probe(tmp_path / "probe", 0.5).fit(train.shuffle(seed=1))
    # A subset's card cannot rebuild the user's script: it says where the probe came from.
    probe_line = reproduce_commands(drop.provenance())[0]
    assert probe_line.startswith("# the probe: the transformers.Trainer script")


def test_two_processes_record_what_one_records(subsets, frozen, tmp_path):
    from conftest import launch_two

    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    two = subprocess.run(
        launch_two(__file__, str(tmp_path)),
        env=env,
        capture_output=True,
        text=True,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    result = ProbeResult.load(tmp_path / "probe")
    assert (frozen.record["processes"], result.record["processes"]) == (1, 2)
    assert result.scores["index"][:] == frozen.scores["index"][:]
    assert result.scores["label"][:] == frozen.scores["label"][:]
    assert result.class_names == frozen.class_names
    for name in frozen.score_names:
        np.testing.assert_allclose(
            result.score(name), frozen.score(name), rtol=1e-5, atol=1e-6, err_msg=name
        )
    assert np.array_equal(result.class_errors, frozen.class_errors)
    assert (result.class_table()["support"] == frozen.class_table()["support"]).all()
    train, _ = subsets
    drop = DRoPFilter.from_probe(result, 0.5).fit(train)
    assert np.array_equal(drop.indices_, DRoPFilter.from_probe(frozen, 0.5).fit(train).indices_)


def test_a_trainer_that_drops_the_index_is_refused_before_training(subsets, tmp_path):
    train, val = subsets
    probe = ProbeCallback(tmp_path / "probe", train, val)
    model = torch.nn.Linear(64, 10)
    args = TrainingArguments(str(tmp_path / "trainer"), report_to="none", use_cpu=True)
    with pytest.raises(ValueError, match="remove_unused_columns=False"):
        Trainer(model=model, args=args, train_dataset=probe.train_dataset, callbacks=[probe])
    assert not (tmp_path / "probe").exists()


def test_a_trainer_given_the_plain_datasets_stops_at_its_first_step(subsets, tmp_path):
    train, val = subsets
    transform = image_transform(Preprocess(channels=1))
    probe = ProbeCallback(tmp_path / "probe", train, val)
    set_seed(0)
    model = ViTForImageClassification(
        ViTConfig(image_size=8, patch_size=4, num_channels=1, hidden_size=8, num_hidden_layers=1,
                  num_attention_heads=1, intermediate_size=8, num_labels=10)
    )  # fmt: skip
    args = TrainingArguments(
        str(tmp_path / "trainer"), remove_unused_columns=False, report_to="none", use_cpu=True
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train.with_transform(transform),  # not probe.train_dataset
        data_collator=collate_images,
        callbacks=[probe],
    )
    with pytest.raises(RuntimeError, match="a training batch without 'hf_drop_index'"):
        trainer.train()
    assert not (tmp_path / "probe").exists()


def test_an_occupied_output_folder_is_refused_before_training(subsets, tmp_path):
    (tmp_path / "probe").mkdir()
    (tmp_path / "probe" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty and is not a previous"):
        probe_with_trainer(*subsets, tmp_path / "probe", tmp_path / "trainer")
    assert (tmp_path / "probe" / "notes.txt").read_text() == "mine"


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    # The frozen run of the tests, on as many processes as launched.
    probe_with_trainer(*digits_subsets(), folder / "probe", folder / "trainer", lr=0.0, epochs=3)
