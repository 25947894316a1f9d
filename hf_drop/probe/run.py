"""The probe run: train a model on the full data under Accelerate and record, for every sample,
the scores of :mod:`hf_drop.probe.dynamics`, and, for every class, its validation recall.

The same code runs under ``python`` and under ``accelerate launch`` (any number of processes,
CPU or GPU). Each epoch ends in a checkpoint; a killed run started again with the same output
folder resumes from the last finished epoch and ends with the same result (refused if the data or
the number of processes differ). A loss, logit or score that is NaN or infinite stops the run
with :class:`ProbeDivergedError`; nothing of that epoch is written.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm
from transformers import get_scheduler

from ..data.columns import Labels, check_identity, dataset_identity, read_groups, read_labels
from ..io.environment import machine, versions
from ..io.logs import get_logger, progress_bars_enabled
from ..io.outputs import dataset_folders, prepare_output, start_output
from ..modeling.images import ImageBatches, check_image_split, describe_sizes, image_sizes, loader
from ..modeling.models import build_model
from .config import ProbeConfig
from .dynamics import STATISTICS, Dynamics, batch_statistics
from .result import CONFIG_FILE, ProbeResult, write_result

__all__ = ["ProbeDivergedError", "ProbeWarning", "run_probe"]

logger = get_logger(__name__)  # the main process logs (hf_drop.io.logs)


class ProbeDivergedError(ValueError, FloatingPointError):
    """The probe's loss, logits or scores became NaN or infinite: nothing was recorded."""


class ProbeWarning(UserWarning):
    """A finished probe whose class errors are suspect: near-chance accuracy, a class never
    predicted. Also recorded in ``class_metrics.json`` under ``"warnings"``."""


class _NonFinite(ArithmeticError):
    """Raised inside an epoch (the same on every process); run_probe names the init and epoch."""


def run_probe(
    train: datasets.Dataset,
    val: datasets.Dataset,
    config: ProbeConfig,
    output_dir: str | Path,
    *,
    source: dict[str, Any] | None = None,
    splits: dict[str, list[int]] | None = None,
    inputs: Iterable[str | os.PathLike | None] = (),
) -> ProbeResult:
    """Train ``config.num_inits`` probes on ``train``, judge them on ``val`` after every epoch, and
    write a :class:`ProbeResult` to ``output_dir``.

    ``source`` (name, config, split, ...) and ``splits`` (row indices of carved splits) are
    recorded with the result. ``output_dir`` must be new, empty, or a run of this probe (resumed);
    it may not overlap ``inputs`` (e.g. the dataset's folder) nor the datasets' Arrow files.
    """
    accelerator = Accelerator()
    out = Path(output_dir)
    plan = _check_inputs(train, val, config)  # every input error before any training
    if (out / CONFIG_FILE).exists():
        result = _existing_result(out, config, plan, train, val)
        logger.info(f"{out} already holds this probe's result: nothing to train")
        return result
    plan.batch = _batch(config, len(train), accelerator.num_processes)  # may refuse
    _claim_output(out, accelerator, train, val, inputs)  # refused, or ours, before training

    run = _Run(accelerator, config, out, plan, train, val, source, splits)
    progress = _load_progress(run)
    _log_batch(plan.batch)
    if progress.path is not None:
        _log_resume(progress, config)
    spec = None
    for init in range(progress.init, config.num_inits):
        spec = _train_init(run, progress, init)

    _check_finite(config, out, progress.totals, progress.embeddings)
    if spec is None:  # resumed after the last epoch of the last initialisation
        spec = _build(run)[2]
    if accelerator.is_main_process:
        _write_result(run, progress, spec)
        _remove_checkpoints(run.checkpoints)
    accelerator.wait_for_everyone()
    return ProbeResult.load(out)


# --- the state of a run -------------------------------------------------------------------------


@dataclass
class _LabelPlan:
    """The classes (the train split's), the class ids of both splits in them, and what
    identifies both splits (recorded by checkpoints and the result, checked on resume and reuse)."""

    labels: Labels
    val_labels: Labels
    train_ids: np.ndarray
    val_ids: np.ndarray
    identity: dict[str, dict[str, Any]]

    @property
    def names(self) -> list[str]:
        return self.labels.names

    @property
    def num_classes(self) -> int:
        return len(self.labels.names)


