"""DRoP while you train (issue 20): sample-passes against worst-class and average accuracy.

On the long regime's balanced and long-tailed (ratio 10) Fashion-MNIST of ``shapes.py`` (the same
training sets, model, 4 epochs, seeds and reported halves), each epoch of a dynamic run trains on
``density`` of the rows:

* ``Dynamic DRoP``: class counts by robust DRoP from the class errors on the validation half
  (the half that the probe of the static runs validates on; the other half is reported);
* ``Dynamic Random``: a class-blind random sample every epoch (the baseline without classes);

both with the last quarter of the epochs (1 of 4) in the data's own proportions; and
``Dynamic DRoP (smoothed)``: each class's error averaged over the evaluations (smoothing 0.5),
no annealing (the first two runs showed the quotas swinging from epoch to epoch, and the
annealed last epoch undoing the rebalancing). Then InfoBatch's choice by the rows' last
training loss, with its rescaling (``within="loss"``, ``rescale``): ``Dynamic InfoBatch-style
(class-blind, loss)``, the class-blind baseline, and ``Dynamic DRoP (smoothed, loss)``, within
DRoP's class counts. Beside them, from
the long sweep (``benchmarks/results/shapes_long``, same data, model and seeds): full-data
training, and static DRoP with its whole cost (an 8-epoch probe on all rows, then the
compute-matched pruned training).

Each run appends a row to ``results.csv`` (resumable); ``verdict.md`` and ``dynamic_drop.png``
summarise, with paired bootstrap intervals against full data.

    python recipes/dynamic_drop.py --output benchmarks/results/dynamic_drop
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))

from benchmark import FULL, append_row
from shapes import DEFAULT, LONG, build

from hf_drop.evaluation.intervals import paired_bootstrap
from hf_drop.train import train_and_evaluate

SHAPES = ("fmnist", "fmnist_lt10")
DENSITIES = (0.5, 0.7)
SEEDS = 3
# TrainConfig settings of each method.
METHODS = {
    "Dynamic DRoP": {"dynamic_quota": "drop(mode=paper)", "dynamic_anneal": 0.25},
    "Dynamic Random": {"dynamic_quota": "global", "dynamic_anneal": 0.25},
    "Dynamic DRoP (smoothed)": {
        "dynamic_quota": "drop(mode=paper)", "dynamic_anneal": 0.0, "dynamic_smoothing": 0.5,
    },
    # InfoBatch's choice by the last training loss, with its rescaling: class-blind (the
    # InfoBatch-style baseline), and within DRoP's class counts.
    "Dynamic InfoBatch-style (class-blind, loss)": {
        "dynamic_quota": "global", "dynamic_anneal": 0.0, "dynamic_within": "loss",
        "dynamic_rescale": True,
    },
    "Dynamic DRoP (smoothed, loss)": {
        "dynamic_quota": "drop(mode=paper)", "dynamic_anneal": 0.0, "dynamic_smoothing": 0.5,
        "dynamic_within": "loss", "dynamic_rescale": True,
    },
}  # fmt: skip
LONG_RESULTS = Path(__file__).parents[1] / "benchmarks" / "results" / "shapes_long"
COLUMNS = ["shape", "method", "density", "seed", "accuracy", "worst_class_accuracy",
           "worst_class", "class_accuracy", "sample_passes", "train_seconds"]  # fmt: skip


def run(out: Path, seeds: int) -> pd.DataFrame:
    results = out / "results.csv"
    done = set()
    if results.exists():
        previous = pd.read_csv(results)
        done = set(zip(previous["shape"], previous["method"], previous["density"],
                       previous["seed"], strict=True))  # fmt: skip
    for seed in range(seeds):
        for name in SHAPES:
            shape = LONG[name]
            train = reported = steer = None
            for density in DENSITIES:
                for method, settings in METHODS.items():
                    if (name, method, density, seed) in done:
                        continue
                    if train is None:
                        train, steer, reported, _, _ = build(shape)
                    config = replace(
                        shape.final, seed=seed, compute_matched=False, dynamic_drop=density,
                        **settings,
                    )  # fmt: skip
                    quota = (  # the run's folder: the rule's name, as the recorded runs
                        settings["dynamic_quota"].split("(")[0]
                        + ("-smoothed" if settings.get("dynamic_smoothing") else "")
                        + ("-loss" if settings.get("dynamic_within") == "loss" else "")
                    )
                    start = time.perf_counter()
                    metrics = train_and_evaluate(
                        train, reported, config, out / "runs" / f"{name}-{quota}-d{density}-s{seed}",
                        steer_dataset=steer, overwrite=True,
                    )  # fmt: skip
                    row = {
                        "shape": name, "method": method, "density": density, "seed": seed,
                        "accuracy": metrics["accuracy"],
                        "worst_class_accuracy": metrics["worst_class_accuracy"],
                        "worst_class": metrics["worst_class"],
                        "class_accuracy": json.dumps(metrics["class_accuracy"]),
                        "sample_passes": metrics["dynamic_drop"]["sample_passes"],
                        "train_seconds": metrics["train_seconds"],
                    }  # fmt: skip
                    append_row(results, row, COLUMNS)
                    print(f"{name} {method} d={density} seed={seed}: acc {row['accuracy']:.4f}, "
                          f"worst {row['worst_class']} {row['worst_class_accuracy']:.4f} "
                          f"({time.perf_counter() - start:.0f} s)", file=sys.stderr)  # fmt: skip
    return pd.read_csv(results)


def with_long_sweep(results: pd.DataFrame, seeds: int) -> pd.DataFrame:
    """The dynamic runs, and from the long sweep full data and static DRoP (probe included in
    its cost), seeds 0..seeds-1."""
    rows = [results]
    for name in SHAPES:
        path = LONG_RESULTS / name / "results.csv"
        if not path.exists():
            continue
        sweep = pd.read_csv(path)
        sweep = sweep[sweep.seed < seeds]
        probe_epochs = LONG[name].probe.epochs
        n = int(sweep[sweep.method == FULL].train_rows.iloc[0])
        for method, label in ((FULL, FULL), (DEFAULT, "Static DRoP (probe + pruned)")):
            part = sweep[sweep.method == method].copy()
            part["method"] = label
            part["shape"] = name
            part["sample_passes"] = part.train_rows * part.epochs
            if method == DEFAULT:
                part["sample_passes"] += probe_epochs * n
            rows.append(part[[c for c in COLUMNS if c in part]])
    return pd.concat(rows, ignore_index=True)


def verdict(table: pd.DataFrame, out: Path) -> str:
    lines = [
        "Wall time: the training's seconds (the dynamic runs' include their per-epoch "
        "evaluations; static DRoP's exclude its probe), against full data's, on this machine's "
        "cores shared with other runs: a rough figure.",
        "",
        "| shape | method | d | seeds | sample-passes / full | wall time / full | worst-class "
        "| average |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (name, method, density), part in table.groupby(["shape", "method", "density"]):
        full = table[(table["shape"] == name) & (table.method == FULL)]
        ratio = part.sample_passes.mean() / full.sample_passes.mean()
        wall = part.train_seconds.mean() / full.train_seconds.mean()
        lines.append(
            f"| {name} | {method} | {density} | {part.seed.nunique()} | {ratio:.2f} | "
            f"{wall:.2f} | "
            f"{part.worst_class_accuracy.mean():.3f} ± {part.worst_class_accuracy.std():.3f} | "
            f"{part.accuracy.mean():.4f} |"
        )
    lines += ["", "Against full data (paired by seed, reported images redrawn; Bonferroni):", ""]
    lines += [
        "| shape | method | d | metric | diff | interval (adj.) |",
        "|---|---|---|---|---|---|",
    ]
    for name in SHAPES:
        part = table[table["shape"] == name]
        support = np.bincount(np.array(build(LONG[name])[2]["label"][:])).tolist()
        for metric in ("worst_class_accuracy", "accuracy"):
            runs = part.assign(method=part.method + " d=" + part.density.astype(str))
            runs.loc[runs.method.str.startswith(FULL), "method"] = FULL
            runs = runs.assign(density=1.0)
            if runs[runs.method == FULL].empty:
                continue
            comparison = paired_bootstrap(runs, FULL, metric=metric, support=support)
            for r in comparison.itertuples():
                lines.append(f"| {name} | {r.method} | | {metric} | {r.diff:+.4f} | "
                             f"[{r.ci_low_adj:+.4f}, {r.ci_high_adj:+.4f}] |")  # fmt: skip
    lines += ["", *against_infobatch(table)]
    text = "\n".join(lines) + "\n"
    (out / "verdict.md").write_text(text)
    return text


INFOBATCH = "Dynamic InfoBatch-style (class-blind, loss)"


def against_infobatch(table: pd.DataFrame) -> list[str]:
    """Each dynamic rule against the InfoBatch-style class-blind baseline at the same density
    (paired by seed; Bonferroni over the rules of a shape and density)."""
    if INFOBATCH not in set(table.method):
        return []
    lines = [
        "Against the InfoBatch-style class-blind baseline at the same density (paired by seed, "
        "reported images redrawn; Bonferroni):",
        "",
        "| shape | d | method | metric | diff | interval (adj.) |",
        "|---|---|---|---|---|---|",
    ]
    dynamic = table[table.method.str.startswith("Dynamic")]
    for name in SHAPES:
        support = np.bincount(np.array(build(LONG[name])[2]["label"][:])).tolist()
        for density in DENSITIES:
            runs = dynamic[(dynamic["shape"] == name) & (dynamic.density == density)]
            if INFOBATCH not in set(runs.method):
                continue
            for metric in ("worst_class_accuracy", "accuracy"):
                comparison = paired_bootstrap(runs, INFOBATCH, metric=metric, support=support)
                for r in comparison.itertuples():
                    lines.append(f"| {name} | {density} | {r.method} | {metric} | "
                                 f"{r.diff:+.4f} | [{r.ci_low_adj:+.4f}, {r.ci_high_adj:+.4f}] |")  # fmt: skip
    return lines


def plot(table: pd.DataFrame, out: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * len(SHAPES), 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(SHAPES), squeeze=False)[0]
    for ax, name in zip(axes, SHAPES, strict=True):
        part = table[table["shape"] == name]
        full = part[part.method == FULL].sample_passes.mean()
        for i, (method, rows) in enumerate(part.groupby("method")):
            stats = rows.groupby("density").agg(
                x=("sample_passes", "mean"), y=("worst_class_accuracy", "mean"),
                sd=("worst_class_accuracy", "std"),
            )  # fmt: skip
            ax.errorbar(stats.x / full, stats.y, yerr=stats.sd.fillna(0), fmt="o-", ms=4,
                        color=f"C{i}", label=method)  # fmt: skip
        ax.set_title(name)
        ax.set_xlabel("sample-passes / full training")
        ax.set_ylabel("worst-class accuracy")
    axes[0].legend(fontsize=7)
    fig.savefig(out / "dynamic_drop.png", dpi=110)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--seeds", type=int, default=SEEDS)
    parser.add_argument("--verdict", action="store_true", help="only the tables and the plot")
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    results = (
        pd.read_csv(args.output / "results.csv") if args.verdict else run(args.output, args.seeds)
    )
    table = with_long_sweep(results, args.seeds)
    print(verdict(table, args.output))
    plot(table, args.output)


if __name__ == "__main__":
    main()
