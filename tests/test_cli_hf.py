"""The command line as Hugging Face users know it: options from dataclasses (both spellings),
files of options, --output_dir, split slices, --max_train_samples, --version, logging, Ctrl-C."""

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest

import hf_drop
from hf_drop.cli import build_parser, main
from hf_drop.data.sources import digits_splits
from hf_drop.hub import reproduce_commands
from hf_drop.io import logs
from hf_drop.probe import ProbeResult

COMMANDS = ["probe", "prune", "report", "push"]


def _exit(argv, capsys) -> tuple[int, str]:
    """Exit status and stderr of a command that must stop."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return exit_info.value.code, capsys.readouterr().err


# --- options ------------------------------------------------------------------------------------


def _command(name: str):
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices[name]


def _value(action: argparse.Action) -> tuple[list[str], object]:
    """Tokens that give ``action`` a value, and the value it then holds."""
    if isinstance(action, argparse._StoreTrueAction) or action.nargs == 0:  # a switch
        return [], True
    if action.choices:
        choice = list(action.choices)[-1]
        return [str(choice)], choice
    if action.metavar == "JSON":
        return ["[0.25]"], [0.25]
    if action.nargs in ("*", "+"):
        return ["a", "b"], ["a", "b"]
    if action.type is int:
        return ["3"], 3
    if action.type is float:
        return ["0.25"], 0.25
    return ["x"], "x"


def _required(command, skip: str) -> list[str]:
    tokens = []
    for action in command._actions:
        if action.dest == skip:
            continue
        if not action.option_strings:
            tokens += _value(action)[0] if action.nargs in ("*", "+") else ["x"]
        elif action.required:
            tokens += [action.option_strings[0], *_value(action)[0]]
    return tokens


def _spellings():
    for name in COMMANDS:
        for action in _command(name)._actions:
            for flag in action.option_strings:
                if "_" in flag[2:] or "-" in flag[2:]:
                    yield pytest.param(name, action.dest, flag, id=f"{name} {flag}")


@pytest.mark.parametrize(("name", "dest", "flag"), list(_spellings()))
def test_every_multi_word_option_takes_both_spellings(name, dest, flag):
    command = _command(name)
    action = next(a for a in command._actions if a.dest == dest)
    other = flag.replace("_", "-") if "_" in flag else "--" + flag[2:].replace("-", "_")
    assert other in action.option_strings, f"{flag} has no twin {other}"
    tokens, expected = _value(action)
    parsed = command.parse_args([*_required(command, dest), flag, *tokens])
    assert getattr(parsed, dest) == expected


def test_the_spellings_matrix_covers_the_options_that_matter():
    flags = {p.values[2] for p in _spellings()}
    for flag in ("--image_column", "--image-column", "--val-from-test", "--output_dir",
                 "--max_train_samples", "--class-errors", "--with_scores", "--repo-id",
                 "--log_level", "--disable-tqdm", "--config_file"):  # fmt: skip
        assert flag in flags


def test_help_shows_each_default(capsys):
    with pytest.raises(SystemExit):
        main(["probe", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert (
        "--batch_size BATCH_SIZE, --batch-size BATCH_SIZE, --per_device_train_batch_size "
        "BATCH_SIZE, --per-device-train-batch-size BATCH_SIZE batch size per process "
        "(default: 128)" in text
    )
    assert "--output OUTPUT, --output_dir OUTPUT, --output-dir OUTPUT" in text
    assert "(default: cosine)" in text and "(default: None)" not in text
    with pytest.raises(SystemExit):
        main(["prune", "--help"])
    assert "(default: random)" in " ".join(capsys.readouterr().out.split())


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"hf-drop {hf_drop.__version__}"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--val-split", "test", "--val_fraction", "0.2"], "not allowed with argument"),
        (["--max_train_samples", "0"], "--max_train_samples must be a positive int, got 0"),
        (["--split", "nope[:10]"], "--split 'nope[:10]' is neither a split"),
        (["--split", "train[abc]"], "or train[10%:20%]"),
    ],
)
def test_bad_data_options_exit_2_naming_the_option(tmp_path, capsys, extra, message):
    argv = ["probe", "--dataset", "digits", "--model", "test_resnet", "--output",
            str(tmp_path / "run"), *extra]  # fmt: skip
    code, err = _exit(argv, capsys)
    assert code == 2 and message in err
    assert not (tmp_path / "run").exists()


# --- a probe from a YAML file, on a slice ------------------------------------------------------

SLICE = "train[10%:90%]"  # rows 144..1293 of digits' 1,437


@pytest.fixture(scope="module")
def sliced(tmp_path_factory):
    """A probe run from a YAML file (epochs overridden by a flag, --output_dir) on a slice of
    train cut to its first 400 rows, with TQDM_DISABLE=1; then pruned."""
    root = tmp_path_factory.mktemp("sliced")
    config = root / "probe.yaml"
    config.write_text(
        f"dataset: digits\nmodel: test_resnet\nepochs: 5\nsplit: '{SLICE}'\n"
        "max_train_samples: 400\nbatch-size: 64\nembeddings: true\n"
    )
    probe = root / "probe"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TQDM_DISABLE", "1")
        captured = _run(["probe", str(config), "--epochs", "1", "--output_dir", str(probe),
                         "--log-level", "info"])  # fmt: skip
    captured["prune"] = _run(["prune", "--probe", str(probe), "--density", "0.5",
                              "--output-dir", str(root / "subset")])  # fmt: skip
    return root, captured


def _run(argv):
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        main(argv)
    return {"out": out.getvalue(), "err": err.getvalue()}


@pytest.mark.slow  # a probe (the sliced fixture)
def test_a_file_of_options_with_flags_over_it(sliced):
    root, _ = sliced
    result = ProbeResult.load(root / "probe")
    config = result.record["config"]
    assert config["epochs"] == 1, "the flag overrides the file's 5"
    assert config["batch_size"] == 64 and config["embeddings"], "dashed keys and YAML booleans"
    assert len(result.class_metrics["accuracy_by_epoch"][0]) == 1


@pytest.mark.slow  # a probe (the sliced fixture)
def test_the_record_holds_the_slice_and_the_row_limit(sliced):
    root, _ = sliced
    source = ProbeResult.load(root / "probe").source
    assert source["split"] == SLICE and source["max_train_samples"] == 400
    assert source["num_rows"] == 400
    command = source["command"]
    assert "probe.yaml" not in command, "the record holds the options, not the file"
    assert "--log" not in command, "nor how much the run said"
    for part in ("--split 'train[10%:90%]'", "--max-train-samples 400", "--epochs 1",
                 "--batch-size 64", "--embeddings"):  # fmt: skip
        assert part in command


@pytest.mark.slow  # a probe (the sliced fixture)
def test_prune_reloads_the_same_rows_of_the_slice(sliced):
    root, captured = sliced
    assert "kept 200 of 400 rows" in captured["prune"]["out"]
    subset = datasets.load_from_disk(str(root / "subset"))
    rows = pq.read_table(root / "subset" / "kept_indices.parquet")["index"].to_numpy()
    # The slice's 400 rows sampled by class with the probe's seed, in the slice's order.
    from hf_drop.data.splits import stratified_sample

    sliced_rows = digits_splits()["train"].select(range(144, 1294))
    expected = sliced_rows.select(stratified_sample(sliced_rows, 400, seed=0))
    assert rows.max() < 400
    pixels = [np.asarray(image) for image in subset["image"]]
    wanted = [np.asarray(expected[int(r)]["image"]) for r in rows]
    assert all(np.array_equal(a, b) for a, b in zip(pixels, wanted, strict=True))
    record = json.loads((root / "subset" / "pruning.json").read_text())
    assert record["source"]["split"] == SLICE and record["source"]["max_train_samples"] == 400
    assert record["source"]["sampling"] == {
        "method": "stratified",
        "seed": 0,
        "label_column": "label",
    }
    probe_command = reproduce_commands(record)[0]
    assert "--split 'train[10%:90%]'" in probe_command and "--output probe" in probe_command


@pytest.mark.slow  # a probe (the sliced fixture)
def test_tqdm_disable_hides_the_progress_bars(sliced):
    _, captured = sliced
    err = captured["err"]
    assert "init 1/1 epoch 1/1: train loss" in err, "the epoch line is logged at info"
    assert "it/s" not in err and "%|" not in err


@pytest.mark.slow  # a probe (the sliced fixture)
def test_log_level_and_hf_drop_verbosity_silence_info(sliced, monkeypatch):
    root, _ = sliced
    again = ["probe", str(root / "probe.yaml"), "--epochs", "1", "--output", str(root / "probe")]
    assert "already holds this probe's result" in _run(again)["err"]
    quiet = _run([*again, "--log_level", "error"])
    assert quiet["err"] == "" and "class errors" in quiet["out"], "results stay on stdout"
    monkeypatch.setenv("HF_DROP_VERBOSITY", "warning")
    assert _run(again)["err"] == ""
    assert logs.get_verbosity() == logging.INFO, "the level is the command's, then restored"


@pytest.mark.slow  # a probe (the sliced fixture)
def test_a_json_file_of_options_for_prune(sliced, capsys):
    root, _ = sliced
    options = root / "prune.json"
    options.write_text(json.dumps({"probe": str(root / "probe"), "density": 0.5,
                                   "within": "el2n", "with_scores": ["el2n"]}))  # fmt: skip
    main(["prune", "--config_file", str(options), "--density", "0.25", "--output",
          str(root / "json-subset")])  # fmt: skip
    assert "kept 100 of 400 rows" in capsys.readouterr().out
    assert "el2n" in datasets.load_from_disk(str(root / "json-subset")).column_names


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"probe": "p", "densty": 0.5}', "prune.json: unknown option 'densty' (did you mean"),
        ("quota: [drop", "prune.yaml is not readable as YAML"),
        ('{"quota": "most"}', "quota 'most' is not one of drop, drop_paper"),
        ('{"density": null}', "prune.json: density needs a value"),
        ("[1, 2]", "must hold a mapping"),
        ("{not json", "is not readable as JSON"),
    ],
)
def test_a_bad_file_of_options_is_refused(tmp_path, capsys, text, message):
    options = tmp_path / ("prune.yaml" if "yaml" in message else "prune.json")
    options.write_text(text)
    code, err = _exit(["prune", str(options), "--density", "0.5", "--output",
                       str(tmp_path / "out")], capsys)  # fmt: skip
    assert code == 2 and message in err


def test_the_progress_bar_switches_meet_in_one_place(monkeypatch):
    assert logs.progress_bars_enabled()
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert not logs.progress_bars_enabled()
    monkeypatch.delenv("TQDM_DISABLE")
    datasets.disable_progress_bars()
    try:
        assert not logs.progress_bars_enabled()
    finally:
        datasets.enable_progress_bars()
    with logs.logging_options(disable_tqdm=True):
        assert not logs.progress_bars_enabled()
        assert not datasets.utils.logging.is_progress_bar_enabled(), "datasets' bars too"
    with logs.logging_options(log_level="error"):
        assert not logs.progress_bars_enabled()
    assert logs.progress_bars_enabled() and datasets.utils.logging.is_progress_bar_enabled()


# --- Ctrl-C ------------------------------------------------------------------------------------


def test_after_ctrl_c_a_failing_finalizer_prints_nothing_after_the_one_line():
    """Ctrl-C can cut an object's __init__ short (a tqdm bar without its `pos`); its __del__
    then fails as the process exits. The hf-drop process ends on its one line all the same."""
    code = (
        "from hf_drop.cli import _interrupted\n"
        "class Bar:\n"
        "    def __del__(self):\n"
        "        raise AttributeError(\"'Bar' object has no attribute 'pos'\")\n"
        "bar = Bar()\n"
        "_interrupted('probe', program=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 130
    assert done.stderr == "interrupted; rerun the same command to resume\n", done.stderr


def test_after_ctrl_c_the_one_line_starts_its_own_line_below_a_progress_bar():
    """Ctrl-C while a bar is on screen: the bar is closed first, so the line does not run on
    after the bar's text (as it did once in CI)."""
    code = (
        "import sys\n"
        "from tqdm import tqdm\n"
        "from hf_drop.cli import _interrupted\n"
        "bar = tqdm(total=6, desc='init 1/1 epoch 2/40', leave=False, mininterval=0)\n"
        "bar.update(1)\n"
        "_interrupted('probe', program=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 130
    assert "epoch 2/40" in done.stderr, "the bar was on screen"
    assert done.stderr.splitlines()[-1] == "interrupted; rerun the same command to resume"


@pytest.mark.slow
def test_ctrl_c_ends_in_one_line_and_the_rerun_resumes(tmp_path, capsys, monkeypatch):
    # Many short epochs: the signal lands long before the run could end by itself.
    argv = ["probe", "--dataset", "digits", "--max-train-samples", "300", "--model",
            "test_resnet", "--epochs", "40", "--batch-size", "50", "--output",
            str(tmp_path / "run")]  # fmt: skip
    child = subprocess.Popen(
        [sys.executable, "-m", "hf_drop", *argv],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    checkpoint = tmp_path / "run" / "checkpoints" / "init000-epoch0000"
    deadline = time.monotonic() + 120
    while not (checkpoint / "COMPLETE").exists() and child.poll() is None:
        assert time.monotonic() < deadline, "the probe never finished its first epoch"
        time.sleep(0.01)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.splitlines()[-1] == "interrupted; rerun the same command to resume"
    assert "it/s" in err, "progress bars show by default"
    assert not (tmp_path / "run" / "probe_config.json").exists()

    # The same command again says where it resumes; stopped again (here, in its first epoch),
    # it ends the same way.
    from hf_drop.probe import run as probe_run

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(probe_run._Training, "epoch", interrupted)
    code, err = _exit(argv, capsys)
    done = max(p for p in checkpoint.parent.iterdir() if (p / "COMPLETE").exists())
    epoch = int(done.name[-4:]) + 2  # the one after the last finished, counted from 1
    assert f"resuming from epoch {epoch} of init 1 (checkpoint {done})" in err
    assert code == 130 and err.splitlines()[-1] == "interrupted; rerun the same command to resume"


# --- declared once: dataclasses, transformers' names, unknown flags -----------------------------


def test_every_train_config_field_is_an_option_of_train():
    import dataclasses as dc

    from hf_drop.cli import parse_command
    from hf_drop.train import TrainConfig

    base = ["train", "--dataset", "d", "--model", "m", "--epochs", "1", "--output", "o"]
    parsed = parse_command([*base, "--group-column", "a", "b", "--momentum", "0.5",
                            "--num_workers", "2", "--lr-milestones", "0.3", "--lr_gamma", "0.5"])  # fmt: skip
    config = parsed.options[TrainConfig]
    assert (config.group_column, config.momentum, config.num_workers) == (["a", "b"], 0.5, 2)
    assert config.lr_milestones == (0.3,) and config.lr_gamma == 0.5
    flags = set(parse_command(base).spellings())
    for each in dc.fields(TrainConfig):
        assert f"--{each.name}" in flags and f"--{each.name.replace('_', '-')}" in flags


@pytest.mark.parametrize(
    ("argv", "field", "value"),
    [
        (
            [
                "probe",
                "--dataset_name",
                "digits",
                "--model",
                "m",
                "--num_train_epochs",
                "3",
                "--learning_rate",
                "0.1",
                "--output_dir",
                "o",
            ],
            "epochs",
            3,
        ),
        (
            [
                "probe",
                "--dataset-name",
                "digits",
                "--model",
                "m",
                "--learning-rate",
                "0.2",
                "--output-dir",
                "o",
            ],
            "lr",
            0.2,
        ),
        (
            [
                "prune",
                "--dataset_name",
                "digits",
                "--class-errors",
                "[0.1]",
                "--density",
                "0.5",
                "--output_dir",
                "o",
            ],
            "dataset",
            "digits",
        ),
        (
            [
                "train",
                "--dataset_name",
                "d",
                "--model",
                "m",
                "--num_train_epochs",
                "2",
                "--learning_rate",
                "0.1",
                "--output_dir",
                "o",
            ],
            "lr",
            0.1,
        ),
    ],
)
def test_transformers_names_are_accepted(argv, field, value):
    from hf_drop.cli import parse_command

    args = parse_command(argv).args
    assert getattr(args, field) == value and args.output == "o"


def test_an_unknown_flag_gets_a_suggestion(tmp_path, capsys):
    code, err = _exit(["prune", "--probe", "p", "--densty", "0.5", "--density", "0.5",
                       "--output", str(tmp_path / "o")], capsys)  # fmt: skip
    assert code == 2 and "unrecognized arguments: --densty 0.5" in err
    assert "did you mean --density?" in err


def test_the_command_line_uses_no_private_parser_api():
    from pathlib import Path

    for path in (Path(hf_drop.__file__).parent / "cli").glob("*.py"):
        text = path.read_text()
        for private in ("._actions", "_parse_dataclass_field", "_SubParsersAction", "._get_"):
            assert private not in text, f"{path.name} uses {private}"
