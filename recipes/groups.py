"""Group robustness: DRoP over groups on a Waterbirds-like Fashion-MNIST (issue 13).

The construction, on real Fashion-MNIST (Debian's files, :func:`hf_drop.data.sources.fashion_mnist`):

* an attribute ``frame`` (``ClassLabel``: 0 ``plain``, 1 ``framed``): a framed image gets a
  bright (255) border ``FRAME_WIDTH`` pixels wide painted over its outer pixels; a plain image
  is the original one;
* training split: all 6,000 images per class (setup ``fmnist_all``), or a stratified 1,200 per
  class (``fmnist``: a fifth, as ``shapes.py`` does); in classes 0-4 (T-shirt, Trouser,
  Pullover, Dress, Coat) exactly ``round(0.95 n_k)`` images of each class, chosen at random, are
  framed, in classes 5-9 (Sandal, Shirt, Sneaker, Bag, Ankle boot) exactly ``round(0.05 n_k)``:
  the frame goes with the class in 95% of training images, as the background goes with the bird
  in Waterbirds;
* test split: halved per class as in the paper's protocol (fixed seed): one half is the
  validation split (the probe's class and group errors), the other half is reported; in each
  half exactly half of every class is framed, so the attribute says nothing about the class;
* groups: label x frame, 20 groups (``read_groups(ds, ["label", "frame"])``, named
  ``"Shirt/framed"``); the 10 minority groups are the rare combinations (a framed Shirt, a plain
  Coat: 60 training images each in ``fmnist``, 300 in ``fmnist_all``; 250 validation and 250
  reported images each).

Shirt is the hard class of Fashion-MNIST, and its look-alikes (T-shirt, Pullover, Coat) sit on
the other side of the frame: a model that leans on the frame fails on framed Shirts and on
plain T-shirts, Pullovers and Coats.

Methods, from one probe (``test_resnet``, group errors measured with ``group_column``): full
data, Random (``quota="global"``), Random+DRoP over classes (the default rule before issue 19,
``DRoPFilter.from_probe(probe, d, mode="paper")``), Random+DRoP over groups
(``DRoPFilter.from_probe(probe, d, mode="paper", group_column=["label", "frame"])``); then
(issue 19) the group-balanced baseline (``quota="uniform"`` per group) and the default since issue 19
(``mode="saturating"``) per class and per group; densities 0.3 and 0.5; 5 seeds on ``fmnist``
(3 on ``fmnist_all``, the first three methods), with paired bootstrap intervals against the
default over groups. Runs added to recorded results use the recorded probe's class and group
errors (``--recorded-probe``). The probe is ``test_resnet``, 5 epochs (SGD, lr 0.05, cosine); final models are
``test_resnet`` trained by ``hf_drop.train.train_and_evaluate``, 2 full-data epochs,
compute-matched (4 at d = 0.3, 3 at d = 0.5), with ``TrainConfig(group_column=...)`` for the
per-group accuracy on the reported half, through
``benchmark.run_plan`` (resumable: a restarted run skips what ``train/results.csv`` holds).

Outputs in ``--output``: ``verdict.md`` (every setup's table and verdict) and ``groups.png``
(worst-group, mean of the 3 worst groups, average and worst-class accuracy by method and density,
error bars over seeds; a row per setup); per setup, in ``<setup>/``: ``results.csv`` (one row per
run: those accuracies, the worst group and class, minority- and majority-group accuracy, every
group's and class's accuracy, the rows and minority rows kept, the rule's name), ``setup.json``,
``probe/``, ``train/`` (run_plan's log and each run's ``metrics.json``).

One torch thread is enough for this small CNN and keeps a busy 2-core machine from crawling:

    OMP_NUM_THREADS=1 python recipes/groups.py --output benchmarks/results/groups   # both setups
    python recipes/groups.py --output benchmarks/results/groups --verdict            # tables only
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import xxhash

sys.path.insert(0, str(Path(__file__).parent))

from benchmark import FULL, make_plan, run_plan

from hf_drop import DRoPFilter
from hf_drop.core.quotas import budget
from hf_drop.data.sources import fashion_mnist
from hf_drop.data.splits import stratified_indices
from hf_drop.evaluation.intervals import paired_bootstrap
from hf_drop.probe import ProbeConfig, ProbeResult, run_probe
from hf_drop.train import TrainConfig

ATTRIBUTE = "frame"
FRAME_NAMES = ["plain", "framed"]
GROUP_COLUMN = ["label", ATTRIBUTE]
FRAMED_CLASSES = (0, 1, 2, 3, 4)  # framed in 95% of their training images; 5-9 in 5%
FRAME_WIDTH = 2  # pixels

# The methods compared, as DRoPFilter.from_probe arguments.
METHODS: dict[str, dict] = {
    "Random": {"quota": "global"},
    # hf-drop's default rule before issue 19 (as recorded), quotas per class; the same rule per group
    "Random+DRoP (classes)": {"mode": "paper"},
    "Random+DRoP (groups)": {"mode": "paper", "group_column": GROUP_COLUMN},
    # Issue 19: the group-balanced baseline (the floor B / 2G alone keeps every minority image),
    # and hf-drop's default since issue 19 (saturating), per class and per group.
    "Random+Uniform (groups)": {"quota": "uniform", "group_column": GROUP_COLUMN},
    "Random+DRoP (saturating, classes)": {"mode": "saturating"},
    "Random+DRoP (saturating, groups)": {"mode": "saturating", "group_column": GROUP_COLUMN},
}
GROUPS = "Random+DRoP (groups)"
# The paired intervals' reference: hf-drop's default rule over groups.
REFERENCE = "Random+DRoP (saturating, groups)"


@dataclass
class Setup:
    """The data and training of one benchmark."""

    probe: ProbeConfig
    final: TrainConfig
    per_class: int | None = None  # training images per class (None: all 6,000)
    eval_per_class: int | None = None  # validation and reported images per class (None: 500)
    majority: float = 0.95  # share of a class's training images with its usual frame
    frame_width: int = FRAME_WIDTH  # pixels
    densities: tuple[float, ...] = (0.3, 0.5)
    seeds: int = 3
    methods: tuple[str, ...] | None = None  # a subset of METHODS (None: all of them)


_PROBE = ProbeConfig(
    model="test_resnet", epochs=5, batch_size=128, lr=0.05, du_window=3, group_column=GROUP_COLUMN
)
_FINAL = TrainConfig(
    model="test_resnet",
    epochs=2,
    compute_matched=True,
    batch_size=128,
    lr=0.05,
    save_model=False,
    group_column=GROUP_COLUMN,
)
# The methods of the first sweep (issue 13), which fmnist_all has alone.
_FIRST = ("Random", "Random+DRoP (classes)", "Random+DRoP (groups)")
SETUPS = {
    # A stratified fifth of the training split (as shapes.py): about 6 minutes on 2 CPU cores
    # (3 methods, 3 seeds); 5 seeds and every method (issue 19): about 25 minutes more.
    "fmnist": Setup(_PROBE, _FINAL, per_class=1200, seeds=5),
    # All 60,000 training images (300 per minority group): about 23 minutes.
    "fmnist_all": Setup(_PROBE, _FINAL, methods=_FIRST),
    # Seconds, for the tests.
    "tiny": Setup(
        ProbeConfig(
            model="test_resnet", epochs=1, batch_size=64, du_window=1, group_column=GROUP_COLUMN
        ),
        TrainConfig(
            model="test_resnet",
            epochs=1,
            compute_matched=True,
            batch_size=64,
            save_model=False,
            group_column=GROUP_COLUMN,
        ),
        per_class=40,
        eval_per_class=10,
        densities=(0.5,),
        seeds=1,
    ),
}


# --- the construction ---------------------------------------------------------------------------


def frame_probability(labels: np.ndarray, majority: float) -> np.ndarray:
    """P(framed) of each row in the training split: ``majority`` in the framed classes, else
    ``1 - majority``."""
    framed = np.isin(labels, FRAMED_CLASSES)
    return np.where(framed, majority, 1.0 - majority)


def assign_frames(labels: np.ndarray, probability: float | np.ndarray, seed: int) -> np.ndarray:
    """0/1 per row: in each class exactly ``budget(n_k, p_k)`` rows, at random, get 1 (so the
    shares are exact, not Binomial)."""
    rng = np.random.default_rng(seed)
    probability = np.broadcast_to(np.asarray(probability, dtype=float), labels.shape)
    frame = np.zeros(len(labels), dtype=np.int64)
    for k in np.unique(labels):
        rows = np.flatnonzero(labels == k)
        count = budget(len(rows), float(probability[rows[0]]))
        frame[rng.choice(rows, count, replace=False)] = 1
    return frame


def paint_frames(images: np.ndarray, frame: np.ndarray, width: int = FRAME_WIDTH) -> np.ndarray:
    """The images (n, h, w; uint8) with a 255 border ``width`` pixels wide where ``frame`` is 1."""
    out = images.copy()
    framed = out[frame.astype(bool)]
    framed[:, :width, :] = 255
    framed[:, -width:, :] = 255
    framed[:, :, :width] = 255
    framed[:, :, -width:] = 255
    out[frame.astype(bool)] = framed
    return out


def with_frames(
    dataset: datasets.Dataset, frame: np.ndarray, name: str, width: int = FRAME_WIDTH
) -> datasets.Dataset:
    """``dataset`` (image, label) with frames painted and a ``frame`` ClassLabel column; its
    fingerprint is a pure function of its content (so a restarted run matches its probe)."""
    images = np.stack(dataset.with_format("numpy")["image"][:]).astype(np.uint8)
    labels = np.asarray(dataset["label"][:], dtype=np.int64)
    painted = paint_frames(images, frame, width)
    features = datasets.Features(
        {
            "image": datasets.Image(),
            "label": dataset.features["label"],
            ATTRIBUTE: datasets.ClassLabel(names=FRAME_NAMES),
        }
    )
    data = datasets.Dataset.from_dict(
        {"image": list(painted), "label": labels.tolist(), ATTRIBUTE: frame.tolist()},
        features=features,
    )
    content = xxhash.xxh64(painted.tobytes() + labels.tobytes() + frame.tobytes()).hexdigest()
    return data.select(range(len(data)), new_fingerprint=f"{name}-{content}")


def build(setup: Setup, seed: int = 0):
    """The framed training split, the validation half and the reported half of the test split,
    and their rows in the test split."""
    data = fashion_mnist()
    train, test = data["train"], data["test"]
    labels = np.asarray(train["label"][:])
    if setup.per_class is not None:
        rng = np.random.default_rng(seed)
        rows = [
            rng.choice(np.flatnonzero(labels == k), setup.per_class, replace=False)
            for k in np.unique(labels)
        ]
        train = train.select(np.sort(np.concatenate(rows)))
        labels = np.asarray(train["label"][:])
    val_rows, report_rows = stratified_indices(test, 0.5, seed=0)
    if setup.eval_per_class is not None:
        test_labels = np.asarray(test["label"][:])
        rng = np.random.default_rng(seed + 1)
        val_rows, report_rows = (
            np.sort(
                np.concatenate(
                    [
                        rng.choice(half[test_labels[half] == k], setup.eval_per_class, False)
                        for k in np.unique(test_labels)
                    ]
                )
            )
            for half in (val_rows, report_rows)
        )
    train = with_frames(
        train,
        assign_frames(labels, frame_probability(labels, setup.majority), seed),
        "train",
        setup.frame_width,
    )
    test_labels = np.asarray(test["label"][:])
    frame = np.zeros(len(test), dtype=np.int64)
    for offset, half in enumerate((val_rows, report_rows)):  # balanced in each half
        frame[half] = assign_frames(test_labels[half], 0.5, seed + 2 + offset)
    rows = np.concatenate([val_rows, report_rows])
    test = with_frames(test.select(rows), frame[rows], "test", setup.frame_width)
    val = test.select(range(len(val_rows)))
    reported = test.select(range(len(val_rows), len(rows)))
    return train, val, reported, val_rows, report_rows


def minority_groups(class_names: list[str]) -> list[str]:
    """Names of the rare label x frame combinations (``read_groups`` naming)."""
    return [
        f"{name}/{FRAME_NAMES[0 if k in FRAMED_CLASSES else 1]}"
        for k, name in enumerate(class_names)
    ]


# --- the benchmark ------------------------------------------------------------------------------


def run_name(method: str, density: float, seed: int) -> str:
    """The run folder ``benchmark.run_plan`` gives (method, density, seed)."""
    name = f"{method}-d{density}-s{seed}".replace(" ", "_").replace("+", "_")
    for char in "()":
        name = name.replace(char, "")
    return name


def filters(setup: Setup, probe, recorded: Path | None = None) -> dict[str, Callable]:
    """Each method of ``setup`` as ``(density, seed) -> DRoPFilter``: from the probe, or, with
    ``recorded``, from the class and group errors of the probe recorded there (its scores are
    not kept with the results, and a probe trained again on another machine makes other
    mistakes); no method here needs scores."""
    names = setup.methods or tuple(METHODS)
    if recorded is None:
        return {
            m: (lambda d, s, spec=METHODS[m]: DRoPFilter.from_probe(probe, d, seed=s, **spec))
            for m in names
        }
    result = ProbeResult(recorded)
    errors = {"classes": result.class_errors_with_support}
    errors["groups"] = result.group_errors_with_support

    def method(spec: dict) -> Callable:
        measured = errors["groups" if "group_column" in spec else "classes"]
        return lambda d, s: DRoPFilter(d, class_errors=measured, seed=s, **spec)

    return {m: method(METHODS[m]) for m in names}


def run(setup: Setup, out: Path, recorded: bool = False) -> pd.DataFrame:
    """Probe, train every (method, density, seed) not yet done, and write ``results.csv``.
    ``recorded``: no probe is trained; the methods use the errors of the probe recorded in
    ``out/probe`` (see :func:`filters`)."""
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    train, val, reported, val_rows, report_rows = build(setup)
    print(f"data built in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    frame = np.asarray(train[ATTRIBUTE][:])
    labels = np.asarray(train["label"][:])
    (out / "setup.json").write_text(
        json.dumps(
            {
                "dataset": "fashion_mnist",
                "attribute": ATTRIBUTE,
                "frame_width": setup.frame_width,
                "framed_classes": FRAMED_CLASSES,
                "majority": setup.majority,
                "train_per_class": np.bincount(labels).tolist(),
                "train_framed_per_class": np.bincount(labels[frame == 1], minlength=10).tolist(),
                "validation_rows": len(val),
                "reported_rows": len(reported),
                "probe": setup.probe.to_dict(),
                "final": asdict(setup.final),
                "densities": setup.densities,
                "seeds": setup.seeds,
                "methods": {m: METHODS[m] for m in setup.methods or METHODS},
                "recorded_probe": recorded,
            },
            indent=1,
        )
        + "\n"
    )
    probe = None
    if recorded:
        splits = json.loads((out / "probe" / "splits.json").read_text())
        if splits["val_indices"] != val_rows.tolist():
            raise SystemExit(f"--recorded-probe: {out / 'probe'} validated on other rows")
    else:
        probe = run_probe(
            train,
            val,
            setup.probe,
            out / "probe",
            source={"name": "fashion_mnist (Waterbirds-like frames)", "split": "train"},
            splits={"val_indices": val_rows.tolist(), "report_indices": report_rows.tolist()},
        )
    methods = filters(setup, probe, out / "probe" if recorded else None)
    plan = make_plan(methods, setup.densities, setup.seeds)
    runs = run_plan(plan, methods, probe, train, reported, setup.final, out / "train")
    names = train.features["label"].names
    minority = set(minority_groups(names))
    rows = []
    for row in runs.to_dict("records"):
        # A run that kept the very same rows as another reuses that run's metrics.
        shared = row.get("same_subset_as")
        trained = shared if isinstance(shared, str) else row["method"]
        metrics = json.loads(
            (out / "train" / "runs" / run_name(trained, row["density"], row["seed"]))
            .joinpath("metrics.json")
            .read_text()
        )
        groups = metrics["group_accuracy"]
        if row["method"] == FULL:
            kept, rule = np.arange(len(train)), FULL
        else:
            drop = methods[row["method"]](float(row["density"]), int(row["seed"]))
            kept, rule = drop.fit(train).indices_, drop.method
        rare = (frame[kept] == 1) != np.isin(labels[kept], FRAMED_CLASSES)
        rows.append(
            {
                "method": row["method"],
                "density": row["density"],
                "seed": row["seed"],
                "rule": rule,
                "accuracy": metrics["accuracy"],
                "worst_group_accuracy": metrics["worst_group_accuracy"],
                "worst_group": metrics["worst_group"],
                "worst_class_accuracy": metrics["worst_class_accuracy"],
                "worst_class": metrics["worst_class"],
                # As shapes.py's bottom-3 classes: it still tells rules apart where the worst
                # group is never learned.
                "worst3_group_accuracy": float(np.mean(sorted(groups.values())[:3])),
                "minority_group_accuracy": float(
                    np.mean([v for g, v in groups.items() if g in minority])
                ),
                "majority_group_accuracy": float(
                    np.mean([v for g, v in groups.items() if g not in minority])
                ),
                "train_rows": len(kept),
                "minority_rows": int(rare.sum()),
                "epochs": metrics["epochs"],
                "train_seconds": metrics["train_seconds"],
                "group_accuracy": json.dumps(groups),
                "class_accuracy": json.dumps(metrics["class_accuracy"]),
            }
        )
    results = pd.DataFrame(rows)
    results.to_csv(out / "results.csv", index=False)
    return results


# --- the verdict and the figure -----------------------------------------------------------------

METRICS = [
    ("worst_group_accuracy", "worst-group accuracy"),
    ("worst3_group_accuracy", "mean of the 3 worst groups"),
    ("accuracy", "average accuracy"),
    ("worst_class_accuracy", "worst-class accuracy"),
]


def summary(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd over seeds of every metric, per method and density."""
    columns = [m for m, _ in METRICS] + [
        "minority_group_accuracy",
        "majority_group_accuracy",
        "minority_rows",
        "train_rows",
    ]
    stats = results.groupby(["method", "density"])[columns].agg(["mean", "std"])
    stats[("seeds", "count")] = results.groupby(["method", "density"])["seed"].nunique()
    return stats