@dataclass
class _Plan(_LabelPlan):
    """Everything checked before training: labels, group ids of the validation rows, channels,
    image sizes, and (once the process count is known) the effective batch."""

    val_groups: Labels | None = None
    channels: int = 3
    sizes: dict[str, Any] = field(default_factory=dict)
    batch: dict[str, int] = field(default_factory=dict)


@dataclass
class _Run:
    """What a probe run works with, fixed from start to end."""

    accelerator: Accelerator
    config: ProbeConfig
    out: Path
    plan: _Plan
    train: datasets.Dataset
    val: datasets.Dataset
    source: dict[str, Any] | None
    splits: dict[str, list[int]] | None

    @property
    def checkpoints(self) -> Path:
        return self.out / "checkpoints"


@dataclass
class _Progress:
    """Where a run stands: the next initialisation and the last finished epoch in it (``None``:
    none yet), the scores summed over finished initialisations, the validation history, the
    embeddings, and the checkpoint it was read from (with its dynamics, mid-initialisation)."""

    init: int = 0
    epoch: int | None = None
    totals: dict[str, np.ndarray] = field(default_factory=dict)
    history: list[list[dict[str, Any]]] = field(default_factory=list)
    embeddings: np.ndarray | None = None
    path: Path | None = None
    dynamics: dict[str, np.ndarray] | None = None


# --- one initialisation -------------------------------------------------------------------------


def _build(run: _Run):
    """The probe model (a fresh initialisation), its preprocessing and its spec."""
    config, plan = run.config, run.plan
    return build_model(
        config.model,
        plan.num_classes,
        plan.channels,
        pretrained=config.pretrained,
        model_kwargs=config.model_kwargs,
        class_names=plan.names,
    )


def _train_init(run: _Run, progress: _Progress, init: int):
    """Train initialisation ``init`` from where ``progress`` stands; its scores are added to the
    totals. Returns the model's spec."""
    accelerator, config, plan = run.accelerator, run.config, run.plan
    set_seed(config.seed + init)
    model, preprocess, spec = _build(run)
    _check_sizes(plan, preprocess, config.model)  # before any training: a batch must stack
    train_loader = loader(
        ImageBatches(run.train, config.image_column, plan.train_ids, preprocess, config.augment),
        plan.batch["per_process_batch_size"],
        seed=config.seed + init,
        num_workers=config.num_workers,
    )
    val_loader = loader(
        ImageBatches(run.val, config.image_column, plan.val_ids, preprocess),
        plan.batch["per_process_batch_size"],
        shuffle=False,
        num_workers=config.num_workers,
    )
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    # transformers' schedules: "cosine" decays to 0 over every step of the run, per step.
    scheduler = get_scheduler(
        config.schedule,
        optimizer,
        num_warmup_steps=0,
        num_training_steps=max(config.epochs * len(train_loader), 1),
    )
    model, optimizer, scheduler, train_loader, val_loader = accelerator.prepare(
        model, optimizer, scheduler, train_loader, val_loader
    )
    plan.batch["steps_per_epoch"] = len(train_loader)
    dynamics = Dynamics(
        len(run.train), config.epochs, config.resolved_score_epoch, config.du_window
    )
    first_epoch = 0
    if progress.init == init and progress.epoch is not None:
        accelerator.load_state(str(progress.path))
        dynamics.load_state_dict(progress.dynamics)
        first_epoch = progress.epoch + 1
    if init > len(progress.history) - 1:
        progress.history.append([])

    training = _Training(accelerator, model, optimizer, scheduler, train_loader, dynamics)
    for epoch in range(first_epoch, config.epochs):
        _train_epoch(run, progress, training, val_loader, init, epoch)
    for name, values in dynamics.scores().items():
        progress.totals[name] = progress.totals.get(name, 0.0) + values.astype(np.float64)
    accelerator.free_memory(model, optimizer, scheduler, train_loader, val_loader)
    return spec


