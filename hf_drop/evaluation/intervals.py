"""How sure a comparison of two pruning methods is: paired bootstrap intervals over seeds.

Two methods trained with the same seeds are compared seed by seed (the pair shares the probe, the
seed of the subset draw and the model's initialisation). The interval of the mean difference
resamples two sources of noise:

* the seeds: pairs drawn with replacement (the classic paired bootstrap, Efron & Tibshirani,
  *An Introduction to the Bootstrap*, 1993, ch. 16);
* the reported images, when the per-class support is given: each run's per-class accuracy redrawn
  as ``Binomial(n_k, acc_k) / n_k``, and the metric (worst class, average) recomputed. The two
  methods were judged on the *same* images, whose errors correlate; redrawing them independently
  widens the interval, so it errs on the side of "not shown".

Several comparisons at once are more likely to show one difference by chance: each row also has a
Bonferroni interval (level ``1 - (1 - confidence) / m`` for ``m`` comparisons in the table).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

__all__ = ["METRICS", "paired_bootstrap"]


def _worst(acc: NDArray, support: NDArray) -> NDArray:
    return acc.min(axis=-1)


def _average(acc: NDArray, support: NDArray) -> NDArray:
    return (acc * support).sum(axis=-1) / support.sum()


def _bottom3(acc: NDArray, support: NDArray) -> NDArray:
    return np.sort(acc, axis=-1)[..., :3].mean(axis=-1)


# metric name -> f(per-class accuracies [..., K], support [K]) -> metric [...]
METRICS: dict[str, Callable[[NDArray, NDArray], NDArray]] = {
    "worst_class_accuracy": _worst,
    "accuracy": _average,
    "bottom3": _bottom3,
}


def paired_bootstrap(
    runs: pd.DataFrame,
    baseline: str,
    *,
    metric: str = "worst_class_accuracy",
    support: Sequence[int] | NDArray | None = None,
    by: Sequence[str] = ("density",),
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> pd.DataFrame:
    """Each method against ``baseline``, seed by seed, within each group of ``by``.

    ``runs`` has one row per trained run: ``method``, ``seed``, the ``by`` columns, and
    ``class_accuracy`` (a mapping or its JSON, class name -> accuracy, the same classes in every
    run). ``support`` (images per class behind each accuracy, in that order) adds the noise of the
    reported images; without it only the seeds are resampled.

    Returns one row per (group, method): ``pairs`` (seeds both have), the two means, ``diff``
    (method - baseline), ``ci_low``/``ci_high`` (the percentile interval at ``confidence``),
    ``ci_low_adj``/``ci_high_adj`` (Bonferroni over the ``comparisons`` in the table), and
    ``p_boot`` (twice the share of resampled differences on the other side of 0, at most 1).
    Fewer than 2 pairs give NaN intervals.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {sorted(METRICS)}; got {metric!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1; got {confidence!r}")
    missing = [c for c in ("method", "seed", "class_accuracy", *by) if c not in runs.columns]
    if missing:
        raise ValueError(f"runs lacks column(s) {missing}; it needs method, seed, class_accuracy")
    if baseline not in set(runs["method"]):
        raise ValueError(
            f"baseline {baseline!r} is not a method of runs: {sorted(set(runs.method))}"
        )
    table = runs.assign(_acc=[_accuracies(v) for v in runs["class_accuracy"]])
    names = list(table["_acc"].iloc[0])
    if any(list(a) != names for a in table["_acc"]):
        raise ValueError("class_accuracy must name the same classes, in one order, in every run")
    weights = np.ones(len(names)) if support is None else np.asarray(support, dtype=np.int64)
    if len(weights) != len(names) or (weights <= 0).any():
        raise ValueError(f"support must give {len(names)} positive image counts, one per class")
    measure = METRICS[metric]
    rows: list[dict[str, Any]] = []
    groups = table.groupby(list(by), sort=True) if by else [((), table)]
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        base = _by_seed(group[group["method"] == baseline])
        for method in sorted(set(group["method"]) - {baseline}):
            other = _by_seed(group[group["method"] == method])
            seeds = sorted(set(base) & set(other))
            a = np.array([base[s] for s in seeds]).reshape(len(seeds), len(names))
            b = np.array([other[s] for s in seeds]).reshape(len(seeds), len(names))
            row = dict(zip(by, key, strict=True))
            row.update(method=method, baseline=baseline, metric=metric, pairs=len(seeds))
            row.update(
                method_mean=float(measure(b, weights).mean()) if seeds else np.nan,
                baseline_mean=float(measure(a, weights).mean()) if seeds else np.nan,
            )
            row["diff"] = row["method_mean"] - row["baseline_mean"]
            row["_draws"] = (
                _draws(a, b, weights, support is not None, measure, resamples, seed)
                if len(seeds) >= 2
                else None
            )
            rows.append(row)
    return _intervals(rows, confidence)


def _accuracies(value: Any) -> dict[str, float]:
    accuracies = json.loads(value) if isinstance(value, str) else value
    if not isinstance(accuracies, Mapping):
        raise ValueError(f"class_accuracy must be a mapping (or its JSON); got {value!r}")
    return {str(k): float("nan") if v is None else float(v) for k, v in accuracies.items()}


def _by_seed(runs: pd.DataFrame) -> dict[int, list[float]]:
    seeds = runs["seed"].tolist()
    if len(set(seeds)) != len(seeds):
        raise ValueError(
            f"method {runs['method'].iloc[0]!r} has seed(s) run twice in one group: "
            "each pair is one seed"
        )
    return {int(s): list(a.values()) for s, a in zip(seeds, runs["_acc"], strict=True)}


def _draws(
    a: NDArray,
    b: NDArray,
    support: NDArray,
    images: bool,
    measure: Callable[[NDArray, NDArray], NDArray],
    resamples: int,
    seed: int,
) -> NDArray:
    """``resamples`` bootstrap means of (method - baseline)."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(a), size=(resamples, len(a)))
    a, b = a[picks], b[picks]  # [resamples, pairs, classes]
    if images:  # the reported images' noise, per run and class
        a = rng.binomial(support, np.nan_to_num(a)) / support
        b = rng.binomial(support, np.nan_to_num(b)) / support
    return (measure(b, support) - measure(a, support)).mean(axis=1)


def _intervals(rows: list[dict[str, Any]], confidence: float) -> pd.DataFrame:
    m = max(1, sum(row["_draws"] is not None for row in rows))
    alpha, adjusted = 1 - confidence, (1 - confidence) / m
    for row in rows:
        draws = row.pop("_draws")
        if draws is None:
            row.update(ci_low=np.nan, ci_high=np.nan, ci_low_adj=np.nan, ci_high_adj=np.nan)
            row.update(p_boot=np.nan)
            continue
        row["ci_low"], row["ci_high"] = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
        row["ci_low_adj"], row["ci_high_adj"] = np.quantile(draws, [adjusted / 2, 1 - adjusted / 2])
        row["p_boot"] = min(1.0, 2 * min(np.mean(draws <= 0), np.mean(draws >= 0)))
    table = pd.DataFrame(rows)
    table["comparisons"] = m
    return table
