"""Does DRoP do what the paper says? Methods x densities x seeds on real data, from one probe run.

Protocol, as in the paper: the probe trains on the full training split; its class errors come from
half of each class of the official test split (fixed seed); the other half is the only thing
reported and never selects anything (no best epoch on it). Final models train with the
compute-matched schedule (``round((0.5 + 0.5 d) E / d)`` epochs at density ``d``).

Each finished run appends a row to ``results.csv``; a restarted benchmark skips the runs it has
(and the probe resumes from its last epoch). At the end: ``accuracy.png`` (average and worst-class
accuracy against density, one line per method, error bars across seeds), ``results.md`` (the
table) and ``drop_quotas.png`` (what Random+DRoP kept per class at the lowest density).

    python recipes/benchmark.py --preset fashion_mnist --output benchmarks/results/fashion_mnist

The paper's own CIFAR settings (``--preset cifar10``: VGG-16; ``cifar100``: VGG-19, see
``_paper_cifar``) need a GPU; data from the Hub or a local folder, on one process or many::

    accelerate launch recipes/benchmark.py --preset cifar10 --output runs/cifar10
    accelerate launch recipes/benchmark.py --preset cifar100 --dataset ./cifar100 --output runs/c100
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from accelerate import PartialState

from hf_drop import DRoPFilter
from hf_drop.data.sources import load_source
from hf_drop.data.splits import stratified_indices
from hf_drop.evaluation.plots import plot_kept_fraction
from hf_drop.evaluation.report import plot_runs, summarize
from hf_drop.io.logs import is_main_process
from hf_drop.probe import ProbeConfig, ProbeResult, run_probe
from hf_drop.pruning.rows import indices_hash
from hf_drop.train import TrainConfig, compute_matched_epochs, train_and_evaluate

# Every method, as DRoPFilter.from_probe arguments; all come from the same probe run.
METHODS: dict[str, dict] = {
    "Random": {"quota": "global"},
    "Random+DRoP": {"quota": "drop_paper"},  # exactly the paper's rule, as in the results below
    # hf-drop's default before issue 19 (floor 0.5, errors shrunk by their support; kept fraction
    # proportional to error), as the recorded results ran it; the default since is saturating.
    "Random+DRoP (robust)": {"mode": "paper"},
    "EL2N": {"within": "el2n", "quota": "global"},
    "EL2N+DRoP": {"within": "el2n", "quota": "drop_paper"},
    "GraNd": {"within": "grand", "quota": "global"},
    "Forgetting": {"within": "forgetting", "quota": "global"},
    "Dynamic Uncertainty": {"within": "dynamic_uncertainty", "quota": "global"},
    "AUM": {"within": "aum", "quota": "global"},
    "CCS": {"within": "aum", "keep": "ccs", "quota": "global"},  # CCS over AUM, as Zheng et al.
    "CoreSet": {"within": "embedding", "keep": "k_center", "quota": "global"},
    "Random+StrategyQ (EL2N)": {"strategy_score": "el2n"},
    "Random+Proportional": {"quota": "proportional"},
    "Random+Uniform": {"quota": "uniform"},
    # hf-drop's default since issue 19: count mode until a class is kept whole, then equal shares
    "Random+DRoP (saturating, floor)": {"mode": "saturating"},
}
FULL = "Full data"
# The methods of the recorded Fashion-MNIST results (benchmarks/results/fashion_mnist).
_PRUNING_METHODS = list(METHODS)[:12]
# The paper's own comparison, with the class-count baselines a reviewer asks for.
_PAPER_METHODS = [
    "Random",
    "Random+Proportional",
    "Random+Uniform",
    "Random+DRoP",
    "Random+DRoP (robust)",
    "Random+StrategyQ (EL2N)",
]


@dataclass
class Preset:
    dataset: str
    probe: ProbeConfig
    final: TrainConfig
    densities: tuple[float, ...] = (0.3, 0.5, 0.7)
    seeds: int = 2
    image_column: str = "image"
    label_column: str = "label"
    methods: list[str] = field(default_factory=lambda: list(_PRUNING_METHODS))
    # The validation half of each test class: "random" (seed 0), or "first" (the first half of
    # each class in the split's order, as the DRoP authors' code takes it).
    validation: str = "random"


def _paper_cifar(dataset: str, model: str, weight_decay: float, label_column: str) -> Preset:
    """Vysogorets et al. (ICLR 2025) on CIFAR, as their code sets it up: final models train
    E = 160 epochs with SGD (lr 0.1, momentum 0.9, batch 128), the rate times 0.2 at epochs 80 and
    120 (rescaled with the compute-matched schedule), flips and shifts; the Random+DRoP probe
    trains 16 epochs at a constant lr 0.1 without augmentation, and its class recalls are taken
    at its best validation epoch; validation is the first half of each test class; 3 seeds at
    d = 0.3, 0.5, 0.8. Differences, said: their augmentation shifts by up to 15% (RandomAffine),
    hf-drop's by a 2-pixel padded crop; their epochs are truncated, hf-drop's rounded."""
    return Preset(
        dataset=dataset,
        image_column="img",
        label_column=label_column,
        probe=ProbeConfig(
            model=model,
            epochs=16,
            batch_size=128,
            lr=0.1,
            schedule="constant",
            weight_decay=weight_decay,
            class_errors_from="best",
            embeddings=True,
            image_column="img",
            label_column=label_column,
        ),
        final=TrainConfig(
            model=model,
            epochs=160,
            compute_matched=True,
            batch_size=128,
            lr=0.1,
            momentum=0.9,
            weight_decay=weight_decay,
            lr_milestones=(0.5, 0.75),
            lr_gamma=0.2,
            augment=True,
            image_column="img",
            label_column=label_column,
            save_model=False,
        ),
        densities=(0.3, 0.5, 0.8),
        seeds=3,
        methods=list(_PAPER_METHODS),
        validation="first",
    )


PRESETS = {
    # Real Fashion-MNIST (Debian's files, 60,000 training images), about an hour on 2 CPU cores.
    "fashion_mnist": Preset(
        dataset="fashion_mnist",
        probe=ProbeConfig(
            model="test_resnet", epochs=5, batch_size=128, lr=0.05, embeddings=True, du_window=3
        ),
        final=TrainConfig(
            model="test_resnet",
            epochs=2,
            compute_matched=True,
            batch_size=128,
            lr=0.05,
            save_model=False,  # the benchmark compares metrics; no model per run
        ),
    ),
    # The paper's own settings, for a GPU (hf_drop.modeling.cifar: the CIFAR VGGs).
    "cifar10": _paper_cifar("uoft-cs/cifar10", "vgg16_bn_cifar", 1e-4, "label"),
    "cifar100": _paper_cifar("uoft-cs/cifar100", "vgg19_bn_cifar", 5e-4, "fine_label"),
    # Seconds, for tests: every method once.
    "digits": Preset(
        dataset="digits",
        probe=ProbeConfig(model="test_resnet", epochs=2, batch_size=64, embeddings=True),
        final=TrainConfig(
            model="test_resnet", epochs=1, compute_matched=True, batch_size=64, save_model=False
        ),
        densities=(0.5,),
        seeds=1,
    ),
}
COLUMNS = [
    "method",
    "density",
    "seed",
    "accuracy",
    "worst_class_accuracy",
    "worst_class",
    "class_accuracy_std",
    "class_accuracy",
    "train_rows",
    "epochs",
    "prune_seconds",
    "train_seconds",
    "seconds",
    "subset_hash",
    "same_subset_as",
]


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="fashion_mnist")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--methods", nargs="*", help="a subset of the methods")
    parser.add_argument("--dataset", help="the preset's data from elsewhere: Hub id or folder")
    parser.add_argument("--epochs", type=int, help="full-data epochs E of the final models")
    parser.add_argument("--probe-epochs", type=int, help="epochs of the probe")
    parser.add_argument("--seeds", type=int, help="seeds 0..N-1 of every run")
    parser.add_argument("--densities", type=float, nargs="+", help="densities to prune to")
    parser.add_argument(
        "--recorded-probe", action="store_true",
        help="the class errors of the probe recorded in OUTPUT/probe (its class_metrics.json), "
        "not a probe trained again: for rules that need nothing else (random within classes)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    preset = _override(PRESETS[args.preset], args)
    methods = args.methods or preset.methods
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"--methods: unknown {unknown}; choose among {list(METHODS)}")
    out = args.output
    if is_main_process():
        out.mkdir(parents=True, exist_ok=True)
        record = {
            "preset": args.preset,
            "dataset": preset.dataset,
            "probe": preset.probe.to_dict(),
            "final": asdict(preset.final),
            "densities": preset.densities,
            "seeds": preset.seeds,
            "validation": preset.validation,
            "methods": {m: METHODS[m] for m in methods},
        }
        path = out / "preset.json"
        if path.exists():  # runs added to recorded ones: the same preset, more methods
            before = json.loads(path.read_text())
            now = json.loads(json.dumps(record))  # tuples as JSON has them: lists
            before["final"], now["final"] = _in_force(before["final"]), _in_force(now["final"])
            differs = [k for k in now if k != "methods" and not _same(before.get(k), now[k])]
            if differs:
                raise SystemExit(f"{path} records another {differs}: use another --output")
            record["methods"] = {**before["methods"], **record["methods"]}
        path.write_text(json.dumps(record, indent=1) + "\n")

    # The probe, and the two halves of the test split.
    data = load_source(preset.dataset)
    train, test = data["train"], data["test"]
    val_rows, report_rows = validation_halves(test, preset)
    reported = test.select(report_rows)
    if args.recorded_probe:
        probe, specs = None, recorded_probe_methods(out / "probe", methods, val_rows)
    else:
        probe = run_probe(
            train,
            test.select(val_rows),
            preset.probe,
            out / "probe",
            source={"name": preset.dataset, "split": "train"},
            splits={
                "val_split": "test",
                "val_indices": val_rows.tolist(),
                "report_indices": report_rows.tolist(),
            },
        )
        specs = METHODS

    plan = make_plan(methods, preset.densities, preset.seeds)
    results = run_plan(plan, specs, probe, train, reported, preset.final, out)
    if not is_main_process():
        return results
    lowest = min(preset.densities)
    if probe is None:
        shown = recorded_probe_methods(out / "probe", ["Random+DRoP (robust)"], val_rows)
        drop = shown["Random+DRoP (robust)"](lowest, 0)
    else:
        drop = DRoPFilter.from_probe(probe, lowest)
    table = _outputs(results, drop.fit(train), lowest, out)
    print(table.to_string(float_format=lambda v: f"{v:.4f}", na_rep="-"))
    return table


def _override(preset: Preset, args: argparse.Namespace) -> Preset:
    """The preset with the command line's data, epochs, seeds and densities."""
    if args.dataset is not None:
        preset = replace(preset, dataset=args.dataset)
    if args.epochs is not None:
        preset = replace(preset, final=replace(preset.final, epochs=args.epochs))
    if args.probe_epochs is not None:
        preset = replace(preset, probe=replace(preset.probe, epochs=args.probe_epochs))
    if args.seeds is not None:
        preset = replace(preset, seeds=args.seeds)
    if args.densities is not None:
        preset = replace(preset, densities=tuple(args.densities))
    return preset


