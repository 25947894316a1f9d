"""``hf-drop train``: train a classifier on a (pruned) dataset with ``transformers.Trainer``."""

from __future__ import annotations

import argparse
import functools
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from ..io.logs import get_logger
from ..train.config import TrainConfig
from .base import BaseCommand, local_paths, one_or_many

__all__ = ["Train", "TrainDataArguments"]

logger = get_logger(__name__)

_EPILOG = """\
Any transformers.TrainingArguments field is accepted as well, as --<field> with underscores or
hyphens, e.g.:

  hf-drop train ... --report_to tensorboard --eval_strategy epoch --save_strategy epoch \\
      --gradient_accumulation_steps 2

hf-drop's options set epochs, learning rate, batch size, weight decay, seed and workers; the
TrainingArguments names are their aliases (--num_train_epochs, --learning_rate,
--per_device_train_batch_size, --dataloader_num_workers), and so is --output_dir of --output.
--log_level and --disable_tqdm are hf-drop's and the Trainer's at once. One setting given twice
under two names is refused. OUTPUT receives metrics.json, model/ (the trained model,
its preprocessing and a model card; not with --no-save-model) and checkpoints/ (the Trainer's
output_dir: checkpoints and reporters' logs, if any), all at once when training is done."""


@dataclass(kw_only=True)
class TrainDataArguments:
    """What ``hf-drop train`` trains and evaluates on, and where the run goes."""

    dataset: str = field(
        metadata={"help": "training data: a pruned subset folder, or any dataset name or path"}
    )
    split: str = field(default="train", metadata={"help": "training split (or slice)"})
    max_train_samples: int | None = field(
        default=None,
        metadata={
            "help": "train on N rows of --split only: a sample with its class proportions, "
            "drawn with --seed (not with a pruned subset: prune it smaller instead)",
            "metavar": "N",
        },
    )
    eval_dataset: str | None = field(
        default=None,
        metadata={
            "help": "evaluation data: a dataset name or path (or --eval-from-probe)",
            "metavar": "DATASET",
        },
    )
    eval_split: str = field(
        default="test",
        metadata={
            "help": "with --eval-dataset: the split (or slice, e.g. 'test[:1000]') the model is "
            "judged on"
        },
    )
    eval_from_probe: str | None = field(
        default=None,
        metadata={
            "help": "evaluate on the held-out split a probe recorded: the rows of the test split "
            "it did not validate on, or the split it left untouched",
            "metavar": "DIR",
        },
    )
    dynamic_eval_split: str | None = field(
        default=None,
        metadata={
            "help": "with --dynamic_drop: the split (or slice, e.g. 'test[5000:]') of "
            "--eval-dataset whose class errors choose each epoch's rows; never the one the model "
            "is judged on",
            "metavar": "SPLIT",
        },
    )
    density: float | None = field(
        default=None,
        metadata={"help": "density of the training set (default: from its pruning.json, else 1)"},
    )
    output: str = field(
        metadata={"help": "the run's folder: new or empty (or a previous run, with --overwrite)"}
    )
    overwrite: bool = field(
        default=False, metadata={"help": "replace a previous training run in --output"}
    )


