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

* ``cheap probe``: real cheaper probes of the long regime's shapes (``recipes/shapes.py --regime
  long``), each at about a quarter of the full probe's steps, their class errors on the same
  validation split against the full probe's quotas: ``probe_cheap`` (the recipe's: a stratified
  quarter of the training set, all 8 epochs; its end-to-end accuracy is in the sweep), and with
  ``--train``, ``probe_2_epochs`` (all the data, 2 epochs, its cosine annealed over them) and
  ``probe_half_4_epochs`` (a stratified half, 4 epochs).

"Moved" is the share of the budget that changes class: sum |q - q_final| / 2 / budget.

    python benchmarks/cheap_probe.py   # prints a table; writes results/cheap_probe.jsonl
    python benchmarks/cheap_probe.py --train   # first trains the two other cheap probes
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


def noise_floor(rng, sizes, mistakes, support, density) -> tuple[np.ndarray, dict]:
    """The default quotas of ``mistakes``, and how far they move when the mistakes are redrawn
    as Binomial(support, mistakes / support): the median and 95th percentile of DRAWS draws."""
    reference = default_quotas(sizes, mistakes, support, density)
    noise = [
        moved(default_quotas(sizes, rng.binomial(support.astype(int), mistakes / support),
                             support, density), reference)
        for _ in range(DRAWS)
    ]  # fmt: skip
    return reference, {
        "noise_median": round(float(np.median(noise)), 4),
        "noise_p95": round(float(np.quantile(noise, 0.95)), 4),
    }


# The other cheap probes (--train): name -> (fraction of the training set, epochs).
VARIANTS = {"probe_2_epochs": (1.0, 2), "probe_half_4_epochs": (0.5, 4)}


def train_variants() -> None:
    """Train the VARIANTS of every long-regime shape whose full probe is recorded (skipped when
    already there); only their class metrics, config and splits are kept."""
    import shutil
    import sys
    from dataclasses import replace

    sys.path.insert(0, str(Path(__file__).parents[1] / "recipes"))
    from shapes import LONG, build

    from hf_drop.data.splits import stratified_sample
    from hf_drop.probe import run_probe

    for name, shape in LONG.items():
        folder = RESULTS / "shapes_long" / name
        if not (folder / "probe" / "class_metrics.json").exists():
            continue
        train, val, _, val_rows, report_rows = build(shape)
        for variant, (fraction, epochs) in VARIANTS.items():
            out = folder / variant
            if (out / "class_metrics.json").exists():
                continue
            rows = (
                stratified_sample(train, round(fraction * len(train)), seed=0)
                if fraction < 1
                else np.arange(len(train))
            )
            run_probe(
                train.select(rows),
                val,
                replace(shape.probe, epochs=epochs),
                out,
                source={"name": f"{shape.dataset} ({name}, {variant})", "split": "train"},
                splits={"val_indices": val_rows.tolist(), "report_indices": report_rows.tolist()},
            )
            shutil.rmtree(out / "scores")  # big, and not what is measured


def main() -> None:
    import sys

    if "--train" in sys.argv[1:]:
        train_variants()
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
            reference, noise = noise_floor(rng, sizes, final, support, density)
            row = {"shape": shape, "density": density, "epochs": len(by_epoch), **noise}
            for epoch, recall in enumerate(by_epoch[:-1], 1):
                mistakes = np.round((1 - recall) * support)
                row[f"epoch_{epoch}"] = round(moved(
                    default_quotas(sizes, mistakes, support, density), reference), 4)  # fmt: skip
            rows.append(row)
    for r in rows:
        epochs = " ".join(f"e{k[6:]}:{v:.1%}" for k, v in r.items() if k.startswith("epoch_"))
        print(f"{r['shape']:17} d={r['density']}  noise median {r['noise_median']:.1%} "
              f"p95 {r['noise_p95']:.1%}  | {epochs}")  # fmt: skip
    cheap = cheap_probes(np.random.default_rng(1))
    for r in cheap:
        print(f"{r['shape']:17} d={r['density']}  noise median {r['noise_median']:.1%} "
              f"p95 {r['noise_p95']:.1%}  | {r['measure']} ({r['cost']:.0%} of the steps): "
              f"{r['cheap_moved']:.1%}")  # fmt: skip
    OUT.write_text("".join(json.dumps(r) + "\n" for r in rows + cheap))


def _steps(folder: Path) -> int:
    """A probe's optimizer steps: steps per epoch x epochs x initialisations."""
    record = json.loads((folder / "probe_config.json").read_text())
    config = record["config"]
    return record["batch"]["steps_per_epoch"] * config["epochs"] * config["num_inits"]


def cheap_probes(rng: np.random.Generator) -> list[dict]:
    """The quotas of each long-regime shape's cheap probe against its full probe's."""
    rows = []
    found = [
        path
        for variant in ("probe_cheap", *VARIANTS)
        for path in sorted(RESULTS.glob(f"shapes_long/*/{variant}/class_metrics.json"))
    ]
    for path in found:
        full_dir = path.parent.parent / "probe"
        full = json.loads((full_dir / "class_metrics.json").read_text())["classes"]
        cheap = json.loads(path.read_text())["classes"]
        sizes = np.array([c["train_size"] for c in full])
        support = np.array([c["support"] for c in full], dtype=float)
        mistakes = np.array([c["mistakes"] for c in full], dtype=float)
        cheap_mistakes = np.array([c["mistakes"] for c in cheap], dtype=float)
        steps = [_steps(folder) for folder in (path.parent, full_dir)]
        for density in DENSITIES:
            reference, noise = noise_floor(rng, sizes, mistakes, support, density)
            quotas = default_quotas(sizes, cheap_mistakes, support, density)
            rows.append({
                "measure": path.parent.name, "shape": f"{path.parent.parent.name} (long)",
                "density": density, "fraction": sum(c["train_size"] for c in cheap) / sizes.sum(),
                "cost": steps[0] / steps[1], **noise,
                "cheap_moved": round(moved(quotas, reference), 4),
            })  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
