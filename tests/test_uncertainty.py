"""Specification of per-class errors with their uncertainty (hf_drop.core.uncertainty).

The probe's own class table (ProbeResult.class_table on a trained probe) is specified in
tests/test_probe.py, next to the probe that fixture trains once.
"""

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hf_drop import ClassErrors, class_errors_from_predictions
from hf_drop.core.uncertainty import (
    MAX_PRIOR_STRENGTH,
    MIN_PRIOR_STRENGTH,
    beta_posterior,
    empirical_bayes_prior,
    fit_beta_prior,
    wilson_interval,
)
from hf_drop.probe import ProbeResult

COLUMNS = ["name", "train_size", "support", "mistakes", "error", "error_low", "error_high"]

# --- Wilson ------------------------------------------------------------------------------------


def test_wilson_matches_hand_computed_intervals():
    low, high = wilson_interval([0, 1, 50, 18], [18, 18, 100, 18])
    z2 = 1.959963984540054**2
    # 0 of n: (0, z^2 / (n + z^2)); n of n: (n / (n + z^2), 1).
    assert low[0] == 0 and high[0] == pytest.approx(z2 / (18 + z2))
    assert high[0] == pytest.approx(0.17588, abs=1e-5)
    assert (low[1], high[1]) == pytest.approx((0.00988, 0.25757), abs=1e-5)
    assert (low[2], high[2]) == pytest.approx((0.40383, 0.59617), abs=1e-5)
    assert (low[3], high[3]) == pytest.approx((18 / (18 + z2), 1.0))


def test_wilson_is_nan_without_support_and_follows_the_confidence():
    low, high = wilson_interval([0, 3], [0, 20])
    assert np.isnan(low[0]) and np.isnan(high[0])
    narrow = wilson_interval(3, 20, confidence=0.5)
    wide = wilson_interval(3, 20, confidence=0.99)
    assert wide[0] < low[1] < narrow[0] and narrow[1] < high[1] < wide[1]


@given(st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_the_interval_contains_the_point_estimate(counts):
    mistakes, support = counts
    low, high = wilson_interval(mistakes, support)
    assert 0 <= low <= mistakes / support <= high <= 1


@given(
    st.integers(1, 300).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
    st.integers(2, 50),
)
def test_the_interval_narrows_as_support_grows(counts, factor):
    mistakes, support = counts
    low, high = wilson_interval(mistakes, support)
    low_more, high_more = wilson_interval(mistakes * factor, support * factor)
    assert high_more - low_more < high - low


@pytest.mark.parametrize(
    ("mistakes", "support", "confidence", "message"),
    [
        (3, 2, 0.95, "mistakes must lie between 0 and support"),
        (-1, 2, 0.95, "mistakes must lie between 0 and support"),
        (1, -2, 0.95, "support must be finite and >= 0"),
        ([1, 2], [3, 4, 5], 0.95, "must have one shape"),
        (1, 2, 1.0, "confidence must lie strictly between 0 and 1"),
    ],
)
def test_wilson_refuses_bad_counts(mistakes, support, confidence, message):
    with pytest.raises(ValueError, match=message):
        wilson_interval(mistakes, support, confidence)


# --- Beta posterior and its empirical-Bayes prior ------------------------------------------------


@given(
    st.integers(0, 200).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
    st.floats(0, 1),
    st.floats(0.01, 1e4),
)
def test_the_posterior_lies_between_the_raw_error_and_the_prior_mean(counts, mean, strength):
    mistakes, support = counts
    posterior = float(beta_posterior(mistakes, support, mean, strength))
    raw = mistakes / support if support else mean
    assert min(raw, mean) - 1e-12 <= posterior <= max(raw, mean) + 1e-12


def test_the_posterior_is_the_formula_and_the_prior_without_support():
    assert beta_posterior(1, 18, 0.1, 2.0) == pytest.approx((1 + 0.2) / 20)
    assert beta_posterior(0, 0, 0.3, 5.0) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="prior_mean"):
        beta_posterior(1, 18, 1.5, 2.0)
    with pytest.raises(ValueError, match="prior_strength"):
        beta_posterior(1, 18, 0.5, 0.0)


