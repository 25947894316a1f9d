"""The hf-drop command line (hf_drop.cli)."""

import json
import subprocess
import sys

import datasets
import numpy as np
import pytest

from hf_drop import DRoPFilter
from hf_drop.cli import main
from hf_drop.data.sources import digits_splits
from hf_drop.probe import ProbeResult


@pytest.mark.slow
def test_probe_with_a_validation_split_carved_from_train(tmp_path, capsys):
    main(["probe", "--dataset", "digits", "--model", "test_resnet", "--epochs", "1",
          "--val-fraction", "0.2", "--output", str(tmp_path / "run")])  # fmt: skip
    assert "class errors: 0:" in capsys.readouterr().out
    result = ProbeResult.load(tmp_path / "run")
    splits = result.splits()
    assert len(splits["val_indices"]) + len(splits["train_indices"]) == 1437
    assert len(result.scores) == len(splits["train_indices"])
    assert result.source["train_indices"] == "splits.json"


@pytest.mark.slow
def test_probe_validates_on_half_of_test_by_default(digits_probe):
    result = ProbeResult.load(digits_probe)
    splits = result.splits()
    assert splits["val_split"] == "test"
    assert len(splits["val_indices"]) == 180 and len(splits["report_indices"]) == 180
    assert not set(splits["val_indices"]) & set(splits["report_indices"])
    assert sum(c["support"] for c in result.class_metrics["classes"]) == 180


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--val-split", "nope"], "--val-split 'nope' is not a split"),
        (["--split", "nope"], "--split 'nope' is not a split"),
        (["--model", "no_such_net"], "unknown model 'no_such_net'"),
        (["--epochs", "0"], "epochs must be a positive int"),
    ],
)
def test_bad_arguments_exit_with_a_clear_message(tmp_path, capsys, extra, message):
    args = ["probe", "--dataset", "digits", "--model", "test_resnet", "--epochs", "1",
            "--output", str(tmp_path / "run"), *extra]  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_python_dash_m_runs_the_same_command():
    out = subprocess.run(
        [sys.executable, "-m", "hf_drop", "probe", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--val-from-test" in out and "--full-grand" in out


@pytest.mark.slow
def test_the_console_script_is_installed():
    from pathlib import Path

    script = Path(sys.executable).with_name("hf-drop")
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    assert "probe" in out.stdout


@pytest.mark.slow
def test_record_keeps_the_command_line_configuration(tmp_path):
    main(["probe", "--dataset", "digits", "--model", "test_resnet", "--epochs", "2",
          "--num-inits", "2", "--seed", "7", "--score-epoch", "1", "--output", str(tmp_path)])  # fmt: skip
    record = json.loads((tmp_path / "probe_config.json").read_text())
    assert record["config"]["seed"] == 7 and record["config"]["num_inits"] == 2
    assert record["config"]["resolved_score_epoch"] == 1
    assert len(ProbeResult.load(tmp_path).class_metrics["accuracy_by_epoch"]) == 2


@pytest.mark.slow
def test_probe_prune_train_report_from_the_command_line(tmp_path, capsys, digits_probe):
    probe, subset = digits_probe, tmp_path / "drop50"
    main(["prune", "--probe", str(probe), "--density", "0.5", "--within", "el2n",
          "--min-per-class", "5", "--with-scores", "el2n", "aum", "--output", str(subset)])  # fmt: skip
    assert (
        "el2n+DRoP(saturating, floor 0.5, shrunk): kept 719 of 1437 rows" in capsys.readouterr().out
    )
    record = json.loads((subset / "pruning.json").read_text())
    assert record["source"]["probe"]["model"]["name"] == "test_resnet"
    saved, result = datasets.load_from_disk(str(subset)), ProbeResult.load(probe)
    drop = DRoPFilter.from_probe(result, 0.5, within="el2n", min_per_class=5)
    kept = drop.fit(digits_splits()["train"]).indices_
    assert saved.column_names == ["image", "label", "row_id", "el2n", "aum"]
    assert np.array_equal(np.array(saved["aum"][:]), result.score("aum")[kept])

    from conftest import tree_digest

    before = tree_digest(subset)
    runs = []
    for name, dataset in (("pruned", subset), ("full", "digits")):
        runs.append(tmp_path / f"train-{name}")
        main(["train", "--dataset", str(dataset), "--eval-from-probe", str(probe),
              "--model", "test_resnet", "--epochs", "1", "--compute-matched",
              "--output", str(runs[-1])])  # fmt: skip
    # Reading an output never writes into it (no datasets cache file beside its Arrow files).
    assert tree_digest(subset) == before
    pruned = json.loads((runs[0] / "metrics.json").read_text())
    assert pruned["density"] == 0.5 and pruned["epochs"] == 2  # 1.5 epochs, half up
    assert pruned["eval_rows"] == 180, "judged on the half of test the probe did not see"
    assert pruned["provenance"]["method"] == "el2n+DRoP(saturating, floor 0.5, shrunk)"

    main(["report", *map(str, runs), "--output", str(tmp_path / "report.png")])
    out = capsys.readouterr().out
    assert "el2n+DRoP" in out and "Full data" in out
    assert (tmp_path / "report.png").read_bytes()[:4] == b"\x89PNG"


def test_train_needs_an_evaluation_set(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--dataset", "digits", "--model", "test_resnet", "--epochs", "1",
              "--output", str(tmp_path)])  # fmt: skip
    assert "pass --eval-dataset or --eval-from-probe" in capsys.readouterr().err


@pytest.mark.slow
def test_a_probe_on_a_fraction_of_the_rows_from_the_command_line(tmp_path, capsys):
    """``hf-drop probe --data_fraction``: the cost said and recorded; ``hf-drop prune`` keeps
    rows of the whole training set by its class errors, and refuses to rank them by its
    partial scores, saying why."""
    probe = tmp_path / "probe"
    main(["probe", "--dataset", "digits", "--model", "test_resnet", "--epochs", "1",
          "--data_fraction", "0.3", "--output", str(probe)])  # fmt: skip
    assert "trains on 431 of the 1,437 training rows" in capsys.readouterr().err
    record = json.loads((probe / "probe_config.json").read_text())
    assert record["config"]["data_fraction"] == 0.3 and record["trained_rows"] == 431
    main(["prune", "--probe", str(probe), "--density", "0.5", "--output", str(tmp_path / "a")])
    assert "kept 719 of 1437 rows" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["prune", "--probe", str(probe), "--density", "0.5", "--within", "el2n",
              "--output", str(tmp_path / "b")])  # fmt: skip
    assert exit_info.value.code != 0
    assert "trained on 431 of the 1437 training rows" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
