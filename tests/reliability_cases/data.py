"""Reliability cases of the data a user brings: sources, streams and groups, option files."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import datasets
import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1]))

from conftest import CLASS_NAMES

from .harness import (
    Case,
    CliRefusal,
    cli,
    drop_filter,
    small,
)


def source_cases() -> list[Case]:
    from hf_drop.data.sources import fashion_mnist, load_source, sample_rows

    def hub_layout(ws):
        folder = ws.new("hub-layout")
        (folder / "data").mkdir(parents=True)
        small().select(range(150)).to_parquet(str(folder / "data" / "train-00000-of-00001.parquet"))
        small().select(range(50)).to_parquet(str(folder / "data" / "test-00000-of-00001.parquet"))
        loaded = load_source(str(folder))
        assert {k: len(v) for k, v in loaded.items()} == {"train": 150, "test": 50}

    def imagefolder(ws):
        import PIL.Image

        folder = ws.new("imagefolder")
        for split, count in (("train", 4), ("test", 2)):
            for k in range(count):
                path = folder / split / ("cat" if k % 2 else "dog") / f"{k}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                PIL.Image.fromarray(np.zeros((4, 4), np.uint8)).save(path)
        loaded = load_source(str(folder))
        assert {k: len(v) for k, v in loaded.items()} == {"train": 4, "test": 2}

    def sorted_sample(_):
        data = small().sort("label")  # class-sorted: its first 40 rows are one class
        kept = sample_rows(data, 40, {"method": "stratified", "seed": 0, "label_column": "label"})
        assert np.bincount(kept["label"][:]).tolist() == [16, 12, 8, 4]

    def truncated_idx(ws):
        import shutil

        from hf_drop.data.sources import FASHION_MNIST_ROOT

        folder = ws.new("fmnist")
        shutil.copytree(FASHION_MNIST_ROOT, folder)
        target = folder / "t10k-labels-idx1-ubyte.gz"
        target.write_bytes(target.read_bytes()[:50])
        fashion_mnist(folder, cache_dir=ws.new("cache"))

    return [
        Case("sources", "Hub-layout parquet folder keeps its splits", hub_layout),
        Case("sources", "imagefolder with split folders keeps its splits", imagefolder),
        Case("sources", "a truncated Fashion-MNIST file", truncated_idx, ValueError,
             "t10k-labels-idx1-ubyte.gz"),
        Case("sources", "a path that is not a dataset", lambda ws: load_source(
            str(ws.user / "notes.txt")), ValueError, "notes.txt"),
        Case("sources", "--max_train_samples of a class-sorted split keeps every class",
             sorted_sample),
        Case("sources", "a record of an unknown sampling", lambda ws: sample_rows(
            small(), 10, {"method": "by-hand"}), ValueError, "unknown sampling"),
    ]  # fmt: skip


def stream_and_group_cases() -> list[Case]:
    from datasets.distributed import split_dataset_by_node

    def with_ids():
        return small().add_column("id", list(range(200)))

    def nodes_agree(_):
        stream = with_ids().to_iterable_dataset(num_shards=4)
        drop = drop_filter(id_column="id", stream_mode="exact").fit(stream)
        whole = sorted(r["id"] for r in drop.apply(stream).select_columns(["id"]))
        parts = sorted(
            r["id"]
            for rank in range(3)
            for r in drop.apply(split_dataset_by_node(stream, rank, 3)).select_columns(["id"])
        )
        assert whole == parts and len(whole) == int(drop.quotas_.sum())

    def other_labels(_):
        drop = drop_filter(id_column="id").fit(with_ids().to_iterable_dataset())
        wider = with_ids().cast_column("label", datasets.ClassLabel(names=[*CLASS_NAMES, "x"]))
        wider = wider.map(lambda r, i: {"label": 4 if i == 3 else r["label"]}, with_indices=True)
        list(drop.apply(wider.to_iterable_dataset()))

    def groups_as_classes(_):
        by_class = drop_filter().fit(small())
        assert drop_filter(group_column="label").fit(small()).indices_.tolist() == (
            by_class.indices_.tolist()
        )

    return [
        Case("stream", "shards, nodes and the whole stream keep the same rows", nodes_agree),
        Case("stream", "scores within classes on a stream", lambda _: drop_filter(
            id_column="id", within="el2n").fit(with_ids().to_iterable_dataset()), ValueError,
            "pruned at random within each class"),
        Case("stream", "a stream with labels the fit never saw", other_labels, ValueError,
             "not classes of the fitted stream"),
        Case("stream", "stream_mode on a Dataset", lambda _: drop_filter(
            stream_mode="exact").fit(small()), ValueError, "stream_mode applies to a stream"),
        Case("stream", "class_sizes of the wrong length", lambda _: drop_filter(
            id_column="id", class_sizes=[1, 2]).fit(with_ids().to_iterable_dataset()),
            ValueError, "class_sizes has shape"),
        Case("groups", "the label column as group column: the class subset", groups_as_classes),
        Case("groups", "a group error for a group that does not occur", lambda _: drop_filter(
            class_errors={"tshirt/9": 0.1}, group_column=["label", "el2n"]).fit(small()),
            ValueError, "label column 'el2n' must be a ClassLabel"),
        Case("groups", "the same group column twice", lambda _: drop_filter(
            group_column=["label", "label"]).fit(small()), ValueError,
            "list of distinct names"),
    ]  # fmt: skip


def option_file_cases() -> list[Case]:
    """Files of options: each value read as the type its option declares, or refused naming
    the file and the key."""

    def options(ws, text: str, suffix: str = ".yaml") -> Path:
        path = ws.new("options").with_suffix(suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def prune(ws, text, *extra, suffix=".yaml", output=None):
        output = output or ws.new("subset")
        cli("prune", options(ws, text, suffix), "--probe", ws.probe, "--density", "0.5", *extra,
            "--output", output)  # fmt: skip
        return output

    def record(folder: Path) -> dict:
        return json.loads((folder / "pruning.json").read_text())

    def overwrite_false(ws):  # "false" is false: the previous subset is refused, not replaced
        prune(ws, 'overwrite: "false"\nseed: 4\n', output=ws.copy_of(ws.subset))

    def overwrite_true(ws):
        target = ws.copy_of(ws.subset)
        prune(ws, '{"overwrite": "TRUE", "seed": 4}', suffix=".json", output=target)
        assert record(target)["params"]["seed"] == 4

    def shrink_kept(ws):
        out = prune(ws, '{"no_shrink": "false"}', suffix=".json")
        assert "shrunk" in record(out)["method"], record(out)["method"]

    def one_group_column(ws):
        out = ws.new("subset")
        errors = json.dumps([0.1 + 0.02 * k for k in range(10)])
        cli("prune", options(ws, f"class_errors: '{errors}'\ngroup_column: label\n"),
            "--dataset", "digits", "--density", "0.5", "--output", out)  # fmt: skip
        assert record(out)["params"]["group_column"] == "label", "one column, not five"

    def one_score(ws):
        out = prune(ws, "with_scores: el2n\n")
        assert "el2n" in datasets.load_from_disk(str(out)).column_names

    def number_as_path(ws):
        folder = ws.new("cwd")
        folder.mkdir(parents=True)
        here = os.getcwd()
        os.chdir(folder)
        try:
            cli("prune", options(ws, "output: 2024\n"), "--probe", ws.probe, "--density", "0.5")
        finally:
            os.chdir(here)
        assert (folder / "2024" / "pruning.json").is_file()

    def output_dir_key(ws):  # the README's own key
        out = ws.new("subset")
        cli("prune", options(ws, f"probe: {ws.probe}\ndensity: 0.5\noutput_dir: {out}\n"))
        assert record(out)["params"]["density"] == 0.5

    def number_as_text(ws):
        out = ws.new("subset")
        cli("prune", options(ws, f'{{"probe": "{ws.probe}", "density": "0.25", "output-dir": '
            f'"{out}"}}', ".json"))  # fmt: skip
        assert record(out)["params"]["density"] == 0.25

    def tag_string(ws):
        from hf_drop.hub import export_saved

        folder = export_saved(ws.subset, ws.new("export"), tags="fashion")
        card = (folder / "README.md").read_text()
        assert "- fashion" in card and "\n- f\n" not in card

    return [
        Case("options", "overwrite: 'false' over a previous subset", overwrite_false, CliRefusal,
             "--overwrite"),
        Case("options", "overwrite: 'TRUE' replaces it", overwrite_true),
        Case("options", "overwrite: 'yes' is not a boolean",
             lambda ws: prune(ws, "overwrite: 'yes'\n"), CliRefusal,
             "overwrite must be true or false, got 'yes'"),
        Case("options", "no_shrink: 'false' keeps shrinkage on", shrink_kept),
        Case("options", "group_column: one string is one column", one_group_column),
        Case("options", "with_scores: one string is one score", one_score),
        Case("options", "output: 2024 (a number for a path)", number_as_path),
        Case("options", "output_dir: the README's key", output_dir_key),
        Case("options", "density: '0.25' (a number as text), output-dir spelt with dashes",
             number_as_text),
        Case("options", "density: a list", lambda ws: prune(ws, "density: [0.5]\n"), CliRefusal,
             "options.yaml: density must be a number, got list"),
        Case("options", "seed: 1.5", lambda ws: prune(ws, "seed: 1.5\n"), CliRefusal,
             "seed must be an integer"),
        Case("options", "with_scores: a mapping", lambda ws: prune(ws, "with_scores: {a: 1}\n"),
             CliRefusal, "with_scores must be a list"),
        Case("options", "both spellings of one key",
             lambda ws: prune(ws, "min_per_class: 2\nmin-per-class: 3\n"), CliRefusal,
             "min_per_class and min-per-class set the same option"),
        Case("options", "a near-miss key", lambda ws: prune(ws, "min_per_clas: 2\n"),
             CliRefusal, "unknown option 'min_per_clas' (did you mean min_per_class?)"),
        Case("options", "a near-miss transformers key for train",
             lambda ws: cli("train", options(ws, "num_train_epoch: 1\n"), "--dataset", ws.subset,
                            "--model", "test_resnet", "--output", ws.new()), CliRefusal,
             "did you mean num_train_epochs?"),
        Case("options", "quota: a rule that does not exist",
             lambda ws: prune(ws, "quota: most\n"), CliRefusal, "quota must be one of"),
        Case("options", "model_kwargs: not a mapping",
             lambda ws: cli("probe", options(ws, "model_kwargs: [1]\n"), "--dataset", "digits",
                            "--model", "test_resnet", "--output", ws.new()), CliRefusal,
             "model_kwargs must be a mapping"),
        Case("options", "a near-miss flag on the command line",
             lambda ws: prune(ws, "seed: 1\n", "--min-per-klass", "2"), CliRefusal,
             "did you mean --min-per-class?"),
        Case("options", "export(tags='fashion') is one tag", tag_string),
    ]  # fmt: skip
