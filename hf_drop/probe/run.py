"""The probe run: train a model on the full data under Accelerate and record, for every sample,
the scores of :mod:`hf_drop.probe.dynamics`, and, for every class, its validation recall.

The same code runs under ``python`` and under ``accelerate launch`` (any number of processes,
CPU or GPU). Each epoch ends in a checkpoint; a killed run started again with the same output
folder resumes from the last finished epoch and ends with the same result.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed
from datasets.table import InMemoryTable
from tqdm.auto import tqdm

from ..columns import read_labels
from ..environment import machine, versions
from .config import ProbeConfig
from .data import ImageBatches, check_image_split, loader
from .dynamics import Dynamics, batch_statistics
from .models import build_model
from .result import CONFIG_FILE, METRICS_FILE, SCORES_DIR, SPLITS_FILE, ProbeResult

__all__ = ["run_probe"]


def run_probe(
    train: datasets.Dataset,
    val: datasets.Dataset,
    config: ProbeConfig,
    output_dir: str | Path,
    *,
    source: dict[str, Any] | None = None,
    splits: dict[str, list[int]] | None = None,
) -> ProbeResult:
    """Train ``config.num_inits`` probes on ``train``, judge them on ``val`` after every epoch, and
    write a :class:`ProbeResult` to ``output_dir``.

    ``source`` (name, config, split, ...) and ``splits`` (row indices of carved splits) are
    recorded with the result.
    """
    accelerator = Accelerator()
    out = Path(output_dir)
    plan = _check_inputs(train, val, config)  # every input error before any training
    if (out / CONFIG_FILE).exists():
        return _existing_result(out, config)

    checkpoints = out / "checkpoints"
    progress = _load_progress(checkpoints, config)
    totals: dict[str, np.ndarray] = progress["totals"]
    history: list[list[dict]] = progress["history"]
    embeddings = progress["embeddings"]
    spec = None

    for init in range(progress["init"], config.num_inits):
        set_seed(config.seed + init)
        model, preprocess, spec = build_model(
            config.model,
            plan["num_classes"],
            plan["channels"],
            pretrained=config.pretrained,
            model_kwargs=config.model_kwargs,
            class_names=plan["names"],
        )
        train_loader = loader(
            ImageBatches(train, config.image_column, plan["train_ids"], preprocess, config.augment),
            config.batch_size,
            seed=config.seed + init,
            num_workers=config.num_workers,
        )
        val_loader = loader(
            ImageBatches(val, config.image_column, plan["val_ids"], preprocess),
            config.batch_size,
            shuffle=False,
            num_workers=config.num_workers,
        )
        optimizer = torch.optim.SGD(
            model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
        scheduler = _schedule(optimizer, config, steps=config.epochs * len(train_loader))
        model, optimizer, scheduler, train_loader, val_loader = accelerator.prepare(
            model, optimizer, scheduler, train_loader, val_loader
        )
        dynamics = Dynamics(
            len(train), config.epochs, config.resolved_score_epoch, config.du_window
        )
        first_epoch = 0
        if progress["init"] == init and progress["epoch"] is not None:
            accelerator.load_state(str(progress["path"]))
            dynamics.load_state_dict(progress["dynamics"])
            first_epoch = progress["epoch"] + 1
        if init > len(history) - 1:
            history.append([])

        training = _Training(accelerator, model, optimizer, scheduler, train_loader, dynamics)
        for epoch in range(first_epoch, config.epochs):
            keep_embeddings = config.embeddings and init == 0 and epoch == config.epochs - 1
            embeddings = training.epoch(
                epoch,
                embeddings,
                keep_embeddings,
                desc=f"init {init + 1}/{config.num_inits} epoch {epoch + 1}/{config.epochs}",
            )
            if config.full_grand and epoch == config.resolved_score_epoch:
                _full_grand(accelerator, model, train_loader, dynamics, config.grand_chunk)
            metrics = _evaluate(accelerator, model, val_loader, plan["num_classes"])
            dynamics.end_epoch(epoch)
            metrics["train_loss"], metrics["train_accuracy"] = _train_summary(dynamics)
            history[init].append(metrics)
            accelerator.print(
                f"init {init + 1}/{config.num_inits} epoch {epoch + 1}/{config.epochs}: "
                f"train loss {metrics['train_loss']:.4f} acc {metrics['train_accuracy']:.4f} | "
                f"val acc {metrics['accuracy']:.4f}, worst class {np.nanmin(metrics['recall']):.4f}"
            )
            _save_checkpoint(
                accelerator, checkpoints, config, init, epoch, dynamics, totals, history, embeddings
            )

        for name, values in dynamics.scores().items():
            totals[name] = totals.get(name, 0.0) + values.astype(np.float64)
        accelerator.free_memory(model, optimizer, scheduler, train_loader, val_loader)

    if spec is None:  # resumed after the last epoch of the last initialisation
        spec = build_model(
            config.model,
            plan["num_classes"],
            plan["channels"],
            pretrained=config.pretrained,
            model_kwargs=config.model_kwargs,
        )[2]
    if accelerator.is_main_process:
        _write_result(
            out, config, plan, totals, history, embeddings, spec, accelerator, train, source, splits
        )
        shutil.rmtree(checkpoints, ignore_errors=True)
    accelerator.wait_for_everyone()
    return ProbeResult.load(out)


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
            for batch in tqdm(
                self.train_loader,
                desc=desc,
                leave=False,
                disable=not accelerator.is_local_main_process,
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
                index = gathered[0].cpu().numpy()
                self.dynamics.update(epoch, index, gathered[1].cpu().numpy())
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
def _evaluate(accelerator, model, val_loader, num_classes) -> dict[str, Any]:
    """Accuracy, per-class recall and support on the validation split."""
    model.eval()
    predictions, labels = [], []
    for batch in val_loader:
        predicted = model(batch["pixel_values"]).argmax(1)
        p, y = accelerator.gather_for_metrics((predicted, batch["labels"]))
        predictions.append(p.cpu().numpy())
        labels.append(y.cpu().numpy())
    p, y = np.concatenate(predictions), np.concatenate(labels)
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
        train_loader, desc="full GraNd", leave=False, disable=not accelerator.is_local_main_process
    ):
        norms = []
        for x, y in zip(
            batch["pixel_values"].split(chunk), batch["labels"].split(chunk), strict=True
        ):
            grads = per_sample(params, buffers, x, y)
            norms.append(torch.sqrt(sum(g.flatten(1).pow(2).sum(1) for g in grads.values())))
        index, norm = accelerator.gather_for_metrics((batch["index"], torch.cat(norms)))
        dynamics.arrays["grand_full"][index.cpu().numpy()] = norm.cpu().numpy()


def _train_summary(dynamics: Dynamics) -> tuple[float, float]:
    """Mean training loss and accuracy of the epoch just closed (from the last recorded p_true)."""
    a = dynamics.arrays
    p_true = a["p_true"][(dynamics.epochs_done - 1) % dynamics.window]
    return float(np.mean(-np.log(np.clip(p_true, 1e-12, None)))), float(a["correct"].mean())


def _schedule(optimizer, config: ProbeConfig, steps: int):
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps, 1))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


# --- inputs -------------------------------------------------------------------------------------


def _check_inputs(train: datasets.Dataset, val: datasets.Dataset, config: ProbeConfig) -> dict:
    """Every input problem, as a clear error, before any model is built."""
    channels = check_image_split(train, "train split", config.image_column)
    check_image_split(val, "validation split", config.image_column)
    labels = read_labels(train, config.label_column)
    val_labels = read_labels(val, config.label_column)
    position = {name: k for k, name in enumerate(labels.names)}
    in_train = {labels.names[k] for k in np.unique(labels.ids)}
    in_val = sorted({val_labels.names[k] for k in np.unique(val_labels.ids)})
    unknown = [name for name in in_val if name not in in_train]
    if unknown:
        raise ValueError(f"validation classes {unknown} do not occur in the train split's labels")
    lookup = np.array([position.get(name, -1) for name in val_labels.names])
    return {
        "labels": labels,
        "names": labels.names,
        "num_classes": len(labels.names),
        "train_ids": labels.ids,
        "val_ids": lookup[val_labels.ids],
        "channels": channels,
    }


# --- checkpoints and the result ---------------------------------------------------------------


def _save_checkpoint(
    accelerator, checkpoints, config, init, epoch, dynamics, totals, history, embeddings
):
    """State after (init, epoch): the model, optimizer, scheduler and RNGs (Accelerate), the
    bookkeeping, and a COMPLETE marker written last; older checkpoints are then removed."""
    path = checkpoints / f"init{init:03d}-epoch{epoch:04d}"
    accelerator.save_state(str(path))
    if accelerator.is_main_process:
        np.savez(path / "dynamics.npz", **dynamics.state_dict())
        np.savez(path / "totals.npz", **totals)
        if embeddings is not None:
            np.save(path / "embeddings.npy", embeddings)
        progress = {"init": init, "epoch": epoch, "config": config.to_dict(), "history": history}
        (path / "progress.json").write_text(json.dumps(progress))
        (path / "COMPLETE").touch()
        for old in checkpoints.iterdir():
            if old != path:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def _load_progress(checkpoints: Path, config: ProbeConfig) -> dict[str, Any]:
    """Where to start: the last complete checkpoint, or the beginning."""
    done = sorted(p for p in checkpoints.glob("init*-epoch*") if (p / "COMPLETE").exists())
    if not done:
        return {"init": 0, "epoch": None, "totals": {}, "history": [], "embeddings": None}
    path = done[-1]
    progress = json.loads((path / "progress.json").read_text())
    saved = ProbeConfig.from_dict(progress["config"])
    if saved != config:
        raise ValueError(
            f"{checkpoints} holds a checkpoint of another probe configuration "
            f"({saved}); use another output folder or delete it"
        )
    init, epoch = progress["init"], progress["epoch"]
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
        return {
            "init": init + 1,
            "epoch": None,
            "totals": totals,
            "history": progress["history"],
            "embeddings": embeddings,
        }
    return {
        "init": init,
        "epoch": epoch,
        "path": path,
        "dynamics": state,
        "totals": totals,
        "history": progress["history"],
        "embeddings": embeddings,
    }


def _existing_result(out: Path, config: ProbeConfig) -> ProbeResult:
    result = ProbeResult.load(out)
    if ProbeConfig.from_dict(result.record["config"]) != config:
        raise ValueError(
            f"{out} already holds a probe result of another configuration; "
            "use another output folder or delete it"
        )
    return result


def _write_result(
    out, config, plan, totals, history, embeddings, spec, accelerator, train, source, splits
):
    """Scores, class metrics, then probe_config.json last: its presence marks a complete result."""
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_FILE).unlink(missing_ok=True)
    # Built as an Arrow table directly: embeddings go in as one flat float16 buffer.
    features = {"index": datasets.Value("int64"), "label": datasets.ClassLabel(names=plan["names"])}
    arrays = [pa.array(np.arange(len(train))), pa.array(plan["train_ids"])]
    for name, total in totals.items():
        features[name] = datasets.Value("float32")
        arrays.append(pa.array((total / config.num_inits).astype(np.float32)))
    if embeddings is not None:
        features["embedding"] = datasets.Sequence(
            datasets.Value("float16"), length=embeddings.shape[1]
        )
        arrays.append(
            pa.FixedSizeListArray.from_arrays(pa.array(embeddings.ravel()), embeddings.shape[1])
        )
    features = datasets.Features(features)
    table = pa.Table.from_arrays(arrays, schema=features.arrow_schema)
    scores = datasets.Dataset(InMemoryTable(table), info=datasets.DatasetInfo(features=features))
    if (out / SCORES_DIR).exists():
        shutil.rmtree(out / SCORES_DIR)
    scores.save_to_disk(str(out / SCORES_DIR))

    # Class errors: 1 - recall at the final (or best) epoch, averaged over initialisations.
    recalls = []
    for epochs in history:
        chosen = epochs[-1]
        if config.class_errors_from == "best":
            chosen = max(epochs, key=lambda m: m["accuracy"])
        recalls.append(np.array(chosen["recall"], dtype=float))
    mean_recall = np.mean(recalls, axis=0)
    support = np.array(history[0][-1]["support"])
    classes = [
        {
            "name": name,
            "train_size": int(np.sum(plan["train_ids"] == k)),
            "support": int(support[k]),
            "recall_by_epoch": [[m["recall"][k] for m in epochs] for epochs in history],
            "recall": None if np.isnan(mean_recall[k]) else float(mean_recall[k]),
            "error": None if np.isnan(mean_recall[k]) else float(1.0 - mean_recall[k]),
        }
        for k, name in enumerate(plan["names"])
    ]
    metrics = {
        "class_errors_from": config.class_errors_from,
        "classes": classes,
        "accuracy_by_epoch": [[m["accuracy"] for m in epochs] for epochs in history],
        "train_loss_by_epoch": [[m["train_loss"] for m in epochs] for epochs in history],
    }
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=1) + "\n")
    if splits:
        (out / SPLITS_FILE).write_text(json.dumps(splits) + "\n")

    record = {
        "config": config.to_dict(),
        "model": {"name": spec.name, "kind": spec.kind, "pretrained": spec.pretrained},
        "processes": accelerator.num_processes,
        "device": str(accelerator.device),
        "source": {
            **(source or {}),
            "fingerprint": train._fingerprint,
            "num_rows": len(train),
            "label_column": config.label_column,
            "label_hash": plan["labels"].hash,
        },
        "versions": versions("torch", "accelerate", "datasets", "timm", "transformers", "numpy"),
        "machine": machine(),
    }
    tmp = out / (CONFIG_FILE + ".partial")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.rename(out / CONFIG_FILE)
