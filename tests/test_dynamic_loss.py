"""Dynamic DRoP's loss-ranked choice (``within="loss"``, hf_drop.train.losses): every loss
matched to its row, InfoBatch's choice and rescaling, resumption, two processes, refusals."""

import json
import shutil

import numpy as np
import pytest
import torch
from test_dynamic_drop import digits_rows, run_on_two_processes, trainer_for

from hf_drop.core.quotas import budget
from hf_drop.train.dynamic import LOSSES_FILE, RECORD_FILE, DynamicDRoPCallback
from hf_drop.train.losses import choose_by_loss


@pytest.mark.parametrize("seed", range(25))
def test_the_choice_keeps_hard_rows_first_and_weighs_the_well_learned(seed):
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 4, size=200)
    sizes = np.bincount(groups, minlength=4)
    counts = np.array([rng.integers(0, n + 1) for n in sizes])
    losses = rng.exponential(size=200)
    losses[rng.random(200) < 0.1] = np.nan  # never trained on: hard
    choice = choose_by_loss(groups, counts, losses, np.random.default_rng(1))
    rows = choice.rows
    assert len(rows) == len(np.unique(rows)) == counts.sum()
    assert np.bincount(groups[rows], minlength=4).tolist() == counts.tolist()
    for g in range(4):
        members = np.flatnonzero(groups == g)
        known = losses[members][~np.isnan(losses[members])]
        hard = members[np.isnan(losses[members]) | (losses[members] >= known.mean())]
        easy = np.setdiff1d(members, hard)
        kept = np.intersect1d(rows, members)
        assert choice.hard[g] == len(hard) and choice.well_learned[g] == len(easy)
        if counts[g] >= len(hard):  # every hard row, and well-learned ones weighed up
            assert set(hard) <= set(kept)
            kept_easy = np.intersect1d(kept, easy)
            if len(kept_easy):
                np.testing.assert_allclose(choice.weights[kept_easy], len(easy) / len(kept_easy))
        else:  # hard rows only
            assert set(kept) <= set(hard)
    untouched = np.setdiff1d(np.arange(200), rows)
    assert np.all(choice.weights[untouched] == 1)
    again = choose_by_loss(groups, counts, losses, np.random.default_rng(1))
    assert np.array_equal(again.rows, rows)  # by its generator


