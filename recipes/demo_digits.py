"""The main job, end to end on scikit-learn's real handwritten digits.

1. Probe: a timm model trained under Accelerate on the 1,437 training digits; per-class recall is
   measured on half of each class of the 360 test digits (the paper's protocol), and every
   per-sample score is recorded.
2. Prune the training set to ``--density`` four ways: Random (the same fraction of every class),
   Random+DRoP with the paper's exact rule, Random+DRoP with hf-drop's robust default (a floor
   of half of each class's share, errors shrunk by their validation support), and EL2N (the
   globally hardest samples). The two DRoP quotas are printed side by side.
3. Train the same model on each subset (and once on all the data) with ``transformers.Trainer``
   and the compute-matched schedule, over ``--seeds`` seeds.
4. Judge every model on the other half of the test digits, which chose nothing: average and
   worst-class accuracy, as a table and a plot.

Run: ``make demo`` (or ``python recipes/demo_digits.py --output outputs/demo``): about a
minute on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from accelerate import PartialState

from hf_drop import DRoPFilter, QuotaWarning
from hf_drop.data.sources import digits_splits
from hf_drop.data.splits import stratified_indices
from hf_drop.evaluation.plots import plot_kept_fraction
from hf_drop.evaluation.report import load_runs, plot_runs, summarize
from hf_drop.probe import ProbeConfig, run_probe
from hf_drop.pruning.artifacts import save_subset
from hf_drop.train import TrainConfig, train_and_evaluate

# Run-folder name -> DRoPFilter.from_probe arguments.
METHODS = {
    "random": {"quota": "proportional"},
    "drop_paper": {"quota": "drop_paper"},
    "drop": {},  # the robust default
    "el2n": {"within": "el2n", "quota": "strategy"},
}


def main(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("outputs/demo"))
    parser.add_argument("--model", default="test_resnet")
    parser.add_argument("--probe-epochs", type=int, default=10)
    parser.add_argument("--num-inits", type=int, default=2)
    parser.add_argument(
        "--epochs",
        type=int,
        default=10,
        help="full-data epochs of the final models (compute-matched on subsets)",
    )
    parser.add_argument("--density", type=float, default=0.5)
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args(argv)
    out = args.output

    # 1. Probe on train; class errors from half of test, the other half is reported.
    data = digits_splits()
    train = data["train"]
    val_rows, report_rows = stratified_indices(data["test"], 0.5, seed=0)
    result = run_probe(
        train,
        data["test"].select(val_rows),
        ProbeConfig(
            model=args.model, epochs=args.probe_epochs, batch_size=64, num_inits=args.num_inits
        ),
        out / "probe",
        source={"name": "digits", "split": "train"},
        splits={
            "val_split": "test",
            "val_indices": val_rows.tolist(),
            "report_indices": report_rows.tolist(),
        },
    )
    report_split = data["test"].select(report_rows)
    main_process = PartialState().is_main_process

    # 2-3. Prune three ways, train on each subset; and on all the data once.
    config = TrainConfig(model=args.model, epochs=args.epochs, compute_matched=True, batch_size=64)
    runs = []
    reports = {}
    for seed in range(args.seeds):
        for method, options in METHODS.items():
            name = f"{method}-d{args.density}-seed{seed}"
            with warnings.catch_warnings():  # what they say is in the report's flags below
                warnings.simplefilter("ignore", QuotaWarning)
                drop = DRoPFilter.from_probe(result, args.density, seed=seed, **options)
                subset = drop.fit(train).apply(train)
            if main_process:
                save_subset(subset, out / "subsets" / name, drop, overwrite=True)
            if seed == 0 and method.startswith("drop"):
                reports[drop.method] = drop.report()
                if method == "drop" and main_process:
                    _print_quotas(reports, args.density)
                    plot_kept_fraction(
                        reports[drop.method],
                        out / "kept_fraction.png",
                        title=f"{drop.method} on digits, density {args.density}",
                    )
            train_and_evaluate(
                subset,
                report_split,
                TrainConfig(**{**vars(config), "seed": seed}),
                out / "runs" / name,
                density=args.density,
                provenance=drop.provenance(),
                overwrite=True,  # the demo's own run folders: a second demo redoes them
            )
            runs.append(out / "runs" / name)
    full_config = TrainConfig(**{**vars(config), "compute_matched": False})
    train_and_evaluate(
        train, report_split, full_config, out / "runs" / "full-data", density=1.0, overwrite=True
    )
    runs.append(out / "runs" / "full-data")

    # 4. The comparison.
    if not main_process:
        return None
    table = summarize(load_runs(runs))
    print(
        f"test accuracy on the reported half of test ({len(report_split)} digits), "
        f"mean (sd) over {args.seeds} seeds:\n"
    )
    print(table.to_string(float_format=lambda v: f"{v:.3f}", na_rep="-"))
    plot_runs(load_runs(runs), out / "accuracy.png")
    print(
        f"\nwrote {out}/probe, {out}/subsets, {out}/runs (metrics.json each), "
        f"{out}/accuracy.png, {out}/kept_fraction.png"
    )
    return table


def _print_quotas(reports: dict, density: float) -> None:
    """The paper's quotas and the default's, class by class, with the probe's errors."""
    (paper_name, paper), (default_name, default) = reports.items()
    side = paper[["name", "size", "error", "error_low", "error_high"]].assign(
        **{"kept (paper)": paper["kept"], "kept (default)": default["kept"]},
        flags=paper["flags"],
    )
    print(
        f"\nDRoP quotas at density {density} (probe errors on 18 validation digits per class, "
        f"95% Wilson interval):\n  paper:   {paper_name}\n  default: {default_name}\n"
        f"{side.to_string(float_format=lambda v: f'{v:.3f}')}\n"
    )


if __name__ == "__main__":
    main()
