"""Specification of the class-count rules (hf_drop.core.quotas)."""

import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hf_drop.core.quotas import (
    QuotaWarning,
    budget,
    drop_quotas,
    proportional_quotas,
    quotas_from_selection,
    uniform_counts,
    uniform_quotas,
)

# --- independent references, written from the definitions ------------------------------------


def paper_algorithm_1(sizes, errors, density):
    """Algorithm 1 of the paper, line by line (fractions d_k; positive errors only)."""
    sizes = np.asarray(sizes, float)
    recall = 1 - np.asarray(errors, float)
    unsaturated = set(range(len(sizes)))
    excess = density * sizes.sum()
    d = np.zeros(len(sizes))
    while excess > 1e-9 * sizes.sum() and unsaturated:
        z = sum(sizes[k] * (1 - recall[k]) for k in unsaturated) / excess
        for k in sorted(unsaturated):
            step = (1 - recall[k]) / z
            d[k] += step
            if d[k] > 1:
                unsaturated.discard(k)
                excess += sizes[k] * (d[k] - 1)
                d[k] = 1
            excess -= sizes[k] * step
    return d * sizes


def continuous_by_bisection(total, weights, lower, upper):
    """clip(c * w, lo, up) with sum == total, c found by bisection (spill to zero weights)."""
    weights, lower, upper = (np.asarray(a, float) for a in (weights, lower, upper))
    active = weights > 0

    def s(c):
        return np.where(active, np.clip(c * weights, lower, upper), lower).sum()

    if total >= np.where(active, upper, lower).sum():
        t = np.where(active, upper, lower)
        left = total - t.sum()
        idle = ~active
        if left > 0 and idle.any():
            t[idle] = continuous_by_bisection(
                total - t[active].sum(), upper[idle], lower[idle], upper[idle]
            )
        return t
    lo, hi = 0.0, 1.0
    while s(hi) < total:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if s(mid) < total else (lo, mid)
    return np.where(active, np.clip(hi * weights, lower, upper), lower)


def reference_drop(sizes, errors, density, mode="paper", min_per_class=0):
    sizes = np.asarray(sizes, float)
    errors = np.asarray(errors, float)
    total = np.floor(density * sizes.sum() + 0.5)
    weights = errors * sizes if mode == "paper" else errors.copy()
    weights[sizes == 0] = 0
    if not (weights > 0).any():
        weights = sizes.copy()
    return continuous_by_bisection(total, weights, np.minimum(sizes, min_per_class), sizes)


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuotaWarning)
        return fn(*args, **kwargs)


# --- hand-worked examples ---------------------------------------------------------------------


def test_kept_fraction_is_proportional_to_error_when_nothing_saturates():
    # c * 100 * (0.1 + 0.2 + 0.3) = 150  =>  c = 2.5, fractions 0.25, 0.5, 0.75
    assert drop_quotas([100, 100, 100], [0.1, 0.2, 0.3], 0.5).tolist() == [25, 50, 75]


def test_saturation_cascades_over_two_rounds():
    # budget 280. Round 1: c = 280/185, class 3 needs 136 > 100: kept whole.
    # Round 2: c = 180/95, class 2 needs 113.7 > 100: kept whole.
    # Round 3: c = 80/35 = 2.2857: classes 0, 1 get 11.43 and 68.57 -> 11 and 69.
    counts = drop_quotas([100, 100, 100, 100], [0.05, 0.3, 0.6, 0.9], 0.7)
    assert counts.tolist() == [11, 69, 100, 100]
    assert paper_algorithm_1([100] * 4, [0.05, 0.3, 0.6, 0.9], 0.7) == pytest.approx(
        [80 / 35 * 0.05 * 100, 80 / 35 * 0.3 * 100, 100, 100]
    )


def test_paper_and_count_modes_differ_on_imbalanced_classes():
    sizes, errors = [10, 100, 1000], [0.5, 0.3, 0.1]
    # paper: fractions 0.5c, 0.3c, 0.1c; class 0 saturates; 30c + 100c = 323 -> 74.5, 248.5
    assert drop_quotas(sizes, errors, 0.3, mode="paper").tolist() == [10, 75, 248]
    # count: counts 0.5c, 0.3c, 0.1c; classes 0 and 1 saturate; 0.1c = 223
    assert drop_quotas(sizes, errors, 0.3, mode="count").tolist() == [10, 100, 223]


def test_modes_agree_on_balanced_classes():
    sizes, errors = [50, 50, 50], [0.2, 0.5, 0.1]
    assert np.array_equal(
        drop_quotas(sizes, errors, 0.4, mode="paper"), drop_quotas(sizes, errors, 0.4, mode="count")
    )


