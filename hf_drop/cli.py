"""The ``hf-drop`` command line.

hf-drop probe --dataset digits --model test_resnet --epochs 10 --output runs/probe
accelerate launch -m hf_drop probe ...        # the same, on several processes
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Parse ``argv`` (default: the process's arguments) and run the command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if not getattr(args, "command", None):
        parser.print_help()
        sys.exit(2)
    try:
        args.run(args)
    except (ValueError, FileNotFoundError, TypeError) as error:
        parser.exit(2, f"hf-drop {args.command}: error: {error}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-drop", description="Distributionally robust data pruning (DRoP) for HF datasets."
    )
    commands = parser.add_subparsers(dest="command")
    _add_probe(commands)
    _add_prune(commands)
    _add_train(commands)
    _add_report(commands)
    _add_push(commands)
    return parser


# --- probe --------------------------------------------------------------------------------------


def _add_probe(commands) -> None:
    p = commands.add_parser(
        "probe",
        help="train a probe model; record per-sample scores and per-class errors",
        description="Train a probe (timm or transformers) on a dataset under Accelerate and write "
        "its per-sample scores and per-class validation errors to --output.",
    )
    data = p.add_argument_group("data")
    data.add_argument(
        "--dataset",
        required=True,
        help="fashion_mnist, digits, a local folder or file, or a Hub dataset name",
    )
    data.add_argument("--config", help="dataset configuration (Hub datasets)")
    data.add_argument("--revision", help="dataset revision: branch, tag or commit (Hub datasets)")
    data.add_argument("--split", default="train", help="training split (default: train)")
    val = data.add_mutually_exclusive_group()
    val.add_argument("--val-split", help="use this split of the dataset as validation")
    val.add_argument(
        "--val-from-test",
        type=float,
        metavar="F",
        help="validate on a fraction F of each class of --test-split (the paper: 0.5)",
    )
    val.add_argument(
        "--val-fraction",
        type=float,
        metavar="F",
        help="carve a fraction F of each class out of the training split",
    )
    data.add_argument("--test-split", default="test", help="split for --val-from-test")
    data.add_argument("--image-column", default="image")
    data.add_argument("--label-column", default="label")
    data.add_argument("--split-seed", type=int, default=0, help="seed of carved splits")

    model = p.add_argument_group("model and training")
    model.add_argument(
        "--model",
        required=True,
        help="timm architecture, Hub checkpoint id, or local save_pretrained folder",
    )
    model.add_argument("--pretrained", action="store_true", help="start from pretrained weights")
    model.add_argument(
        "--model-kwargs",
        type=json.loads,
        default={},
        metavar="JSON",
        help="extra model arguments, e.g. '{\"img_size\": 28}'",
    )
    model.add_argument("--epochs", type=int, required=True)
    model.add_argument("--batch-size", type=int, default=128, help="per process (default: 128)")
    model.add_argument(
        "--global-batch-size",
        type=int,
        help="batch of one step over all processes, split evenly among them (replaces "
        "--batch-size; the same training on any number of processes)",
    )
    model.add_argument("--lr", type=float, default=0.05)
    model.add_argument("--momentum", type=float, default=0.9)
    model.add_argument("--weight-decay", type=float, default=5e-4)
    model.add_argument("--schedule", choices=["cosine", "constant"], default="cosine")
    model.add_argument("--augment", action="store_true")
    model.add_argument("--num-inits", type=int, default=1)
    model.add_argument("--seed", type=int, default=0)
    model.add_argument("--num-workers", type=int, default=0)

    scores = p.add_argument_group("scores")
    scores.add_argument("--score-epoch", type=int, help="epoch of EL2N and GraNd (default: 10%%)")
    scores.add_argument("--du-window", type=int, default=10)
    scores.add_argument("--full-grand", action="store_true", help="also full-parameter GraNd")
    scores.add_argument("--embeddings", action="store_true", help="keep penultimate embeddings")
    scores.add_argument("--class-errors-from", choices=["final", "best"], default="final")
    scores.add_argument(
        "--group-column",
        nargs="+",
        metavar="COLUMN",
        help="also measure validation errors per group: a column, or several whose combinations "
        "are the groups (for hf-drop prune --group-column)",
    )
    p.add_argument(
        "--output",
        required=True,
        help="result folder: new or empty, or an unfinished run of this probe (resumed)",
    )
    p.set_defaults(run=_probe)


def _probe(args: argparse.Namespace) -> None:
    from .data.sources import load_source
    from .data.splits import stratified_indices
    from .probe import ProbeConfig, run_probe

    config = ProbeConfig(
        model=args.model,
        epochs=args.epochs,
        batch_size=args.batch_size,
        global_batch_size=args.global_batch_size,
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        schedule=args.schedule,
        num_inits=args.num_inits,
        seed=args.seed,
        score_epoch=args.score_epoch,
        du_window=args.du_window,
        full_grand=args.full_grand,
        embeddings=args.embeddings,
        augment=args.augment,
        pretrained=args.pretrained,
        model_kwargs=args.model_kwargs,
        class_errors_from=args.class_errors_from,
        image_column=args.image_column,
        label_column=args.label_column,
        num_workers=args.num_workers,
        group_column=_group_column(args.group_column),
    )
    data = load_source(args.dataset, args.config, args.revision)
    if args.split not in data:
        raise ValueError(f"--split {args.split!r} is not a split of {args.dataset}: {list(data)}")
    train = data[args.split]
    source = {
        "name": args.dataset,
        "config": args.config,
        "split": args.split,
        "revision": args.revision,
        "command": shlex.join(["hf-drop", *args.argv]),
    }
    splits: dict = {}

    if args.val_split is None and args.val_from_test is None and args.val_fraction is None:
        if "validation" in data:
            args.val_split = "validation"
        elif args.test_split in data:
            args.val_from_test = 0.5  # the paper's protocol
        else:
            raise ValueError(
                f"{args.dataset} has no validation or {args.test_split!r} split "
                f"({list(data)}): pass --val-split, --val-from-test or --val-fraction"
            )
    if args.val_split is not None:
        if args.val_split not in data:
            raise ValueError(f"--val-split {args.val_split!r} is not a split: {list(data)}")
        val = data[args.val_split]
        splits = {"val_split": args.val_split}
    elif args.val_from_test is not None:
        if args.test_split not in data:
            raise ValueError(f"--test-split {args.test_split!r} is not a split: {list(data)}")
        test = data[args.test_split]
        chosen, rest = stratified_indices(
            test, args.val_from_test, seed=args.split_seed, label_column=args.label_column
        )
        val = test.select(chosen)
        splits = {
            "val_split": args.test_split,
            "val_indices": chosen.tolist(),
            "report_indices": rest.tolist(),
        }
    else:
        chosen, rest = stratified_indices(
            train, args.val_fraction, seed=args.split_seed, label_column=args.label_column
        )
        val, train = train.select(chosen), train.select(rest)
        splits = {
            "val_split": args.split,
            "val_indices": chosen.tolist(),
            "train_indices": rest.tolist(),
        }
        source["train_indices"] = "splits.json"
    result = run_probe(
        train,
        val,
        config,
        args.output,
        source=source,
        splits=splits,
        inputs=_local_paths(args.dataset),  # the output may not overlap a local --dataset
    )
    from accelerate import PartialState

    if not PartialState().is_main_process:
        return
    errors = ", ".join(
        f"{n}: {e:.3f}" for n, e in zip(result.class_names, result.class_errors, strict=True)
    )
    print(f"probe result in {result.folder}\nclass errors: {errors}")


# --- prune --------------------------------------------------------------------------------------


def _add_prune(commands) -> None:
    from .core import rules

    p = commands.add_parser(
        "prune",
        help="prune the probe's training set with DRoP (or a baseline) and save it",
        description="Choose a subset of the probe's training set (or of --dataset, with "
        "--class-errors) and save it (save_to_disk) with pruning.json, the record of how it was "
        "made. Options that do not apply to the chosen rule are refused, not ignored.",
    )
    errors = p.add_mutually_exclusive_group(required=True)
    errors.add_argument("--probe", help="folder of a finished hf-drop probe")
    errors.add_argument(
        "--class-errors",
        type=json.loads,
        metavar="JSON",
        help="per-class errors given by hand, a JSON list by class id or object by class name "
        "(with --dataset; no probe)",
    )
    p.add_argument("--density", type=float, required=True, help="fraction of the data to keep")
    p.add_argument(
        "--within",
        default="random",
        help="random (default), a probe score (el2n, grand, forgetting, aum, ...), embedding, "
        "or with --class-errors a score column of --dataset",
    )
    p.add_argument(
        "--keep",
        choices=list(rules.KEEP_RULES),
        help="with a score: "
        + "; ".join(f"{rule.name}: {rule.help}" for rule in rules.KEEP_RULES.values()),
    )
    p.add_argument(
        "--quota",
        choices=list(rules.QUOTA_RULES),
        help="how many per class: "
        + "; ".join(f"{rule.name}: {rule.help}" for rule in rules.QUOTA_RULES.values()),
    )
    p.add_argument("--strategy-score", help="score whose global selection sets the class counts")
    p.add_argument(
        "--mode",
        choices=["paper", "count"],
        help="--quota drop: kept fraction (paper, default) "
        "or kept count (count) proportional to error",
    )
    p.add_argument(
        "--floor",
        type=float,
        help="--quota drop: share of each class's share always kept (default: 0.5)",
    )
    p.add_argument(
        "--strength", type=float, help="--quota drop: 0 proportional ... 1 DRoP (default: 1)"
    )
    p.add_argument(
        "--no-shrink",
        dest="shrink",
        action="store_const",
        const=False,
        help="--quota drop: use the probe's errors as measured, not shrunk by their support",
    )
    p.add_argument("--min-per-class", type=int, default=0, help="floor per class (default: 0)")
    p.add_argument(
        "--group-column",
        nargs="+",
        metavar="COLUMN",
        help="quotas per group (a column, or the combinations of several) instead of per class; "
        "with --probe, the probe must have measured them (hf-drop probe --group-column)",
    )
    p.add_argument(
        "--missing-error", type=float, help="error of a class the validation split lacks"
    )
    p.add_argument("--ccs-beta", type=float, help="CCS: hardest fraction dropped (default 0.1)")
    p.add_argument("--ccs-strata", type=int, help="CCS: number of strata (default 50)")
    p.add_argument("--seed", type=int, default=0, help="seed of random choices (default: 0)")
    p.add_argument(
        "--dataset",
        help="with --probe: the probe's training data, if not reloadable from its record; "
        "with --class-errors: the dataset to prune",
    )
    p.add_argument("--split", help="with --class-errors: the split of --dataset (default: train)")
    p.add_argument(
        "--with-scores",
        nargs="*",
        metavar="SCORE",
        help="save the probe's scores as columns of the subset (these, or all if none named)",
    )
    p.add_argument(
        "--output",
        required=True,
        help="folder of the subset: new or empty (never the probe folder or the dataset's)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a previous subset in --output")
    p.set_defaults(run=_prune)


def _prune(args: argparse.Namespace) -> None:
    from .io.outputs import prepare_output
    from .pruning.artifacts import save_subset

    options = {
        name: value
        for name, value in {
            "quota": args.quota,
            "keep": args.keep,
            "mode": args.mode,
            "floor": args.floor,
            "strength": args.strength,
            "shrink": args.shrink,
            "min_per_class": args.min_per_class,
            "missing_error": args.missing_error,
            "ccs_beta": args.ccs_beta,
            "ccs_strata": args.ccs_strata,
            "seed": args.seed,
            "group_column": _group_column(args.group_column),
        }.items()
        if value is not None
    }
    if args.probe is not None:
        from .probe import ProbeResult

        if args.split is not None:
            raise ValueError("--split applies to --class-errors; a probe prunes its own split")
        result = ProbeResult.load(args.probe)
        inputs = [args.probe, *_local_paths(args.dataset or result.source.get("name"))]
        prepare_output(
            args.output, "subset", overwrite=args.overwrite, inputs=inputs, what="--output"
        )
        train = probe_training_data(result, args.dataset)
        drop = _probe_filter(result, args, options)
        if args.with_scores is not None:
            train = result.add_scores(train, args.with_scores or None)
    else:
        train, drop, inputs = _hand_filter(args, options)
        prepare_output(
            args.output, "subset", overwrite=args.overwrite, inputs=inputs, what="--output"
        )
    subset = drop.fit(train).apply(train)
    save_subset(subset, args.output, drop, overwrite=args.overwrite, inputs=inputs)
    print(drop.report().to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"{drop.method}: kept {len(subset)} of {len(train)} rows -> {args.output}")


def _probe_filter(result, args: argparse.Namespace, options: dict):
    from .pruning.filter import DRoPFilter

    if args.within != "random" and args.within not in [*result.score_names, "embedding"]:
        raise ValueError(
            f"--within {args.within!r} is not a score of the probe in {args.probe}: "
            f"random, {', '.join(result.score_names)}"
            + (", embedding" if "embedding" in result.scores.column_names else "")
        )
    return DRoPFilter.from_probe(
        result, args.density, within=args.within, strategy_score=args.strategy_score, **options
    )


def _hand_filter(args: argparse.Namespace, options: dict):
    """The dataset and filter of ``--class-errors``: errors given by hand, no probe."""
    from .data.sources import load_source
    from .io.portable import portable_name
    from .pruning.filter import DRoPFilter

    if args.dataset is None:
        raise ValueError("--class-errors needs --dataset, the dataset to prune")
    if args.with_scores is not None:
        raise ValueError("--with-scores needs --probe: there are no probe scores to add")
    split = args.split or "train"
    train = _split(load_source(args.dataset), split, "--split")
    if args.strategy_score is not None:
        options.setdefault("quota", "strategy")
    drop = DRoPFilter(
        args.density,
        class_errors=args.class_errors,
        within=args.within,
        strategy_scores=args.strategy_score,
        source={"name": portable_name(args.dataset), "split": split},
        **options,
    )
    return train, drop, _local_paths(args.dataset)


def probe_training_data(result, dataset: str | None = None):
    """The training set a probe saw, reloaded from its record (or from ``dataset``)."""
    from .data.sources import load_source

    source = result.source
    data = load_source(dataset or source.get("name") or "", source.get("config"))
    split = source.get("split") or "train"
    if split not in data:
        raise ValueError(f"the probe trained on split {split!r}, which {list(data)} lacks")
    train = data[split]
    if source.get("train_indices"):  # the probe carved its validation rows out of this split
        train = train.select(result.splits()["train_indices"])
    return train


# --- train --------------------------------------------------------------------------------------

_TRAIN_EPILOG = """\
Any transformers.TrainingArguments field is accepted as well, as --<field> with underscores or
hyphens, e.g.:

  hf-drop train ... --report_to tensorboard --eval_strategy epoch --save_strategy epoch \\
      --gradient_accumulation_steps 2

