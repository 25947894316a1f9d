"""Pictures of what a pruning did: matplotlib Figures, written as PNG when given a path.

They are built with the object API (``Figure`` on an Agg canvas), never pyplot: drawing one
changes no global state (not the backend, not pyplot's current figure), so the functions are safe
to call from a notebook, a GUI or a test.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..io.extras import require

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.text import Text

__all__ = ["plot_kept_fraction"]

# Above this many classes the bars lie horizontally, one class per row, so that every name stays
# readable at its full length instead of being rotated and crowded under a very wide chart.
HORIZONTAL_ABOVE = 30
# Inches per class row in the horizontal layout, and the most rows named at that pitch; beyond
# it every k-th class is named, so that a 1000-class chart stays a sane size.
_ROW_INCHES = 0.2
_MAX_NAMED_ROWS = 120


def plot_kept_fraction(
    report: pd.DataFrame, path: str | os.PathLike | None = None, title: str = ""
) -> Figure:
    """Bar chart of the kept fraction of each class, beside its error, from ``report()``.

    Returns the ``Figure``; writes it to ``path`` (PNG) too when one is given. Up to 30 classes
    stand side by side (their names turned upright if they would collide), more lie one per row.
    """
    require("matplotlib", "plots", "plot_kept_fraction")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(report)
    names = [str(name) for name in report["name"]]
    position = np.arange(n)
    horizontal = n > HORIZONTAL_ABOVE
    if horizontal:
        size = (7.0, _ROW_INCHES * min(n, _MAX_NAMED_ROWS) + 1.6)
    else:
        size = (max(6.0, 0.45 * n + 2), 3.6)
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)  # fig.canvas.draw() and savefig render with Agg, whatever the backend
    ax = fig.add_subplot()
    bars = ax.barh if horizontal else ax.bar  # (position, value, thickness) for both
    bars(position - 0.2, report["kept_fraction"], 0.4, label="kept fraction")
    if report["error"].notna().any():
        bars(position + 0.2, report["error"], 0.4, label="class error (1 - recall)")
    if horizontal:
        step = math.ceil(n / _MAX_NAMED_ROWS)
        ax.set_yticks(position[::step], names[::step])
        ax.tick_params(axis="y", labelsize=8)
        ax.set_ylim(n - 0.5, -0.5)  # the first class on top, as in the report table
        ax.set_xlim(0, 1.05)
        ax.set_xlabel("fraction")
    else:
        ax.set_xticks(position, names)
        ax.set_xlim(-0.5, n - 0.5)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("fraction")
        fig.canvas.draw()  # lay the names out as written to see whether they collide
        labels = ax.get_xticklabels()
        if _overlapping(labels):
            # Upright names, and the figure taller by the longest so the bars keep their height.
            longest = max(label.get_window_extent().width for label in labels) / fig.dpi
            ax.tick_params(axis="x", labelrotation=90)
            fig.set_figheight(size[1] + longest)
    ax.set_title(title or "Kept fraction per class")
    fig.legend(loc="outside lower center", ncols=2, frameon=False)
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def _overlapping(labels: Sequence[Text]) -> bool:
    """Whether any two of the drawn, non-empty ``labels`` overlap on the canvas."""
    boxes = [label.get_window_extent() for label in labels if label.get_text()]
    boxes.sort(key=lambda box: box.x0)
    return any(a.x1 > b.x0 for a, b in itertools.pairwise(boxes))