def test_remainder_ties_go_to_the_lower_class_id():
    # budget 3 over two equal classes: 1.5 each, one extra sample to the lower id
    assert drop_quotas([3, 3], [0.5, 0.5], 0.5).tolist() == [2, 1]


def test_budget_rounds_half_up():
    assert budget(5, 0.5) == 3  # 2.5 -> 3, not banker's 2
    assert budget(7, 0.5) == 4
    assert drop_quotas([5], [0.3], 0.5).tolist() == [3]


# --- edge cases -------------------------------------------------------------------------------


def test_all_errors_zero_fall_back_to_proportional_with_a_warning():
    with pytest.warns(QuotaWarning, match="no signal"):
        counts = drop_quotas([40, 60], [0.0, 0.0], 0.5)
    assert counts.tolist() == [20, 30]


def test_a_zero_error_class_keeps_nothing_and_is_named_in_a_warning():
    with pytest.warns(QuotaWarning, match=r"\['trouser'\].*min_per_class"):
        counts = drop_quotas([100, 100], [0.0, 0.4], 0.3, class_names=["trouser", "shirt"])
    assert counts.tolist() == [0, 60]


def test_min_per_class_keeps_some_of_a_zero_error_class():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        counts = drop_quotas([100, 100], [0.0, 0.4], 0.3, min_per_class=5)
    assert counts.tolist() == [5, 55]


def test_min_per_class_keeps_a_small_class_whole():
    counts = drop_quotas([3, 100, 100], [0.0, 0.5, 0.5], 0.5, min_per_class=10)
    assert counts[0] == 3 and counts.sum() == budget(203, 0.5)


def test_infeasible_min_per_class_is_a_value_error():
    with pytest.raises(ValueError, match=r"min_per_class=30 needs 60 samples.*only 20"):
        drop_quotas([100, 100], [0.1, 0.2], 0.1, min_per_class=30)


def test_budget_beyond_the_erring_classes_spills_to_zero_error_classes_by_size():
    # budget 270: the erring class takes all its 100, the zero-error classes share 170 as 1:1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        counts = drop_quotas([100, 100, 100], [0.0, 0.0, 0.5], 0.9)
    assert counts.tolist() == [85, 85, 100]


def test_density_zero_keeps_nothing_and_one_keeps_everything():
    sizes, errors = [10, 20, 30], [0.1, 0.0, 0.3]
    assert quiet(drop_quotas, sizes, errors, 0.0).tolist() == [0, 0, 0]
    assert quiet(drop_quotas, sizes, errors, 1.0).tolist() == sizes


def test_a_class_with_no_samples_keeps_nothing():
    counts = drop_quotas([0, 50, 50], [0.9, 0.2, 0.2], 0.5, min_per_class=3)
    assert counts.tolist() == [0, 25, 25]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"density": 1.5}, "density must be a number in \\[0, 1\\]"),
        ({"density": float("nan")}, "density"),
        ({"density": "half"}, "density"),
        ({"class_sizes": [10, -1, 5]}, "class_sizes must be non-negative"),
        ({"class_sizes": [10.5, 1, 5]}, "class_sizes must hold whole numbers"),
        ({"class_errors": [0.1, 1.2, 0.3]}, "class_errors must lie in \\[0, 1\\]"),
        ({"class_errors": [0.1, float("nan"), 0.3]}, "class_errors must lie in \\[0, 1\\]"),
        ({"class_errors": [0.1, 0.2]}, "class_errors has 2 entries but class_sizes has 3"),
        ({"mode": "fraction"}, r"mode must be one of \['paper', 'count', 'saturating'\]"),
        ({"min_per_class": -1}, "min_per_class must be a non-negative int"),
        ({"min_per_class": 1.5}, "min_per_class must be a non-negative int"),
    ],
)
def test_bad_input_is_a_value_error_naming_the_argument(kwargs, message):
    args = {"class_sizes": [10, 20, 30], "class_errors": [0.1, 0.2, 0.3], "density": 0.5}
    args.update(kwargs)
    sizes, errors, density = args.pop("class_sizes"), args.pop("class_errors"), args.pop("density")
    with pytest.raises(ValueError, match=message):
        drop_quotas(sizes, errors, density, **args)


# --- the other rules --------------------------------------------------------------------------


def test_proportional_keeps_the_same_fraction_of_every_class_with_an_exact_total():
    counts = proportional_quotas([10, 33, 57], 0.3)
    assert counts.tolist() == [3, 10, 17]
    assert counts.sum() == 30


