"""Paired bootstrap intervals of method comparisons (hf_drop.evaluation.intervals)."""

import json

import numpy as np
import pandas as pd
import pytest

from hf_drop.evaluation.intervals import paired_bootstrap

CLASSES = ["a", "b", "c"]


def runs_of(accuracies: dict[str, list[list[float]]], density: float = 0.5) -> pd.DataFrame:
    """One row per (method, seed) from per-seed lists of per-class accuracies."""
    rows = [
        {
            "method": m,
            "seed": s,
            "density": density,
            "class_accuracy": dict(zip(CLASSES, a, strict=True)),
        }
        for m, per_seed in accuracies.items()
        for s, a in enumerate(per_seed)
    ]
    return pd.DataFrame(rows)


BASE = [[0.5, 0.8, 0.9], [0.6, 0.7, 0.9], [0.4, 0.9, 0.8], [0.55, 0.75, 0.85]]


def test_a_method_equal_to_its_baseline_differs_by_exactly_nothing():
    table = paired_bootstrap(runs_of({"base": BASE, "same": BASE}), "base")
    row = table.iloc[0]
    assert row["diff"] == 0 and row["ci_low"] == 0 and row["ci_high"] == 0 and row.pairs == 4


@pytest.mark.parametrize("metric", ["worst_class_accuracy", "accuracy", "bottom3"])
def test_a_constant_shift_is_the_difference_and_its_whole_interval(metric):
    shifted = [[a + 0.05 for a in seed] for seed in BASE]
    row = paired_bootstrap(runs_of({"base": BASE, "up": shifted}), "base", metric=metric).iloc[0]
    assert row["diff"] == pytest.approx(0.05)
    assert row["ci_low"] == pytest.approx(0.05) and row["ci_high"] == pytest.approx(0.05)


def test_the_images_noise_widens_the_interval_and_bonferroni_widens_it_more():
    shifted = [[a + 0.05 for a in seed] for seed in BASE]
    runs = runs_of({"base": BASE, "up": shifted, "down": [[a - 0.02 for a in s] for s in BASE]})
    seeds_only = paired_bootstrap(runs, "base")
    with_images = paired_bootstrap(runs, "base", support=[50, 50, 50])
    width = lambda t: (t.ci_high - t.ci_low).to_numpy()  # noqa: E731
    assert (width(with_images) > width(seeds_only)).all()
    assert (with_images.ci_high_adj - with_images.ci_low_adj > width(with_images)).all()
    assert set(with_images.comparisons) == {2}


def test_the_interval_covers_a_null_difference_at_least_as_often_as_it_says():
    """Both methods drawn from one distribution: the 95% interval holds 0 in >= 90% of trials
    (it errs wide: the two methods' images are redrawn independently)."""
    rng = np.random.default_rng(0)
    truth = np.array([0.5, 0.7, 0.9])
    covered = 0
    for trial in range(100):
        draw = lambda: [  # noqa: E731
            list(rng.binomial(200, np.clip(truth + rng.normal(0, 0.03, 3), 0, 1)) / 200)
            for _ in range(5)
        ]
        table = paired_bootstrap(
            runs_of({"base": draw(), "other": draw()}), "base", support=[200] * 3,
            resamples=2000, seed=trial,
        )  # fmt: skip
        covered += table.ci_low.iloc[0] <= 0 <= table.ci_high.iloc[0]
    assert covered >= 90


def test_only_seeds_both_methods_have_are_paired():
    runs = runs_of({"base": BASE, "other": BASE[:1]})
    row = paired_bootstrap(runs, "base").iloc[0]
    assert row.pairs == 1 and np.isnan(row.ci_low) and np.isnan(row.p_boot)
    runs = pd.concat([runs_of({"base": BASE}), runs_of({"other": BASE}, density=0.3)])
    assert paired_bootstrap(runs, "base").pairs.tolist() == [0]  # only at d = 0.3: no pair


def test_groups_are_compared_apart_and_json_accuracies_are_read():
    runs = pd.concat([runs_of({"base": BASE, "x": BASE}, d) for d in (0.3, 0.5)])
    runs["class_accuracy"] = [json.dumps(a) for a in runs["class_accuracy"]]
    table = paired_bootstrap(runs, "base")
    assert table.density.tolist() == [0.3, 0.5] and (table["diff"] == 0).all()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda r: r.drop(columns="seed"), r"lacks column\(s\) \['seed'\]"),
        (lambda r: r.assign(method="x"), "baseline 'base' is not a method"),
        (lambda r: r.assign(class_accuracy=[{"z": 1.0}] * len(r)), "same classes"),
        (lambda r: r.assign(seed=0), "seed\\(s\\) run twice"),
        (lambda r: r.assign(class_accuracy=[0.5] * len(r)), "must be a mapping"),
    ],
)
def test_runs_that_cannot_be_paired_are_refused(change, match):
    runs = runs_of({"base": BASE, "other": BASE})
    if "same classes" in match:
        runs = pd.concat([runs, change(runs.iloc[:1]).assign(method="third")])
    else:
        runs = change(runs)
    with pytest.raises(ValueError, match=match):
        paired_bootstrap(runs, "base")


def test_bad_arguments_name_themselves():
    runs = runs_of({"base": BASE, "other": BASE})
    with pytest.raises(ValueError, match="metric must be one of"):
        paired_bootstrap(runs, "base", metric="f1")
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap(runs, "base", confidence=95)
    with pytest.raises(ValueError, match="support must give 3"):
        paired_bootstrap(runs, "base", support=[10, 10])