def _train_epoch(
    run: _Run, progress: _Progress, training: _Training, val_loader, init: int, epoch: int
) -> None:
    """One epoch, its validation, its log line and its checkpoint."""
    config = run.config
    keep_embeddings = config.embeddings and init == 0 and epoch == config.epochs - 1
    # Every process sees the same gathered values, so all of them stop together.
    try:
        progress.embeddings = training.epoch(
            epoch,
            progress.embeddings,
            keep_embeddings,
            desc=f"init {init + 1}/{config.num_inits} epoch {epoch + 1}/{config.epochs}",
        )
        if config.full_grand and epoch == config.resolved_score_epoch:
            _full_grand(
                run.accelerator,
                training.model,
                training.train_loader,
                training.dynamics,
                config.grand_chunk,
            )
        metrics = _evaluate(
            run.accelerator,
            training.model,
            val_loader,
            run.plan.num_classes,
            run.plan.val_groups,
        )
    except _NonFinite as what:
        where = f"at init {init + 1} epoch {epoch + 1} ({what})"
        raise _diverged(config, run.out, where) from None
    training.dynamics.end_epoch(epoch)
    metrics["train_loss"], metrics["train_accuracy"] = _train_summary(training.dynamics)
    progress.history[init].append(metrics)
    logger.info(
        f"init {init + 1}/{config.num_inits} epoch {epoch + 1}/{config.epochs}: "
        f"train loss {metrics['train_loss']:.4f} acc {metrics['train_accuracy']:.4f} | "
        f"val acc {metrics['accuracy']:.4f}, worst class {np.nanmin(metrics['recall']):.4f}"
    )
    _save_checkpoint(run, progress, init, epoch, training.dynamics)


# --- one epoch ----------------------------------------------------------------------------------


@dataclass
class _Training:
    """What one initialisation trains with, prepared by Accelerate."""

    accelerator: Accelerator
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    train_loader: Any
    dynamics: Dynamics

    def epoch(
        self, epoch: int, embeddings: np.ndarray | None, keep_embeddings: bool, desc: str
    ) -> np.ndarray | None:
        """One epoch of training; every batch's per-sample statistics go to the dynamics."""
        accelerator, model = self.accelerator, self.model
        model.train()
        self.train_loader.set_epoch(epoch)
        captured: dict[str, torch.Tensor] = {}
        # The head's input is the penultimate embedding: last-layer GraNd needs its norm.
        head = accelerator.unwrap_model(model).head
        hook = head.register_forward_hook(
            lambda _m, inputs, _o: captured.__setitem__("h", inputs[0])
        )
        try:
            for step, batch in enumerate(
                tqdm(
                    self.train_loader,
                    desc=desc,
                    leave=False,
                    disable=not accelerator.is_local_main_process or not progress_bars_enabled(),
                )
            ):
                logits = model(batch["pixel_values"])
                loss = F.cross_entropy(logits, batch["labels"])
                accelerator.backward(loss)
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)

                stats = batch_statistics(logits, batch["labels"], captured["h"])
                gathered = (batch["index"], stats)
                if keep_embeddings:
                    gathered += (captured["h"].detach().flatten(1).half(),)
                gathered = accelerator.gather_for_metrics(gathered)
                index, stats = gathered[0].cpu().numpy(), gathered[1].cpu().numpy()
                # Already on the host: the check costs no synchronisation. (A margin may be
                # infinite with one class; NaN logits make the loss NaN anyway.)
                if not np.isfinite(stats[:, _CHECKED]).all():
                    loss_value = float(np.mean(stats[:, 0]))
                    raise _NonFinite(
                        f"train loss {loss_value:.4g} at step {step + 1} of "
                        f"{len(self.train_loader)}"
                    )
                self.dynamics.update(epoch, index, stats)
                if keep_embeddings:
                    h = gathered[2].cpu().numpy()
                    if embeddings is None:
                        embeddings = np.zeros(
                            (len(self.dynamics.arrays["seen"]), h.shape[1]), np.float16
                        )
                    embeddings[index] = h
        finally:
            hook.remove()
        return embeddings


