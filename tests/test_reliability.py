"""The reliability matrix: hf-drop tried as a new user and as an adversary would.

Every case is one call into the API or the command line with bad, odd or hostile input. Each
asserts either a clear refusal (the exception class, and a fragment of the message that names
the argument, column or file) or the right result, and every case asserts that no file that
existed before it was changed or removed. The README's reliability section is this table:
``python tests/test_reliability.py`` prints it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import datasets
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from conftest import CLASS_NAMES, image_dataset, png_bytes

ERRORS = [0.1, 0.4, 0.2, 0.3]


class CliRefusal(Exception):
    """``hf-drop`` exited with status 2 and a message (no traceback)."""


def cli(*argv: str) -> None:
    from hf_drop.cli import main

    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            main([str(a) for a in argv])
    except SystemExit as exit:
        if exit.code not in (0, None):
            raise CliRefusal(stderr.getvalue()) from None


@dataclass
class Case:
    area: str
    name: str
    action: Callable[[Workspace], object]
    refusal: type[BaseException] | None = None  # None: the action asserts the right result
    fragment: str = ""

    @property
    def outcome(self) -> str:
        if self.refusal is None:
            return "right result"
        return f"refused: {self.refusal.__name__} '{self.fragment}'"


class Workspace:
    """A folder with a finished probe, a saved subset, an export, and a user's own files."""

    def __init__(self, root: Path) -> None:
        from hf_drop.cli import main
        from hf_drop.data.sources import digits_splits
        from hf_drop.hub import export_saved

        self.root = root
        self.probe = root / "runs" / "probe"
        self.subset = root / "runs" / "subset"
        self.export = root / "runs" / "export"
        self.user = root / "mine"
        (self.user / "checkpoints" / "mine").mkdir(parents=True)
        (self.user / "notes.txt").write_text("my notes\n")
        (self.user / "checkpoints" / "mine" / "weights.bin").write_bytes(b"\x00" * 64)
        with contextlib.redirect_stdout(io.StringIO()):
            main(["probe", "--dataset", "digits", "--model", "test_resnet", "--epochs", "1",
                  "--embeddings", "--output", str(self.probe)])  # fmt: skip
            main(["prune", "--probe", str(self.probe), "--density", "0.5", "--min-per-class",
                  "2", "--output", str(self.subset)])  # fmt: skip
        export_saved(self.subset, self.export, mode="indices")
        self.train = digits_splits()["train"]
        self.counter = 0

    def new(self, name: str = "out") -> Path:
        """A path that does not exist yet, for an output."""
        self.counter += 1
        return self.root / "new" / f"{self.counter}-{name}"

    def copy_of(self, folder: Path) -> Path:
        import shutil

        target = self.new(folder.name)
        shutil.copytree(folder, target, symlinks=True)
        return target

    def snapshot(self) -> dict[str, str]:
        files = {}
        for path in sorted(self.root.rglob("*")):
            if path.is_symlink():
                files[str(path)] = "link:" + os.readlink(path)
            elif path.is_file():
                files[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        return files


# --- small data ---------------------------------------------------------------------------------


def small() -> datasets.Dataset:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), [80, 60, 40, 20])
    rng.shuffle(labels)
    return image_dataset(labels, extra={"el2n": rng.random(len(labels)).round(6)})


def fitted(**kwargs):
    from hf_drop import DRoPFilter

    data = small()
    return DRoPFilter(0.5, class_errors=ERRORS, **kwargs).fit(data), data


def drop_filter(**kwargs):
    from hf_drop import DRoPFilter

    return DRoPFilter(**({"density": 0.5, "class_errors": ERRORS} | kwargs))


def within_class_permutation(data: datasets.Dataset) -> datasets.Dataset:
    labels = np.array(data["label"][:])
    order = np.arange(len(labels))
    for k in np.unique(labels):
        rows = np.flatnonzero(labels == k)
        order[rows] = np.random.default_rng(k).permutation(rows)
    return data.select(order)


def with_ids(data: datasets.Dataset) -> datasets.Dataset:
    return data.add_column("row_id", list(range(1000, 1000 + len(data))))


def expect_rows(subset: datasets.Dataset, source: datasets.Dataset, rows) -> None:
    raw = datasets.Image(decode=False)
    got = subset.cast_column("image", raw)["image"]
    want = source.select(rows).cast_column("image", raw)["image"]
    assert [g["bytes"] for g in got] == [w["bytes"] for w in want]


def photos(ws, sizes: int = 40) -> Path:
    """An imagefolder of ``sizes`` differently sized photos (train and test), as users have."""
    import PIL.Image

    folder = ws.new("photos")
    for k in range(sizes):
        split = "test" if k % 4 == 0 else "train"
        path = folder / split / ("cat" if k % 2 else "dog") / f"{k}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        PIL.Image.fromarray(np.zeros((8 + k, 30 - k % 20), np.uint8)).save(path)
    return folder


def leaves_nothing(ws, command: str, dataset: Path, *extra: str) -> None:
    """``hf-drop COMMAND`` into a new nested output; refused, and nothing of it left behind."""
    output = ws.new("nested") / "runs" / command
    try:
        cli(command, "--dataset", dataset, *extra, "--output", output)
    finally:
        assert not output.parent.parent.exists(), "a failed run left a folder behind"


# --- the cases, by area -------------------------------------------------------------------------


def _quota_cases() -> list[Case]:
    from hf_drop.core import quotas as Q

    sizes = [100, 50, 10]

    def all_zero(_):
        with pytest.warns(Q.QuotaWarning, match="no signal"):
            got = Q.drop_quotas(sizes, [0, 0, 0], 0.5)
        assert got.sum() == 80 and got.tolist() == Q.proportional_quotas(sizes, 0.5).tolist()

    def zero_error_class(_):
        with pytest.warns(Q.QuotaWarning, match="zero error"):
            got = Q.drop_quotas(sizes, [0.2, 0.0, 0.1], 0.5)
        assert got[1] == 0 and got.sum() == 80
        got = Q.drop_quotas(sizes, [0.2, 0.0, 0.1], 0.5, min_per_class=3)
        assert got[1] == 3 and got.sum() == 80

    def empty_class(_):
        assert Q.drop_quotas([10, 0, 10], [0.1, 0.5, 0.2], 0.5).tolist()[1] == 0

    def densities(_):
        assert Q.drop_quotas(sizes, [0.1, 0.2, 0.3], 0.0).tolist() == [0, 0, 0]
        assert Q.drop_quotas(sizes, [0.1, 0.2, 0.3], 1.0).tolist() == sizes

    return [
        Case("quotas", "negative class size", lambda _: Q.drop_quotas([5, -1], [0.1, 0.1], 0.5),
             ValueError, "class_sizes must be non-negative"),
        Case("quotas", "fractional class size", lambda _: Q.drop_quotas([5.5, 1], [0.1, 0.1], 0.5),
             ValueError, "whole numbers"),
        Case("quotas", "2-D class sizes", lambda _: Q.proportional_quotas([[1, 2]], 0.5),
             ValueError, "one-dimensional"),
        Case("quotas", "errors of the wrong length", lambda _: Q.drop_quotas(sizes, [0.1], 0.5),
             ValueError, "class_errors"),
        Case("quotas", "negative error", lambda _: Q.drop_quotas(sizes, [-0.1, 0.2, 0.1], 0.5),
             ValueError, "class_errors"),
        Case("quotas", "density above 1", lambda _: Q.drop_quotas(sizes, [0.1] * 3, 1.5),
             ValueError, "density must be a number in [0, 1]"),
        Case("quotas", "density NaN", lambda _: Q.proportional_quotas(sizes, float("nan")),
             ValueError, "density must be a number in [0, 1]"),
        Case("quotas", "density as text", lambda _: Q.uniform_quotas(sizes, "half"),
             ValueError, "density must be a number in [0, 1]"),
        Case("quotas", "unknown mode", lambda _: Q.drop_quotas(sizes, [0.1] * 3, 0.5, mode="x"),
             ValueError, "mode must be 'paper' or 'count'"),
        Case("quotas", "infeasible min_per_class",
             lambda _: Q.drop_quotas(sizes, [0.1] * 3, 0.01, min_per_class=5),
             ValueError, "min_per_class"),
        Case("quotas", "negative min_per_class",
             lambda _: Q.proportional_quotas(sizes, 0.5, min_per_class=-1),
             ValueError, "min_per_class must be a non-negative int"),
        Case("quotas", "selection index out of range",
             lambda _: Q.quotas_from_selection([0, 1, 1], [0, 7], 2), ValueError,
             "indices must lie in [0, 3)"),
        Case("quotas", "all errors zero: proportional, with a warning", all_zero),
        Case("quotas", "a zero-error class: a warning, or min_per_class keeps some",
             zero_error_class),
        Case("quotas", "a class with no samples keeps none", empty_class),
        Case("quotas", "density 0 and 1", densities),
    ]  # fmt: skip


def _select_cases() -> list[Case]:
    from hf_drop.core import selection as S

    labels = np.array([0, 0, 1, 1, 1])
    return [
        Case("select", "count above class size",
             lambda _: S.random_within_class(labels, [3, 1]), ValueError, "counts[0]=3"),
        Case("select", "NaN score",
             lambda _: S.top_within_class(labels, [1, 1], [0.1, np.nan, 0.2, 0.3, 0.4]),
             ValueError, "finite"),
        Case("select", "scores of the wrong length",
             lambda _: S.top_within_class(labels, [1, 1], [0.1, 0.2]), ValueError, "entries"),
        Case("select", "CCS beta of 1", lambda _: S.ccs(np.arange(5.0), 2, beta=1.0),
             ValueError, "beta must lie in [0, 1)"),
        Case("select", "CCS without strata", lambda _: S.ccs(np.arange(5.0), 2, num_strata=0),
             ValueError, "num_strata must be a positive int"),
        Case("select", "k-center on 1-D scores", lambda _: S.k_center(np.arange(5.0), 2),
             ValueError, "2-D array"),
        Case("select", "k-center on NaN embeddings",
             lambda _: S.k_center(np.full((5, 2), np.nan), 2), ValueError, "finite"),
        Case("select", "a fractional number to keep", lambda _: S.global_top(np.arange(5.0), 2.5),
             ValueError, "must be an int"),
    ]  # fmt: skip


