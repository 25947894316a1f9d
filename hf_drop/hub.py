"""Publishing pruned subsets and score tables on the Hugging Face Hub.

:func:`export` writes, atomically, exactly the layout ``push_to_hub`` uploads: parquet shards under
``data/`` and a ``README.md`` dataset card whose YAML holds ``configs``, ``dataset_info`` and a
``drop`` block that says how the subset was made. ``load_dataset(folder)`` reads it back. An
*indices-only* export publishes the kept row indices of a source dataset instead of its images;
:func:`load_pruned` rebuilds the subset from the source and refuses a source that differs.
:func:`push` uploads a folder with ``huggingface_hub``.
"""

from __future__ import annotations

import json
import math
import os
import shlex
from pathlib import Path
from typing import Any, Literal

import datasets
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from .artifacts import INDICES_FILE, PRUNING_FILE, atomic_folder
from .columns import read_labels

__all__ = ["export", "export_scores", "load_pruned", "push"]

CARD_FILE = "README.md"
PLOT_FILE = "kept_fraction.png"
SPLIT = "train"
_MAX_SHARD_BYTES = 500 << 20  # push_to_hub's default


def export(
    subset: datasets.Dataset,
    folder: str | os.PathLike,
    provenance: dict[str, Any],
    *,
    kept_indices: np.ndarray | None = None,
    mode: Literal["full", "indices"] = "full",
    license: str | None = None,
    tags: list[str] | None = None,
    pretty_name: str | None = None,
) -> Path:
    """Write ``subset`` to ``folder`` as a Hub dataset repository, with its dataset card.

    ``provenance`` is ``DRoPFilter.provenance()`` (or a saved subset's ``pruning.json``);
    ``kept_indices`` (``drop.indices_``) are the source rows the subset holds, needed by
    ``mode="indices"``, which publishes those indices (and labels) instead of the images. The
    folder appears only once complete.
    """
    if mode not in ("full", "indices"):
        raise ValueError(f"mode must be 'full' or 'indices', got {mode!r}")
    if len(subset) != provenance.get("n_kept", len(subset)):
        raise ValueError(
            f"subset has {len(subset)} rows but its provenance says {provenance.get('n_kept')} "
            "were kept: pass the subset that DRoPFilter.apply() returned"
        )
    if mode == "indices":
        if kept_indices is None or len(kept_indices) != len(subset):
            raise ValueError("mode='indices' needs kept_indices, one source row per subset row")
        labels = read_labels(subset, provenance["source"]["label_column"])
        table = datasets.Dataset.from_dict(
            {"index": np.asarray(kept_indices, dtype=np.int64), "label": labels.ids},
            features=datasets.Features(
                {"index": datasets.Value("int64"), "label": datasets.ClassLabel(names=labels.names)}
            ),
        )
    else:
        table = subset
    drop = _drop_block(provenance, mode)
    with atomic_folder(folder) as tmp:
        _write_shards(table, tmp)
        _plot(provenance, tmp / PLOT_FILE)
        card = _card(
            table, drop, provenance, license or subset.info.license or None, tags, pretty_name
        )
        card.save(str(tmp / CARD_FILE))
    return Path(folder)


