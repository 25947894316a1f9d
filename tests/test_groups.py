"""Groups beyond classes: quotas per group (one column, or combinations of several), selection
within groups, and the same subset as classes when the group column is the label column."""

import dataclasses
import json

import datasets
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hf_drop import DRoPFilter
from hf_drop.data.columns import read_groups


def grouped(n: int = 400, seed: int = 0) -> datasets.Dataset:
    """Labels in 4 classes, a 'frame' that goes with the class 90% of the time, and ids."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    frame = np.where(rng.random(n) < 0.9, labels % 2, 1 - labels % 2)
    features = datasets.Features(
        {
            "label": datasets.ClassLabel(names=["tshirt", "trouser", "pullover", "dress"]),
            "frame": datasets.Value("int64"),
            "place": datasets.Value("string"),
            "score": datasets.Value("float64"),
            "id": datasets.Value("int64"),
        }
    )
    columns = {
        "label": labels,
        "frame": frame,
        "place": np.where(frame == 1, "water", "land").tolist(),
        "score": rng.random(n),
        "id": np.arange(n),
    }
    return datasets.Dataset.from_dict(columns, features=features)


DATA = grouped()


def test_groups_are_the_observed_combinations_named_by_their_values():
    groups = read_groups(DATA, ["label", "place"])
    labels, places = np.asarray(DATA["label"]), np.asarray(DATA["place"])
    names = ["tshirt", "trouser", "pullover", "dress"]
    expected = [f"{names[k]}/{p}" for k, p in zip(labels, places, strict=True)]
    assert [groups.names[g] for g in groups.ids] == expected
    assert groups.names == sorted(set(expected), key=lambda s: (names.index(s.split("/")[0]), s))
    assert read_groups(DATA, "label").names == names


@pytest.mark.parametrize("within", ["random", "score"])
@pytest.mark.parametrize("quota", ["drop", "drop_paper", "proportional", "uniform"])
def test_the_label_column_as_group_column_gives_the_same_subset(quota, within):
    errors = {"tshirt": 0.1, "trouser": 0.3, "pullover": 0.2, "dress": 0.4}
    errors = errors if quota.startswith("drop") else None
    by_class = DRoPFilter(0.4, class_errors=errors, quota=quota, within=within).fit(DATA)
    by_group = DRoPFilter(
        0.4, class_errors=errors, quota=quota, within=within, group_column="label"
    ).fit(DATA)
    assert by_group.indices_.tolist() == by_class.indices_.tolist()
    assert by_group.quotas_.tolist() == by_class.quotas_.tolist()


@settings(max_examples=30, deadline=None)
@given(st.floats(0.05, 0.95), st.integers(0, 1000), st.sampled_from(["random", "score"]))
def test_group_quotas_follow_group_errors_and_selection_stays_within_groups(density, seed, within):
    groups = read_groups(DATA, ["label", "frame"])
    rng = np.random.default_rng(seed)
    errors = dict(zip(groups.names, rng.uniform(0.05, 0.6, len(groups.names)), strict=True))
    drop = DRoPFilter(
        density, class_errors=errors, group_column=["label", "frame"], seed=seed, within=within
    ).fit(DATA)
    assert drop.classes_ == groups.names
    kept = np.bincount(groups.ids[drop.indices_], minlength=len(groups.names))
    assert kept.tolist() == drop.quotas_.tolist()
    assert drop.quotas_.sum() == int(np.floor(density * len(DATA) + 0.5))
    if within == "score":  # the highest scores of each group
        scores = np.asarray(DATA["score"])
        for g in range(len(groups.names)):
            mine = np.flatnonzero(groups.ids == g)
            chosen = np.intersect1d(mine, drop.indices_)
            rest = np.setdiff1d(mine, chosen)
            assert not len(rest) or not len(chosen) or scores[chosen].min() >= scores[rest].max()


def test_groups_in_report_method_apply_and_dataset_filter():
    groups = read_groups(DATA, ["label", "place"])
    errors = {name: 0.5 if name.endswith("water") else 0.1 for name in groups.names}
    drop = DRoPFilter(0.3, class_errors=errors, group_column=["label", "place"], id_column="id")
    drop.fit(DATA)
    assert drop.method.endswith(" per label+place")
    assert drop.report().index.tolist() == list(range(len(groups.names)))
    expected = sorted(drop.apply(DATA)["id"])
    shuffled = DATA.shuffle(seed=3)
    assert sorted(drop.apply(shuffled)["id"]) == expected
    assert drop.input_columns == ["label", "place", "id"]
    filtered = shuffled.filter(drop, input_columns=drop.input_columns, batched=True)
    assert sorted(filtered["id"]) == expected
    stream = shuffled.to_iterable_dataset(num_shards=3)  # the same rows, streamed
    assert sorted(row["id"] for row in drop.apply(stream)) == expected
    positional = DRoPFilter(0.3, class_errors=errors, group_column=["label", "place"]).fit(DATA)
    by_filter = DATA.filter(
        positional, input_columns=positional.input_columns, with_indices=True, batched=True
    )
    assert by_filter["id"] == positional.indices_.tolist()


def test_group_errors_by_name_and_refusals():
    with pytest.raises(ValueError, match="names class 'tshirt/sky'"):
        DRoPFilter(0.3, class_errors={"tshirt/sky": 0.1}, group_column=["label", "place"]).fit(DATA)
    with pytest.raises(ValueError, match="no error for classes"):
        DRoPFilter(0.3, class_errors={"tshirt/land": 0.1}, group_column=["label", "place"]).fit(
            DATA
        )
    with pytest.raises(ValueError, match="group_column must be a column name"):
        DRoPFilter(0.3, quota="uniform", group_column=["label", "label"]).fit(DATA)
    with pytest.raises(ValueError, match="not a column"):
        DRoPFilter(0.3, quota="uniform", group_column="nope").fit(DATA)
    with pytest.raises(ValueError, match="group_column applies to a Dataset"):
        DRoPFilter(0.3, quota="uniform", group_column="frame", id_column="id").fit(
            DATA.to_iterable_dataset()
        )


def test_group_errors_from_predictions_feed_a_group_filter():
    from hf_drop import class_errors_from_predictions

    groups = read_groups(DATA, ["label", "place"])
    labels = np.asarray(DATA["label"])
    rng = np.random.default_rng(1)
    predictions = np.where(rng.random(len(labels)) < 0.8, labels, (labels + 1) % 4)
    errors = class_errors_from_predictions(
        labels, predictions, groups=groups.ids, group_names=groups.names
    )
    for g, name in enumerate(groups.names):
        mine = groups.ids == g
        assert errors.names[g] == name
        assert errors.support[g] == mine.sum()
        assert errors.errors[g] == pytest.approx(np.mean(predictions[mine] != labels[mine]))
    drop = DRoPFilter(0.3, class_errors=errors, group_column=["label", "place"]).fit(DATA)
    assert drop.class_support_.tolist() == errors.support.tolist()
    with pytest.raises(ValueError, match="groups has 3 values"):
        class_errors_from_predictions(labels, predictions, groups=[0, 1, 2])


def test_the_metric_reports_worst_group_accuracy():
    from hf_drop.evaluation.metrics import class_accuracy_scores, load_class_accuracy

    groups = read_groups(DATA, ["label", "frame"])
    labels = np.asarray(DATA["label"])
    predictions = np.where(np.asarray(DATA["frame"]) == labels % 2, labels, (labels + 1) % 4)
    scores = class_accuracy_scores(
        predictions, labels, 4, groups=groups.ids, group_names=groups.names
    )
    by_group = {
        name: np.mean(predictions[groups.ids == g] == labels[groups.ids == g])
        for g, name in enumerate(groups.names)
    }
    assert scores["worst_group_accuracy"] == min(by_group.values()) == 0.0
    assert all(scores[f"group_accuracy/{n}"] == pytest.approx(v) for n, v in by_group.items())
    assert all(isinstance(v, float) for v in scores.values())
    metric = load_class_accuracy().compute(
        predictions=predictions, references=labels, groups=groups.ids, group_names=groups.names
    )
    assert metric == pytest.approx(scores)
    with pytest.raises(ValueError, match="groups has 2 values"):
        class_accuracy_scores(predictions, labels, groups=[0, 1])


@pytest.fixture(scope="module")
def grouped_probe(tmp_path_factory):
    """A probe on digits with a 'parity' column: groups label x parity, and label alone."""
    from hf_drop.data.sources import digits_splits
    from hf_drop.probe import ProbeConfig, run_probe

    splits = digits_splits()
    train, val = splits["train"].select(range(400)), splits["test"].select(range(200))
    parity = lambda d: d.add_column("parity", [int(y) % 2 for y in d["label"]])  # noqa: E731
    train, val = parity(train), parity(val)
    root = tmp_path_factory.mktemp("grouped")
    config = ProbeConfig(model="test_resnet", epochs=1, batch_size=64, num_inits=2)
    results = {
        "pair": run_probe(
            train,
            val,
            dataclasses.replace(config, group_column=["label", "parity"]),
            root / "pair",
        ),
        "label": run_probe(
            train, val, dataclasses.replace(config, group_column="label"), root / "label"
        ),
    }
    return train, val, results


@pytest.mark.slow
def test_the_probe_measures_group_errors(grouped_probe):
    train, val, results = grouped_probe
    by_label = results["label"]
    groups, classes = by_label.group_errors_with_support, by_label.class_errors_with_support
    assert list(groups.names) == list(classes.names)
    assert groups.support.tolist() == classes.support.tolist()
    assert groups.mistakes.tolist() == classes.mistakes.tolist()
    assert np.allclose(groups.errors, classes.errors, equal_nan=True)
    pair = results["pair"].group_errors_with_support
    assert list(pair.names) == read_groups(val, ["label", "parity"]).names
    assert pair.support.sum() == len(val) and pair.mistakes.sum() > 0
    assert DRoPFilter.from_probe(results["pair"], 0.5).fit(train).classes_ == list(classes.names)


@pytest.mark.slow
def test_a_probe_without_groups_says_so(grouped_probe, tmp_path):
    import json
    import shutil

    from hf_drop.probe import ProbeResult

    folder = tmp_path / "probe"
    shutil.copytree(grouped_probe[2]["label"].folder, folder)
    metrics = json.loads((folder / "class_metrics.json").read_text())
    del metrics["groups"]
    (folder / "class_metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(ValueError, match="measured no group errors"):
        ProbeResult.load(folder).group_errors_with_support  # noqa: B018


@pytest.mark.slow
def test_from_probe_prunes_by_the_probes_groups(grouped_probe):
    train, _, results = grouped_probe
    drop = DRoPFilter.from_probe(results["pair"], 0.5, group_column=["label", "parity"])
    drop.fit(train)
    assert drop.classes_ == read_groups(train, ["label", "parity"]).names
    assert drop.method.endswith("per label+parity")
    # Its provenance (pruning.json, metrics.json) is JSON: the group errors with their counts.
    params = json.loads(json.dumps(drop.provenance()))["params"]
    errors = results["pair"].group_errors_with_support
    assert params["class_errors"]["names"] == list(errors.names)
    assert params["class_errors"]["support"] == errors.support.tolist()
    with pytest.raises(ValueError, match="measured group errors for \\['label', 'parity'\\]"):
        DRoPFilter.from_probe(results["pair"], 0.5, group_column="parity")