def _in_force(final: dict) -> dict:
    """A final TrainConfig as a dict without the settings that do nothing in it: the dynamic_*
    ones when ``dynamic_drop`` is off (their defaults changed after runs were recorded)."""
    if final.get("dynamic_drop") is not None:
        return final
    return {k: v for k, v in final.items() if not k.startswith("dynamic_")}


def _same(recorded, now) -> bool:
    """A recorded setting is the same as ``now``; a key it lacks is a setting added since, whose
    default is what the recorded run did (the validation halves were random until "first")."""
    if recorded is None:
        return now in (None, "random")
    if isinstance(recorded, dict) and isinstance(now, dict):
        return all(key not in recorded or _same(recorded[key], now[key]) for key in now)
    return recorded == now


def recorded_probe_methods(
    folder: Path, methods: list[str], val_rows: np.ndarray, catalogue: dict | None = None
) -> dict:
    """Each method (a name in ``catalogue``, default METHODS) as a filter on the class errors a
    recorded probe measured (its scores are not kept with the results, and a probe trained
    again, on another machine or library build, makes other mistakes)."""
    catalogue = METHODS if catalogue is None else catalogue
    needs = [m for m in methods if needs_scores(catalogue[m])]
    if needs:
        raise SystemExit(f"--recorded-probe: {needs} need the probe's scores; run the probe")
    splits = json.loads((folder / "splits.json").read_text())
    if splits["val_indices"] != val_rows.tolist():
        raise SystemExit(f"--recorded-probe: {folder} validated on other rows than the preset's")
    # Its class metrics alone (ProbeResult.load would want the scores too); older records
    # without mistakes have them recovered from recall and support.
    errors = ProbeResult(folder).class_errors_with_support

    def method(spec: dict) -> Callable[[float, int], DRoPFilter]:
        return lambda density, seed: DRoPFilter(density, class_errors=errors, seed=seed, **spec)

    return {m: method(catalogue[m]) for m in methods}


