"""hf-drop train as a Trainer front end: TrainingArguments passed through, the model saved with its
card, the command line (hf_drop.train.arguments, hf_drop.train.run, hf-drop train)."""

import json
import math
from typing import ClassVar

import numpy as np
import pytest
import torch
from transformers import (
    AutoImageProcessor,
    AutoModelForImageClassification,
    TimmWrapperForImageClassification,
    TrainerCallback,
    TrainingArguments,
)
from transformers.integrations import integration_utils

import hf_drop.train
from hf_drop import DRoPFilter
from hf_drop.cli import main
from hf_drop.data.sources import digits_splits
from hf_drop.modeling.images import ImageBatches
from hf_drop.modeling.models import Preprocess
from hf_drop.train import TrainConfig, train_and_evaluate, training_arguments

pytestmark = pytest.mark.slow  # training runs

CONFIG = TrainConfig(model="test_resnet", epochs=1, batch_size=64)
OVERRIDES = {
    "gradient_accumulation_steps": 2,
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "report_to": "tensorboard",  # answered by Reporter below: tensorboard is not installed here
}


class Spy(TrainerCallback):
    """What the Trainer ran with, the model it trained, and the evaluations it made."""

    def __init__(self):
        self.args, self.model, self.evaluations = None, None, []

    def on_train_begin(self, args, state, control, **kwargs):
        self.args = args

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self.evaluations.append(dict(metrics))

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self.model = model


class Reporter(TrainerCallback):
    """Stands for the tensorboard integration: the Trainer builds it from report_to."""

    made: ClassVar[list["Reporter"]] = []

    def __init__(self):
        self.logs = []
        Reporter.made.append(self)

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.append(dict(logs))


@pytest.fixture(scope="module")
def digits():
    return digits_splits()


@pytest.fixture(scope="module")
def run(digits, tmp_path_factory):
    """One real run on a 30% subset of digits, with overrides, shared by the tests."""
    out = tmp_path_factory.mktemp("runs") / "drop30"
    drop = DRoPFilter(0.3, quota="proportional").fit(digits["train"])
    spy = Spy()
    Reporter.made.clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(integration_utils.INTEGRATION_TO_CALLBACK, "tensorboard", Reporter)
        metrics = train_and_evaluate(
            drop.apply(digits["train"]),
            digits["test"],
            CONFIG,
            out,
            training_args=OVERRIDES,
            callbacks=[spy],
            provenance=drop.provenance(),
            dataset_name="runs/drop30",
            reproduce=["hf-drop prune --dataset digits --density 0.3 --output subset"],
        )
    return out, metrics, spy


# --- TrainingArguments: the precedence rule (no training) -----------------------------------------


def test_hf_drop_settings_are_the_defaults(tmp_path):
    args = training_arguments(TrainConfig(model="m", lr=0.2, batch_size=16), 3, tmp_path)
    assert (args.learning_rate, args.num_train_epochs, args.per_device_train_batch_size) == (
        0.2,
        3,
        16,
    )
    assert args.report_to == [] and args.save_strategy == "no" and not args.remove_unused_columns
    assert args.output_dir == str(tmp_path)


def test_an_override_of_a_default_setting_wins(tmp_path):
    args = training_arguments(CONFIG, 1, tmp_path, {"learning_rate": 0.3, "max_grad_norm": 2.0})
    assert args.learning_rate == 0.3 and args.max_grad_norm == 2.0
    # The same value on both sides is no conflict.
    same = training_arguments(TrainConfig(model="m", lr=0.3), 1, tmp_path, {"learning_rate": 0.3})
    assert same.learning_rate == 0.3


def test_a_setting_given_twice_differently_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"learning_rate=0.3 but the TrainConfig sets lr=0.2"):
        training_arguments(TrainConfig(model="m", lr=0.2), 1, tmp_path, {"learning_rate": 0.3})
    matched = TrainConfig(model="m", epochs=2, compute_matched=True)
    with pytest.raises(ValueError, match=r"num_train_epochs=5 .* compute_matched \(3 epochs\)"):
        training_arguments(matched, 3, tmp_path, {"num_train_epochs": 5})
    with pytest.raises(ValueError, match="max_steps"):
        training_arguments(matched, 3, tmp_path, {"max_steps": 10})