def export_scores(
    result: Any,
    folder: str | os.PathLike,
    *,
    license: str | None = None,
    tags: list[str] | None = None,
) -> Path:
    """Write a probe's per-sample score table as a Hub dataset repository, with a card that
    records the probe and its class metrics, so that others can prune without re-probing."""
    from huggingface_hub import DatasetCard, DatasetCardData

    from .probe import ProbeResult

    if not isinstance(result, ProbeResult):
        result = ProbeResult.load(result)
    scores = result.scores
    record = result.record
    with atomic_folder(folder) as tmp:
        _write_shards(scores, tmp)
        data = DatasetCardData(
            license=license,
            tags=["hf-drop", "data-pruning", "probe-scores", *(tags or [])],
            drop_probe={
                "source": record["source"],
                "model": record["model"],
                "config": record["config"],
                "versions": record["versions"],
                "machine": record.get("machine"),  # absent from results older than the field
                "class_errors": [None if np.isnan(e) else float(e) for e in result.class_errors],
                "class_names": result.class_names,
            },
        )
        _dataset_yaml(scores, data)
        name = record["source"].get("name") or "a dataset"
        body = (
            f"# Probe scores for {name}\n\n"
            f"One row per training sample ({len(scores)} rows): `index` (its row in the source), "
            f"`label`, and the scores {', '.join(f'`{n}`' for n in result.score_names)}, "
            f"recorded by hf-drop from one probe run of `{record['model']['name']}` "
            f"({record['config']['epochs']} epochs x {record['config']['num_inits']} "
            "initialisations). The card's `drop_probe` metadata holds the probe's configuration, "
            "the source's fingerprint and label hash, and the class errors below.\n\n"
            "Prune the source with them, without running the probe again:\n\n```python\n"
            "from datasets import load_dataset\nfrom hf_drop import DRoPFilter\n\n"
            f"scores = load_dataset(REPO_ID, split='train')\n"
            "errors = ...  # drop_probe.class_errors from this card\n"
            "drop = DRoPFilter(0.5, class_errors=errors, within=scores['el2n'][:]).fit(source)\n"
            "```\n\n"
            f"## Class errors used by DRoP\n\n"
            f"{_class_table(result.class_names, list(result.class_errors))}\n"
        )
        DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{body}").save(str(tmp / CARD_FILE))
    return Path(folder)


def load_pruned(
    folder_or_repo_id: str | os.PathLike,
    source: datasets.Dataset | None = None,
    *,
    revision: str | None = None,
) -> datasets.Dataset:
    """The pruned subset an :func:`export` describes, from a local folder or a Hub repository.

    A full export is read as it is. An indices-only export selects its rows from ``source`` (by
    default the source dataset its card names, loaded again), and refuses a source whose row
    count, label hash or fingerprint differs from the one that was pruned.
    """
    from huggingface_hub import DatasetCard

    local = Path(folder_or_repo_id)
    if local.is_dir():
        card = DatasetCard.load(local / CARD_FILE)
        table = datasets.load_dataset(str(local), split=SPLIT)
    else:
        card = DatasetCard.load(str(folder_or_repo_id), repo_type="dataset")
        table = datasets.load_dataset(str(folder_or_repo_id), split=SPLIT, revision=revision)
    drop = card.data.to_dict().get("drop")
    if not drop:
        raise ValueError(
            f"{folder_or_repo_id} has no 'drop' block in its card: not an hf-drop export"
        )
    if drop["export"] == "full":
        return table

    expected = drop["source"]
    if source is None:
        from .sources import load_source

        data = load_source(expected["name"], expected.get("config"))
        source = data[expected.get("split") or "train"]
        if expected.get("train_indices"):
            raise ValueError(
                "the probe carved its training rows out of the source split: pass "
                "source= the probe's training rows"
            )
    labels = read_labels(source, expected["label_column"])
    problems = []
    if len(source) != expected["num_rows"]:
        problems.append(f"{len(source)} rows instead of {expected['num_rows']}")
    if labels.hash != expected["label_hash"]:
        problems.append(f"label hash {labels.hash} instead of {expected['label_hash']}")
    if expected.get("fingerprint") and source._fingerprint != expected["fingerprint"]:
        problems.append(f"fingerprint {source._fingerprint} instead of {expected['fingerprint']}")
    if problems:
        raise ValueError(
            f"this source is not the dataset that was pruned ({'; '.join(problems)}): the kept "
            "indices would pick the wrong rows"
        )
    return source.select(np.asarray(table["index"][:], dtype=np.int64))


