"""The dataset card of an exported subset: its ``drop`` metadata block (everything needed to
rebuild or verify the subset), its text, the table of kept rows per class, the reproduce commands
and the picture of the kept fraction per class."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pandas as pd

from ..io.logs import get_logger
from ..pruning.record import FIELDS as _PROVENANCE_FIELDS
from ..pruning.record import record_rules
from .layout import SPLIT, Shards, splits_yaml

__all__ = [
    "CARD_FILE",
    "PLOT_FILE",
    "card_settings",
    "check_provenance",
    "class_table",
    "dataset_card",
    "drop_block",
    "plot_kept_fraction_png",
    "reproduce_commands",
    "source_datasets",
]


CARD_FILE = "README.md"

PLOT_FILE = "kept_fraction.png"


def check_provenance(provenance: Any) -> None:
    """Refuse a provenance record that lacks what the card needs (the fields a pruning.json
    must have, :data:`hf_drop.pruning.record.FIELDS`), naming the missing keys."""
    fix = "pass DRoPFilter.provenance() or a saved subset's pruning.json"
    if not isinstance(provenance, dict):
        raise ValueError(f"provenance must be a dict, got {type(provenance).__name__}: {fix}")
    missing = []
    for name in _PROVENANCE_FIELDS:
        value: Any = provenance
        for key in name.split("."):
            value = value.get(key, _ABSENT) if isinstance(value, dict) else _ABSENT
        if value is _ABSENT and not any(name.startswith(f"{m}.") for m in missing):
            missing.append(name)
    if not isinstance(provenance.get("source", {}), dict):
        missing.append("source (a dict)")
    if missing:
        raise ValueError(f"provenance lacks {missing}: {fix}")


_ABSENT = object()


def drop_block(
    provenance: dict[str, Any],
    mode: str,
    split: str = SPLIT,
    splits: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The card's ``drop`` metadata: everything needed to reproduce or verify the subset.

    ``split`` names the pruned split; ``splits`` (``pruning.artifacts.split_record``)
    identifies the others, published untouched beside it. ``settings`` is the one place of the
    settings, each as it was in force (a rule's settings resolved, never a ``null`` default).
    """
    source = provenance["source"]
    probe = source.get("probe") or {}
    return {
        "export": mode,
        "method": provenance["method"],
        "settings": card_settings(provenance),
        "split": split,
        "other_splits": dict((splits or {}).get("others") or {}),
        "classes": provenance["classes"],
        "class_sizes": provenance["class_sizes"],
        "quotas": provenance["quotas"],
        "class_errors": provenance["class_errors"],
        "num_kept": provenance["num_kept"],
        "probe": {
            "model": probe.get("model"),
            "config": probe.get("config"),
            "command": probe.get("command"),
        }
        if probe
        else None,
        "source": {
            "name": source.get("name"),
            "config": source.get("config"),
            "split": source.get("split") or "train",
            "max_train_samples": source.get("max_train_samples"),
            "sampling": source.get("sampling"),
            "train_indices": source.get("train_indices"),
            "revision": source.get("revision"),
            "fingerprint": source.get("fingerprint"),
            "num_rows": source.get("num_rows"),
            "label_column": source.get("label_column"),
            "label_hash": source.get("label_hash"),
            "content": source.get("content"),
        },
        "versions": provenance["versions"],
        "reproduce": reproduce_commands(provenance),
    }


