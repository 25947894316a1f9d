"""Dynamic DRoP inside a transformers Trainer (hf_drop.train.dynamic): every epoch's rows, the
quotas from each evaluation, the record, resumption, two processes and every refusal."""

import json
import os
import subprocess
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from conftest import launch_two
from sklearn.datasets import load_digits
from torch import nn
from transformers import Trainer, TrainingArguments

from hf_drop.core import rules as R
from hf_drop.core.quotas import budget, proportional_quotas
from hf_drop.core.uncertainty import shrink_errors
from hf_drop.train.dynamic import RECORD_FILE, DynamicDRoPCallback, DynamicDRoPSampler

HERE = Path(__file__).resolve().parent


def digits_rows(seed: int = 0, drop_class: int | None = None):
    """Digits as 64 features: (train, eval) Datasets with x, label and the row index."""
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    train, val = order[:1200], order[1200:]
    if drop_class is not None:
        val = val[y[val] != drop_class]
    names = [str(k) for k in range(10)]

    def rows(index):
        return datasets.Dataset.from_dict(
            {"x": x[index].tolist(), "label": y[index].tolist(), "idx": list(range(len(index)))},
            features=datasets.Features({
                "x": datasets.Sequence(datasets.Value("float32")),
                "label": datasets.ClassLabel(names=names),
                "idx": datasets.Value("int64"),
            }),
        )  # fmt: skip

    return rows(train), rows(val)


