"""Specification of DRoPFilter on datasets.Dataset (hf_drop.pruning.filter)."""

import dataclasses
import pickle
import warnings

import datasets
import numpy as np
import pytest
from conftest import CLASS_NAMES, image_dataset
from datasets.fingerprint import Hasher

from hf_drop import DRoPFilter, QuotaWarning, drop_quotas
from hf_drop.core.selection import global_top

ERRORS = [0.1, 0.02, 0.3, 0.2]


def raw(ds: datasets.Dataset) -> datasets.Dataset:
    """The same rows with images as stored bytes, for exact comparison."""
    return ds.cast_column("image", datasets.Image(decode=False))


# --- the estimator API ------------------------------------------------------------------------


def test_init_stores_arguments_and_computes_nothing():
    drop = DRoPFilter(0.5, class_errors=ERRORS, seed=3)
    assert drop.get_params()["density"] == 0.5 and drop.get_params()["seed"] == 3
    assert not [name for name in vars(drop) if name.endswith("_")]


def test_fit_returns_self_with_drop_quotas_and_sorted_indices(dataset):
    drop = DRoPFilter(0.4, class_errors=ERRORS)
    assert drop.fit(dataset) is drop
    # The default is robust DRoP: the saturating mode (count mode until a class is kept whole,
    # then equal shares) with a floor of half of each class's uniform share.
    expected = drop_quotas([80, 60, 40, 20], ERRORS, 0.4, mode="saturating", floor=0.5)
    assert np.array_equal(drop.quotas_, expected)
    assert drop.method == "Random+DRoP(saturating, floor 0.5)"
    assert len(drop.indices_) == 80 and np.all(np.diff(drop.indices_) > 0)
    labels = np.array(dataset["label"])
    assert np.array_equal(np.bincount(labels[drop.indices_], minlength=4), drop.quotas_)


def test_apply_returns_the_source_rows_unchanged(dataset):
    before = raw(dataset).to_dict()
    drop = DRoPFilter(0.3, class_errors=ERRORS, seed=1).fit(dataset)
    subset = drop.apply(dataset)
    assert subset.features == dataset.features
    source, kept = raw(dataset), raw(subset)
    for i, row in enumerate(drop.indices_):
        assert kept[i] == source[int(row)]
    assert raw(dataset).to_dict() == before, "the source is not modified"


def test_fit_never_decodes_an_image(undecodable):
    with pytest.raises(Exception):  # noqa: B017 - any decoding error proves the images are bad
        undecodable[0]["image"]
    drop = DRoPFilter(0.5, class_errors=ERRORS, within="el2n").fit(undecodable)
    assert len(drop.apply(undecodable)) == 100


def test_same_seed_same_subset_and_another_seed_another(dataset):
    a = DRoPFilter(0.5, class_errors=ERRORS, seed=0).fit(dataset).indices_
    b = DRoPFilter(0.5, class_errors=ERRORS, seed=0).fit(dataset).indices_
    c = DRoPFilter(0.5, class_errors=ERRORS, seed=1).fit(dataset).indices_
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_report_is_a_per_class_table(dataset):
    report = DRoPFilter(0.5, class_errors=ERRORS).fit(dataset).report()
    assert report.columns.tolist() == [
        "name", "size", "kept", "kept_fraction", "error", "support", "error_low", "error_high",
        "error_used", "flags",
    ]  # fmt: skip
    assert report["name"].tolist() == CLASS_NAMES
    assert report["size"].tolist() == [80, 60, 40, 20]
    assert report["kept"].sum() == 100
    assert report["kept_fraction"].tolist() == pytest.approx(report["kept"] / report["size"])
    assert report["error"].tolist() == ERRORS


def test_repr_shows_the_non_default_arguments():
    assert repr(DRoPFilter(0.5, seed=2)) == "DRoPFilter(density=0.5, seed=2)"


# --- Dataset.filter ---------------------------------------------------------------------------


@pytest.mark.parametrize("num_proc", [None, 2])
def test_dataset_filter_gives_the_same_rows_as_apply(dataset, num_proc):
    drop = DRoPFilter(0.5, class_errors=ERRORS, seed=5).fit(dataset)
    filtered = dataset.filter(
        drop, with_indices=True, batched=True, batch_size=32, num_proc=num_proc
    )
    assert raw(filtered).to_dict() == raw(drop.apply(dataset)).to_dict()


def test_unbatched_filter_gives_the_same_rows(dataset):
    drop = DRoPFilter(0.5, class_errors=ERRORS, seed=5).fit(dataset)
    filtered = dataset.filter(drop, with_indices=True, input_columns="label")
    assert filtered["label"][:] == drop.apply(dataset)["label"][:]