def needs_scores(spec: dict) -> bool:
    """Whether a method's ``from_probe`` arguments use the probe's per-sample scores."""
    return bool({"within", "strategy_score"} & set(spec))


def validation_halves(test, preset: Preset) -> tuple[np.ndarray, np.ndarray]:
    """The rows of each test class that measure the probe's errors, and the rows reported."""
    if preset.validation == "random":
        return stratified_indices(test, 0.5, seed=0, label_column=preset.label_column)
    labels = np.asarray(test[preset.label_column])
    first = np.zeros(len(labels), dtype=bool)
    for k in np.unique(labels):
        rows = np.flatnonzero(labels == k)
        first[rows[: len(rows) // 2]] = True
    return np.flatnonzero(first), np.flatnonzero(~first)


def make_plan(methods, densities: tuple[float, ...], seeds: int) -> list[tuple[str, float, int]]:
    """Full data once per seed, then every method at every density, seed by seed."""
    return [(FULL, 1.0, seed) for seed in range(seeds)] + [
        (method, density, seed)
        for seed in range(seeds)
        for density in densities
        for method in methods
    ]


def run_plan(
    plan: list[tuple[str, float, int]],
    methods: dict[str, dict | Callable[[float, int], DRoPFilter]],
    probe,
    train,
    reported,
    final: TrainConfig,
    out: Path,
) -> pd.DataFrame:
    """Train and judge every (method, density, seed) of ``plan`` not yet in ``out/results.csv``;
    each finished run appends its row, so a restarted run resumes. Returns every row.

    A method is ``DRoPFilter.from_probe`` arguments, or a function of ``(density, seed)`` that
    returns an unfitted filter (a filter from another probe, say). Two methods that keep the very
    same rows at one density and seed train the very same model (same data, same seed), so the
    second reuses the first's metrics: its row says ``same_subset_as``, and the subset's
    ``indices_hash`` is in ``subset_hash``.
    """
    results = out / "results.csv"
    done: set[tuple[str, float, int]] = set()
    trained: dict[tuple[float, int, str], dict] = {}  # (density, seed, subset hash) -> its row
    if results.exists():
        previous = pd.read_csv(results)
        done = {
            (m, float(d), int(s))
            for m, d, s in zip(
                previous["method"], previous["density"], previous["seed"], strict=True
            )
        }
        if "subset_hash" in previous:
            for row in previous.to_dict("records"):
                if isinstance(row["subset_hash"], str) and not isinstance(
                    row.get("same_subset_as"), str
                ):
                    key = (float(row["density"]), int(row["seed"]), row["subset_hash"])
                    trained.setdefault(key, row)
    todo = [run for run in plan if run not in done]
    _say(f"{len(plan) - len(todo)} of {len(plan)} runs done; {len(todo)} to go")
    for number, (method, density, seed) in enumerate(todo, 1):
        start = time.perf_counter()
        if method == FULL:
            subset, provenance, digest = train, None, None
        else:
            spec = methods[method]
            if callable(spec):
                drop = spec(density, seed)
            else:
                drop = DRoPFilter.from_probe(probe, density, seed=seed, **spec)
            subset = drop.fit(train).apply(train)
            provenance = drop.provenance()
            digest = indices_hash(drop.indices_)
        prune_seconds = time.perf_counter() - start
        twin = trained.get((density, seed, digest)) if digest is not None else None
        if twin is not None:
            row = {key: twin[key] for key in COLUMNS[3:-2]}
            row.update(method=method, density=density, seed=seed, same_subset_as=twin["method"])
            # It trained nothing: its seconds are the pruning's; train_seconds stay its twin's.
            row.update(prune_seconds=round(prune_seconds, 2), subset_hash=digest)
            row["seconds"] = round(prune_seconds, 2)
        else:
            row = _train_run(method, density, seed, subset, provenance, reported, final, out)
            row.update(prune_seconds=round(prune_seconds, 2), subset_hash=digest)
            row["seconds"] = round(time.perf_counter() - start, 2)
            if digest is not None:
                trained[(density, seed, digest)] = row
        if is_main_process():
            append_row(results, row)
        PartialState().wait_for_everyone()  # every process then reads the same results
        same = f", same rows as {twin['method']}" if twin is not None else ""
        _say(
            f"[{number}/{len(todo)}] {method} d={density} seed={seed}: acc "
            f"{row['accuracy']:.4f}, worst {row['worst_class']} "
            f"{row['worst_class_accuracy']:.4f} ({row['seconds']:.0f} s{same})"
        )
    return pd.read_csv(results)


def _train_run(method, density, seed, subset, provenance, reported, final, out) -> dict:
    """Train one final model on ``subset`` and judge it on ``reported``: its results row."""
    config = replace(final, seed=seed, compute_matched=method != FULL)
    name = f"{method}-d{density}-s{seed}".replace(" ", "_").replace("+", "_")
    for char in "()":
        name = name.replace(char, "")
    metrics = train_and_evaluate(  # overwrite: a run killed before its row was appended
        subset,
        reported,
        config,
        out / "runs" / name,
        density=density,
        provenance=provenance,
        overwrite=True,
    )
    return {
        "method": method,
        "density": density,
        "seed": seed,
        "accuracy": metrics["accuracy"],
        "worst_class_accuracy": metrics["worst_class_accuracy"],
        "worst_class": metrics["worst_class"],
        "class_accuracy_std": metrics["class_accuracy_std"],
        "class_accuracy": json.dumps(metrics["class_accuracy"]),
        "train_rows": metrics["train_rows"],
        "epochs": metrics["epochs"],
        "train_seconds": metrics["train_seconds"],
    }


def _say(text: str) -> None:
    """Progress on stderr, once (from the main process under accelerate)."""
    if is_main_process():
        print(text, file=sys.stderr)


def append_row(path: Path, row: dict, columns: list[str] = COLUMNS) -> None:
    """One row more of a results CSV (its header first, ``columns``). A file written before some
    of ``columns`` existed gains them (its earlier rows empty there), so that a new row loses
    nothing: written whole to a temporary file first, then moved over the old one."""
    new = not path.exists()
    if not new:
        with path.open(newline="") as f:
            header = next(csv.reader(f))
        missing = [c for c in columns if c not in header and c in row]
        if missing:
            earlier = pd.read_csv(path, dtype=str, keep_default_na=False)
            temporary = path.with_name(f".{path.name}.tmp")
            earlier.reindex(columns=[*header, *missing]).to_csv(temporary, index=False)
            temporary.replace(path)
            header = [*header, *missing]
        columns = header
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)


def _outputs(results: pd.DataFrame, drop: DRoPFilter, lowest: float, out: Path) -> pd.DataFrame:
    runs = results.assign(run=results["method"] + "/" + results["seed"].astype(str))
    plot_runs(runs, out / "accuracy.png")
    table = summarize(runs)
    lines = [
        "| method | density | runs | accuracy | worst-class accuracy |",
        "|---|---|---|---|---|",
    ]
    for (method, density), row in table.iterrows():
        sd = "" if np.isnan(row["accuracy_sd"]) else f" ± {row['accuracy_sd']:.4f}"
        wsd = "" if np.isnan(row["worst_class_sd"]) else f" ± {row['worst_class_sd']:.4f}"
        lines.append(
            f"| {method} | {density} | {int(row['runs'])} | "
            f"{row['accuracy']:.4f}{sd} | {row['worst_class_accuracy']:.4f}{wsd} |"
        )
    (out / "results.md").write_text("\n".join(lines) + "\n")
    plot_kept_fraction(
        drop.report(),
        out / "drop_quotas.png",
        title=f"Random+DRoP at density {lowest}: kept fraction and probe error",
    )
    return table


def epochs_of(preset: Preset, density: float) -> int:
    """Final-model epochs at ``density`` (for planning the budget)."""
    return compute_matched_epochs(preset.final.epochs, density)


if __name__ == "__main__":
    main()
