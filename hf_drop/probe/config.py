"""The probe's configuration: data, so that it can be saved, compared and reproduced."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from ..modeling.sizes import image_size_text, parse_image_size

__all__ = ["ProbeConfig"]


@dataclass
class ProbeConfig:
    """How the probe model is built and trained, and which scores it records.

    Args:
        model: timm architecture (``resnet18``, ``test_resnet``), Hub checkpoint id, or local
            ``save_pretrained`` folder.
        epochs: training epochs of each initialisation.
        batch_size: batch size per process (the global batch is this times the processes).
        global_batch_size: the batch of one optimisation step over all processes, split evenly
            among them (it must divide by their number); when given, ``batch_size`` is not
            used, so one command trains the same way on any number of processes.
        lr: SGD learning rate.
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        schedule: ``"cosine"`` (per step) or ``"constant"``.
        num_inits: independent initialisations; scores and class errors are averaged over them.
        seed: seed of initialisation ``i`` is ``seed + i`` (``>= 0``); data order depends on it too.
        score_epoch: epoch (0-based) whose training logits give EL2N and GraNd; default 10% of the
            schedule, ``min(epochs - 1, round(0.1 * epochs))``.
        du_window: window ``J`` of dynamic uncertainty, in epochs.
        full_grand: also compute full-parameter GraNd (torch.func, eval mode) after the score
            epoch: one extra pass over the data, for small models.
        grand_chunk: samples per vectorised per-sample-gradient call.
        embeddings: keep penultimate embeddings (float16) of the last epoch, first initialisation.
        augment: padded random crop and horizontal flip while training.
        image_size: resize every image to this size, ``"HxW"`` (height x width) or one number
            for a square (an int or an ``(height, width)`` pair is read as well, and stored as
            ``"HxW"``); default: the size a pretrained model's preprocessing resizes to, else
            each image's own (they must then all be of one size).
        pretrained: start from pretrained weights (needs the Hub).
        model_kwargs: extra arguments for ``timm.create_model`` or the transformers config.
        class_errors_from: ``"final"`` epoch's validation recall, or the ``"best"`` epoch's (by
            validation accuracy).
        data_fraction: train on a sample of this fraction of the training rows, in ``(0, 1]``,
            stratified by class (every class keeps at least one row) and drawn by ``seed``. The
            class errors, all that DRoP's quotas need, are measured on the whole validation
            split as before, at about ``data_fraction`` of the cost; the per-sample scores then
            cover the sampled rows only, so a filter that ranks rows by a score needs a full
            probe. The result still identifies the whole training set, which it prunes.
        image_column: the column of the images.
        label_column: the column of the labels.
        num_workers: DataLoader workers.
        group_column: also measure validation errors per group: one column, or a list of columns
            whose combinations are the groups (:func:`hf_drop.data.columns.read_groups`), for
            ``DRoPFilter.from_probe(..., group_column=...)``.

    Each field's ``help`` is its ``hf-drop probe`` option's (``--batch_size``, ``--batch-size``).
    """

    model: str = field(
        metadata={"help": "timm architecture, Hub checkpoint id, or local save_pretrained folder"}
    )
    epochs: int = field(default=10, metadata={"help": "training epochs of each initialisation"})
    batch_size: int = field(default=128, metadata={"help": "batch size per process"})
    global_batch_size: int | None = field(
        default=None,
        metadata={
            "help": "batch of one step over all processes, split evenly among them (replaces "
            "--batch-size: the same training on any number of processes)"
        },
    )
    lr: float = field(default=0.05, metadata={"help": "SGD learning rate"})
    momentum: float = field(default=0.9, metadata={"help": "SGD momentum"})
    weight_decay: float = field(default=5e-4, metadata={"help": "SGD weight decay"})
    schedule: Literal["cosine", "constant"] = field(
        default="cosine", metadata={"help": "learning-rate schedule (cosine: per step)"}
    )
    num_inits: int = field(
        default=1, metadata={"help": "initialisations; scores and errors are averaged over them"}
    )
    seed: int = field(default=0, metadata={"help": "seed of the first initialisation (then +1)"})
    score_epoch: int | None = field(
        default=None,
        metadata={"help": "epoch (0-based) of EL2N and GraNd; default: a tenth of the schedule"},
    )
    du_window: int = field(default=10, metadata={"help": "window of dynamic uncertainty, epochs"})
    full_grand: bool = field(
        default=False, metadata={"help": "also full-parameter GraNd (one more pass; small models)"}
    )
    grand_chunk: int = field(
        default=32, metadata={"help": "samples per vectorised per-sample-gradient call"}
    )
    embeddings: bool = field(
        default=False, metadata={"help": "keep penultimate embeddings (last epoch, first init)"}
    )
    augment: bool = field(
        default=False, metadata={"help": "padded random crop and horizontal flip in training"}
    )
    image_size: str | None = field(
        default=None,
        metadata={
            "help": "resize every image to HxW pixels (or SIZE for a square); default: a "
            "pretrained model's own input size, else the images' size (all must then be one)",
            "metavar": "HxW",
        },
    )
    pretrained: bool = field(
        default=False, metadata={"help": "start from pretrained weights (needs the Hub)"}
    )
    model_kwargs: dict[str, Any] = field(
        default_factory=dict,
        metadata={"help": "extra model arguments, JSON, e.g. '{\"img_size\": 28}'", "json": True},
    )
    class_errors_from: Literal["final", "best"] = field(
        default="final",
        metadata={"help": "validation recall of the final epoch, or of the best (by accuracy)"},
    )
    data_fraction: float = field(
        default=1.0,
        metadata={
            "help": "train on a stratified sample of this fraction of the training rows (by "
            "--seed): class errors, and so DRoP's quotas, at that fraction of the cost; "
            "per-sample scores then exist for the sample only"
        },
    )
    image_column: str = field(default="image", metadata={"help": "column of the images"})
    label_column: str = field(default="label", metadata={"help": "column of the labels"})
    num_workers: int = field(default=0, metadata={"help": "DataLoader workers"})
    group_column: str | list[str] | None = field(
        default=None,
        metadata={
            "help": "also measure validation errors per group: a column, or several whose "
            "combinations are the groups (for hf-drop prune --group_column)",
            "nargs": "+",
            "metavar": "COLUMN",
        },
    )

    def __post_init__(self) -> None:
        # One spelling ("HxW"), so that a recorded configuration compares equal to a given one.
        self.image_size = image_size_text(parse_image_size(self.image_size, "image_size"))
        if self.global_batch_size is not None and (
            isinstance(self.global_batch_size, bool)
            or not isinstance(self.global_batch_size, int)
            or self.global_batch_size < 1
        ):
            raise ValueError(
                f"global_batch_size must be a positive int, got {self.global_batch_size!r}"
            )
        for name in ("epochs", "batch_size", "num_inits", "du_window", "grand_chunk"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name in ("lr", "momentum", "weight_decay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if self.lr < 0 or self.weight_decay < 0 or not 0 <= self.momentum < 1:
            raise ValueError(
                f"lr and weight_decay must be >= 0 and momentum in [0, 1), got lr={self.lr}, "
                f"weight_decay={self.weight_decay}, momentum={self.momentum}"
            )
        for name in ("seed", "num_workers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule must be 'cosine' or 'constant', got {self.schedule!r}")
        if self.class_errors_from not in ("final", "best"):
            raise ValueError(
                f"class_errors_from must be 'final' or 'best', got {self.class_errors_from!r}"
            )
        if (
            isinstance(self.data_fraction, bool)
            or not isinstance(self.data_fraction, (int, float))
            or not 0 < self.data_fraction <= 1
        ):
            raise ValueError(
                f"data_fraction must be a number in (0, 1], got {self.data_fraction!r}"
            )
        self.data_fraction = float(self.data_fraction)
        if self.score_epoch is not None and not 0 <= self.score_epoch < self.epochs:
            raise ValueError(f"score_epoch must lie in [0, {self.epochs}), got {self.score_epoch}")

    def per_process_batch(self, processes: int) -> int:
        """Rows per process and step: ``global_batch_size / processes``, or ``batch_size``."""
        if self.global_batch_size is None:
            return self.batch_size
        if self.global_batch_size % processes:
            raise ValueError(
                f"global_batch_size {self.global_batch_size} does not divide among {processes} "
                f"processes: pass a multiple of {processes}"
            )
        return self.global_batch_size // processes

    @property
    def resolved_score_epoch(self) -> int:
        if self.score_epoch is not None:
            return self.score_epoch
        return min(self.epochs - 1, round(0.1 * self.epochs))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"resolved_score_epoch": self.resolved_score_epoch}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ProbeConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})
