"""The probe run: train a model on the full data under Accelerate and record, for every sample,
the scores of :mod:`hf_drop.probe.dynamics`, and, for every class, its validation recall.

The same code runs under ``python`` and under ``accelerate launch`` (any number of processes,
CPU or GPU). Each epoch ends in a checkpoint; a killed run started again with the same output
folder resumes from the last finished epoch and ends with the same result (refused if the data or
the number of processes differ). A loss, logit or score that is NaN or infinite stops the run
with :class:`ProbeDivergedError`; nothing of that epoch is written.

Here is the loop; what it records is the recorder's (:mod:`hf_drop.probe.recorder`), the output
folder and its checkpoints are :mod:`hf_drop.probe.checkpoints`'.
"""

from __future__ import annotations

import dataclasses
import math
import os
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
from numpy.typing import NDArray
from tqdm.auto import tqdm
from transformers import get_scheduler

from ..core.quotas import budget
from ..data.columns import Labels, read_groups
from ..data.splits import stratified_rows
from ..io.logs import get_logger, progress_bars_enabled
from ..modeling.images import ImageBatches, check_image_split, check_one_size, image_sizes, loader
from ..modeling.models import build_model
from ..modeling.sizes import parse_image_size
from .checkpoints import (
    Start,
    claim_output,
    existing_result,
    release_claim,
    remove_checkpoints,
    resume,
    save_checkpoint,
)
from .config import ProbeConfig
from .dynamics import batch_statistics
from .recorder import (
    NonFiniteError,
    ProbeDivergedError,
    ProbeLabels,
    ProbeRecorder,
    ProbeWarning,
)
from .result import CONFIG_FILE, ProbeResult

__all__ = ["ProbeDivergedError", "ProbeWarning", "run_probe"]

logger = get_logger(__name__)  # the main process logs (hf_drop.io.logs)