@torch.no_grad()
def _evaluate(accelerator, model, val_loader, num_classes, groups=None) -> dict[str, Any]:
    """Accuracy, per-class recall and support on the validation split; with ``groups`` (group
    ids of the validation rows), each group's support and hits too."""
    model.eval()
    predictions, labels, finite, rows = [], [], [], []
    for batch in val_loader:
        logits = model(batch["pixel_values"])
        p, y, ok, index = accelerator.gather_for_metrics(
            (
                logits.argmax(1),
                batch["labels"],
                torch.isfinite(logits).all(1).long(),
                batch["index"],
            )
        )
        predictions.append(p.cpu().numpy())
        labels.append(y.cpu().numpy())
        finite.append(ok.cpu().numpy())
        rows.append(index.cpu().numpy())
    p, y, ok = np.concatenate(predictions), np.concatenate(labels), np.concatenate(finite) > 0
    if not ok.all():
        raise _NonFinite(f"NaN or infinite validation logits for {int((~ok).sum())} images")
    metrics = _class_recall(p, y, num_classes)
    if groups is not None:  # by row index: the gathered order need not be the rows' order
        g = groups.ids[np.concatenate(rows)]
        metrics["group_support"] = np.bincount(g, minlength=len(groups.names)).tolist()
        metrics["group_hits"] = np.bincount(g[p == y], minlength=len(groups.names)).tolist()
    return metrics


def _class_recall(predictions: np.ndarray, labels: np.ndarray, num_classes: int) -> dict[str, Any]:
    """Accuracy, per-class recall (NaN for a class without support) and support."""
    p, y = predictions, labels
    support = np.bincount(y, minlength=num_classes)
    hits = np.bincount(y[p == y], minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, hits / np.maximum(support, 1), np.nan)
    return {
        "accuracy": float((p == y).mean()),
        "recall": recall.tolist(),
        "support": support.tolist(),
    }


def _full_grand(accelerator, model, train_loader, dynamics, chunk):
    """Full-parameter GraNd: the norm of each sample's loss gradient over all parameters, by
    vectorised per-sample gradients (torch.func), in eval mode (BatchNorm uses running stats)."""
    from torch.func import functional_call, grad, vmap

    network = accelerator.unwrap_model(model)
    network.eval()
    params = {k: v.detach() for k, v in network.named_parameters()}
    buffers = {k: v.detach() for k, v in network.named_buffers()}

    def sample_loss(params, buffers, x, y):
        logits = functional_call(network, (params, buffers), (x[None],))
        return F.cross_entropy(logits, y[None])

    per_sample = vmap(grad(sample_loss), in_dims=(None, None, 0, 0))
    for batch in tqdm(
        train_loader,
        desc="full GraNd",
        leave=False,
        disable=not accelerator.is_local_main_process or not progress_bars_enabled(),
    ):
        norms = []
        for x, y in zip(
            batch["pixel_values"].split(chunk), batch["labels"].split(chunk), strict=True
        ):
            grads = per_sample(params, buffers, x, y)
            norms.append(torch.sqrt(sum(g.flatten(1).pow(2).sum(1) for g in grads.values())))
        index, norm = accelerator.gather_for_metrics((batch["index"], torch.cat(norms)))
        norm = norm.cpu().numpy()
        if not np.isfinite(norm).all():
            raise _NonFinite("NaN or infinite full-parameter GraNd")
        dynamics.arrays["grand_full"][index.cpu().numpy()] = norm


# Statistics that must be finite in every batch (see the check in _Training.epoch).
_CHECKED = [k for k, name in enumerate(STATISTICS) if name != "margin"]


def _diverged(config: ProbeConfig, out: Path, where: str) -> ProbeDivergedError:
    return ProbeDivergedError(
        f"the probe diverged {where}: lower --lr (now {config.lr}), or check the model and data. "
        f"Nothing was recorded for this epoch: {out} holds no result (checkpoints of earlier "
        "epochs stay, for this configuration only: use another --output for new settings)"
    )