def _filter_cases() -> list[Case]:
    from sklearn.base import clone

    from hf_drop import DRoPFilter
    from hf_drop.probe import ProbeResult

    def apply_to(transform):
        drop, data = fitted()
        return drop.apply(transform(data))

    def filter_after(transform):
        drop, data = fitted()
        return transform(data).filter(drop, with_indices=True, batched=True, input_columns="label")

    def dict_filter(_):
        drop, data = fitted()
        other = data.shuffle(seed=5).flatten_indices()
        datasets.DatasetDict({"train": data, "test": other}).filter(
            drop, with_indices=True, batched=True, input_columns="label"
        )

    def dict_apply(_):
        drop, data = fitted()
        test = data.select(range(50))
        pruned = drop.apply(datasets.DatasetDict({"train": data, "test": test}))
        assert pruned["test"] is test and len(pruned["train"]) == len(drop.indices_)

    def same_rows_filter(_):
        drop, data = fitted()
        kept = data.filter(drop, with_indices=True, batched=True, input_columns="label")
        assert kept["el2n"] == drop.apply(data)["el2n"]

    def other_images(data):
        images = [{"bytes": png_bytes((i * 7 + 3) % 256), "path": None} for i in range(len(data))]
        return image_dataset(data["label"][:], images=images)

    def ids_follow_a_shuffle(_):
        data = with_ids(small())
        drop = DRoPFilter(0.5, class_errors=ERRORS, id_column="row_id").fit(data)
        moved = data.shuffle(seed=3)
        want = sorted(data.select(drop.indices_)["row_id"])
        assert sorted(drop.apply(moved)["row_id"]) == want
        kept = moved.filter(drop, batched=True, input_columns=drop.input_columns)
        assert sorted(kept["row_id"]) == want

    def ids_unknown(_):
        data = with_ids(small())
        drop = DRoPFilter(0.5, class_errors=ERRORS, id_column="row_id").fit(data)
        other = data.remove_columns("row_id").add_column("row_id", list(range(len(data))))
        drop.apply(other)

    def from_probe_moved(ws, transform):
        drop = DRoPFilter.from_probe(ProbeResult.load(ws.probe), 0.5, min_per_class=2)
        drop.fit(transform(ws.train))

    def sparse_labels(_):
        data = datasets.Dataset.from_dict({"label": [0, 2_000_000_000, 1, 1]})
        DRoPFilter(0.5, quota="proportional").fit(data)

    def cloned(_):
        drop = drop_filter(seed=3, within="el2n")
        copy = clone(drop)
        assert copy.get_params() == drop.get_params() and copy is not drop

    def all_zero_errors(_):
        from hf_drop.core.quotas import QuotaWarning

        with pytest.warns(QuotaWarning, match="no signal"):
            drop = drop_filter(class_errors=[0, 0, 0, 0], quota="drop_paper").fit(small())
        assert drop.quotas_.tolist() == [40, 30, 20, 10]

    def empty_dataset(_):
        data = small().select([])
        drop = DRoPFilter(0.5, quota="proportional").fit(data)
        assert len(drop.apply(data)) == 0

    def data_with(column: str, values, feature):
        data = small()
        return data.remove_columns("label").add_column(column, values).cast_column(column, feature)

    floats = lambda _: DRoPFilter(0.5, quota="proportional").fit(  # noqa: E731
        datasets.Dataset.from_dict({"label": [0.5, 1.0]})
    )
    nulls = lambda _: DRoPFilter(0.5, quota="proportional").fit(  # noqa: E731
        datasets.Dataset.from_dict({"label": [0, None, 1]})
    )
    negative = lambda _: DRoPFilter(0.5, quota="proportional").fit(  # noqa: E731
        datasets.Dataset.from_dict({"label": [0, -1, 1]})
    )
    return [
        Case("filter", "apply after shuffle", lambda _: apply_to(lambda d: d.shuffle(seed=1)),
             ValueError, "fitted on another dataset"),
        Case("filter", "apply after a permutation within classes",
             lambda _: apply_to(within_class_permutation), ValueError, "other values in column"),
        Case("filter", "apply to another dataset of the same size and labels",
             lambda _: apply_to(other_images), ValueError, "other values in column(s) ['image'"),
        Case("filter", "apply after a chained filter",
             lambda _: apply_to(lambda d: d.filter(lambda r: r["el2n"] > 0.1)),
             ValueError, "fitted on another dataset"),
        Case("filter", "apply after sorting by label", lambda _: apply_to(lambda d: d.sort("label")),
             ValueError, "fitted on another dataset"),
        Case("filter", "Dataset.filter after shuffle",
             lambda _: filter_after(lambda d: d.shuffle(seed=1)), ValueError, "other labels"),
        Case("filter", "Dataset.filter after a chained filter",
             lambda _: filter_after(lambda d: d.filter(lambda r: r["el2n"] > 0.1)),
             ValueError, "other labels"),
        Case("filter", "DatasetDict.filter hands train positions to test", dict_filter,
             ValueError, "other labels"),
        Case("filter", "DatasetDict apply prunes the fitted split only", dict_apply),
        Case("filter", "Dataset.filter on the fitted dataset = apply", same_rows_filter),
        Case("filter", "id column follows a shuffle (apply and Dataset.filter)",
             ids_follow_a_shuffle),
        Case("filter", "ids the filter never saw", ids_unknown, ValueError,
             "this DRoPFilter was not fitted on"),
        Case("filter", "duplicate ids", lambda _: drop_filter(id_column="i").fit(
            small().add_column("i", [0] * 200)), ValueError, "duplicate ids"),
        Case("filter", "id column missing", lambda _: drop_filter(id_column="i").fit(small()),
             ValueError, "id_column 'i' is not a column"),
        Case("filter", "class given twice (name and id)",
             lambda _: drop_filter(class_errors={"tshirt": 0.1, 0: 0.2}).fit(small()),
             ValueError, "twice"),
        Case("filter", "class_errors out of range with quota='proportional'",
             lambda _: drop_filter(class_errors=[-5, 7, np.nan, 0.1], quota="proportional")
             .fit(small()), ValueError, "class_errors must lie in [0, 1]"),
        Case("filter", "class_errors as text",
             lambda _: drop_filter(class_errors={"tshirt": "high"}).fit(small()),
             ValueError, "must be a number"),
        Case("filter", "class_errors naming an unknown class",
             lambda _: drop_filter(class_errors={"horse": 0.1}).fit(small()),
             ValueError, "names class 'horse'"),
        Case("filter", "a class without an error",
             lambda _: drop_filter(class_errors={"tshirt": 0.1}).fit(small()),
             ValueError, "pass missing_error="),
        Case("filter", "seed -1", lambda _: drop_filter(seed=-1).fit(small()),
             ValueError, "seed must be an int >= 0"),
        Case("filter", "seed 1.5", lambda _: drop_filter(seed=1.5).fit(small()),
             ValueError, "seed must be an int"),
        Case("filter", "density True", lambda _: drop_filter(density=True).fit(small()),
             ValueError, "density must be a number"),
        Case("filter", "keep without a score", lambda _: drop_filter(keep="easy").fit(small()),
             ValueError, "keep='easy' needs a score"),
        Case("filter", "strategy_scores without quota='strategy'",
             lambda _: drop_filter(strategy_scores="el2n").fit(small()),
             ValueError, "strategy_scores only applies to quota='strategy'"),
        Case("filter", "mode with quota='proportional'",
             lambda _: drop_filter(mode="count", quota="proportional").fit(small()),
             ValueError, "mode only applies to quota='drop'"),
        Case("filter", "floor above 1", lambda _: drop_filter(floor=1.5).fit(small()),
             ValueError, "floor must be a number in [0, 1]"),
        Case("filter", "strength NaN", lambda _: drop_filter(strength=float("nan")).fit(small()),
             ValueError, "strength must be a number in [0, 1]"),
        Case("filter", "floor with the exact paper rule",
             lambda _: drop_filter(quota="drop_paper", floor=0.5).fit(small()),
             ValueError, "exactly the paper's Algorithm 1"),
        Case("filter", "shrink as text", lambda _: drop_filter(shrink="yes").fit(small()),
             ValueError, "shrink must be True or False"),
        Case("filter", "negative class_support",
             lambda _: drop_filter(class_support=[10, -1, 10, 10]).fit(small()),
             ValueError, "must be a whole number >= 0"),
        Case("filter", "fractional class_support",
             lambda _: drop_filter(class_support={"tshirt": 2.5}).fit(small()),
             ValueError, "must be a whole number >= 0"),
        Case("filter", "CCS settings without keep='ccs'",
             lambda _: drop_filter(within="el2n", ccs_beta=0.2).fit(small()),
             ValueError, "only apply to keep='ccs'"),
        Case("filter", "min_per_class with a global rule",
             lambda _: drop_filter(quota="global", min_per_class=2).fit(small()),
             ValueError, "min_per_class does not apply"),
        Case("filter", "min_per_class -1", lambda _: drop_filter(min_per_class=-1).fit(small()),
             ValueError, "min_per_class must be an int >= 0"),
        Case("filter", "score column missing", lambda _: drop_filter(within="grand").fit(small()),
             ValueError, "within 'grand' is not a column"),
        Case("filter", "score column with NaN",
             lambda _: drop_filter(within="s").fit(small().add_column("s", [np.nan] * 200)),
             ValueError, "NaN or inf"),
        Case("filter", "float labels", floats, ValueError, "must be a ClassLabel, integer or string"),
        Case("filter", "missing labels", nulls, ValueError, "missing labels"),
        Case("filter", "negative integer label", negative, ValueError, "outside"),
        Case("filter", "sparse integer labels (2e9)", sparse_labels, ValueError,
             "integer labels must be class ids 0..K-1"),
        Case("filter", "a DatasetDict to fit", lambda _: drop_filter().fit(
            datasets.DatasetDict({"train": small()})), TypeError, "pass one split"),
        Case("filter", "a stream without id_column", lambda _: drop_filter().fit(
            small().to_iterable_dataset()), ValueError, "needs id_column"),
        Case("filter", "apply before fit", lambda _: drop_filter().apply(small()),
             RuntimeError, "not fitted"),
        Case("filter", "Dataset.filter without indices", lambda _: small().filter(
            fitted()[0], batched=True, input_columns="label"), TypeError, "with_indices=True"),
        Case("filter", "Dataset.filter with the wrong input column",
             lambda _: fitted()[1].filter(fitted()[0], with_indices=True, batched=True,
                                          input_columns="el2n"),
             ValueError, "expects the labels of column 'label'"),
        Case("filter", "from_probe fitted on a shuffle of the probe's data",
             lambda ws: from_probe_moved(ws, lambda d: d.shuffle(seed=0)),
             ValueError, "come from another dataset"),
        Case("filter", "from_probe fitted on a permutation within classes",
             lambda ws: from_probe_moved(ws, within_class_permutation),
             ValueError, "other values in column(s) ['image']"),
        Case("filter", "scikit-learn clone", cloned),
        Case("filter", "set_params with an unknown name",
             lambda _: drop_filter().set_params(colour="red"), ValueError, "unknown parameters"),
        Case("filter", "all class errors zero: proportional, with a warning", all_zero_errors),
        Case("filter", "an empty dataset gives an empty subset", empty_dataset),
    ]  # fmt: skip