def test_a_training_arguments_object_is_taken_as_it_is(tmp_path):
    given = TrainingArguments(output_dir="elsewhere", learning_rate=0.01, num_train_epochs=2)
    args = training_arguments(TrainConfig(model="m"), 10, tmp_path, given)
    assert (args.learning_rate, args.num_train_epochs, args.seed) == (0.01, 2, 42)
    # Only where the run writes, and what its batches need, are hf-drop's.
    assert args.output_dir == str(tmp_path) and args.remove_unused_columns is False
    with pytest.raises(ValueError, match="TrainConfig sets batch_size=16"):
        training_arguments(TrainConfig(model="m", batch_size=16), 10, tmp_path, given)


def test_unknown_or_reserved_fields_are_refused(digits, tmp_path):
    with pytest.raises(ValueError, match="'gradient_acumulation_steps' is not a transformers"):
        train_and_evaluate(
            digits["train"],
            digits["test"],
            CONFIG,
            tmp_path / "out",
            training_args={"gradient_acumulation_steps": 2},
        )
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="did you mean 'gradient_accumulation_steps'"):
        training_arguments(CONFIG, 1, tmp_path, {"gradient_acumulation_steps": 2})
    with pytest.raises(ValueError, match="prediction_loss_only must stay False"):
        training_arguments(CONFIG, 1, tmp_path, {"prediction_loss_only": True})
    with pytest.raises(ValueError, match="output_dir is hf-drop's"):
        training_arguments(CONFIG, 1, tmp_path, {"output_dir": "x"})
    with pytest.raises(ValueError, match="optimizer='trainer'"):
        training_arguments(CONFIG, 1, tmp_path, {"lr_scheduler_type": "cosine"})
    trainer = TrainConfig(model="m", optimizer="trainer")
    assert (
        training_arguments(trainer, 1, tmp_path, {"lr_scheduler_type": "cosine"}).lr_scheduler_type
        == "cosine"
    )


# --- one real run ---------------------------------------------------------------------------------


def test_overrides_reach_the_trainer(run):
    out, _, spy = run
    assert spy.args.gradient_accumulation_steps == 2 and spy.args.eval_strategy == "epoch"
    assert spy.args.learning_rate == CONFIG.lr  # hf-drop's setting, not overridden
    # eval_strategy="epoch": one evaluation during training, with the class-wise metrics.
    assert "eval_worst_class_accuracy" in spy.evaluations[0]
    used = json.loads((out / "metrics.json").read_text())["training_args"]
    assert used["gradient_accumulation_steps"] == 2 and used["eval_strategy"] == "epoch"
    assert used["output_dir"] == str(out / "checkpoints")


def test_report_to_builds_its_reporter(run):
    _, metrics, spy = run
    assert spy.args.report_to == ["tensorboard"]
    (reporter,) = Reporter.made
    final = reporter.logs[-1]  # the one evaluation after training is reported too
    assert final["eval_accuracy"] == pytest.approx(metrics["accuracy"])
    assert final["eval_worst_class_accuracy"] == pytest.approx(metrics["worst_class_accuracy"])


def test_checkpoints_go_into_the_output(run):
    out, metrics, _ = run
    steps = math.ceil(math.ceil(metrics["train_rows"] / 64) / 2)  # batches, 2 per optimizer step
    assert [p.name for p in (out / "checkpoints").iterdir()] == [f"checkpoint-{steps}"]
    assert metrics["checkpoints_dir"] == "checkpoints" and metrics["model_dir"] == "model"
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # nothing left aside


def test_the_saved_model_reloads_and_predicts_the_same(run, digits):
    out, metrics, spy = run
    model = AutoModelForImageClassification.from_pretrained(out / "model")
    assert isinstance(model, TimmWrapperForImageClassification)
    assert model.config.id2label == dict(enumerate(metrics["class_names"]))
    assert (out / "model" / "model.safetensors").exists()
    test = digits["test"]
    rows = ImageBatches(test, "image", np.array(test["label"][:]), Preprocess(channels=1))
    batch = rows.__getitems__(list(range(len(test))))
    model.eval(), spy.model.eval()
    with torch.no_grad():
        logits = model(pixel_values=batch["pixel_values"]).logits
        trained = spy.model(pixel_values=batch["pixel_values"]).logits
    assert torch.allclose(logits, trained, atol=1e-5)
    accuracy = (logits.argmax(-1) == batch["labels"]).float().mean().item()
    assert accuracy == pytest.approx(metrics["accuracy"])
    # The saved image processor prepares images as training did.
    processor = AutoImageProcessor.from_pretrained(out / "model")
    pixels = processor([test[i]["image"] for i in range(4)])["pixel_values"]
    assert torch.allclose(pixels, batch["pixel_values"][:4], atol=1e-6)


