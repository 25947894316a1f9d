"""``hf-drop prune``: choose the rows to keep (DRoP or a baseline) and save the subset."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.quotas import QuotaMode
from .base import BaseCommand, OptionError, local_paths, one_or_many

__all__ = ["Prune", "PruneArguments", "probe_training_data"]


@dataclass(kw_only=True)
class PruneArguments:
    """How ``hf-drop prune`` chooses the rows to keep, and where the subset goes."""

    probe: str | None = field(default=None, metadata={"help": "folder of a finished hf-drop probe"})
    class_errors: Any = field(
        default=None,
        metadata={
            "help": "per-class errors given by hand (no probe; with --dataset): a JSON list by "
            "class id, an object by class name, or a .json file holding one",
            "json": True,
        },
    )
    class_support: Any = field(
        default=None,
        metadata={
            "help": "with --class-errors: validation samples behind each error, a JSON list by "
            "class id, an object by class name, or a .json file (lets --quota drop shrink "
            "uncertain errors)",
            "json": True,
        },
    )
    density: float = field(metadata={"help": "fraction of the data to keep"})
    within: str = field(
        default="random",
        metadata={
            "help": "random, a probe score (el2n, grand, forgetting, aum, ...), embedding, or "
            "with --class-errors a score column of --dataset"
        },
    )
    # The rules and their help come from the registry (hf_drop.core.rules) when the parser is
    # built: a rule registered later is offered too. A rule takes its settings as a spec,
    # --quota 'drop(floor=0.3)', checked by the registry before anything is read.
    keep: str | None = field(
        default=None, metadata={"help": "with a score, NAME or NAME(setting=value,...): "}
    )
    quota: str | None = field(
        default=None, metadata={"help": "how many per class, NAME or NAME(setting=value,...): "}
    )
    strategy_score: str | None = field(
        default=None, metadata={"help": "score whose global selection sets the class counts"}
    )
    mode: QuotaMode | None = field(
        default=None,
        metadata={
            "help": "--quota drop: kept count proportional to error until a class is kept "
            "whole, then equal shares (saturating, default), or kept fraction (paper) or kept "
            "count (count) proportional to error"
        },
    )
    floor: float | None = field(
        default=None,
        metadata={"help": "--quota drop: share of each class's share always kept (default: 0.5)"},
    )
    strength: float | None = field(
        default=None, metadata={"help": "--quota drop: 0 proportional ... 1 DRoP (default: 1)"}
    )
    no_shrink: bool = field(
        default=False,
        metadata={
            "help": "--quota drop: use the probe's errors as measured, not shrunk by their support"
        },
    )
    min_per_class: int = field(default=0, metadata={"help": "floor per class"})
    group_column: list[str] | None = field(
        default=None,
        metadata={
            "help": "quotas per group (a column, or the combinations of several) instead of per "
            "class; with --probe, the probe must have measured them (hf-drop probe "
            "--group_column)",
            "nargs": "+",
            "metavar": "COLUMN",
        },
    )
    missing_error: float | None = field(
        default=None, metadata={"help": "error of a class the validation split lacks"}
    )
    ccs_beta: float | None = field(
        default=None, metadata={"help": "--keep ccs: hardest fraction dropped (or ccs(beta=...))"}
    )
    ccs_strata: int | None = field(
        default=None, metadata={"help": "--keep ccs: number of strata (or ccs(strata=...))"}
    )
    seed: int = field(default=0, metadata={"help": "seed of random choices"})
    dataset: str | None = field(
        default=None,
        metadata={
            "help": "with --probe: the probe's training data, if not reloadable from its record; "
            "with --class-errors: the dataset to prune"
        },
    )
    dataset_config_name: str | None = field(
        default=None,
        metadata={
            "help": "with --class-errors: configuration name of --dataset (Hub); --config is "
            "its deprecated spelling",
            "aliases": ["--config"],
            "deprecated": "--config",  # it also read as a file of options; now --config_file
        },
    )
    revision: str | None = field(
        default=None,
        metadata={"help": "with --class-errors: revision of --dataset (Hub: branch, tag, commit)"},
    )
    split: str | None = field(
        default=None,
        metadata={
            "help": "with --class-errors: the split (or slice) of --dataset (default: train)"
        },
    )
    label_column: str | None = field(
        default=None,
        metadata={"help": "with --class-errors: the label column of --dataset (default: label)"},
    )
    with_scores: list[str] | None = field(
        default=None,
        metadata={
            "help": "save the probe's scores as columns of the subset (these, or all if none "
            "named)",
            "nargs": "*",
            "metavar": "SCORE",
        },
    )
    keep_other_splits: bool = field(
        default=False,
        metadata={
            "help": "save the dataset's other splits (validation, test, ...) untouched beside "
            "the pruned one, as one DatasetDict folder that hf-drop export and push publish "
            "whole"
        },
    )
    output: str = field(
        metadata={
            "help": "folder of the subset: new or empty (never the probe folder or the dataset's)"
        }
    )
    overwrite: bool = field(
        default=False, metadata={"help": "replace a previous subset in --output"}
    )


# Options of errors given by hand, refused with --probe (whose record says them).
_HAND_ONLY = ("class_support", "dataset_config_name", "revision", "split", "label_column")


class Prune(BaseCommand):
    name = "prune"
    help = "prune the probe's training set with DRoP (or a baseline) and save it"
    description = (
        "Choose a subset of the probe's training set (or of --dataset, with --class-errors) and "
        "save it (save_to_disk) with pruning.json, the record of how it was made. Options that "
        "do not apply to the chosen rule are refused, not ignored."
    )
    options = ((PruneArguments, None),)
    exclusive = ((("probe", "class_errors"), True),)

    @classmethod
    def check_values(cls, values: Mapping[str, Any]) -> None:
        """``--quota``/``--keep``: a registered rule, by name or spec (``drop(floor=0.3)``)."""
        from ..core import rules

        registries = {"quota": rules.QUOTA_RULES, "keep": rules.KEEP_RULES}
        for name, read in (("quota", rules.quota_rule), ("keep", rules.keep_rule)):
            if values.get(name) is None:
                continue
            try:
                read(values[name])
            except ValueError as error:
                known = ", ".join(registries[name])
                raise OptionError(
                    f"{name} {values[name]!r} is not one of {known} (or NAME(setting=value, ...)): "
                    f"{error}"
                ) from None

    @classmethod
    def help_notes(cls) -> dict[str, str]:
        from ..core import rules

        registry = {"keep": rules.KEEP_RULES, "quota": rules.QUOTA_RULES}
        return {
            name: "; ".join(f"{rule.name}: {rule.help}" for rule in rules_.values())
            for name, rules_ in registry.items()
        }

    def run(self) -> None:
        from ..io.outputs import prepare_output
        from ..pruning.artifacts import save_subset, split_dict

        args = self.args
        if args.probe is not None:
            from ..probe import ProbeResult

            given = [name for name in _HAND_ONLY if getattr(args, name) is not None]
            if given:
                raise ValueError(
                    f"--{given[0].replace('_', '-')} applies to --class-errors; a probe prunes "
                    "its own split"
                    + (", with its own support" if given[0] == "class_support" else "")
                )
            result = ProbeResult.load(args.probe)
            recorded = [result.source.get("name"), result.source.get("path")]
            inputs = [args.probe, *local_paths(*([args.dataset] if args.dataset else recorded))]
            prepare_output(
                args.output, "subset", overwrite=args.overwrite, inputs=inputs, what="--output"
            )
            train = probe_training_data(result, args.dataset)
            drop = self._probe_filter(result)
            if args.with_scores is not None:
                train = result.add_scores(train, args.with_scores or None)
            splits = self._keep_splits(
                result.source.get("split") or "train", lambda: _probe_source(result, args.dataset)
            )
        else:
            train, drop, inputs, splits = self._hand_filter()
            prepare_output(
                args.output, "subset", overwrite=args.overwrite, inputs=inputs, what="--output"
            )
        drop.fit(train)
        subset = drop.apply(train if splits is None else split_dict(train, *splits))
        save_subset(subset, args.output, drop, overwrite=args.overwrite, inputs=inputs)
        print(drop.report().to_string(float_format=lambda v: f"{v:.3f}"))
        prior = drop.record_.prior
        if prior is not None:
            print(
                f"class errors {prior['status']} (prior strength {prior['strength']:.3g}): "
                f"{prior['why']}"
            )
        kept = len(subset) if splits is None else len(subset[splits[0]])
        others = "" if splits is None else f", beside the untouched {_others(subset, splits[0])}"
        print(f"{drop.method}: kept {kept} of {len(train)} rows{others} -> {args.output}")

    def _keep_splits(self, split: str, load: Callable[[], Any]):
        """With --keep-other-splits: the pruned split's name and the dataset's splits
        (``load()``), else None. A slice or a sum of splits has no one name to publish the kept
        rows under."""
        args = self.args
        if not args.keep_other_splits:
            return None
        if args.with_scores is not None:
            raise ValueError(
                "--with-scores adds score columns to the pruned split only, so the untouched "
                "splits of --keep-other-splits would not share its features (a Hub dataset's "
                "splits must): drop one of them"
            )
        data = load()
        if split not in data:
            raise ValueError(
                f"--keep-other-splits publishes the kept rows under their split's name, and "
                f"{split!r} is not one split of {list(data)} (a slice or a sum of splits): "
                "prune a whole split, or save the pruned rows alone"
            )
        return split, data

    def _settings(self) -> dict[str, Any]:
        """The filter's arguments that the options set (those left out keep their defaults)."""
        args = self.args
        options = {
            "quota": args.quota,
            "keep": args.keep,
            "mode": args.mode,
            "floor": args.floor,
            "strength": args.strength,
            "shrink": False if args.no_shrink else None,
            "min_per_class": args.min_per_class,
            "missing_error": args.missing_error,
            "ccs_beta": args.ccs_beta,
            "ccs_strata": args.ccs_strata,
            "seed": args.seed,
            "group_column": one_or_many(args.group_column),
        }
        return {name: value for name, value in options.items() if value is not None}

    def _probe_filter(self, result):
        from ..pruning.filter import DRoPFilter

        args = self.args
        if args.within != "random" and args.within not in [*result.score_names, "embedding"]:
            raise ValueError(
                f"--within {args.within!r} is not a score of the probe in {args.probe}: "
                f"random, {', '.join(result.score_names)}"
                + (", embedding" if "embedding" in result.scores.column_names else "")
            )
        return DRoPFilter.from_probe(
            result,
            args.density,
            within=args.within,
            strategy_score=args.strategy_score,
            **self._settings(),
        )

    def _hand_filter(self):
        """The dataset and filter of ``--class-errors``: errors given by hand, no probe."""
        from ..data.sources import load_source, select_split
        from ..io.portable import portable_name
        from ..pruning.filter import DRoPFilter

        args = self.args
        if args.dataset is None:
            raise ValueError("--class-errors needs --dataset, the dataset to prune")
        if args.with_scores is not None:
            raise ValueError("--with-scores needs --probe: there are no probe scores to add")
        split = args.split or "train"
        data = load_source(args.dataset, args.dataset_config_name, args.revision)
        train = select_split(data, split, "--split")  # a slice is kept in the record
        options = self._settings()
        if args.strategy_score is not None:
            options.setdefault("quota", "strategy")
        if args.label_column is not None:
            options["label_column"] = args.label_column
        source = {"name": portable_name(args.dataset), "split": split}
        if args.dataset_config_name:  # the record's name for it, as datasets' config_name
            source["config"] = args.dataset_config_name
        if args.revision:
            source["revision"] = args.revision
        drop = DRoPFilter(
            args.density,
            class_errors=args.class_errors,
            class_support=args.class_support,
            within=args.within,
            strategy_scores=args.strategy_score,
            source=source,
            **options,
        )
        return train, drop, local_paths(args.dataset), self._keep_splits(split, lambda: data)


def _probe_source(result, dataset: str | None):
    """The splits of the dataset a probe read (or of ``dataset``, given in its place)."""
    from ..data.sources import load_source

    source = result.source
    same = dataset in (None, source.get("name"))
    revision = source.get("revision") if same else None
    return load_source(dataset or source.get("name") or "", source.get("config"), revision)


def _others(splits, pruned: str) -> str:
    return ", ".join(
        f"{name} ({len(split)} rows)" for name, split in splits.items() if name != pruned
    )


def probe_training_data(result, dataset: str | None = None):
    """The training set a probe saw, reloaded from its record (or from ``dataset``)."""
    from ..data.sources import source_rows

    # Its split (a slice kept as given) and max_train_samples, as the probe cut them.
    try:
        train = source_rows(result.source, dataset)
    except (FileNotFoundError, ValueError) as error:
        if dataset is not None:
            raise
        name = result.source.get("name")
        raise ValueError(
            f"cannot load the dataset the probe in {result.folder} trained on, {name!r}: "
            f"{error}. Pass --dataset PATH, the probe's dataset as it is reachable from here"
        ) from error
    if result.source.get("train_indices"):  # the probe carved its validation rows out of this split
        train = train.select(result.splits()["train_indices"])
    return train
