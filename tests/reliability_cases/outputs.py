"""Reliability cases of what hf-drop writes and reports: Hub exports, training, metrics."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import datasets

sys.path.insert(0, str(Path(__file__).parents[1]))

from conftest import image_dataset

from .harness import (
    Case,
    CliRefusal,
    cli,
    expect_rows,
    fitted,
    leaves_nothing,
    photos,
    small,
    splits_subset,
)


def hub_cases() -> list[Case]:
    from hf_drop.hub import export, export_saved, export_scores, load_pruned, push
    from hf_drop.probe import ProbeResult

    def exported_with(ws, change):
        folder = ws.copy_of(ws.export)
        (shard,) = (folder / "data").glob("*.parquet")
        changed = change(datasets.Dataset.from_parquet(str(shard)))
        changed.to_parquet(str(shard))  # edited in place, under the name the card lists
        return load_pruned(folder, source=ws.train)

    def card_without(ws, key):
        folder = ws.copy_of(ws.export)
        card = (folder / "README.md").read_text()
        lines = card.splitlines(keepends=True)
        if key == "drop":
            card = card.replace("drop:", "not_drop:", 1)
        else:
            card = "".join(line for line in lines if not line.startswith(f"  {key}:"))
        (folder / "README.md").write_text(card)
        return load_pruned(folder, source=ws.train)

    def right_rows(ws):
        subset = load_pruned(ws.export, source=ws.train)
        import pyarrow.parquet as pq

        rows = pq.read_table(ws.subset / "kept_indices.parquet")["index"].to_pylist()
        expect_rows(subset, ws.train, rows)

    def provenance(ws):
        return json.loads((ws.subset / "pruning.json").read_text())

    import pyarrow.parquet as pq

    def subset_of(ws):
        return datasets.load_from_disk(str(ws.subset))

    def push_offline(ws, monkeypatch_token=None):
        push(ws.export, "someone/something", token="hf_fake_token_for_offline_test")

    def push_foreign(ws):
        folder = ws.new("foreign")
        folder.mkdir(parents=True)
        (folder / "README.md").write_text("# my own notes\n")
        push(folder, "someone/something", token="hf_fake_token_for_offline_test")

    def dict_indices_export(ws):
        from hf_drop.data.sources import digits_splits

        pruned = datasets.DatasetDict(train=subset_of(ws), test=digits_splits()["test"])
        rows = pq.read_table(ws.subset / "kept_indices.parquet")["index"].to_numpy()
        export(pruned, ws.new(), provenance(ws), kept_indices=rows, mode="indices")

    def overwrite_export(ws):
        target = ws.copy_of(ws.export)
        export_saved(ws.subset, target, overwrite=True)
        assert (target / "README.md").is_file()

    return [
        Case("hub", "export onto the user's folder",
             lambda ws: export(subset_of(ws), ws.user, provenance(ws)), ValueError, "not empty"),
        Case("hub", "export with provenance={}",
             lambda ws: export(subset_of(ws), ws.new(), {}), ValueError, "provenance lacks"),
        Case("hub", "export in an unknown mode",
             lambda ws: export(subset_of(ws), ws.new(), provenance(ws), mode="zip"), ValueError,
             "mode must be 'full' or 'indices'"),
        Case("hub", "indices export without kept indices",
             lambda ws: export(subset_of(ws), ws.new(), provenance(ws), mode="indices"),
             ValueError, "kept_indices"),
        Case("hub", "export_saved onto its own subset folder",
             lambda ws: export_saved(ws.subset, ws.subset), ValueError, "subset"),
        Case("hub", "export_saved inside its subset folder",
             lambda ws: export_saved(ws.subset, ws.subset / "hub"), ValueError, "subset"),
        Case("hub", "export_saved onto a previous export, with overwrite", overwrite_export),
        Case("hub", "export_scores onto the probe folder",
             lambda ws: export_scores(ProbeResult.load(ws.probe), ws.probe), ValueError, "probe"),
        Case("hub", "hf-drop push SUB --export-dir SUB",
             lambda ws: cli("push", ws.subset, "--repo-id", "a/b", "--export-dir", ws.subset),
             CliRefusal, "subset"),
        Case("hub", "load_pruned with a shifted index column",
             lambda ws: exported_with(ws, lambda t: t.map(lambda r: {"index": r["index"] + 1})),
             ValueError, "the index column does not match the source"),
        Case("hub", "load_pruned with an all-zero index column",
             lambda ws: exported_with(ws, lambda t: t.map(lambda r: {"index": 0})),
             ValueError, "index"),
        Case("hub", "load_pruned with an out-of-range index",
             lambda ws: exported_with(ws, lambda t: t.map(lambda r: {"index": r["index"] + 10**6})),
             ValueError, "index"),
        Case("hub", "load_pruned with rows missing",
             lambda ws: exported_with(ws, lambda t: t.select(range(len(t) - 3))),
             ValueError, "indices but the card says"),
        Case("hub", "load_pruned on a card without a drop block",
             lambda ws: card_without(ws, "drop"), ValueError, "drop"),
        Case("hub", "load_pruned on a card without its export key",
             lambda ws: card_without(ws, "export"), ValueError, "export"),
        Case("hub", "load_pruned on another source",
             lambda ws: load_pruned(ws.export, source=ws.train.shuffle(seed=0)),
             ValueError, "not the dataset that was pruned"),
        Case("hub", "load_pruned on the right source gives the kept rows", right_rows),
        Case("hub", "push of a folder that is not an export", push_foreign, ValueError,
             "is not an hf-drop export"),
        Case("filter", "apply to the dataset without its image column",
             lambda _: fitted()[0].apply(small().remove_columns(["image", "el2n"])),
             ValueError, "its rows cannot be verified"),
        Case("hub", "push without reaching the Hub keeps the export and says how to retry",
             push_offline, RuntimeError, "hf-drop push"),
        Case("hub", "export a DatasetDict none of whose splits is the pruned one",
             lambda ws: export(datasets.DatasetDict(train=ws.train), ws.new(), provenance(ws)),
             ValueError, "none of its splits ['train'] holds those rows"),
        Case("hub", "export a DatasetDict of the pruned split and others, in indices mode",
             dict_indices_export, ValueError, "mode='indices' publishes the kept rows of one"),
        Case("hub", "hf-drop export of a folder that is already an export",
             lambda ws: cli("export", ws.export, "--output", ws.new()), CliRefusal,
             "already an export"),
        Case("hub", "hf-drop export onto the user's folder",
             lambda ws: cli("export", ws.subset, "--output", ws.user), CliRefusal, "not empty"),
        Case("hub", "hf-drop export of the user's own folder",
             lambda ws: cli("export", ws.user, "--output", ws.new()), CliRefusal,
             "is not a subset folder"),
        Case("hub", "hf-drop export of a subset folder with both splits and --indices-only",
             lambda ws: cli("export", splits_subset(ws), "--indices-only", "--output", ws.new()),
             CliRefusal, "no indices form"),
    ]  # fmt: skip


def train_cases() -> list[Case]:
    def train(ws, *extra, dataset=None, output=None):
        cli("train", "--dataset", dataset or ws.subset, "--model", "test_resnet", "--epochs",
            "1", *extra, "--output", output or ws.new("train"))  # fmt: skip

    def empty_training_set(ws):
        empty = ws.new("empty")
        datasets.DatasetDict(
            {"train": image_dataset([0, 1]).select([]), "test": image_dataset([0, 1, 2, 3])}
        ).save_to_disk(str(empty))
        train(ws, "--eval-dataset", empty, dataset=empty)

    def no_report_split(ws):
        folder = ws.copy_of(ws.probe)
        (folder / "splits.json").write_text(json.dumps(
            {"val_split": "test", "report_split": None, "protocol": "val_split"}))  # fmt: skip
        train(ws, "--eval-from-probe", folder)

    return [
        Case("train", "unknown --dataset", lambda ws: train(ws, "--eval-from-probe", ws.probe,
             dataset="no/such"), CliRefusal, "could not load dataset"),
        Case("train", "--output onto the user's folder",
             lambda ws: train(ws, "--eval-from-probe", ws.probe, output=ws.user), CliRefusal,
             "not empty"),
        Case("train", "--output is the training data's folder",
             lambda ws: train(ws, "--eval-from-probe", ws.probe, output=ws.subset), CliRefusal,
             "subset"),
        Case("train", "no evaluation data", lambda ws: train(ws), CliRefusal,
             "pass --eval-dataset or --eval-from-probe"),
        Case("train", "an empty training set", empty_training_set, CliRefusal, "empty"),
        Case("train", "--dynamic_within loss without --dynamic_drop",
             lambda ws: train(ws, "--eval-from-probe", ws.probe, "--dynamic_within", "loss"),
             CliRefusal, "dynamic_within apply with dynamic_drop only"),
        Case("train", "unknown --split", lambda ws: train(ws, "--split", "dev",
             "--eval-from-probe", ws.probe), CliRefusal, "--split 'dev' is not a split"),
        Case("train", "--density 2", lambda ws: train(ws, "--density", "2",
             "--eval-from-probe", ws.probe), CliRefusal, "density"),
        Case("train", "--split of an untouched split of a subset saved with its other splits",
             lambda ws: train(ws, "--split", "test", "--eval-from-probe", ws.probe,
                              dataset=splits_subset(ws)),
             CliRefusal, "--split 'test' is not the pruned split"),
        Case("train", "photos of many sizes: a short error, no folder left behind",
             lambda ws: leaves_nothing(ws, "train", photos(ws), "--eval-dataset", photos(ws),
                                       "--model", "test_resnet", "--epochs", "1"),
             CliRefusal, "pass --image_size HxW"),
        Case("train", "--eval-from-probe of a probe with no held-out split",
             no_report_split, CliRefusal, "pass --eval-dataset"),
    ]  # fmt: skip


def metric_cases() -> list[Case]:
    def metric():
        import evaluate

        return evaluate.load(
            str(Path(__file__).parents[2] / "hf_drop/evaluation/metrics/class_accuracy")
        )

    def absent(_):
        out = metric().compute(predictions=[0, 1, 1], references=[0, 1, 1], num_classes=3)
        assert "class_accuracy/2" not in out and out["worst_class_accuracy"] == 1.0

    return [
        Case("metric", "float predictions", lambda _: metric().compute(
            predictions=[0.7, 1.2], references=[0, 1]), ValueError, "predictions"),
        Case("metric", "lengths differ", lambda _: metric().compute(
            predictions=[0, 1, 1], references=[0, 1]), ValueError, "differ in length (3 vs 2)"),
        Case("metric", "negative class id", lambda _: metric().compute(
            predictions=[0, -1], references=[0, 1]), ValueError, "predictions must lie in [0, 2)"),
        Case("metric", "a class absent from the references is reported as absent", absent),
    ]  # fmt: skip
