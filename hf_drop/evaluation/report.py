"""Comparing trained runs: average and worst-class accuracy by pruning method, density and the
other training settings where runs differ."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

import pandas as pd

from ..io.extras import require

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["load_runs", "plot_runs", "summarize"]


def load_runs(folders: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """One row per run folder (its ``metrics.json``, read by
    :meth:`hf_drop.train.TrainRecord.read`): method, density, seed, the accuracies, and
    ``settings``: the training settings in which this run differs from other runs of its method
    (``""`` where they all agree), since runs with other settings are not seeds of one another.

    Refused: a run given twice, by the same folder or by a copy of it (the same ``run_id``), which
    would be counted twice; a folder without a readable ``metrics.json``."""
    from .record import TrainRecord

    records: list[TrainRecord] = []
    seen: dict[str, str | os.PathLike] = {}
    for folder in folders:
        real = os.path.realpath(folder)
        if real in seen:
            raise ValueError(
                f"runs: {folder} is given twice (as {seen[real]} and {folder}): each run is "
                "counted once; pass every run folder once"
            )
        seen[real] = folder
        record = TrainRecord.read(folder)
        twin = next((r for r in records if r.run_id == record.run_id), None)
        if twin is not None:
            raise ValueError(
                f"runs: {folder} is the same run as {twin.folder} (run_id {record.run_id}; a copy "
                "of its folder?): each run is counted once; pass one of them"
            )
        records.append(record)
    settings = [record.settings() for record in records]
    # Compared within a method: its runs at other densities, or another method's, differ anyway.
    varying: dict[str, list[str]] = {}
    for method in {record.method for record in records}:
        same = [s for s, r in zip(settings, records, strict=True) if r.method == method]
        names = {name for s in same for name in s}
        varying[method] = sorted(n for n in names if len({s.get(n) for s in same}) > 1)
    rows = [
        {
            "run": str(record.folder),
            "method": record.method,
            "density": record.density or 1.0,
            "settings": ", ".join(f"{n}={s.get(n, '-')}" for n in varying[record.method]),
            "seed": record.seed,
            "accuracy": record.accuracy,
            "worst_class_accuracy": record.worst_class_accuracy,
            "worst_class": record.worst_class,
            "class_accuracy_std": record.class_accuracy_std,
            "train_rows": record.train_rows,
            "epochs": record.epochs,
        }
        for record, s in zip(records, settings, strict=True)
    ]
    return pd.DataFrame(rows, columns=_COLUMNS)


_COLUMNS = [
    "run", "method", "density", "settings", "seed", "accuracy", "worst_class_accuracy",
    "worst_class", "class_accuracy_std", "train_rows", "epochs",
]  # fmt: skip


def _keys(runs: pd.DataFrame) -> list[str]:
    """What runs are grouped by: method and density, and the settings where some differ."""
    differ = "settings" in runs.columns and bool((runs["settings"].fillna("") != "").any())
    return ["method", "density", *(["settings"] if differ else [])]


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds, by method, density and (where runs differ in
    them) the other training settings: only runs that differ in nothing but their seeds are
    averaged."""
    return (
        runs.groupby(_keys(runs), sort=False)
        .agg(
            runs=("run", "count"),
            train_rows=("train_rows", "mean"),
            accuracy=("accuracy", "mean"),
            accuracy_sd=("accuracy", "std"),
            worst_class_accuracy=("worst_class_accuracy", "mean"),
            worst_class_sd=("worst_class_accuracy", "std"),
        )
        .sort_index(level="density", sort_remaining=False)
    )


def plot_runs(runs: pd.DataFrame, path: str | os.PathLike | None = None) -> Figure:
    """Average and worst-class accuracy against density: one line per method (and per setting
    where runs differ in one) with +-1 sd over seeds as error bars; training on all the data as a dashed reference line.

    Returns the ``Figure`` (built without pyplot: no global state changes); writes it to ``path``
    (PNG) too when one is given."""
    require("matplotlib", "plots", "plot_runs")
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    table = summarize(runs).reset_index()
    # One line per method and setting: runs with other settings are other lines, never merged.
    settings = table["settings"] if "settings" in table else [""] * len(table)
    table["line"] = [
        m if not s else f"{m} ({s})" for m, s in zip(table["method"], settings, strict=True)
    ]
    full = table[table["density"] >= 1.0]
    pruned = table[table["density"] < 1.0]
    fig = Figure(figsize=(13, 4.5))
    FigureCanvasAgg(fig)  # fig.canvas.draw() and savefig render with Agg, whatever the backend
    axes = fig.subplots(1, 2, sharex=True)
    methods = list(dict.fromkeys(pruned["line"]))
    # Up to 20 methods stay distinguishable: 20 colours, and markers on top.
    colours = matplotlib.colormaps["tab20"].colors
    markers = "osD^vP*Xh<>p"
    style = {
        m: (colours[(2 * i) % 20 + (2 * i) // 20], markers[i % len(markers)])
        for i, m in enumerate(methods)
    }
    for ax, column, title in (
        (axes[0], "accuracy", "average accuracy"),
        (axes[1], "worst_class_accuracy", "worst-class accuracy"),
    ):
        sd = "accuracy_sd" if column == "accuracy" else "worst_class_sd"
        for method, group in pruned.groupby("line", sort=False):
            group = group.sort_values("density")
            colour, marker = style[method]
            ax.errorbar(
                group["density"],
                group[column],
                yerr=group[sd].fillna(0.0),
                marker=marker,
                color=colour,
                capsize=3,
                label=method,
            )
        for _, row in full.iterrows():  # all the data: a reference line, not a point at d = 1
            ax.axhline(
                row[column],
                color="black",
                linestyle="--",
                linewidth=1,
                label=f"{row['line']} (d = 1)",
            )
        ax.set_title(title)
        ax.set_xlabel("density (fraction of training data kept)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy")
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
