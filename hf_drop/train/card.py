"""The model card of a trained model: what it was trained on (the subset and how it was made), how
well it does on every class, how to load it, and what it was made with."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..io.portable import portable_name

if TYPE_CHECKING:
    from huggingface_hub import ModelCard

__all__ = ["model_card"]


def model_card(
    record: dict[str, Any],
    *,
    dataset_name: str | None = None,
    reproduce: Sequence[str] | None = None,
) -> ModelCard:
    """The card of the model of a training run whose ``metrics.json`` is ``record``.

    ``dataset_name`` names the training data (a subset folder, a Hub id); ``reproduce`` lists
    the commands that rebuild it (default: the provenance's own ``reproduce``, if it has one).
    """
    from huggingface_hub import ModelCard, ModelCardData

    provenance = record.get("provenance") or {}
    if reproduce is None:
        reproduce = provenance.get("reproduce") or (provenance.get("drop") or {}).get("reproduce")
    # No local absolute path in a card that may be published: the folder's own name.
    name = portable_name(dataset_name or (provenance.get("source") or {}).get("name"))
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag="image-classification",
        tags=["hf-drop", "image-classification", *(["timm"] if _is_timm(record) else [])],
        metrics=["accuracy"],
        hf_drop={
            "accuracy": record["accuracy"],
            "worst_class_accuracy": record["worst_class_accuracy"],
            "worst_class": record["worst_class"],
            "training_data": name,
            "method": provenance.get("method"),
            "density": record.get("density") or (provenance.get("params") or {}).get("density"),
            "train_rows": record["train_rows"],
            "epochs": record["epochs"],
            "eval_data": _eval_meta(record),
        },
    )
    sections = [
        _title(record, provenance, name),
        _training_data(record, provenance, name, reproduce),
        _evaluation(record, provenance),
        _training(record),
        _usage(record),
        _versions(record),
    ]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n")


def _eval_meta(record: dict[str, Any]) -> dict[str, Any] | None:
    """The card's YAML of the evaluation data: no local absolute path (the card is published)."""
    described = record.get("eval_data")
    if not described:
        return None
    keys = ("name", "split", "rows", "fingerprint", "label_hash")
    meta = {key: described.get(key) for key in keys}
    meta["name"] = portable_name(meta["name"])
    return meta


def _is_timm(record: dict[str, Any]) -> bool:
    return record["model"]["kind"] == "timm"


def _title(record, provenance, name) -> str:
    model = record["model"]
    data = name or "an image dataset"
    if provenance.get("method"):
        data = f"a {provenance['method']} subset of {_source(provenance, name)}"
    start = "from pretrained weights" if model["pretrained"] else "from scratch"
    return (
        f"# {model['name']} trained on {data}\n\n"
        f"An image classifier ({model['kind']} architecture `{model['name']}`, trained {start}) "
        "trained with `transformers.Trainer` by hf-drop and judged class "
        f"by class: accuracy {record['accuracy']:.4f}, worst-class accuracy "
        f"{record['worst_class_accuracy']:.4f} (class `{record['worst_class']}`)."
    )


def _source(provenance: dict[str, Any], name: str | None = None) -> str:
    source = (provenance.get("source") or {}).get("name")
    return f"`{source}`" if source else f"the source of `{name}`" if name else "its source"


_DROP = (
    " DRoP (Vysogorets, Ahuja & Kempe, *Distributionally Robust Data Pruning*, ICLR 2025) keeps "
    "more of the classes that a probe model finds hard, so that the worst class does better."
)


def _training_data(record, provenance, name, reproduce) -> str:
    lines = ["## Training data", ""]
    where = f"`{name}`" if name else "a `datasets.Dataset`"
    lines.append(f"{where}: {record['train_rows']} rows, {len(record['class_names'])} classes.")
    sampling = (record.get("train_data") or {}).get("sampling")
    if sampling:
        split = record["train_data"].get("split")
        lines[-1] += (
            f" They are a sample of split `{split}` with its class proportions "
            f"(`--max_train_samples {record['train_data'].get('max_train_samples')}`, seed "
            f"{sampling.get('seed')})."
        )
    if provenance.get("method"):
        params = provenance.get("params") or {}
        kept, rows = provenance.get("num_kept"), provenance.get("num_rows")
        # The keys of pruning.json (DRoPFilter.provenance); a record without them says less.
        keeps = f"{kept} of the {rows} rows" if None not in (kept, rows) else "part of the rows"
        lines += [
            "",
            f"It is a pruned subset: method **{provenance['method']}**, density "
            f"{params.get('density', record.get('density'))}, seed {params.get('seed')}; it keeps "
            f"{keeps} of {_source(provenance, name)}."
            f"{_DROP if 'DRoP' in provenance['method'] else ''} The "
            "subset's `pruning.json` is recorded in this run's `metrics.json` (`provenance`).",
        ]
    if reproduce:
        body = "\n".join(reproduce)
        lines += ["", "Rebuild it, in an empty folder:", "", f"```bash\n{body}\n```"]
    return "\n".join(lines)


def _evaluation(record, provenance) -> str:
    names = record["class_names"]
    kept = provenance.get("quotas") if provenance.get("classes") == names else None
    header = ["class", *(["kept for training"] if kept else []), "evaluated", "accuracy"]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    support = record.get("class_support") or [None] * len(names)
    for k, name in enumerate(names):
        accuracy = record["per_class_accuracy"][k]
        cells = [f"`{name}`", *([str(kept[k])] if kept else []), str(support[k])]
        cells.append("-" if accuracy is None else f"{accuracy:.4f}")
        rows.append("| " + " | ".join(cells) + " |")
    loss = record.get("eval_loss")
    return "\n".join(
        [
            "## Evaluation",
            "",
            f"On {_eval_data(record)}:",
            "",
            f"- accuracy: {record['accuracy']:.4f}",
            f"- worst-class accuracy: {record['worst_class_accuracy']:.4f} "
            f"(`{record['worst_class']}`)",
            f"- standard deviation of the class accuracies: {record['class_accuracy_std']:.4f}",
            *([f"- loss: {loss:.4f}"] if loss is not None else []),
            "",
            *rows,
        ]
    )


def _eval_data(record) -> str:
    """``1797 held-out images: split `test` of `digits` (fingerprint 0c81...)``, as recorded."""
    described = record.get("eval_data") or {}
    where = []
    if described.get("split"):
        where.append(f"split `{described['split']}`")
    if described.get("name"):
        where.append(f"`{portable_name(described['name'])}`")
    text = f"{record['eval_rows']} held-out images"
    if where:
        text += ": " + " of ".join(where)
    if described.get("rows_of_split"):
        text += ", the rows the probe did not validate on"
    if described.get("fingerprint"):
        text += f" (fingerprint `{described['fingerprint']}`)"
    return text


def _training(record) -> str:
    args = record["training_args"]
    config = record["config"]
    optimizer = (
        f"SGD (momentum {config['momentum']}, decay x{config['lr_gamma']} at "
        f"{list(config['lr_milestones'])} of the steps)"
        if config["optimizer"] == "sgd"
        else f"the Trainer's `{args['optim']}`, `{args['lr_scheduler_type']}` schedule"
    )
    p = record["preprocess"]
    size = f"resized to {'x'.join(map(str, p['image_size']))}" if p["image_size"] else "unresized"
    return "\n".join(
        [
            "## Training",
            "",
            f"- epochs: {record['epochs']}; batch size {args['per_device_train_batch_size']} per "
            f"process x {record['processes']} process(es) x "
            f"{args['gradient_accumulation_steps']} accumulation step(s)",
            f"- optimizer: {optimizer}; learning rate {args['learning_rate']}, weight decay "
            f"{args['weight_decay']}; seed {args['seed']}",
            f"- images: {p['channels']} channel(s), {size}, normalised with mean "
            f"{list(p['mean'])} and std {list(p['std'])}",
            f"- {record['train_seconds']} s of training",
            *_dynamic_lines(record),
            "",
            "Every TrainingArguments field used is in the run's `metrics.json` (`training_args`).",
        ]
    )


def _dynamic_lines(record) -> list[str]:
    """DRoP while training (``dynamic_drop``): how each epoch sampled, and what it cost."""
    plan = record.get("dynamic_drop")
    if not plan:
        return []
    s = plan["settings"]
    steer = record.get("steer_data") or {}
    where = " ".join(str(v) for v in (steer.get("name"), steer.get("split")) if v) or "its split"
    saved = 1 - plan["sample_passes"] / plan["full_data_sample_passes"]
    smoothing = s.get("smoothing", 0.0)
    errors = (
        f"the class errors on {where}, averaged over the evaluations (smoothing {smoothing})"
        if smoothing
        else f"the class errors on {where} after the epoch before"
    )
    anneal = (
        f"; the last {s['anneal']:.0%} of the epochs in the data's own proportions"
        if s["anneal"]
        else ""
    )
    within = ""
    if s.get("within") == "loss":
        within = ", rows within a class by their last training loss (hard rows first" + (
            ", kept well-learned rows' losses scaled up)" if s.get("rescale") else ")"
        )
    return [
        f"- dynamic DRoP: every epoch trained on {s['rows_per_epoch']} of the {s['train_rows']} "
        f"rows (density {s['density']}), class counts by `{s['quota']}` from {errors}{anneal}"
        f"{within}; "
        f"seed {s['seed']}. {plan['sample_passes']} sample-passes, {saved:.0%} fewer than full "
        "data. Every epoch's quotas are in `metrics.json` (`dynamic_drop`)."
    ]


def _usage(record) -> str:
    processor = record["model"].get("image_processor")
    prepare = (
        'processor = AutoImageProcessor.from_pretrained("PATH")\n'
        'inputs = processor(images, return_tensors="pt")\n'
        "logits = model(**inputs).logits"
        if processor
        else "# pixel_values: images prepared as under Training above\n"
        "logits = model(pixel_values=pixel_values).logits"
    )
    imports = (
        "AutoImageProcessor, AutoModelForImageClassification"
        if processor
        else ("AutoModelForImageClassification")
    )
    return (
        "## How to use\n\n```python\n"
        f"from transformers import {imports}\n\n"
        'model = AutoModelForImageClassification.from_pretrained("PATH")\n'
        f"{prepare}\n```"
    )


def _versions(record) -> str:
    rows = [f"| {name} | {version} |" for name, version in record["versions"].items()]
    return "## Made with\n\n| library | version |\n|---|---|\n" + "\n".join(rows)
