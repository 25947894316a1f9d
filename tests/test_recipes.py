"""The demo and the benchmarks run end to end (tiny sizes; their figures are not checked here)."""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "recipes"), str(ROOT / "benchmarks")]

import benchmark  # noqa: E402
import demo_digits  # noqa: E402
import digits_logreg_study  # noqa: E402
import groups  # noqa: E402
import prune_speed  # noqa: E402

from hf_drop.core.quotas import budget  # noqa: E402
from hf_drop.data.columns import read_groups  # noqa: E402
from hf_drop.pruning.rows import indices_hash  # noqa: E402

pytestmark = pytest.mark.slow  # the recipes: probes and training


def test_main_job_probes_prunes_trains_and_compares(tmp_path):
    table = demo_digits.main(["--output", str(tmp_path), "--probe-epochs", "1", "--num-inits",
                              "1", "--epochs", "1", "--seeds", "1"])  # fmt: skip
    methods = table.index.get_level_values("method").tolist()
    assert methods == [
        "Random+Proportional", "Random+DRoP(paper)", "Random+DRoP(saturating, floor 0.5, shrunk)",
        "el2n", "Full data",
    ]  # fmt: skip
    assert budget(1437, 0.5) == 719  # half up, not Python's round()
    assert (table["train_rows"].iloc[:4] == 719).all()
    assert table["train_rows"].iloc[4] == 1437
    for name in (
        "random-d0.5-seed0",
        "drop_paper-d0.5-seed0",
        "drop-d0.5-seed0",
        "el2n-d0.5-seed0",
    ):
        record = json.loads((tmp_path / "subsets" / name / "pruning.json").read_text())
        assert record["num_kept"] == 719
        metrics = json.loads((tmp_path / "runs" / name / "metrics.json").read_text())
        assert metrics["eval_rows"] == 180 and metrics["epochs"] == 2  # compute-matched
    report = json.loads((tmp_path / "subsets" / "drop-d0.5-seed0" / "pruning.json").read_text())
    sizes = np.array(report["class_sizes"])
    assert np.all(np.array(report["quotas"]) >= np.floor(0.25 * sizes)), "the floor holds"
    assert (tmp_path / "accuracy.png").exists() and (tmp_path / "kept_fraction.png").exists()


def test_benchmark_runs_every_method_and_resumes(tmp_path, capsys):
    table = benchmark.main(["--preset", "digits", "--output", str(tmp_path)])
    preset = benchmark.PRESETS["digits"].methods
    methods = set(table.index.get_level_values("method"))
    assert methods == {*preset, benchmark.FULL}
    results = pd.read_csv(tmp_path / "results.csv")
    assert len(results) == len(preset) + 1
    assert set(results.columns) == set(benchmark.COLUMNS)
    assert (results.loc[results["method"] != "Full data", "train_rows"] == 719).all()
    per_class = json.loads(results["class_accuracy"].iloc[0])
    assert set(per_class) == {str(d) for d in range(10)}
    for picture in ("accuracy.png", "drop_quotas.png"):
        assert (tmp_path / picture).read_bytes()[:4] == b"\x89PNG"
    assert "| Random+DRoP | 0.5 | 1 |" in (tmp_path / "results.md").read_text()
    # Restarted, it skips every finished run.
    capsys.readouterr()
    benchmark.main(["--preset", "digits", "--output", str(tmp_path)])
    runs = len(preset) + 1
    assert f"{runs} of {runs} runs done; 0 to go" in capsys.readouterr().err
    assert len(pd.read_csv(tmp_path / "results.csv")) == len(results)
    # More rules on the recorded probe's class errors, its scores gone (as committed results
    # keep it): the rows are added, the preset records every method, the subsets are the ones
    # from_probe gives.
    import shutil

    from hf_drop import DRoPFilter
    from hf_drop.data.sources import load_source
    from hf_drop.probe import ProbeResult

    probe = ProbeResult.load(tmp_path / "probe")
    train = load_source("digits")["train"]
    from_probe = DRoPFilter.from_probe(probe, 0.5, quota="uniform").fit(train)
    shutil.rmtree(tmp_path / "probe" / "scores")
    benchmark.main(["--preset", "digits", "--output", str(tmp_path), "--recorded-probe",
                    "--methods", "Random+Uniform"])  # fmt: skip
    again = pd.read_csv(tmp_path / "results.csv")
    assert len(again) == len(results) + 1 and again.method.iloc[-1] == "Random+Uniform"
    assert again.subset_hash.iloc[-1] == indices_hash(from_probe.indices_)
    recorded = json.loads((tmp_path / "preset.json").read_text())["methods"]
    assert set(recorded) == {*preset, "Random+Uniform"}
    with pytest.raises(SystemExit, match="need the probe's scores"):
        benchmark.main(["--preset", "digits", "--output", str(tmp_path), "--recorded-probe",
                        "--methods", "EL2N"])  # fmt: skip
    with pytest.raises(SystemExit, match="records another"):
        benchmark.main(["--preset", "digits", "--output", str(tmp_path), "--epochs", "3"])
    # Settings that do nothing without dynamic_drop (their defaults changed since recording)
    # are not "another preset".
    record = json.loads((tmp_path / "preset.json").read_text())
    record["final"]["dynamic_smoothing"] = 0.0
    (tmp_path / "preset.json").write_text(json.dumps(record))
    benchmark.main(["--preset", "digits", "--output", str(tmp_path), "--recorded-probe",
                    "--methods", "Random+Uniform"])  # fmt: skip