hf-drop's flags set epochs, learning rate, batch size, weight decay and seed; the TrainingArguments
names of those are their aliases (--num_train_epochs, --learning_rate,
--per_device_train_batch_size, --weight_decay), and so is --output_dir of --output. One setting
given twice under two names is refused. OUTPUT receives metrics.json, model/ (the trained model,
its preprocessing and a model card; not with --no-save-model) and checkpoints/ (the Trainer's
output_dir: checkpoints and reporters' logs, if any), all at once when training is done."""


class _TrainParser(argparse.ArgumentParser):
    """``hf-drop train``: its own flags, then any TrainingArguments field (with
    ``transformers.HfArgumentParser``) into ``args.training_args``; anything else is refused."""

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        namespace.training_args, unknown = {}, extras
        if extras:  # transformers is imported only when there is something for it
            from .train.arguments import parse_training_args

            try:
                namespace.training_args, unknown = parse_training_args(extras)
            except ValueError as error:
                self.error(str(error))
        if unknown:
            self.error(
                f"unrecognized arguments: {' '.join(unknown)} (hf-drop train takes its own flags "
                "and any transformers.TrainingArguments field: see hf-drop train --help)"
            )
        return namespace, []

    def format_help(self) -> str:
        import textwrap

        from .train.arguments import FIXED, training_argument_names

        names = ", ".join(sorted(training_argument_names() - {"output_dir", *FIXED}))
        return (
            super().format_help()
            + "\nTrainingArguments fields (as --<field>):\n"
            + textwrap.fill(names, width=100, initial_indent="  ", subsequent_indent="  ")
            + "\n"
        )


class _Once(argparse.Action):
    """Store a value; refuse the same setting given under two of its names."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = vars(namespace).setdefault("_given_as", {})
        earlier = given.setdefault(self.dest, option_string)
        if earlier.replace("-", "_") != option_string.replace("-", "_"):
            parser.error(f"{earlier} and {option_string} set the same thing: give one of them")
        setattr(namespace, self.dest, values)


def _train_flag(p: argparse.ArgumentParser, *names: str, **kwargs) -> None:
    """A flag under ``names``, each also spelt with underscores for hyphens and vice versa."""
    spellings = []
    for name in names:
        stem = name[2:]
        spellings += [name, f"--{stem.replace('-', '_')}", f"--{stem.replace('_', '-')}"]
    kwargs.setdefault("action", _Once)
    p.add_argument(*dict.fromkeys(spellings), **kwargs)


def _add_train(commands) -> None:
    p = commands.add_parser(
        "train",
        help="train a classifier on a (pruned) dataset with transformers.Trainer",
        description="Train with transformers.Trainer and write metrics.json: accuracy, "
        "worst-class accuracy and the accuracy of every class; save the model with its card.",
        epilog=_TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # --optim (TrainingArguments) is not an abbreviation of --optimizer
    )
    p.__class__ = _TrainParser  # add_parser makes a plain parser: this one takes TrainingArguments
    import functools

    flag = functools.partial(_train_flag, p)
    flag(
        "--dataset",
        required=True,
        help="training data: a pruned subset folder, or any dataset name or path",
    )
    flag("--split", default="train")
    flag("--eval-dataset", help="evaluation data (name or path)")
    flag("--eval-split", default="test")
    flag(
        "--eval-from-probe",
        metavar="DIR",
        help="evaluate on the probe's reported split (the rows it did not validate on)",
    )
    flag("--model", required=True)
    flag("--pretrained", action="store_true")
    flag("--model-kwargs", type=json.loads, default={}, metavar="JSON")
    flag(
        "--epochs",
        "--num_train_epochs",
        type=int,
        required=True,
        help="epochs (full-data epochs with --compute-matched)",
    )
    flag(
        "--compute-matched",
        action="store_true",
        help="train round((0.5 + 0.5 d) E / d) epochs at density d",
    )
    flag(
        "--density",
        type=float,
        help="density of the training set (default: from its pruning.json, else 1)",
    )
    flag(
        "--optimizer",
        choices=["sgd", "trainer"],
        default="sgd",
        help="sgd: momentum and step decay (hf-drop's); trainer: the Trainer's --optim and "
        "--lr_scheduler_type (default: sgd)",
    )
    flag("--lr", "--learning_rate", type=float, default=0.05)
    flag("--batch-size", "--per_device_train_batch_size", type=int, default=128)
    flag("--weight-decay", type=float, default=5e-4)
    flag("--seed", type=int, default=0)
    flag("--augment", action="store_true")
    flag("--image-column", default="image")
    flag("--label-column", default="label")
    flag(
        "--no-save-model",
        dest="save_model",
        action="store_false",
        help="save no model/ (metrics.json only)",
    )
    flag(
        "--output",
        "--output-dir",
        required=True,
        help="the run's folder: new or empty (or a previous run, with --overwrite)",
    )
    flag("--overwrite", action="store_true", help="replace a previous training run in --output")
    p.set_defaults(run=_train)


def _train(args: argparse.Namespace) -> None:
    from .io.outputs import prepare_output
    from .train import TrainConfig, train_and_evaluate

    if args.density is not None and not 0 < args.density <= 1:
        raise ValueError(f"--density must lie in (0, 1], got {args.density}")
    inputs = [
        *_local_paths(args.dataset),
        *_local_paths(args.eval_dataset),
        *_local_paths(args.eval_from_probe),
    ]
    prepare_output(args.output, "train", overwrite=args.overwrite, inputs=inputs, what="--output")
    train, provenance = _training_data(args)
    density = args.density
    if density is None:
        density = provenance["params"]["density"] if provenance else 1.0
    config = TrainConfig(
        model=args.model,
        epochs=args.epochs,
        compute_matched=args.compute_matched,
        optimizer=args.optimizer,
        lr=args.lr,
        weight_decay=args.weight_decay,
        batch_size=args.batch_size,
        seed=args.seed,
        augment=args.augment,
        pretrained=args.pretrained,
        model_kwargs=args.model_kwargs,
        image_column=args.image_column,
        label_column=args.label_column,
        save_model=args.save_model,
    )
    metrics = train_and_evaluate(
        train,
        _evaluation_data(args),
        config,
        args.output,
        training_args=args.training_args,
        density=density,
        provenance=provenance,
        dataset_name=str(args.dataset),
        reproduce=_subset_commands(provenance),
        overwrite=args.overwrite,
        inputs=inputs,
    )
    from accelerate import PartialState

    if PartialState().is_main_process:
        print(
            f"accuracy {metrics['accuracy']:.4f}, worst class {metrics['worst_class']} "
            f"{metrics['worst_class_accuracy']:.4f} -> {args.output}/metrics.json"
        )


def _training_data(args: argparse.Namespace):
    """The training split, and the subset's pruning.json if --dataset is a subset folder."""
    from .data.sources import load_source
    from .io.files import read_json
    from .pruning.artifacts import PRUNING_FILE

    train = _split(load_source(args.dataset), args.split, "--split")
    pruning_file = Path(args.dataset) / PRUNING_FILE
    provenance = (
        read_json(
            pruning_file,
            "how the subset was made",
            f"run hf-drop prune again to write {args.dataset}",
        )
        if pruning_file.exists()
        else None
    )
    if len(train) == 0:
        pruned = provenance.get("params", {}).get("density") if provenance else None
        raise ValueError(
            f"the training set is empty: split {args.split!r} of --dataset {args.dataset} has "
            "no rows"
            + (
                f" (it was pruned at density {pruned}: prune again with a larger --density)"
                if pruned is not None
                else ""
            )
        )
    return train, provenance


def _evaluation_data(args: argparse.Namespace):
    """--eval-dataset's split, or the probe's reported split (--eval-from-probe)."""
    from .data.sources import load_source

    if args.eval_from_probe:
        from .probe import ProbeResult

        result = ProbeResult.load(args.eval_from_probe)
        splits = result.splits()
        if "report_indices" not in splits:
            raise ValueError(
                f"{args.eval_from_probe} has no reported split (it was not run with "
                "--val-from-test); pass --eval-dataset"
            )
        data = load_source(result.source["name"], result.source.get("config"))
        return _split(data, splits["val_split"], "the probe's split").select(
            splits["report_indices"]
        )
    if args.eval_dataset:
        return _split(load_source(args.eval_dataset), args.eval_split, "--eval-split")
    raise ValueError("pass --eval-dataset or --eval-from-probe")


def _subset_commands(provenance: dict | None) -> list[str] | None:
    """The commands that rebuild a subset (for the model card), if its record says enough."""
    if not provenance:
        return None
    from .hub import reproduce_commands

    try:
        return reproduce_commands(provenance)
    except (KeyError, TypeError, ValueError):  # an older or hand-made pruning.json
        return None


def _group_column(columns: list[str] | None) -> str | list[str] | None:
    """``--group-column``: one column as a name, several as a list."""
    if not columns:
        return None
    return columns[0] if len(columns) == 1 else list(columns)


def _local_paths(*names: str | None) -> list[Path]:
    """Those of ``names`` (datasets, folders) that are local paths: inputs an output may not
    overlap."""
    builtin = ("fashion_mnist", "digits")  # load_source's own names, never paths
    return [Path(name) for name in names if name and name not in builtin and Path(name).exists()]


def _split(data, split: str, what: str):
    if split not in data:
        raise ValueError(f"{what} {split!r} is not a split: {list(data)}")
    return data[split]


# --- report -------------------------------------------------------------------------------------


def _add_report(commands) -> None:
    p = commands.add_parser(
        "report",
        help="compare trained runs: average and worst-class accuracy by method",
        description="Read the metrics.json of each run folder; print a table by method and "
        "density (mean and sd over seeds) and draw it.",
    )
    p.add_argument("runs", nargs="+", help="folders written by hf-drop train")
    p.add_argument("--output", default="report.png", help="the PNG to write (a new file)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    p.set_defaults(run=_report)


def _report(args: argparse.Namespace) -> None:
    from .evaluation.report import load_runs, plot_runs, summarize
    from .io.outputs import atomic_file

    # Refused before anything is read: an existing --output without --overwrite, or one inside
    # a run folder.
    with atomic_file(
        args.output, overwrite=args.overwrite, inputs=args.runs, what="--output"
    ) as tmp:
        runs = load_runs(args.runs)
        table = summarize(runs)
        print(table.to_string(float_format=lambda v: f"{v:.4f}", na_rep="-"))
        plot_runs(runs, tmp)
    print(f"wrote {args.output}")


# --- push ---------------------------------------------------------------------------------------


def _add_push(commands) -> None:
    p = commands.add_parser(
        "push",
        help="export a pruned subset as a Hub dataset (card included) and upload it",
        description="Export FOLDER (a subset written by hf-drop prune, or a probe folder: its "
        "score table) to a Hub repository layout with a dataset card, then upload it; a FOLDER "
        "that is already such an export is uploaded as it is. The export is written locally "
        "first, so a failed upload loses nothing.",
    )
    p.add_argument(
        "folder",
        help="a subset folder (hf-drop prune), a probe folder (hf-drop probe), or an exported "
        "folder (uploaded as it is)",
    )
    p.add_argument("--repo-id", required=True, help="the Hub dataset repository, user/name")
    p.add_argument("--private", action="store_true")
    p.add_argument(
        "--indices-only",
        action="store_true",
        help="publish the kept row indices of the source, not its images",
    )
    p.add_argument(
        "--export-dir",
        help="where the export is written (default: FOLDER-hub); new or empty, never FOLDER",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace a previous export in --export-dir"
    )
    card = p.add_argument_group("dataset card (of a new export)")
    card.add_argument(
        "--license",
        help="the card's license, e.g. mit (default for a subset: its source's, if known)",
    )
    card.add_argument(
        "--tags", nargs="*", default=[], help="tags for the card, beside hf-drop's own"
    )
    card.add_argument("--pretty-name", help="the card's human-readable name")
    p.set_defaults(run=_push)


def _push(args: argparse.Namespace) -> None:
    from .hub import export_saved, export_scores, exported, push
    from .probe.result import CONFIG_FILE
    from .pruning.artifacts import PRUNING_FILE

    folder = Path(args.folder)
    out = Path(args.export_dir or f"{str(args.folder).rstrip('/')}-hub")
    card = {"license": args.license, "tags": args.tags, "pretty_name": args.pretty_name}
    if exported(folder):
        if args.export_dir or args.indices_only or any(card.values()):
            raise ValueError(
                f"{folder} is already an export: it is uploaded as it is, card included; drop "
                "--export-dir, --indices-only, --license, --tags and --pretty-name (or pass the "
                "subset folder it was exported from)"
            )
        out = folder
    elif (folder / PRUNING_FILE).exists():
        mode = "indices" if args.indices_only else "full"
        export_saved(folder, out, mode=mode, overwrite=args.overwrite, **card)
        print(f"exported {folder} -> {out}")
    elif (folder / CONFIG_FILE).exists():
        if args.indices_only:
            raise ValueError(f"{folder} is a probe folder: its scores have no --indices-only form")
        export_scores(folder, out, overwrite=args.overwrite, **card)
        print(f"exported the probe scores of {folder} -> {out}")
    else:
        raise FileNotFoundError(
            f"{folder} is not a subset folder (no {PRUNING_FILE}), a probe folder (no "
            f"{CONFIG_FILE}) nor an hf-drop export (no README.md with a drop card)"
        )
    try:
        url = push(out, args.repo_id, private=args.private)
    except RuntimeError as error:
        raise ValueError(str(error)) from error
    print(f"uploaded to {url}")