def test_identical_classes_get_a_large_prior_strength():
    mean, strength = empirical_bayes_prior([2] * 10, [18] * 10)
    assert mean == pytest.approx(2 / 18) and strength == MAX_PRIOR_STRENGTH
    # Shrunk that hard, every error is the pooled one.
    assert beta_posterior([0, 2, 4], [18] * 3, mean, strength) == pytest.approx(2 / 18, abs=1e-3)


def test_very_different_classes_get_a_small_prior_strength():
    mean, strength = empirical_bayes_prior([0, 18, 0, 18, 1, 17], [18] * 6)
    assert mean == pytest.approx(0.5) and strength < 1
    assert strength >= MIN_PRIOR_STRENGTH
    posterior = beta_posterior([0, 18], [18, 18], mean, strength)
    assert posterior[0] < 0.05 and posterior[1] > 0.95


def test_moderate_spread_gives_a_moderate_strength_and_ignores_empty_classes():
    mistakes, support = [0, 1, 0, 3, 2, 0, 1, 5], [18] * 8
    mean, strength = empirical_bayes_prior(mistakes, support)
    assert 1 < strength < 100
    assert empirical_bayes_prior([*mistakes, 0], [*support, 0]) == (mean, strength)
    with pytest.raises(ValueError, match="no class has any validation sample"):
        empirical_bayes_prior([0, 0], [0, 0])


def _unweighted_moments(mistakes, support):
    """The estimator before support weights (h = mean(1/n_k)), as a reference."""
    m, n = np.asarray(mistakes, float), np.asarray(support, float)
    p, h = m.sum() / n.sum(), np.mean(1 / n)
    variance = np.sum((m / n - p) ** 2) / (len(n) - 1)
    excess = (variance - p * (1 - p) * h) / (1 - h)
    if excess <= 0:
        return p, MAX_PRIOR_STRENGTH
    return p, float(np.clip(p * (1 - p) / excess - 1, MIN_PRIOR_STRENGTH, MAX_PRIOR_STRENGTH))


@given(st.integers(2, 200), st.lists(st.floats(0, 1), min_size=2, max_size=30))
def test_with_equal_supports_the_weights_change_nothing(n, errors):
    mistakes = np.round(np.array(errors) * n)
    if mistakes.sum() in (0, n * len(errors)):
        return  # an all-0 or all-1 pool: both pool it, by another path
    mean, strength = empirical_bayes_prior(mistakes, [n] * len(errors))
    expected = _unweighted_moments(mistakes, [n] * len(errors))
    assert mean == pytest.approx(expected[0]) and strength == pytest.approx(expected[1], rel=1e-9)


@given(
    st.lists(st.tuples(st.integers(200, 1000), st.floats(0.02, 0.6)), min_size=2, max_size=8),
    st.integers(0, 1),
)
def test_one_class_of_one_image_cannot_capture_the_prior(classes, tiny_mistake):
    """Classes of hundreds of images whose errors differ by more than noise keep their order and
    most of their differences beside a class of support 1, whatever that one image says."""
    support = np.array([n for n, _ in classes], dtype=float)
    mistakes = np.round([n * e for n, e in classes])
    raw = mistakes / support
    if np.ptp(raw) < 0.1:
        return  # differences within a few noise sd: shrinking them is right
    alone = fit_beta_prior(mistakes, support)
    both = fit_beta_prior([tiny_mistake, *mistakes], [1, *support])
    assert both.status == alone.status
    shrunk = beta_posterior(mistakes, support, both.mean, both.strength)
    without = beta_posterior(mistakes, support, alone.mean, alone.strength)
    assert np.abs(shrunk - without).max() <= 0.05 * np.ptp(raw)  # as if it were not there
    # No two classes further apart than their noise (0.05 is over one sd of a difference at
    # n >= 200) swap places; nearer ones may, as shrinkage by support should allow.
    apart = raw[None, :] - raw[:, None] > 0.05
    assert (shrunk[:, None] < shrunk[None, :])[apart].all()