def test_logreg_study_writes_its_subset_plot_and_results(tmp_path):
    table = digits_logreg_study.main(["--output", str(tmp_path), "--seeds", "2"])
    assert list(table.index) == [
        "Full data", "Random", "Random+DRoP", "Random+DRoP, min 10/class",
        "Random+DRoP (robust default)",
    ]  # fmt: skip
    assert (table["train_size"][1:] == table["train_size"].iloc[1]).all(), "same budget for all"
    assert (tmp_path / "subset" / "pruning.json").exists()
    assert (tmp_path / "kept_fraction.png").exists()
    summary = json.loads((tmp_path / "demo.json").read_text())["summary"]
    assert len(summary) == 5


def test_prune_speed_prints_one_json_line(tmp_path, capsys):
    out = tmp_path / "bench.jsonl"
    prune_speed.main(
        [
            "--rows",
            "20000",
            "--classes",
            "50",
            "--slice-rows",
            "2000",
            "--image-rows",
            "500",
            "--repeats",
            "1",
            "--output",
            str(out),
        ]
    )
    line = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(line)
    assert result["rows"] == 20000 and result["kept"] == 10000
    assert result["per_row_speedup"] > 0 and result["with_images"]["per_row_speedup"] > 0
    assert json.loads(out.read_text()) == result


def test_groups_recipe_frames_go_with_the_class_in_train_and_not_in_test():
    train, val, reported, val_rows, report_rows = groups.build(groups.SETUPS["tiny"])
    labels, frame = np.asarray(train["label"][:]), np.asarray(train["frame"][:])
    assert np.bincount(labels).tolist() == [40] * 10
    share = np.bincount(labels, weights=frame) / 40
    assert share.tolist() == [0.95] * 5 + [0.05] * 5  # exact: 38 of 40, 2 of 40
    for split in (val, reported):  # 10 per class in each half, 5 of them framed
        split_labels = np.asarray(split["label"][:])
        assert np.bincount(split_labels).tolist() == [10] * 10
        assert np.bincount(split_labels, weights=split["frame"][:]).tolist() == [5.0] * 10
    assert not set(val_rows) & set(report_rows)
    # Groups: label x frame, every combination present; the minority ones are the rare ones.
    names = train.features["label"].names
    found = read_groups(train, ["label", "frame"]).names
    assert found == [f"{c}/{f}" for c in names for f in ("plain", "framed")]
    assert "Shirt/framed" in groups.minority_groups(names)
    assert "Shirt/plain" not in groups.minority_groups(names)
    # A frame is a 255 border of FRAME_WIDTH pixels over the image; a plain image is untouched.
    images = np.stack(train.with_format("numpy")["image"][:])
    w = groups.FRAME_WIDTH
    border = np.ones((28, 28), bool)
    border[w:-w, w:-w] = False
    assert (images[frame == 1][:, border] == 255).all()
    assert not (images[frame == 0][:, border] == 255).all(axis=1).any()
    plain = np.arange(16, dtype=np.uint8).reshape(1, 4, 4) * 10
    painted = groups.paint_frames(np.repeat(plain, 2, axis=0), np.array([0, 1]), width=1)
    assert np.array_equal(painted[0], plain[0])
    assert np.array_equal(painted[1, 1:3, 1:3], plain[0, 1:3, 1:3])
    assert painted[1, 0].tolist() == [255] * 4 and painted[1, :, 3].tolist() == [255] * 4


