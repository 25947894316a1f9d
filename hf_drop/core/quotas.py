"""How many samples each class keeps: DRoP's Algorithm 1 and the baselines' count rules.

Pure numpy. Every rule here has the same shape: a continuous solution ``t_k = clip(c * w_k,
lo_k, N_k)`` with one constant ``c`` chosen so that ``sum_k t_k`` equals the budget
``round(density * N)`` (water-filling), followed by largest-remainder rounding to integers. The
rules differ only in the weights ``w_k``:

============  ===============  ==================================================
rule          weight ``w_k``   meaning
============  ===============  ==================================================
paper (DRoP)  ``N_k * e_k``    kept *fraction* proportional to error (Algorithm 1)
count         ``e_k``          kept *count* proportional to error (authors' code)
saturating    ``e_k``          count, until a class is kept whole; then equal shares
(strength s)  ``e_k ** s``     in place of ``e_k``: 0 is proportional, 1 is DRoP
proportional  ``N_k``          the same density in every class
uniform       ``1``            equal counts, water-filled over small classes
============  ===============  ==================================================

DRoP's robust variants add a *floor* ``lo_k`` (a share of each class that is never pruned,
see :func:`drop_quotas`) and take errors shrunk by their uncertainty
(:mod:`hf_drop.core.uncertainty`); with ``strength=1`` and ``floor=0`` the rule is exactly the paper's.

Reference: Vysogorets, Ahuja, Kempe. "DRoP: Distributionally Robust Data Pruning", ICLR 2025,
Algorithm 1.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .notices import HfDropWarning

__all__ = [
    "QuotaWarning",
    "budget",
    "drop_quotas",
    "proportional_quotas",
    "quotas_from_selection",
    "uniform_quotas",
]

QuotaMode = Literal["paper", "count", "saturating"]
QUOTA_MODES: tuple[QuotaMode, ...] = ("paper", "count", "saturating")


class QuotaWarning(HfDropWarning):
    """A quota rule had to fall back or will drop a whole class."""


def budget(n_samples: int, density: float) -> int:
    """Number of samples kept overall: ``density * n_samples`` rounded half up."""
    density = _check_density(density)
    # floor(x + 0.5) rather than Python's round(): banker's rounding would make 2.5 -> 2 but
    # 3.5 -> 4, a surprise nobody asked for.
    return int(np.floor(density * n_samples + 0.5))


def drop_quotas(
    class_sizes: ArrayLike,
    class_errors: ArrayLike,
    density: float,
    *,
    mode: QuotaMode = "paper",
    strength: float = 1.0,
    floor: float = 0.0,
    min_per_class: int = 0,
    class_names: Sequence[str] | None = None,
) -> NDArray[np.int64]:
    """Per-class sample counts of DRoP (Algorithm 1 of the paper) for a target ``density``.

    With the defaults (``strength=1``, ``floor=0``) this is exactly Algorithm 1.

    ``mode="paper"`` keeps a fraction ``d_k = min(1, c * e_k)`` of class ``k``, with the one
    constant ``c`` for which ``sum_k N_k d_k = density * N``: a class that would need more than all
    of its samples keeps all of them and its excess is shared among the others, again in
    proportion to their error. ``mode="count"`` makes the kept *count* proportional to the error
    instead (what the authors' released code does; it differs from the paper on imbalanced data).
    ``mode="saturating"`` is the count mode until the first class is kept whole; the budget left
    then goes to the classes with room in equal shares, as :func:`uniform_counts` (hf-drop's
    rule, not the paper's: on an extreme long tail the hardest small classes are kept whole early
    and the rest is close to class-balanced, where the paper's weights would keep giving the
    rows to large, mildly hard classes).

    The counts are integers that sum to exactly :func:`budget` ``(N, density)``, never exceed
    ``N_k``, and lie within one sample of the continuous solution for that budget
    (largest-remainder rounding, ties to the lower class id).

    Defined edge cases:

    * all errors zero (no signal): class-proportional quotas, with a :class:`QuotaWarning`;
    * a class with zero error keeps none of its samples, as in the paper, with a
      :class:`QuotaWarning` naming it; ``min_per_class`` guarantees every class
      ``min(min_per_class, N_k)`` samples (a ``ValueError`` if the budget cannot afford that);
    * when the classes with positive error are all kept whole and budget remains, the remainder
      goes to the zero-error classes in proportion to their size;
    * ``density`` 0 keeps nothing, ``density`` 1 keeps everything; an empty class keeps nothing.

    Args:
        class_sizes: ``N_k``, the number of samples of each class.
        class_errors: ``e_k = 1 - recall_k`` on a held-out split, each in ``[0, 1]``.
        density: fraction of the whole dataset to keep, in ``[0, 1]``.
        mode: ``"paper"`` (fraction proportional to error), ``"count"`` or ``"saturating"``.
        strength: ``s`` in ``[0, 1]``: errors enter as ``e_k ** s``, so that 0 gives
            class-proportional quotas, 1 DRoP, and values between temper DRoP's contrasts.
        floor: ``phi`` in ``[0, 1]``: every class keeps at least
            ``min(N_k, phi * max(B * N_k / N, B / K))`` samples, a share ``phi`` of the larger
            of its proportional share of the budget ``B`` (``B N_k / N``, within half a sample
            of ``density * N_k``) and the uniform share ``B / K`` (``K`` non-empty classes); so
            neither a large easy class nor a small one is starved.
            If the floors would exceed the budget they are scaled down together. In
            ``"saturating"`` mode, whose rows tend to equal shares, the floor is ``phi * B / K``.
        min_per_class: smallest number of samples any class keeps (all of it if smaller).
        class_names: names used in warnings; class ids otherwise.
    """
    sizes = _check_sizes(class_sizes)
    errors = _check_errors(class_errors, len(sizes))
    if mode not in QUOTA_MODES:
        raise ValueError(f"mode must be one of {list(QUOTA_MODES)}, got {mode!r}")
    strength = _check_unit("strength", strength)
    floor = _check_unit("floor", floor)
    total = budget(int(sizes.sum()), density)
    lower = _lower_bounds(sizes, min_per_class, total)
    saturating = mode == "saturating"
    lower = np.maximum(lower, _floors(sizes, total, floor, lower, proportional=not saturating))
    names = _names(class_names, len(sizes))

    tempered = errors**strength if strength != 1 else errors.copy()
    weights = tempered * sizes if mode == "paper" else tempered
    weights[sizes == 0] = 0.0
    if not np.any(weights > 0):
        fallback = "class-balanced" if saturating else "class-proportional"
        if total > lower.sum():
            warnings.warn(
                "every class error is zero, so the errors carry no signal about which classes "
                f"are hard: falling back to {fallback} quotas",
                QuotaWarning,
                stacklevel=2,
            )
        share = (sizes > 0).astype(float) if saturating else sizes.astype(float)
        return _round_to_budget(_water_fill(total, share, lower, sizes), lower, sizes)
    if saturating:
        return _saturating(total, weights, lower, sizes)

    targets = _water_fill(total, weights, lower, sizes)
    spill = total - targets.sum()
    if spill > 1e-9 * max(total, 1):
        # Every class with positive error is already kept whole: what is left of the budget can
        # only go to the zero-error classes; share it in proportion to their size.
        idle = weights == 0
        targets[idle] = _water_fill(
            total - targets[~idle].sum(), sizes[idle].astype(float), lower[idle], sizes[idle]
        )
    counts = _round_to_budget(targets, lower, sizes)

    dropped = np.flatnonzero((counts == 0) & (sizes > 0) & (errors == 0))
    if total > 0 and dropped.size:
        warnings.warn(
            f"classes {[names[k] for k in dropped]} have zero error, so DRoP keeps none of their "
            f"samples; pass min_per_class to keep some of each",
            QuotaWarning,
            stacklevel=2,
        )
    return counts


def proportional_quotas(
    class_sizes: ArrayLike, density: float, *, min_per_class: int = 0
) -> NDArray[np.int64]:
    """Keep the same fraction ``density`` of every class, with an exact total."""
    sizes = _check_sizes(class_sizes)
    total = budget(int(sizes.sum()), density)
    lower = _lower_bounds(sizes, min_per_class, total)
    return _round_to_budget(_water_fill(total, sizes.astype(float), lower, sizes), lower, sizes)


def uniform_quotas(
    class_sizes: ArrayLike, density: float, *, min_per_class: int = 0
) -> NDArray[np.int64]:
    """Keep the same number of samples of every class; a class too small for it is kept whole
    and its share goes to the others (water-filling)."""
    sizes = _check_sizes(class_sizes)
    total = budget(int(sizes.sum()), density)
    return uniform_counts(sizes, total, min_per_class=min_per_class)


def uniform_counts(
    group_sizes: ArrayLike, total: int, *, min_per_class: int = 0
) -> NDArray[np.int64]:
    """Share an integer ``total`` equally among groups, water-filled over the small ones."""
    sizes = _check_sizes(group_sizes, name="group_sizes")
    if not 0 <= total <= sizes.sum():
        raise ValueError(f"total must lie in [0, {int(sizes.sum())}], got {total}")
    weights = (sizes > 0).astype(float)
    lower = _lower_bounds(sizes, min_per_class, total)
    return _round_to_budget(_water_fill(total, weights, lower, sizes), lower, sizes)


def quotas_from_selection(
    labels: ArrayLike, indices: ArrayLike, num_classes: int
) -> NDArray[np.int64]:
    """Per-class counts of an existing selection (for "Random+StrategyQ" baselines)."""
    labels = np.asarray(labels)
    indices = np.asarray(indices, dtype=np.int64)
    if indices.size and (indices.min() < 0 or indices.max() >= len(labels)):
        raise ValueError(
            f"indices must lie in [0, {len(labels)}), got {indices.min()}..{indices.max()}"
        )
    return np.bincount(labels[indices], minlength=num_classes).astype(np.int64)


# --- the shared machinery ---------------------------------------------------------------------


def _water_fill(
    total: float, weights: NDArray, lower: NDArray, upper: NDArray
) -> NDArray[np.float64]:
    """Continuous ``t_k = clip(c * w_k, lo_k, up_k)`` (``t_k = lo_k`` where ``w_k = 0``) with
    ``sum t_k = total``, or every positive-weight class at ``up_k`` if ``total`` is out of reach.

    ``S(c) = sum_k t_k(c)`` is piecewise linear and non-decreasing in ``c``, with breakpoints where
    a class leaves its lower bound (``lo_k / w_k``) or reaches its upper bound (``up_k / w_k``).
    Sweeping the sorted breakpoints gives ``c`` exactly in O(K log K): no iteration to converge.
    """
    lower = lower.astype(float)
    upper = upper.astype(float)
    active = weights > 0
    w = weights[active]
    if w.size == 0 or total >= np.where(active, upper, lower).sum():
        return np.where(active, upper, lower)

    # Each class contributes slope w_k between its two breakpoints.
    points = np.concatenate([lower[active] / w, upper[active] / w])
    slope_change = np.concatenate([w, -w])
    order = np.argsort(points, kind="stable")
    points, slope_change = points[order], slope_change[order]
    slope_after = np.cumsum(slope_change)  # slope of S just right of each breakpoint
    # S at each breakpoint: S(0) plus the area under the slope up to it.
    s0 = lower.sum()
    gaps = np.diff(points, prepend=0.0)
    slope_before = np.concatenate([[0.0], slope_after[:-1]])
    s_at = s0 + np.cumsum(slope_before * gaps)
    j = int(np.searchsorted(s_at, total, side="right")) - 1  # last breakpoint with S <= total
    if j < 0 or slope_after[j] <= 0:
        c = points[max(j, 0)]
    else:
        c = points[j] + (total - s_at[j]) / slope_after[j]
    return np.where(active, np.clip(c * weights, lower, upper), lower)


def _saturating(total: int, weights: NDArray, lower: NDArray, sizes: NDArray) -> NDArray[np.int64]:
    """``mode="saturating"``: the count rule's ``clip(c * w_k, lo_k, N_k)`` up to the ``c`` at
    which the first class is kept whole (or the one that spends the budget, if smaller); the whole
    rows of that, and the budget left shared equally among the classes with room."""
    active = weights > 0
    first_whole = float((sizes[active] / weights[active]).min())
    targets = np.where(active, np.clip(first_whole * weights, lower, sizes), lower)
    if targets.sum() > total:  # the budget runs out before any class is kept whole
        targets = _water_fill(total, weights, lower, sizes)
    base = np.floor(targets + 1e-9).astype(np.int64)
    return base + uniform_counts(sizes - base, total - int(base.sum()))


def _round_to_budget(targets: NDArray, lower: NDArray, upper: NDArray) -> NDArray[np.int64]:
    """Largest-remainder rounding of ``targets`` to integers in ``[lower, upper]`` summing to
    ``round(sum(targets))``; ties go to the lower class id."""
    total = int(np.floor(targets.sum() + 0.5))
    # The tolerance absorbs float error in the water-fill (a 4.9999999999 that is really 5).
    counts = np.clip(np.floor(targets + 1e-9), lower, upper).astype(np.int64)
    remainder = targets - counts
    missing = total - int(counts.sum())
    if missing > 0:
        eligible = np.flatnonzero(counts < upper)
        ranked = eligible[np.lexsort((eligible, -remainder[eligible]))]
        counts[ranked[:missing]] += 1
    elif missing < 0:
        eligible = np.flatnonzero(counts > lower)
        ranked = eligible[np.lexsort((-eligible, remainder[eligible]))]
        counts[ranked[:-missing]] -= 1
    return counts


def _lower_bounds(sizes: NDArray, min_per_class: int, total: int) -> NDArray[np.int64]:
    if isinstance(min_per_class, bool) or not isinstance(min_per_class, int | np.integer):
        raise ValueError(f"min_per_class must be a non-negative int, got {min_per_class!r}")
    if min_per_class < 0:
        raise ValueError(f"min_per_class must be a non-negative int, got {min_per_class}")
    lower = np.minimum(sizes, min_per_class)
    if lower.sum() > total:
        raise ValueError(
            f"min_per_class={min_per_class} needs {int(lower.sum())} samples but the density "
            f"allows only {total} in all: lower min_per_class or raise the density"
        )
    return lower


def _floors(
    sizes: NDArray,
    total: int,
    floor: float,
    already: NDArray | None = None,
    *,
    proportional: bool = True,
) -> NDArray[np.int64]:
    """``min(N_k, floor(phi * max(B N_k / N, B / K)))`` (``phi * B / K`` without
    ``proportional``); where that and the counts ``already`` guaranteed (``min_per_class``) would
    exceed the budget ``B``, the floors' excess over ``already`` is scaled down together."""
    already = np.zeros(len(sizes), dtype=np.int64) if already is None else already
    if floor == 0 or total == 0:
        return already
    nonempty = max(int(np.count_nonzero(sizes)), 1)
    share = np.full(len(sizes), total / nonempty)
    if proportional:
        share = np.maximum(share, total * sizes / max(int(sizes.sum()), 1))
    excess = np.maximum(np.minimum(sizes, floor * share) - already, 0.0)
    room = total - int(already.sum())
    if excess.sum() > room:
        excess *= room / excess.sum()
    return already + np.floor(excess + 1e-9).astype(np.int64)


def _check_unit(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def _check_density(density: float) -> float:
    try:
        value = float(density)
    except (TypeError, ValueError):
        raise ValueError(f"density must be a number in [0, 1], got {density!r}") from None
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"density must be a number in [0, 1], got {density!r}")
    return value


def _check_sizes(class_sizes: ArrayLike, name: str = "class_sizes") -> NDArray[np.int64]:
    sizes = np.asarray(class_sizes)
    if sizes.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {sizes.shape}")
    if sizes.size and not np.issubdtype(sizes.dtype, np.integer):
        if not np.issubdtype(sizes.dtype, np.floating) or not np.all(sizes == np.round(sizes)):
            raise ValueError(f"{name} must hold whole numbers, got {sizes!r}")
    if np.any(sizes < 0):
        raise ValueError(f"{name} must be non-negative, got {sizes[sizes < 0][:5]}")
    return sizes.astype(np.int64)


def _check_errors(class_errors: ArrayLike, num_classes: int) -> NDArray[np.float64]:
    errors = np.asarray(class_errors, dtype=float)
    if errors.ndim != 1:
        raise ValueError(f"class_errors must be one-dimensional, got shape {errors.shape}")
    if len(errors) != num_classes:
        raise ValueError(
            f"class_errors has {len(errors)} entries but class_sizes has {num_classes}: "
            "one error per class is expected"
        )
    bad = ~((errors >= 0) & (errors <= 1))  # NaN fails both comparisons
    if np.any(bad):
        raise ValueError(
            f"class_errors must lie in [0, 1] (1 - recall); classes {np.flatnonzero(bad)[:10]} "
            f"have {errors[bad][:10]}"
        )
    return errors


def _names(class_names: Sequence[str] | None, num_classes: int) -> list[str]:
    if class_names is None:
        return [str(k) for k in range(num_classes)]
    if len(class_names) != num_classes:
        raise ValueError(f"class_names has {len(class_names)} entries, expected {num_classes}")
    return list(class_names)
