"""What a probe run gives a filter: its class (or group) errors with their support, its scores,
and the identity of the data it saw (``DRoPFilter.from_probe``)."""

from __future__ import annotations

from typing import Any

from ..io.portable import portable_command, portable_name
from .fit import IDENTITY_KEYS

__all__ = ["probe_options"]


def probe_options(
    result: Any, within: str, keep: Any, strategy_score: str | None, kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The filter arguments from ``result`` (a ``ProbeResult``), ``kwargs`` taking precedence.

    The support is the number of validation images per class (not times the number of
    initialisations: the same images judge every initialisation).
    """
    options: dict[str, Any] = {
        "class_errors": result.class_errors,
        "class_support": result.class_errors_with_support.support,
    }
    group_column = kwargs.get("group_column")
    if group_column is not None:  # quotas per group: the probe's group errors
        wanted = [group_column] if isinstance(group_column, str) else list(group_column)
        measured = result.group_column
        measured = [measured] if isinstance(measured, str) else measured
        if measured != wanted:
            raise ValueError(
                f"group_column={group_column!r}, but the probe in {result.folder} measured "
                f"group errors for {measured!r}: probe with --group-column {' '.join(wanted)}"
            )
        options.update(class_errors=result.group_errors_with_support, class_support=None)
    if within == "embedding":
        options.update(within=result.score("embedding"), keep=keep or "k_center")
    elif within != "random":
        options.update(within=result.difficulty(within), keep=keep)
    elif keep is not None:
        options["keep"] = keep  # refused by fit: keep needs a score
    if strategy_score is not None:
        options["strategy_scores"] = result.difficulty(strategy_score)
        kwargs.setdefault("quota", "strategy")
    named = strategy_score if within == "random" else within
    options["score_name"] = None if named == "random" else named
    options["source"] = _probe_source(result, within, strategy_score)
    # What the caller put in place of the probe's own numbers: then the probe's command alone
    # does not rebuild the subset, and the record says so.
    options["source"]["probe"]["overrides"] = sorted(set(kwargs) & set(options) - {"quota"})
    options["label_column"] = result.source["label_column"]
    return options | kwargs


def _probe_source(result: Any, within: str, strategy_score: str | None) -> dict[str, Any]:
    """The identity that fit() checks, and where the errors and scores came from (no
    machine-local path: the record must mean the same thing on another machine)."""
    source = {key: result.source.get(key) for key in IDENTITY_KEYS}
    for key in ("config", "split", "max_train_samples", "sampling", "revision", "train_indices"):
        source[key] = result.source.get(key)
    source["name"] = portable_name(result.source.get("name"))
    record = result.record
    model = dict(record["model"], name=portable_name(record["model"]["name"]))
    config = dict(record["config"], model=portable_name(record["config"]["model"]))
    source["probe"] = {
        "command": portable_command(result.source.get("command"), output="probe"),
        "model": model,
        "config": config,
        # What the card's reproduce command needs: the probe's names of the scores used.
        "within": within,
        "strategy_score": strategy_score,
    }
    return source
