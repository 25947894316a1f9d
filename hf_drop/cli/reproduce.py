"""The commands that rebuild a subset, built from its record (``pruning.json``, a card's
``drop``), in the one place that knows how a command line is spelled.

The record is read through :func:`read_record` only; the commands are the options dataclasses of
``hf-drop probe`` and ``hf-drop prune``, filled from it and written by
:func:`~hf_drop.cli.base.command_line`. They carry everything that changes the rows: density,
seed, the rules and their settings as they were in force, the class (or group) errors and their
support, the group columns, the label column, and the dataset's name, configuration, revision
and split.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .base import command_line, join

__all__ = ["PruneRecord", "read_record", "reproduce_commands"]

# Where the run's outputs go when the commands are run again, in an empty folder.
PROBE_FOLDER, SUBSET_FOLDER = "probe", "subset"
_CALLBACK_PROBE = (
    "# the probe: the transformers.Trainer script that recorded it with "
    "hf_drop.probe.ProbeCallback, writing ./probe"
)


@dataclass
class PruneRecord:
    """What a subset's record says about how it was made, as the commands need it."""

    params: dict[str, Any]
    source: dict[str, Any]
    probe: dict[str, Any] | None
    drop_settings: dict[str, Any]
    rules: dict[str, Any]
    classes: list[str]
    class_errors: list[float | None]
    class_support: list[int | None]
    other_splits: bool = False  # the source's other splits were saved beside the pruned one


def read_record(provenance: Mapping[str, Any]) -> PruneRecord:
    """The one reader of a subset's record (``DRoPFilter.provenance()``) for its commands; a
    record that lacks what they need is a ``ValueError`` naming the key."""
    if not isinstance(provenance, Mapping):
        raise ValueError(f"a subset's record must be a mapping, got {type(provenance).__name__}")
    missing = [key for key in ("params", "source", "class_errors") if key not in provenance]
    params = provenance.get("params")
    if isinstance(params, Mapping):
        missing += [f"params.{k}" for k in ("density", "seed", "quota") if k not in params]
    if missing:
        raise ValueError(f"the subset's record lacks {missing}: it cannot be rebuilt")
    source = dict(provenance["source"] or {})
    errors = list(provenance["class_errors"] or [])
    return PruneRecord(
        params=dict(params),
        source=source,
        probe=source.get("probe") or None,
        drop_settings=dict(provenance.get("drop_settings") or {}),
        rules=dict(provenance.get("rules") or {}),
        classes=[str(c) for c in provenance.get("classes") or []],
        class_errors=errors,
        class_support=list(provenance.get("class_support") or [None] * len(errors)),
        other_splits=bool((provenance.get("splits") or {}).get("others")),
    )


def reproduce_commands(provenance: Mapping[str, Any]) -> list[str]:
    """The ``hf-drop`` commands that make this subset again, run in an empty folder: the probe's
    (if there was one) and the pruning's. A subset made from class errors given by hand is
    rebuilt from those errors (and their support)."""
    record = read_record(provenance)
    why = _not_rebuilt(record)
    if why:
        return [f"# not rebuilt by a command: {why}; the record (pruning.json) holds every "
                "number used"]  # fmt: skip
    commands = []
    if record.probe:
        commands.append(probe_command(record.source, record.probe))
    commands.append(join(command_line("prune", [prune_arguments(record)])))
    return commands


def prune_arguments(record: PruneRecord):
    """``hf-drop prune``'s options that rebuild the subset of ``record``."""
    from .prune import PruneArguments

    params, source, probe = record.params, record.source, record.probe
    quota, keep = _rule_specs(record)
    values: dict[str, Any] = {
        "density": float(params["density"]),
        "seed": int(params["seed"]),
        "quota": quota,
        "keep": keep,
        "min_per_class": int(params.get("min_per_class") or 0),
        "missing_error": params.get("missing_error"),
        "group_column": _columns(params.get("group_column")),
        "keep_other_splits": record.other_splits,
        "output": SUBSET_FOLDER,
    }
    if probe:
        values["probe"] = PROBE_FOLDER
        values["within"] = probe.get("within") or _score_name(params)
        values["strategy_score"] = probe.get("strategy_score")
    else:
        values.update(
            dataset=source.get("name") or "DATASET",
            dataset_config_name=source.get("config"),
            revision=source.get("revision"),
            split=source.get("split") or "train",
            class_errors=[math.nan if e is None else e for e in record.class_errors],
            class_support=_support(record),
            within=_score_name(params),
        )
        label_column = params.get("label_column", "label")
        values["label_column"] = None if label_column == "label" else label_column
        strategy = params.get("strategy_scores")
        values["strategy_score"] = strategy if isinstance(strategy, str) else None
        if values["strategy_score"] is not None and quota == "strategy":
            values["quota"] = None  # implied by --strategy-score with --class-errors
    return PruneArguments(**values)