def _check_finite(config: ProbeConfig, out: Path, totals: dict, embeddings) -> None:
    """The last guard before the result is written: every score finite (on every process alike)."""
    bad = [name for name, values in totals.items() if not np.isfinite(values).all()]
    if embeddings is not None and not np.isfinite(embeddings).all():
        bad.append("embedding (penultimate features beyond float16's range)")
    if bad:
        raise _diverged(config, out, f"(NaN or infinite scores: {', '.join(bad)})")


def _train_summary(dynamics: Dynamics) -> tuple[float, float]:
    """Mean training loss and accuracy of the epoch just closed (from the last recorded p_true)."""
    a = dynamics.arrays
    p_true = a["p_true"][(dynamics.epochs_done - 1) % dynamics.window]
    return float(np.mean(-np.log(np.clip(p_true, 1e-12, None)))), float(a["correct"].mean())


# --- inputs -------------------------------------------------------------------------------------


def _check_inputs(train: datasets.Dataset, val: datasets.Dataset, config: ProbeConfig) -> _Plan:
    """Every input problem, as a clear error, before any model is built."""
    channels = check_image_split(train, "train split", config.image_column)
    check_image_split(val, "validation split", config.image_column)
    labels = _label_plan(train, val, config.label_column)
    return _Plan(
        **{f.name: getattr(labels, f.name) for f in dataclasses.fields(_LabelPlan)},
        val_groups=None if config.group_column is None else read_groups(val, config.group_column),
        channels=channels,
        # From the image headers: checked against the model's preprocessing once it is built.
        sizes={
            "train split": image_sizes(train, "train split", config.image_column),
            "validation split": image_sizes(val, "validation split", config.image_column),
        },
    )


def _label_plan(train: datasets.Dataset, val: datasets.Dataset, label_column: str) -> _LabelPlan:
    """The classes (the train split's), the class ids of both splits in them, and the identity
    of both splits; a validation class that train lacks is an error."""
    labels = read_labels(train, label_column)
    val_labels = read_labels(val, label_column)
    position = {name: k for k, name in enumerate(labels.names)}
    in_train = {labels.names[k] for k in np.unique(labels.ids)}
    in_val = sorted({val_labels.names[k] for k in np.unique(val_labels.ids)})
    unknown = [name for name in in_val if name not in in_train]
    if unknown:
        raise ValueError(f"validation classes {unknown} do not occur in the train split's labels")
    lookup = np.array([position.get(name, -1) for name in val_labels.names])
    return _LabelPlan(
        labels=labels,
        val_labels=val_labels,
        train_ids=labels.ids,
        val_ids=lookup[val_labels.ids],
        identity={
            "train": dataset_identity(train, label_column, labels=labels),
            "validation": dataset_identity(val, label_column, labels=val_labels),
        },
    )


def _check_sizes(plan: _Plan, preprocess, model: str) -> None:
    """Images of several sizes only with a model whose preprocessing resizes them to one."""
    if preprocess.image_size is not None:
        return
    sizes = plan.sizes
    if len({size for found in sizes.values() for size in found}) > 1:
        found = "; ".join(f"{role}: {describe_sizes(s)}" for role, s in sizes.items())
        raise ValueError(
            f"the images are not all of one size ({found}), and model {model!r} keeps each "
            "image's own size (its preprocessing does not resize), so a batch cannot stack them: "
            "resize the images to one size first (e.g. dataset.map with image.resize), or use a "
            "model whose preprocessing resizes (a --pretrained timm model, a checkpoint with an "
            "image processor)"
        )


def _batch(config: ProbeConfig, num_rows: int, processes: int) -> dict[str, int]:
    """The effective batch: each process takes ``per_process_batch`` rows per step."""
    per_process = config.per_process_batch(processes)
    global_batch = per_process * processes
    return {
        "processes": processes,
        "per_process_batch_size": per_process,
        "global_batch_size": global_batch,
        "steps_per_epoch": math.ceil(num_rows / global_batch),
    }