def test_the_reviewers_cases_keep_real_differences():
    # A 0.1-vs-0.2 difference between classes of 500 survives a class of support 1 ...
    prior = fit_beta_prior([0, 50, 100, 60], [1, 500, 500, 500])
    assert prior.status == "shrunk" and prior.strength < 100
    shrunk = beta_posterior([50, 100, 60], [500] * 3, prior.mean, prior.strength)
    assert shrunk[1] - shrunk[0] > 0.09 and shrunk[0] < shrunk[2] < shrunk[1]
    # ... and a class of 1 of 1 missed no longer frees the others from shrinkage.
    prior = fit_beta_prior([1, 50, 100], [1, 500, 500])
    assert prior.status == "shrunk" and MIN_PRIOR_STRENGTH < prior.strength < 100
    assert beta_posterior(1, 1, prior.mean, prior.strength) < 0.25


@pytest.mark.parametrize(
    ("mistakes", "support", "status", "why"),
    [
        ([2] * 10, [18] * 10, "pooled", "no more than validation noise"),
        ([3], [18], "pooled", "only one class"),
        ([0, 0, 0], [18, 5, 9], "pooled", "right"),
        ([1, 0, 1], [1, 1, 1], "pooled", "single validation sample"),
        ([0, 18, 0, 18], [18] * 4, "unshrunk", "far more than validation noise"),
        ([0, 1, 0, 3, 2, 0, 1, 5], [18] * 8, "shrunk", "moves towards"),
    ],
)
def test_the_prior_says_why_it_pooled_shrunk_or_left_the_errors(mistakes, support, status, why):
    prior = fit_beta_prior(mistakes, support)
    assert prior.status == status and why in prior.why
    assert prior.as_dict()["status"] == status


def test_the_record_and_report_say_how_the_errors_were_shrunk():
    import datasets

    from hf_drop import DRoPFilter, QuotaWarning

    labels = np.repeat(np.arange(4), [300, 300, 300, 300])
    data = datasets.Dataset.from_dict({"label": labels})
    pooled = DRoPFilter(0.3, class_errors=[0.1, 0.11, 0.1, 0.12], class_support=[50] * 4)
    with pytest.warns(QuotaWarning, match="pooled into one"):
        pooled.fit(data)
    assert pooled.record_.prior["status"] == "pooled"
    assert pooled.report().attrs["prior"] == pooled.provenance()["prior"]
    # The reviewer's case through the filter: quotas follow the well-measured errors.
    drop = DRoPFilter(0.3, class_errors=[0, 0.1, 0.2, 0.12], class_support=[1, 500, 500, 500])
    drop.fit(data)
    assert drop.record_.prior["status"] == "shrunk"
    assert drop.quotas_[2] > drop.quotas_[3] > drop.quotas_[1]
    unshrunk = DRoPFilter(0.3, class_errors=[0.1, 0.2, 0.12, 0.3], shrink=False).fit(data)
    assert unshrunk.record_.prior is None and unshrunk.report().attrs["prior"] is None


# --- ClassErrors and class_errors_from_predictions -----------------------------------------------

LABELS = [0, 0, 1, 1, 2, 2, 2, 0]
PREDICTIONS = [0, 1, 1, 1, 2, 0, 2, 0]


def one_hot_probs(predictions, num_classes=3):
    probs = np.full((len(predictions), num_classes), 0.1)
    probs[np.arange(len(predictions)), predictions] = 0.8
    return probs


