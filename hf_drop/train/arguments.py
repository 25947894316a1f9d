"""The ``transformers.TrainingArguments`` of a run: hf-drop's settings first, the caller's over them.

One rule, for a dict of overrides and a ``TrainingArguments`` object alike:

- :class:`~hf_drop.train.config.TrainConfig` stands for six fields (:data:`FROM_CONFIG`):
  ``num_train_epochs`` (``epochs``, compute-matched or not), ``learning_rate`` (``lr``),
  ``weight_decay``, ``per_device_train_batch_size`` (``batch_size``), ``seed`` and
  ``dataloader_num_workers`` (``num_workers``). hf-drop also chooses defaults of its own
  (:func:`hf_drop_defaults`): ``report_to="none"``, ``logging_strategy="epoch"``, no evaluation
  and no checkpoints during training, the evaluation batch size and ``data_seed`` from the
  training ones, and the Trainer's logging from hf-drop's (``log_level``, ``disable_tqdm``).
- ``training_args`` may set any TrainingArguments field: a dict sets its keys, a
  ``TrainingArguments`` object sets every field (it is taken as it is). What it sets wins over
  hf-drop's defaults.
- Refused, with a ``ValueError`` that names both: a field set by ``training_args`` whose
  TrainConfig field was *also* changed from its default (or, for ``num_train_epochs``,
  ``compute_matched`` is on), to a different value. Neither can win silently.
- hf-drop always sets ``output_dir`` (``<output>/checkpoints``) and the fields of :data:`FIXED`
  (``remove_unused_columns=False``: its batches hold exactly the model's inputs; whole
  predictions for the class-wise metric): a dict may not set them otherwise; an object's are
  replaced.
- ``TrainConfig(optimizer="sgd")`` builds SGD and its step decay itself, so the Trainer's
  optimizer and scheduler fields (:data:`SGD_IGNORES`) changed from TrainingArguments' defaults are
  refused: use ``optimizer="trainer"`` for them.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .config import TrainConfig

if TYPE_CHECKING:
    from transformers import TrainingArguments

__all__ = [
    "FIXED",
    "FROM_CONFIG",
    "SGD_IGNORES",
    "hf_drop_defaults",
    "parse_training_args",
    "training_argument_names",
    "training_arguments",
]

# TrainingArguments field -> the TrainConfig field that stands for it.
FROM_CONFIG = {
    "num_train_epochs": "epochs",
    "learning_rate": "lr",
    "weight_decay": "weight_decay",
    "per_device_train_batch_size": "batch_size",
    "seed": "seed",
    "dataloader_num_workers": "num_workers",
}
# Set by hf-drop whatever is asked (and output_dir: the run's checkpoints folder), and why.
FIXED = {
    "remove_unused_columns": (False, "hf-drop's batches hold exactly the model's inputs"),
    "prediction_loss_only": (False, "the evaluation judges the predictions"),
    "eval_do_concat_batches": (True, "the class-wise metric needs every prediction at once"),
    "batch_eval_metrics": (False, "the class-wise metric needs every prediction at once"),
}
# What the Trainer's own optimizer and scheduler read: unused with TrainConfig(optimizer="sgd").
SGD_IGNORES = (
    "optim",
    "optim_args",
    "lr_scheduler_type",
    "lr_scheduler_kwargs",
    "warmup_steps",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
)


@functools.cache
def training_argument_names() -> frozenset[str]:
    """Every field a ``TrainingArguments`` takes."""
    from transformers import TrainingArguments

    return frozenset(f.name for f in dataclasses.fields(TrainingArguments) if f.init)


def hf_drop_defaults(config: TrainConfig, epochs: int) -> dict[str, Any]:
    """The TrainingArguments hf-drop trains with when nothing overrides them; the Trainer's
    ``log_level`` and ``disable_tqdm`` follow hf-drop's (:func:`hf_drop.io.logs.trainer_logging`)."""
    import torch

    from ..io.logs import trainer_logging

    return {
        "num_train_epochs": epochs,
        "learning_rate": config.lr,
        "weight_decay": config.weight_decay,
        "per_device_train_batch_size": config.batch_size,
        "seed": config.seed,
        "dataloader_num_workers": config.num_workers,
        "per_device_eval_batch_size": config.batch_size,
        "data_seed": config.seed,
        "eval_strategy": "no",
        "save_strategy": "no",
        "logging_strategy": "epoch",
        "report_to": "none",
        "dataloader_pin_memory": torch.cuda.is_available(),
        **trainer_logging(),
    }