def test_groups_recipe_runs_every_method_and_resumes(tmp_path, capsys):
    results = groups.main(["--setups", "tiny", "--output", str(tmp_path)])["tiny"]
    assert results["method"].tolist() == [groups.FULL, *groups.METHODS]
    rules = dict(zip(results["method"], results["rule"], strict=True))
    assert rules["Random+DRoP (groups)"].endswith(" per label+frame")
    assert (results.loc[results["method"] != groups.FULL, "train_rows"] == 200).all()
    per_group = json.loads(results["group_accuracy"].iloc[0])
    assert len(per_group) == 20
    assert results["worst_group_accuracy"].iloc[0] == min(per_group.values())
    assert (results["worst_group_accuracy"] <= results["worst_class_accuracy"]).all()
    # DRoP over groups keeps the rare combinations (their probe error is high): at least as many
    # as random sampling.
    kept = dict(zip(results["method"], results["minority_rows"], strict=True))
    assert kept[groups.FULL] == 20 and kept["Random+DRoP (groups)"] >= kept["Random"]
    assert (tmp_path / "groups.png").read_bytes()[:4] == b"\x89PNG"
    assert "| Random+DRoP (groups) | 0.5 |" in (tmp_path / "verdict.md").read_text()
    assert (tmp_path / "tiny" / "results.csv").exists()
    assert "Against Random+DRoP (saturating, groups)" not in (tmp_path / "verdict.md").read_text()
    capsys.readouterr()
    again = groups.main(["--setups", "tiny", "--output", str(tmp_path)])["tiny"]
    runs = len(groups.METHODS) + 1
    assert f"{runs} of {runs} runs done; 0 to go" in capsys.readouterr().err
    assert again.drop(columns="train_seconds").equals(results.drop(columns="train_seconds"))
    # On the recorded probe's class and group errors (no probe trained): the very same subsets.
    recorded = groups.main(["--setups", "tiny", "--output", str(tmp_path), "--recorded-probe"])
    assert (
        recorded["tiny"].drop(columns="train_seconds").equals(results.drop(columns="train_seconds"))
    )


def test_the_shapes_sweep_extends_recorded_runs_only_on_the_same_probe(tmp_path, monkeypatch):
    """A tiny digits shape: run, drop the probe's scores (as the committed results do), extend
    with a seed: the probe is trained again and must reproduce the recorded errors; the verdict
    then has paired intervals. A probe that does not reproduce them stops the sweep."""
    import shapes

    from hf_drop.probe import ProbeConfig
    from hf_drop.train import TrainConfig

    tiny = shapes.Shape(
        "digits",
        ProbeConfig(model="test_resnet", epochs=1, batch_size=64),
        TrainConfig(model="test_resnet", epochs=1, batch_size=64, save_model=False),
        densities=(0.5,),
    )
    monkeypatch.setattr(shapes, "SHAPES", {"digits": tiny})
    monkeypatch.setattr(
        shapes, "METHODS", {m: shapes.METHODS[m] for m in ["Random", shapes.DEFAULT]}
    )
    monkeypatch.setattr(shapes, "DENSITIES", (0.5,))
    monkeypatch.setattr(shapes, "CHOSEN_ON", (0,))
    out = tmp_path / "digits"
    shapes.run_shape("digits", out, seeds=1)
    import shutil

    shutil.rmtree(out / "probe" / "scores")
    results = shapes.run_shape("digits", out, seeds=2)  # one more seed, on a probe trained again
    assert (out / "probe_rerun" / "class_metrics.json").exists()
    assert sorted(results.seed.unique().tolist()) == [0, 1] and len(results) == 2 * 3
    table = shapes.comparisons(tmp_path)
    worst = table[(table.metric == "worst_class_accuracy") & (table.seeds == "all")]
    assert worst.method.tolist() == ["Random"] and worst.pairs.tolist() == [2]
    assert (worst.ci_low_adj <= worst["diff"]).all() and (worst["diff"] <= worst.ci_high_adj).all()
    after = table[table.seeds == "after choice"]
    assert after.pairs.tolist() == [1, 1] and after.ci_low.isna().all()  # one pair: no interval
    assert "### digits (m = 1; 2 paired seeds)" in shapes.comparison_text(table)
    shapes.plot_differences(table, tmp_path)
    assert (tmp_path / "differences.png").stat().st_size > 0
    # A recorded probe that the one trained again does not reproduce stops the sweep.
    metrics = json.loads((out / "probe" / "class_metrics.json").read_text())
    metrics["classes"][0]["mistakes"] += 1
    (out / "probe" / "class_metrics.json").write_text(json.dumps(metrics))
    recorded = (out / "shape.json").read_text()
    with pytest.raises(SystemExit, match="other mistakes per class"):
        shapes.run_shape("digits", out, seeds=3)
    assert (out / "shape.json").read_text() == recorded  # a refused sweep changes no record