def test_errors_from_predictions_probs_or_logits_are_the_same():
    by_predictions = class_errors_from_predictions(LABELS, PREDICTIONS, class_names=["a", "b", "c"])
    by_probs = class_errors_from_predictions(
        LABELS, pred_probs=one_hot_probs(PREDICTIONS), class_names=["a", "b", "c"]
    )
    by_logits = class_errors_from_predictions(
        LABELS, logits=np.log(one_hot_probs(PREDICTIONS)) * 3 - 7, class_names=["a", "b", "c"]
    )
    for errors in (by_predictions, by_probs, by_logits):
        assert errors.names == ("a", "b", "c")
        assert errors.support.tolist() == [3, 2, 3]
        assert errors.mistakes.tolist() == [1, 0, 1]
        assert errors.errors.tolist() == pytest.approx([1 / 3, 0, 1 / 3])


def test_the_table_shows_each_error_with_its_wilson_interval():
    errors = class_errors_from_predictions(LABELS, PREDICTIONS, num_classes=4)
    table = errors.table()
    assert list(table.columns) == COLUMNS
    assert table.index.name == "class_id" and table.index.tolist() == [0, 1, 2, 3]
    assert table["name"].tolist() == ["0", "1", "2", "3"]
    assert table["train_size"].isna().all()
    assert table.loc[3, "support"] == 0 and np.isnan(table.loc[3, "error"])
    assert np.isnan(table.loc[3, "error_low"]) and np.isnan(table.loc[3, "error_high"])
    low, high = wilson_interval([1, 0, 1], [3, 2, 3])
    assert table["error_low"][:3].tolist() == pytest.approx(low.tolist())
    assert table["error_high"][:3].tolist() == pytest.approx(high.tolist())
    assert (table["error_low"][:3] <= table["error"][:3]).all()
    assert (table["error"][:3] <= table["error_high"][:3]).all()


def test_class_errors_count_mistakes_over_initialisations_and_are_immutable():
    errors = ClassErrors.from_counts(
        [3, 0], [18, 10], ["a", "b"], train_sizes=[90, 50], num_inits=2
    )
    assert errors.support_total.tolist() == [36, 20]
    assert errors.errors.tolist() == pytest.approx([3 / 36, 0])
    table = errors.table()
    assert table["train_size"].tolist() == [90, 50]
    # The interval is about the 18 distinct images: 1.5 mistakes on average per initialisation.
    low, high = wilson_interval(1.5, 18)
    assert table.loc[0, "error_low"] == pytest.approx(float(low))
    assert table.loc[0, "error_high"] == pytest.approx(float(high))
    with pytest.raises(ValueError, match="read-only"):
        errors.support[0] = 1
    with pytest.raises(ValueError, match="not mistakes / \\(support \\* num_inits\\)"):
        ClassErrors(("a",), [0.5], [18], [3])
    with pytest.raises(ValueError, match="mistakes must lie between 0 and support"):
        ClassErrors.from_counts([19], [18])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"predictions": [0, 1, 2]}, "labels has 8 rows but predictions has 3"),
        ({"predictions": [0.5, 1, 2, 0, 1, 2, 0, 1]}, "predictions must hold integers"),
        ({"predictions": [[0, 1]] * 8}, "predictions must be 1-D"),
        ({"predictions": PREDICTIONS, "num_classes": 2}, r"labels must be class ids in \[0, 2\)"),
        (
            {"predictions": [0, 1, 1, 1, 2, 0, 2, 5], "num_classes": 3},
            r"predictions must be class ids in \[0, 3\)",
        ),
        (
            {"pred_probs": one_hot_probs(PREDICTIONS, 4), "num_classes": 3},
            "pred_probs has 4 columns",
        ),
        ({"logits": np.zeros((8, 2)), "class_names": ["a", "b", "c"]}, "logits has 2 columns"),
        ({"pred_probs": np.zeros(8)}, "pred_probs must be 2-D"),
        ({"pred_probs": np.full((8, 3), np.nan)}, "pred_probs holds NaN in 8 rows"),
        ({"logits": np.full((8, 3), np.nan)}, "logits holds NaN"),
        ({"pred_probs": np.full((8, 3), 2.0)}, "pred_probs must hold probabilities"),
        ({"predictions": PREDICTIONS, "logits": np.zeros((8, 3))}, "predictions and logits"),
        ({}, "pass exactly one of predictions, pred_probs or logits; got none"),
        (
            {"predictions": PREDICTIONS, "class_names": ["a", "b"], "num_classes": 3},
            "class_names has 2",
        ),
        ({"predictions": PREDICTIONS, "num_classes": 0}, "num_classes must be an integer >= 1"),
    ],
)
def test_bad_predictions_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        class_errors_from_predictions(LABELS, **kwargs)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([0, 1, -1], r"labels must be class ids in \[0, 3\)"),
        ([0.0, 1.5, 2.0], "labels must hold integers"),
        ([], "labels is empty"),
    ],
)
def test_bad_labels_are_refused_by_name(labels, message):
    with pytest.raises(ValueError, match=message):
        class_errors_from_predictions(labels, [0, 1, 2][: len(labels)], num_classes=3)


