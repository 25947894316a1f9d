"""``hf-drop probe``: train a probe model and record per-sample scores and per-class errors."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import ClassVar

from ..probe.config import ProbeConfig
from .base import BaseCommand, OptionError, local_paths, one_or_many

__all__ = ["Probe", "ProbeDataArguments"]


@dataclass(kw_only=True)
class ProbeDataArguments:
    """What ``hf-drop probe`` trains and validates on, and where its result goes."""

    dataset: str = field(
        metadata={"help": "fashion_mnist, digits, a local folder or file, or a Hub dataset name"}
    )
    dataset_config_name: str | None = field(
        default=None,
        metadata={
            "help": "the dataset's configuration name (Hub; load_dataset's name); --config is "
            "its deprecated spelling",
            "aliases": ["--config"],
            "deprecated": "--config",  # it also read as a file of options; now --config_file
        },
    )
    revision: str | None = field(
        default=None, metadata={"help": "dataset revision: branch, tag or commit (Hub datasets)"}
    )
    split: str = field(
        default="train",
        metadata={
            "help": "training split, or a slice of it in datasets' syntax: 'train[:1000]', "
            "'train[10%%:20%%]'"
        },
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "train on the first N rows of --split only", "metavar": "N"}
    )
    val_split: str | None = field(
        default=None, metadata={"help": "use this split (or slice) of the dataset as validation"}
    )
    val_from_test: float | None = field(
        default=None,
        metadata={
            "help": "validate on a fraction F of each class of --test-split (the paper: 0.5; "
            "the default if the dataset has no validation split)",
            "metavar": "F",
        },
    )
    val_fraction: float | None = field(
        default=None,
        metadata={"help": "carve a fraction F of each class out of --split", "metavar": "F"},
    )
    test_split: str = field(default="test", metadata={"help": "split for --val-from-test"})
    split_seed: int = field(default=0, metadata={"help": "seed of carved splits"})
    output: str = field(
        metadata={
            "help": "result folder: new or empty, or an unfinished run of this probe (resumed)"
        }
    )


class Probe(BaseCommand):
    name = "probe"
    help = "train a probe model; record per-sample scores and per-class errors"
    description = (
        "Train a probe (timm or transformers) on a dataset under Accelerate and write its "
        "per-sample scores and per-class validation errors to --output. Stopped (Ctrl-C), the "
        "same command resumes from the last finished epoch."
    )
    options = ((ProbeDataArguments, "data"), (ProbeConfig, "model, training and scores"))
    exclusive = ((("val_split", "val_from_test", "val_fraction"), False),)
    # transformers' names of what the probe's own loop does as TrainingArguments would (besides
    # --num_train_epochs, --learning_rate, --output_dir); other TrainingArguments are refused.
    aliases: ClassVar[dict[str, str]] = {
        "batch_size": "per_device_train_batch_size",
        "num_workers": "dataloader_num_workers",
        "schedule": "lr_scheduler_type",
    }

    def take_extra(self, strings: list[str]) -> list[str]:
        """Refuse a TrainingArguments field (``hf-drop train`` takes it) with a reason, not as
        an unknown flag."""
        flags = [s.split("=", 1)[0] for s in strings if s.startswith("--")]
        if not flags:
            return strings
        from ..train.arguments import training_argument_names

        names = training_argument_names()
        refused = [flag for flag in flags if flag[2:].replace("-", "_") in names]
        if refused:
            ours = sorted(f for f in self.spellings() if f[2:].replace("-", "_") in names)
            raise OptionError(
                f"{', '.join(refused)}: transformers.TrainingArguments field(s) that hf-drop "
                "train passes to the Trainer, but the probe trains in its own Accelerate loop and "
                "cannot honour them. The TrainingArguments names the probe takes: "
                f"{', '.join(f for f in ours if '_' in f or f == '--seed')}"
            )
        return strings

    def run(self) -> None:
        from ..data.sources import first_rows, load_source, select_split
        from ..probe import run_probe

        args = self.args
        config: ProbeConfig = self.options[ProbeConfig]
        config.group_column = one_or_many(config.group_column)
        count = args.max_train_samples
        if count is not None and (
            isinstance(count, bool) or not isinstance(count, int) or count < 1
        ):
            raise ValueError(f"--max_train_samples must be a positive int, got {count!r}")
        data = load_source(args.dataset, args.dataset_config_name, args.revision)
        train = first_rows(
            select_split(data, args.split, "--split"), args.max_train_samples, "--max_train_samples"
        )
        source = {
            "name": args.dataset,
            "config": args.dataset_config_name,
            "split": args.split,
            "revision": args.revision,
            "command": shlex.join(["hf-drop", *self.argv]),
        }
        if args.max_train_samples is not None:  # reloaded the same way: prune, the card's command
            source["max_train_samples"] = args.max_train_samples
        val, train, splits = self._validation(data, train, config, source)
        result = run_probe(
            train,
            val,
            config,
            args.output,
            source=source,
            splits=splits,
            inputs=local_paths(args.dataset),  # the output may not overlap a local --dataset
        )
        from accelerate import PartialState

        if not PartialState().is_main_process:
            return
        errors = ", ".join(
            f"{n}: {e:.3f}" for n, e in zip(result.class_names, result.class_errors, strict=True)
        )
        print(f"probe result in {result.folder}\nclass errors: {errors}")

    def _validation(self, data, train, config: ProbeConfig, source: dict):
        """The validation rows, the training rows (less a carved validation split) and the
        record of the splits."""
        from ..data.sources import select_split
        from ..data.splits import stratified_indices

        args = self.args
        if args.val_split is None and args.val_from_test is None and args.val_fraction is None:
            if "validation" in data:
                args.val_split = "validation"
            elif _has_split(data, args.test_split):
                args.val_from_test = 0.5  # the paper's protocol
            else:
                raise ValueError(
                    f"{args.dataset} has no validation or {args.test_split!r} split "
                    f"({list(data)}): pass --val-split, --val-from-test or --val-fraction"
                )
        if args.val_split is not None:
            return (
                select_split(data, args.val_split, "--val-split"),
                train,
                {"val_split": args.val_split},
            )
        if args.val_from_test is not None:
            test = select_split(data, args.test_split, "--test-split")
            chosen, rest = stratified_indices(
                test, args.val_from_test, seed=args.split_seed, label_column=config.label_column
            )
            splits = {
                "val_split": args.test_split,
                "val_indices": chosen.tolist(),
                "report_indices": rest.tolist(),
            }
            return test.select(chosen), train, splits
        chosen, rest = stratified_indices(
            train, args.val_fraction, seed=args.split_seed, label_column=config.label_column
        )
        source["train_indices"] = "splits.json"
        splits = {
            "val_split": args.split,
            "val_indices": chosen.tolist(),
            "train_indices": rest.tolist(),
        }
        return train.select(chosen), train.select(rest), splits


def _has_split(data, spec: str) -> bool:
    from ..data.sources import select_split

    try:
        select_split(data, spec)
    except ValueError:
        return False
    return True
