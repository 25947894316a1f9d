"""One logging path: hf-drop's level governs its logs, its warnings, its bars and the Trainer's;
each warning is one line, once; every option says what it does and its default."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import subprocess
import sys
import warnings

import pytest

from hf_drop.cli import build_parser, main, parse_command
from hf_drop.core.notices import HfDropWarning
from hf_drop.core.quotas import QuotaWarning, drop_quotas
from hf_drop.io import logs
from hf_drop.probe.config import ProbeConfig


def _run(argv: list[str]) -> dict[str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        main(argv)
    return {"out": out.getvalue(), "err": err.getvalue()}


def _exit(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return exit_info.value.code, capsys.readouterr().err


# --- warnings -----------------------------------------------------------------------------------

# A probe that cannot learn (lr 0) on a few rows: its result carries ProbeWarnings.
FROZEN_PROBE = ["probe", "--dataset", "digits", "--max_train_samples", "120", "--model",
                "test_resnet", "--epochs", "1", "--lr", "0", "--batch-size", "60",
                "--disable_tqdm"]  # fmt: skip


@pytest.mark.slow  # a probe, in its own process
def test_a_probe_warning_is_one_line_printed_once(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HF_DROP_VERBOSITY"}
    done = subprocess.run(
        [sys.executable, "-m", "hf_drop", *FROZEN_PROBE, "--output", str(tmp_path / "probe")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    alerts = json.loads((tmp_path / "probe" / "class_metrics.json").read_text())["warnings"]
    assert alerts, "the frozen probe is suspect"
    lines = [line for line in done.stderr.splitlines() if "ProbeWarning" in line]
    assert lines == [f"WARNING: ProbeWarning: {' '.join(a.split())}" for a in alerts]
    assert "warnings.warn" not in done.stderr and ".py:" not in done.stderr, "no source line"


@pytest.mark.slow  # a probe
def test_hf_drop_verbosity_error_silences_warnings_but_keeps_their_record(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DROP_VERBOSITY", "error")
    ran = _run([*FROZEN_PROBE, "--output", str(tmp_path / "probe")])
    assert ran["err"] == "" and "class errors" in ran["out"]
    assert json.loads((tmp_path / "probe" / "class_metrics.json").read_text())["warnings"]


def test_set_verbosity_error_silences_hf_drop_warnings_in_python():
    try:
        logs.set_verbosity("error")
        with warnings.catch_warnings(record=True) as caught:
            drop_quotas([10, 10], [0.0, 0.0], 0.5)  # no signal: a QuotaWarning
        assert caught == []
        logs.set_verbosity("info")
        with pytest.warns(QuotaWarning, match="no signal"):
            drop_quotas([10, 10], [0.0, 0.0], 0.5)
        assert issubclass(QuotaWarning, HfDropWarning), "one category reaches them all"
    finally:
        logs.set_verbosity(None)


def test_a_command_shows_each_warning_once_on_one_line(capsys):
    with logs.logging_options():
        for _ in range(3):
            warnings.warn("classes ['a'] have\n  zero error", QuotaWarning, stacklevel=1)
        warnings.warn("another library's", UserWarning, stacklevel=1)
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "WARNING: QuotaWarning: classes ['a'] have zero error",
        "WARNING: UserWarning: another library's",
    ]
    with logs.logging_options(log_level="error"):
        warnings.warn("silenced", UserWarning, stacklevel=1)
    assert capsys.readouterr().err == ""


# --- the Trainer's logging ----------------------------------------------------------------------


def test_the_trainer_logging_follows_hf_drop(monkeypatch):
    monkeypatch.delenv("HF_DROP_VERBOSITY", raising=False)
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    with logs.logging_options():
        assert logs.trainer_logging() == {
            "log_level": "passive",  # transformers' own level, as TrainingArguments' default
            "log_level_replica": "warning",
            "disable_tqdm": None,  # the Trainer decides
        }
    with logs.logging_options(log_level="debug", disable_tqdm=True):
        assert logs.trainer_logging()["log_level"] == "debug"
        assert logs.trainer_logging()["disable_tqdm"] is True
    monkeypatch.setenv("HF_DROP_VERBOSITY", "error")
    with logs.logging_options():
        from transformers.utils import logging as transformers_logging

        assert logs.trainer_logging() == {
            "log_level": "error",
            "log_level_replica": "error",
            "disable_tqdm": True,
        }
        assert transformers_logging.get_verbosity() >= logging.ERROR
    assert transformers_logging.get_verbosity() == logging.WARNING, "restored"


TINY_TRAIN = ["train", "--dataset", "digits", "--split", "train[:64]", "--eval-dataset",
              "digits", "--eval-split", "test[:32]", "--model", "test_resnet", "--epochs", "1",
              "--batch-size", "32", "--no-save-model"]  # fmt: skip


@pytest.mark.slow  # two short Trainer runs
def test_train_disable_tqdm_and_log_level_reach_the_trainer(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_DROP_VERBOSITY", raising=False)
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    shown = _run([*TINY_TRAIN, "--output", str(tmp_path / "shown")])
    assert "it/s]" in shown["err"], "the Trainer's bars, by default"
    quiet = _run([*TINY_TRAIN, "--disable_tqdm", "--log_level", "warning", "--output",
                  str(tmp_path / "quiet")])  # fmt: skip
    assert "it/s]" not in quiet["err"] and "%|" not in quiet["err"]
    assert quiet["err"] == "", "nor the Trainer's log lines, below the level"
    assert quiet["out"].splitlines()[-1].startswith("accuracy "), "stdout: the result only"
    assert "'loss'" not in quiet["out"]
    args = json.loads((tmp_path / "quiet" / "metrics.json").read_text())["training_args"]
    assert (args["disable_tqdm"], args["log_level"]) == (True, "warning")


def test_train_log_level_is_the_training_arguments_field_too():
    parsed = parse_command([*TINY_TRAIN, "--log-level", "critical", "--output", "o"])
    assert parsed.args.log_level == "critical" and parsed.training_args == {}
    with logs.logging_options(parsed.args.log_level):
        assert logs.trainer_logging()["log_level"] == "critical"


# --- the probe's batch note ---------------------------------------------------------------------


def test_the_global_batch_note_says_what_was_done(capsys):
    from hf_drop.probe.run import _log_batch

    batch = {"processes": 2, "per_process_batch_size": 32, "global_batch_size": 64,
             "steps_per_epoch": 5}  # fmt: skip
    with logs.logging_options():
        _log_batch(batch, ProbeConfig(model="m", global_batch_size=64))
        given = capsys.readouterr().err
        _log_batch(batch, ProbeConfig(model="m", batch_size=32))
        not_given = capsys.readouterr().err
    assert "per-process batch 32 computed from --global-batch-size 64 over 2" in given
    assert "pass --global-batch-size" not in given
    assert "pass --global-batch-size G" in not_given


# --- options: help, transformers' names, --config -----------------------------------------------


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_every_option_of_every_command_has_help_and_shows_its_default():
    missing = []
    for name, parser in _subcommands().items():
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            what = f"hf-drop {name} {(action.option_strings or [action.dest])[0]}"
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{what}: no help")
                continue
            default = action.default
            empty = default is None or default is False or default in ([], {}, ())
            shown = not empty and default != argparse.SUPPRESS
            if shown and action.option_strings and "default" not in action.help:
                missing.append(f"{what}: default {default!r} not shown")
            if default is False and "(default: False)" in action.help % vars(action):
                missing.append(f"{what}: says default False")  # a --no_x of a True switch
    assert missing == []


@pytest.mark.parametrize(
    ("flags", "field", "value"),
    [
        (["--num_train_epochs", "3"], "epochs", 3),
        (["--learning_rate", "0.1"], "lr", 0.1),
        (["--per_device_train_batch_size", "16"], "batch_size", 16),
        (["--per-device-train-batch-size", "16"], "batch_size", 16),
        (["--dataloader_num_workers", "2"], "num_workers", 2),
        (["--lr_scheduler_type", "constant"], "schedule", "constant"),
        (["--weight_decay", "0.01"], "weight_decay", 0.01),
        (["--seed", "3"], "seed", 3),
    ],
)
def test_the_probe_takes_the_transformers_names_train_takes(flags, field, value):
    base = ["probe", "--dataset", "digits", "--model", "m", "--output_dir", "o"]
    assert getattr(parse_command([*base, *flags]).args, field) == value
    train = ["train", "--dataset", "d", "--model", "m", "--output", "o"]
    train += [] if field == "epochs" else ["--epochs", "1"]
    if field != "schedule":  # train's schedule is the Trainer's own lr_scheduler_type
        assert getattr(parse_command([*train, *flags]).args, field) == value, "as train reads it"


@pytest.mark.parametrize("flag", ["--gradient_accumulation_steps", "--fp16", "--optim"])
def test_the_probe_refuses_training_arguments_it_cannot_honour(flag, capsys):
    extra = [] if flag == "--fp16" else ["2"]
    code, err = _exit(["probe", "--dataset", "digits", "--model", "m", "--output", "o", flag,
                       *extra], capsys)  # fmt: skip
    assert code == 2 and f"{flag}: transformers.TrainingArguments field(s)" in err
    assert "cannot honour" in err and "--per_device_train_batch_size" in err


def test_the_probe_and_train_refuse_a_setting_under_two_names(capsys):
    code, err = _exit(["probe", "--dataset", "digits", "--model", "m", "--output", "o",
                       "--batch-size", "8", "--per_device_train_batch_size", "16"], capsys)  # fmt: skip
    assert code == 2 and "set the same thing: give one of them" in err


def test_dataset_config_name_and_the_deprecated_config(tmp_path, capsys):
    base = ["probe", "--dataset", str(tmp_path / "absent"), "--model", "m", "--output", "o"]
    assert parse_command([*base, "--dataset_config_name", "x"]).args.dataset_config_name == "x"
    assert parse_command([*base, "--dataset_config_name", "x"]).notices == []
    old = parse_command([*base, "--config", "x"])
    assert old.args.dataset_config_name == "x"
    assert old.notices == [
        "--config is deprecated for hf-drop probe: it is --dataset_config_name (transformers' "
        "name); a file of options is --config_file"
    ]
    # Said once, as one line, when the command runs (here it then stops: no such dataset).
    code, err = _exit([*base[:-2], "--config", "x", "--output", str(tmp_path / "out")], capsys)
    assert code == 2 and err.count("WARNING: FutureWarning: --config is deprecated") == 1
    options = tmp_path / "prune.yaml"
    options.write_text("config: x\n")
    parsed = parse_command(["prune", str(options), "--class-errors", "[0.1]", "--dataset", "d",
                            "--density", "0.5", "--output", "o"])  # fmt: skip
    assert parsed.args.dataset_config_name == "x" and parsed.notices