def training_arguments(
    config: TrainConfig,
    epochs: int,
    output_dir: str | os.PathLike,
    overrides: Mapping[str, Any] | TrainingArguments | None = None,
) -> TrainingArguments:
    """The ``TrainingArguments`` of a run of ``epochs`` epochs writing into ``output_dir``:
    ``config``'s settings, ``overrides`` over them, by the rule of this module."""
    from transformers import TrainingArguments

    given = _given(overrides)
    _check_conflicts(config, epochs, given)
    values = {**hf_drop_defaults(config, epochs), **given}
    fixed = {name: value for name, (value, _) in FIXED.items()}
    args = TrainingArguments(**values, output_dir=str(output_dir), **fixed)
    if config.optimizer == "sgd":
        _check_sgd(args)
    return args


def _given(overrides: Mapping[str, Any] | TrainingArguments | None) -> dict[str, Any]:
    """The fields ``overrides`` sets: a dict's keys (checked), or every field of an object."""
    from transformers import TrainingArguments

    if overrides is None:
        return {}
    names = training_argument_names()
    if isinstance(overrides, TrainingArguments):
        skip = {"output_dir", *FIXED}
        return {n: getattr(overrides, n) for n in sorted(names - skip)}
    if not isinstance(overrides, Mapping):
        raise TypeError(
            "training_args must be a dict of TrainingArguments fields or a TrainingArguments, "
            f"got {type(overrides).__name__}"
        )
    for name in overrides:
        if name not in names:
            close = difflib.get_close_matches(str(name), names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"training_args: {name!r} is not a transformers.TrainingArguments field{hint}"
            )
    if "output_dir" in overrides:
        raise ValueError(
            "training_args: output_dir is hf-drop's to choose: the Trainer writes into "
            "<output>/checkpoints of the run's output folder; pass the folder as output_dir of "
            "train_and_evaluate (hf-drop train --output)"
        )
    for name, (value, why) in FIXED.items():
        if name in overrides and overrides[name] != value:
            raise ValueError(f"training_args: {name} must stay {value}: {why}")
    return dict(overrides)


def _check_conflicts(config: TrainConfig, epochs: int, given: dict[str, Any]) -> None:
    """Refuse a field set both by ``given`` and by a changed TrainConfig, to different values."""
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    for name, field in FROM_CONFIG.items():
        if name not in given:
            continue
        ours = epochs if name == "num_train_epochs" else getattr(config, field)
        if name == "num_train_epochs" and config.compute_matched:
            changed, said = True, f"epochs={config.epochs} with compute_matched ({epochs} epochs)"
        else:
            changed, said = getattr(config, field) != defaults[field], f"{field}={ours!r}"
        if changed and given[name] != ours:
            raise ValueError(
                f"training_args sets {name}={given[name]!r} but the TrainConfig sets {said}: "
                "set it in one place (a TrainConfig field left at its default lets "
                "training_args decide)"
            )
    if config.compute_matched and given.get("max_steps", -1) > 0:
        raise ValueError(
            "training_args sets max_steps, but the TrainConfig asks for a compute-matched "
            "number of epochs: drop one of them"
        )


def _check_sgd(args: TrainingArguments) -> None:
    """Refuse the Trainer's optimizer settings that hf-drop's own SGD would leave unused."""
    from transformers import TrainingArguments

    default = TrainingArguments(output_dir=args.output_dir)
    unused = [n for n in SGD_IGNORES if getattr(args, n) != getattr(default, n)]
    if unused:
        raise ValueError(
            f"training_args sets {', '.join(unused)}, which TrainConfig(optimizer='sgd') would "
            "ignore (it builds SGD with step decay itself): pass optimizer='trainer' "
            "(hf-drop train --optimizer trainer) to use the Trainer's optimizer and scheduler"
        )


def parse_training_args(argv: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """The TrainingArguments fields that command-line strings set (``--field value``, with
    underscores or hyphens, parsed by ``transformers.HfArgumentParser``), and the strings that
    are none of them. A malformed value is a ``ValueError``."""
    import argparse

    from transformers import HfArgumentParser, TrainingArguments

    parser = HfArgumentParser(TrainingArguments, exit_on_error=False, allow_abbrev=False)
    # Only what argv sets: a field argparse finds already in the namespace gets no default, so
    # whatever still holds the marker was not given (and keeps hf-drop's default).
    unset = object()
    namespace = argparse.Namespace(**dict.fromkeys(training_argument_names(), unset))
    try:
        given, unknown = parser.parse_known_args(list(argv), namespace=namespace)
    except argparse.ArgumentError as error:
        raise ValueError(str(error)) from None
    return {k: v for k, v in vars(given).items() if v is not unset}, unknown