def _log_batch(batch: dict[str, int]) -> None:
    n, b, g = batch["processes"], batch["per_process_batch_size"], batch["global_batch_size"]
    logger.info(
        f"probe: {n} process(es) x batch {b} = global batch {g}, "
        f"{batch['steps_per_epoch']} steps per epoch"
    )
    if n > 1:
        logger.info(
            f"note: the global batch is {n} x {b}; lr is not rescaled. To train the same way on "
            "any number of processes, pass --global-batch-size G (split evenly among them)"
        )


def _log_resume(progress: _Progress, config: ProbeConfig) -> None:
    """Say where a run picks up again (1-based, as the epoch lines count)."""
    init, epoch = progress.init, 0 if progress.epoch is None else progress.epoch + 1
    if init >= config.num_inits:
        logger.info(f"every epoch is done (checkpoint {progress.path}): writing the result")
    else:
        logger.info(
            f"resuming from epoch {epoch + 1} of init {init + 1} (checkpoint {progress.path})"
        )


# --- the output folder, checkpoints and the result -------------------------------------------

_CHECKPOINT_NAME = re.compile(r"init\d{3}-epoch\d{4}")


def _claim_output(out: Path, accelerator, train, val, inputs=()) -> None:
    """The output folder, checked, created and marked as a probe run's before any training (an
    unwritable folder fails here). Refused, with nothing written: a non-empty folder that is not a
    probe run's, one of another kind, one that overlaps the datasets' files. A symlink is written
    through."""
    inputs = [*inputs, *dataset_folders(train, val)]
    # Every process checks (nothing is written): a refusal stops them all, none waits at the
    # barrier for a main process that has already failed.
    prepare_output(out, "probe", resume=True, inputs=inputs, what="--output")
    if accelerator.is_main_process:
        start_output(out, "probe", inputs=inputs)
    accelerator.wait_for_everyone()


def _checkpoint_folders(checkpoints: Path) -> list[Path]:
    """The checkpoints the probe wrote (``initIII-epochEEEE``); any other entry is left alone."""
    if not checkpoints.is_dir():
        return []
    return [p for p in checkpoints.iterdir() if p.is_dir() and _CHECKPOINT_NAME.fullmatch(p.name)]


def _remove_checkpoints(checkpoints: Path) -> None:
    """Once the result is whole: remove the probe's checkpoints, and the folder if then empty."""
    for path in _checkpoint_folders(checkpoints):
        shutil.rmtree(path, ignore_errors=True)
    try:
        checkpoints.rmdir()
    except OSError:  # absent, or holds something that is not the probe's
        pass


