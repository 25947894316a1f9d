"""A probe run's output folder and its checkpoints: the folder is claimed before any training;
after every epoch a checkpoint holds Accelerate's state and the recorder's, with what resuming
checks (configuration, data, process count); a run started again goes on from the last complete
one; once the result is whole they are removed.

The files of a checkpoint (``checkpoints/initIII-epochEEEE/``): Accelerate's state,
``dynamics.npz``, ``totals.npz``, ``embeddings.npy`` (:meth:`ProbeRecorder.save`),
``progress.json`` (init, epoch, config, data, processes, history) and ``COMPLETE``, written last.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
from accelerate import Accelerator

from ..data.columns import check_identity
from ..io.outputs import (
    dataset_folders,
    missing_folders,
    prepare_output,
    release_output,
    start_output,
)
from .config import ProbeConfig
from .recorder import ProbeLabels, ProbeRecorder
from .result import ProbeResult

__all__ = [
    "Start",
    "claim_output",
    "existing_result",
    "release_claim",
    "remove_checkpoints",
    "resume",
    "save_checkpoint",
]

CHECKPOINTS_DIR = "checkpoints"
_CHECKPOINT_NAME = re.compile(r"init\d{3}-epoch\d{4}")


@dataclass
class Start:
    """Where a run starts: the initialisation and epoch to train next, and the checkpoint they
    follow (``None``: from the beginning)."""

    init: int = 0
    epoch: int = 0
    checkpoint: Path | None = None


def claim_output(
    out: Path,
    accelerator: Accelerator,
    train: datasets.Dataset,
    val: datasets.Dataset,
    inputs: Iterable[str | os.PathLike | None] = (),
) -> list[Path] | None:
    """The output folder, checked, created and marked as a probe run's before any training (an
    unwritable folder fails here). Refused, with nothing written: a non-empty folder that is not a
    probe run's, one of another kind, one that overlaps the datasets' files. A symlink is written
    through. Returns the folders this created (the output and missing parents: empty if the
    user's folder was empty), or ``None`` for a run of this probe that resumes, for
    :func:`release_claim`."""
    inputs = [*inputs, *dataset_folders(train, val)]
    # Every process checks (nothing is written): a refusal stops them all, none waits at the
    # barrier for a main process that has already failed.
    real = prepare_output(out, "probe", resume=True, inputs=inputs, what="--output")
    created = None if real.exists() and any(real.iterdir()) else missing_folders(real)
    if accelerator.is_main_process:
        start_output(out, "probe", inputs=inputs)
    accelerator.wait_for_everyone()
    return created


def release_claim(out: Path, accelerator: Accelerator, created: list[Path] | None) -> None:
    """After a run that failed before its first checkpoint: the output folder as it was before
    :func:`claim_output` (``created``: what it created), so that no empty folder of hf-drop's is
    left behind; an unfinished run that resumed stays as it is."""
    if created is not None and accelerator.is_main_process:
        release_output(out, "probe", created=created)


def existing_result(
    out: Path,
    config: ProbeConfig,
    labels: ProbeLabels,
    train: datasets.Dataset,
    val: datasets.Dataset,
) -> ProbeResult:
    """The finished result in ``out``, if it is one of this configuration on this data."""
    result = ProbeResult.load(out)
    if ProbeConfig.from_dict(result.record["config"]) != config:
        raise ValueError(
            f"{out} already holds a probe result of another configuration; "
            "use another output folder or delete it"
        )
    record = result.record
    data = {"train": record.get("source"), "validation": record.get("validation")}
    _check_data(data, labels, train, val, f"--output {out} holds a finished probe")
    return result


def save_checkpoint(
    accelerator: Accelerator,
    out: Path,
    recorder: ProbeRecorder,
    *,
    init: int,
    epoch: int,
    config: ProbeConfig,
) -> None:
    """State after (init, epoch): the model, optimizer, scheduler and RNGs (Accelerate), the
    recorder's, and the history with the identity of the data and the process count that
    resuming checks, and a COMPLETE marker written last; older checkpoints are then removed."""
    # Not Accelerate's ProjectConfiguration(automatic_checkpoint_naming, total_limit): its
    # rotation deletes the oldest entries of the folder *before* writing the new checkpoint (a
    # kill mid-save would leave no checkpoint) and deletes whatever else is in that folder.
    checkpoints = out / CHECKPOINTS_DIR
    path = checkpoints / f"init{init:03d}-epoch{epoch:04d}"
    accelerator.save_state(str(path))
    if accelerator.is_main_process:
        recorder.save(path)
        record = {
            "init": init,
            "epoch": epoch,
            "config": config.to_dict(),
            "data": recorder.labels.identity,
            "processes": accelerator.num_processes,
            "history": recorder.history,
        }
        (path / "progress.json").write_text(json.dumps(record))
        (path / "COMPLETE").touch()
        for old in _checkpoint_folders(checkpoints):  # its own, never anything else there
            if old != path:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def resume(
    accelerator: Accelerator,
    out: Path,
    recorder: ProbeRecorder,
    config: ProbeConfig,
    train: datasets.Dataset,
    val: datasets.Dataset,
) -> Start:
    """Where to start: after the last complete checkpoint (its state restored into
    ``recorder``), or the beginning. Refused: a checkpoint of another configuration, of other
    data, or of another number of processes."""
    checkpoints, processes = out / CHECKPOINTS_DIR, accelerator.num_processes
    done = sorted(p for p in checkpoints.glob("init*-epoch*") if (p / "COMPLETE").exists())
    if not done:
        return Start()
    path = done[-1]
    record = json.loads((path / "progress.json").read_text())
    saved = ProbeConfig.from_dict(record["config"])
    if saved != config:
        raise ValueError(
            f"{checkpoints} holds a checkpoint of another probe configuration "
            f"({saved}); use another output folder or delete it"
        )
    holds = f"--output {out} holds an unfinished probe"
    _check_data(record.get("data"), recorder.labels, train, val, holds)
    saved_processes = record.get("processes")
    if saved_processes != processes:
        # Accelerate restores only the random states of the processes it finds, and the global
        # batch would change mid-run: the result would match no uninterrupted run.
        raise ValueError(
            f"--output {out} holds an unfinished probe that ran on {saved_processes} process(es); "
            f"this run has {processes}: resuming would change the global batch "
            f"({config.batch_size} per process) and lose random states, so the result would "
            f"match no uninterrupted run. Resume with {saved_processes} process(es) "
            f"(accelerate launch --num_processes {saved_processes}), or use another --output"
        )
    init, epoch = recorder.load(
        path, init=record["init"], epoch=record["epoch"], history=record["history"]
    )
    return Start(init, epoch, path)


def _checkpoint_folders(checkpoints: Path) -> list[Path]:
    """The checkpoints the probe wrote (``initIII-epochEEEE``); any other entry is left alone."""
    if not checkpoints.is_dir():
        return []
    return [p for p in checkpoints.iterdir() if p.is_dir() and _CHECKPOINT_NAME.fullmatch(p.name)]


def remove_checkpoints(out: Path) -> None:
    """Once the result is whole: remove the probe's checkpoints, and the folder if then empty."""
    checkpoints = out / CHECKPOINTS_DIR
    for path in _checkpoint_folders(checkpoints):
        shutil.rmtree(path, ignore_errors=True)
    try:
        checkpoints.rmdir()
    except OSError:  # absent, or holds something that is not the probe's
        pass


def _check_data(
    data: dict[str, Any] | None,
    labels: ProbeLabels,
    train: datasets.Dataset,
    val: datasets.Dataset,
    holds: str,
) -> None:
    """A ValueError unless the train and validation splits are those ``data`` records."""
    fix = "use another --output (or delete that folder to probe this data there)"
    for role, verb, split, split_labels in (
        ("train", "trained on", train, labels.train),
        ("validation", "validated on", val, labels.validation),
    ):
        recorded = (data or {}).get(role)
        if not recorded or "num_rows" not in recorded:
            raise ValueError(
                f"{holds} that did not record the identity of its {role} split (an older "
                f"hf-drop), so it cannot be checked against this data: {fix}"
            )
        # "... holds a finished probe trained on another dataset: this one has ...: {fix}"
        check_identity(
            split,
            recorded,
            seen=f"{holds} {verb}",
            fix=fix,
            labels=split_labels,
            actual=labels.identity[role],  # digested once, by ProbeLabels.read
        )
