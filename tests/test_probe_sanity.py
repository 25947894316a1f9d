"""The probe refuses what would give a plausible wrong result: divergence, other data on resume or
reuse, images that cannot share a batch; and it records and reports its effective batch and the
signs of a probe that did not learn."""

import io
import json
import shutil

import datasets
import numpy as np
import pytest
from PIL import Image

from hf_drop.cli import main
from hf_drop.data.sources import digits_splits
from hf_drop.modeling.images import ImageBatches, image_sizes
from hf_drop.modeling.models import Preprocess
from hf_drop.probe import ProbeConfig, ProbeResult, run_probe
from hf_drop.probe import run as probe_run
from hf_drop.probe.result import _sanity
from hf_drop.probe.run import ProbeDivergedError, ProbeWarning

pytestmark = pytest.mark.slow  # probe runs

CONFIG = ProbeConfig(model="test_resnet", epochs=1, batch_size=64)


@pytest.fixture(scope="module")
def digits_data():
    return digits_splits()


@pytest.fixture(scope="module")
def finished(digits_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("probe") / "run"
    return run_probe(digits_data["train"], digits_data["test"], CONFIG, folder)


def within_class_permutation(split: datasets.Dataset) -> datasets.Dataset:
    """Same size and labels (so the same label hash), other images at each position."""
    labels = np.array(split["label"][:])
    order = np.arange(len(split))
    for k in np.unique(labels):
        rows = np.flatnonzero(labels == k)
        order[rows] = np.roll(rows, 1)
    return split.select(order)


# --- divergence ---------------------------------------------------------------------------------


def test_config_refuses_non_finite_numbers_and_a_negative_seed():
    for name, value in [("lr", float("nan")), ("lr", float("inf")), ("momentum", float("nan")),
                        ("weight_decay", float("inf"))]:  # fmt: skip
        with pytest.raises(ValueError, match=f"{name} must be a finite number"):
            ProbeConfig(model="x", **{name: value})
    with pytest.raises(ValueError, match="seed must be an int >= 0, got -1"):
        ProbeConfig(model="x", seed=-1)
    with pytest.raises(ValueError, match="lr must be a number"):
        ProbeConfig(model="x", lr="0.1")
    assert ProbeConfig(model="x", lr=0).lr == 0, "lr=0 (a frozen probe) stays allowed"


def test_the_cli_refuses_lr_nan_before_loading_anything(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["probe", "--dataset", "digits", "--model", "test_resnet", "--epochs", "1",
              "--lr", "nan", "--output", str(tmp_path / "run")])  # fmt: skip
    assert exit_.value.code == 2
    assert "lr must be a finite number, got nan" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_diverging_probe_stops_and_records_nothing(digits_data, tmp_path):
    config = ProbeConfig(model="test_resnet", epochs=2, batch_size=64, lr=1e6)
    with pytest.raises(ProbeDivergedError, match=r"diverged at init 1 epoch 1 \(train loss nan"):
        run_probe(digits_data["train"], digits_data["test"], config, tmp_path)
    assert not (tmp_path / "probe_config.json").exists()
    assert not list(tmp_path.glob("checkpoints/init*")), "no checkpoint of the diverged epoch"
    with pytest.raises(FileNotFoundError):
        ProbeResult.load(tmp_path)


def test_non_finite_scores_stop_the_probe_at_the_epoch_they_appear(
    digits_data, tmp_path, monkeypatch
):
    """A loss that becomes infinite in the second epoch: the first epoch's checkpoint stays, the
    second's is never written, and there is no result."""
    original = probe_run.batch_statistics
    calls = {"n": 0}

    def statistics(*args):
        stats = original(*args)
        calls["n"] += 1
        if calls["n"] > 23 + 5:  # epoch 1 has 23 steps
            stats[:, 0] = float("inf")
        return stats

    monkeypatch.setattr(probe_run, "batch_statistics", statistics)
    config = ProbeConfig(model="test_resnet", epochs=2, batch_size=64)
    with pytest.raises(ValueError, match=r"at init 1 epoch 2 \(train loss inf at step 6 of 23\)"):
        run_probe(digits_data["train"], digits_data["test"], config, tmp_path)
    assert [p.name for p in tmp_path.glob("checkpoints/init*")] == ["init000-epoch0000"]
    assert not (tmp_path / "probe_config.json").exists()


# --- the data's identity on resume and reuse -----------------------------------------------------


def test_resume_refuses_other_data_and_other_process_counts(
    digits_data, tmp_path, monkeypatch, capsys
):
    train, test = digits_data["train"], digits_data["test"]

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the run stops after its last checkpoint, before the result

    monkeypatch.setattr(probe_run, "_write_result", killed)
    with pytest.raises(KeyboardInterrupt):
        run_probe(train, test, CONFIG, tmp_path)
    monkeypatch.undo()
    (checkpoint,) = tmp_path.glob("checkpoints/init*")
    progress = json.loads((checkpoint / "progress.json").read_text())
    assert progress["processes"] == 1
    assert progress["data"]["train"]["num_rows"] == 1437
    assert progress["data"]["validation"]["num_rows"] == 360

    other = within_class_permutation(train)
    with pytest.raises(ValueError, match="holds an unfinished probe trained on another dataset"):
        run_probe(other, test, CONFIG, tmp_path)
    with pytest.raises(ValueError, match="unfinished probe validated on another dataset"):
        run_probe(train, test.shuffle(seed=0), CONFIG, tmp_path)

    saved = (checkpoint / "progress.json").read_text()
    (checkpoint / "progress.json").write_text(json.dumps({**progress, "processes": 2}))
    with pytest.raises(
        ValueError, match=r"ran on 2 process\(es\); this run has 1.*--num_processes 2"
    ):
        run_probe(train, test, CONFIG, tmp_path)
    (checkpoint / "progress.json").write_text(saved)

    capsys.readouterr()
    result = run_probe(train, test, CONFIG, tmp_path)  # the same data: resumes and finishes
    logged = capsys.readouterr().err  # status goes to the hf_drop logger, on stderr
    assert "1 process(es) x batch 64 = global batch 64, 23 steps per epoch" in logged
    assert f"every epoch is done (checkpoint {checkpoint}): writing the result" in logged
    assert result.record["source"]["num_rows"] == 1437
    assert not (tmp_path / "checkpoints").exists()


def test_reuse_of_a_finished_folder_checks_the_data(finished, digits_data):
    train, test = digits_data["train"], digits_data["test"]
    folder = finished.folder
    with pytest.raises(ValueError, match=rf"--output {folder} holds a finished probe trained on "
                       r"another dataset: this one has other values in column\(s\) \['image'\]"):  # fmt: skip
        run_probe(within_class_permutation(train), test, CONFIG, folder)
    with pytest.raises(ValueError, match="trained on another dataset: this one has 1436 rows"):
        run_probe(train.select(range(1436)), test, CONFIG, folder)
    with pytest.raises(ValueError, match=r"validated on another dataset.*label hash"):
        run_probe(train, test.shuffle(seed=0), CONFIG, folder)
    again = run_probe(train, test, CONFIG, folder)
    assert np.array_equal(again.score("el2n"), finished.score("el2n"))


def test_a_result_without_the_validation_identity_is_not_reused(finished, digits_data, tmp_path):
    folder = tmp_path / "old"
    shutil.copytree(finished.folder, folder)
    record = json.loads((folder / "probe_config.json").read_text())
    del record["validation"]
    (folder / "probe_config.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="did not record the identity of its validation split"):
        run_probe(digits_data["train"], digits_data["test"], CONFIG, folder)


# --- the effective batch and the sanity of the result --------------------------------------------


def test_the_record_states_the_effective_batch_and_the_validation_identity(finished):
    record = finished.record
    assert record["processes"] == 1
    assert record["batch"] == {
        "processes": 1,
        "per_process_batch_size": 64,
        "global_batch_size": 64,
        "steps_per_epoch": 23,  # ceil(1437 / 64)
    }
    assert record["validation"]["num_rows"] == 360
    assert record["validation"]["label_column"] == "label"
    assert set(record["validation"]["content"]["columns"]) == {"image", "label"}
    assert finished.class_metrics["warnings"] == []


def test_a_probe_that_did_not_learn_warns_and_records_it(digits_data, tmp_path):
    config = ProbeConfig(model="test_resnet", epochs=1, batch_size=64, lr=0)  # frozen
    train, val = digits_data["train"].select(range(300)), digits_data["test"].select(range(100))
    with pytest.warns(ProbeWarning) as emitted:
        result = run_probe(train, val, config, tmp_path)
    alerts = result.class_metrics["warnings"]
    assert alerts and [str(w.message) for w in emitted] == alerts
    assert any("validation error >= 0.95" in a for a in alerts), "an untrained net misses classes"


def test_sanity_flags_chance_accuracy_and_classes_never_recognised():
    support = np.array([10, 10, 10, 0])
    assert _sanity(0.9, np.array([0.9, 0.8, 1.0, np.nan]), support, list("abcd")) == []
    (chance,) = _sanity(0.45, np.array([0.5, 0.4, 0.45, np.nan]), support, list("abcd"))
    assert "1/3 = 0.333" in chance
    (never,) = _sanity(0.6, np.array([0.9, 0.04, 0.9, np.nan]), support, list("abcd"))
    assert "class(es) b (0.96)" in never


# --- images of several sizes ---------------------------------------------------------------------


def png(size: tuple[int, int], value: int) -> dict:
    buffer = io.BytesIO()
    Image.fromarray(np.full(size[::-1], value, np.uint8)).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def mixed_sizes(n: int, odd: set[int]) -> datasets.Dataset:
    """``n`` grey images of two classes (dark, light); rows in ``odd`` are 10x12, others 8x8."""
    labels = [i % 2 for i in range(n)]
    images = [png((10, 12) if i in odd else (8, 8), 40 + 160 * y) for i, y in enumerate(labels)]
    return datasets.Dataset.from_dict(
        {"image": images, "label": labels},
        features=datasets.Features(
            {"image": datasets.Image(), "label": datasets.ClassLabel(names=["dark", "light"])}
        ),
    )


def test_images_of_several_sizes_are_refused_before_training(tmp_path):
    train, val = mixed_sizes(40, {7, 9}), mixed_sizes(10, set())
    config = ProbeConfig(model="test_resnet", epochs=1, batch_size=8)
    with pytest.raises(
        ValueError,
        match=r"of 2 sizes \(train split: 8x8 \(38 images, e\.g\. row 0\), 10x12 "
        r"\(2 images, e\.g\. row 7\); validation split: 8x8 \(10 images.*pass --image_size HxW",
    ):
        run_probe(train, val, config, tmp_path)
    assert not any(tmp_path.iterdir()), "the folder stays as it was: empty"
    assert not list(tmp_path.glob("checkpoints/init*")), "nothing was trained"
    # Sizes come from headers, through a select's indices mapping too.
    assert image_sizes(train.select([9, 0, 1]), "x", "image") == {(10, 12): [0, 1], (8, 8): [1, 2]}


def test_sizes_are_those_datasets_decodes_to_after_exif_rotation():
    def jpeg(width, height, orientation):
        exif = Image.Exif()
        exif[0x0112] = orientation  # 6: stored landscape, shown portrait
        buffer = io.BytesIO()
        Image.new("RGB", (width, height)).save(buffer, format="JPEG", exif=exif.tobytes())
        return {"bytes": buffer.getvalue(), "path": None}

    photos = datasets.Dataset.from_dict(
        {"image": [jpeg(10, 20, 1), jpeg(20, 10, 6)]},
        features=datasets.Features({"image": datasets.Image()}),
    )
    assert [image.size for image in photos["image"]] == [(10, 20), (10, 20)]
    assert image_sizes(photos, "train split", "image") == {(10, 20): [0, 2]}


def test_a_model_whose_preprocessing_resizes_takes_several_sizes(tmp_path):
    from transformers import ResNetConfig, ViTImageProcessor

    folder = tmp_path / "model"
    ResNetConfig(num_channels=1, embedding_size=8, hidden_sizes=[8], depths=[1]).save_pretrained(
        folder
    )
    ViTImageProcessor(
        size={"height": 8, "width": 8}, image_mean=[0.5], image_std=[0.5]
    ).save_pretrained(folder)
    config = ProbeConfig(model=str(folder), epochs=1, batch_size=8)
    result = run_probe(mixed_sizes(24, {3}), mixed_sizes(8, {2}), config, tmp_path / "run")
    assert result.record["model"]["kind"] == "transformers"


def test_a_batch_of_several_sizes_names_them():
    data = mixed_sizes(4, {2})
    batches = ImageBatches(data, "image", np.array([0, 1, 0, 1]), Preprocess(channels=1))
    assert batches.__getitems__([0, 1])["pixel_values"].shape == (2, 1, 8, 8)
    with pytest.raises(
        ValueError, match=r"different sizes in one batch: 8x8 \(row 0\), 10x12 \(row 2\)"
    ):
        batches.__getitems__([0, 2])


def test_an_unreadable_image_is_refused_by_row(tmp_path):
    train = mixed_sizes(10, set())
    broken = (
        train.cast_column("image", datasets.Image(decode=False))
        .map(
            lambda row, i: {"image": {"bytes": b"junk", "path": None} if i == 4 else row["image"]},
            with_indices=True,
        )
        .cast_column("image", datasets.Image())
    )
    with pytest.raises(ValueError, match="row 4 of the train split is not a readable image"):
        run_probe(broken, train, ProbeConfig(model="test_resnet", epochs=1), tmp_path)


def test_a_global_batch_is_split_evenly_among_processes():
    config = ProbeConfig(model="test_resnet", epochs=1, global_batch_size=64)
    assert [config.per_process_batch(n) for n in (1, 2, 4)] == [64, 32, 16]
    assert ProbeConfig(model="test_resnet", epochs=1).per_process_batch(2) == 128
    with pytest.raises(ValueError, match="global_batch_size 64 does not divide among 3"):
        config.per_process_batch(3)
    with pytest.raises(ValueError, match="global_batch_size must be a positive int"):
        ProbeConfig(model="test_resnet", epochs=1, global_batch_size=0)
