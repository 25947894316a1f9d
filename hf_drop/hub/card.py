"""The dataset card of an exported subset: its ``drop`` metadata block (everything needed to
rebuild or verify the subset), its text, the table of kept rows per class, the reproduce commands
and the picture of the kept fraction per class."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pandas as pd

from ..core.rules import quota_rule
from ..io.logs import get_logger
from ..pruning.record import FIELDS as _PROVENANCE_FIELDS
from .layout import dataset_yaml

__all__ = [
    "CARD_FILE",
    "PLOT_FILE",
    "check_provenance",
    "class_table",
    "dataset_card",
    "drop_block",
    "plot_kept_fraction_png",
    "reproduce_commands",
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


def drop_block(provenance: dict[str, Any], mode: str) -> dict[str, Any]:
    """The card's ``drop`` metadata: everything needed to reproduce or verify the subset."""
    params = provenance["params"]
    source = provenance["source"]
    probe = source.get("probe") or {}
    return {
        "export": mode,
        "method": provenance["method"],
        "density": params["density"],
        "seed": params["seed"],
        "mode": params["mode"],
        "quota": params["quota"],
        "within": _score_name(params),
        "min_per_class": params["min_per_class"],
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


def _score_name(params: dict[str, Any]) -> str:
    """What chose samples inside classes: "random", a column name, or a named score array."""
    within = params["within"]
    if isinstance(within, str) and within == "random":
        return "random"
    if isinstance(within, str) and not within.startswith("<array"):
        return within
    return params.get("score_name") or "scores"


def dataset_card(table, drop, provenance, license, tags, pretty_name, shards, plotted):
    from huggingface_hub import DatasetCard, DatasetCardData

    # A table with images (and, as every subset has, a class label) serves image
    # classification. An indices-only export holds row numbers, not images: the Hub's
    # task filter would list a table that cannot be trained on as it is, so it names no task.
    images = any(isinstance(f, datasets.Image) for f in table.features.values())
    data = DatasetCardData(
        license=license,
        pretty_name=pretty_name,
        task_categories=["image-classification"] if images else None,
        tags=list(dict.fromkeys(["hf-drop", "data-pruning", "drop", *(tags or [])])),
        drop=drop,
    )
    dataset_yaml(table, data, shards)
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{_body(drop, provenance, plotted)}")


def _body(drop: dict[str, Any], provenance: dict[str, Any], plotted: bool) -> str:
    source = drop["source"]["name"] or "the source dataset"
    what = (
        "the kept row indices of the source (and their labels), not its images: rebuild the "
        "subset with `hf_drop.hub.load_pruned(...)`, which checks that the source matches"
        if drop["export"] == "indices"
        else "the kept rows themselves, images included"
    )
    quota = quota_rule(drop["quota"])
    rule = (
        "DRoP (Vysogorets, Ahuja & Kempe, *Distributionally Robust Data Pruning*, ICLR 2025), "
        f"as `quota={quota.name!r}` ({quota.help}): the fraction of a class that is kept grows "
        "with a probe model's validation error on that class, so that the model trained on the "
        "subset does better on its worst class"
        if quota.needs_errors
        else f"the `{quota.name}` class-count rule ({quota.help})"
    )
    how = "at random" if drop["within"] == "random" else f"by the score `{drop['within']}`"
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
        f"# {drop['method']} subset of {source} at density {drop['density']}\n\n"
        f"This dataset keeps {drop['num_kept']} of the {drop['source']['num_rows']} rows of "
        f"{source}, chosen by {rule}. Inside each class, samples were kept "
        f"{how} "
        f"(seed {drop['seed']}). {probe_line} It holds {what}. The card's `drop` metadata "
        "records every number below, the source's fingerprint and label hash, and the library "
        "versions.\n\n"
        f"## Kept per class\n\n{class_table(drop['classes'], drop['class_errors'], drop)}\n\n"
        f"{plot}"
        f"## Reproduce\n\nIn an empty folder:\n\n```bash\n{reproduce}\n```\n"
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
