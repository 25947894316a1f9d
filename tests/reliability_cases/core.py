"""Reliability cases of the pruning core: quotas, selection, the filter, the core's inputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))

from conftest import CLASS_NAMES, image_dataset, png_bytes

from .harness import (
    ERRORS,
    Case,
    drop_filter,
    fitted,
    small,
    with_ids,
    within_class_permutation,
)


def quota_cases() -> list[Case]:
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
             ValueError, "mode must be one of ['paper', 'count', 'saturating']"),
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


def select_cases() -> list[Case]:
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


def filter_cases() -> list[Case]:
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


def core_cases() -> list[Case]:
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