def verdict(results: pd.DataFrame, densities: tuple[float, ...], title: str) -> str:
    """One setup's part of verdict.md: the table, the check that the frame hurts, and DRoP over
    groups against Random and DRoP over classes."""
    stats = summary(results)

    def cell(method, density, metric, sd=True):
        row = stats.loc[(method, density)]
        text = f"{row[(metric, 'mean')]:.3f}"
        if sd and not np.isnan(row[(metric, "std")]):
            text += f" ± {row[(metric, 'std')]:.3f}"
        return text

    lines = [
        f"## {title}",
        "",
        "Mean ± sd over seeds, on the reported half of the test split (frames balanced).",
        "",
        "| method | d | worst-group | 3 worst groups | average | worst-class | minority groups "
        "| majority groups | minority rows kept / rows |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    order = [(FULL, 1.0)] + [(m, d) for d in densities for m in METHODS]
    for method, density in order:
        if (method, density) not in stats.index:
            continue
        row = stats.loc[(method, density)]
        lines.append(
            f"| {method} | {density} | {cell(method, density, 'worst_group_accuracy')} | "
            f"{cell(method, density, 'worst3_group_accuracy')} | "
            f"{cell(method, density, 'accuracy')} | "
            f"{cell(method, density, 'worst_class_accuracy')} | "
            f"{cell(method, density, 'minority_group_accuracy', False)} | "
            f"{cell(method, density, 'majority_group_accuracy', False)} | "
            f"{row[('minority_rows', 'mean')]:.0f} / {row[('train_rows', 'mean')]:.0f} |"
        )
    lines += ["", "Does the frame hurt?", ""]
    if (FULL, 1.0) in stats.index:
        full = stats.loc[(FULL, 1.0)]
        gap = full[("majority_group_accuracy", "mean")] - full[("minority_group_accuracy", "mean")]
        worst_groups = results.loc[results.method == FULL, "worst_group"].tolist()
        lines.append(
            f"- Full data: worst-group {full[('worst_group_accuracy', 'mean')]:.3f} against "
            f"average {full[('accuracy', 'mean')]:.3f} (worst class "
            f"{full[('worst_class_accuracy', 'mean')]:.3f}); the minority groups score "
            f"{gap:.3f} below the majority groups of the same classes (a model blind to the "
            f"frame would score them alike). Worst group of each seed: {worst_groups}."
        )
    lines += ["", "DRoP over groups against the others (mean difference; judged against the "
              "larger of the two seed sds):", ""]  # fmt: skip
    for density in densities:
        if (GROUPS, density) not in stats.index:
            continue
        for other in ("Random", "Random+DRoP (classes)"):
            if (other, density) not in stats.index:
                continue
            parts = [
                _difference(stats.loc[(GROUPS, density)], stats.loc[(other, density)], metric)
                for metric in ("worst_group_accuracy", "worst3_group_accuracy", "accuracy")
            ]
            lines.append(
                f"- d = {density}, vs {other}: worst-group {parts[0]}; 3 worst groups "
                f"{parts[1]}; average {parts[2]}."
            )
    return "\n".join(lines) + "\n"


def intervals_text(results: pd.DataFrame, per_group: int) -> str:
    """Markdown: every method against REFERENCE (hf-drop's default over groups) on the worst
    group, the 3 worst groups and average accuracy: the mean paired difference with its paired
    bootstrap interval (seeds and the ``per_group`` reported images of each group resampled),
    Bonferroni over the comparisons of each metric."""
    runs = results[results.method != FULL].assign(class_accuracy=results["group_accuracy"])
    if REFERENCE not in set(runs.method) or runs.seed.nunique() < 2:
        return ""
    names = json.loads(runs["group_accuracy"].iloc[0])
    lines = [
        f"Against {REFERENCE} (mean paired difference, method minus it; paired bootstrap over "
        f"seeds and the {per_group} reported images of each group, Bonferroni over the "
        "comparisons of a metric; `<` the reference is better beyond noise, `>` the method is, "
        "`~` within noise):",
        "",
        "| method | d | pairs | worst group | 3 worst groups | average |",
        "|---|---|---|---|---|---|",
    ]
    tables = {
        metric: paired_bootstrap(runs, REFERENCE, metric=metric, support=[per_group] * len(names))
        for metric in ("worst_class_accuracy", "bottom3", "accuracy")
    }
    first = tables["worst_class_accuracy"]
    for row in first.itertuples():
        cells = []
        for table in tables.values():
            r = table[(table.method == row.method) & (table.density == row.density)].iloc[0]
            sign = "<" if r.ci_high_adj < 0 else ">" if r.ci_low_adj > 0 else "~"
            cells.append(f"{sign} {r['diff']:+.3f} [{r.ci_low_adj:+.3f}, {r.ci_high_adj:+.3f}]")
        lines.append(f"| {row.method} | {row.density} | {row.pairs} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _difference(mine: pd.Series, other: pd.Series, metric: str) -> str:
    gain = mine[(metric, "mean")] - other[(metric, "mean")]
    # With one seed there is no sd: then any difference counts.
    noise = max(
        0.0 if np.isnan(sd) else sd for sd in (mine[(metric, "std")], other[(metric, "std")])
    )
    judged = "better" if gain > noise else ("worse" if gain < -noise else "within one sd")
    return f"{gain:+.3f} ({judged}, sd {noise:.3f})"


def plot(runs: dict[str, pd.DataFrame], densities: tuple[float, ...], path: Path):
    """One row of panels per setup, one panel per metric: bars per method at each density
    (mean, error bars 1 sd over seeds, seeds as dots), full data as a dashed line with its sd
    band."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(16, 1.0 + 3.9 * len(runs)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(runs), len(METRICS), squeeze=False)
    methods = [m for m in METHODS if any((r.method == m).any() for r in runs.values())]
    width = 0.8 / len(methods)
    palette = {"Random": "#9e9e9e", "Random+DRoP (classes)": "#1f77b4", GROUPS: "#d62728"}
    colors = {m: palette.get(m, f"C{i + 3}") for i, m in enumerate(methods)}
    for row, (name, results) in enumerate(runs.items()):
        for ax, (metric, label) in zip(axes[row], METRICS, strict=True):
            full = results.loc[results.method == FULL, metric]
            if len(full):
                mean, sd = full.mean(), (full.std() if len(full) > 1 else 0.0)
                ax.axhspan(mean - sd, mean + sd, color="black", alpha=0.08, lw=0)
                ax.axhline(mean, color="black", ls="--", lw=1, label=f"{FULL} (mean ± sd band)")
            for i, method in enumerate(methods):
                for j, density in enumerate(densities):
                    chosen = results.loc[
                        (results.method == method) & (results.density == density), metric
                    ]
                    if chosen.empty:
                        continue
                    x = j + (i - (len(methods) - 1) / 2) * width
                    values = chosen.to_numpy()
                    sd = values.std(ddof=1) if len(values) > 1 else 0.0
                    ax.bar(
                        x, values.mean(), width * 0.9, yerr=sd, capsize=3, color=colors[method],
                        label=method if j == 0 else None,
                    )  # fmt: skip
                    ax.plot(np.full(len(values), x), values, "o", ms=3, color="black", alpha=0.6)
                    ax.annotate(
                        f"{values.mean():.2f}", (x, values.mean() + sd), xytext=(0, 2),
                        textcoords="offset points", ha="center", fontsize=8,
                    )  # fmt: skip
            ax.set_xticks(range(len(densities)), [f"density {d}" for d in densities])
            ax.set_title(f"{name}: {label}", fontsize=10)
            top = results[metric].max()
            ax.set_ylim(0.0, min(1.0, top + 0.12) if top > 0 else 0.1)
            if top == 0:  # a floor, not a missing panel
                ax.text(
                    0.5, 0.5, "0.000 in every run\n(full data included)", ha="center",
                    va="center", transform=ax.transAxes, fontsize=10, color="0.3",
                )  # fmt: skip
            ax.grid(axis="y", alpha=0.3)
        axes[row, 0].set_ylabel("accuracy, reported half")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=4, fontsize=9)
    fig.suptitle(
        "Waterbirds-like Fashion-MNIST (frame with the class in 95% of training images, "
        "balanced in test): mean ± sd over seeds, dots = seeds",
        fontsize=11,
    )
    fig.savefig(path, dpi=110)
    return fig


TITLES = {
    "fmnist": "fmnist: a stratified fifth of the training split (1,200 per class, 60 per "
    "minority group)",
    "fmnist_all": "fmnist_all: the whole training split (6,000 per class, 300 per minority group)",
    "tiny": "tiny: 40 per class (the tests)",
}


def main(argv: list[str] | None = None) -> dict[str, pd.DataFrame]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument(
        "--setups", nargs="*", choices=list(SETUPS), default=["fmnist", "fmnist_all"]
    )
    parser.add_argument("--verdict", action="store_true", help="only the tables and the figure")
    parser.add_argument(
        "--recorded-probe", action="store_true",
        help="add runs on the class and group errors of the probes recorded in OUTPUT/<setup> "
        "(no probe trained)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    runs = {}
    for name in args.setups:
        out = args.output / name
        if args.verdict:
            if (out / "results.csv").exists():
                runs[name] = pd.read_csv(out / "results.csv")
            continue
        print(f"=== setup {name}", file=sys.stderr)
        runs[name] = run(SETUPS[name], out, args.recorded_probe)
    densities = SETUPS[args.setups[0]].densities
    parts = []
    for name, results in runs.items():
        per_group = (SETUPS[name].eval_per_class or 500) // 2  # half of each class is framed
        parts.append(verdict(results, SETUPS[name].densities, TITLES[name]))
        parts.append(intervals_text(results, per_group))
    text = "# Group robustness: DRoP over groups (Waterbirds-like Fashion-MNIST)\n\n" + "\n".join(
        parts
    )
    (args.output / "verdict.md").write_text(text)
    plot(runs, densities, args.output / "groups.png")
    print(text)
    return runs


if __name__ == "__main__":
    main()