def test_the_shapes_sweep_runs_seed_major_with_a_cheap_probe_and_trains_a_subset_once(
    tmp_path, monkeypatch
):
    """Two tiny digits shapes, seed-major; a cheap probe on half the data gives its own method
    (the default rule on its class errors); a rule that keeps the very same rows as another at
    one density and seed is not trained again: its row names its twin and has the twin's
    metrics."""
    import shapes

    from hf_drop.probe import ProbeConfig
    from hf_drop.train import TrainConfig

    tiny = shapes.Shape(
        "digits",
        ProbeConfig(model="test_resnet", epochs=1, batch_size=64),
        TrainConfig(model="test_resnet", epochs=1, batch_size=64, save_model=False),
        densities=(0.5,),
        cheap_fraction=0.5,
    )
    methods = {m: shapes.METHODS[m] for m in ["Random+Proportional", shapes.DEFAULT]}
    methods["Proportional, again"] = {"quota": "proportional"}
    monkeypatch.setattr(shapes, "METHODS", methods)
    monkeypatch.setattr(shapes, "CHOSEN_ON", (0,))
    two = {"a": tiny, "b": tiny}
    shapes.run_shapes(two, tmp_path, seeds=2)
    for name in two:
        results = pd.read_csv(tmp_path / name / "results.csv")
        # seed-major: every run of seed 0 before any of seed 1
        assert results.seed.tolist() == sorted(results.seed.tolist())
        assert set(results.method) == {*methods, shapes.CHEAP, shapes.FULL}
        record = json.loads((tmp_path / name / "shape.json").read_text())
        assert record["cheap_probe"]["rows"] == round(0.5 * sum(record["class_sizes"]))
        assert record["methods"][shapes.CHEAP] == "cheap_probe"
        cheap = json.loads((tmp_path / name / "probe_cheap" / "class_metrics.json").read_text())
        assert sum(c["train_size"] for c in cheap["classes"]) == record["cheap_probe"]["rows"]
        again = results[results.method == "Proportional, again"].set_index("seed")
        first = results[results.method == "Random+Proportional"].set_index("seed")
        assert (again.same_subset_as == "Random+Proportional").all()
        assert again.subset_hash.equals(first.subset_hash)
        assert again.accuracy.equals(first.accuracy)
        assert first.same_subset_as.isna().all()
        assert not list((tmp_path / name / "runs").glob("Proportional*again*"))
    table = shapes.comparisons(tmp_path, two)
    assert shapes.CHEAP in set(table.method)
    assert "| rule | d=0.5 |" in shapes.comparison_text(table)


def _tiny_cifar(folder: Path, label_column: str, classes: int) -> Path:
    """A CIFAR-shaped DatasetDict on disk: 32x32 RGB images in ``img``, labels in
    ``label_column`` (and a ``coarse_label`` beside CIFAR-100's ``fine_label``); each class a
    colour plus noise, so that even one epoch learns something."""
    import datasets
    from PIL import Image

    rng = np.random.default_rng(0)

    def split(per_class: int) -> datasets.Dataset:
        labels = np.repeat(np.arange(classes), per_class)
        colours = rng.integers(0, 256, size=(classes, 3))
        images = [
            Image.fromarray(
                np.clip(colours[k] + rng.normal(0, 30, (32, 32, 3)), 0, 255).astype(np.uint8)
            )
            for k in labels
        ]
        columns = {"img": images, label_column: labels.tolist()}
        features = {
            "img": datasets.Image(),
            label_column: datasets.ClassLabel(names=[f"c{k}" for k in range(classes)]),
        }
        if label_column == "fine_label":
            columns["coarse_label"] = (labels % 2).tolist()
            features["coarse_label"] = datasets.ClassLabel(names=["a", "b"])
        return datasets.Dataset.from_dict(columns, features=datasets.Features(features))

    datasets.DatasetDict({"train": split(6), "test": split(4)}).save_to_disk(folder)
    return folder


