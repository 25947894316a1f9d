"""``hf-drop probe``: train a probe model and record per-sample scores and per-class errors."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import ClassVar

from ..io.logs import get_logger
from ..probe.config import ProbeConfig
from .base import BaseCommand, OptionError, local_paths, one_or_many

__all__ = ["Probe", "ProbeDataArguments"]

logger = get_logger(__name__)


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
        default=None,
        metadata={
            "help": "train on N rows of --split only: a sample with its class proportions, "
            "drawn with --seed (recorded, so prune rebuilds the same rows)",
            "metavar": "N",
        },
    )
    val_split: str | None = field(
        default=None,
        metadata={
            "help": "use this split (or slice) of the dataset as validation (default: its "
            "'validation' split if it has one, else --val-from-test 0.5)"
        },
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
    test_split: str = field(
        default="test",
        metadata={
            "help": "split for --val-from-test; otherwise the held-out split that hf-drop train "
            "--eval-from-probe evaluates on"
        },
    )
    split_seed: int = field(
        default=0, metadata={"help": "seed of the validation rows carved out of a split"}
    )
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
        from ..probe import run_probe

        args = self.args
        config: ProbeConfig = self.options[ProbeConfig]
        config.group_column = one_or_many(config.group_column)
        count = args.max_train_samples
        if count is not None and (
            isinstance(count, bool) or not isinstance(count, int) or count < 1
        ):
            raise ValueError(f"--max_train_samples must be a positive int, got {count!r}")
        data, train, source = self._training_data(config)
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

    def _training_data(self, config: ProbeConfig):
        """The dataset, the training rows (--split, --max_train_samples) and the record of
        where they came from, enough to load the same rows again (hf-drop prune)."""
        from ..data.sources import (
            load_source,
            local_source,
            missing_classes,
            sample_rows,
            select_split,
            stratified_sampling,
        )

        args = self.args
        data = load_source(args.dataset, args.dataset_config_name, args.revision)
        train = select_split(data, args.split, "--split")
        dropped = missing_classes(data, args.split, train, config.label_column)
        if dropped:  # the user's explicit slice: kept, but not silently
            logger.warning(
                f"--split {args.split} holds no row of {len(dropped)} class(es) of the split it "
                f"slices ({', '.join(dropped[:5])}{', ...' if len(dropped) > 5 else ''}): is "
                "the split sorted by class? --max_train_samples N samples every class instead"
            )
        source = {
            **local_source(args.dataset),  # with its absolute path: prune from anywhere
            "config": args.dataset_config_name,
            "split": args.split,
            "revision": args.revision,
            "command": shlex.join(["hf-drop", *self.argv]),
        }
        if args.max_train_samples is not None:  # reloaded the same way: prune, the card's command
            sampling = stratified_sampling(config.seed, config.label_column)
            total = len(train)
            train = sample_rows(train, args.max_train_samples, sampling)
            source |= {"max_train_samples": args.max_train_samples, "sampling": sampling}
            logger.info(
                f"training on {len(train)} of the {total} rows of {args.split}: a sample with "
                f"their class proportions (--max_train_samples, --seed {config.seed})"
            )
        return data, train, source

    def _validation(self, data, train, config: ProbeConfig, source: dict):
        """The validation rows, the training rows (less a carved validation split) and the
        record of the splits: which rows validate, how they were chosen, which split is left
        for reporting (``hf-drop train --eval-from-probe``)."""
        from ..data.sources import select_split
        from ..data.splits import stratified_indices

        args = self.args
        chosen_by = "given"
        if args.val_split is None and args.val_from_test is None and args.val_fraction is None:
            chosen_by = "default"
            if "validation" in data:
                args.val_split = "validation"
            elif _has_split(data, args.test_split):
                args.val_from_test = 0.5  # the paper's protocol
            else:
                raise ValueError(
                    f"{args.dataset} has no validation or {args.test_split!r} split "
                    f"({list(data)}): pass --val-split, --val-from-test or --val-fraction"
                )
        # The held-out split the probe never sees, for reporting (unless it validates on it).
        report = args.test_split if _has_split(data, args.test_split) else None
        if report is not None and _same_split(args.split, report):
            report = None  # trained on: not held out
        if args.val_split is not None:
            val = select_split(data, args.val_split, "--val-split")
            if report is not None and _same_split(args.val_split, report):
                report = None
            splits = {"val_split": args.val_split, "report_split": report}
            how = f"split {args.val_split!r} of the dataset"
            if chosen_by == "default":
                how += " (the dataset has one; --val-split, --val-from-test or --val-fraction "
                how += "choose another)"
        elif args.val_from_test is not None:
            test = select_split(data, args.test_split, "--test-split")
            chosen, rest = stratified_indices(
                test, args.val_from_test, seed=args.split_seed, label_column=config.label_column
            )
            splits = {
                "val_split": args.test_split,
                "report_split": args.test_split,
                "val_indices": chosen.tolist(),
                "report_indices": rest.tolist(),
            }
            val, report = test.select(chosen), args.test_split
            how = (
                f"{len(chosen)} rows, a fraction {args.val_from_test} of each class of split "
                f"{args.test_split!r} (--split-seed {args.split_seed}); its other {len(rest)} "
                "rows are left for reporting"
            )
            if chosen_by == "default":
                how += " (the paper's protocol: the dataset has no 'validation' split)"
        else:
            chosen, rest = stratified_indices(
                train, args.val_fraction, seed=args.split_seed, label_column=config.label_column
            )
            source["train_indices"] = "splits.json"
            splits = {
                "val_split": args.split,
                "report_split": report,
                "val_indices": chosen.tolist(),
                "train_indices": rest.tolist(),
            }
            val, train = train.select(chosen), train.select(rest)
            how = (
                f"{len(chosen)} rows, a fraction {args.val_fraction} of each class carved out of "
                f"the training rows of {args.split!r} (--split-seed {args.split_seed})"
            )
        protocol = (
            "val_split"
            if args.val_split is not None
            else ("val_from_test" if args.val_from_test is not None else "val_fraction")
        )
        splits |= {"protocol": protocol, "chosen_by": chosen_by, "val_rows": len(val)}
        source["validation"] = {k: v for k, v in splits.items() if not k.endswith("_indices")}
        logger.info(f"validating on {how}")
        return val, train, splits


def _has_split(data, spec: str) -> bool:
    from ..data.sources import select_split

    try:
        select_split(data, spec)
    except ValueError:
        return False
    return True


def _same_split(a: str, b: str) -> bool:
    """Whether two split specs share a split name (``test`` and ``test[:50%]`` do)."""
    import re

    names = [set(re.findall(r"([A-Za-z_][\w-]*)(?:\[|$|\+)", spec)) for spec in (a, b)]
    return bool(names[0] & names[1])
