"""Which samples to keep, given per-class counts, labels and optionally scores or embeddings.

Pure numpy, vectorised over samples (the only Python loops run over classes, strata or chosen
centres). Every function returns the *sorted* indices of the kept samples, so that
``Dataset.select`` keeps the source order.

Scores are difficulties: a higher score means a harder sample (EL2N, GraNd, forgetting, loss).
For a score where higher means easier (AUM, margin), pass its negation or use ``keep="easy"``.
Ties between equal scores always go to the lower index, and randomness comes from a seeded
``numpy.random.Generator``: the same inputs and seed give the same subset.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .quotas import uniform_counts

__all__ = [
    "ccs",
    "global_random",
    "global_top",
    "k_center",
    "random_within_class",
    "top_within_class",
]

Keep = Literal["hard", "easy"]
Seed = int | np.random.Generator | None

# Half-width of the band of keys that random_within_class sorts, in binomial standard deviations.
_BAND_SDS = 6.0
# Rows per chunk in random_within_class (8 MB of float64 keys).
_CHUNK_ROWS = 1 << 20


def random_within_class(labels: ArrayLike, counts: ArrayLike, seed: Seed = 0) -> NDArray[np.int64]:
    """``counts[k]`` samples of each class ``k``, uniformly at random ("Random+DRoP")."""
    labels, counts = _check_labels_counts(labels, counts)
    return _smallest_keys_per_class(labels, counts, np.random.default_rng(seed))


def top_within_class(
    labels: ArrayLike, counts: ArrayLike, scores: ArrayLike, keep: Keep = "hard"
) -> NDArray[np.int64]:
    """The ``counts[k]`` hardest (or easiest) samples of each class ("Strategy+DRoP")."""
    labels, counts = _check_labels_counts(labels, counts)
    scores = _check_scores(scores, len(labels))
    return _first_per_class(_priority(scores, keep), labels, counts)


def global_top(scores: ArrayLike, n_keep: int, keep: Keep = "hard") -> NDArray[np.int64]:
    """The ``n_keep`` hardest (or easiest) samples overall, blind to classes (the baselines)."""
    scores = _check_scores(scores)
    n_keep = _check_n_keep(n_keep, len(scores))
    return np.sort(_priority(scores, keep)[:n_keep])


def global_random(n_samples: int, n_keep: int, seed: Seed = 0) -> NDArray[np.int64]:
    """``n_keep`` samples drawn uniformly at random without replacement, blind to classes."""
    n_keep = _check_n_keep(n_keep, n_samples)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_samples, size=n_keep, replace=False)).astype(np.int64)


def ccs(
    scores: ArrayLike,
    counts: ArrayLike | int,
    labels: ArrayLike | None = None,
    *,
    beta: float = 0.1,
    num_strata: int = 50,
    seed: Seed = 0,
) -> NDArray[np.int64]:
    """Coverage-centric coreset selection (Zheng et al., ICLR 2023), globally or per class.

    Drops the hardest ``beta`` fraction, splits the remaining score range into ``num_strata``
    equal-width strata, shares the budget equally among strata starting from the smallest (a
    stratum too small for its share is kept whole and the rest moves up), and samples uniformly
    inside each stratum. With ``labels``, ``counts`` is per class and this runs inside every
    class; without, ``counts`` is the global number to keep. If a budget exceeds what is left
    after dropping the hardest ``beta``, fewer hard samples are dropped so that it is met exactly.
    """
    scores = _check_scores(scores)
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must lie in [0, 1), got {beta!r}")
    if isinstance(num_strata, bool) or not isinstance(num_strata, int) or num_strata < 1:
        raise ValueError(f"num_strata must be a positive int, got {num_strata!r}")
    labels, counts = _global_or_per_class(labels, counts, len(scores), "scores")
    rng = np.random.default_rng(seed)

    # Stratum id of every sample, numbered per class so that one random draw serves all classes.
    stratum = np.full(len(scores), -1, dtype=np.int64)
    stratum_counts = np.zeros(len(counts) * num_strata, dtype=np.int64)
    members_by_class = _members_by_class(labels, len(counts))
    for k, members in enumerate(members_by_class):
        if counts[k] == 0:
            continue
        n_drop = min(int(beta * len(members)), len(members) - int(counts[k]))
        # Hardest first, ties to the lower index; the first n_drop are pruned outright.
        kept = members[np.argsort(-scores[members], kind="stable")[n_drop:]]
        low, high = scores[kept].min(), scores[kept].max()
        width = (high - low) / num_strata
        within = (
            np.zeros(len(kept), dtype=np.int64)
            if width == 0
            else np.minimum(((scores[kept] - low) / width).astype(np.int64), num_strata - 1)
        )
        stratum[kept] = k * num_strata + within
        sizes = np.bincount(within, minlength=num_strata)
        stratum_counts[k * num_strata : (k + 1) * num_strata] = uniform_counts(
            sizes, int(counts[k])
        )

    candidates = np.flatnonzero(stratum >= 0)
    return candidates[_smallest_keys_per_class(stratum[candidates], stratum_counts, rng)]


def k_center(
    embeddings: ArrayLike,
    counts: ArrayLike | int,
    labels: ArrayLike | None = None,
    *,
    seed: Seed = 0,
    chunk_size: int = 65536,
) -> NDArray[np.int64]:
    """k-center greedy coreset on embeddings (Sener & Savarese, ICLR 2018), globally or per class.

    Starts from a random sample and repeatedly adds the sample farthest (Euclidean) from the
    chosen centres. Memory is the embeddings plus O(N): one minimum-distance vector, updated in
    chunks of ``chunk_size`` rows; never an N x N matrix. With ``labels``, ``counts`` is per class
    and centres are chosen inside each class.
    """
    x = np.asarray(embeddings)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (samples x dims), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating) or x.dtype.itemsize < 4:
        x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise ValueError("embeddings must be finite, found NaN or inf")
    labels, counts = _global_or_per_class(labels, counts, len(x), "embeddings")
    rng = np.random.default_rng(seed)
    chosen = [
        members[_k_center_greedy(x[members], int(counts[k]), rng, chunk_size)]
        for k, members in enumerate(_members_by_class(labels, len(counts)))
        if counts[k] > 0
    ]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


# --- the shared machinery ---------------------------------------------------------------------


def _smallest_keys_per_class(
    labels: NDArray[np.int64], counts: NDArray[np.int64], rng: np.random.Generator
) -> NDArray[np.int64]:
    """Give every sample an i.i.d. uniform key and keep the ``counts[k]`` smallest keys of each
    class: a uniformly random subset of each class, in O(N).

    The ``n_k`` smallest of ``N_k`` uniform keys lie near the quantile ``q_k = n_k / N_k``: every
    key below ``q_k - eps_k`` is kept, only keys inside the band ``[q_k - eps_k, q_k + eps_k)`` are
    sorted, where ``eps_k`` is 6 binomial standard deviations (plus a margin for small classes).
    If a band ever holds too few keys, a full sort of the same keys decides: the result is the
    same either way.
    """
    num_classes = len(counts)
    if len(labels) == 0:
        return np.zeros(0, dtype=np.int64)
    sizes = np.bincount(labels, minlength=num_classes)
    n = np.maximum(sizes, 1)
    q = counts / n
    eps = _BAND_SDS * np.sqrt(q * (1.0 - q) / n) + 4.0 / n
    low, high = q - eps, q + eps
    replay = _copy(rng)

    sure = np.empty(len(labels), dtype=bool)
    taken = np.zeros(num_classes, dtype=np.int64)
    band_rows, band_keys = [], []
    # Chunks keep every temporary small enough to be reused between chunks: fresh 80 MB arrays
    # would be page-faulted in on every call, which costs more than the arithmetic on them.
    for start in range(0, len(labels), _CHUNK_ROWS):
        chunk = labels[start : start + _CHUNK_ROWS]
        keys = rng.random(len(chunk))  # the same stream as one draw of N keys
        below = keys < low[chunk]
        sure[start : start + len(chunk)] = below
        taken += np.bincount(chunk[below], minlength=num_classes)
        rows = np.flatnonzero(~below & (keys < high[chunk]))
        band_rows.append(rows + start)
        band_keys.append(keys[rows])
    band = np.concatenate(band_rows)
    band_labels = labels[band]
    need = counts - taken
    if np.any(need < 0) or np.any(np.bincount(band_labels, minlength=num_classes) < need):
        keys = replay.random(len(labels))
        return _first_per_class(np.argsort(keys, kind="stable"), labels, counts)
    order = np.argsort(np.concatenate(band_keys), kind="stable")
    sure[band[_first_per_class(order, band_labels, need)]] = True
    return np.flatnonzero(sure)


def _copy(rng: np.random.Generator) -> np.random.Generator:
    """A generator that will draw the same numbers as ``rng`` from here on."""
    bit_generator = type(rng.bit_generator)()
    bit_generator.state = rng.bit_generator.state
    return np.random.Generator(bit_generator)


def _first_per_class(
    order: NDArray[np.int64], labels: NDArray[np.int64], counts: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Keep the first ``counts[k]`` samples of each class ``k`` in the priority ``order``.

    A stable sort of the ordered labels groups the samples by class while keeping their priority
    inside each class; a sample's rank in its class is then its position minus the class's start.
    """
    ordered_labels = labels[order]
    # Small label types sort by radix in numpy: this is what makes 10M rows fast.
    grouped = order[np.argsort(_compact(ordered_labels, len(counts)), kind="stable")]
    starts = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=len(counts)))[:-1]])
    grouped_labels = labels[grouped]
    rank = np.arange(len(grouped)) - starts[grouped_labels]
    mask = np.zeros(len(labels), dtype=bool)
    mask[grouped[rank < counts[grouped_labels]]] = True
    return np.flatnonzero(mask)


