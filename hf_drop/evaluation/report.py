"""Comparing trained runs: average and worst-class accuracy by pruning method and density."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["load_runs", "plot_runs", "summarize"]


def load_runs(folders: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """One row per run folder (its ``metrics.json``): method, density, seed and the accuracies."""
    rows = []
    for folder in folders:
        path = Path(folder) / "metrics.json"
        if not path.exists():
            raise FileNotFoundError(f"{folder} holds no metrics.json: is it an hf-drop train run?")
        metrics = json.loads(path.read_text())
        provenance = metrics.get("provenance") or {}
        rows.append(
            {
                "run": str(folder),
                "method": provenance.get("method", "Full data"),
                "density": metrics.get("density") or 1.0,
                "seed": (provenance.get("params") or {}).get("seed", metrics["config"]["seed"]),
                "accuracy": metrics["accuracy"],
                "worst_class_accuracy": metrics["worst_class_accuracy"],
                "worst_class": metrics["worst_class"],
                "class_accuracy_std": metrics["class_accuracy_std"],
                "train_rows": metrics["train_rows"],
                "epochs": metrics["epochs"],
            }
        )
    return pd.DataFrame(rows)


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds, by method and density."""
    return (
        runs.groupby(["method", "density"], sort=False)
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
    """Average and worst-class accuracy against density: one line per method with +-1 sd over
    seeds as error bars; training on all the data as a dashed reference line.

    Returns the ``Figure`` (built without pyplot: no global state changes); writes it to ``path``
    (PNG) too when one is given."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    table = summarize(runs).reset_index()
    full = table[table["density"] >= 1.0]
    pruned = table[table["density"] < 1.0]
    fig = Figure(figsize=(13, 4.5))
    FigureCanvasAgg(fig)  # fig.canvas.draw() and savefig render with Agg, whatever the backend
    axes = fig.subplots(1, 2, sharex=True)
    methods = list(dict.fromkeys(pruned["method"]))
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
        for method, group in pruned.groupby("method", sort=False):
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
                label=f"{row['method']} (d = 1)",
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
