"""Per-class errors with their uncertainty: how much a validation error of 1/18 really says.

DRoP sets each class's kept fraction from its validation error ``e_k = m_k / n_k`` (``m_k``
mistakes among ``n_k`` validation images). With small validation splits ``e_k`` is noisy: 0 of 18
and 1 of 18 are both compatible with a true error of 5%. This module gives

- :func:`wilson_interval`: a confidence interval for each error (Wilson score interval);
- :func:`fit_beta_prior` and :func:`beta_posterior`: errors shrunk towards the pooled error
  by as much as the between-class spread allows (a Beta prior fitted across classes, each class
  weighed by its support);
- :class:`ClassErrors`: errors with their support and mistakes, as one table;
- :func:`class_errors_from_predictions`: the same from the predictions of your own model.

numpy only at import (pandas when a table is asked for): usable without torch or ``datasets``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MAX_PRIOR_STRENGTH",
    "MIN_PRIOR_STRENGTH",
    "BetaPrior",
    "ClassErrors",
    "beta_posterior",
    "class_errors_from_predictions",
    "empirical_bayes_prior",
    "fit_beta_prior",
    "shrink_errors",
    "wilson_interval",
]

# The range of the fitted prior strength (its weight, in validation images): see
# empirical_bayes_prior. At the top the posterior is the pooled error for any realistic support;
# at the bottom it is the class's own error to within 0.1/(n + 0.1).
MIN_PRIOR_STRENGTH = 0.1
MAX_PRIOR_STRENGTH = 1e4


def _counts(mistakes: ArrayLike, support: ArrayLike) -> tuple[NDArray, NDArray]:
    """Mistakes and support as float arrays of one shape, checked: 0 <= mistakes <= support."""
    m = np.asarray(mistakes, dtype=np.float64)
    n = np.asarray(support, dtype=np.float64)
    try:
        m, n = np.broadcast_arrays(m, n)
    except ValueError:
        raise ValueError(
            f"mistakes (shape {m.shape}) and support (shape {n.shape}) must have one shape"
        ) from None
    if not np.isfinite(n).all() or (n < 0).any():
        raise ValueError(f"support must be finite and >= 0; got {n[~(np.isfinite(n) & (n >= 0))]}")
    bad = ~np.isfinite(m) | (m < 0) | (m > n)
    if bad.any():
        raise ValueError(
            f"mistakes must lie between 0 and support; got mistakes {m[bad]} for support {n[bad]}"
        )
    return m, n


def wilson_interval(
    mistakes: ArrayLike, support: ArrayLike, confidence: float = 0.95
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Wilson score interval for the error rate ``mistakes / support`` of each class.

    With ``p = m / n`` and ``z`` the ``(1 + confidence) / 2`` quantile of the standard normal
    (1.96 for 95%), the interval is (Wilson 1927; Brown, Cai & DasGupta 2001, eq. 4)::

        center = (p + z^2 / (2n)) / (1 + z^2 / n)
        half   = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / (4 n^2))
        (low, high) = (center - half, center + half)

    Unlike the normal ("Wald") interval it never leaves [0, 1] and is not empty at 0 errors:
    0 of 18 gives (0, 0.176). ``mistakes`` may be fractional (a mean over initialisations: then
    ``support`` is the number of distinct images, the sample the interval is about).
    Returns ``(low, high)`` arrays of the broadcast shape, NaN where ``support == 0``.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1; got {confidence!r}")
    m, n = _counts(mistakes, support)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = m / n
        denominator = 1 + z**2 / n
        center = (p + z**2 / (2 * n)) / denominator
        half = z / denominator * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    # Exactly 0 at no mistake and 1 at all mistakes (the formula's value, but for rounding).
    low = np.where(n > 0, np.where(m == 0, 0.0, np.clip(center - half, 0.0, 1.0)), np.nan)
    high = np.where(n > 0, np.where(m == n, 1.0, np.clip(center + half, 0.0, 1.0)), np.nan)
    return low, high


def beta_posterior(
    mistakes: ArrayLike, support: ArrayLike, prior_mean: float, prior_strength: float
) -> NDArray[np.float64]:
    """Posterior mean error of each class under a Beta prior: ``(m + s p) / (n + s)``.

    The prior ``Beta(s p, s (1 - p))`` has mean ``p = prior_mean`` and weighs as much as
    ``s = prior_strength`` validation images; after ``m`` mistakes in ``n`` images the posterior is
    ``Beta(s p + m, s (1 - p) + n - m)``, whose mean is ``(m + s p) / (n + s)`` (Gelman et al.,
    *Bayesian Data Analysis*, 3rd ed., sec. 2.4 and 5.3). It lies between the raw error ``m / n``
    and ``p``, nearer ``p`` the smaller ``n`` is against ``s``; a class with no support gets ``p``.
    """
    m, n = _counts(mistakes, support)
    if not 0 <= prior_mean <= 1:
        raise ValueError(f"prior_mean must lie in [0, 1]; got {prior_mean!r}")
    if not (np.isfinite(prior_strength) and prior_strength > 0):
        raise ValueError(f"prior_strength must be finite and > 0; got {prior_strength!r}")
    return (m + prior_strength * prior_mean) / (n + prior_strength)


@dataclass(frozen=True)
class BetaPrior:
    """A Beta prior fitted across classes (:func:`fit_beta_prior`), with why it came out so.

    ``status`` is ``"shrunk"`` (errors move towards ``mean`` by their support), ``"pooled"`` (no
    evidence of real differences: every error becomes ``mean``) or ``"unshrunk"`` (the classes
    differ far beyond their noise: each keeps its own error); ``why`` says it in words.
    """

    mean: float
    strength: float
    status: str
    why: str

    def as_dict(self) -> dict[str, float | str]:
        return {
            "mean": self.mean,
            "strength": self.strength,
            "status": self.status,
            "why": self.why,
        }


def fit_beta_prior(mistakes: ArrayLike, support: ArrayLike) -> BetaPrior:
    """A Beta prior for the class errors: support-weighted method of moments.

    Over the ``K`` classes with ``n_k > 0`` (``N = sum(n_k)``) and raw errors ``e_k = m_k / n_k``::

        p    = sum(m_k) / N                                  pooled error: the prior mean
        S    = sum(n_k (e_k - p)^2)                          spread, each class weighed by n_k
        tau2 = (S - (K - 1) p (1 - p)) / (N - sum(n_k^2) / N - (K - 1))
        s    = p (1 - p) / tau2 - 1                          the prior strength

    Under the beta-binomial model ``Var(e_k) = p (1 - p) / n_k + tau2 (1 - 1 / n_k)`` with
    ``tau2 = p (1 - p) / (s + 1)``; the expectation of ``S`` about the weighted mean is
    ``(K - 1) p (1 - p) + tau2 (N - sum(n_k^2) / N - (K - 1))``, which the formula inverts
    (Kleinman 1973, "Proportions with extraneous variance", weights ``w_k = n_k``). Each class
    weighs as much as its support, so one class of 1 image cannot decide the spread of classes of
    500: its 0 or 1 neither pools their real differences nor frees them from shrinkage. With
    equal supports this is exactly the unweighted estimator (``h = 1 / n``) it replaces.

    Classes whose spread is all noise (``tau2 <= 0``), a single class, an all-0 or all-1 pool,
    or ``n_k = 1`` everywhere give no evidence of real differences: the largest strength,
    :data:`MAX_PRIOR_STRENGTH` (status ``"pooled"``). ``s`` is clipped to
    ``[MIN_PRIOR_STRENGTH, MAX_PRIOR_STRENGTH]`` = [0.1, 1e4]; at the bottom the status is
    ``"unshrunk"``.
    """
    m, n = _counts(mistakes, support)
    m, n = m.ravel(), n.ravel()
    present = n > 0
    if not present.any():
        raise ValueError("support: no class has any validation sample; no prior can be fitted")
    m, n = m[present], n[present]
    k, total = len(n), float(n.sum())
    p = float(m.sum() / total)

    def pooled(why: str) -> BetaPrior:
        return BetaPrior(p, MAX_PRIOR_STRENGTH, "pooled", why)

    if k < 2:
        return pooled("only one class has validation samples")
    if p in (0.0, 1.0):
        return pooled(f"every validation sample was {'missed' if p else 'right'}")
    room = total - float(np.sum(n**2)) / total - (k - 1)
    if room <= 0:
        return pooled("every class has a single validation sample")
    spread = float(np.sum(n * (m / n - p) ** 2))
    excess = (spread - (k - 1) * p * (1 - p)) / room
    if excess <= 0:
        return pooled("the classes' errors differ no more than validation noise would make them")
    strength = p * (1 - p) / excess - 1
    if strength <= MIN_PRIOR_STRENGTH:
        why = "the classes' errors differ far more than validation noise: each keeps its own"
        return BetaPrior(p, MIN_PRIOR_STRENGTH, "unshrunk", why)
    if strength >= MAX_PRIOR_STRENGTH:
        return pooled("the classes' errors differ barely more than validation noise")
    why = f"each error moves towards {p:.3g} by {strength:.3g} / ({strength:.3g} + its support)"
    return BetaPrior(p, float(strength), "shrunk", why)


def shrink_errors(
    errors: ArrayLike, support: ArrayLike
) -> tuple[NDArray[np.float64], BetaPrior | None]:
    """Each error replaced by its posterior mean under the prior fitted across the classes whose
    error and support are known (:func:`fit_beta_prior`, :func:`beta_posterior`); the others
    stay as they are. Returns the errors and the prior (None where fewer than two classes have a
    known support: nothing to fit). What ``DRoPFilter`` does with ``shrink=True``."""
    errors = np.asarray(errors, dtype=np.float64)
    support = np.asarray(support, dtype=np.float64)
    known = ~np.isnan(support) & (support > 0) & ~np.isnan(errors)
    if known.sum() < 2:
        return errors, None
    mistakes = errors[known] * support[known]
    prior = fit_beta_prior(mistakes, support[known])
    shrunk = errors.copy()
    shrunk[known] = beta_posterior(mistakes, support[known], prior.mean, prior.strength)
    return shrunk, prior


def empirical_bayes_prior(mistakes: ArrayLike, support: ArrayLike) -> tuple[float, float]:
    """``(prior_mean, prior_strength)`` of :func:`fit_beta_prior`, to pass to
    :func:`beta_posterior`."""
    prior = fit_beta_prior(mistakes, support)
    return prior.mean, prior.strength


@dataclass(frozen=True, eq=False)
class ClassErrors:
    """Per-class validation errors with the counts they come from.

    ``support[k]`` is the number of validation images of class ``k``; ``mistakes[k]`` the number
    misclassified, summed over ``num_inits`` models judged on the same images (a probe's
    initialisations; 1 for one model), so that ``errors[k] = mistakes[k] / (support[k] *
    num_inits)``, NaN where ``support[k] == 0``. ``train_sizes`` (optional) are the classes'
    training sizes. Arrays are stored read-only; build one with
    :func:`class_errors_from_predictions` or ``ProbeResult.class_errors_with_support``.
    """

    names: tuple[str, ...]
    errors: NDArray[np.float64]
    support: NDArray[np.int64]
    mistakes: NDArray[np.int64]
    train_sizes: NDArray[np.int64] | None = None
    num_inits: int = 1

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.names)
        k = len(names)
        if int(self.num_inits) != self.num_inits or self.num_inits < 1:
            raise ValueError(f"num_inits must be an integer >= 1; got {self.num_inits!r}")
        arrays = {
            "errors": np.array(self.errors, dtype=np.float64),
            "support": _integers("support", self.support),
            "mistakes": _integers("mistakes", self.mistakes),
        }
        if self.train_sizes is not None:
            arrays["train_sizes"] = _integers("train_sizes", self.train_sizes)
        for field, values in arrays.items():
            if values.shape != (k,):
                raise ValueError(f"{field} must hold one value per class ({k}); got {values.shape}")
            values.flags.writeable = False
            object.__setattr__(self, field, values)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "num_inits", int(self.num_inits))
        support, mistakes, errors = arrays["support"], arrays["mistakes"], arrays["errors"]
        total = support * self.num_inits
        if (support < 0).any() or (mistakes < 0).any() or (mistakes > total).any():
            raise ValueError(
                "mistakes must lie between 0 and support * num_inits; got mistakes "
                f"{mistakes.tolist()}, support {support.tolist()}, num_inits {self.num_inits}"
            )
        with np.errstate(invalid="ignore", divide="ignore"):
            expected = np.where(support > 0, mistakes / total, np.nan)
        if not np.allclose(errors, expected, rtol=0, atol=1e-9, equal_nan=True):
            raise ValueError(
                f"errors {errors.tolist()} are not mistakes / (support * num_inits) = "
                f"{expected.tolist()}"
            )

    @classmethod
    def from_counts(
        cls,
        mistakes: ArrayLike,
        support: ArrayLike,
        names: Sequence[str] | None = None,
        *,
        train_sizes: ArrayLike | None = None,
        num_inits: int = 1,
    ) -> ClassErrors:
        """Errors computed from the counts (``names`` default to the class ids)."""
        m, n = _integers("mistakes", mistakes), _integers("support", support)
        with np.errstate(invalid="ignore", divide="ignore"):
            errors = np.where(n > 0, m / (n * num_inits), np.nan)
        names = [str(k) for k in range(len(n))] if names is None else names
        train = None if train_sizes is None else _integers("train_sizes", train_sizes)
        return cls(tuple(names), errors, n, m, train, num_inits)

    @property
    def support_total(self) -> NDArray[np.int64]:
        """Judgements per class: ``support * num_inits`` (``errors = mistakes / support_total``)."""
        return self.support * self.num_inits

    def interval(self, confidence: float = 0.95) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Wilson interval of each error over its ``support`` distinct validation images.

        With several initialisations the error is their mean: the interval is about the finite
        validation sample (the same images for every initialisation), so it uses ``support``, not
        ``support_total``.
        """
        return wilson_interval(self.mistakes / self.num_inits, self.support, confidence)

    def table(self, confidence: float = 0.95) -> pd.DataFrame:
        """One row per class, indexed by class id: name, train_size, support, mistakes, error,
        and the Wilson interval ``error_low``, ``error_high`` at ``confidence``."""
        import pandas as pd

        low, high = self.interval(confidence)
        train = (
            pd.array([pd.NA] * len(self.names), dtype="Int64")
            if self.train_sizes is None
            else pd.array(self.train_sizes, dtype="Int64")
        )
        return pd.DataFrame(
            {
                "name": list(self.names),
                "train_size": train,
                "support": self.support,
                "mistakes": self.mistakes,
                "error": self.errors,
                "error_low": low,
                "error_high": high,
            },
            index=pd.RangeIndex(len(self.names), name="class_id"),
        )