@pytest.mark.parametrize("quota", ["drop", "global"])
def test_every_loss_is_its_rows_and_each_epoch_keeps_the_hard_rows(tmp_path, quota):
    """The losses the callback holds are the ones the model computed for those very rows; each
    epoch after the first keeps every hard row of a class (or, class-blind, of the set) when its
    quota allows, and its quotas are the rule's."""
    train, val = digits_rows()
    drop = DynamicDRoPCallback(train, 0.5, quota=quota, within="loss")
    trainer = drop.attach(trainer_for(tmp_path, train, val, epochs=3))
    trainer.train()
    model = trainer.model
    labels = np.asarray(train["label"])
    groups = labels if quota == "drop" else np.zeros(len(labels), np.int64)
    size = budget(len(train), 0.5)
    steps = -(-size // 32)
    losses = np.full(len(train), np.nan)  # as the model saw them, epoch by epoch
    for entry in drop.history:
        epoch = entry["epoch"]
        batches = model.row_losses[epoch * steps : (epoch + 1) * steps]
        rows = np.array([r for idx, _ in batches for r in idx])
        assert len(rows) == len(set(rows.tolist())) == size
        if quota == "drop":
            assert np.bincount(labels[rows], minlength=10).tolist() == entry["quotas"]
        if quota == "global":  # the record says how the class-blind rows were chosen
            assert entry["why"] == "class-blind choice by loss"
        counts = entry["quotas"] or [size]
        for g, count in enumerate(counts):
            members = np.flatnonzero(groups == g)
            known = losses[members]
            seen = ~np.isnan(known)
            hard = members[~seen | (known >= (known[seen].mean() if seen.any() else np.inf))]
            assert entry["hard_rows"][g] == len(hard)
            if count >= len(hard):
                assert set(hard) <= set(rows.tolist())
        for idx, values in batches:
            losses[idx] = values
    np.testing.assert_allclose(drop.losses, losses, rtol=1e-5, atol=1e-6)
    assert json.loads((tmp_path / RECORD_FILE).read_text())["settings"]["within"] == "loss"


def test_rescale_weighs_each_kept_well_learned_row(tmp_path):
    train, val = digits_rows()
    drop = DynamicDRoPCallback(train, 0.5, within="loss", rescale=True)
    trainer = drop.attach(trainer_for(tmp_path, train, val, epochs=2))
    trainer.train()
    assert drop.weights.max() > 1  # the second epoch kept well-learned rows, weighed up
    # the training loss: the batch mean of each row's weighed cross-entropy
    rows = np.array([5, 17, 300, 999])
    batch = {
        "x": torch.tensor(np.asarray(train.select(rows)["x"]), dtype=torch.float32),
        "labels": torch.tensor(np.asarray(train.select(rows)["label"])),
        "idx": torch.tensor(rows),
    }
    drop.weights[rows] = [1.0, 2.0, 3.5, 1.0]
    drop._fetched.fetched.extend(rows.tolist())
    model = trainer.model.train()
    loss = trainer.compute_loss(model, batch)
    logits = model.fc(batch["x"])
    each = torch.nn.functional.cross_entropy(logits, batch["labels"], reduction="none")
    expected = (torch.tensor([1.0, 2.0, 3.5, 1.0]) * each).mean()
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
    assert drop.losses.shape == (len(train),) and not drop._fetched.fetched


def test_a_resumed_loss_ranked_run_trains_the_rows_of_the_uninterrupted_one(tmp_path):
    """Resumed mid-epoch: the epoch is planned on the losses it was planned on, and the losses
    of its steps before the checkpoint count at its end, as they did."""
    train, val = digits_rows()
    whole = DynamicDRoPCallback(train, 0.4, within="loss", rescale=True)
    first = whole.attach(
        trainer_for(tmp_path / "whole", train, val, epochs=3, save_strategy="steps", save_steps=8)
    )
    first.train()
    steps_per_epoch = -(-budget(1200, 0.4) // 32)  # 15
    step = 24  # mid-epoch 2
    again = tmp_path / "again"
    shutil.copytree(tmp_path / "whole", again)
    for late in again.glob("checkpoint-*"):
        if int(late.name.split("-")[1]) > step:
            shutil.rmtree(late)
    assert (again / f"checkpoint-{step}" / LOSSES_FILE).exists() and step % steps_per_epoch
    resumed = DynamicDRoPCallback(train, 0.4, within="loss", rescale=True)
    second = resumed.attach(
        trainer_for(again, train, val, epochs=3, save_strategy="steps", save_steps=8)
    )
    second.train(resume_from_checkpoint=str(again / f"checkpoint-{step}"))
    assert second.model.seen == first.model.seen[step:]
    np.testing.assert_allclose(resumed.losses, whole.losses, rtol=1e-5)
    assert resumed.history == json.loads(json.dumps(whole.history))
    (again / f"checkpoint-{step}" / LOSSES_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=LOSSES_FILE):
        DynamicDRoPCallback(train, 0.4, within="loss", rescale=True).attach(
            trainer_for(again, train, val, epochs=3)
        ).train(resume_from_checkpoint=str(again / f"checkpoint-{step}"))


def test_what_loss_ranking_cannot_do_is_refused(tmp_path):
    train, val = digits_rows()
    with pytest.raises(ValueError, match="within must be 'random' or 'loss'"):
        DynamicDRoPCallback(train, 0.5, within="el2n")
    with pytest.raises(ValueError, match="needs within='loss'"):
        DynamicDRoPCallback(train, 0.5, rescale=True)
    with pytest.raises(ValueError, match="dataloader_num_workers=0"):
        DynamicDRoPCallback(train, 0.5, within="loss").attach(
            trainer_for(tmp_path, train, val, dataloader_num_workers=2)
        )
    custom = trainer_for(tmp_path, train, val)
    custom.compute_loss_func = lambda outputs, labels, num_items_in_batch=None: outputs["loss"]
    with pytest.raises(ValueError, match="compute_loss_func"):
        DynamicDRoPCallback(train, 0.5, within="loss", rescale=True).attach(custom)
    smoothed = trainer_for(tmp_path, train, val)
    smoothed.args.label_smoothing_factor = 0.1
    with pytest.raises(ValueError, match="label_smoothing_factor"):
        DynamicDRoPCallback(train, 0.5, within="loss", rescale=True).attach(smoothed)


SCRIPT = """
import json, os, sys
sys.path.insert(0, {tests!r})
import numpy as np
from test_dynamic_drop import digits_rows, trainer_for
from hf_drop.train.dynamic import DynamicDRoPCallback
train, val = digits_rows()
drop = DynamicDRoPCallback(train, 0.5, within="loss", rescale=True)
trainer = drop.attach(trainer_for({out!r}, train, val, epochs=3))
trainer.train()
rank = int(os.environ.get("RANK", 0))
with open(os.path.join({out!r}, f"seen-{{rank}}.json"), "w") as f:
    json.dump({{"seen": trainer.model.row_losses, "history": drop.history,
                "losses": drop.losses.tolist()}}, f)
"""


@pytest.mark.slow
def test_two_processes_choose_the_same_rows_by_the_losses_of_both(tmp_path):
    """Under accelerate launch with 2 processes: each process's losses reach both, so both plan
    the same rows; together they train each of them once per epoch."""
    one, two = run_on_two_processes(SCRIPT, tmp_path, tmp_path / "out")
    assert one["history"] == two["history"] and len(one["history"]) == 3
    np.testing.assert_array_equal(one["losses"], two["losses"])
    size = budget(1200, 0.5)
    steps = -(-size // 64)
    expected = np.full(1200, np.nan)
    for epoch in range(3):
        part = slice(epoch * steps, (epoch + 1) * steps)
        batches = one["seen"][part] + two["seen"][part]
        rows = {r for idx, _ in batches for r in idx}
        assert len(rows) == size
        for idx, values in batches:
            expected[idx] = values
    np.testing.assert_allclose(one["losses"], expected, rtol=1e-5, atol=1e-6)


def test_hf_drop_train_chooses_by_loss_and_says_so(tmp_path):
    """``hf-drop train --dynamic_within loss --dynamic_rescale``: hf-drop's own image models
    (timm) give their logits; metrics.json and the card record the choice."""
    from hf_drop.cli import main

    out = tmp_path / "run"
    main(["train", "--dataset", "digits", "--model", "test_resnet", "--epochs", "2",
          "--batch-size", "64", "--eval-dataset", "digits", "--eval-split", "test[:180]",
          "--dynamic_drop", "0.5", "--dynamic_eval_split", "test[180:]",
          "--dynamic_within", "loss", "--dynamic_rescale", "--output", str(out)])  # fmt: skip
    plan = json.loads((out / "metrics.json").read_text())["dynamic_drop"]
    assert plan["settings"]["within"] == "loss" and plan["settings"]["rescale"] is True
    first, second = plan["epochs"]
    assert sum(first["well_learned_rows"]) == 0  # nothing trained yet: every row is hard
    assert 0 < sum(second["well_learned_rows"]) < plan["settings"]["train_rows"]
    card = (out / "model" / "README.md").read_text()
    assert "by their last training loss (hard rows first, kept well-learned rows' losses" in card
    with pytest.raises(ValueError, match="dynamic_within apply with dynamic_drop only"):
        from hf_drop.train import TrainConfig

        TrainConfig(model="test_resnet", dynamic_within="loss")


def test_a_steering_split_of_another_image_size_is_refused_before_training(tmp_path):
    """The steering split is evaluated every epoch: its images must stack like the others."""
    from hf_drop.data.sources import digits_splits
    from hf_drop.train import TrainConfig, train_and_evaluate

    data = digits_splits()
    test = data["test"]
    steer = test.select(range(180, 360)).map(lambda r: {"image": r["image"].resize((10, 10))})
    config = TrainConfig(model="test_resnet", epochs=1, dynamic_drop=0.5)
    with pytest.raises(ValueError, match=r"steering dataset: .*10x10.*pass --image_size"):
        train_and_evaluate(
            data["train"], test.select(range(180)), config, tmp_path / "run", steer_dataset=steer
        )
    assert not (tmp_path / "run").exists()