def _priority(scores: NDArray[np.float64], keep: Keep) -> NDArray[np.int64]:
    """Sample order, most wanted first; a stable sort leaves ties in index order."""
    if keep == "hard":
        return np.argsort(-scores, kind="stable")
    if keep == "easy":
        return np.argsort(scores, kind="stable")
    raise ValueError(f"keep must be 'hard' or 'easy', got {keep!r}")


def _members_by_class(labels: NDArray[np.int64], num_classes: int) -> list[NDArray[np.int64]]:
    order = np.argsort(_compact(labels, num_classes), kind="stable")
    bounds = np.cumsum(np.bincount(labels, minlength=num_classes))[:-1]
    return np.split(order, bounds)


def _k_center_greedy(
    x: NDArray, n_centres: int, rng: np.random.Generator, chunk_size: int
) -> NDArray[np.int64]:
    n = len(x)
    if n_centres >= n:
        return np.arange(n)
    sq_norms = np.einsum("ij,ij->i", x, x)
    min_dist = np.full(n, np.inf, dtype=x.dtype)
    centres = np.empty(n_centres, dtype=np.int64)
    centre = int(rng.integers(n))
    for i in range(n_centres):
        centres[i] = centre
        for start in range(0, n, chunk_size):
            stop = min(start + chunk_size, n)
            # ||a - c||^2 = ||a||^2 - 2 a.c + ||c||^2: a matrix-vector product per chunk.
            dist = sq_norms[start:stop] - 2.0 * (x[start:stop] @ x[centre]) + sq_norms[centre]
            np.minimum(min_dist[start:stop], dist, out=min_dist[start:stop])
        min_dist[centre] = -np.inf  # never picked again, even among duplicates (min keeps it)
        centre = int(np.argmax(min_dist))
    return np.sort(centres)