def _probe_cases() -> list[Case]:
    from hf_drop.probe import ProbeConfig, ProbeResult, run_probe

    def corrupt(ws, name, content=b'{"config": '):
        folder = ws.copy_of(ws.probe)
        (folder / name).write_bytes(content)
        result = ProbeResult.load(folder)
        result.class_errors  # noqa: B018
        result.score("el2n")

    def corrupt_scores(ws):
        folder = ws.copy_of(ws.probe)
        for arrow in (folder / "scores").glob("*.arrow"):
            arrow.write_bytes(arrow.read_bytes()[:100])
        ProbeResult.load(folder).score("el2n")

    def shifted_index(ws):
        folder = ws.copy_of(ws.probe)
        scores = datasets.load_from_disk(str(ws.probe / "scores"))
        import shutil

        shutil.rmtree(folder / "scores")
        scores.map(lambda r: {"index": 0}).save_to_disk(str(folder / "scores"))
        ProbeResult.load(folder).score("el2n")

    def mixed_sizes(ws):
        import PIL.Image

        def png(size):
            buffer = io.BytesIO()
            PIL.Image.fromarray(np.zeros(size, np.uint8)).save(buffer, format="PNG")
            return {"bytes": buffer.getvalue(), "path": None}

        data = image_dataset([0, 1, 2, 3] * 4, images=[png((8, 8))] * 15 + [png((9, 7))])
        run_probe(data, data, ProbeConfig("test_resnet", epochs=1), ws.new("probe"))

    def empty(ws):
        data = image_dataset([0, 1]).select([])
        run_probe(data, small(), ProbeConfig("test_resnet", epochs=1), ws.new("probe"))

    def digits_cli(ws, *extra, output=None):
        cli("probe", "--dataset", "digits", "--model", "test_resnet", "--epochs", "1",
            *extra, "--output", output or ws.new("probe"))  # fmt: skip

    def other_data_same_folder(ws):
        from hf_drop.data.sources import digits_splits

        splits = digits_splits()
        other = datasets.DatasetDict(
            {"train": within_class_permutation(splits["train"]).flatten_indices(),
             "test": splits["test"]}
        )  # fmt: skip
        path = ws.new("digits-permuted")
        other.save_to_disk(str(path))
        folder = ws.copy_of(ws.probe)
        cli("probe", "--dataset", path, "--model", "test_resnet", "--epochs", "1",
            "--embeddings", "--output", folder)  # fmt: skip

    return [
        Case("probe", "result folder that is empty", lambda ws: ProbeResult.load(ws.new()),
             FileNotFoundError, "no probe result"),
        Case("probe", "truncated probe_config.json",
             lambda ws: corrupt(ws, "probe_config.json"), ValueError, "probe_config.json"),
        Case("probe", "empty class_metrics.json",
             lambda ws: corrupt(ws, "class_metrics.json", b""), ValueError, "class_metrics.json"),
        Case("probe", "corrupted Arrow file of the scores", corrupt_scores, ValueError, "scores"),
        Case("probe", "scores whose index column is all zeros", shifted_index, ValueError,
             "does not name each of the"),
        Case("probe", "--lr nan", lambda ws: digits_cli(ws, "--lr", "nan"), CliRefusal, "lr"),
        Case("probe", "--lr inf", lambda ws: digits_cli(ws, "--lr", "inf"), CliRefusal, "lr"),
        Case("probe", "--seed -1", lambda ws: digits_cli(ws, "--seed", "-1"), CliRefusal, "seed"),
        Case("probe", "--epochs 0", lambda ws: digits_cli(ws, "--epochs", "0"), CliRefusal,
             "epochs must be a positive int"),
        Case("probe", "--batch-size 0", lambda ws: digits_cli(ws, "--batch-size", "0"),
             CliRefusal, "batch_size must be a positive int"),
        Case("probe", "--score-epoch beyond the schedule",
             lambda ws: digits_cli(ws, "--score-epoch", "5"), CliRefusal, "score_epoch"),
        Case("probe", "--output onto the user's folder",
             lambda ws: digits_cli(ws, output=ws.user), CliRefusal, "not empty"),
        Case("probe", "--output onto a file",
             lambda ws: digits_cli(ws, output=ws.user / "notes.txt"), CliRefusal, "notes.txt"),
        Case("probe", "--output onto a saved subset",
             lambda ws: digits_cli(ws, output=ws.subset), CliRefusal, "subset"),
        Case("probe", "finished folder rerun on another dataset of the same size",
             other_data_same_folder, CliRefusal, "another dataset"),
        Case("probe", "unknown dataset name", lambda ws: cli(
            "probe", "--dataset", "no/such-dataset", "--model", "test_resnet", "--epochs", "1",
            "--output", ws.new()), CliRefusal, "could not load dataset 'no/such-dataset'"),
        Case("probe", "unknown split", lambda ws: digits_cli(ws, "--split", "dev"), CliRefusal,
             "--split 'dev' is not a split"),
        Case("probe", "unknown image column", lambda ws: digits_cli(ws, "--image-column", "img"),
             CliRefusal, "image column 'img'"),
        Case("probe", "unknown validation split", lambda ws: digits_cli(ws, "--val-split", "val"),
             CliRefusal, "--val-split 'val' is not a split"),
        Case("probe", "unknown model", lambda ws: cli(
            "probe", "--dataset", "digits", "--model", "no_such_model_xyz", "--epochs", "1",
            "--output", ws.new()), CliRefusal, "no_such_model_xyz"),
        Case("probe", "--val-fraction 1.5", lambda ws: digits_cli(ws, "--val-fraction", "1.5"),
             CliRefusal, "fraction must lie strictly between 0 and 1"),
        Case("probe", "a TrainingArguments field the probe cannot honour",
             lambda ws: digits_cli(ws, "--gradient_accumulation_steps", "2"), CliRefusal,
             "the probe trains in its own Accelerate loop and cannot honour them"),
        Case("probe", "--per_device_train_batch_size 0 (transformers' name of --batch-size)",
             lambda ws: digits_cli(ws, "--per_device_train_batch_size", "0"), CliRefusal,
             "batch_size must be a positive int"),
        Case("probe", "--batch-size and --per_device_train_batch_size together",
             lambda ws: digits_cli(ws, "--batch-size", "8", "--per_device_train_batch_size", "8"),
             CliRefusal, "set the same thing: give one of them"),
        Case("probe", "images of different sizes", mixed_sizes, ValueError, "sizes"),
        Case("probe", "photos of many sizes: a short error, no folder left behind",
             lambda ws: leaves_nothing(ws, "probe", photos(ws), "--model", "test_resnet",
                                       "--epochs", "1"), CliRefusal, "pass --image_size HxW"),
        Case("probe", "--image-size 0", lambda ws: digits_cli(ws, "--image-size", "0"),
             CliRefusal, "image_size must be"),
        Case("probe", "an empty training split", empty, ValueError, "empty"),
    ]  # fmt: skip


def splits_subset(ws: Workspace) -> Path:
    """A subset of digits saved with its untouched test split (prune --keep-other-splits)."""
    folder = ws.new("splits")
    cli("prune", "--dataset", "digits", "--class-errors", json.dumps([0.1] * 10), "--density",
        "0.5", "--keep-other-splits", "--output", folder)  # fmt: skip
    return folder