def test_filter_without_indices_says_how_to_call_it(dataset):
    drop = DRoPFilter(0.5, class_errors=ERRORS).fit(dataset)
    with pytest.raises(TypeError, match="with_indices=True"):
        dataset.filter(drop, batched=True, input_columns="label")


def test_dataset_filter_with_only_the_label_column_decodes_nothing(undecodable):
    drop = DRoPFilter(0.5, class_errors=ERRORS).fit(undecodable)
    filtered = undecodable.filter(drop, with_indices=True, batched=True, input_columns="label")
    assert filtered["label"] == drop.apply(undecodable)["label"]


def test_it_pickles_and_identical_filters_share_a_fingerprint(dataset):
    a = DRoPFilter(0.5, class_errors=ERRORS, seed=5).fit(dataset)
    b = DRoPFilter(0.5, class_errors=ERRORS, seed=5).fit(dataset)
    clone = pickle.loads(pickle.dumps(a))
    assert np.array_equal(clone.indices_, a.indices_)
    assert Hasher.hash(a) == Hasher.hash(b)
    assert Hasher.hash(a) != Hasher.hash(DRoPFilter(0.5, class_errors=ERRORS, seed=6).fit(dataset))
    fa = dataset.filter(a, with_indices=True, batched=True)
    fb = dataset.filter(b, with_indices=True, batched=True)
    assert fa._fingerprint == fb._fingerprint


def test_applied_subsets_get_a_fingerprint_of_their_source_and_rows(dataset):
    subset = DRoPFilter(0.5, class_errors=ERRORS, seed=5).fit(dataset).apply(dataset)
    again = DRoPFilter(0.5, class_errors=ERRORS, seed=5).fit(dataset).apply(dataset)
    other_rows = DRoPFilter(0.5, class_errors=ERRORS, seed=6).fit(dataset).apply(dataset)
    view = dataset.select(range(len(dataset)), new_fingerprint="another-source")
    other_source = DRoPFilter(0.5, class_errors=ERRORS, seed=5).fit(view).apply(view)
    assert subset._fingerprint == again._fingerprint
    assert len({dataset._fingerprint, subset._fingerprint, other_rows._fingerprint}) == 3
    assert other_source["label"] == subset["label"]
    assert other_source._fingerprint != subset._fingerprint


def test_fit_on_a_shuffled_view_selects_rows_of_that_view(dataset):
    view = dataset.shuffle(seed=0)
    drop = DRoPFilter(0.5, class_errors=ERRORS).fit(view)
    assert np.array_equal(np.bincount(drop.apply(view)["label"], minlength=4), drop.quotas_)
    assert (
        raw(view.filter(drop, with_indices=True, batched=True)).to_dict()
        == raw(drop.apply(view)).to_dict()
    )


# --- inputs -----------------------------------------------------------------------------------


def test_class_errors_by_name_or_id_equal_the_array(dataset):
    by_array = DRoPFilter(0.5, class_errors=ERRORS).fit(dataset).indices_
    by_name = dict(zip(CLASS_NAMES, ERRORS, strict=True))
    by_id = dict(enumerate(ERRORS))
    for errors in (by_name, by_id):
        assert np.array_equal(DRoPFilter(0.5, class_errors=errors).fit(dataset).indices_, by_array)


def test_string_labels_are_encoded_and_kept_as_strings():
    names = np.array(["cat", "dog", "bird"])[np.repeat([0, 1, 2], [10, 20, 30])]
    ds = datasets.Dataset.from_dict({"label": names.tolist(), "x": np.arange(60)})
    drop = DRoPFilter(0.5, class_errors={"cat": 0.5, "dog": 0.2, "bird": 0.1}).fit(ds)
    assert drop.classes_ == ["bird", "cat", "dog"]  # sorted, as class_encode_column does
    subset = drop.apply(ds)
    assert set(subset["label"]) == {"cat", "dog", "bird"}
    assert [ds[int(i)] for i in drop.indices_] == subset.to_list()


def test_a_class_missing_from_the_errors_is_an_error_or_gets_missing_error(dataset):
    partial = {"tshirt": 0.1, "trouser": 0.1, "pullover": 0.3}
    with pytest.raises(ValueError, match=r"no error for classes \['dress'\].*missing_error"):
        DRoPFilter(0.5, class_errors=partial).fit(dataset)
    with pytest.raises(ValueError, match=r"no error for classes \['dress'\]"):
        DRoPFilter(0.5, class_errors=[0.1, 0.1, 0.3, np.nan]).fit(dataset)
    drop = DRoPFilter(0.5, class_errors=partial, missing_error=0.2).fit(dataset)
    assert drop.class_errors_.tolist() == [0.1, 0.1, 0.3, 0.2]