def _compact(labels: NDArray[np.int64], num_classes: int) -> NDArray[np.integer]:
    return labels.astype(np.int16 if num_classes <= np.iinfo(np.int16).max else np.int32)


def _global_or_per_class(
    labels: ArrayLike | None, counts: ArrayLike | int, n_samples: int, what: str
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Without labels, one class holding every sample and a global count; else checked as is."""
    if labels is None:
        labels = np.zeros(n_samples, dtype=np.int64)
        counts = np.array([_check_n_keep(int(counts), n_samples)])  # type: ignore[arg-type]
    labels, counts = _check_labels_counts(labels, counts)
    if len(labels) != n_samples:
        raise ValueError(f"{what} has {n_samples} rows but labels has {len(labels)}")
    return labels, counts


def _check_labels_counts(
    labels: ArrayLike, counts: ArrayLike
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    labels = np.asarray(labels)
    counts = np.asarray(counts)
    if labels.ndim != 1 or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
        raise ValueError(
            f"labels must be a 1-D array of class ids, got {labels.dtype} {labels.shape}"
        )
    if counts.ndim != 1 or (counts.size and not np.issubdtype(counts.dtype, np.integer)):
        raise ValueError(
            f"counts must be a 1-D array of integers, got {counts.dtype} {counts.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= len(counts)):
        raise ValueError(
            f"labels must lie in [0, {len(counts)}) (one count per class), "
            f"got {labels.min()}..{labels.max()}"
        )
    sizes = np.bincount(labels, minlength=len(counts))
    bad = np.flatnonzero((counts < 0) | (counts > sizes))
    if bad.size:
        k = bad[0]
        raise ValueError(f"counts[{k}]={counts[k]} but class {k} has {sizes[k]} samples")
    return labels.astype(np.int64, copy=False), counts.astype(np.int64, copy=False)


def _check_scores(scores: ArrayLike, n_samples: int | None = None) -> NDArray[np.float64]:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1:
        raise ValueError(f"scores must be one-dimensional, got shape {scores.shape}")
    if n_samples is not None and len(scores) != n_samples:
        raise ValueError(f"scores has {len(scores)} entries but there are {n_samples} samples")
    bad = np.flatnonzero(~np.isfinite(scores))
    if bad.size:
        raise ValueError(f"scores must be finite; samples {bad[:10].tolist()} are NaN or inf")
    return scores


def _check_n_keep(n_keep: int, n_samples: int) -> int:
    if isinstance(n_keep, bool) or not isinstance(n_keep, int | np.integer):
        raise ValueError(f"the number to keep must be an int, got {n_keep!r}")
    if not 0 <= n_keep <= n_samples:
        raise ValueError(f"the number to keep must lie in [0, {n_samples}], got {n_keep}")
    return int(n_keep)