def test_uniform_is_water_filled_over_small_classes():
    # budget 60 over classes of 5, 100, 100: the small class is kept whole, the others split 55
    assert uniform_quotas([5, 100, 100], 60 / 205).tolist() == [5, 28, 27]


def test_uniform_counts_share_an_integer_total():
    assert uniform_counts([0, 4, 10], 9).tolist() == [0, 4, 5]
    with pytest.raises(ValueError, match="total must lie in"):
        uniform_counts([1, 2], 4)


def test_quotas_from_selection_count_the_chosen_rows_per_class():
    labels = np.array([0, 0, 1, 2, 2, 2])
    assert quotas_from_selection(labels, [0, 3, 5], 4).tolist() == [1, 0, 2, 0]
    with pytest.raises(ValueError, match="indices must lie in"):
        quotas_from_selection(labels, [6], 3)


# --- properties against the references ---------------------------------------------------------

sizes_st = st.lists(st.integers(0, 500), min_size=1, max_size=12)
error_st = st.one_of(st.just(0.0), st.floats(0.001, 1.0))


@st.composite
def problems(draw):
    sizes = draw(sizes_st)
    errors = draw(st.lists(error_st, min_size=len(sizes), max_size=len(sizes)))
    density = draw(st.floats(0.0, 1.0))
    mode = draw(st.sampled_from(["paper", "count"]))
    min_per_class = draw(st.integers(0, 20))
    return sizes, errors, density, mode, min_per_class


@settings(max_examples=400, deadline=None)
@given(problems())
def test_counts_are_exact_bounded_and_within_one_of_the_continuous_solution(problem):
    sizes, errors, density, mode, min_per_class = problem
    total = budget(sum(sizes), density)
    assume(np.minimum(sizes, min_per_class).sum() <= total)
    counts = quiet(drop_quotas, sizes, errors, density, mode=mode, min_per_class=min_per_class)

    assert counts.dtype == np.int64
    assert counts.sum() == total
    assert np.all(counts <= sizes)
    assert np.all(counts >= np.minimum(sizes, min_per_class))
    continuous = reference_drop(sizes, errors, density, mode, min_per_class)
    assert np.all(np.abs(counts - continuous) < 1 + 1e-6)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(1, 500), min_size=1, max_size=10).flatmap(
        lambda s: st.tuples(
            st.just(s),
            st.lists(st.floats(0.01, 1.0), min_size=len(s), max_size=len(s)),
            st.floats(0.0, 1.0),
        )
    )
)
def test_paper_mode_matches_algorithm_1_of_the_paper(problem):
    sizes, errors, density = problem
    counts = drop_quotas(sizes, errors, density)
    # Algorithm 1 with the integer budget the counts must sum to: round(d * N) / N.
    exact = paper_algorithm_1(sizes, errors, budget(sum(sizes), density) / sum(sizes))
    assert np.all(np.abs(counts - exact) < 1 + 1e-6)


@settings(max_examples=200, deadline=None)
@given(sizes_st, st.floats(0.0, 1.0))
def test_proportional_and_uniform_are_exact_and_bounded(sizes, density):
    for rule in (proportional_quotas, uniform_quotas):
        counts = rule(sizes, density)
        assert counts.sum() == budget(sum(sizes), density)
        assert np.all((counts >= 0) & (counts <= sizes))
    # the continuous solution shares the (rounded) budget exactly in proportion to size
    continuous = np.asarray(sizes) * budget(sum(sizes), density) / max(sum(sizes), 1)
    assert np.all(np.abs(proportional_quotas(sizes, density) - continuous) < 1)


@settings(max_examples=200, deadline=None)
@given(problems(), st.permutations(range(12)))
def test_relabelling_classes_permutes_the_counts_without_ties(problem, perm):
    sizes, errors, density, mode, _ = problem
    perm = [p for p in perm if p < len(sizes)]
    a = quiet(drop_quotas, sizes, errors, density, mode=mode)
    b = quiet(drop_quotas, np.asarray(sizes)[perm], np.asarray(errors)[perm], density, mode=mode)
    continuous = reference_drop(sizes, errors, density, mode)
    remainders = continuous - np.floor(continuous)
    # The rule sees classes, not ids: only ties in the rounding may depend on the order.
    assume(len(set(np.round(remainders, 6))) == len(remainders))
    assert np.array_equal(a[perm], b)


# --- robust DRoP: strength and floor --------------------------------------------------------------


