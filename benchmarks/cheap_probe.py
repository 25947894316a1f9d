"""How far a cheaper probe moves the default rule's quotas (issue 19, item 4), against the noise
of the validation split itself.

From the recorded probes (class_metrics.json of each shape: per-epoch recall of every class), for
the default rule (robust DRoP: errors shrunk by their support, floor 0.5) at d = 0.3, 0.5, 0.7:

* ``epoch e``: quotas from the errors after epoch e of the same run, against the final errors.
  The run's learning rate follows a cosine over all its epochs, so epoch e is a snapshot at a
  high learning rate, not a shorter run (which would anneal): a pessimistic stand-in.
* ``noise floor``: quotas from errors redrawn as Binomial(n_k, e_k) / n_k on the validation
  support n_k (a parametric bootstrap, 1,000 draws), against the final quotas: how far the
  quotas move from the validation sample alone. The median and 95th percentile are given.

"Moved" is the share of the budget that changes class: sum |q - q_final| / 2 / budget.

    python benchmarks/cheap_probe.py   # prints a table; writes results/cheap_probe.jsonl
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hf_drop.core import rules as R
from hf_drop.core.uncertainty import shrink_errors

RESULTS = Path(__file__).parent / "results"
OUT = RESULTS / "cheap_probe.jsonl"
DENSITIES = (0.3, 0.5, 0.7)
DRAWS = 1000


def default_quotas(sizes, mistakes, support, density) -> np.ndarray:
    """hf-drop's default rule, as DRoPFilter computes it from a probe."""
    used, _ = shrink_errors(mistakes / support, support)
    names = [str(k) for k in range(len(sizes))]
    return R.DRoP().counts(R.QuotaInputs(sizes, density, used, 0, names))


def moved(quotas: np.ndarray, reference: np.ndarray) -> float:
    return float(np.abs(quotas - reference).sum() / 2 / reference.sum())


def main() -> None:
    rng = np.random.default_rng(0)
    rows = []
    probes = sorted(RESULTS.glob("shapes/*/probe/class_metrics.json"))
    for path in probes:
        classes = json.loads(path.read_text())["classes"]
        sizes = np.array([c["train_size"] for c in classes])
        support = np.array([c["support"] for c in classes], dtype=float)
        final = np.array([c["mistakes"] for c in classes], dtype=float)
        by_epoch = np.array([c["recall_by_epoch"][0] for c in classes]).T  # [epoch, class]
        shape = path.parent.parent.name
        for density in DENSITIES:
            reference = default_quotas(sizes, final, support, density)
            noise = [
                moved(default_quotas(sizes, rng.binomial(support.astype(int), final / support),
                                     support, density), reference)
                for _ in range(DRAWS)
            ]  # fmt: skip
            row = {
                "shape": shape, "density": density, "epochs": len(by_epoch),
                "noise_median": round(float(np.median(noise)), 4),
                "noise_p95": round(float(np.quantile(noise, 0.95)), 4),
            }  # fmt: skip
            for epoch, recall in enumerate(by_epoch[:-1], 1):
                mistakes = np.round((1 - recall) * support)
                row[f"epoch_{epoch}"] = round(moved(
                    default_quotas(sizes, mistakes, support, density), reference), 4)  # fmt: skip
            rows.append(row)
    OUT.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for r in rows:
        epochs = " ".join(f"e{k[6:]}:{v:.1%}" for k, v in r.items() if k.startswith("epoch_"))
        print(f"{r['shape']:17} d={r['density']}  noise median {r['noise_median']:.1%} "
              f"p95 {r['noise_p95']:.1%}  | {epochs}")  # fmt: skip


if __name__ == "__main__":
    main()
