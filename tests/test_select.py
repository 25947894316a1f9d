"""Specification of sample selection given class counts (hf_drop.core.selection)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hf_drop.core.selection import (
    ccs,
    global_random,
    global_top,
    k_center,
    random_within_class,
    top_within_class,
)


@pytest.fixture
def labels():
    return np.random.default_rng(0).integers(0, 5, size=1000)


def per_class(labels, indices, num_classes):
    return np.bincount(labels[indices], minlength=num_classes)


# --- random within class ----------------------------------------------------------------------


def test_random_within_class_keeps_exactly_the_counts(labels):
    counts = np.array([10, 0, 50, 3, np.sum(labels == 4)])
    kept = random_within_class(labels, counts, seed=1)
    assert np.array_equal(per_class(labels, kept, 5), counts)
    assert np.all(np.diff(kept) > 0), "indices are sorted and unique"


def test_random_within_class_is_reproducible_and_seed_dependent(labels):
    counts = np.full(5, 20)
    a = random_within_class(labels, counts, seed=7)
    assert np.array_equal(a, random_within_class(labels, counts, seed=7))
    assert not np.array_equal(a, random_within_class(labels, counts, seed=8))


def test_random_within_class_is_uniform_inside_a_class():
    labels = np.zeros(10, dtype=int)
    hits = np.zeros(10)
    for seed in range(2000):
        hits[random_within_class(labels, [3], seed=seed)] += 1
    # each sample is kept with probability 0.3: 600 of 2000, sd ~ 20.5
    assert np.all(np.abs(hits - 600) < 100)


def smallest_keys_reference(labels, counts, seed):
    """The definition: i.i.d. uniform keys, the counts[k] smallest keys of each class."""
    keys = np.random.default_rng(seed).random(len(labels))
    kept = [
        np.flatnonzero(labels == k)[np.argsort(keys[labels == k])[:n]] for k, n in enumerate(counts)
    ]
    return np.sort(np.concatenate(kept))


@pytest.mark.parametrize("band_sds", [6.0, 0.0])  # 0: the band is too thin, the full sort decides
def test_random_within_class_equals_its_definition_on_both_paths(monkeypatch, band_sds):
    import hf_drop.core.selection

    monkeypatch.setattr(hf_drop.core.selection, "_BAND_SDS", band_sds)
    monkeypatch.setattr(
        hf_drop.core.selection, "_CHUNK_ROWS", 1000
    )  # several chunks, a partial last
    rng = np.random.default_rng(0)
    for trial in range(20):
        labels = rng.integers(0, 7, size=int(rng.integers(1, 3000)))
        counts = np.array([rng.integers(0, n + 1) for n in np.bincount(labels, minlength=7)])
        kept = random_within_class(labels, counts, seed=trial)
        assert np.array_equal(kept, smallest_keys_reference(labels, counts, trial))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=300), st.data())
def test_random_within_class_counts_hold_for_any_labels(label_list, data):
    labels = np.array(label_list)
    sizes = np.bincount(labels, minlength=7)
    counts = np.array([data.draw(st.integers(0, int(n))) for n in sizes])
    kept = random_within_class(labels, counts, seed=data.draw(st.integers(0, 2**32)))
    assert np.array_equal(per_class(labels, kept, 7), counts)
    assert len(np.unique(kept)) == len(kept)


# --- by score ---------------------------------------------------------------------------------


def test_top_within_class_keeps_the_hardest_of_each_class():
    labels = np.array([0, 0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.9, 0.5, 0.3, 0.2, 0.8])
    assert top_within_class(labels, [2, 1], scores, keep="hard").tolist() == [1, 2, 5]
    assert top_within_class(labels, [2, 1], scores, keep="easy").tolist() == [0, 2, 4]


def test_score_ties_go_to_the_lower_index():
    labels = np.zeros(5, dtype=int)
    scores = np.array([1.0, 2.0, 2.0, 2.0, 0.0])
    assert top_within_class(labels, [2], scores, keep="hard").tolist() == [1, 2]
    assert global_top(scores, 2, keep="hard").tolist() == [1, 2]
    assert global_top(np.zeros(4), 2, keep="easy").tolist() == [0, 1]


def test_global_top_is_blind_to_classes():
    scores = np.array([0.9, 0.1, 0.8, 0.7, 0.2])
    assert global_top(scores, 3).tolist() == [0, 2, 3]
    assert global_top(scores, 2, keep="easy").tolist() == [1, 4]


def test_global_random_draws_distinct_sorted_samples():
    kept = global_random(100, 30, seed=3)
    assert len(kept) == 30 and np.all(np.diff(kept) > 0) and kept.max() < 100
    assert np.array_equal(kept, global_random(100, 30, seed=3))


# --- CCS --------------------------------------------------------------------------------------


def test_ccs_drops_the_hardest_beta_fraction():
    scores = np.arange(100, dtype=float)  # sample i has difficulty i
    kept = ccs(scores, 50, beta=0.2, num_strata=5, seed=0)
    assert len(kept) == 50
    assert kept.max() < 80, "the hardest 20 are never kept"


def test_ccs_shares_the_budget_from_the_smallest_stratum_up():
    # Strata of width 1 over [0, 10): a sparse stratum of 2 samples and dense ones of 40.
    scores = np.concatenate([np.full(2, 0.5), np.full(40, 5.5), np.full(40, 9.5)])
    kept = ccs(scores, 30, beta=0.0, num_strata=10, seed=0)
    strata = np.minimum((scores[kept] - 0.5) / 0.9, 9).astype(int)
    counts = np.bincount(strata, minlength=10)
    assert counts[0] == 2, "the small stratum is kept whole"
    assert sorted(counts[counts > 2].tolist()) == [14, 14]


def test_ccs_per_class_meets_each_quota_and_is_reproducible(labels):
    scores = np.random.default_rng(1).random(len(labels))
    counts = np.array([5, 30, 0, 60, 10])
    kept = ccs(scores, counts, labels, beta=0.1, num_strata=8, seed=4)
    assert np.array_equal(per_class(labels, kept, 5), counts)
    assert np.array_equal(kept, ccs(scores, counts, labels, beta=0.1, num_strata=8, seed=4))


def test_ccs_drops_fewer_hard_samples_when_the_budget_needs_them():
    kept = ccs(np.arange(10, dtype=float), 10, beta=0.5, num_strata=3)
    assert kept.tolist() == list(range(10))


# --- k-center ---------------------------------------------------------------------------------


def test_k_center_covers_separated_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [100, 0], [0, 100], [100, 100]], dtype=float)
    points = np.concatenate([c + rng.normal(size=(50, 2)) for c in centres])
    kept = k_center(points, 4, seed=0)
    assert sorted(set((kept // 50).tolist())) == [0, 1, 2, 3], "one centre per cluster"


def test_k_center_chunking_does_not_change_the_result():
    x = np.random.default_rng(2).normal(size=(300, 8))
    assert np.array_equal(k_center(x, 20, seed=1, chunk_size=7), k_center(x, 20, seed=1))


def test_k_center_per_class_meets_each_quota(labels):
    x = np.random.default_rng(3).normal(size=(len(labels), 4)).astype(np.float16)
    counts = np.array([3, 0, 7, 1, 200])
    kept = k_center(x, counts, labels, seed=0)
    assert np.array_equal(per_class(labels, kept, 5), counts)


def test_k_center_handles_duplicate_points():
    x = np.zeros((10, 3))
    assert len(np.unique(k_center(x, 4))) == 4


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: random_within_class([0, 1, 2], [1, 1]), "labels must lie in \\[0, 2\\)"),
        (lambda: random_within_class([0, 0, 1], [3, 1]), "counts\\[0\\]=3 but class 0 has 2"),
        (lambda: random_within_class([0.5, 1.0], [1, 1]), "labels must be a 1-D array"),
        (lambda: top_within_class([0, 0], [1], [0.1]), "scores has 1 entries but there are 2"),
        (lambda: top_within_class([0, 0], [1], [0.1, np.nan]), "samples \\[1\\] are NaN"),
        (lambda: top_within_class([0, 0], [1], [0.1, 0.2], keep="mid"), "keep must be"),
        (lambda: global_top([0.1, 0.2], 3), "must lie in \\[0, 2\\]"),
        (lambda: ccs([0.1, 0.2], 1, beta=1.0), "beta must lie in"),
        (lambda: ccs([0.1, 0.2], 1, num_strata=0), "num_strata must be a positive int"),
        (lambda: k_center(np.zeros(5), 2), "embeddings must be a 2-D array"),
        (lambda: k_center(np.full((2, 2), np.nan), 1), "embeddings must be finite"),
    ],
)
def test_bad_input_is_a_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