def _prune_cases() -> list[Case]:
    def prune(ws, *extra, output=None):
        cli("prune", "--probe", ws.probe, "--density", "0.5", *extra,
            "--output", output or ws.new("subset"))  # fmt: skip

    def overwrite(ws):
        target = ws.copy_of(ws.subset)
        prune(ws, "--seed", "4", "--overwrite", output=target)
        assert json.loads((target / "pruning.json").read_text())["params"]["seed"] == 4

    def symlinked(ws):
        real = ws.new("real")
        real.mkdir(parents=True)
        link = ws.new("link")
        link.symlink_to(real)
        prune(ws, output=link)
        assert link.is_symlink() and (real / "pruning.json").is_file()

    def hand_errors(ws, errors, *extra):
        cli("prune", "--dataset", "digits", "--class-errors", json.dumps(errors), "--density",
            "0.5", *extra, "--output", ws.new())  # fmt: skip

    def dataset_moved(ws):
        folder = ws.copy_of(ws.probe)
        record = json.loads((folder / "probe_config.json").read_text())
        record["source"].update(name="photos", path=str(ws.root / "moved" / "photos"))
        (folder / "probe_config.json").write_text(json.dumps(record))
        cli("prune", "--probe", folder, "--density", "0.5", "--output", ws.new("subset"))

    return [
        Case("prune", "the probe's local dataset moved: says to pass --dataset",
             dataset_moved, CliRefusal, "Pass --dataset PATH"),
        Case("prune", "--output is the probe folder", lambda ws: prune(ws, output=ws.probe),
             CliRefusal, "probe"),
        Case("prune", "--output is the folder holding the probe and other runs",
             lambda ws: prune(ws, output=ws.probe.parent), CliRefusal, "runs"),
        Case("prune", "--output inside the probe folder",
             lambda ws: prune(ws, output=ws.probe / "inner"), CliRefusal, "probe"),
        Case("prune", "--output is the user's folder", lambda ws: prune(ws, output=ws.user),
             CliRefusal, "not empty"),
        Case("prune", "--output is a previous subset, no --overwrite",
             lambda ws: prune(ws, output=ws.subset), CliRefusal, "--overwrite"),
        Case("prune", "--output is a previous subset, with --overwrite", overwrite),
        Case("prune", "--output is a symlink: written through", symlinked),
        Case("prune", "--strategy-score with --quota drop",
             lambda ws: prune(ws, "--strategy-score", "el2n", "--quota", "drop"), CliRefusal,
             "strategy_scores only applies to quota='strategy'"),
        Case("prune", "--keep k_center without --within", lambda ws: prune(ws, "--keep", "k_center"),
             CliRefusal, "keep='k_center' needs a score"),
        Case("prune", "--keep easy without --within", lambda ws: prune(ws, "--keep", "easy"),
             CliRefusal, "keep='easy' needs a score"),
        Case("prune", "--mode count with --quota proportional",
             lambda ws: prune(ws, "--mode", "count", "--quota", "proportional"), CliRefusal,
             "mode only applies to quota='drop'"),
        Case("prune", "--floor 2", lambda ws: prune(ws, "--floor", "2"), CliRefusal,
             "floor must be a number in [0, 1]"),
        Case("prune", "--floor with --quota drop_paper",
             lambda ws: prune(ws, "--floor", "0.2", "--quota", "drop_paper"), CliRefusal,
             "exactly the paper's Algorithm 1"),
        Case("prune", "--ccs-beta without --keep ccs",
             lambda ws: prune(ws, "--within", "aum", "--ccs-beta", "0.2"), CliRefusal,
             "only apply to keep='ccs'"),
        Case("prune", "--min-per-class with --quota global",
             lambda ws: prune(ws, "--quota", "global", "--min-per-class", "2"), CliRefusal,
             "min_per_class does not apply"),
        Case("prune", "--within an unknown score", lambda ws: prune(ws, "--within", "nope"),
             CliRefusal, "--within 'nope' is not a score"),
        Case("prune", "--density 1.5", lambda ws: prune(ws, "--density", "1.5"), CliRefusal,
             "density"),
        Case("prune", "--seed -1", lambda ws: prune(ws, "--seed", "-1"), CliRefusal,
             "seed must be an int >= 0"),
        Case("prune", "--split with --probe", lambda ws: prune(ws, "--split", "test"), CliRefusal,
             "--split applies to --class-errors"),
        Case("prune", "--with-scores naming an unknown score",
             lambda ws: prune(ws, "--with-scores", "nope"), CliRefusal, "no score ['nope']"),
        Case("prune", "--probe of an unfinished run",
             lambda ws: cli("prune", "--probe", ws.user, "--density", "0.5", "--output", ws.new()),
             CliRefusal, "no probe_config.json"),
        Case("prune", "--class-errors without --dataset",
             lambda ws: cli("prune", "--class-errors", "[0.1]", "--density", "0.5", "--output",
                            ws.new()), CliRefusal, "--class-errors needs --dataset"),
        Case("prune", "--class-errors with too few classes",
             lambda ws: hand_errors(ws, [0.1, 0.2]), CliRefusal, "class_errors has shape (2,)"),
        Case("prune", "--class-errors above 1", lambda ws: hand_errors(ws, [2.0] * 10),
             CliRefusal, "class_errors must lie in [0, 1]"),
        Case("prune", "--class-errors with --with-scores",
             lambda ws: hand_errors(ws, [0.1] * 10, "--with-scores"), CliRefusal,
             "--with-scores needs --probe"),
        Case("prune", "--keep-other-splits with --with-scores",
             lambda ws: prune(ws, "--keep-other-splits", "--with-scores"), CliRefusal,
             "--with-scores adds score columns to the pruned split only"),
        Case("prune", "--keep-other-splits of a slice",
             lambda ws: hand_errors(ws, [0.1] * 10, "--split", "train[:100]",
                                    "--keep-other-splits"),
             CliRefusal, "is not one split of"),
    ]  # fmt: skip


def _hub_cases() -> list[Case]:
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


def _train_cases() -> list[Case]:
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


