"""The ``hf-drop`` command line.

hf-drop probe --dataset digits --model test_resnet --epochs 10 --output runs/probe
accelerate launch -m hf_drop probe ...        # the same, on several processes
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Parse ``argv`` (default: the process's arguments) and run the command."""
    parser = build_parser()
    args = parser.parse_args(argv)
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
    model.add_argument("--batch-size", type=int, default=128, help="per process")
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
    p.add_argument("--output", required=True, help="result folder (resumes if interrupted)")
    p.set_defaults(run=_probe)


def _probe(args: argparse.Namespace) -> None:
    from .probe import ProbeConfig, run_probe
    from .sources import load_source
    from .splits import stratified_indices

    config = ProbeConfig(
        model=args.model,
        epochs=args.epochs,
        batch_size=args.batch_size,
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
    )
    data = load_source(args.dataset, args.config)
    if args.split not in data:
        raise ValueError(f"--split {args.split!r} is not a split of {args.dataset}: {list(data)}")
    train = data[args.split]
    source = {"name": args.dataset, "config": args.config, "split": args.split}
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
    result = run_probe(train, val, config, args.output, source=source, splits=splits)
    from accelerate import PartialState

    if not PartialState().is_main_process:
        return
    errors = ", ".join(
        f"{n}: {e:.3f}" for n, e in zip(result.class_names, result.class_errors, strict=True)
    )
    print(f"probe result in {result.folder}\nclass errors: {errors}")
