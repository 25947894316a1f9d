"""The data arguments of ``hf-drop probe`` and ``hf-drop train``: image sizes, the validation
split, ``--max_train_samples``, dataset paths, and what a model was judged on."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from hf_drop.cli import main
from hf_drop.data.sources import load_source, recorded_dataset, sample_rows, select_split
from hf_drop.data.splits import stratified_sample
from hf_drop.modeling.images import describe_sizes
from hf_drop.modeling.sizes import parse_image_size
from hf_drop.probe import ProbeConfig, ProbeResult

CLASSES = ("cat", "dog", "fox", "owl")


def imagefolder(root: Path, splits: dict[str, int], size=lambda rng: (8, 8)) -> Path:
    """An imagefolder of grey PNGs, ``splits[name]`` per class; ``load_dataset`` reads it class
    by class, so its splits are sorted by class."""
    rng = np.random.default_rng(0)
    for split, per_class in splits.items():
        for k, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                height, width = size(rng)
                pixels = np.full((height, width), 50 * k, np.uint8)
                pixels += rng.integers(0, 40, (height, width), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def run(*argv) -> dict[str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in argv])
        except SystemExit as exit:
            if exit.code not in (0, None):  # the error line, without progress bars
                error = [line for line in err.getvalue().splitlines() if ": error: " in line]
                raise ValueError(error[-1] if error else err.getvalue()) from None
    return {"out": out.getvalue(), "err": err.getvalue()}


PROBE = ("--model", "test_resnet", "--epochs", "1", "--batch-size", "64")


@pytest.fixture(scope="module")
def sorted_probe(tmp_path_factory):
    """A class-sorted imagefolder (30 train and 10 test images per class), probed on 40 of its
    training rows, from inside its parent folder (a relative --dataset), then pruned."""
    root = tmp_path_factory.mktemp("sorted")
    imagefolder(root / "pets", {"train": 30, "test": 10})
    previous = os.getcwd()
    os.chdir(root)
    try:
        logs = run("probe", "--dataset", "pets", *PROBE, "--max_train_samples", "40",
                   "--seed", "3", "--output", "probe")  # fmt: skip
        run("prune", "--probe", "probe", "--density", "0.5", "--output", "subset")
    finally:
        os.chdir(previous)
    return root, logs


# --- --max_train_samples ------------------------------------------------------------------------


def test_stratified_sample_keeps_the_class_proportions_of_a_class_sorted_split():
    labels = np.repeat(np.arange(4), [60, 30, 20, 10])
    data = datasets.Dataset.from_dict(
        {"label": labels.tolist()},
        features=datasets.Features({"label": datasets.ClassLabel(names=list(CLASSES))}),
    )
    rows = stratified_sample(data, 24, seed=0)
    assert np.bincount(labels[rows], minlength=4).tolist() == [12, 6, 4, 2]
    assert np.all(np.diff(rows) > 0), "in the dataset's order"
    assert np.array_equal(rows, stratified_sample(data, 24, seed=0)), "a pure function of seed"
    assert not np.array_equal(rows, stratified_sample(data, 24, seed=1))
    assert len(stratified_sample(data, 500)) == 120, "more than it has: every row"


@pytest.mark.slow  # a probe
def test_max_train_samples_samples_every_class_and_records_how(sorted_probe):
    root, logs = sorted_probe
    result = ProbeResult.load(root / "probe")
    source = result.source
    assert source["max_train_samples"] == 40
    assert source["sampling"] == {"method": "stratified", "seed": 3, "label_column": "label"}
    labels = np.asarray(result.scores["label"][:])
    assert np.bincount(labels, minlength=4).tolist() == [10, 10, 10, 10], "the first 40: 1 class"
    assert "training on 40 of the 120 rows of train" in logs["err"]


@pytest.mark.slow  # a probe
def test_prune_rebuilds_the_probes_sample_from_another_working_directory(sorted_probe, tmp_path):
    root, _ = sorted_probe
    previous = os.getcwd()
    os.chdir(tmp_path)  # 'pets' is relative to root: not found from here
    try:
        run("prune", "--probe", root / "probe", "--density", "0.5", "--output", "subset")
    finally:
        os.chdir(previous)
    here = datasets.load_from_disk(str(tmp_path / "subset"))
    there = datasets.load_from_disk(str(root / "subset"))
    raw = datasets.Image(decode=False)
    assert [r["bytes"] for r in here.cast_column("image", raw)["image"]] == [
        r["bytes"] for r in there.cast_column("image", raw)["image"]
    ]
    source = json.loads((tmp_path / "subset" / "pruning.json").read_text())["source"]
    assert source["name"] == "pets" and "path" not in source, "no absolute path in the record"
    assert source["sampling"]["seed"] == 3


@pytest.mark.slow  # a probe
def test_prune_says_to_pass_dataset_when_the_probes_data_is_gone(sorted_probe, tmp_path):
    root, _ = sorted_probe
    probe = tmp_path / "probe"
    import shutil

    shutil.copytree(root / "probe", probe)
    record = json.loads((probe / "probe_config.json").read_text())
    record["source"]["path"] = str(tmp_path / "moved" / "pets")
    (probe / "probe_config.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="Pass --dataset PATH") as caught:
        run("prune", "--probe", probe, "--density", "0.5", "--output", tmp_path / "subset")
    assert "not found from" in str(caught.value)
    assert not (tmp_path / "subset").exists()


def test_records_of_first_rows_still_rebuild_the_first_rows():
    data = load_source("digits")["train"]
    old = sample_rows(data, 50, None, "max_train_samples")
    assert old["label"][:] == data.select(range(50))["label"][:], "the rows they were made on"
    with pytest.raises(ValueError, match=r"unknown sampling .* upgrade"):
        sample_rows(data, 50, {"method": "weighted", "seed": 0})
    with pytest.raises(ValueError, match="has no seed"):
        sample_rows(data, 50, {"method": "stratified", "label_column": "label"})


def test_a_reproduce_command_of_a_first_rows_probe_slices_the_split():
    from hf_drop.cli.reproduce import probe_command

    source = {"name": "digits", "split": "train", "max_train_samples": 400}
    probe = {"command": "hf-drop probe --dataset digits --model test_resnet --epochs 1 "
             "--max_train_samples 400 --output /tmp/x"}  # fmt: skip
    command = probe_command(source, probe)
    assert "--split 'train[:400]'" in command and "max" not in command
    stratified = dict(source, sampling={"method": "stratified", "seed": 0, "label_column": "label"})
    assert "--max-train-samples 400" in probe_command(stratified, probe)


def test_a_slice_that_drops_whole_classes_warns(tmp_path):
    from hf_drop.data.sources import missing_classes

    root = imagefolder(tmp_path / "pets", {"train": 5})
    data = load_source(str(root))
    half = select_split(data, "train[:50%]")
    assert missing_classes(data, "train[:50%]", half, "label") == ["fox", "owl"]
    assert missing_classes(data, "train", data["train"], "label") == []


def test_recorded_dataset_falls_back_to_the_absolute_path(tmp_path):
    assert recorded_dataset({"name": "digits"}) == "digits"
    assert recorded_dataset({"name": "a/hub-id"}) == "a/hub-id", "no path: a Hub name"
    (tmp_path / "pets").mkdir()
    found = {"name": "not/here/pets", "path": str(tmp_path / "pets")}
    assert recorded_dataset(found) == str(tmp_path / "pets")
    with pytest.raises(FileNotFoundError, match="not found from"):
        recorded_dataset({"name": "pets", "path": str(tmp_path / "gone")})


# --- image sizes --------------------------------------------------------------------------------


def test_image_size_spellings():
    assert parse_image_size("224") == (224, 224)
    assert parse_image_size("224x160") == (224, 160)
    assert parse_image_size(32) == (32, 32)
    assert parse_image_size((8, 6)) == (8, 6)
    assert parse_image_size(None) is None
    assert ProbeConfig("test_resnet", image_size="28").image_size == "28x28"
    for bad in ("0", "2x3x4", "big", -1, True, (8, 0)):
        with pytest.raises(ValueError, match="image_size"):
            ProbeConfig("test_resnet", image_size=bad)


def test_describe_sizes_stays_short_for_thousands_of_sizes():
    sizes = {(w, h): [w, 1] for w in range(1, 60) for h in range(1, 60)}
    text = describe_sizes(sizes)
    assert len(text) < 200 and "and 3478 other sizes (3478 images)" in text


def mixed(rng):
    return tuple(int(n) for n in rng.integers(6, 30, size=2))


@pytest.mark.slow  # a probe
def test_mixed_sizes_a_short_error_and_no_folder_left_then_image_size_trains(tmp_path):
    data = imagefolder(tmp_path / "photos", {"train": 12, "test": 4}, size=mixed)
    out = tmp_path / "runs" / "probe"
    with pytest.raises(ValueError) as caught:
        run("probe", "--dataset", data, *PROBE, "--output", out)
    message = str(caught.value)
    assert "pass --image_size HxW" in message and len(message) < 800
    assert not (tmp_path / "runs").exists(), "no folder of hf-drop's left behind"
    mine = tmp_path / "mine"
    mine.mkdir()
    with pytest.raises(ValueError, match="--image_size"):
        run("probe", "--dataset", data, *PROBE, "--output", mine)
    assert mine.is_dir() and not any(mine.iterdir()), "the user's empty folder stays, empty"

    run("probe", "--dataset", data, *PROBE, "--image_size", "12x10", "--output", out)
    assert ProbeResult.load(out).record["config"]["image_size"] == "12x10"


@pytest.mark.slow  # a training run
def test_train_resizes_to_image_size_and_refuses_mixed_sizes_without(tmp_path):
    data = imagefolder(tmp_path / "photos", {"train": 6, "test": 3}, size=mixed)
    args = ("train", "--dataset", data, "--eval-dataset", data, "--model", "test_resnet",
            "--epochs", "1")  # fmt: skip
    with pytest.raises(ValueError, match="pass --image_size HxW"):
        run(*args, "--output", tmp_path / "runs" / "train")
    assert not (tmp_path / "runs").exists()
    run(*args, "--image-size", "10", "--output", tmp_path / "train")
    metrics = json.loads((tmp_path / "train" / "metrics.json").read_text())
    assert metrics["preprocess"]["image_size"] == [10, 10]
    assert metrics["config"]["image_size"] == "10x10"


# --- the validation split and the evaluation data -----------------------------------------------


@pytest.mark.slow  # a probe and a training run
def test_the_probe_names_its_validation_split_and_train_evaluates_on_the_held_out_one(tmp_path):
    data = imagefolder(tmp_path / "pets", {"train": 6, "validation": 3, "test": 4})
    logs = run("probe", "--dataset", data, *PROBE, "--output", tmp_path / "probe")
    assert "validating on split 'validation'" in logs["err"]
    result = ProbeResult.load(tmp_path / "probe")
    splits = result.splits()
    assert splits["val_split"] == "validation" and splits["report_split"] == "test"
    assert splits["chosen_by"] == "default"
    assert result.source["validation"]["val_split"] == "validation", "named in the record"

    run("train", "--dataset", data, "--eval-from-probe", tmp_path / "probe", "--model",
        "test_resnet", "--epochs", "1", "--output", tmp_path / "train")  # fmt: skip
    metrics = json.loads((tmp_path / "train" / "metrics.json").read_text())
    judged = metrics["eval_data"]
    assert judged["split"] == "test" and judged["rows"] == 16 and judged["name"] == str(data)
    assert judged["fingerprint"] and judged["content"]["rows"] == 16
    card = (tmp_path / "train" / "model" / "README.md").read_text()
    assert "On 16 held-out images: split `test` of `pets`" in card
    assert str(tmp_path) not in card, "no local absolute path in the card"
    from hf_drop.evaluation.record import TrainRecord

    assert TrainRecord.read(tmp_path / "train").eval_data["split"] == "test"


@pytest.mark.slow  # a probe
def test_eval_from_probe_refuses_clearly_without_a_held_out_split(tmp_path):
    data = imagefolder(tmp_path / "pets", {"train": 8})
    logs = run("probe", "--dataset", data, *PROBE, "--val-fraction", "0.25",
               "--output", tmp_path / "probe")  # fmt: skip
    assert "carved out of the training rows of 'train'" in logs["err"]
    with pytest.raises(ValueError, match=r"no other held-out split .* pass --eval-dataset"):
        run("train", "--dataset", data, "--eval-from-probe", tmp_path / "probe", "--model",
            "test_resnet", "--epochs", "1", "--output", tmp_path / "train")  # fmt: skip
    assert not (tmp_path / "train").exists()


def test_eval_from_probe_reads_probes_recorded_before_report_split():
    from hf_drop.cli.train import _legacy_report

    assert _legacy_report({"val_split": "test", "report_indices": [1], "val_indices": [0]}) == (
        "test"
    )
    assert _legacy_report({"val_split": "validation"}) == "test"
    assert _legacy_report({"val_split": "train", "train_indices": [0]}) == "test"
    assert _legacy_report({"val_split": "test[:50%]"}) is None


@pytest.mark.slow  # a probe
def test_published_probe_scores_hold_no_local_absolute_path(sorted_probe, tmp_path):
    from hf_drop.hub import export_scores

    root, _ = sorted_probe
    assert ProbeResult.load(root / "probe").source["path"] == str(root / "pets")
    export_scores(root / "probe", tmp_path / "scores")
    card = (tmp_path / "scores" / "README.md").read_text()
    assert "name: pets" in card and str(root) not in card


def test_a_run_recorded_before_image_size_has_the_same_settings(tmp_path):
    from hf_drop.evaluation.record import TrainRecord

    record = {"accuracy": 0.5, "worst_class_accuracy": 0.1, "worst_class": "cat",
              "class_accuracy_std": 0.1, "train_rows": 10, "epochs": 1, "density": None,
              "config": {"seed": 0, "model": "test_resnet"}, "provenance": None}  # fmt: skip
    settings = []
    for name, config in (
        ("old", {}),
        ("new", {"image_size": None}),
        ("big", {"image_size": "9x9"}),
    ):
        (tmp_path / name).mkdir()
        written = dict(record, config={**record["config"], **config}, format_version=1)
        (tmp_path / name / "metrics.json").write_text(json.dumps(written))
        settings.append(TrainRecord.read(tmp_path / name).settings())
    assert settings[0] == settings[1] != settings[2]


@pytest.mark.slow  # a probe
def test_an_indices_export_and_the_reproduce_command_rebuild_the_sample(sorted_probe, tmp_path):
    from hf_drop.cli.reproduce import reproduce_commands
    from hf_drop.hub import export_saved, load_pruned

    root, _ = sorted_probe
    export_saved(root / "subset", tmp_path / "export", mode="indices")
    previous = os.getcwd()
    os.chdir(root)  # the card names the source as the probe was given it: 'pets'
    try:
        loaded = load_pruned(tmp_path / "export")  # the source reloaded, sampled, checked
    finally:
        os.chdir(previous)
    subset = datasets.load_from_disk(str(root / "subset"))
    pixels = [np.asarray(image) for image in loaded["image"]]
    assert all(
        np.array_equal(a, np.asarray(b)) for a, b in zip(pixels, subset["image"], strict=True)
    )
    record = json.loads((root / "subset" / "pruning.json").read_text())
    probe = reproduce_commands(record)[0]
    assert "--max-train-samples 40" in probe and "--seed 3" in probe


@pytest.mark.slow  # a training run
def test_train_max_train_samples_samples_by_class_and_records_it(sorted_probe, tmp_path):
    root, _ = sorted_probe
    args = ("train", "--dataset", root / "pets", "--eval-dataset", root / "pets", "--model",
            "test_resnet", "--epochs", "1", "--max_train_samples", "20", "--seed", "1")  # fmt: skip
    logs = run(*args, "--output", tmp_path / "train")
    assert "training on 20 of the 120 rows of train" in logs["err"]
    metrics = json.loads((tmp_path / "train" / "metrics.json").read_text())
    assert metrics["train_rows"] == 20 and metrics["train_data"]["rows"] == 20
    assert metrics["train_data"]["sampling"] == {
        "method": "stratified", "seed": 1, "label_column": "label"}  # fmt: skip
    card = (tmp_path / "train" / "model" / "README.md").read_text()
    assert "a sample of split `train` with its class proportions" in card
    with pytest.raises(ValueError, match="a pruned subset"):
        run("train", "--dataset", root / "subset", "--eval-dataset", root / "pets", "--model",
            "test_resnet", "--epochs", "1", "--max_train_samples", "5",
            "--output", tmp_path / "refused")  # fmt: skip
    assert not (tmp_path / "refused").exists()