def test_a_floor_keeps_half_of_each_share_and_the_rest_follows_the_errors():
    # Budget 100; each class's share is 50, so the floor is 25; class 1 has no error.
    assert drop_quotas([100, 100], [0.5, 0.0], 0.5, floor=0.5).tolist() == [75, 25]
    # A small class's floor comes from the uniform share B / K = 60, not its 10% of 20 rows.
    assert drop_quotas([580, 20], [0.5, 0.01], 0.2, floor=0.5).tolist()[1] == 20


def test_strength_zero_is_proportional_and_one_is_the_paper_rule():
    sizes, errors = [300, 120, 40, 900], [0.3, 0.05, 0.0, 0.1]
    assert quiet(drop_quotas, sizes, errors, 0.4, strength=0.0).tolist() == (
        proportional_quotas(sizes, 0.4).tolist()
    )
    assert quiet(drop_quotas, sizes, errors, 0.4, strength=1.0, floor=0.0).tolist() == (
        quiet(drop_quotas, sizes, errors, 0.4).tolist()
    )


def test_strength_tempers_the_contrast_between_classes():
    sizes, errors = [1000, 1000], [0.4, 0.1]
    kept = [drop_quotas(sizes, errors, 0.3, strength=s)[0] for s in (0.0, 0.25, 0.5, 1.0)]
    assert kept == sorted(kept) and kept[0] == 300 and kept[-1] == 480


@pytest.mark.parametrize(("name", "value"), [("strength", -0.1), ("floor", 1.5), ("floor", "x")])
def test_strength_and_floor_outside_zero_one_are_refused(name, value):
    with pytest.raises(ValueError, match=f"{name} must be a number in \\[0, 1\\]"):
        drop_quotas([10, 10], [0.1, 0.2], 0.5, **{name: value})


@settings(max_examples=400, deadline=None)
@given(problems(), st.floats(0.0, 1.0), st.floats(0.0, 0.5))
def test_robust_counts_are_exact_bounded_and_respect_the_floor(problem, strength, floor):
    sizes, errors, density, mode, _ = problem
    sizes_a = np.array(sizes)
    total = budget(sum(sizes), density)
    counts = quiet(drop_quotas, sizes, errors, density, mode=mode, strength=strength, floor=floor)
    assert counts.sum() == total
    assert np.all((counts >= 0) & (counts <= sizes_a))
    # floor <= 0.5 always fits in the budget: sum_k max(B N_k / N, B / K) <= 2 B. (The share is
    # of the budget B, not d N_k: those differ by up to half a sample, enough to break 2 B.)
    proportional = total * sizes_a / max(sum(sizes), 1)
    share = np.maximum(proportional, total / max(np.count_nonzero(sizes_a), 1))
    assert np.all(counts >= np.floor(np.minimum(sizes_a, floor * share) + 1e-9))


@settings(max_examples=200, deadline=None)
@given(problems(), st.floats(0.0, 1.0))
def test_any_floor_keeps_an_exact_budget(problem, floor):
    sizes, errors, density, mode, _ = problem
    counts = quiet(drop_quotas, sizes, errors, density, mode=mode, floor=floor)
    assert counts.sum() == budget(sum(sizes), density) and np.all(counts <= np.array(sizes))


@settings(max_examples=300, deadline=None)
@given(problems(), st.floats(0.0, 1.0))
def test_a_floor_and_min_per_class_together_keep_an_exact_budget(problem, floor):
    sizes, errors, density, mode, min_per_class = problem
    total = budget(sum(sizes), density)
    assume(np.minimum(sizes, min_per_class).sum() <= total)
    counts = quiet(
        drop_quotas, sizes, errors, density, mode=mode, floor=floor, min_per_class=min_per_class
    )
    assert counts.sum() == total and np.all(counts <= np.array(sizes))
    assert np.all(counts >= np.minimum(sizes, min_per_class))


def test_a_floor_never_pushes_min_per_class_over_the_budget():
    counts = drop_quotas([1000, 10, 10], [0.1, 0.5, 0.5], 0.05, floor=1.0, min_per_class=10)
    assert counts.sum() == budget(1020, 0.05) == 51 and counts[1:].tolist() == [10, 10]


# --- saturating mode ----------------------------------------------------------------------------