def run_probe(
    train: datasets.Dataset,
    val: datasets.Dataset,
    config: ProbeConfig,
    output_dir: str | Path,
    *,
    source: dict[str, Any] | None = None,
    splits: dict[str, Any] | None = None,
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
        result = existing_result(out, config, plan.labels, train, val)
        logger.info(f"{out} already holds this probe's result: nothing to train")
        return result
    plan.batch = _batch(config, plan.num_trained(len(train)), accelerator.num_processes)
    created = claim_output(
        out, accelerator, train, val, inputs
    )  # refused, or ours, before training
    try:
        _probe(accelerator, config, out, plan, train, val, source, splits)
    except BaseException:
        # Failed before its first checkpoint (bad sizes, a model that does not build, Ctrl-C):
        # no folder of hf-drop's is left behind empty; one with a checkpoint stays, to resume.
        release_claim(out, accelerator, created)
        raise
    return ProbeResult.load(out)


def _probe(
    accelerator: Accelerator,
    config: ProbeConfig,
    out: Path,
    plan: _Plan,
    train: datasets.Dataset,
    val: datasets.Dataset,
    source: dict[str, Any] | None,
    splits: dict[str, Any] | None,
) -> None:
    """Every initialisation, trained and recorded; the result written into ``out``."""
    trained = train if plan.rows is None else train.select(plan.rows)
    run = _Run(accelerator, config, out, plan, trained, val, source, splits)
    recorder = ProbeRecorder(
        plan.trained_labels,
        epochs=config.epochs,
        score_epoch=config.resolved_score_epoch,
        du_window=config.du_window,
        num_inits=config.num_inits,
        embeddings=config.embeddings,
        class_errors_from=config.class_errors_from,
        groups=plan.val_groups,
    )
    start = resume(accelerator, out, recorder, config, train, val)
    _log_sample(plan, len(train), config)
    _log_batch(plan.batch, config)
    if start.checkpoint is not None:
        _log_resume(start, config)
    spec = None
    for init in range(start.init, config.num_inits):
        spec = _train_init(run, recorder, init, start)

    bad = recorder.non_finite()  # the last guard (on every process alike)
    if bad:
        raise _diverged(config, out, f"(NaN or infinite scores: {', '.join(bad)})")
    if spec is None:  # resumed after the last epoch of the last initialisation
        spec = _build(run)[2]
    if accelerator.is_main_process:
        _write_result(run, recorder, spec)
        remove_checkpoints(out)
    accelerator.wait_for_everyone()


# --- the state of a run -------------------------------------------------------------------------


@dataclass
class _Plan:
    """Everything checked before training: labels, group ids of the validation rows, channels,
    image sizes, the training rows of a probe on a sample (``rows``; None: every row), and
    (once the process count is known) the effective batch."""

    labels: ProbeLabels
    val_groups: Labels | None = None
    channels: int = 3
    sizes: dict[str, Any] = field(default_factory=dict)
    batch: dict[str, int] = field(default_factory=dict)
    rows: NDArray[np.int64] | None = None

    def num_trained(self, num_rows: int) -> int:
        return num_rows if self.rows is None else len(self.rows)

    @property
    def trained_labels(self) -> ProbeLabels:
        """The labels the probe trains on: the sample's class ids, the whole set's identity
        (what resuming checks, and what the result records: the set it prunes)."""
        if self.rows is None:
            return self.labels
        return dataclasses.replace(self.labels, train_ids=self.labels.train_ids[self.rows])


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
    splits: dict[str, Any] | None


# --- one initialisation -------------------------------------------------------------------------


def _build(run: _Run):
    """The probe model (a fresh initialisation), its preprocessing and its spec."""
    config, labels = run.config, run.plan.labels
    return build_model(
        config.model,
        labels.num_classes,
        run.plan.channels,
        pretrained=config.pretrained,
        model_kwargs=config.model_kwargs,
        class_names=labels.names,
        image_size=parse_image_size(config.image_size),
    )


def _train_init(run: _Run, recorder: ProbeRecorder, init: int, start: Start):
    """Train initialisation ``init`` (from ``start`` if that is within it), recording it.
    Returns the model's spec."""
    accelerator, config, plan = run.accelerator, run.config, run.plan
    set_seed(config.seed + init)
    model, preprocess, spec = _build(run)
    check_one_size(plan.sizes, preprocess, config.model)  # before training: a batch must stack
    batch_size = plan.batch["per_process_batch_size"]
    train_loader = loader(
        ImageBatches(
            run.train,
            config.image_column,
            plan.trained_labels.train_ids,
            preprocess,
            config.augment,
        ),
        batch_size,
        seed=config.seed + init,
        num_workers=config.num_workers,
    )
    val_loader = loader(
        ImageBatches(run.val, config.image_column, plan.labels.val_ids, preprocess),
        batch_size,
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
    recorder.start_init(init, steps_per_epoch=len(train_loader))
    first_epoch = 0
    if start.init == init and start.epoch > 0:  # resumed within this initialisation
        accelerator.load_state(str(start.checkpoint))
        first_epoch = start.epoch

    training = _Training(accelerator, model, optimizer, scheduler, train_loader, recorder)
    for epoch in range(first_epoch, config.epochs):
        desc = f"init {init + 1}/{config.num_inits} epoch {epoch + 1}/{config.epochs}"
        try:  # every process sees the same gathered values, so all of them stop together
            training.epoch(epoch, desc=desc)
            if config.full_grand and epoch == config.resolved_score_epoch:
                _full_grand(accelerator, model, train_loader, recorder.dynamics, config.grand_chunk)
            recorder.end_epoch(epoch)
            metrics = recorder.record_validation(*_predict(accelerator, model, val_loader))
        except NonFiniteError as what:
            where = f"at init {init + 1} epoch {epoch + 1} ({what})"
            raise _diverged(config, run.out, where) from None
        logger.info(
            f"{desc}: train loss {metrics['train_loss']:.4f} acc {metrics['train_accuracy']:.4f} "
            f"| val acc {metrics['accuracy']:.4f}, worst class {np.nanmin(metrics['recall']):.4f}"
        )
        save_checkpoint(accelerator, run.out, recorder, init=init, epoch=epoch, config=config)
    recorder.end_init()
    accelerator.free_memory(model, optimizer, scheduler, train_loader, val_loader)
    return spec


# --- one epoch ----------------------------------------------------------------------------------


@dataclass
class _Training:
    """What one initialisation trains with, prepared by Accelerate, and its recorder."""

    accelerator: Accelerator
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    train_loader: Any
    recorder: ProbeRecorder

    def epoch(self, epoch: int, desc: str) -> None:
        """One epoch of training; every batch's per-sample statistics go to the recorder."""
        accelerator, model, recorder = self.accelerator, self.model, self.recorder
        model.train()
        self.train_loader.set_epoch(epoch)
        keep_embeddings = recorder.wants_embeddings(epoch)
        captured: dict[str, torch.Tensor] = {}
        # The head's input is the penultimate embedding: last-layer GraNd needs its norm.
        head = accelerator.unwrap_model(model).head
        hook = head.register_forward_hook(
            lambda _m, inputs, _o: captured.__setitem__("h", inputs[0])
        )
        bars = accelerator.is_local_main_process and progress_bars_enabled()
        try:
            for batch in tqdm(self.train_loader, desc=desc, leave=False, disable=not bars):
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
                # Gathered with their row indices: padding never counts a row twice.
                gathered = accelerator.gather_for_metrics(gathered)
                recorder.record_batch(epoch, *(t.cpu().numpy() for t in gathered))
        finally:
            hook.remove()


@torch.no_grad()
def _predict(accelerator, model, val_loader) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predicted classes, row indices and whether the logits are finite, of every validation
    row (gathered from every process)."""
    model.eval()
    predictions, rows, finite = [], [], []
    for batch in val_loader:
        logits = model(batch["pixel_values"])
        p, index, ok = accelerator.gather_for_metrics(
            (logits.argmax(1), batch["index"], torch.isfinite(logits).all(1).long())
        )
        predictions.append(p.cpu().numpy())
        rows.append(index.cpu().numpy())
        finite.append(ok.cpu().numpy())
    return np.concatenate(predictions), np.concatenate(rows), np.concatenate(finite) > 0


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
            raise NonFiniteError("NaN or infinite full-parameter GraNd")
        dynamics.arrays["grand_full"][index.cpu().numpy()] = norm


def _diverged(config: ProbeConfig, out: Path, where: str) -> ProbeDivergedError:
    return ProbeDivergedError(
        f"the probe diverged {where}: lower --lr (now {config.lr}), or check the model and data. "
        f"Nothing was recorded for this epoch: {out} holds no result (checkpoints of earlier "
        "epochs stay, for this configuration only: use another --output for new settings)"
    )


# --- inputs -------------------------------------------------------------------------------------


def _check_inputs(train: datasets.Dataset, val: datasets.Dataset, config: ProbeConfig) -> _Plan:
    """Every input problem, as a clear error, before any model is built."""
    channels = check_image_split(train, "train split", config.image_column)
    check_image_split(val, "validation split", config.image_column)
    labels = ProbeLabels.read(train, val, config.label_column)
    return _Plan(
        labels=labels,
        rows=_sample(labels.train_ids, config),
        val_groups=None if config.group_column is None else read_groups(val, config.group_column),
        channels=channels,
        # From the image headers: checked against the model's preprocessing once it is built.
        sizes={
            "train split": image_sizes(train, "train split", config.image_column),
            "validation split": image_sizes(val, "validation split", config.image_column),
        },
    )


def _sample(class_ids: NDArray[np.int64], config: ProbeConfig) -> NDArray[np.int64] | None:
    """The rows a probe on ``config.data_fraction`` of the data trains on (None: all of them):
    the class proportions (largest remainder), at least one row of every class, random within
    each class by ``config.seed``."""
    if config.data_fraction == 1:
        return None
    sizes = np.bincount(class_ids)
    if budget(len(class_ids), config.data_fraction) < np.count_nonzero(sizes):  # the sample's size
        raise ValueError(
            f"data_fraction={config.data_fraction:g} of {len(class_ids)} training rows is fewer "
            f"rows than the {np.count_nonzero(sizes)} classes: raise data_fraction"
        )
    return stratified_rows(class_ids, config.data_fraction, seed=config.seed, min_per_class=1)


def _log_sample(plan: _Plan, num_rows: int, config: ProbeConfig) -> None:
    if plan.rows is None:
        return
    n = len(plan.rows)
    logger.info(
        f"probe: trains on {n:,} of the {num_rows:,} training rows (--data_fraction "
        f"{config.data_fraction:g}, stratified by class, --seed {config.seed}): "
        f"{n / num_rows:.0%} of a full probe's steps; its class errors set the quotas of all "
        f"{num_rows:,} rows, its scores cover the {n:,}"
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


def _log_batch(batch: dict[str, int], config: ProbeConfig) -> None:
    """Say how the batch was made; on several processes without ``global_batch_size``, how to
    keep it the same on any number of them."""
    n, b, g = batch["processes"], batch["per_process_batch_size"], batch["global_batch_size"]
    steps = f"{batch['steps_per_epoch']} steps per epoch"
    if config.global_batch_size is not None:  # what was done, not the flag that was passed
        logger.info(
            f"probe: per-process batch {b} computed from --global-batch-size {g} over {n} "
            f"process(es), {steps}"
        )
        return
    logger.info(f"probe: {n} process(es) x batch {b} = global batch {g}, {steps}")
    if n > 1:
        logger.info(
            f"note: the global batch is {n} x {b}; lr is not rescaled. To train the same way on "
            "any number of processes, pass --global-batch-size G (split evenly among them)"
        )


def _log_resume(start: Start, config: ProbeConfig) -> None:
    """Say where a run picks up again (1-based, as the epoch lines count)."""
    if start.init >= config.num_inits:
        logger.info(f"every epoch is done (checkpoint {start.checkpoint}): writing the result")
    else:
        logger.info(
            f"resuming from epoch {start.epoch + 1} of init {start.init + 1} "
            f"(checkpoint {start.checkpoint})"
        )


# --- the result -------------------------------------------------------------------------------


def _write_result(run: _Run, recorder: ProbeRecorder, spec) -> None:
    """The result of this run (see :meth:`ProbeRecorder.write`): scores averaged over
    initialisations, and the record of what produced them."""
    config, accelerator = run.config, run.accelerator
    record = recorder.record(
        config=config.to_dict(),
        model={"name": spec.name, "kind": spec.kind, "pretrained": spec.pretrained},
        processes=accelerator.num_processes,
        batch=run.plan.batch,
        device=str(accelerator.device),
        source=run.source,
        libraries=("torch", "accelerate", "datasets", "timm", "transformers", "numpy"),
    )
    if run.plan.rows is not None:  # the cost, and which rows trained (scores' index column)
        record["trained_rows"] = len(run.plan.rows)
    alerts = recorder.write(run.out, record, splits=run.splits, index=run.plan.rows)
    for message in alerts:
        # Once: a warning is what the user sees (one line under hf-drop's commands), not a log too.
        warnings.warn(message, ProbeWarning, stacklevel=4)  # the caller of run_probe