class Train(BaseCommand):
    name = "train"
    help = "train a classifier on a (pruned) dataset with transformers.Trainer"
    description = (
        "Train with transformers.Trainer and write metrics.json: accuracy, worst-class accuracy "
        "and the accuracy of every class; save the model with its card."
    )
    formatter_class = argparse.RawDescriptionHelpFormatter
    options = ((TrainDataArguments, "data"), (TrainConfig, "model and training"))
    required = ("epochs",)
    aliases: ClassVar[dict[str, str]] = {
        "batch_size": "per_device_train_batch_size",
        "num_workers": "dataloader_num_workers",
    }
    allow_abbrev = False  # --optim (TrainingArguments) is not an abbreviation of --optimizer

    @classmethod
    def help_notes(cls) -> dict[str, str]:
        """The logging options are the TrainingArguments fields of the same name here."""
        return {
            "log_level": "; also the Trainer's TrainingArguments.log_level (transformers' logs)",
            "disable_tqdm": "; the Trainer's bars too (TrainingArguments.disable_tqdm)",
        }

    @classmethod
    def epilog_text(cls) -> str:
        from ..train.arguments import FIXED, training_argument_names

        names = ", ".join(sorted(training_argument_names() - {"output_dir", *FIXED}))
        fields = textwrap.fill(names, width=100, initial_indent="  ", subsequent_indent="  ")
        return f"{_EPILOG}\n\nTrainingArguments fields (as --<field>):\n{fields}\n"

    def take_extra(self, strings: list[str]) -> list[str]:
        """Any TrainingArguments field, into ``self.training_args``."""
        self.training_args: dict = {}
        if not strings:  # transformers is imported only when there is something for it
            return []
        from ..train.arguments import parse_training_args

        self.training_args, unknown = parse_training_args(strings)
        return unknown

    def extra_names(self) -> list[str]:
        from ..train.arguments import training_argument_names

        return [f"--{name}" for name in sorted(training_argument_names())]

    def run(self) -> None:
        from ..io.outputs import prepare_output
        from ..train import train_and_evaluate

        args = self.args
        if args.density is not None and not 0 < args.density <= 1:
            raise ValueError(f"--density must lie in (0, 1], got {args.density}")
        inputs = [
            *local_paths(args.dataset),
            *local_paths(args.eval_dataset),
            *local_paths(args.eval_from_probe),
        ]
        prepare_output(
            args.output, "train", overwrite=args.overwrite, inputs=inputs, what="--output"
        )
        config: TrainConfig = self.options[TrainConfig]
        train, provenance = self._training_data()
        train, train_source = self._sample(train, provenance, config)
        density = args.density
        if density is None:
            density = provenance["params"]["density"] if provenance else 1.0
        config.group_column = one_or_many(config.group_column)
        eval_rows, eval_source = self._evaluation_data()
        steer_rows, steer_source = self._steering_data(config)
        metrics = train_and_evaluate(
            train,
            eval_rows,
            config,
            args.output,
            training_args=self.training_args,
            density=density,
            provenance=provenance,
            dataset_name=str(args.dataset),
            reproduce=_subset_commands(provenance),
            train_source=train_source,
            eval_source=eval_source,
            overwrite=args.overwrite,
            inputs=inputs,
            steer_dataset=steer_rows,
            steer_source=steer_source,
        )
        from accelerate import PartialState

        if PartialState().is_main_process:
            print(
                f"accuracy {metrics['accuracy']:.4f}, worst class {metrics['worst_class']} "
                f"{metrics['worst_class_accuracy']:.4f} -> {args.output}/metrics.json"
            )

    def _training_data(self):
        """The training split, and the subset's pruning.json if --dataset is a subset folder."""
        from ..data.sources import load_source, select_split
        from ..pruning.artifacts import PRUNING_FILE
        from ..pruning.record import read_record

        args = self.args
        train = select_split(load_source(args.dataset), args.split, "--split")
        pruning_file = Path(args.dataset) / PRUNING_FILE
        provenance = (
            read_record(pruning_file, f"run hf-drop prune again to write {args.dataset}")
            if pruning_file.exists()
            else None
        )
        pruned = ((provenance or {}).get("splits") or {}).get("pruned")
        if pruned is not None and args.split != pruned:
            # The model card would call a model trained on an untouched split a pruned one.
            raise ValueError(
                f"--split {args.split!r} is not the pruned split of the subset {args.dataset}: "
                f"its pruned rows are split {pruned!r}, the others are the source's, untouched "
                f"(evaluate on them with --eval-dataset {args.dataset} --eval-split NAME); "
                f"pass --split {pruned}"
            )
        if len(train) == 0:
            pruned = provenance.get("params", {}).get("density") if provenance else None
            raise ValueError(
                f"the training set is empty: split {args.split!r} of --dataset {args.dataset} "
                "has no rows"
                + (
                    f" (it was pruned at density {pruned}: prune again with a larger --density)"
                    if pruned is not None
                    else ""
                )
            )
        return train, provenance

    def _sample(self, train, provenance: dict | None, config: TrainConfig):
        """--max_train_samples: a seeded sample of the training rows by class, and what the
        training data is (for metrics.json)."""
        from ..data.sources import local_source, sample_rows, stratified_sampling

        args = self.args
        described: dict = {**local_source(args.dataset), "split": args.split}
        count = args.max_train_samples
        if count is None:
            return train, described
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"--max_train_samples must be a positive int, got {count!r}")
        if provenance is not None:
            raise ValueError(
                f"--max_train_samples with --dataset {args.dataset}, a pruned subset: its rows "
                "are what was chosen (a sample of them would train at another density); prune "
                "it again with a smaller --density instead"
            )
        sampling = stratified_sampling(config.seed, config.label_column)
        sampled = sample_rows(train, count, sampling)
        logger.info(
            f"training on {len(sampled)} of the {len(train)} rows of {args.split}: a sample "
            f"with their class proportions (--max_train_samples, --seed {config.seed})"
        )
        return sampled, described | {"max_train_samples": count, "sampling": sampling}

    def _steering_data(self, config: TrainConfig):
        """--dynamic_eval_split of --eval-dataset (with --dynamic_drop), and what it is."""
        from ..data.sources import local_source, select_split

        args = self.args
        if config.dynamic_drop is None:
            if args.dynamic_eval_split is not None:
                raise ValueError("--dynamic_eval_split is only read with --dynamic_drop")
            return None, None
        if args.dynamic_eval_split is None or args.eval_dataset is None:
            raise ValueError(
                "--dynamic_drop needs --eval-dataset and --dynamic_eval_split: the split whose "
                "class errors choose each epoch's rows, apart from --eval-split (e.g. "
                "--eval-split 'test[:5000]' --dynamic_eval_split 'test[5000:]')"
            )
        rows = select_split(self._eval_splits, args.dynamic_eval_split, "--dynamic_eval_split")
        return rows, {**local_source(args.eval_dataset), "split": args.dynamic_eval_split}

    @functools.cached_property
    def _eval_splits(self):
        """--eval-dataset, loaded once for the judged and the steering split."""
        from ..data.sources import load_source

        return load_source(self.args.eval_dataset)

    def _evaluation_data(self):
        """--eval-dataset's split, or the probe's reported split (--eval-from-probe), and what
        they are (name, split, rows: for metrics.json and the model card)."""
        from ..data.sources import local_source, select_split

        args = self.args
        if args.eval_from_probe:
            return _probe_report_split(args.eval_from_probe)
        if args.eval_dataset:
            rows = select_split(self._eval_splits, args.eval_split, "--eval-split")
            return rows, {**local_source(args.eval_dataset), "split": args.eval_split}
        raise ValueError("pass --eval-dataset or --eval-from-probe")


