"""The probe under `accelerate launch`, and a killed probe resumed (subprocesses, on CPU)."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import launch_two

from hf_drop.probe import ProbeResult

pytestmark = pytest.mark.slow  # accelerate launch, probes in child processes

# No BatchNorm in test_vit: a sample's output does not depend on the rest of its batch, so with
# lr=0 one process and two must agree exactly. 437 digits: the last batch needs padding.
FROZEN = ["probe", "--dataset", "digits", "--max_train_samples", "437", "--model", "test_vit",
          "--model-kwargs", '{"img_size": 8, "patch_size": 2}', "--epochs", "2", "--lr", "0",
          "--batch-size", "50", "--full-grand", "--embeddings"]  # fmt: skip


def run(command, **kwargs):
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, env=env, capture_output=True, text=True, **kwargs)


def test_two_processes_record_the_same_scores_as_one(tmp_path):
    one = run([sys.executable, "-m", "hf_drop", *FROZEN, "--output", str(tmp_path / "one")])
    assert one.returncode == 0, one.stderr[-3000:]
    two = run(launch_two("-m", "hf_drop", *FROZEN, "--output", str(tmp_path / "two")))
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = ProbeResult.load(tmp_path / "one"), ProbeResult.load(tmp_path / "two")
    assert (a.record["processes"], b.record["processes"]) == (1, 2)
    alerts = b.class_metrics["warnings"]  # lr 0: a probe that did not learn
    said = [line for line in two.stderr.splitlines() if "ProbeWarning" in line]
    assert alerts and len(said) == len(alerts), "each warning once, from the main process"
    for name in [*a.score_names, "embedding"]:
        np.testing.assert_allclose(b.score(name), a.score(name), rtol=1e-5, atol=1e-6, err_msg=name)
    assert np.array_equal(a.class_errors, b.class_errors)


def test_two_processes_train_a_probe_on_the_same_sample_as_one(tmp_path):
    """``--data_fraction``: every process draws the same sample (by the seed) and shares it."""
    sample = [*FROZEN, "--data_fraction", "0.5"]
    one = run([sys.executable, "-m", "hf_drop", *sample, "--output", str(tmp_path / "one")])
    assert one.returncode == 0, one.stderr[-3000:]
    two = run(launch_two("-m", "hf_drop", *sample, "--output", str(tmp_path / "two")))
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = ProbeResult.load(tmp_path / "one"), ProbeResult.load(tmp_path / "two")
    # half of 437, rounded half up
    assert a.record["trained_rows"] == b.record["trained_rows"] == 219
    rows_a, rows_b = np.array(a.scores["index"][:]), np.array(b.scores["index"][:])
    assert np.array_equal(rows_a, rows_b) and len(np.unique(rows_a)) == 219
    for name in a.score_names:
        np.testing.assert_allclose(
            b.scores[name][:], a.scores[name][:], rtol=1e-5, atol=1e-6, err_msg=name
        )
    assert np.array_equal(a.class_errors, b.class_errors)


def test_a_killed_probe_resumes_to_the_same_result(tmp_path):
    command = [sys.executable, "-m", "hf_drop", "probe", "--dataset", "digits",
               "--max_train_samples", "480", "--model", "test_resnet", "--epochs", "3",
               "--batch-size", "32", "--num-inits", "2", "--augment"]  # fmt: skip
    full = run([*command, "--output", str(tmp_path / "full")])
    assert full.returncode == 0, full.stderr[-3000:]

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = subprocess.Popen(
        [*command, "--output", str(tmp_path / "killed")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Kill it during the second initialisation, once its first epoch is checkpointed.
    marker = tmp_path / "killed" / "checkpoints" / "init001-epoch0000" / "COMPLETE"
    deadline = time.monotonic() + 300
    while not marker.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert marker.exists(), "the run never reached its checkpoint"
    assert not (tmp_path / "killed" / "probe_config.json").exists(), "killed before the end"

    resumed = run([*command, "--output", str(tmp_path / "killed")])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = ProbeResult.load(tmp_path / "full"), ProbeResult.load(tmp_path / "killed")
    for name in a.score_names:
        assert np.array_equal(a.score(name), b.score(name)), name
    assert np.array_equal(a.class_errors, b.class_errors)
    assert a.class_metrics == b.class_metrics