class Linear(nn.Module):
    """A softmax regression that remembers which training rows each step saw, and their
    losses."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(64, 10)
        self.seen: list[list[int]] = []
        self.row_losses: list[tuple[list[int], list[float]]] = []

    def forward(self, x, labels=None, idx=None):
        logits = self.fc(x)
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        if self.training and idx is not None:
            self.seen.append(idx.tolist())
            each = nn.functional.cross_entropy(logits, labels, reduction="none")
            self.row_losses.append((idx.tolist(), each.detach().tolist()))
        return {"loss": loss, "logits": logits}


def collate(rows):
    return {
        "x": torch.tensor([r["x"] for r in rows]),
        "labels": torch.tensor([r["label"] for r in rows]),
        "idx": torch.tensor([r["idx"] for r in rows]),
    }


def trainer_for(out, train, val, epochs=4, **args):
    settings = dict(
        num_train_epochs=epochs, per_device_train_batch_size=32, learning_rate=0.5,
        report_to="none", save_strategy="no", logging_strategy="epoch", use_cpu=True,
        disable_tqdm=True, remove_unused_columns=False, label_names=["labels"], seed=0,
    )  # fmt: skip
    arguments = TrainingArguments(str(out), **{**settings, **args})
    return Trainer(
        model=Linear(), args=arguments, train_dataset=train, eval_dataset=val,
        data_collator=collate,
    )  # fmt: skip


def test_the_sampler_draws_the_quotas_the_same_way_on_every_process():
    labels = np.repeat(np.arange(3), [50, 30, 20])
    sampler = DynamicDRoPSampler(labels, 40, seed=7)
    counts = np.array([10, 20, 10])
    rows = sampler.plan(3, counts)
    assert len(sampler) == 40 and list(sampler) == rows.tolist()
    assert np.bincount(labels[rows], minlength=3).tolist() == [10, 20, 10]
    assert len(set(rows.tolist())) == 40
    other = DynamicDRoPSampler(labels, 40, seed=7)  # another process
    assert other.plan(3, counts).tolist() == rows.tolist()
    assert other.plan(4, counts).tolist() != rows.tolist()  # a fresh sample every epoch
    blind = other.plan(5, None)
    assert len(blind) == 40 and len(set(blind.tolist())) == 40


def test_each_epoch_trains_on_the_quotas_of_the_last_evaluation(tmp_path):
    train, val = digits_rows()
    drop = DynamicDRoPCallback(train, 0.5, anneal=0.25, smoothing=0.0)
    trainer = drop.attach(trainer_for(tmp_path / "out", train, val, epochs=4))
    trainer.train()
    size = budget(len(train), 0.5)
    history = drop.history
    assert [e["epoch"] for e in history] == [0, 1, 2, 3]
    labels = np.asarray(train["label"])
    sizes = np.bincount(labels, minlength=10)
    seen = trainer.model.seen
    steps = -(-size // 32)
    assert len(seen) == 4 * steps  # every epoch one length: the Trainer's plan holds
    for entry in history:
        rows = np.concatenate([np.asarray(b) for b in seen[entry["epoch"] * steps :][:steps]])
        assert len(rows) == entry["kept"] == size and len(set(rows.tolist())) == size
        assert np.bincount(labels[rows], minlength=10).tolist() == entry["quotas"]
    # epoch 0: no evaluation yet; 1-2: robust DRoP on the evaluation after the epoch before;
    # 3: annealing (a quarter of 4 epochs) back to the data's proportions
    proportional = proportional_quotas(sizes, 0.5, min_per_class=1).tolist()
    assert history[0]["quotas"] == proportional and history[0]["errors_before"] is None
    assert history[3]["quotas"] == proportional and "annealing" in history[3]["why"]
    for entry, previous in zip(history[1:3], history[:2], strict=True):
        assert entry["errors_before"] == previous["errors_after"]
        support = np.asarray(entry["errors_before"]["support"], dtype=float)
        errors = np.asarray(entry["errors_before"]["mistakes"]) / support
        used = shrink_errors(errors, support)[0]
        expected = R.DRoP().counts(R.QuotaInputs(sizes, 0.5, used, 1, [str(k) for k in range(10)]))
        assert entry["quotas"] == expected.tolist()
    assert sum(history[1]["errors_before"]["support"]) == len(val)
    record = json.loads((tmp_path / "out" / RECORD_FILE).read_text())
    assert record["epochs"] == json.loads(json.dumps(history))
    assert record["sample_passes"] == 4 * size and record["full_data_sample_passes"] == 4 * 1200
    assert record["settings"]["quota"] == R.DRoP().spec(full=True)
    logged = [log for log in trainer.state.log_history if "drop/kept" in log]
    assert logged and logged[-1]["drop/sample_passes"] == 4 * size
    # the last evaluation's errors as a static subset: what DRoPFilter gives on them
    static = drop.static_filter().fit(train)
    last = history[-1]["errors_after"]
    support = np.asarray(last["support"], dtype=float)
    used = shrink_errors(np.asarray(last["mistakes"]) / support, support)[0]
    expected = R.DRoP().counts(R.QuotaInputs(sizes, 0.5, used, 1, [str(k) for k in range(10)]))
    assert static.quotas_.tolist() == expected.tolist() and len(static.apply(train)) == size


@pytest.mark.parametrize("quota", ["global", "proportional", "uniform"])
def test_the_baselines_sample_without_errors(tmp_path, quota):
    """Random dynamic (class-blind), proportional and uniform: the same harness, no error used."""
    train, val = digits_rows()
    drop = DynamicDRoPCallback(train, 0.3, quota=quota)
    drop.attach(trainer_for(tmp_path, train, val, epochs=2)).train()
    sizes = np.bincount(np.asarray(train["label"]), minlength=10)
    for entry in drop.history:
        assert entry["kept"] == budget(1200, 0.3)
        if quota == "global":
            assert entry["quotas"] is None
        else:
            rule = R.quota_rule(quota)
            expected = rule.counts(R.QuotaInputs(sizes, 0.3, None, 1, [str(k) for k in range(10)]))
            assert entry["quotas"] == expected.tolist()


def test_a_resumed_run_samples_what_the_uninterrupted_one_did(tmp_path):
    train, val = digits_rows()
    whole = DynamicDRoPCallback(train, 0.4)
    first = whole.attach(trainer_for(tmp_path / "whole", train, val, save_strategy="epoch"))
    first.train()
    # the same run, resumed from its checkpoint after epoch 2 (in a copy of its output_dir)
    import shutil

    again = tmp_path / "again"
    shutil.copytree(tmp_path / "whole", again)
    steps = 2 * -(-budget(1200, 0.4) // 32)
    for late in again.glob("checkpoint-*"):
        if int(late.name.split("-")[1]) > steps:
            shutil.rmtree(late)
    (again / RECORD_FILE).unlink()
    resumed = DynamicDRoPCallback(train, 0.4)
    second = resumed.attach(trainer_for(again, train, val, save_strategy="epoch"))
    second.train(resume_from_checkpoint=str(again / f"checkpoint-{steps}"))
    assert [e["quotas"] for e in resumed.history] == [e["quotas"] for e in whole.history]
    assert (
        json.loads((again / RECORD_FILE).read_text())["epochs"]
        == json.loads((tmp_path / "whole" / RECORD_FILE).read_text())["epochs"]
    )
    # the resumed epochs saw the very rows the uninterrupted run saw
    assert second.model.seen == first.model.seen[steps:]
    # other settings cannot resume that record
    other = DynamicDRoPCallback(train, 0.5)
    with pytest.raises(ValueError, match="other settings"):
        other.attach(trainer_for(again, train, val)).train(
            resume_from_checkpoint=str(again / f"checkpoint-{steps}")
        )


def test_every_setting_that_cannot_work_is_refused(tmp_path):
    train, val = digits_rows()
    with pytest.raises(TypeError, match="IterableDataset"):
        DynamicDRoPCallback(train.to_iterable_dataset(), 0.5)
    for density in (0, 1.5, True):
        with pytest.raises(ValueError, match="density"):
            DynamicDRoPCallback(train, density)
    with pytest.raises(ValueError, match="anneal"):
        DynamicDRoPCallback(train, 0.5, anneal=1.0)
    for bad in (-1, 0.5, True):
        with pytest.raises(ValueError, match="min_per_class"):
            DynamicDRoPCallback(train, 0.5, min_per_class=bad)
    with pytest.raises(ValueError, match="needs a score"):
        DynamicDRoPCallback(train, 0.5, quota="strategy")
    with pytest.raises(ValueError, match="label_column"):
        DynamicDRoPCallback(train, 0.5, label_column="nope")
    drop = DynamicDRoPCallback(train, 0.5)
    with pytest.raises(ValueError, match="evaluation set"):
        drop.attach(trainer_for(tmp_path, train, None))
    with pytest.raises(ValueError, match="1000 rows"):
        drop.attach(trainer_for(tmp_path, train.select(range(1000)), val))
    with pytest.raises(ValueError, match="max_steps"):
        DynamicDRoPCallback(train, 0.5).attach(
            trainer_for(tmp_path, train, val, max_steps=5)
        ).train()
    with pytest.raises(ValueError, match="whole"):
        DynamicDRoPCallback(train, 0.5).attach(
            trainer_for(tmp_path, train, val, epochs=1.5)
        ).train()
    # passed in callbacks= instead of attached: the Trainer would not sample through it
    plain = trainer_for(tmp_path, train, val)
    plain.add_callback(DynamicDRoPCallback(train, 0.5))
    with pytest.raises(ValueError, match="attach"):
        plain.train()
    # an evaluation set without a class the training set has
    train, val = digits_rows(drop_class=3)
    with pytest.raises(ValueError, match=r"no row of class\(es\) \['3'\]"):
        DynamicDRoPCallback(train, 0.5).attach(trainer_for(tmp_path, train, val)).train()
    # a resumed run whose checkpoint has no record
    plain = trainer_for(tmp_path / "plain", train, val, epochs=1, save_strategy="epoch")
    plain.train()
    checkpoint = next((tmp_path / "plain").glob("checkpoint-*"))
    resumed = DynamicDRoPCallback(train, 0.5).attach(
        trainer_for(tmp_path / "plain", train, val, epochs=2)
    )
    with pytest.raises(FileNotFoundError, match=RECORD_FILE):
        resumed.train(resume_from_checkpoint=str(checkpoint))


SCRIPT = """
import json, os, sys
sys.path.insert(0, {tests!r})
from test_dynamic_drop import digits_rows, trainer_for
from hf_drop.train.dynamic import DynamicDRoPCallback
train, val = digits_rows()
drop = DynamicDRoPCallback(train, 0.5, anneal=0.34)
trainer = drop.attach(trainer_for({out!r}, train, val, epochs=3))
trainer.train()
rank = int(os.environ.get("RANK", 0))
with open(os.path.join({out!r}, f"seen-{{rank}}.json"), "w") as f:
    json.dump({{"seen": trainer.model.seen, "history": drop.history}}, f)