@pytest.mark.parametrize(
    ("preset", "model", "label_column", "classes", "weight_decay"),
    [
        ("cifar10", "vgg16_bn_cifar", "label", 10, 1e-4),
        ("cifar100", "vgg19_bn_cifar", "fine_label", 20, 5e-4),
    ],
)
def test_the_paper_cifar_presets_dry_run_on_tiny_data(
    tmp_path, preset, model, label_column, classes, weight_decay
):
    """The paper's CIFAR settings run end to end from a local folder (one epoch, one seed): the
    recorded preset is the authors' protocol, validation is the first half of each test class,
    pruned runs get the compute-matched epochs, and the model is the CIFAR VGG (a linear head on
    512 channels, not timm's ImageNet ConvMlp)."""
    data = _tiny_cifar(tmp_path / "data", label_column, classes)
    out = tmp_path / "run"
    benchmark.main(["--preset", preset, "--dataset", str(data), "--output", str(out),
                    "--epochs", "1", "--probe-epochs", "1", "--seeds", "1", "--densities", "0.5",
                    "--methods", "Random", "Random+DRoP (robust)"])  # fmt: skip
    record = json.loads((out / "preset.json").read_text())
    final, probe = record["final"], record["probe"]
    assert final["model"] == probe["model"] == model
    assert (final["lr"], final["momentum"], final["weight_decay"]) == (0.1, 0.9, weight_decay)
    assert (final["lr_milestones"], final["lr_gamma"]) == ([0.5, 0.75], 0.2)
    assert final["augment"] and not probe["augment"] and final["batch_size"] == 128
    assert (probe["epochs"], probe["lr"], probe["schedule"]) == (1, 0.1, "constant")
    assert probe["class_errors_from"] == "best" and record["validation"] == "first"
    assert final["label_column"] == probe["label_column"] == label_column
    results = pd.read_csv(out / "results.csv")
    assert sorted(results.method) == sorted([benchmark.FULL, "Random", "Random+DRoP (robust)"])
    pruned = results[results.method != benchmark.FULL]
    assert (pruned.epochs == 2).all()  # round((0.5 + 0.5 * 0.5) * 1 / 0.5)
    assert (pruned.train_rows == 3 * classes).all()
    # Validation: the first two of each class's four test images; the last two are reported.
    metrics = json.loads((out / "probe" / "class_metrics.json").read_text())
    assert {c["support"] for c in metrics["classes"]} == {2}
    splits = json.loads((out / "probe" / "splits.json").read_text())
    assert splits["val_indices"][:4] == [0, 1, 4, 5]
    probe_model = json.loads((out / "probe" / "probe_config.json").read_text())["model"]
    assert probe_model["name"] == model and probe_model["kind"] == "timm"


def test_the_paper_cifar_benchmark_runs_under_accelerate_with_two_processes(tmp_path):
    """``accelerate launch`` of the recipe on 2 CPU processes: one results row per run (written
    by the main process only), the probe records 2 processes, and the report is written once."""
    import os
    import subprocess

    from conftest import launch_two

    data = _tiny_cifar(tmp_path / "data", "label", 10)
    out = tmp_path / "run"
    command = launch_two(str(ROOT / "recipes" / "benchmark.py"), "--preset", "cifar10",
                         "--dataset", str(data), "--output", str(out), "--epochs", "1",
                         "--probe-epochs", "1", "--seeds", "1", "--densities", "0.5",
                         "--methods", "Random")  # fmt: skip
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    results = pd.read_csv(out / "results.csv")
    assert results.method.tolist() == [benchmark.FULL, "Random"]
    assert json.loads((out / "probe" / "probe_config.json").read_text())["processes"] == 2
    assert done.stderr.count("[1/2] Full data") == 1
    assert (out / "results.md").exists() and (out / "accuracy.png").exists()