def test_rules_that_ignore_errors_do_not_need_every_class_to_have_one(dataset):
    drop = DRoPFilter(0.5, quota="proportional", class_errors=[0.1, np.nan, 0.3, 0.2]).fit(dataset)
    assert np.isnan(drop.class_errors_[1]) and drop.quotas_.sum() == 100


@pytest.mark.parametrize(
    ("kept", "starved"),
    # 900 + 100 rows at d = 0.2: the large class's proportional share is 180, the class-balanced
    # one 100; it is starved only under half of both (50).
    [(49, True), (50, False), (89, False), (150, False)],
)
def test_a_class_is_starved_under_half_of_both_its_proportional_and_balanced_share(kept, starved):
    from hf_drop.pruning.record import flags_of

    data = image_dataset([0] * 900 + [1] * 100)
    record = DRoPFilter(0.2, class_errors={"tshirt": 0.1, "trouser": 0.3}).fit(data).record_
    flags = flags_of(dataclasses.replace(record, quotas=[kept, 200 - kept, 0, 0]))
    assert ("starved" in flags[0]) is starved


def test_an_empty_class_needs_no_error():
    ds = image_dataset([0, 0, 1, 1, 2, 2])  # no 'dress'
    drop = DRoPFilter(0.5, class_errors={"tshirt": 0.1, "trouser": 0.2, "pullover": 0.3}).fit(ds)
    assert drop.quotas_[3] == 0


def test_zero_error_classes_are_warned_about(dataset):
    with pytest.warns(QuotaWarning, match="trouser"):
        DRoPFilter(0.5, class_errors=[0.1, 0.0, 0.3, 0.2], quota="drop_paper").fit(dataset)
    # min_per_class keeps some, but 4 of 60 at density 0.5 is still starved, and said so.
    with pytest.warns(QuotaWarning, match=r"\['trouser'\] keep less than half"):
        drop = DRoPFilter(
            0.5, class_errors=[0.1, 0.0, 0.3, 0.2], quota="drop_paper", min_per_class=4
        ).fit(dataset)
    assert drop.quotas_[1] == 4 and drop.report()["flags"][1] == "starved, zero error"
    # The robust default's floor keeps half of the class's uniform share (12), and once the
    # smallest hard class is kept whole the rest is shared equally: nothing to warn about.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        robust = DRoPFilter(0.5, class_errors=[0.1, 0.0, 0.3, 0.2]).fit(dataset)
    assert robust.quotas_.tolist() == [21, 21, 38, 20]
    assert "zero error" in robust.report()["flags"][1]


def test_score_arrays_work_like_score_columns(dataset):
    by_column = DRoPFilter(0.5, class_errors=ERRORS, within="el2n").fit(dataset).indices_
    scores = np.array(dataset["el2n"])
    by_array = DRoPFilter(0.5, class_errors=ERRORS, within=scores).fit(dataset).indices_
    assert np.array_equal(by_column, by_array)


# --- the quota rules and selections -----------------------------------------------------------


def test_strategy_drop_keeps_the_hardest_of_each_class(dataset):
    drop = DRoPFilter(0.5, class_errors=ERRORS, within="el2n", keep="hard", mode="paper").fit(
        dataset
    )
    labels, scores = np.array(dataset["label"]), np.array(dataset["el2n"])
    for k in range(4):
        kept = scores[drop.indices_][labels[drop.indices_] == k]
        dropped = np.delete(scores, drop.indices_)[np.delete(labels, drop.indices_) == k]
        assert dropped.size == 0 or kept.min() >= dropped.max()
    assert drop.quotas_[2] == 40, "pullover, the hardest class, is kept whole"


def test_strategy_quota_with_its_own_score_is_the_global_selection(dataset):
    drop = DRoPFilter(0.3, quota="strategy", within="el2n").fit(dataset)
    assert np.array_equal(drop.indices_, global_top(np.array(dataset["el2n"]), 60))


def test_global_quota_selects_blind_to_classes(dataset):
    from hf_drop.core.selection import ccs, global_random

    scores = np.array(dataset["el2n"])
    labels = np.array(dataset["label"])
    top = DRoPFilter(0.3, quota="global", within="el2n").fit(dataset)
    assert np.array_equal(top.indices_, global_top(scores, 60))
    assert np.array_equal(top.quotas_, np.bincount(labels[top.indices_], minlength=4))
    assert top.method == "el2n"
    rand = DRoPFilter(0.3, quota="global", seed=4).fit(dataset)
    assert np.array_equal(rand.indices_, global_random(200, 60, seed=4))
    assert rand.method == "Random"
    strata = DRoPFilter(0.3, quota="global", within="el2n", keep="ccs", ccs_strata=5).fit(dataset)
    assert np.array_equal(strata.indices_, ccs(scores, 60, num_strata=5))
    with pytest.raises(ValueError, match="min_per_class does not apply to quota='global'"):
        DRoPFilter(0.3, quota="global", min_per_class=2).fit(dataset)


