"""Pictures of what a pruning did (matplotlib, written as PNG)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

__all__ = ["plot_kept_fraction"]


def plot_kept_fraction(report: pd.DataFrame, path: str | os.PathLike, title: str = "") -> None:
    """Bar chart of the kept fraction of each class, beside its error, from ``report()``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(len(report))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(report) + 2), 3.6))
    ax.bar(x - 0.2, report["kept_fraction"], width=0.4, label="kept fraction")
    if report["error"].notna().any():
        ax.bar(x + 0.2, report["error"], width=0.4, label="class error (1 - recall)")
    ax.set_xticks(x, report["name"], rotation=45 if len(report) > 10 else 0, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("fraction")
    ax.set_title(title or "Kept fraction per class")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
