"""Robust DRoP across data shapes: which quota rule raises the worst class, and where does it hurt?

One probe per shape, then methods x densities x seeds, as in ``benchmark.py`` (the same run loop,
resumable, the paper's protocol: class errors from half of each test class, the other half
reported). The shapes:

* ``digits``: scikit-learn's 1,797 digits; 18 validation images per class (a tiny split);
* ``fmnist``: real Fashion-MNIST, balanced, 1,200 training images per class (a stratified 20% of
  the 60,000, so that the whole sweep fits in about an hour on 2 CPU cores), 500 validation and
  500 reported images per class;
* ``fmnist_small_val``: the same, with only 20 validation images per class;
* ``fmnist_lt10`` and ``fmnist_lt50``: long-tailed Fashion-MNIST: class ``LT_ORDER[r]`` keeps
  ``2000 * ratio ** (-r / 9)`` training images (ratio 10: 2,000 down to 200; ratio 50: down to
  40). The order puts two easy classes (Trouser, Bag) and a middling one (T-shirt) at the tail
  and Pullover (hard) at the head: it is not aligned with difficulty.

At the end, ``verdict.md`` checks hf-drop's default rule against the targets: on every shape and
density, worst-class accuracy at least the better of Random and Random+Proportional (within one
seed standard deviation); at least 75% of the paper rule's worst-class gain over Random on
balanced Fashion-MNIST at d = 0.3; average accuracy within 1.5 points of Random.

    python recipes/shapes.py --output benchmarks/results/shapes            # every shape
    python recipes/shapes.py --output benchmarks/results/shapes --verdict  # tables only
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))

from benchmark import FULL, make_plan, needs_scores, recorded_probe_methods, run_plan

from hf_drop import DRoPFilter
from hf_drop.data.sources import digits_splits, fashion_mnist
from hf_drop.data.splits import stratified_indices, stratified_sample
from hf_drop.evaluation.intervals import paired_bootstrap
from hf_drop.evaluation.report import plot_runs
from hf_drop.probe import ProbeConfig, ProbeResult, run_probe
from hf_drop.train import TrainConfig

# The rules compared, as DRoPFilter.from_probe arguments.
METHODS: dict[str, dict] = {
    "Random": {"quota": "global"},
    "Random+Proportional": {"quota": "proportional"},
    "Random+DRoP (paper)": {"quota": "drop_paper"},
    "Random+DRoP (count)": {"mode": "count", "floor": 0.0, "shrink": False},
    "Random+DRoP (robust)": {"mode": "paper"},  # hf-drop's default before issue 19
    "Random+DRoP (floor 0.25)": {"mode": "paper", "floor": 0.25},
    "Random+StrategyQ (EL2N)": {"strategy_score": "el2n"},
    # Issue 19: the class-balanced baseline, and the default's two parts one at a time.
    "Random+Uniform": {"quota": "uniform"},
    "Random+DRoP (floor only)": {"mode": "paper", "shrink": False},
    "Random+DRoP (shrink only)": {"mode": "paper", "floor": 0.0},
    # The default's settings with kept counts (not fractions) proportional to error, as the
    # authors' released code: on long tails the paper's fractions give a large, mildly hard
    # class more rows than the hardest small one (issue 19, fmnist_lt50).
    "Random+DRoP (robust, count)": {"mode": "count"},
    # Count mode until the first class is kept whole, then equal shares (issue 19): without a
    # floor, and with the floor of half the uniform share (hf-drop's default since issue 19).
    "Random+DRoP (saturating)": {"mode": "saturating", "floor": 0.0},
    "Random+DRoP (saturating, floor)": {"mode": "saturating"},
}
DEFAULT = "Random+DRoP (saturating, floor)"  # hf-drop's default since issue 19
EARLIER_DEFAULT = "Random+DRoP (robust)"  # the default before: paper mode, floor 0.5, shrink
PAPER = "Random+DRoP (paper)"
DENSITIES = (0.3, 0.5, 0.7)
SEEDS = 5
# The default was chosen on seeds 0-4 of the long regime (the earlier default on seeds 0-2 of
# the short one); seeds 5 and up (benchmarks/results/shapes_confirm) were run after the choice,
# so the comparisons on them alone are free of that selection.
CHOSEN_ON = (0, 1, 2, 3, 4)
# Long-tailed class order, head to tail (class ids of Fashion-MNIST).
LT_ORDER = [2, 9, 4, 5, 6, 3, 7, 0, 1, 8]


@dataclass
class Shape:
    dataset: str
    probe: ProbeConfig
    final: TrainConfig
    per_class: int | None = None  # training images per class before any tail
    imbalance: float | None = None  # head / tail ratio of a long tail
    order: tuple[int, ...] | None = None  # long-tail order, head to tail (None: LT_ORDER)
    sample_seed: int = 0  # which training images of each class (per_class) the shape keeps
    val_per_class: int | None = None  # validation images per class (default: half of test)
    densities: tuple[float, ...] = DENSITIES
    # A second, cheap probe on this stratified fraction of the training set (same epochs): the
    # method CHEAP is the default rule on its class errors (issue 19, item 4).
    cheap_fraction: float | None = None
    methods: tuple[str, ...] | None = None  # a subset of METHODS (None: all of them)


_FMNIST_PROBE = ProbeConfig(model="test_resnet", epochs=5, batch_size=128, lr=0.05, du_window=3)
_FMNIST_FINAL = TrainConfig(
    model="test_resnet", epochs=2, compute_matched=True, batch_size=128, save_model=False
)
SHORT = {
    "digits": Shape(
        "digits",
        ProbeConfig(model="test_resnet", epochs=10, batch_size=64, lr=0.05, du_window=3),
        TrainConfig(
            model="test_resnet", epochs=10, compute_matched=True, batch_size=64, save_model=False
        ),
    ),
    "fmnist": Shape("fashion_mnist", _FMNIST_PROBE, _FMNIST_FINAL, per_class=1200),
    "fmnist_small_val": Shape(
        "fashion_mnist", _FMNIST_PROBE, _FMNIST_FINAL, per_class=1200, val_per_class=20
    ),
    "fmnist_lt10": Shape("fashion_mnist", _FMNIST_PROBE, _FMNIST_FINAL, 2000, imbalance=10),
    "fmnist_lt50": Shape("fashion_mnist", _FMNIST_PROBE, _FMNIST_FINAL, 2000, imbalance=50),
}
# Closer to convergence (issue 19, item 3): twice the final epochs (full data: Shirt 0.60 and
# 0.859 on average at 4 epochs, against 0.47 and 0.83 at 2), a probe trained as long as the
# final model sees the full data. No augmentation: at 6 epochs it cost Shirt 0.13 (0.476).
# Twice the cost per run: the three Fashion-MNIST shapes with their own training sets, at the
# densities where the short regime's claims are.
# The rules the issue asks for: no count rule (the paper's, on these supports) nor floor 0.25.
_LONG_PROBE = replace(_FMNIST_PROBE, epochs=8)
_LONG_FINAL = replace(_FMNIST_FINAL, epochs=4)
_LONG_METHODS = (
    "Random",
    "Random+Proportional",
    "Random+Uniform",
    "Random+DRoP (paper)",
    EARLIER_DEFAULT,
    "Random+DRoP (floor only)",
    "Random+DRoP (shrink only)",
    "Random+StrategyQ (EL2N)",
    "Random+DRoP (robust, count)",
    "Random+DRoP (saturating)",
    "Random+DRoP (saturating, floor)",
)
_LONG = {
    "probe": _LONG_PROBE,
    "final": _LONG_FINAL,
    "densities": (0.3, 0.5),
    "cheap_fraction": 0.25,
    "methods": _LONG_METHODS,
}
# A shape no rule was chosen on (issue 19: the default tested where it could fail): the hard
# classes at the tail (ratio 20), where a rule that gives a class rows by its error and its size
# together starves the hardest small classes. The rules of the done-when test, and the paper's.
HARD_TAIL = (1, 5, 7, 9, 8, 3, 4, 2, 0, 6)  # Trouser, Sandal, ..., Pullover, T-shirt, Shirt
CONFIRM_METHODS = (
    "Random",
    "Random+Proportional",
    "Random+Uniform",
    "Random+DRoP (paper)",
    "Random+DRoP (robust)",
    "Random+DRoP (robust, count)",
    "Random+DRoP (saturating)",
    "Random+DRoP (saturating, floor)",
)
# With 20 validation images per class the shrinkage is what matters: the ablation too.
SMALL_VAL_METHODS = (*CONFIRM_METHODS, "Random+DRoP (floor only)", "Random+DRoP (shrink only)")
LONG = {
    "fmnist": Shape("fashion_mnist", per_class=1200, **_LONG),
    "fmnist_lt10": Shape("fashion_mnist", per_class=2000, imbalance=10, **_LONG),
    "fmnist_lt50": Shape("fashion_mnist", per_class=2000, imbalance=50, **_LONG),
    # The other two shapes. The small validation split on its own draw of training
    # images (sample_seed 1), so that its runs are not fmnist's again: a fifth training set.
    # Digits as in the short regime (10 epochs: full data is near convergence there).
    "fmnist_small_val": Shape(
        "fashion_mnist", per_class=1200, val_per_class=20, sample_seed=1,
        **(_LONG | {"methods": SMALL_VAL_METHODS, "cheap_fraction": None}),
    ),
    "digits": replace(SHORT["digits"], densities=(0.3, 0.5), methods=CONFIRM_METHODS),
    "fmnist_lt20_hard": Shape(
        "fashion_mnist", per_class=2000, imbalance=20, order=HARD_TAIL,
        **(_LONG | {"methods": CONFIRM_METHODS, "cheap_fraction": None}),
    ),
}  # fmt: skip
REGIMES = {"short": SHORT, "long": LONG}
SHAPES = SHORT
CHEAP = "Random+DRoP (cheap probe)"


def build(shape: Shape):
    """The training set, the validation split and the reported split of a shape."""
    data = digits_splits() if shape.dataset == "digits" else fashion_mnist()
    train, test = data["train"], data["test"]
    labels = np.array(train["label"][:])
    if shape.per_class is not None:
        rng = np.random.default_rng(shape.sample_seed)
        rows = []
        for rank, k in enumerate(shape.order or LT_ORDER):
            size = shape.per_class
            if shape.imbalance is not None:
                size = round(shape.per_class * shape.imbalance ** (-rank / 9))
            rows.append(rng.choice(np.flatnonzero(labels == k), size, replace=False))
        train = train.select(np.sort(np.concatenate(rows)))
    val_rows, report_rows = stratified_indices(test, 0.5, seed=0)
    if shape.val_per_class is not None:
        val_labels = np.array(test["label"][:])[val_rows]
        rng = np.random.default_rng(1)
        val_rows = np.sort(
            np.concatenate(
                [
                    rng.choice(val_rows[val_labels == k], shape.val_per_class, replace=False)
                    for k in np.unique(val_labels)
                ]
            )
        )
    return train, test.select(val_rows), test.select(report_rows), val_rows, report_rows


def probe_of(shape: Shape, name: str, train, val, val_rows, report_rows, out: Path):
    """The shape's probe. The committed results keep the probe's metrics, not its scores: a
    sweep that adds runs to them trains the probe again (into ``probe_rerun/``) and goes on only
    if it reproduces the recorded class errors exactly, so old and new runs share one probe."""
    recorded = out / "probe" / "class_metrics.json"
    folder = out / "probe"
    if recorded.exists() and not (folder / "scores").exists():
        folder = out / "probe_rerun"
    probe = run_probe(
        train,
        val,
        shape.probe,
        folder,
        source={"name": f"{shape.dataset} ({name})", "split": "train"},
        splits={"val_indices": val_rows.tolist(), "report_indices": report_rows.tolist()},
    )
    if folder.name == "probe_rerun":
        before = [c["mistakes"] for c in json.loads(recorded.read_text())["classes"]]
        again = [c["mistakes"] for c in json.loads((folder / recorded.name).read_text())["classes"]]
        if before != again:
            raise SystemExit(
                f"{name}: the probe trained again makes other mistakes per class ({again}) than "
                f"the recorded one ({before}): new runs would not share its quotas; run the shape "
                "from scratch in a new folder"
            )
        print(f"{name}: the probe trained again reproduces the recorded errors", file=sys.stderr)
    return probe


def prepare(
    name: str,
    shape: Shape,
    out: Path,
    seeds: int,
    recorded: bool = False,
    only_methods: list[str] | None = None,
):
    """A shape's data, probe(s) and methods; writes ``shape.json``. Returns ``(train, reported,
    probe, methods)``.

    ``recorded``: the methods that need no per-sample scores, on the class errors of the probes
    recorded in ``out`` (no probe is trained: one trained again on another machine or library
    build makes other mistakes, so it could not share the recorded runs' quotas); the methods
    that need scores are left out, their recorded runs stay. ``only_methods``: these of the
    shape's methods alone (the others' recorded runs stay)."""
    out.mkdir(parents=True, exist_ok=True)
    train, val, reported, val_rows, report_rows = build(shape)
    sizes = np.bincount(np.array(train["label"][:]), minlength=10).tolist()
    names = [m for m in shape.methods or METHODS if only_methods is None or m in only_methods]
    if recorded:
        probe = None
        left_out = [m for m in names if needs_scores(METHODS[m])]
        if left_out:
            print(f"{name}: --recorded-probe leaves out {left_out} (scores)", file=sys.stderr)
        names = [m for m in names if m not in left_out]
        methods: dict = recorded_probe_methods(out / "probe", names, val_rows, METHODS)
    else:
        # The probe first: a sweep refused (its probe does not reproduce the recorded one)
        # leaves the recorded shape.json as it was.
        probe = probe_of(shape, name, train, val, val_rows, report_rows, out)
        methods = {m: METHODS[m] for m in names}
    cheap_rows = None
    if shape.cheap_fraction is not None and (only_methods is None or CHEAP in only_methods):
        cheap_rows = stratified_sample(train, round(shape.cheap_fraction * len(train)), seed=0)
        if recorded:
            cheap = ProbeResult(out / "probe_cheap")
        else:
            cheap = run_probe(
                train.select(cheap_rows),
                val,
                shape.probe,
                out / "probe_cheap",
                source={"name": f"{shape.dataset} ({name}, cheap)", "split": "train"},
                splits={"val_indices": val_rows.tolist(), "report_indices": report_rows.tolist()},
            )
        # The default rule on the cheap probe's class errors, fitted to the whole training set
        # (the cheap probe saw a part of it: only its class errors are used, not its scores).
        errors = cheap.class_errors_with_support

        def from_cheap(density: float, seed: int) -> DRoPFilter:
            return DRoPFilter(density, class_errors=errors, seed=seed, mode="paper")

        methods[CHEAP] = from_cheap
    cheap_probe = None
    if cheap_rows is not None:
        cheap_probe = {
            "fraction": shape.cheap_fraction,
            "rows": len(cheap_rows),
            "sampling": "stratified by class, seed 0",
            "rule": "the default before issue 19, DRoPFilter(density, class_errors=its errors, "
            "mode='paper')",
        }
    record = {
        "shape": name,
        "dataset": shape.dataset,
        "class_sizes": sizes,
        "lt_order": list(shape.order or LT_ORDER) if shape.imbalance else None,
        "validation_per_class": np.bincount(np.array(val["label"][:])).tolist(),
        "reported_per_class": np.bincount(np.array(reported["label"][:])).tolist(),
        "probe": shape.probe.to_dict(),
        "final": asdict(shape.final),
        "densities": shape.densities,
        "seeds": seeds,
        "default_chosen_on_seeds": CHOSEN_ON,
        "methods": {
            m: METHODS[m] if m in METHODS else "cheap_probe"
            for m in [*(shape.methods or METHODS), *methods]
        },
        "cheap_probe": cheap_probe,
    }
    (out / "shape.json").write_text(json.dumps(record, indent=1) + "\n")
    return train, reported, probe, methods


def run_shape(name: str, out: Path, seeds: int = SEEDS, shape: Shape | None = None) -> pd.DataFrame:
    """Every run of one shape, seed by seed (resumable)."""
    shape = shape or SHAPES[name]
    train, reported, probe, methods = prepare(name, shape, out, seeds)
    plan = make_plan(methods, shape.densities, seeds)
    results = run_plan(plan, methods, probe, train, reported, shape.final, out)
    runs = results.assign(run=results["method"] + "/" + results["seed"].astype(str))
    plot_runs(runs, out / "accuracy.png")
    return results


def run_shapes(
    shapes: dict[str, Shape],
    root: Path,
    seeds: int,
    only: list[int] | None = None,
    recorded: bool = False,
    only_methods: list[str] | None = None,
) -> None:
    """Every shape, seed-major: all shapes' seed 0, then seed 1, ... so a sweep stopped early
    leaves every shape with the same seeds. ``only``: these seeds alone (two processes can then
    share a shape's seeds, each appending its own runs). ``recorded``, ``only_methods``: see
    :func:`prepare`."""
    prepared = {}
    for name, shape in shapes.items():
        print(f"=== shape {name}: probe", file=sys.stderr)
        prepared[name] = prepare(name, shape, root / name, seeds, recorded, only_methods)
    for seed in range(seeds) if only is None else only:
        for name, (train, reported, probe, methods) in prepared.items():
            print(f"=== shape {name}, seed {seed}", file=sys.stderr)
            shape = shapes[name]
            plan = [run for run in make_plan(methods, shape.densities, seeds) if run[2] == seed]
            run_plan(plan, methods, probe, train, reported, shape.final, root / name)
    for name in shapes:
        results = pd.read_csv(root / name / "results.csv")
        runs = results.assign(run=results["method"] + "/" + results["seed"].astype(str))
        plot_runs(runs, root / name / "accuracy.png")


def verdict(root: Path, shapes: dict[str, Shape] | None = None) -> str:
    """Per shape and density: every rule's mean (sd) worst-class and average accuracy, and
    whether the default meets each target."""
    lines = []
    text: list[str] = []
    shapes = SHAPES if shapes is None else shapes
    for name, shape in shapes.items():
        path = root / name / "results.csv"
        if not path.exists():
            continue
        results = pd.read_csv(path)
        densities = shape.densities
        ran = set(results["method"])
        methods = list(dict.fromkeys(m for m in [*METHODS, *results["method"]] if m in ran))
        # The mean accuracy of the three worst classes: where the worst class is never learned
        # (a 40-image tail class), it still tells the rules apart.
        results["bottom3"] = [
            float(np.mean(sorted(v for v in json.loads(c).values() if v is not None)[:3]))
            for c in results["class_accuracy"]
        ]
        stats = results.groupby(["method", "density"]).agg(
            worst=("worst_class_accuracy", "mean"),
            worst_sd=("worst_class_accuracy", "std"),
            acc=("accuracy", "mean"),
            bottom3=("bottom3", "mean"),
            seeds=("seed", "nunique"),
        )
        lines += [
            f"### {name}",
            "",
            "worst-class accuracy ± sd over seeds (average accuracy; mean of the 3 worst classes)",
            "",
            "| method | " + " | ".join(f"d={d}" for d in densities) + " |",
        ]
        lines.append("|---|" + "---|" * len(densities))
        for method in [m for m in methods if m != FULL] + [FULL]:
            cells = []
            for density in densities if method != FULL else (1.0,) * len(densities):
                if (method, density) not in stats.index:
                    cells.append("-")
                    continue
                row = stats.loc[(method, density)]
                cells.append(
                    f"{row.worst:.3f} ± {row.worst_sd:.3f} ({row.acc:.3f}; {row.bottom3:.3f})"
                )
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
        if name == "fmnist" and {(m, 0.3) for m in (DEFAULT, PAPER, "Random")} <= set(stats.index):
            # The paper-gain target of the first sweep, for the record (the pass/fail test is
            # criteria_text's, on intervals).
            random = stats.loc[("Random", 0.3)].worst
            gain_paper = stats.loc[(PAPER, 0.3)].worst - random
            gain_default = stats.loc[(DEFAULT, 0.3)].worst - random
            kept = gain_default / gain_paper if gain_paper > 0 else float("nan")
            text = [
                "",
                f"Balanced Fashion-MNIST, d = 0.3: the paper rule gains {gain_paper:+.3f} "
                f"worst-class accuracy over Random, the default {gain_default:+.3f} ({kept:.0%} "
                "of it; target >= 75%).",
            ]
    return "\n".join(text) + "\n\n" + "\n".join(lines)


def comparisons(
    root: Path, shapes: dict[str, Shape] | None = None, reference: str = DEFAULT
) -> pd.DataFrame:
    """Every rule against ``reference`` (the default), per shape, density and metric: paired
    bootstrap over seeds and the reported images (``hf_drop.evaluation.intervals``), on all seeds
    and on the seeds run after the default was chosen."""
    tables = []
    shapes = SHAPES if shapes is None else shapes
    for name, shape_of in shapes.items():
        path = root / name / "results.csv"
        if not path.exists():
            continue
        runs = pd.read_csv(path)
        runs = runs[runs["method"] != FULL]
        shape = json.loads((root / name / "shape.json").read_text())
        support = shape.get("reported_per_class")
        if support is None:  # a shape.json from before it was recorded: the same split again
            reported = build(shape_of)[2]
            support = np.bincount(np.array(reported["label"][:])).tolist()
        for seeds, chosen in (("all", runs), ("after choice", runs[~runs.seed.isin(CHOSEN_ON)])):
            if reference not in set(chosen["method"]):
                continue
            for metric in ("worst_class_accuracy", "accuracy"):
                table = paired_bootstrap(chosen, reference, metric=metric, support=support)
                table.insert(0, "shape", name)
                table["seeds"] = seeds
                table["reference"] = reference
                tables.append(table)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


BASELINES = ("Random", "Random+Proportional", "Random+Uniform")


def criteria_text(table: pd.DataFrame) -> str:
    """Markdown: the issue's test of the table's reference rule (the default), per shape and
    density, from the intervals: no class-count baseline beats its worst class beyond the
    (Bonferroni) interval, and its average accuracy is within 1 point of Random's."""
    if table.empty:
        return ""
    reference = table["reference"].iloc[0]
    rule = "the default" if reference == DEFAULT else f"{reference}"
    lines = [
        f"## {rule[0].upper() + rule[1:]} against the baselines",
        "",
        f"Best baseline (Random, Random+Proportional, Random+Uniform) minus {rule}, worst "
        "class, with its Bonferroni interval: ok when the interval reaches 0 or below (no "
        f"baseline is better beyond noise). Average: {rule} minus Random, ok when at least "
        "-0.010 (one point).",
        "",
        "| shape | d | seeds | best baseline - rule (worst class) | ok | rule - Random "
        "(average) [interval] | ok |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = table[table.seeds == "all"]
    for (name, density), part in rows.groupby(["shape", "density"], sort=False):
        worst = part[(part.metric == "worst_class_accuracy") & part.method.isin(BASELINES)]
        average = part[(part.metric == "accuracy") & (part.method == "Random")]
        if worst.empty or average.empty:
            continue
        best = worst.loc[worst["diff"].idxmax()]
        worst_ok = bool((worst.ci_low_adj <= 0).all())
        a = average.iloc[0]
        lines.append(
            f"| {name} | {density} | {int(best.pairs)} | {best.method}: {best['diff']:+.3f} "
            f"[{best.ci_low_adj:+.3f}, {best.ci_high_adj:+.3f}] | {'yes' if worst_ok else 'NO'} | "
            f"{-a['diff']:+.4f} [{-a.ci_high_adj:+.4f}, {-a.ci_low_adj:+.4f}] | "
            f"{'yes' if -a['diff'] >= -0.01 else 'NO'} |"
        )
    return "\n".join(lines) + "\n"


def comparison_text(table: pd.DataFrame) -> str:
    """Markdown: worst-class difference from the reference (the default) with its Bonferroni
    interval."""
    if table.empty:
        return ""
    reference = table["reference"].iloc[0]
    rule = "the default" if reference == DEFAULT else f"{reference}"
    lines = [
        f"## Against {rule}, with intervals",
        "",
        f"Worst-class accuracy of each rule minus that of {rule}, mean over paired seeds, with "
        "its paired bootstrap interval (seeds and reported images resampled) at a Bonferroni "
        f"level over the comparisons of the shape (m in the heading). `<` {rule} is better, "
        f"`>` the rule is better, `~` within noise. Seeds {len(CHOSEN_ON)} and up were run after "
        f"the default was chosen (on seeds 0-{len(CHOSEN_ON) - 1}); comparisons.csv has them "
        "apart, and average accuracy.",
    ]
    worst = table[(table.metric == "worst_class_accuracy") & (table.seeds == "all")]
    for name, shape in worst.groupby("shape", sort=False):
        m = int(shape.comparisons.iloc[0])
        pairs = sorted(set(shape.pairs))
        lines += ["", f"### {name} (m = {m}; {'/'.join(map(str, pairs))} paired seeds)", ""]
        densities = sorted(shape.density.unique())
        lines.append("| rule | " + " | ".join(f"d={d}" for d in densities) + " |")
        lines.append("|---|" + "---|" * len(densities))
        for method, rows in shape.groupby("method"):
            cells = []
            for density in densities:
                row = rows[rows.density == density]
                if row.empty or np.isnan(row.ci_low_adj.iloc[0]):
                    cells.append("-")
                    continue
                r = row.iloc[0]
                sign = "<" if r.ci_high_adj < 0 else ">" if r.ci_low_adj > 0 else "~"
                cells.append(f"{sign} {r['diff']:+.3f} [{r.ci_low_adj:+.3f}, {r.ci_high_adj:+.3f}]")
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_differences(table: pd.DataFrame, root: Path):
    """Worst-class accuracy minus the default's, per rule, shape and density, with Bonferroni
    intervals: the picture of comparison_text."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    worst = table[(table.metric == "worst_class_accuracy") & (table.seeds == "all")]
    shapes = list(dict.fromkeys(worst["shape"]))
    methods = list(dict.fromkeys(worst["method"]))
    fig = Figure(figsize=(3.4 * len(shapes), 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(shapes), squeeze=False, sharey=True)[0]
    for ax, name in zip(axes, shapes, strict=True):
        rows = worst[worst["shape"] == name]
        for j, density in enumerate(sorted(rows.density.unique())):
            part = rows[rows.density == density].set_index("method").reindex(methods)
            y = np.arange(len(methods)) + (j - 1) * 0.25
            ax.errorbar(
                part["diff"], y, fmt="o", ms=3, color=f"C{j}", label=f"d={density}",
                xerr=[part["diff"] - part.ci_low_adj, part.ci_high_adj - part["diff"]],
            )  # fmt: skip
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(np.arange(len(methods)), methods, fontsize=7)
        ax.set_title(name)
        ax.set_xlabel("worst-class accuracy - default's")
    axes[0].legend(fontsize=7)
    fig.savefig(root / "differences.png", dpi=110)
    return fig


def plot_shapes(root: Path, shapes: dict[str, Shape] | None = None):
    """Worst-class and average accuracy against density, one column per shape, one line per
    rule, the band spanning the seeds' mean +- sd: the figure the README shows."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = [
        n for n in (SHAPES if shapes is None else shapes) if (root / n / "results.csv").exists()
    ]
    fig = Figure(figsize=(3.2 * len(names), 6.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, len(names), squeeze=False, sharex=True)
    styles = {
        method: (f"C{i}", "-" if "DRoP" in method else "--")
        for i, method in enumerate([*METHODS, CHEAP])
    }
    for column, name in enumerate(names):
        results = pd.read_csv(root / name / "results.csv")
        for row, (metric, label) in enumerate(
            [("worst_class_accuracy", "worst-class accuracy"), ("accuracy", "average accuracy")]
        ):
            ax = axes[row, column]
            for method, (color, line) in styles.items():
                runs = results[results["method"] == method]
                if runs.empty:
                    continue
                stats = runs.groupby("density")[metric].agg(["mean", "std"]).fillna(0.0)
                width = 2.5 if method == DEFAULT else 1.2
                ax.plot(stats.index, stats["mean"], line, color=color, lw=width, label=method)
                ax.fill_between(
                    stats.index, stats["mean"] - stats["std"], stats["mean"] + stats["std"],
                    color=color, alpha=0.12,
                )  # fmt: skip
            full = results[results["method"] == FULL][metric].mean()
            ax.axhline(full, color="black", lw=0.8, ls=":", label=FULL)
            ax.set_title(name if row == 0 else "")
            ax.set_xlabel("density" if row == 1 else "")
            if column == 0:
                ax.set_ylabel(label)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=4, fontsize=8)
    fig.savefig(root / "worst_class.png", dpi=110)
    return fig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument(
        "--regime", choices=list(REGIMES), default="short",
        help="short: the recorded 2-epoch final models; long: 4 epochs, closer to convergence",
    )  # fmt: skip
    parser.add_argument("--shapes", nargs="*", help="a subset of the regime's shapes")
    parser.add_argument("--verdict", action="store_true", help="only write verdict.md")
    parser.add_argument("--seeds", type=int, default=SEEDS, help="seeds 0..N-1 of every run")
    parser.add_argument("--only-seeds", type=int, nargs="+", help="run these of the seeds alone")
    parser.add_argument("--methods", nargs="+", help="run these of the shapes' methods alone")
    parser.add_argument(
        "--reference", nargs="+", default=[DEFAULT], metavar="METHOD",
        help="the rules tested against the baselines (the first: the intervals' reference)",
    )  # fmt: skip
    parser.add_argument(
        "--recorded-probe", action="store_true",
        help="add runs on the class errors of the probes recorded in OUTPUT/<shape> (no probe "
        "trained; the rules that need per-sample scores are left out)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    shapes = REGIMES[args.regime]
    unknown = sorted(set(args.shapes or ()) - set(shapes))
    if unknown:
        parser.error(
            f"--shapes: {unknown} are not shapes of --regime {args.regime}: {list(shapes)}"
        )
    unknown = sorted({*(args.methods or ()), *args.reference} - {*METHODS, CHEAP})
    if unknown:
        parser.error(f"--methods, --reference: {unknown} are not methods: {[*METHODS, CHEAP]}")
    if not args.verdict:
        chosen = {n: shapes[n] for n in args.shapes or shapes}
        run_shapes(
            chosen, args.output, args.seeds, args.only_seeds, args.recorded_probe, args.methods
        )
    tables = [comparisons(args.output, shapes, reference) for reference in args.reference]
    table = tables[0]
    pd.concat(tables, ignore_index=True).to_csv(args.output / "comparisons.csv", index=False)
    text = (
        "\n".join(criteria_text(t) for t in tables)
        + "\n"
        + verdict(args.output, shapes)
        + "\n"
        + comparison_text(table)
    )
    (args.output / "verdict.md").write_text(text)
    plot_shapes(args.output, shapes)
    if not table.empty:
        plot_differences(table, args.output)
    print(text)


if __name__ == "__main__":
    main()
