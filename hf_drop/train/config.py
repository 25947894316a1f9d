"""How the final model is trained: :class:`TrainConfig`, and the paper's compute-matched epochs."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from ..modeling.sizes import image_size_text, parse_image_size

__all__ = ["TrainConfig", "compute_matched_epochs"]


def compute_matched_epochs(full_epochs: int, density: float) -> int:
    """Epochs at density ``d`` that cost about as much as ``full_epochs`` on all the data, as in the
    paper: ``round((0.5 + 0.5 d) * E / d)``, rounded half up."""
    if not 0.0 < density <= 1.0:
        raise ValueError(
            f"density must lie in (0, 1] for a compute-matched schedule, got {density}"
        )
    # Half up, like the pruning budget: Python's round() would send 2.5 to 2 but 3.5 to 4.
    return max(1, math.floor((0.5 + 0.5 * density) * full_epochs / density + 0.5))


@dataclass
class TrainConfig:
    """How the final model is trained.

    Args:
        model: timm architecture, Hub checkpoint id or local ``save_pretrained`` folder.
        epochs: training epochs; with ``compute_matched`` the full-data epochs ``E``.
        compute_matched: train ``round((0.5 + 0.5 d) * E / d)`` epochs at density ``d``.
        optimizer: ``"sgd"`` (momentum, step decay by ``lr_gamma`` at ``lr_milestones`` of the
            schedule) or ``"trainer"`` (the Trainer's own: ``optim``, ``lr_scheduler_type``, ...
            of the TrainingArguments, AdamW and linear decay by default).
        save_model: save the trained model, its preprocessing and a model card in ``model/``.
        group_column: also judge the model per group of the evaluation dataset: a column, or a
            list of columns whose combinations are the groups
            (:func:`hf_drop.data.columns.read_groups`); the metrics then have
            ``worst_group_accuracy``, ``worst_group`` and ``group_accuracy`` by group name.
        lr: as in the probe (:class:`hf_drop.probe.ProbeConfig`), and likewise ``momentum``,
            ``weight_decay``, ``batch_size`` (per process), ``seed``, ``augment``,
            ``pretrained``, ``model_kwargs``, ``image_column``, ``label_column`` and
            ``num_workers``.

    ``epochs``, ``lr``, ``weight_decay``, ``batch_size``, ``seed`` and ``num_workers`` are the
    defaults of the TrainingArguments fields they stand for (see :mod:`hf_drop.train.arguments`).
    Each field's ``help`` is its ``hf-drop train`` option's.
    """

    model: str = field(
        metadata={"help": "timm architecture, Hub checkpoint id, or local save_pretrained folder"}
    )
    epochs: int = field(
        default=10, metadata={"help": "epochs (full-data epochs with --compute-matched)"}
    )
    compute_matched: bool = field(
        default=False, metadata={"help": "train round((0.5 + 0.5 d) E / d) epochs at density d"}
    )
    optimizer: Literal["sgd", "trainer"] = field(
        default="sgd",
        metadata={
            "help": "sgd: momentum and step decay (hf-drop's); trainer: the Trainer's --optim "
            "and --lr_scheduler_type"
        },
    )
    lr: float = field(default=0.05, metadata={"help": "learning rate"})
    momentum: float = field(default=0.9, metadata={"help": "SGD momentum (--optimizer sgd)"})
    weight_decay: float = field(default=5e-4, metadata={"help": "weight decay"})
    lr_milestones: tuple[float, ...] = field(
        default=(0.5, 0.75),
        metadata={
            "help": "--optimizer sgd: fractions of the schedule where the learning rate decays",
            "nargs": "+",
        },
    )
    lr_gamma: float = field(
        default=0.1, metadata={"help": "--optimizer sgd: factor of each learning-rate decay"}
    )
    batch_size: int = field(default=128, metadata={"help": "batch size per process"})
    seed: int = field(default=0, metadata={"help": "seed of initialisation and data order"})
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
    image_column: str = field(default="image", metadata={"help": "column of the images"})
    label_column: str = field(default="label", metadata={"help": "column of the labels"})
    num_workers: int = field(default=0, metadata={"help": "DataLoader workers"})
    save_model: bool = field(
        default=True,
        metadata={"help": "save model/ (the trained model, its preprocessing and a model card)"},
    )
    group_column: str | list[str] | None = field(
        default=None,
        metadata={
            "help": "also judge the model per group of the evaluation data: a column, or several "
            "whose combinations are the groups",
            "nargs": "+",
            "metavar": "COLUMN",
        },
    )
    dynamic_drop: float | None = field(
        default=None,
        metadata={
            "help": "DRoP while training: each epoch trains on this fraction of the rows, its "
            "class counts set by the class errors on the steering split of the epochs before "
            "(hf_drop.train.dynamic)",
            "metavar": "DENSITY",
        },
    )
    dynamic_quota: str = field(
        default="drop",
        metadata={
            "help": "with dynamic_drop: the class-count rule (drop, drop_paper, proportional, "
            "uniform; global: a class-blind random sample)"
        },
    )
    dynamic_anneal: float = field(
        default=0.0,
        metadata={
            "help": "with dynamic_drop: the share of the last epochs that sample in the data's "
            "own class proportions"
        },
    )
    dynamic_smoothing: float = field(
        default=0.5,
        metadata={
            "help": "with dynamic_drop: the weight of the past evaluations in each class's error "
            "(0: the last evaluation alone)"
        },
    )

    dynamic_within: Literal["random", "loss"] = field(
        default="random",
        metadata={
            "help": "with dynamic_drop: the rows within each class, at random or by their last "
            "training loss (InfoBatch's choice: hard rows first)"
        },
    )
    dynamic_rescale: bool = field(
        default=False,
        metadata={
            "help": "with dynamic_within loss: scale the loss of each kept well-learned row by "
            "the inverse of its chance to be kept (InfoBatch)"
        },
    )

    def __post_init__(self) -> None:
        # One spelling ("HxW"), so that a recorded configuration compares equal to a given one.
        self.image_size = image_size_text(parse_image_size(self.image_size, "image_size"))
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs must be a positive int, got {self.epochs!r}")
        if self.optimizer not in ("sgd", "trainer"):
            raise ValueError(f"optimizer must be 'sgd' or 'trainer', got {self.optimizer!r}")
        if self.dynamic_drop is None:
            unused = [
                f.name
                for f in dataclasses.fields(self)
                if f.name.startswith("dynamic_") and getattr(self, f.name) != f.default
            ]
            if unused:
                raise ValueError(f"{', '.join(unused)} apply with dynamic_drop only: pass "
                                 "dynamic_drop (--dynamic_drop DENSITY) or drop them")  # fmt: skip
        if self.dynamic_drop is not None and self.compute_matched:
            raise ValueError(
                "dynamic_drop and compute_matched: a dynamic run trains every epoch on "
                "dynamic_drop of the rows for `epochs` epochs; compute-matching is for a pruned "
                "subset trained as a whole"
            )

    def epochs_at(self, density: float | None) -> int:
        """The epochs to train: ``epochs``, or with ``compute_matched`` those matched to
        ``density`` (which it then needs)."""
        if not self.compute_matched:
            return self.epochs
        if density is None:
            raise ValueError("compute_matched needs the density of the training subset")
        return compute_matched_epochs(self.epochs, density)