def _probe_report_split(folder: str):
    """The rows a probe left for reporting, and their description: the part of the test split
    it did not validate on (--val-from-test), or the held-out split it never saw."""
    from ..data.sources import load_source, recorded_dataset, select_split
    from ..probe import ProbeResult

    result = ProbeResult.load(folder)
    splits, source = result.splits(), result.source
    report = splits.get("report_split") if "protocol" in splits else _legacy_report(splits)
    validated = splits.get("val_split") or "its validation split"
    no_report = (
        f"the probe in {folder} validated on {validated!r} and its dataset has no other "
        "held-out split for reporting (--test-split at probe time): pass --eval-dataset "
        "(and --eval-split)"
    )
    if report is None:
        raise ValueError(no_report)
    try:
        name = recorded_dataset(source, f"the probe's dataset (in {folder})")
        data = load_source(name, source.get("config"), source.get("revision"))
    except (FileNotFoundError, ValueError) as error:
        raise ValueError(
            f"{error}: pass --eval-dataset PATH (and --eval-split) to evaluate on it"
        ) from error
    try:
        rows = select_split(data, report, "the probe's reported split")
    except ValueError as error:
        raise ValueError(f"{no_report} ({error})") from None
    described = {"name": source.get("name"), "split": report, "from_probe": str(folder)}
    if source.get("path"):
        described["path"] = source["path"]
    if "report_indices" in splits:
        rows = rows.select(splits["report_indices"])
        described["rows_of_split"] = "report_indices (the probe's splits.json)"
    return rows, described


def _legacy_report(splits: dict) -> str | None:
    """The reported split of a probe recorded before splits.json said it: the test split's other
    half (--val-from-test), else ``test`` where it validated on another split."""
    if "report_indices" in splits:
        return splits["val_split"]
    return None if "test" in (splits.get("val_split") or "") else "test"


def _subset_commands(provenance: dict | None) -> list[str] | None:
    """The commands that rebuild a subset (for the model card), if its record says enough."""
    if not provenance:
        return None
    from .reproduce import reproduce_commands

    try:
        return reproduce_commands(provenance)
    except (KeyError, TypeError, ValueError):  # an older or hand-made pruning.json
        return None