def test_the_dynamic_drop_recipe_compares_with_the_long_sweep(tmp_path, monkeypatch):
    """A tiny digits stand-in for the long regime: dynamic DRoP and dynamic Random per density,
    full data and static DRoP (its probe's cost added) read from the sweep's results, a verdict
    with intervals against full data, and the plot."""
    import dynamic_drop
    import shapes

    from hf_drop.probe import ProbeConfig
    from hf_drop.train import TrainConfig

    tiny = shapes.Shape(
        "digits",
        ProbeConfig(model="test_resnet", epochs=1, batch_size=64),
        TrainConfig(model="test_resnet", epochs=2, batch_size=64, save_model=False),
        densities=(0.5,),
        methods=("Random", shapes.DEFAULT),
    )
    monkeypatch.setattr(shapes, "CHOSEN_ON", (0,))
    monkeypatch.setattr(dynamic_drop, "LONG", {"digits": tiny})
    monkeypatch.setattr(dynamic_drop, "SHAPES", ("digits",))
    monkeypatch.setattr(dynamic_drop, "DENSITIES", (0.5,))
    monkeypatch.setattr(dynamic_drop, "LONG_RESULTS", tmp_path / "long")
    shapes.run_shapes({"digits": tiny}, tmp_path / "long", seeds=2)
    out = tmp_path / "dynamic"
    dynamic_drop.main(["--output", str(out), "--seeds", "2"])
    results = pd.read_csv(out / "results.csv")
    assert len(results) == 2 * len(dynamic_drop.METHODS)
    assert set(results.method) == set(dynamic_drop.METHODS)
    n = 1437
    assert (results.sample_passes == 2 * budget(n, 0.5)).all()  # 2 epochs of half the rows
    text = (out / "verdict.md").read_text()
    assert "| digits | Static DRoP (probe + pruned) | 0.5 | 2 |" in text
    assert "| digits | Full data | 1.0 | 2 | 1.00 |" in text
    assert "Dynamic DRoP d=0.5 | | worst_class_accuracy" in text
    assert (out / "dynamic_drop.png").read_bytes()[:4] == b"\x89PNG"


def test_shapes_adds_runs_on_the_recorded_probe(tmp_path, capsys):
    """``--recorded-probe`` adds runs on the class errors a shape's probe recorded, without
    training a probe again (one trained on another machine makes other mistakes): the subset is
    the one ``from_probe`` on the full probe keeps; the rules that need scores are left out."""
    import shapes

    from hf_drop import DRoPFilter
    from hf_drop.probe import ProbeConfig, ProbeResult
    from hf_drop.train import TrainConfig

    count = "Random+DRoP (robust, count)"
    tiny = shapes.Shape(
        "digits",
        ProbeConfig(model="test_resnet", epochs=1, batch_size=64),
        TrainConfig(model="test_resnet", epochs=1, batch_size=64, save_model=False),
        densities=(0.5,),
        methods=("Random", "Random+StrategyQ (EL2N)", shapes.DEFAULT, count),
    )
    out = tmp_path / "digits"
    shapes.run_shapes({"digits": tiny}, tmp_path, seeds=1, only_methods=["Random"])
    probe = ProbeResult.load(out / "probe")
    train = shapes.build(tiny)[0]
    expected = DRoPFilter.from_probe(probe, 0.5, seed=0).fit(train).indices_
    (out / "probe_rerun").mkdir()  # would be a probe trained again: must stay untouched
    shapes.run_shapes({"digits": tiny}, tmp_path, seeds=1, recorded=True)
    assert not any((out / "probe_rerun").iterdir())
    assert "leaves out ['Random+StrategyQ (EL2N)']" in capsys.readouterr().err
    results = pd.read_csv(out / "results.csv").set_index("method")
    assert set(results.index) == {shapes.FULL, "Random", shapes.DEFAULT, count}
    assert results.loc[shapes.DEFAULT, "subset_hash"] == indices_hash(expected)
    recorded = json.loads((out / "shape.json").read_text())["methods"]
    assert list(recorded) == list(tiny.methods)  # the record names every method of the shape


def test_a_row_appended_to_an_older_results_file_loses_no_column(tmp_path):
    """A results file written before ``same_subset_as`` existed gains the column: a run that
    shares another's rows must say so (its own run folder does not exist)."""
    path = tmp_path / "results.csv"
    path.write_text("method,density,seed,accuracy\nRandom,0.5,0,0.81\n")
    row = {"method": "Uniform", "density": 0.5, "seed": 0, "accuracy": 0.8,
           "subset_hash": "ab12", "same_subset_as": "Random"}  # fmt: skip
    benchmark.append_row(path, row)
    table = pd.read_csv(path)
    assert table.columns.tolist() == ["method", "density", "seed", "accuracy", "subset_hash",
                                      "same_subset_as"]  # fmt: skip
    assert table["same_subset_as"].tolist()[1] == "Random" and table["accuracy"].tolist() == [
        0.81,
        0.8,
    ]
    assert pd.isna(table["same_subset_as"].iloc[0])
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]