def test_random_strategyq_keeps_the_strategys_class_counts_at_random(dataset):
    strategy = DRoPFilter(0.3, quota="strategy", within="el2n").fit(dataset)
    randomq = DRoPFilter(0.3, quota="strategy", strategy_scores="el2n").fit(dataset)
    assert np.array_equal(randomq.quotas_, strategy.quotas_)
    assert not np.array_equal(randomq.indices_, strategy.indices_)


@pytest.mark.parametrize(
    ("quota", "expected"), [("proportional", [40, 30, 20, 10]), ("uniform", [27, 27, 26, 20])]
)
def test_baseline_quota_rules_need_no_errors(dataset, quota, expected):
    assert DRoPFilter(0.5, quota=quota).fit(dataset).quotas_.tolist() == expected


def test_ccs_and_k_center_meet_the_drop_quotas(dataset):
    embeddings = np.random.default_rng(0).normal(size=(len(dataset), 3))
    with_emb = dataset.add_column("emb", embeddings.tolist())
    for drop in (
        DRoPFilter(0.5, class_errors=ERRORS, within="el2n", keep="ccs", ccs_strata=4),
        DRoPFilter(0.5, class_errors=ERRORS, within="emb", keep="k_center"),
    ):
        drop.fit(with_emb)
        labels = np.array(with_emb["label"])
        assert np.array_equal(np.bincount(labels[drop.indices_], minlength=4), drop.quotas_)


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"label_column": "class"}, "label_column 'class' is not a column.*\\['image', 'label'"),
        ({"within": "grand"}, "within 'grand' is not a column"),
        ({"within": np.zeros(10)}, "within array has 10 entries but the dataset has 200 rows"),
        ({"density": -0.1}, "density must be a number in \\[0, 1\\]"),
        ({"quota": "paper"}, "quota must be one of"),
        ({"keep": "middle"}, "keep must be one of"),
        ({"class_errors": None}, "quota='drop' needs class_errors"),
        ({"class_errors": [0.1, 0.2]}, "class_errors has shape \\(2,\\) but label column"),
        ({"class_errors": {"horse": 0.1}}, "names class 'horse', which is not a class"),
        ({"keep": "k_center"}, "keep='k_center' needs a score: pass within="),
        ({"quota": "strategy"}, "quota='strategy' needs strategy_scores"),
        ({"missing_error": 2.0}, "missing_error must lie in"),
    ],
)
def test_bad_arguments_are_value_errors_naming_them(dataset, kwargs, message):
    args = {"density": 0.5, "class_errors": ERRORS, **kwargs}
    with pytest.raises(ValueError, match=message):
        DRoPFilter(**args).fit(dataset)


def test_nan_scores_are_refused_naming_the_column_and_rows(dataset):
    scores = np.array(dataset["el2n"])
    scores[[3, 7]] = np.nan
    bad = dataset.remove_columns("el2n").add_column("el2n", scores.tolist())
    with pytest.raises(ValueError, match=r"within column 'el2n' has NaN or inf at rows \[3, 7\]"):
        DRoPFilter(0.5, class_errors=ERRORS, within="el2n").fit(bad)


def test_labels_outside_the_classlabel_range_are_refused():
    ds = datasets.Dataset.from_dict(
        {"label": [0, 1, -1, 2]},
        features=datasets.Features({"label": datasets.ClassLabel(names=["a", "b", "c"])}),
    )
    with pytest.raises(ValueError, match=r"outside the ClassLabel range \[0, 3\).*rows \[2\]"):
        DRoPFilter(0.5, quota="proportional").fit(ds)


def test_float_labels_and_dataset_dicts_are_refused(dataset):
    floats = datasets.Dataset.from_dict({"label": [0.5, 1.0]})
    with pytest.raises(ValueError, match="must be a ClassLabel, integer or string column"):
        DRoPFilter(0.5, quota="proportional").fit(floats)
    with pytest.raises(TypeError, match="pass one split"):
        DRoPFilter(0.5, quota="proportional").fit(datasets.DatasetDict({"train": dataset}))


def test_an_unfitted_filter_says_so(dataset):
    with pytest.raises(RuntimeError, match="not fitted"):
        DRoPFilter(0.5, class_errors=ERRORS).apply(dataset)


def test_applying_to_another_dataset_is_refused(dataset):
    drop = DRoPFilter(0.5, class_errors=ERRORS).fit(dataset)
    with pytest.raises(ValueError, match="fitted on another dataset: this one has other labels"):
        drop.apply(dataset.shuffle(seed=1))