def push(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    commit_message: str = "Upload pruned dataset (hf-drop)",
) -> str:
    """Upload an exported folder to a Hub dataset repository; returns the repository URL.

    Offline or without a token this fails with a clear message; the folder stays on disk.
    """
    from huggingface_hub import HfApi, get_token

    folder = Path(folder)
    if not (folder / CARD_FILE).exists():
        raise FileNotFoundError(f"{folder} is not an exported folder (no {CARD_FILE})")
    token = token or get_token()
    retry = (
        f"the export is complete in {folder}; push it later with "
        f"`hf-drop push {folder} --repo-id {repo_id}`"
    )
    if token is None:
        raise RuntimeError(
            f"no Hugging Face token: log in with `hf auth login` or set HF_TOKEN; {retry}"
        )
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        commit = api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            repo_type="dataset",
            commit_message=commit_message,
        )
    except Exception as error:  # offline, refused, ...: say so, keep the folder
        raise RuntimeError(f"could not upload to {repo_id}: {error}; {retry}") from error
    return str(getattr(commit, "repo_url", f"https://huggingface.co/datasets/{repo_id}"))


def export_saved(
    folder: str | os.PathLike, out: str | os.PathLike, *, mode: Literal["full", "indices"] = "full"
) -> Path:
    """:func:`export` of a subset saved by ``save_subset`` / ``hf-drop prune``."""
    folder = Path(folder)
    if not (folder / PRUNING_FILE).exists():
        raise FileNotFoundError(f"{folder} holds no {PRUNING_FILE}: save it with hf-drop prune")
    provenance = json.loads((folder / PRUNING_FILE).read_text())
    indices = pq.read_table(folder / INDICES_FILE)["index"].to_numpy()
    subset = datasets.load_from_disk(str(folder))
    return export(subset, out, provenance, kept_indices=indices, mode=mode)


# --- the pieces --------------------------------------------------------------------------------


def _write_shards(table: datasets.Dataset, folder: Path) -> list[str]:
    """Parquet shards named as push_to_hub names them, external files embedded."""
    from datasets.table import embed_table_storage

    (folder / "data").mkdir()
    size = table.data.nbytes * len(table) / max(len(table.data), 1)
    num_shards = max(1, math.ceil(size / _MAX_SHARD_BYTES))
    names = []
    for index in range(num_shards):
        shard = table.shard(num_shards=num_shards, index=index, contiguous=True)
        shard = (
            shard.with_format("arrow")
            .map(embed_table_storage, batched=True, keep_in_memory=True)
            .with_format(None)
        )
        name = f"data/{SPLIT}-{index:05d}-of-{num_shards:05d}.parquet"
        shard.to_parquet(str(folder / name))
        names.append(name)
    return names


def _dataset_yaml(table: datasets.Dataset, data: Any) -> None:
    """``dataset_info`` and ``configs`` YAML, the way push_to_hub writes them."""
    from datasets.info import DatasetInfosDict
    from datasets.splits import SplitDict, SplitInfo
    from datasets.utils.metadata import MetadataConfigs

    info = datasets.DatasetInfo(features=table.features, license=table.info.license or None)
    info.config_name = "default"
    info.splits = SplitDict({SPLIT: SplitInfo(SPLIT, num_examples=len(table))})
    DatasetInfosDict({"default": info}).to_dataset_card_data(data)
    MetadataConfigs(
        {"default": {"data_files": [{"split": SPLIT, "path": f"data/{SPLIT}-*"}]}}
    ).to_dataset_card_data(data)


def _drop_block(provenance: dict[str, Any], mode: str) -> dict[str, Any]:
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
        "kept_per_class": provenance["quotas"],
        "class_errors": provenance["class_errors"],
        "n_kept": provenance["n_kept"],
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
            "revision": source.get("revision"),
            "fingerprint": source.get("fingerprint"),
            "num_rows": source.get("num_rows"),
            "label_column": source.get("label_column"),
            "label_hash": source.get("label_hash"),
        },
        "versions": provenance["versions"],
    }


def _score_name(params: dict[str, Any]) -> str:
    """What chose samples inside classes: "random", a column name, or a named score array."""
    within = params["within"]
    if isinstance(within, str) and within == "random":
        return "random"
    if isinstance(within, str) and not within.startswith("<array"):
        return within
    return params.get("score_name") or "scores"


