"""DRoPFilter.save / DRoPFilter.load: one JSON file, lossless, fitted or not (pruning.persist)."""

import json

import datasets
import numpy as np
import pandas as pd
import pytest
from conftest import image_dataset

from hf_drop import DRoPFilter, class_errors_from_predictions
from hf_drop.core.rules import CCS, DRoP, Easy
from hf_drop.io.files import DamagedFileError
from hf_drop.io.outputs import OutputError

ERRORS = [0.1, 0.02, 0.3, 0.2]
SIZES = [80, 60, 40, 20]


@pytest.fixture(scope="module")
def data() -> datasets.Dataset:
    """200 rows in 4 classes, with a score, an embedding, string and int ids, and a group."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), SIZES)
    rng.shuffle(labels)
    base = image_dataset(labels, extra={"el2n": rng.random(200).round(6)})
    return (
        base.add_column("emb", rng.normal(size=(200, 3)).tolist())
        .add_column("rid", [f"row-{i}" for i in range(200)])
        .add_column("num", rng.permutation(200).tolist())
        .add_column("site", rng.choice(["a", "b"], 200).tolist())
    )


def _errors_with_support():
    labels = np.repeat(np.arange(4), 25)
    predicted = labels.copy()
    predicted[::7] = (predicted[::7] + 1) % 4
    names = ["tshirt", "trouser", "pullover", "dress"]
    return class_errors_from_predictions(labels, predicted, class_names=names)


# Every kind of parameter value and every kind of fitted rows.
CONFIGS = {
    "default": {"class_errors": ERRORS, "class_support": {0: 25, 1: 25, 2: 25, 3: 20}},
    "paper_dict": {"quota": "drop_paper", "class_errors": {"tshirt": 0.1, "trouser": 0.02,
                                                           "pullover": 0.3, "dress": 0.2}},
    "rule_objects": {"quota": DRoP(floor=0.3, shrink=False), "class_errors": ERRORS,
                     "within": "el2n", "keep": CCS(beta=0.2, strata=5)},
    "easy_array": {"class_errors": np.array(ERRORS), "within": np.linspace(0, 1, 200),
                   "keep": Easy(), "score_name": "ramp"},
    "series_scores": {"class_errors": pd.Series(ERRORS), "within": pd.Series(np.arange(200.0)),
                      "class_support": [25, 25, 25, 25]},
    "proportional": {"quota": "proportional", "min_per_class": 5, "seed": 7},
    "uniform_nan": {"quota": "drop", "class_errors": [0.1, float("nan"), 0.3, 0.2],
                    "missing_error": 0.5},
    "strategy": {"quota": "strategy", "strategy_scores": "el2n"},
    "global": {"quota": "global", "within": "el2n"},
    "k_center": {"class_errors": ERRORS, "within": "emb", "keep": "k_center"},
    "str_ids": {"class_errors": ERRORS, "id_column": "rid"},
    "int_ids": {"class_errors": ERRORS, "id_column": "num", "within": "el2n"},
    "groups": {"quota": "uniform", "group_column": ["label", "site"]},
    "legacy_names": {"class_errors": ERRORS, "mode": "count", "strength": 0.5, "floor": 0.2},
}  # fmt: skip


def _same_subset(a: datasets.Dataset, b: datasets.Dataset) -> bool:
    return a["el2n"] == b["el2n"] and a["label"] == b["label"] and len(a) == len(b)


@pytest.mark.filterwarnings("ignore::hf_drop.QuotaWarning")
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_a_fitted_filter_round_trips(data, tmp_path, name):
    drop = DRoPFilter(0.4, **CONFIGS[name]).fit(data)
    path = drop.save(tmp_path / "filter.json")
    json.loads(path.read_text(), parse_constant=pytest.fail)  # strict JSON: no NaN, no Infinity
    loaded = DRoPFilter.load(path)
    assert _same_subset(loaded.apply(data), drop.apply(data))
    assert loaded.provenance() == drop.provenance()
    assert loaded.report().equals(drop.report())
    assert loaded.method == drop.method and repr(loaded) == repr(drop)
    assert np.array_equal(loaded.quotas_, drop.quotas_)
    # The parameters come back equal, so a refit of the loaded filter makes the same subset.
    assert _same_subset(loaded.fit(data).apply(data), drop.apply(data))


@pytest.mark.parametrize("mode", ["approximate", "exact"])
def test_a_stream_fit_round_trips(data, tmp_path, mode):
    stream = data.select_columns(["label", "rid", "el2n"]).to_iterable_dataset(num_shards=2)
    drop = DRoPFilter(0.4, class_errors=ERRORS, id_column="rid", stream_mode=mode).fit(stream)
    loaded = DRoPFilter.load(drop.save(tmp_path / "stream.json"))
    assert [r["rid"] for r in loaded.apply(stream)] == [r["rid"] for r in drop.apply(stream)]
    assert loaded.provenance() == drop.provenance()


def test_an_unfitted_filter_round_trips_unfitted(tmp_path):
    drop = DRoPFilter(0.3, class_errors=_errors_with_support(), quota="drop(floor=0.1)")
    loaded = DRoPFilter.load(drop.save(tmp_path / "f.json"))
    assert repr(loaded) == repr(drop) and loaded.drop_settings == drop.drop_settings
    with pytest.raises(RuntimeError, match="not fitted"):
        loaded.apply(datasets.Dataset.from_dict({"label": [0]}))


def test_a_loaded_fit_still_refuses_other_rows(data, tmp_path):
    loaded = DRoPFilter.load(DRoPFilter(0.4, class_errors=ERRORS).fit(data).save(tmp_path / "f"))
    with pytest.raises(ValueError, match="fitted on"):
        loaded.apply(data.shuffle(seed=0))
    by_id = DRoPFilter(0.4, class_errors=ERRORS, id_column="rid").fit(data)
    loaded = DRoPFilter.load(by_id.save(tmp_path / "ids.json"))
    assert sorted(loaded.apply(data.shuffle(seed=0))["rid"]) == sorted(by_id.apply(data)["rid"])
    with pytest.raises(ValueError, match="not fitted on"):
        loaded.apply(data.map(lambda row: {"rid": row["rid"] + "x"}))
    loaded.set_params(seed=9)
    with pytest.raises(RuntimeError, match="seed changed after fit"):
        loaded.apply(data)


def test_save_refuses_what_it_cannot_write_faithfully(data, tmp_path):
    stale = DRoPFilter(0.4, class_errors=ERRORS).fit(data).set_params(density=0.5)
    with pytest.raises(RuntimeError, match="density changed after fit"):
        stale.save(tmp_path / "stale.json")
    with pytest.raises(TypeError, match="parameter 'class_errors', a set"):
        DRoPFilter(0.4, class_errors={0.1, 0.2}).save(tmp_path / "set.json")
    assert not list(tmp_path.iterdir())  # nothing written, not even a partial file


def test_save_never_replaces_a_file_unasked(data, tmp_path):
    mine = tmp_path / "notes.json"
    mine.write_text('{"mine": true}')
    with pytest.raises(OutputError, match="exists"):
        DRoPFilter(0.4, class_errors=ERRORS).save(mine)
    assert mine.read_text() == '{"mine": true}'
    DRoPFilter(0.5, class_errors=ERRORS).save(mine, overwrite=True)
    assert DRoPFilter.load(mine).density == 0.5


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"mine": true}', "not a saved DRoPFilter"),
        ('{"format": "hf_drop.DRoPFilter", "format_version": 99}', "upgrade hf-drop"),
        ('{"format": "hf_drop.DRoPFilter", "format_version": 1}', "damaged"),
        ('{"format": "hf_drop.DRoPFilter", "format_version": 1, "params": {"density": '
         '{"pickle": "x"}}}', "damaged"),
        ('{"format": "hf_drop.DRoPFilter", "form', "not valid JSON"),
        ("", "empty"),
    ],
)  # fmt: skip
def test_load_refuses_a_file_that_is_not_a_whole_saved_filter(tmp_path, text, match):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(DamagedFileError, match=match):
        DRoPFilter.load(path)


def test_a_damaged_fit_is_refused_not_half_loaded(data, tmp_path):
    path = DRoPFilter(0.4, class_errors=ERRORS).fit(data).save(tmp_path / "f.json")
    document = json.loads(path.read_text())
    del document["fitted"]["rows"]["indices"]
    path.write_text(json.dumps(document))
    with pytest.raises(DamagedFileError, match="indices"):
        DRoPFilter.load(path)
