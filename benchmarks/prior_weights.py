"""How far the support-weighted prior (issue 19) moves the default rule's quotas on the recorded
benchmark shapes, against the unweighted method of moments it replaced.

For each shape's probe (benchmarks/results/shapes/<shape>/probe/class_metrics.json): the prior
both ways, and the default rule's quotas at d = 0.3, 0.5, 0.7 both ways; "moved" is the share of
the budget that changes class (half the L1 distance over the budget). With equal supports the two
estimators are the same formula, so only shapes with unequal validation supports can move.

    python benchmarks/prior_weights.py            # prints a table; writes results/prior_weights.jsonl
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hf_drop.core import rules as R
from hf_drop.core.uncertainty import (
    MAX_PRIOR_STRENGTH,
    MIN_PRIOR_STRENGTH,
    beta_posterior,
    fit_beta_prior,
)

SHAPES = Path(__file__).parent / "results" / "shapes"
OUT = Path(__file__).parent / "results" / "prior_weights.jsonl"


def unweighted_prior(mistakes: np.ndarray, support: np.ndarray) -> tuple[float, float]:
    """The estimator before issue 19 (h = mean(1/n_k)), kept here as the baseline."""
    p, h = mistakes.sum() / support.sum(), np.mean(1 / support)
    if len(support) < 2 or h >= 1 or p in (0.0, 1.0):
        return p, MAX_PRIOR_STRENGTH
    variance = np.sum((mistakes / support - p) ** 2) / (len(support) - 1)
    excess = (variance - p * (1 - p) * h) / (1 - h)
    if excess <= 0:
        return p, MAX_PRIOR_STRENGTH
    return p, float(np.clip(p * (1 - p) / excess - 1, MIN_PRIOR_STRENGTH, MAX_PRIOR_STRENGTH))


def main() -> None:
    rows = []
    for metrics in sorted(SHAPES.glob("*/probe/class_metrics.json")):
        classes = json.loads(metrics.read_text())["classes"]
        sizes = np.array([c["train_size"] for c in classes])
        support = np.array([c["support"] for c in classes], dtype=float)
        errors = np.array([c["error"] for c in classes], dtype=float)
        mistakes = errors * support
        new = fit_beta_prior(mistakes, support)
        old = unweighted_prior(mistakes, support)
        for density in (0.3, 0.5, 0.7):
            quotas = {}
            for name, (mean, strength) in {
                "weighted": (new.mean, new.strength),
                "unweighted": old,
            }.items():
                used = beta_posterior(mistakes, support, mean, strength)
                names = [str(k) for k in range(len(sizes))]
                quotas[name] = R.DRoP().counts(R.QuotaInputs(sizes, density, used, 0, names))
            budget = int(quotas["weighted"].sum())
            moved = np.abs(quotas["weighted"] - quotas["unweighted"]).sum() / 2 / budget
            rows.append({
                "shape": metrics.parent.parent.name, "density": density,
                "support_min": int(support.min()), "support_max": int(support.max()),
                "strength_weighted": round(new.strength, 2), "status": new.status,
                "strength_unweighted": round(old[1], 2), "budget_moved": round(float(moved), 4),
            })  # fmt: skip
    OUT.write_text("".join(json.dumps(r) + "\n" for r in rows))
    header = f"{'shape':18} {'d':>4} {'support':>9} {'s weighted':>11} {'s before':>9} {'moved':>7}"
    print(header)
    for r in rows:
        support = f"{r['support_min']}-{r['support_max']}"
        print(f"{r['shape']:18} {r['density']:4} {support:>9} {r['strength_weighted']:11.4g} "
              f"{r['strength_unweighted']:9.4g} {r['budget_moved']:7.2%}")  # fmt: skip


if __name__ == "__main__":
    main()