def _card(table, drop, provenance, license, tags, pretty_name):
    from huggingface_hub import DatasetCard, DatasetCardData

    data = DatasetCardData(
        license=license,
        pretty_name=pretty_name,
        tags=["hf-drop", "data-pruning", "drop", *(tags or [])],
        drop=drop,
    )
    _dataset_yaml(table, data)
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{_body(drop, provenance)}")


def _body(drop: dict[str, Any], provenance: dict[str, Any]) -> str:
    source = drop["source"]["name"] or "the source dataset"
    what = (
        "the kept row indices of the source (and their labels), not its images: rebuild the "
        "subset with `hf_drop.hub.load_pruned(...)`, which checks that the source matches"
        if drop["export"] == "indices"
        else "the kept rows themselves, images included"
    )
    rule = (
        "DRoP (Vysogorets, Ahuja & Kempe, *Distributionally Robust Data Pruning*, ICLR 2025): "
        "each class keeps a fraction of its samples proportional to a probe model's validation "
        "error on that class, so that the model trained on the subset does better on its worst "
        "class"
        if drop["quota"] == "drop"
        else f"the `{drop['quota']}` class-count rule"
    )
    how = "at random" if drop["within"] == "random" else f"by the score `{drop['within']}`"
    probe = drop["probe"] or {}
    probe_line = (
        f"Class errors and scores came from a `{probe['model']['name']}` probe "
        f"({_plural(probe['config']['epochs'], 'epoch')}, "
        f"{_plural(probe['config']['num_inits'], 'initialisation')})."
        if probe
        else ""
    )
    return (
        f"# {drop['method']} subset of {source} at density {drop['density']}\n\n"
        f"This dataset keeps {drop['n_kept']} of the {drop['source']['num_rows']} rows of "
        f"{source}, chosen by {rule}. Inside each class, samples were kept "
        f"{how} "
        f"(seed {drop['seed']}). {probe_line} It holds {what}. The card's `drop` metadata "
        "records every number below, the source's fingerprint and label hash, and the library "
        "versions.\n\n"
        f"## Kept per class\n\n{_class_table(drop['classes'], drop['class_errors'], drop)}\n\n"
        f"![kept fraction per class against class error]({PLOT_FILE})\n\n"
        f"## Reproduce\n\n```bash\n{_command(drop, provenance)}\n```\n"
    )


def _class_table(names, errors, drop: dict[str, Any] | None = None) -> str:
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
            size, kept = drop["class_sizes"][k], drop["kept_per_class"][k]
            row += [str(size), str(kept), number(kept / size if size else None)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _command(drop: dict[str, Any], provenance: dict[str, Any]) -> str:
    """The commands that make this subset again: the probe's (as it was run, when recorded by
    ``hf-drop probe``; otherwise rebuilt from its configuration) and the pruning's."""
    probe = drop["probe"]
    params = provenance["params"]
    command = probe.get("command") if probe else None
    folder = "PROBE_DIR"
    if command:
        tokens = shlex.split(command)
        if "--output" in tokens[:-1]:
            folder = tokens[tokens.index("--output") + 1]
    elif probe:
        c = probe["config"]
        folder = "probe"
        command = (
            f"hf-drop probe --dataset {drop['source']['name']} --model {probe['model']['name']} "
            f"--epochs {c['epochs']} --batch-size {c['batch_size']} --lr {c['lr']} "
            f"--num-inits {c['num_inits']} --seed {c['seed']} --output probe"
        )
    prune = [f"hf-drop prune --probe {folder} --density {drop['density']} --seed {drop['seed']}"]
    if drop["within"] != "random":
        prune.append(f"--within {drop['within']}")
    if drop["quota"] != "drop":
        prune.append(f"--quota {drop['quota']}")
    if params.get("min_per_class"):
        prune.append(f"--min-per-class {params['min_per_class']}")
    if params.get("mode") != "paper":
        prune.append(f"--mode {params['mode']}")
    prune.append("--output subset")
    return "\n".join([*([command] if command else []), " ".join(prune)])


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _plot(provenance: dict[str, Any], path: Path) -> None:
    from .plots import plot_kept_fraction

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