def _not_rebuilt(record: PruneRecord) -> str | None:
    """Why no ``hf-drop`` command rebuilds this subset (None: one does)."""
    if record.source.get("stream_mode"):
        return (
            "the subset of a stream, made in Python (DRoPFilter(..., id_column="
            f"{record.source.get('id_column')!r}, stream_mode={record.source['stream_mode']!r}) "
            "on an IterableDataset)"
        )
    overrides = (record.probe or {}).get("overrides")
    if overrides:
        return (
            f"made in Python with DRoPFilter.from_probe(..., {', '.join(overrides)}=...) in place "
            "of the probe's own"
        )
    return None


def _rule_specs(record: PruneRecord) -> tuple[str, str | None]:
    """The quota and keep rules as specs with every setting in force (``--quota
    'drop(mode=paper, strength=1.0, floor=0.5, shrink=true)'``), so that a later change of
    default cannot change what the command builds (:func:`~hf_drop.pruning.record.record_rules`
    reads records from before rule specs too)."""
    from ..pruning.record import record_rules

    quota, keep = record_rules(
        {"params": record.params, "rules": record.rules, "drop_settings": record.drop_settings}
    )
    return quota.spec(full=True), None if keep is None else keep.spec(full=True)


def probe_command(source: Mapping[str, Any], probe: Mapping[str, Any]) -> str:
    """The probe's command: as it was run (``--output probe``, paths made portable), or built
    from its recorded configuration (a probe run from Python)."""
    from ..io.portable import portable_name
    from ..probe.config import ProbeConfig
    from .probe import Probe, ProbeDataArguments

    config = probe.get("config") or {}
    if "trainer" in config:  # recorded by ProbeCallback: no command line runs the user's script
        return _CALLBACK_PROBE
    command = probe.get("command")
    if command:
        try:
            parsed = _parse(Probe, command)
        except (ValueError, SystemExit):  # an older or hand-edited command: kept as it is
            return command
        data = parsed.options[ProbeDataArguments]
        data = dataclasses.replace(data, dataset=portable_name(data.dataset), output=PROBE_FOLDER)
        data = _first_rows_as_slice(data, source)
        return join(command_line("probe", [data, parsed.options[ProbeConfig]]))
    data = ProbeDataArguments(
        dataset=source.get("name") or "DATASET",
        dataset_config_name=source.get("config"),
        revision=source.get("revision"),
        split=source.get("split") or "train",
        max_train_samples=source.get("max_train_samples"),
        output=PROBE_FOLDER,
    )
    data = _first_rows_as_slice(data, source)
    settings = ProbeConfig.from_dict(config)
    settings.model = portable_name(settings.model)
    # Every setting, not only those off their defaults: a later default changes nothing.
    return join(command_line("probe", [data, settings], explicit=True))


def _first_rows_as_slice(data, source: Mapping[str, Any]):
    """A probe recorded before ``--max_train_samples`` sampled by class trained on the first N
    rows: today's spelling of those rows is the slice ``SPLIT[:N]`` (a split that is already a
    slice keeps its option: the identity check refuses the rows if they differ)."""
    count = source.get("max_train_samples")
    if count is None or source.get("sampling") is not None or data.max_train_samples is None:
        return data
    if "[" in data.split or "+" in data.split:
        return data
    return dataclasses.replace(data, split=f"{data.split}[:{count}]", max_train_samples=None)


def _parse(command: type, text: str):
    import contextlib
    import io
    import shlex

    from . import parse_command

    tokens = shlex.split(text)
    if tokens[:2] != ["hf-drop", command.name]:
        raise ValueError(f"not an hf-drop {command.name} command: {text}")
    with contextlib.redirect_stderr(io.StringIO()):
        return parse_command(tokens[1:])


def _support(record: PruneRecord) -> dict[str, int] | None:
    """The support behind the errors, by class (or group) name, where known."""
    support = {
        name: int(n)
        for name, n in zip(record.classes, record.class_support, strict=False)
        if n is not None and not (isinstance(n, float) and math.isnan(n))
    }
    return support or None


def _columns(group_column: Any) -> list[str] | None:
    if not group_column:
        return None
    return [group_column] if isinstance(group_column, str) else list(group_column)


def _score_name(params: Mapping[str, Any]) -> str:
    """What chose samples inside classes: "random", a column name, or a named score array."""
    within = params.get("within", "random")
    if isinstance(within, str) and within == "random":
        return "random"
    if isinstance(within, str) and not within.startswith("<array"):
        return within
    return params.get("score_name") or "scores"