def test_the_model_card_states_the_subset_and_the_metrics(run):
    from huggingface_hub import ModelCard

    out, metrics, _ = run
    card = ModelCard.load(out / "model" / "README.md")
    assert card.data.hf_drop["accuracy"] == metrics["accuracy"]
    assert card.data.hf_drop["method"] == "Random+Proportional"
    assert card.data.pipeline_tag == "image-classification"
    text = card.text
    assert "`runs/drop30`" in text and "Random+Proportional" in text and "density 0.3" in text
    assert "hf-drop prune --dataset digits --density 0.3 --output subset" in text
    assert f"accuracy: {metrics['accuracy']:.4f}" in text
    kept, rows = metrics["provenance"]["num_kept"], metrics["provenance"]["num_rows"]
    assert f"it keeps {kept} of the {rows} rows" in text
    assert "None" not in text.split("## Training data")[1].split("## ")[0]
    assert f"(`{metrics['worst_class']}`)" in text
    assert "| class | kept for training | evaluated | accuracy |" in text
    assert f"| transformers | {metrics['versions']['transformers']} |" in text


def test_save_model_false_saves_metrics_only(digits, tmp_path):
    config = TrainConfig(model="test_resnet", batch_size=64, save_model=False)
    metrics = train_and_evaluate(
        digits["train"].select(range(128)),
        digits["test"].select(range(64)),
        config,
        tmp_path / "out",
        training_args={"max_steps": 1},
    )
    assert metrics["model_dir"] is None and metrics["epochs"] == 0.5  # 1 step of 2 batches
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        ".hf-drop-output.json",
        "metrics.json",
    ]


# --- the command line -----------------------------------------------------------------------------


@pytest.fixture
def captured(monkeypatch):
    """hf-drop train without training: what it would hand to train_and_evaluate."""
    calls = []

    def capture(train, eval_dataset, config, output_dir, **kwargs):
        calls.append({"config": config, "output_dir": output_dir, **kwargs})
        return {"accuracy": 1.0, "worst_class": "0", "worst_class_accuracy": 1.0}

    monkeypatch.setattr(hf_drop.train, "train_and_evaluate", capture)
    return calls


TRAIN = ["train", "--dataset", "digits", "--eval-dataset", "digits", "--model", "test_resnet"]


def test_the_command_passes_training_arguments_through(tmp_path, captured):
    main([*TRAIN, "--epochs", "2", "--report-to", "none", "--eval_strategy", "epoch",
          "--gradient-accumulation-steps", "2", "--save_strategy=epoch", "--fp16", "false",
          "--learning_rate", "0.1", "--batch_size", "32", "--output-dir", str(tmp_path / "o")])  # fmt: skip
    (call,) = captured
    assert call["training_args"] == {
        "report_to": "none",
        "eval_strategy": "epoch",
        "gradient_accumulation_steps": 2,
        "save_strategy": "epoch",
        "fp16": False,
    }
    assert (call["config"].lr, call["config"].batch_size, call["config"].epochs) == (0.1, 32, 2)
    assert call["output_dir"] == str(tmp_path / "o") and call["dataset_name"] == "digits"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--gradient_acumulation_steps", "2"], "unrecognized arguments: --gradient_acumulation"),
        (["--eval_strategy", "sometimes"], "invalid choice: 'sometimes'"),
        (["--lr", "0.1", "--learning_rate", "0.2"], "--lr and --learning_rate set the same thing"),
        (["--output", "a", "--output_dir", "b"], "--output and --output_dir set the same thing"),
    ],
)
def test_the_command_refuses_unknown_or_doubled_flags(tmp_path, captured, capsys, flags, message):
    with pytest.raises(SystemExit):
        main([*TRAIN, "--epochs", "1", "--output", str(tmp_path / "o"), *flags])
    assert message in capsys.readouterr().err and not captured


def test_the_command_help_lists_the_training_arguments(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "Any transformers.TrainingArguments field is accepted" in out
    assert "--report_to tensorboard" in out and "gradient_accumulation_steps," in out


def test_the_command_trains_with_passed_arguments(tmp_path):
    main([*TRAIN, "--epochs", "1", "--max-steps", "2", "--gradient_accumulation_steps", "2",
          "--no-save-model", "--output", str(tmp_path / "o")])  # fmt: skip
    used = json.loads((tmp_path / "o" / "metrics.json").read_text())["training_args"]
    assert used["max_steps"] == 2 and used["gradient_accumulation_steps"] == 2
    assert not (tmp_path / "o" / "model").exists()