"""


def run_on_two_processes(script: str, tmp_path: Path, out: Path) -> tuple[dict, dict]:
    """Run ``script`` (a template of ``tests`` and ``out``) under accelerate launch with 2 CPU
    processes; each process's ``seen-RANK.json`` in ``out``."""
    path = tmp_path / "run.py"
    path.write_text(script.format(tests=str(HERE), out=str(out)))
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(launch_two(str(path)), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    one, two = (json.loads((out / f"seen-{r}.json").read_text()) for r in (0, 1))
    return one, two


@pytest.mark.slow
def test_two_processes_train_on_the_same_rows_of_each_epoch(tmp_path):
    """Under accelerate launch with 2 processes: the same quotas and rows on both (errors come
    from the gathered evaluation), each process a disjoint part of every epoch's rows."""
    out = tmp_path / "out"
    one, two = run_on_two_processes(SCRIPT, tmp_path, out)
    assert one["history"] == two["history"] and len(one["history"]) == 3
    assert one["history"][1]["errors_before"] is not None
    assert sum(one["history"][1]["errors_before"]["support"]) == 597  # the whole eval set
    size = budget(1200, 0.5)
    steps = -(-size // 64)  # global batch: 2 x 32
    assert len(one["seen"]) == len(two["seen"]) == 3 * steps
    labels = np.asarray(digits_rows()[0]["label"])
    for epoch, entry in enumerate(one["history"]):
        part = slice(epoch * steps, (epoch + 1) * steps)
        a = [i for batch in one["seen"][part] for i in batch]
        b = [i for batch in two["seen"][part] for i in batch]
        both = set(a) | set(b)
        assert len(both) == size  # together, every row of the epoch
        assert np.bincount(labels[sorted(both)], minlength=10).tolist() == entry["quotas"]
    assert json.loads((out / "dynamic_drop.json").read_text())["epochs"] == one["history"]


def test_hf_drop_train_with_dynamic_drop_records_every_epoch(tmp_path, capsys):
    """``hf-drop train --dynamic_drop``: the epochs follow the steering split (one slice of the
    test split), the model is judged on the other slice, and metrics.json and the card say so."""
    from hf_drop.cli import main

    out = tmp_path / "run"
    main(["train", "--dataset", "digits", "--model", "test_resnet", "--epochs", "3",
          "--batch-size", "64", "--eval-dataset", "digits", "--eval-split", "test[:180]",
          "--dynamic_drop", "0.5", "--dynamic_eval_split", "test[180:]",
          "--dynamic_anneal", "0.34", "--output", str(out)])  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    plan = metrics["dynamic_drop"]
    assert [e["epoch"] for e in plan["epochs"]] == [0, 1, 2]
    assert plan["settings"]["density"] == 0.5 and plan["settings"]["quota"].startswith("drop(")
    rows = metrics["train_rows"]
    assert all(e["kept"] == budget(rows, 0.5) for e in plan["epochs"])
    assert plan["sample_passes"] == 3 * budget(rows, 0.5)
    assert plan["epochs"][1]["errors_before"] is not None  # steered by the epoch before
    steered = sum(plan["epochs"][1]["errors_before"]["support"])
    assert (
        metrics["steer_data"]["split"] == "test[180:]" and metrics["steer_data"]["rows"] == steered
    )
    assert metrics["eval_data"]["split"] == "test[:180]" and metrics["eval_rows"] == 180
    assert "annealing" in plan["epochs"][2]["why"]
    card = (out / "model" / "README.md").read_text()
    assert "dynamic DRoP: every epoch trained on" in card and "50% fewer than full data" in card
    # refusals: no steering split, the steering split is the judged one, compute_matched
    for extra, message in (
        ([], "--dynamic_eval_split"),
        (["--dynamic_eval_split", "test[:180]"], "the steering split is the evaluation split"),
        (["--dynamic_eval_split", "test[180:]", "--compute-matched"], "compute_matched"),
    ):
        with pytest.raises(SystemExit):
            main(["train", "--dataset", "digits", "--model", "test_resnet", "--epochs", "1",
                  "--eval-dataset", "digits", "--eval-split", "test[:180]", "--dynamic_drop",
                  "0.5", *extra, "--output", str(tmp_path / "refused")])  # fmt: skip
        assert message in capsys.readouterr().err
        assert not (tmp_path / "refused").exists()


def test_smoothing_averages_each_class_error_over_the_evaluations(tmp_path):
    """smoothing s: the quotas of epoch t use s * (the error before) + (1 - s) * the last one."""
    train, val = digits_rows()
    drop = DynamicDRoPCallback(train, 0.5, anneal=0.0, smoothing=0.5)
    drop.attach(trainer_for(tmp_path, train, val, epochs=3)).train()
    first, second = drop.history[1]["errors_before"], drop.history[2]["errors_before"]
    raw = [np.asarray(e["mistakes"]) / np.asarray(e["support"]) for e in (first, second)]
    np.testing.assert_allclose(first["smoothed"], raw[0])  # nothing before the first
    np.testing.assert_allclose(second["smoothed"], 0.5 * raw[0] + 0.5 * raw[1])
    sizes = np.bincount(np.asarray(train["label"]), minlength=10)
    support = np.asarray(second["support"], dtype=float)
    used = shrink_errors(np.asarray(second["smoothed"]), support)[0]
    expected = R.DRoP().counts(R.QuotaInputs(sizes, 0.5, used, 1, [str(k) for k in range(10)]))
    assert drop.history[2]["quotas"] == expected.tolist()
    assert json.loads((tmp_path / RECORD_FILE).read_text())["settings"]["smoothing"] == 0.5
    with pytest.raises(ValueError, match="smoothing"):
        DynamicDRoPCallback(train, 0.5, smoothing=1.0)