# --- a probe result's table, from class_metrics.json (no training) ------------------------------


def write_metrics(folder, with_mistakes: bool):
    """class_metrics.json of a 2-init probe on 18 + 10 + 0 validation images."""
    hits = [[17, 16], [10, 9], [0, 0]]  # per class, per init
    support = [18, 10, 0]
    classes = []
    for name, h, n in zip("abc", hits, support, strict=True):
        recall = [x / n if n else float("nan") for x in h]
        c = {
            "name": name,
            "train_size": 5 * n + 1,
            "support": n,
            "recall_by_epoch": [[0.0, r] for r in recall],
            "recall": float(np.mean(recall)) if n else None,
            "error": float(1 - np.mean(recall)) if n else None,
        }
        if with_mistakes:
            c["mistakes_by_init"] = [n - x for x in h]
            c["mistakes"] = sum(n - x for x in h)
            c["support_total"] = 2 * n
        classes.append(c)
    metrics = {"class_errors_from": "final", "classes": classes}
    (folder / "class_metrics.json").write_text(json.dumps(metrics))
    return ProbeResult(folder)


@pytest.mark.parametrize("with_mistakes", [True, False], ids=["recorded", "older-result"])
def test_a_probe_results_table_counts_mistakes_over_initialisations(tmp_path, with_mistakes):
    result = write_metrics(tmp_path, with_mistakes)
    errors = result.class_errors_with_support
    assert errors.num_inits == 2
    assert errors.mistakes.tolist() == [3, 1, 0]
    table = result.class_table()
    assert list(table.columns) == COLUMNS
    assert table["support"].tolist() == [18, 10, 0]
    assert table["train_size"].tolist() == [91, 51, 1]
    assert table["error"][:2].tolist() == pytest.approx([3 / 36, 1 / 20])
    assert np.isnan(table.loc[2, "error"]) and np.isnan(table.loc[2, "error_low"])
    np.testing.assert_allclose(table["error"], result.class_errors)


def test_class_errors_from_predictions_feed_drop_filter_with_their_support():
    from conftest import image_dataset

    from hf_drop import DRoPFilter

    labels = [0] * 20 + [1] * 20 + [2] * 20 + [3] * 20
    predictions = [0] * 18 + [1] * 2 + [1] * 20 + [2] * 10 + [0] * 10 + [3] * 19 + [0]
    measured = class_errors_from_predictions(labels, predictions, num_classes=4)
    train = image_dataset([k % 4 for k in range(200)])
    drop = DRoPFilter(0.5, class_errors=measured).fit(train)
    assert drop.class_support_.tolist() == [20, 20, 20, 20]
    assert drop.class_errors_.tolist() == pytest.approx([0.1, 0.0, 0.5, 0.05])
    assert drop.method == "Random+DRoP(saturating, floor 0.5, shrunk)"
    same = DRoPFilter(0.5, class_errors=[0.1, 0.0, 0.5, 0.05], class_support=[20] * 4).fit(train)
    assert np.array_equal(drop.indices_, same.indices_)