def _metric_cases() -> list[Case]:
    def metric():
        import evaluate

        return evaluate.load(
            str(Path(__file__).parents[1] / "hf_drop/evaluation/metrics/class_accuracy")
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


def _source_cases() -> list[Case]:
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


def _stream_and_group_cases() -> list[Case]:
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


def _core_cases() -> list[Case]:
    """The one input layer, the records of a fit, the rows a fit keeps, and streams at the
    seams (issue 17): each defect class, tried several ways."""
    import pandas as pd

    from hf_drop import DRoPFilter
    from hf_drop.core import rules as R
    from hf_drop.core.uncertainty import ClassErrors, class_errors_from_predictions
    from hf_drop.hub import export, load_pruned
    from hf_drop.pruning.artifacts import save_subset
    from hf_drop.pruning.record import read_record

    by_name = dict(zip(CLASS_NAMES, ERRORS, strict=True))

    def same_rows_as_dict(errors, support=None):
        def check(_):
            got = DRoPFilter(0.5, class_errors=errors).fit(small())
            want = DRoPFilter(0.5, class_errors=by_name, class_support=support).fit(small())
            assert got.indices_.tolist() == want.indices_.tolist()
            assert got.class_errors_.tolist() == want.class_errors_.tolist()

        return check

    def digit_labels(num_classes=12):
        labels = np.arange(num_classes * 5) % num_classes
        names = [str(k) for k in range(num_classes)]
        data = datasets.Dataset.from_dict({"label": [str(v) for v in labels]})
        return data, names  # string labels: classes sorted as text, "0", "1", "10", "11", "2"...

    def digit_keys(keys_as):
        data, _names = digit_labels()
        errors = {keys_as(k): 0.05 + 0.05 * k for k in range(12)}
        return DRoPFilter(0.5, class_errors=errors).fit(data)

    def digit_names_by_name(_):
        drop = digit_keys(str)
        names = drop.classes_
        assert names[2] == "10" and drop.class_errors_[2] == 0.05 + 0.05 * 10

    def numbers(**kwargs):
        def check(_):
            got = DRoPFilter(**({"density": 0.5, "class_errors": ERRORS} | kwargs)).fit(small())
            plain = {k: v.item() for k, v in kwargs.items()}
            want = DRoPFilter(**({"density": 0.5, "class_errors": ERRORS} | plain)).fit(small())
            assert got.indices_.tolist() == want.indices_.tolist()

        return check

    def set_after_fit(action):
        def check(_):
            drop, data = fitted()
            drop.set_params(density=0.2)
            action(drop, data)

        return check

    def mutated_errors(_):
        errors = dict(by_name)
        drop = DRoPFilter(0.5, class_errors=errors).fit(small())
        before = drop.provenance()
        errors["tshirt"] = 0.9
        assert drop.provenance()["params"] == before["params"]
        assert drop.provenance()["params"]["class_errors"]["tshirt"] == 0.1

    def mutated_array(_):
        errors = np.array(ERRORS)
        drop = DRoPFilter(0.5, class_errors=errors).fit(small())
        errors[0] = 0.9
        assert drop.provenance()["params"]["class_errors"][0] == 0.1

    def save_other(other_kwargs, make_subset=None):
        def check(workspace):
            a, data = fitted()
            b = DRoPFilter(0.5, class_errors=ERRORS, **other_kwargs).fit(data)
            subset = make_subset(a, data) if make_subset else a.apply(data)
            save_subset(subset, workspace.new("subset"), b)

        return check

    def refit_records_new(_):
        drop, data = fitted()
        drop.set_params(density=0.2).fit(data)
        record = drop.provenance()
        assert record["params"]["density"] == 0.2 and record["num_kept"] == len(drop.indices_) == 40

    def broken_record(change):
        def check(workspace):
            folder = workspace.copy_of(workspace.subset)
            record = json.loads((folder / "pruning.json").read_text())
            change(record)
            (folder / "pruning.json").write_text(json.dumps(record))
            read_record(folder / "pruning.json")

        return check

    def streamed(**kwargs):
        data = small().add_column("id", list(range(200)))
        drop = DRoPFilter(0.5, class_errors=ERRORS, id_column="id", **kwargs)
        return drop.fit(data.to_iterable_dataset(num_shards=2)), data

    def save_stream(workspace):
        drop, data = streamed(stream_mode="exact")
        folder = save_subset(drop.apply(data.to_iterable_dataset()), workspace.new("s"), drop)
        record = read_record(folder / "pruning.json")
        saved = datasets.load_from_disk(str(folder))
        assert record["num_kept"] == len(saved) == int(drop.quotas_.sum())
        assert sorted(pq_ids(folder)) == sorted(saved["id"])

    def pq_ids(folder):
        import pyarrow.parquet as pq

        return pq.read_table(folder / "kept_ids.parquet")["id"].to_pylist()

    def export_stream(workspace):
        drop, data = streamed()
        folder = export(drop.apply(data.to_iterable_dataset()), workspace.new("e"), drop)
        loaded = datasets.load_dataset(str(folder), split="train")
        assert sorted(loaded["id"]) == sorted(drop.apply(data)["id"])

    def export_stream_indices(workspace):
        drop, data = streamed()
        export(drop.apply(data.to_iterable_dataset()), workspace.new("e"), drop, mode="indices")

    def indices_of_shuffled(workspace):
        data = with_ids(small())
        drop = DRoPFilter(0.5, class_errors=ERRORS, id_column="row_id").fit(data)
        subset = drop.apply(data.shuffle(seed=7))
        folder = export(subset, workspace.new("e"), drop, mode="indices")
        rebuilt = load_pruned(folder, data)
        assert rebuilt["row_id"] == subset["row_id"]

    def saved_then_indices(workspace):
        data = with_ids(small())
        drop = DRoPFilter(0.5, class_errors=ERRORS, id_column="row_id").fit(data)
        subset = drop.apply(data.shuffle(seed=8))
        from hf_drop.hub import export_saved

        saved = save_subset(subset, workspace.new("s"), drop)
        folder = export_saved(saved, workspace.new("e"), mode="indices")
        assert sorted(load_pruned(folder, data)["row_id"]) == sorted(subset["row_id"])

    def stream_of(rows, features=None):
        def generate():
            yield from rows

        return datasets.IterableDataset.from_generator(generate, features=features)

    def none_id(_):
        drop, data = streamed()
        features = datasets.Features(
            {"label": data.features["label"], "id": datasets.Value("int64")}
        )
        rows = datasets.Dataset.from_dict({"label": [0, 1], "id": [None, 3]}, features=features)
        list(drop.apply(rows.to_iterable_dataset()))

    def changed_label_type(_):
        drop, _data = streamed()
        rows = [{"label": "tshirt", "id": 1}]
        list(drop.apply(stream_of(rows)))

    def unknown_columns(_):
        drop, _data = streamed()
        list(drop.apply(stream_of([{"label": 0, "ident": 1}])))

    def regrouped(_):
        data = small()
        drop = DRoPFilter(0.5, class_errors=dict.fromkeys(CLASS_NAMES, 0.2), group_column="label",
                          id_column="row_id").fit(with_ids(data))  # fmt: skip
        renamed = with_ids(data).cast_column(
            "label", datasets.ClassLabel(names=["a", "b", "c", "d"])
        )
        drop.apply(renamed)

    def rule_equal(one, other):
        def check(_):
            a = DRoPFilter(0.5, class_errors=ERRORS, **one).fit(small())
            b = DRoPFilter(0.5, class_errors=ERRORS, **other).fit(small())
            assert a.indices_.tolist() == b.indices_.tolist() and a.method == b.method

        return check

    def fit_with(**kwargs):
        return lambda _: DRoPFilter(**({"density": 0.5, "class_errors": ERRORS} | kwargs)).fit(
            small()
        )

    predictions = class_errors_from_predictions(
        [0, 1, 2, 3, 3], [0, 1, 2, 2, 3], class_names=["dress", "pullover", "trouser", "tshirt"]
    )

    def from_predictions_by_name(_):
        drop = DRoPFilter(0.5, class_errors=predictions).fit(small())
        # the dataset's classes are tshirt, trouser, pullover, dress: tshirt is missed once
        assert drop.class_errors_.tolist() == [0.5, 0.0, 0.0, 0.0]

    return [
        # inputs: per-class values by name, wherever names exist
        Case("inputs", "a pandas Series of errors, in another order, by name",
             same_rows_as_dict(pd.Series(by_name).iloc[::-1])),
        Case("inputs", "a pandas Series indexed by class id", same_rows_as_dict(
            pd.Series(ERRORS[::-1], index=[3, 2, 1, 0]))),
        Case("inputs", "a ClassErrors with its names in another order", same_rows_as_dict(
            ClassErrors.from_counts([2, 3, 4, 1], [10] * 4, names=["pullover", "dress",
                                                                      "trouser", "tshirt"]),
            support={"dress": 10, "pullover": 10, "trouser": 10, "tshirt": 10})),
        Case("inputs", "class_errors_from_predictions(class_names=) read by name",
             from_predictions_by_name),
        Case("inputs", "a ClassErrors for other classes", fit_with(class_errors=ClassErrors
             .from_counts([1, 2], [10, 10], names=["cat", "dog"])), ValueError,
             "ClassErrors for classes ['cat', 'dog']"),
        Case("inputs", "int keys on digit-string class names that sort as text",
             lambda _: digit_keys(int), ValueError, "is ambiguous"),
        Case("inputs", "str keys on digit-string class names", digit_names_by_name),
        Case("inputs", "a Series of support by class name", lambda _: DRoPFilter(
             0.5, class_errors=ERRORS, class_support=pd.Series(dict.fromkeys(CLASS_NAMES, 20)))
             .fit(small())),
        Case("inputs", "class_errors as a string", fit_with(class_errors="0.1,0.2"), ValueError,
             "class_errors must be a list or array"),
        Case("inputs", "density as numpy float32", numbers(density=np.float32(0.5))),
        Case("inputs", "density as numpy int64 1", lambda _: len(DRoPFilter(np.int64(1),
             class_errors=ERRORS).fit(small()).indices_) == 200),
        Case("inputs", "seed and min_per_class as numpy ints",
             numbers(seed=np.int64(3), min_per_class=np.int32(2))),
        Case("inputs", "floor and strength as numpy floats",
             numbers(floor=np.float64(0.3), strength=np.float32(0.5))),
        Case("inputs", "density as a string", fit_with(density="0.5"), ValueError,
             "density must be a number in [0, 1]"),
        Case("inputs", "missing_error as a string", fit_with(missing_error="0.2"), ValueError,
             "missing_error must lie in [0, 1]"),
        Case("inputs", "shrink as the string 'false'", fit_with(shrink="false"), ValueError,
             "shrink must be True or False"),
        Case("inputs", "seed as a float", fit_with(seed=1.5), ValueError, "seed must be an int"),
        Case("inputs", "an error of True", fit_with(class_errors=[True, 0.1, 0.2, 0.3]),
             ValueError, "must be a number"),
        # records: a snapshot of the fit, never the estimator's later state
        Case("records", "set_params after fit, then apply", set_after_fit(
             lambda drop, data: drop.apply(data)), RuntimeError, "density changed after fit"),
        Case("records", "set_params after fit, then provenance", set_after_fit(
             lambda drop, data: drop.provenance()), RuntimeError, "density changed after fit"),
        Case("records", "set_params after fit, then Dataset.filter", set_after_fit(
             lambda drop, data: data.filter(drop, with_indices=True, batched=True)),
             RuntimeError, "call fit(dataset) again"),
        Case("records", "set_params then fit again: the new record", refit_records_new),
        Case("records", "a class_errors dict changed after fit", mutated_errors),
        Case("records", "a class_errors array changed after fit", mutated_array),
        Case("records", "save_subset with a filter of another seed",
             save_other({"seed": 1}), ValueError, "pass drop.apply(dataset)"),
        Case("records", "save_subset with a filter of another floor", save_other(
             {"floor": 0.2}), ValueError, "pass drop.apply(dataset)"),
        Case("records", "save_subset of a shuffled subset", save_other({}, lambda a, data: a.apply(
             data).shuffle(seed=1)), ValueError, "pass drop.apply(dataset)"),
        Case("records", "a pruning.json without params", broken_record(
             lambda r: r.pop("params")), ValueError, "lacks the field 'params'"),
        Case("records", "a pruning.json with quotas as a string", broken_record(
             lambda r: r.update(quotas="many")), ValueError, 'field \'quotas\' is "many"'),
        Case("records", "a pruning.json from a newer hf-drop", broken_record(
             lambda r: r.update(format_version=99)), ValueError, "upgrade hf-drop"),
        Case("records", "an indices export of an id filter on shuffled rows", indices_of_shuffled),
        Case("records", "a saved shuffled id subset exported as indices", saved_then_indices),
        # streams at the seams
        Case("stream", "a stream subset saved: counted rows, kept ids", save_stream),
        Case("stream", "a pruned stream exported", export_stream),
        Case("stream", "a pruned stream exported as indices", export_stream_indices, ValueError,
             "export mode='full'"),
        Case("stream", "a stream with a missing id", none_id, ValueError,
             "id_column 'id' has 1 missing ids"),
        Case("stream", "a stream whose label column changed type", changed_label_type,
             ValueError, "label column 'label' holds string values"),
        Case("stream", "a stream of unknown features without the id column", unknown_columns,
             ValueError, "has no column(s) ['id']"),
        Case("groups", "apply to a dataset whose group values are renamed", regrouped,
             ValueError, "carry other labels than the fitted rows"),
        # rules as objects
        Case("rules", "a spec string and the older arguments", rule_equal(
             {"quota": "drop(floor=0.3, shrink=false)"}, {"floor": 0.3, "shrink": False})),
        Case("rules", "a rule object and its name with defaults", rule_equal(
             {"quota": R.DRoP()}, {"quota": "drop"})),
        Case("rules", "CCS settings by object and by the older arguments", rule_equal(
             {"within": "el2n", "keep": R.CCS(beta=0.2, strata=10)},
             {"within": "el2n", "keep": "ccs", "ccs_beta": 0.2, "ccs_strata": 10})),
        Case("rules", "a rule setting out of range in a spec", fit_with(quota="drop(floor=2)"),
             ValueError, "floor must be a number in [0, 1]"),
        Case("rules", "a rule object with a setting out of range", lambda _: R.DRoP(strength=-1),
             ValueError, "strength must be a number in [0, 1]"),
        Case("rules", "a spec with a setting the rule lacks", fit_with(quota="drop(flor=0.3)"),
             ValueError, "takes settings ['mode', 'strength', 'floor', 'shrink']"),
        Case("rules", "a rule object with an older setting beside it", fit_with(
             quota=R.DRoP(), floor=0.2), ValueError, "pass quota=DRoP(floor=0.2)"),
        Case("rules", "ccs_beta without keep='ccs'", fit_with(within="el2n", ccs_beta=0.2),
             ValueError, "ccs_beta only apply to keep='ccs'"),
        Case("rules", "a bool setting spelled yes", fit_with(quota="drop(shrink=yes)"),
             ValueError, "must be true or false"),
    ]  # fmt: skip


def _option_file_cases() -> list[Case]:
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


def _records_cases() -> list[Case]:
    """Outputs replace only what hf-drop wrote; every record it reads back (pruning.json,
    probe_config.json, class_metrics.json, metrics.json, the output marker) is checked, field by
    field, with the file named; the report counts each run once, by its settings."""
    from hf_drop.hub import export_saved, export_scores, load_pruned
    from hf_drop.io.files import DamagedFileError
    from hf_drop.io.outputs import KINDS, OUTPUT_MARKER, OutputError, atomic_output, prepare_output
    from hf_drop.probe import ProbeResult

    def digest(folder: Path) -> dict[str, str]:
        return {
            str(p.relative_to(folder)): "dir" if p.is_dir() and not p.is_symlink()
            else hashlib.sha256(p.read_bytes()).hexdigest() if not p.is_symlink() else "link"
            for p in sorted(folder.rglob("*"))
        }  # fmt: skip

    def untouched(folder: Path, call: Callable[[], object]) -> None:
        """``call``, which must be refused, and ``folder`` exactly as it was after it."""
        before = digest(folder)
        try:
            call()
        finally:
            assert digest(folder) == before, f"{folder} was changed"

    def with_user_file(folder: Path, name: str = "mine/notes.txt") -> Path:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("the user's own\n")
        return folder

    def trained(ws) -> Path:
        """One training run on the subset, shared by the cases that read one."""
        if getattr(ws, "trained", None) is None:
            ws.trained = ws.root / "runs" / "train"
            cli("train", "--dataset", ws.subset, "--model", "test_resnet", "--epochs", "1",
                "--eval-from-probe", ws.probe, "--output", ws.trained)  # fmt: skip
        return ws.trained

    # --- overwrite replaces only what hf-drop wrote, for every writer ---

    def any_kind(kind):
        def action(ws):
            folder = ws.new(kind)
            with atomic_output(folder, kind) as tmp:
                (tmp / "part").mkdir()
                (tmp / "part" / "ours.bin").write_bytes(b"ours")
            with_user_file(folder, "part/deep/mine.txt")

            def overwrite():
                with atomic_output(folder, kind, overwrite=True) as tmp:
                    (tmp / "new.bin").write_bytes(b"new")

            untouched(folder, overwrite)

        return action

    def save_over(ws, name):
        from hf_drop import DRoPFilter
        from hf_drop.pruning.artifacts import save_subset

        target = with_user_file(ws.copy_of(ws.subset), name)
        drop = DRoPFilter.from_probe(ProbeResult.load(ws.probe), 0.5, min_per_class=2, seed=3)
        drop.fit(ws.train)
        untouched(target, lambda: save_subset(drop.apply(ws.train), target, drop, overwrite=True))

    def prune_over(ws):
        target = with_user_file(ws.copy_of(ws.subset), "notes.txt")
        untouched(target, lambda: cli("prune", "--probe", ws.probe, "--density", "0.5",
                                      "--seed", "4", "--overwrite", "--output", target))  # fmt: skip

    def export_over(ws):
        target = with_user_file(ws.copy_of(ws.export), "data/mine.parquet")
        untouched(target, lambda: export_saved(ws.subset, target, overwrite=True))

    def scores_export_over(ws):
        target = ws.new("scores-export")
        export_scores(ws.probe, target)
        with_user_file(target, "NOTES.md")
        untouched(target, lambda: export_scores(ws.probe, target, overwrite=True))

    def probe_scores_over(ws):
        from hf_drop.probe.result import write_result

        folder = with_user_file(ws.copy_of(ws.probe), "scores/mine.npy")
        history = [[{"accuracy": 1.0, "recall": [1.0], "support": [1], "train_loss": 0.0}]]
        try:
            write_result(folder, scores={"el2n": np.zeros(2)}, labels=np.zeros(2, np.int64),
                         names=["a"], history=history, class_errors_from="final", record={})  # fmt: skip
        finally:
            assert (folder / "scores" / "mine.npy").read_text() == "the user's own\n"

    def train_over(ws):
        target = with_user_file(ws.copy_of(trained(ws)), "model/mine.txt")
        untouched(target, lambda: cli("train", "--dataset", ws.subset, "--model", "test_resnet",
                                      "--epochs", "1", "--eval-from-probe", ws.probe,
                                      "--overwrite", "--output", target))  # fmt: skip

    def probe_lists_its_files(ws):
        # Written in place over a run (and resumable): its marker still lists every file.
        assert prepare_output(ws.probe, "probe", overwrite=True) == ws.probe.resolve()
        assert "probe_config.json" in json.loads((ws.probe / OUTPUT_MARKER).read_text())["files"]

    def probe_with_user_file(ws):
        folder = with_user_file(ws.copy_of(ws.probe), "checkpoints/mine.pt")
        prepare_output(folder, "probe", overwrite=True)

    def older_marker(ws, extra=None):
        """A subset as an hf-drop that listed no files left it: replaced when it holds only what
        a subset holds."""
        target = ws.copy_of(ws.subset)
        (target / OUTPUT_MARKER).write_text(json.dumps({"kind": "subset"}))

        def prune():
            cli("prune", "--probe", ws.probe, "--density", "0.5", "--seed", "4", "--overwrite",
                "--output", target)  # fmt: skip

        if extra:
            untouched(with_user_file(target, extra), prune)
        prune()
        assert json.loads((target / "pruning.json").read_text())["params"]["seed"] == 4

    def user_link(ws):
        target = ws.copy_of(ws.subset)
        (target / "my-data").symlink_to(ws.user)
        untouched(target, lambda: cli("prune", "--probe", ws.probe, "--density", "0.5",
                                      "--overwrite", "--output", target))  # fmt: skip

    def appears_while_written(ws):
        target = ws.copy_of(ws.subset)

        def overwrite():
            with atomic_output(target, "subset", overwrite=True) as tmp:
                (tmp / "state.json").write_text("{}")
                with_user_file(target, "late.txt")  # added while the new output is written

        try:
            overwrite()
        finally:
            assert (target / "late.txt").is_file() and (target / "pruning.json").is_file()

    def marker(ws, record, user_file=None):
        folder = ws.copy_of(ws.subset)
        if user_file:
            with_user_file(folder, user_file)
        (folder / OUTPUT_MARKER).write_text(json.dumps(record))
        untouched(folder, lambda: prepare_output(folder, "subset", overwrite=True))

    # --- records read back: the file and the field named, never a KeyError ---

    def edited(ws, folder: Path, name: str, change) -> Path:
        target = ws.copy_of(folder)
        path = target / name
        record = json.loads(path.read_text())
        path.write_text(json.dumps(change(record)))
        return target

    def without(*keys):
        def change(record):
            inner = record
            for key in keys[:-1]:
                inner = inner[key]
            del inner[keys[-1]]
            return record

        return change

    def setting(value, *keys):
        def change(record):
            inner = record
            for key in keys[:-1]:
                inner = inner[key]
            inner[keys[-1]] = value
            return record

        return change

    def export_of(ws, change):
        return export_saved(edited(ws, ws.subset, "pruning.json", change), ws.new("export"))

    def probe_of(ws, name, change):
        return ProbeResult.load(edited(ws, ws.probe, name, change))

    def card_counts(ws):
        folder = ws.copy_of(ws.export)
        card = (folder / "README.md").read_text()
        line = next(x for x in card.splitlines() if x.startswith("  num_kept: "))
        (folder / "README.md").write_text(card.replace(line, f"{line[:12]}'{line[12:]}'"))
        return load_pruned(folder, source=ws.train)

    # --- the report: each run once, grouped by every setting that differs ---

    def report(ws, *runs):
        from hf_drop.evaluation.report import load_runs, summarize

        return summarize(load_runs(runs))

    def run_like(ws, change):
        return edited(ws, trained(ws), "metrics.json", change)

    def other_settings(ws):
        other = run_like(ws, lambda r: r | {"run_id": "other", "training_args": r["training_args"]
                                            | {"lr_scheduler_type": "cosine"}})  # fmt: skip
        table = report(ws, trained(ws), other)
        assert len(table) == 2 and set(table["runs"]) == {1}
        assert "training_args.lr_scheduler_type" in " ".join(table.index.get_level_values(2))

    def seeds(ws):
        other = run_like(ws, lambda r: r | {"run_id": "seed-1", "accuracy": 0.5,
                                            "config": r["config"] | {"seed": 1}})  # fmt: skip
        table = report(ws, trained(ws), other)
        assert list(table["runs"]) == [2] and table.index.nlevels == 2

    def linked_twice(ws):
        link = ws.new("link")
        link.symlink_to(trained(ws))
        report(ws, trained(ws), link)

    def card_text(ws):
        text = (trained(ws) / "model" / "README.md").read_text()
        pruning = json.loads((ws.subset / "pruning.json").read_text())
        assert f"it keeps {pruning['num_kept']} of the {pruning['num_rows']} rows" in text
        assert "None" not in text.split("## Training data")[1].split("##")[0]

    def card_of_older_record(ws):
        from hf_drop.train.card import model_card

        record = json.loads((trained(ws) / "metrics.json").read_text())
        del record["provenance"]["num_kept"]
        text = str(model_card(record))
        assert "it keeps part of the rows" in text and "None of the" not in text

    return [
        *[Case("outputs", f"overwrite of a previous {kind} output holding a user's file",
               any_kind(kind), OutputError, "part/deep/") for kind in KINDS],
        Case("outputs", "save_subset overwrite=True over a subset holding a user's file",
             lambda ws: save_over(ws, "notes.txt"), OutputError, "notes.txt, which hf-drop did"),
        Case("outputs", "save_subset overwrite=True over a user's folder inside a subset",
             lambda ws: save_over(ws, "mine/deep/er/notes.txt"), OutputError, "mine/"),
        Case("outputs", "prune --overwrite over a subset holding a user's file", prune_over,
             CliRefusal, "notes.txt"),
        Case("outputs", "export_saved overwrite=True over an export with a user's shard",
             export_over, OutputError, "data/mine.parquet"),
        Case("outputs", "export_scores overwrite=True over one holding a user's file",
             scores_export_over, OutputError, "NOTES.md"),
        Case("outputs", "a probe's score table rewritten over a user's file in scores/",
             probe_scores_over, OutputError, "mine.npy"),
        Case("outputs", "train --overwrite over a run holding a user's file in model/",
             train_over, CliRefusal, "model/mine.txt"),
        Case("outputs", "a probe run written in place lists every file it wrote",
             probe_lists_its_files),
        Case("outputs", "overwrite of a probe run holding a user's file in checkpoints/",
             probe_with_user_file, OutputError, "checkpoints/mine.pt"),
        Case("outputs", "overwrite of a subset whose older marker lists no files",
             older_marker),
        Case("outputs", "overwrite of an older-marker subset holding a user's file",
             lambda ws: older_marker(ws, "extra.csv"), CliRefusal, "did not list its files"),
        Case("outputs", "overwrite of a subset holding the user's symlink", user_link,
             CliRefusal, "my-data"),
        Case("outputs", "a user's file added while the new output is written",
             appears_while_written, OutputError, "late.txt"),
        Case("outputs", "a marker of an unknown kind", lambda ws: marker(ws, {"kind": "weird"}),
             OutputError, "hf-drop 'weird' output"),
        Case("outputs", "a marker whose kind is not a string", lambda ws: marker(ws, {"kind": 5}),
             OutputError, "is not a previous"),
        Case("outputs", "a marker whose files are not a list, over a user's file",
             lambda ws: marker(ws, {"kind": "subset", "files": "all"}, "mine.txt"), OutputError,
             "mine.txt, which is not a file an hf-drop subset writes"),
        Case("records", "pruning.json without params",
             lambda ws: export_of(ws, without("params")), DamagedFileError,
             "pruning.json (how the subset was made) lacks the field 'params'"),
        Case("records", "pruning.json without params.seed",
             lambda ws: export_of(ws, without("params", "seed")), DamagedFileError,
             "'params.seed'"),
        Case("records", "pruning.json with a density that is text",
             lambda ws: export_of(ws, setting("0.5", "params", "density")), DamagedFileError,
             "'params.density' is \"0.5\", not a number"),
        Case("records", "pruning.json of another tool",
             lambda ws: export_of(ws, lambda r: {"pruned": True}), DamagedFileError,
             "'method', 'params'"),
        Case("records", "pruning.json from a newer hf-drop",
             lambda ws: export_of(ws, setting(99, "format_version")), DamagedFileError,
             "written by a newer hf-drop"),
        Case("records", "probe_config.json without source",
             lambda ws: probe_of(ws, "probe_config.json", without("source")), DamagedFileError,
             "probe_config.json (the probe's configuration) lacks the field 'source'"),
        Case("records", "probe_config.json whose row count is text",
             lambda ws: probe_of(ws, "probe_config.json", setting("9", "source", "num_rows")),
             DamagedFileError, "'source.num_rows'"),
        Case("records", "prune --probe whose probe_config.json has no config",
             lambda ws: cli("prune", "--probe", edited(ws, ws.probe, "probe_config.json",
                            without("config")), "--density", "0.5", "--output", ws.new()),
             CliRefusal, "'config'"),
        Case("records", "class_metrics.json with a class without its error",
             lambda ws: probe_of(ws, "class_metrics.json", without("classes", 0, "error")),
             DamagedFileError, "'classes[0].error'"),
        Case("records", "class_metrics.json of another tool",
             lambda ws: probe_of(ws, "class_metrics.json", lambda r: {"f1": 0.3}),
             DamagedFileError, "lacks the field 'classes'"),
        Case("records", "metrics.json of another tool",
             lambda ws: report(ws, run_like(ws, lambda r: {"eval_accuracy": 0.9})),
             DamagedFileError, "metrics.json (a training run's record) lacks the fields"),
        Case("records", "metrics.json whose accuracy is text",
             lambda ws: report(ws, run_like(ws, setting("0.9", "accuracy"))), DamagedFileError,
             "'accuracy' is \"0.9\""),
        Case("records", "a card whose num_kept is text", card_counts, ValueError,
             "not counts"),
        Case("report", "hf-drop report RUN RUN",
             lambda ws: cli("report", trained(ws), trained(ws), "--output",
                            ws.new("r.png")), CliRefusal, "is given twice"),
        Case("report", "the same run through a symlink", linked_twice, ValueError,
             "is given twice"),
        Case("report", "a copy of a run's folder",
             lambda ws: report(ws, trained(ws), ws.copy_of(trained(ws))), ValueError,
             "is the same run as"),
        Case("report", "runs that differ in a training setting are not averaged", other_settings),
        Case("report", "runs that differ only in their seed are averaged", seeds),
        Case("card", "the model card says how many rows the subset keeps", card_text),
        Case("card", "a record without num_kept never says None", card_of_older_record),
    ]  # fmt: skip


def _seam_cases() -> list[Case]:
    """The seams a fresh adversarial sweep found after the core split: scores as pandas
    Series, ids that change or repeat, parts of a subset, records of another subset, rules
    given twice or returning nonsense, group names that collide."""
    import dataclasses
    from decimal import Decimal

    import pandas as pd

    from hf_drop import DRoPFilter
    from hf_drop.core import rules as R
    from hf_drop.core.uncertainty import ClassErrors, class_errors_from_predictions
    from hf_drop.hub import export
    from hf_drop.pruning.artifacts import save_subset

    def same_rows(one, other):
        def check(_):
            a = DRoPFilter(**({"density": 0.5, "class_errors": ERRORS} | one)).fit(
                with_ids(small())
            )
            b = DRoPFilter(**({"density": 0.5, "class_errors": ERRORS} | other)).fit(
                with_ids(small())
            )
            assert a.indices_.tolist() == b.indices_.tolist()

        return check

    scores = small()["el2n"]
    by_value = pd.Series(scores).sort_values()
    by_id = pd.Series(scores, index=range(1000, 1200)).sample(frac=1, random_state=0)

    def fit_with(**kwargs):
        return lambda _: DRoPFilter(**({"density": 0.5, "class_errors": ERRORS} | kwargs)).fit(
            with_ids(small())
        )

    def streamed(ids=None, mode="approximate"):
        data = small().add_column("id", list(range(200)) if ids is None else ids)
        drop = DRoPFilter(0.5, class_errors=ERRORS, id_column="id", stream_mode=mode)
        return drop, data

    def string_ids(_):
        drop, data = streamed()
        drop.fit(data.to_iterable_dataset())
        cast = data.cast_column("id", datasets.Value("string"))
        list(drop.apply(cast.to_iterable_dataset()))

    def repeated_ids(mode):
        def check(_):
            drop, data = streamed(ids=[7] * 200, mode=mode)
            drop.fit(data.to_iterable_dataset())

        return check

    def part_of_stream(mode, take):
        def check(workspace):
            drop, data = streamed(mode=mode)
            stream = data.to_iterable_dataset()
            save_subset(drop.fit(stream).apply(stream).take(take), workspace.new("s"), drop)

        return check

    def other_record(_workspace, indices=False):
        a, data = fitted()
        b = DRoPFilter(0.5, class_errors=ERRORS, seed=1).fit(data)
        kept = a.indices_ if indices else None
        export(a.apply(data), _workspace.new("e"), b.provenance(), kept_indices=kept,
               mode="indices" if indices else "full")  # fmt: skip

    def wrong_indices(workspace):
        a, data = fitted()
        export(a.apply(data), workspace.new("e"), a.provenance(), mode="indices",
               kept_indices=np.sort((a.indices_ + 1) % 200))  # fmt: skip

    def group_names(_):
        data = small().add_column("frame", [i % 2 for i in range(200)])
        errors = ClassErrors.from_counts([1] * 8, [10] * 8,
                                         names=[f"{c}/{f}" for c in ["tshrt", *CLASS_NAMES[1:]]
                                                for f in (0, 1)])  # fmt: skip
        DRoPFilter(0.5, class_errors=errors, group_column=["label", "frame"],
                   missing_error=0.2).fit(data)  # fmt: skip

    def overwrite_string(workspace):
        drop, data = fitted()
        folder = workspace.copy_of(workspace.subset)
        save_subset(drop.apply(data), folder, drop, overwrite="false")

    def edited_card(workspace):
        import os

        drop, data = fitted()
        folder = export(drop.apply(data), workspace.new("e"), drop)
        card = folder / "README.md"
        card.write_text(card.read_text() + "\nmy own notes\n")
        os.utime(card, ns=(1, 1))  # even with its time set back: the size differs
        export(drop.apply(data), folder, drop, overwrite=True)

    @dataclasses.dataclass(frozen=True)
    class Everything(R.QuotaRule):
        name: ClassVar[str] = "everything_sweep"
        help: ClassVar[str] = "keeps every row whatever the density (a broken rule)"

        def counts(self, inputs):
            return inputs.sizes.copy()

    @dataclasses.dataclass(frozen=True)
    class Capped(R.QuotaRule):
        name: ClassVar[str] = "capped_sweep"
        help: ClassVar[str] = "proportional, with an optional cap and a tag"
        cap: float | None = None
        tag: str = "a,b"

        def counts(self, inputs):
            from hf_drop.core.quotas import proportional_quotas

            return proportional_quotas(inputs.sizes, inputs.density)

    def registered(rule, action):
        def check(workspace):
            R.register_quota_rule(rule)
            try:
                return action(workspace)
            finally:
                del R.QUOTA_RULES[rule.name]

        return check

    def broken_rule(_):
        DRoPFilter(0.5, quota="everything_sweep").fit(small())

    def optional_setting(_):
        rule = R.quota_rule("capped_sweep(cap=0.8, tag='x, (y)')")
        assert rule.cap == 0.8 and rule.tag == "x, (y)"
        assert R.quota_rule(rule.spec()) == rule

    def slashed_groups(_):
        data = small().add_column("p", ["a/b" if i % 2 else "a" for i in range(200)])
        data = data.add_column("q", ["c" if i % 2 else "b/c" for i in range(200)])
        DRoPFilter(0.5, quota="proportional", group_column=["p", "q"]).fit(data)

    def slashed_but_distinct(_):  # Fashion-MNIST's "T-shirt/top" with a frame column
        data = small().add_column("where", [f"x/{i % 2}" for i in range(200)])
        drop = DRoPFilter(0.5, quota="proportional", group_column=["label", "where"]).fit(data)
        assert "tshirt/x/0" in drop.classes_ and len(drop.classes_) == 8

    def id_filter_on_unknown_stream(_):
        data = with_ids(small())
        drop = DRoPFilter(0.5, class_errors=ERRORS, id_column="row_id").fit(data)

        def rows():
            yield from ({"label": r["label"]} for r in data.select_columns(["label"]))

        list(drop.apply(datasets.IterableDataset.from_generator(rows)))

    def stream_filter_on_dict(_):
        drop, data = streamed()
        drop.fit(data.to_iterable_dataset())
        pruned = drop.apply(datasets.DatasetDict({"train": data, "test": data.select(range(10))}))
        assert len(pruned["test"]) == 10 and len(pruned["train"]) < 200

    def card_of(make):
        def check(workspace):
            from huggingface_hub import DatasetCard

            drop, subset = make(workspace)
            folder = export(subset, workspace.new("e"), drop)
            (command,) = DatasetCard.load(folder / "README.md").data.to_dict()["drop"]["reproduce"]
            assert command.startswith("# not rebuilt by a command")

        return check

    def stream_card(_):
        drop, data = streamed()
        stream = data.to_iterable_dataset()
        return drop, drop.fit(stream).apply(stream)

    def overridden_card(workspace):
        drop = DRoPFilter.from_probe(workspace.probe, 0.5, class_errors=[0.5] * 10)
        return drop, drop.fit(workspace.train).apply(workspace.train)

    def odd_tags(workspace):
        drop, data = fitted()
        export(drop.apply(data), workspace.new("e"), drop, tags=[1, None])

    def digit_class_errors(_):
        data = datasets.Dataset.from_dict({"label": [str(k % 12) for k in range(60)]})
        errors = class_errors_from_predictions(list(range(12)), [0] * 12)
        DRoPFilter(0.5, class_errors=errors).fit(data)

    return [
        Case("seams", "scores as a Series sorted by value: read by index", same_rows(
             {"within": by_value}, {"within": "el2n"})),
        Case("seams", "scores as a Series indexed by id, shuffled", same_rows(
             {"within": by_id, "id_column": "row_id"}, {"within": "el2n", "id_column": "row_id"})),
        Case("seams", "strategy scores as a Series sorted by value", same_rows(
             {"quota": "strategy", "strategy_scores": by_value},
             {"quota": "strategy", "strategy_scores": "el2n"})),
        Case("seams", "scores as a Series with an index of other rows", fit_with(
             within=pd.Series(scores, index=range(5, 205))), ValueError,
             "within is a pandas Series whose index is not the row positions"),
        Case("seams", "a ClassErrors named by ids on digit class names", digit_class_errors,
             ValueError, "it is ambiguous; build it with class_names="),
        Case("seams", "errors as a Series naming a class twice", fit_with(class_errors=pd.Series(
             [0.1, 0.2, 0.3, 0.4, 0.9], index=[*CLASS_NAMES, "tshirt"])), ValueError,
             "gives class(es) ['tshirt'] more than once"),
        Case("seams", "a stream whose ids became strings", string_ids, ValueError,
             "fitted on int ids"),
        Case("seams", "a stream whose ids repeat (exact)", repeated_ids("exact"), ValueError,
             "repeats ids"),
        Case("seams", "a stream whose ids repeat (approximate)", repeated_ids("approximate"),
             ValueError, "repeats ids"),
        Case("seams", "the label column as id column", fit_with(id_column="label"), ValueError,
             "id_column 'label' is the label column"),
        Case("seams", "part of an exact stream subset saved", part_of_stream("exact", 5),
             ValueError, "it is part of the filter's kept rows"),
        Case("seams", "part of an approximate stream subset saved",
             part_of_stream("approximate", 10), ValueError, "give or take its Binomial spread"),
        Case("seams", "export with the record of a filter of another seed", other_record,
             ValueError, "belongs to another subset"),
        Case("seams", "an indices export with the record of another seed",
             lambda ws: other_record(ws, indices=True), ValueError, "belongs to another subset"),
        Case("seams", "an indices export with indices of other rows", wrong_indices, ValueError,
             "kept_indices are not the kept rows' source positions"),
        Case("seams", "group errors with a misspelled group", group_names, ValueError,
             "ClassErrors for groups ['tshrt/0', 'tshrt/1']"),
        Case("seams", "a setting twice in one spec", fit_with(quota="drop(floor=0.3, floor=0.9)"),
             ValueError, "gives floor twice"),
        Case("seams", "a spec setting and its older argument", fit_with(
             quota="drop(floor=0.3)", floor=0.8), ValueError, "floor is given twice"),
        Case("seams", "a CCS spec and ccs_beta", fit_with(within="el2n", keep="ccs(beta=0.2)",
             ccs_beta=0.4), ValueError, "beta is given twice"),
        Case("seams", "the CLI: a spec setting and its flag", lambda ws: cli(
             "prune", "--probe", ws.probe, "--density", "0.5", "--quota", "drop(floor=0.3)",
             "--floor", "0.8", "--output", ws.new()), CliRefusal, "floor is given twice"),
        Case("seams", "the CLI: class errors naming a class twice", lambda ws: cli(
             "prune", "--dataset", "digits", "--class-errors", '{"0": 0.1, "0": 0.2}',
             "--density", "0.5", "--output", ws.new()), CliRefusal, "more than once"),
        Case("seams", "overwrite='false' in Python", overwrite_string, ValueError,
             "overwrite must be True or False"),
        Case("seams", "overwrite of an export whose card was edited", edited_card, ValueError,
             "README.md, which hf-drop wrote but was changed since"),
        Case("seams", "a registered rule that keeps every row", registered(Everything, broken_rule),
             ValueError, "sum to 200, but density 0.5 keeps 100"),
        Case("seams", "a rule with an optional and a text setting, by spec",
             registered(Capped, optional_setting)),
        Case("seams", "group values whose '/' make two groups one name", slashed_groups,
             ValueError, "give two groups the same name ['a/b/c']"),
        Case("seams", "group values holding '/' that stay distinct", slashed_but_distinct),
        Case("seams", "an id filter on a stream of unknown features without ids",
             id_filter_on_unknown_stream, ValueError, "has no column 'row_id'"),
        Case("seams", "a stream fit applied to a DatasetDict", stream_filter_on_dict),
        Case("seams", "CCS beta of 1", lambda _: R.CCS(beta=1), ValueError, "ccs beta"),
        Case("seams", "density as a Decimal", same_rows({"density": Decimal("0.5")}, {})),
        Case("seams", "export tags that are not strings", odd_tags, ValueError,
             "tags must be a list of non-empty strings"),
        Case("seams", "the card of a stream subset", card_of(stream_card)),
        Case("seams", "the card of a probe filter with errors given by hand",
             card_of(overridden_card)),
    ]  # fmt: skip


CASES = [
    *_quota_cases(),
    *_select_cases(),
    *_filter_cases(),
    *_probe_cases(),
    *_prune_cases(),
    *_hub_cases(),
    *_train_cases(),
    *_metric_cases(),
    *_source_cases(),
    *_stream_and_group_cases(),
    *_core_cases(),
    *_option_file_cases(),
    *_seam_cases(),
    *_records_cases(),
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("reliability"))


def test_the_matrix_has_at_least_100_cases_over_every_area():
    assert len(CASES) >= 100
    assert {c.area for c in CASES} >= {"quotas", "filter", "probe", "prune", "hub", "train",
                                       "metric"}  # fmt: skip
    assert len({(c.area, c.name) for c in CASES}) == len(CASES), "case names are unique"


def _marks(case: Case) -> list[pytest.MarkDecorator]:
    # Every case works in the workspace, which holds a CLI probe; one reads the real files.
    real = case.name == "a truncated Fashion-MNIST file"
    return [pytest.mark.slow, *([pytest.mark.needs_fashion_mnist] if real else [])]


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, marks=_marks(c)) for c in CASES],
    ids=[f"{c.area}: {c.name}" for c in CASES],
)
def test_case(case: Case, workspace: Workspace) -> None:
    before = workspace.snapshot()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        with contextlib.redirect_stdout(io.StringIO()):
            if case.refusal is None:
                case.action(workspace)
            else:
                with pytest.raises(case.refusal) as caught:
                    case.action(workspace)
                message = str(caught.value)
                assert case.fragment in message, f"{case.fragment!r} not in {message!r}"
    after = workspace.snapshot()
    changed = [path for path, digest in before.items() if after.get(path) != digest]
    assert not changed, f"pre-existing files changed or removed: {changed[:5]}"


def table() -> str:
    """The README's table: every case and its expected outcome, with the totals."""
    lines = ["| area | case | outcome |", "|---|---|---|"]
    lines += [f"| {c.area} | {c.name} | {c.outcome} |" for c in CASES]
    refused = sum(c.refusal is not None for c in CASES)
    lines.append("")
    lines.append(
        f"{len(CASES)} cases: {refused} clear refusals, {len(CASES) - refused} right results; "
        "every case also checks that no pre-existing file changed."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