def reference_saturating(sizes, errors, density, floor=0.0):
    """The saturating rule from its definition: the count rule's continuous solution (bisection)
    up to the scale at which the first class is kept whole, its whole rows, then the rest handed
    out one row at a time to each class with room in turn (lowest class id first)."""
    sizes = np.asarray(sizes, int)
    errors = np.asarray(errors, float)
    total = budget(int(sizes.sum()), density)
    nonempty = max(np.count_nonzero(sizes), 1)
    lower = np.minimum(sizes, np.floor(floor * total / nonempty + 1e-9))
    hard = (errors > 0) & (sizes > 0)
    base = lower.copy()
    if hard.any():
        first_whole = (sizes[hard] / errors[hard]).min()
        at_first_whole = np.where(hard, np.clip(first_whole * errors, lower, sizes), lower)
        weights = np.where(sizes > 0, errors, 0.0)
        if at_first_whole.sum() > total:
            targets = continuous_by_bisection(total, weights, lower, sizes)
        else:
            targets = at_first_whole
        base = np.floor(targets + 1e-9).astype(int)
    counts = base.copy()
    while counts.sum() < total:
        for k in range(len(sizes)):
            if counts[k] < sizes[k] and counts.sum() < total:
                counts[k] += 1
    return counts


@settings(max_examples=400, deadline=None)
@given(problems(), st.sampled_from([0.0, 0.25, 0.5, 1.0]))
def test_saturating_counts_match_their_definition(problem, floor):
    sizes, errors, density, _, _ = problem
    counts = quiet(drop_quotas, sizes, errors, density, mode="saturating", floor=floor)
    assert counts.dtype == np.int64 and counts.sum() == budget(sum(sizes), density)
    assert np.all((counts >= 0) & (counts <= np.array(sizes)))
    expected = reference_saturating(sizes, errors, density, floor)
    # The continuous solutions agree to float precision; a count may differ where a target
    # lies within 1e-9 of a whole number.
    assert np.abs(counts - expected).max() <= 1


@settings(max_examples=300, deadline=None)
@given(problems(), st.floats(0.0, 1.0))
def test_saturating_counts_respect_the_floor_and_min_per_class(problem, floor):
    sizes, errors, density, _, min_per_class = problem
    sizes_a, total = np.array(sizes), budget(sum(sizes), density)
    assume(np.minimum(sizes_a, min_per_class).sum() <= total)
    counts = quiet(
        drop_quotas, sizes, errors, density, mode="saturating", floor=floor,
        min_per_class=min_per_class,
    )  # fmt: skip
    assert counts.sum() == total and np.all(counts <= sizes_a)
    assert np.all(counts >= np.minimum(sizes_a, min_per_class))
    share = total / max(np.count_nonzero(sizes_a), 1)  # the floor is of the uniform share
    assert np.all(counts >= np.minimum(np.floor(np.minimum(sizes_a, floor * share) + 1e-9), total))


def test_saturating_is_the_count_rule_until_a_class_is_kept_whole():
    sizes, errors = [1000, 1000, 1000], [0.1, 0.2, 0.3]
    # Budget 600 at c = 1000: 100 / 200 / 300, no class whole: exactly the count rule.
    assert drop_quotas(sizes, errors, 0.2, mode="saturating").tolist() == [100, 200, 300]
    assert drop_quotas(sizes, errors, 0.2, mode="count").tolist() == [100, 200, 300]


def test_saturating_shares_the_rest_equally_once_a_class_is_kept_whole():
    # The tail class (40 rows, error 0.8) is whole at c = 50: 5 / 15 / 40 rows; the 2,040 rows
    # left of the budget of 2,100 then go in equal shares (1,020 each) to the two large classes,
    # where the count rule would keep giving them rows in proportion to error (1:3).
    counts = drop_quotas([2980, 2980, 40], [0.1, 0.3, 0.8], 0.35, mode="saturating")
    assert counts.tolist() == [5 + 1020, 15 + 1020, 40]
    count_rule = drop_quotas([2980, 2980, 40], [0.1, 0.3, 0.8], 0.35, mode="count")
    assert count_rule.tolist() == [515, 1545, 40]


def test_saturating_falls_back_to_equal_shares_when_no_error_carries_signal():
    with pytest.warns(QuotaWarning, match="class-balanced"):
        counts = drop_quotas([500, 100, 20], [0.0, 0.0, 0.0], 0.5, mode="saturating")
    assert counts.tolist() == uniform_quotas([500, 100, 20], 0.5).tolist() == [190, 100, 20]


def test_the_saturating_floor_is_a_share_of_the_uniform_share():
    # Budget 600 over 3 classes: a floor of 0.5 is 100 rows each, whatever the class size; the
    # zero-error class keeps its floor (the paper and count modes' floor would be half of its
    # proportional share, 250).
    counts = drop_quotas([1000, 500, 500], [0.0, 0.3, 0.1], 0.3, mode="saturating", floor=0.5)
    assert counts[0] == 100
    assert drop_quotas([1000, 500, 500], [0.0, 0.3, 0.1], 0.3, mode="count", floor=0.5)[0] == 150