def _save_checkpoint(
    run: _Run, progress: _Progress, init: int, epoch: int, dynamics: Dynamics
) -> None:
    """State after (init, epoch): the model, optimizer, scheduler and RNGs (Accelerate), the
    bookkeeping with the identity of the data and the process count that resuming checks,
    and a COMPLETE marker written last; older checkpoints are then removed."""
    # Not Accelerate's ProjectConfiguration(automatic_checkpoint_naming, total_limit): its
    # rotation deletes the oldest entries of the folder *before* writing the new checkpoint (a
    # kill mid-save would leave no checkpoint) and deletes whatever else is in that folder.
    accelerator = run.accelerator
    path = run.checkpoints / f"init{init:03d}-epoch{epoch:04d}"
    accelerator.save_state(str(path))
    if accelerator.is_main_process:
        np.savez(path / "dynamics.npz", **dynamics.state_dict())
        np.savez(path / "totals.npz", **progress.totals)
        if progress.embeddings is not None:
            np.save(path / "embeddings.npy", progress.embeddings)
        record = {
            "init": init,
            "epoch": epoch,
            "config": run.config.to_dict(),
            "data": run.plan.identity,
            "processes": accelerator.num_processes,
            "history": progress.history,
        }
        (path / "progress.json").write_text(json.dumps(record))
        (path / "COMPLETE").touch()
        for old in _checkpoint_folders(run.checkpoints):  # its own, never anything else there
            if old != path:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def _load_progress(run: _Run) -> _Progress:
    """Where to start: the last complete checkpoint, or the beginning. Refused: a checkpoint of
    another configuration, of other data, or of another number of processes."""
    checkpoints, config, processes = run.checkpoints, run.config, run.accelerator.num_processes
    done = sorted(p for p in checkpoints.glob("init*-epoch*") if (p / "COMPLETE").exists())
    if not done:
        return _Progress()
    path = done[-1]
    record = json.loads((path / "progress.json").read_text())
    saved = ProbeConfig.from_dict(record["config"])
    if saved != config:
        raise ValueError(
            f"{checkpoints} holds a checkpoint of another probe configuration "
            f"({saved}); use another output folder or delete it"
        )
    out = checkpoints.parent
    holds = f"--output {out} holds an unfinished probe"
    _check_data(record.get("data"), run.plan, run.train, run.val, holds)
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
    init, epoch = record["init"], record["epoch"]
    with np.load(path / "totals.npz") as f:
        totals = {k: f[k] for k in f.files}
    with np.load(path / "dynamics.npz") as f:
        state = {k: f[k] for k in f.files}
    embeddings = np.load(path / "embeddings.npy") if (path / "embeddings.npy").exists() else None
    if epoch == config.epochs - 1:  # that initialisation had finished: its scores are in totals?
        dynamics = Dynamics(
            len(state["seen"]), config.epochs, config.resolved_score_epoch, config.du_window
        )
        dynamics.load_state_dict(state)
        for name, values in dynamics.scores().items():
            totals[name] = totals.get(name, 0.0) + values.astype(np.float64)
        return _Progress(init + 1, None, totals, record["history"], embeddings, path)
    return _Progress(init, epoch, totals, record["history"], embeddings, path, state)


def _existing_result(out: Path, config: ProbeConfig, plan: _Plan, train, val) -> ProbeResult:
    """The finished result in ``out``, if it is one of this configuration on this data."""
    result = ProbeResult.load(out)
    if ProbeConfig.from_dict(result.record["config"]) != config:
        raise ValueError(
            f"{out} already holds a probe result of another configuration; "
            "use another output folder or delete it"
        )
    record = result.record
    data = {"train": record.get("source"), "validation": record.get("validation")}
    _check_data(data, plan, train, val, f"--output {out} holds a finished probe")
    return result


def _check_data(data: dict | None, plan: _LabelPlan, train, val, holds: str) -> None:
    """A ValueError unless the train and validation splits are those ``data`` records."""
    fix = "use another --output (or delete that folder to probe this data there)"
    for role, verb, split, labels in (
        ("train", "trained on", train, plan.labels),
        ("validation", "validated on", val, plan.val_labels),
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
            labels=labels,
            actual=plan.identity[role],  # digested once, in _check_inputs
        )


def _write_result(run: _Run, progress: _Progress, spec) -> None:
    """The result of this run (see :func:`hf_drop.probe.result.write_result`): scores averaged
    over initialisations, and the record of what produced them."""
    config, plan, accelerator = run.config, run.plan, run.accelerator
    record = {
        "config": config.to_dict(),
        "model": {"name": spec.name, "kind": spec.kind, "pretrained": spec.pretrained},
        "processes": accelerator.num_processes,
        "batch": plan.batch,
        "device": str(accelerator.device),
        "source": {
            **(run.source or {}),
            "fingerprint": run.train._fingerprint,
            **plan.identity["train"],
        },
        "validation": plan.identity["validation"],
        "versions": versions("torch", "accelerate", "datasets", "timm", "transformers", "numpy"),
        "machine": machine(),
    }
    alerts = write_result(
        run.out,
        scores={name: total / config.num_inits for name, total in progress.totals.items()},
        labels=plan.train_ids,
        names=plan.names,
        history=progress.history,
        class_errors_from=config.class_errors_from,
        record=record,
        embeddings=progress.embeddings,
        splits=run.splits,
        group_names=None if plan.val_groups is None else plan.val_groups.names,
    )
    for message in alerts:
        warnings.warn(message, ProbeWarning, stacklevel=3)
        logger.warning(message)