def card_settings(provenance: dict[str, Any]) -> dict[str, Any]:
    """The settings a subset was made with, in one place and as they were in force: density,
    seed, the quota and keep rules each with every setting resolved (``quota: {name: drop,
    mode: paper, ...}``, never the ``null`` of an argument left at its default), what chose
    samples inside classes, and the options that were set (an unset one is absent)."""
    params = provenance["params"]
    quota, keep = record_rules(provenance)
    probe = provenance["source"].get("probe") or {}
    strategy = probe.get("strategy_score") or params.get("strategy_scores")
    settings: dict[str, Any] = {
        "density": params["density"],
        "seed": params["seed"],
        "quota": {"name": quota.name, **quota.settings},
        "keep": None if keep is None else {"name": keep.name, **keep.settings},
        "within": probe.get("within") or _score_name(params),
        "min_per_class": params["min_per_class"],
        "label_column": params.get("label_column") or "label",
        "strategy_score": strategy if isinstance(strategy, str) else None,
        "missing_error": params.get("missing_error"),
        "group_column": params.get("group_column"),
    }
    unset = ("strategy_score", "missing_error", "group_column")
    settings = {k: v for k, v in settings.items() if v is not None or k not in unset}
    return json.loads(
        json.dumps(settings, default=str)
    )  # plain YAML scalars, whatever a rule holds


def source_datasets(provenance: dict[str, Any]) -> list[str] | None:
    """The card's ``source_datasets``: the source's Hub id or built-in name, or the last part of
    a local path (the Hub reads no one's disk); None when the record names no source."""
    name = provenance["source"].get("name")
    if not name:
        return None
    local = Path(name).exists() or name.startswith((".", "/", "~")) or name.count("/") > 1
    return [Path(name).name or name] if local else [name]


def _score_name(params: dict[str, Any]) -> str:
    """What chose samples inside classes: "random", a column name, or a named score array."""
    within = params["within"]
    if isinstance(within, str) and within == "random":
        return "random"
    if isinstance(within, str) and not within.startswith("<array"):
        return within
    return params.get("score_name") or "scores"


def dataset_card(
    shards: dict[str, tuple[datasets.Dataset, Shards]],
    drop: dict[str, Any],
    provenance: dict[str, Any],
    license: str | None,
    tags: list[str] | None,
    pretty_name: str | None,
    plotted: bool,
) -> Any:
    """The ``DatasetCard`` of an export: YAML (``drop``, ``source_datasets``, the splits' files
    and sizes) and the text, from the written ``shards`` of each split (the pruned one first)."""
    from huggingface_hub import DatasetCard, DatasetCardData

    table = shards[drop["split"]][0]
    # A table with images (and, as every subset has, a class label) serves image
    # classification. An indices-only export holds row numbers, not images: the Hub's
    # task filter would list a table that cannot be trained on as it is, so it names no task.
    images = any(isinstance(f, datasets.Image) for f in table.features.values())
    data = DatasetCardData(
        license=license,
        pretty_name=pretty_name,
        task_categories=["image-classification"] if images else None,
        source_datasets=source_datasets(provenance),
        tags=list(dict.fromkeys(["hf-drop", "data-pruning", "drop", *(tags or [])])),
        drop=drop,
    )
    splits_yaml(shards, data)
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{_body(drop, provenance, plotted)}")