def _integers(name: str, values: ArrayLike, *, ndim: int = 1) -> NDArray[np.int64]:
    """``values`` as int64, refused (naming ``name``) if not integral or of another dimension."""
    array = np.asarray(values)
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D; got shape {array.shape}")
    if array.dtype == bool or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise ValueError(f"{name} must hold integers; got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.floating):
        bad = ~np.isfinite(array) | (array != np.round(array))
        if bad.any():
            raise ValueError(
                f"{name} must hold integers; got {array[bad][:5].tolist()} at positions "
                f"{np.flatnonzero(bad)[:5].tolist()}"
            )
    return array.astype(np.int64)


def class_errors_from_predictions(
    labels: ArrayLike,
    predictions: ArrayLike | None = None,
    *,
    pred_probs: ArrayLike | None = None,
    logits: ArrayLike | None = None,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    groups: ArrayLike | None = None,
    group_names: Sequence[str] | None = None,
) -> ClassErrors:
    """Per-class validation errors of your own model, with their support and mistakes.

    With ``groups`` (a group id per validation sample, e.g. ``read_groups(val, cols).ids``) the
    errors are per group instead, named by ``group_names``: ready for
    ``DRoPFilter(group_column=...)``. A sample's mistake is still a wrong class.

    ``labels`` are the validation labels (class ids); give the model's output as exactly one of
    ``predictions`` (class ids), ``pred_probs`` or ``logits`` (2-D, one column per class; the
    prediction is the argmax, ties to the lower id). The number of classes is ``num_classes``, else
    the length of ``class_names``, else the width of ``pred_probs``/``logits``, else the largest id
    seen plus one. ``.errors`` can go straight to ``DRoPFilter(class_errors=...)``, and
    ``.table()`` shows each with its Wilson interval.
    """
    given = {
        name: value
        for name, value in (
            ("predictions", predictions),
            ("pred_probs", pred_probs),
            ("logits", logits),
        )
        if value is not None
    }
    if len(given) != 1:
        raise ValueError(
            "pass exactly one of predictions, pred_probs or logits; got "
            + (" and ".join(given) if given else "none")
        )
    [(source, values)] = given.items()
    y = _integers("labels", labels)
    if len(y) == 0:
        raise ValueError("labels is empty: no validation sample to measure errors on")
    if class_names is not None:
        class_names = [str(n) for n in class_names]
        if num_classes is not None and num_classes != len(class_names):
            raise ValueError(
                f"class_names has {len(class_names)} names but num_classes is {num_classes}"
            )
        num_classes = len(class_names)
    if num_classes is not None and (int(num_classes) != num_classes or num_classes < 1):
        raise ValueError(f"num_classes must be an integer >= 1; got {num_classes!r}")

    if source == "predictions":
        p = _integers("predictions", values)
    else:
        scores = np.asarray(values, dtype=np.float64)
        if scores.ndim != 2:
            raise ValueError(
                f"{source} must be 2-D (one row per sample, one column per class); "
                f"got shape {scores.shape}"
            )
        if num_classes is not None and scores.shape[1] != num_classes:
            raise ValueError(
                f"{source} has {scores.shape[1]} columns but there are {num_classes} classes"
            )
        num_classes = scores.shape[1] if num_classes is None else num_classes
        if np.isnan(scores).any():
            rows = np.flatnonzero(np.isnan(scores).any(axis=1))
            raise ValueError(f"{source} holds NaN in {len(rows)} rows (first: {rows[:5].tolist()})")
        if source == "pred_probs" and ((scores < 0) | (scores > 1)).any():
            raise ValueError(
                "pred_probs must hold probabilities in [0, 1]; for unnormalised scores pass logits="
            )
        p = scores.argmax(axis=1) if len(scores) else np.zeros(0, np.int64)
    if len(p) != len(y):
        raise ValueError(f"labels has {len(y)} rows but {source} has {len(p)}")

    if num_classes is None:
        num_classes = int(max(y.max(), p.max())) + 1
    num_classes = int(num_classes)
    for name, ids in (("labels", y), ("predictions", p)):
        out = (ids < 0) | (ids >= num_classes)
        if out.any():
            raise ValueError(
                f"{name} must be class ids in [0, {num_classes}); got {ids[out][:5].tolist()} at "
                f"positions {np.flatnonzero(out)[:5].tolist()}"
            )
    if groups is not None:
        return _group_errors(y, p, groups, group_names)
    support = np.bincount(y, minlength=num_classes)
    mistakes = np.bincount(y[p != y], minlength=num_classes)
    return ClassErrors.from_counts(mistakes, support, class_names)


def _group_errors(
    y: NDArray[np.int64], p: NDArray[np.int64], groups: ArrayLike, names: Sequence[str] | None
) -> ClassErrors:
    g = _integers("groups", groups)
    if len(g) != len(y):
        raise ValueError(f"groups has {len(g)} values but labels has {len(y)}: one per sample")
    count = len(names) if names is not None else int(g.max()) + 1
    if g.min() < 0 or g.max() >= count:
        raise ValueError(f"groups must be group ids in [0, {count}); got {g.min()}..{g.max()}")
    support = np.bincount(g, minlength=count)
    mistakes = np.bincount(g[p != y], minlength=count)
    return ClassErrors.from_counts(mistakes, support, None if names is None else list(names))