def _body(drop: dict[str, Any], provenance: dict[str, Any], plotted: bool) -> str:
    source = drop["source"]["name"] or "the source dataset"
    settings = drop["settings"]
    what = (
        "the kept row indices of the source (and their labels), not its images: rebuild the "
        "subset with `hf_drop.hub.load_pruned(...)`, which checks that the source matches"
        if drop["export"] == "indices"
        else "the kept rows themselves, images included"
    )
    quota, _ = record_rules(provenance)  # with its settings in force: the mode says the effect
    effect = getattr(quota, "effect", None)
    rule = (
        "DRoP (Vysogorets, Ahuja & Kempe, *Distributionally Robust Data Pruning*, ICLR 2025), "
        f"as `{quota.spec(full=True)}`: {effect}, so that the model trained on the subset does "
        "better on its worst class"
        if quota.needs_errors and effect
        else f"the `{quota.name}` class-count rule ({quota.help})"
    )
    within = settings["within"]
    how = "at random" if within == "random" else f"by the score `{within}`"
    probe = drop["probe"] or {}
    probe_line = (
        f"Class errors and scores came from a `{probe['model']['name']}` probe "
        f"({_plural(probe['config']['epochs'], 'epoch')}, "
        f"{_plural(probe['config']['num_inits'], 'initialisation')})."
        if probe
        else "Class errors were given by hand (no probe)."
        if quota.needs_errors
        else ""
    )
    reproduce = "\n".join(drop["reproduce"])
    plot = f"![kept fraction per class against class error]({PLOT_FILE})\n\n" if plotted else ""
    return (
        f"# {drop['method']} subset of {source} at density {settings['density']}\n\n"
        f"This dataset keeps {drop['num_kept']} of the {drop['source']['num_rows']} rows of "
        f"{source}, chosen by {rule}. Inside each class, samples were kept "
        f"{how} "
        f"(seed {settings['seed']}). {probe_line} It holds {what}. The card's `drop` metadata "
        "records every number below, the settings in force (`drop.settings`), the source's "
        "fingerprint and label hash, and the library versions.\n\n"
        f"{_splits_text(drop)}"
        f"## Kept per class\n\n{class_table(drop['classes'], drop['class_errors'], drop)}\n\n"
        f"{plot}"
        f"## Reproduce\n\nIn an empty folder:\n\n```bash\n{reproduce}\n```\n"
    )


def _splits_text(drop: dict[str, Any]) -> str:
    """Which split is pruned, and which are the source's as they were (none: no section)."""
    others = drop.get("other_splits") or {}
    if not others:
        return ""
    rows = "\n".join(
        f"| `{name}` | {seen['num_rows']} | untouched: the source's split as it was |"
        for name, seen in others.items()
    )
    return (
        "## Splits\n\n"
        f"Only `{drop['split']}` is pruned; the other splits are published untouched, so that "
        "a model trained on the pruned split is evaluated on the same data as before.\n\n"
        "| split | rows | |\n|---|---|---|\n"
        f"| `{drop['split']}` | {drop['num_kept']} | pruned ({drop['method']}) |\n{rows}\n\n"
    )


def class_table(names, errors, drop: dict[str, Any] | None = None) -> str:
    """A markdown table of the classes: error, and with ``drop`` size, kept, kept fraction."""

    def number(value) -> str:
        return (
            "-"
            if value is None or (isinstance(value, float) and np.isnan(value))
            else (f"{value:.3f}" if isinstance(value, float) else str(value))
        )

    header = ["class", "error"] + (["size", "kept", "kept fraction"] if drop else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for k, name in enumerate(names):
        row = [str(name), number(errors[k])]
        if drop:
            size, kept = drop["class_sizes"][k], drop["quotas"][k]
            row += [str(size), str(kept), number(kept / size if size else None)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def reproduce_commands(provenance: dict[str, Any]) -> list[str]:
    """The ``hf-drop`` commands that make this subset again, run in an empty folder (built by
    the command line, :func:`hf_drop.cli.reproduce.reproduce_commands`)."""
    from ..cli.reproduce import reproduce_commands as commands

    return commands(provenance)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def plot_kept_fraction_png(provenance: dict[str, Any], path: Path) -> bool:
    """Draw the card's picture of the kept fraction per class; without matplotlib (the extra
    ``plots``) the card goes without it, and says nothing of it (False)."""
    if importlib.util.find_spec("matplotlib") is None:
        get_logger(__name__).info(
            "the dataset card has no plot of the kept fraction per class: "
            "pip install 'hf-drop[plots]' to draw one"
        )
        return False
    from ..evaluation.plots import plot_kept_fraction

    sizes = np.array(provenance["class_sizes"], dtype=float)
    report = pd.DataFrame(
        {
            "name": provenance["classes"],
            "kept_fraction": np.divide(
                provenance["quotas"], sizes, out=np.full(len(sizes), np.nan), where=sizes > 0
            ),
            "error": [np.nan if e is None else e for e in provenance["class_errors"]],
        }
    )
    plot_kept_fraction(report, path, title=f"{provenance['method']}: kept fraction per class")
    return True
