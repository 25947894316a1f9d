"""Pictures: kept fraction per class (hf_drop.evaluation.plots) and accuracy against density (hf_drop.evaluation.report)."""

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from hf_drop.evaluation.plots import plot_kept_fraction
from hf_drop.evaluation.report import plot_runs

FASHION = ["T - shirt / top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
           "Sneaker", "Bag", "Ankle boot"]  # fmt: skip


def report(names) -> pd.DataFrame:
    """A ``DRoPFilter.report()``-like table: one row per class."""
    n = len(names)
    return pd.DataFrame(
        {"name": names, "kept_fraction": np.linspace(0.1, 1.0, n), "error": np.linspace(0, 0.5, n)}
    )


def runs() -> pd.DataFrame:
    """A ``load_runs()``-like table: two methods at two densities, two seeds, and full data."""
    rows = [
        {"run": f"{m}-{d}-{s}", "method": m, "density": d, "seed": s, "train_rows": 100 * d,
         "accuracy": 0.9 - 0.1 * (1 - d) + 0.01 * s, "worst_class_accuracy": 0.7 + 0.01 * s}
        for m in ("Random", "Random+DRoP") for d in (0.3, 0.5) for s in (0, 1)
    ]  # fmt: skip
    rows.append({"run": "full", "method": "Full data", "density": 1.0, "seed": 0,
                 "train_rows": 100, "accuracy": 0.95, "worst_class_accuracy": 0.8})  # fmt: skip
    return pd.DataFrame(rows)


def class_labels(fig: Figure, names) -> list:
    """The drawn tick labels of ``fig`` that name a class."""
    fig.canvas.draw()
    (ax,) = fig.axes
    labels = [*ax.get_xticklabels(), *ax.get_yticklabels()]
    return [label for label in labels if label.get_visible() and label.get_text() in set(names)]


def overlaps(labels) -> list[tuple[str, str]]:
    """The pairs of ``labels`` whose boxes on the canvas overlap."""
    boxes = [(label.get_text(), label.get_window_extent()) for label in labels]
    return [
        (a, b)
        for i, (a, box) in enumerate(boxes)
        for b, other in boxes[i + 1 :]
        if box.overlaps(other)
    ]


def test_kept_fraction_returns_a_figure_and_writes_only_when_given_a_path(tmp_path):
    fig = plot_kept_fraction(report(FASHION))
    assert isinstance(fig, Figure) and list(tmp_path.iterdir()) == []
    plot_kept_fraction(report(FASHION), tmp_path / "kept.png", title="DRoP")
    assert (tmp_path / "kept.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ten_class_names_are_all_shown_without_overlapping():
    fig = plot_kept_fraction(report(FASHION))
    labels = class_labels(fig, FASHION)
    assert [label.get_text() for label in labels] == FASHION
    assert overlaps(labels) == []


def test_a_hundred_classes_render_with_readable_names(tmp_path):
    names = [f"class_{i:03d}" for i in range(100)]
    fig = plot_kept_fraction(report(names), tmp_path / "kept.png")
    labels = class_labels(fig, names)
    assert len(labels) <= 40 or overlaps(labels) == []
    assert min(label.get_fontsize() for label in labels) >= 7
    assert (tmp_path / "kept.png").stat().st_size > 0


def test_plot_runs_returns_a_figure_and_writes_only_when_given_a_path(tmp_path):
    fig = plot_runs(runs())
    assert isinstance(fig, Figure) and len(fig.axes) == 2 and list(tmp_path.iterdir()) == []
    plot_runs(runs(), tmp_path / "accuracy.png")
    assert (tmp_path / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "plot",
    [lambda path: plot_kept_fraction(report(FASHION), path), lambda path: plot_runs(runs(), path)],
)
def test_plotting_leaves_matplotlibs_backend_alone(plot, tmp_path, monkeypatch):
    monkeypatch.setitem(matplotlib.rcParams, "backend", "svg")  # not Agg, and needs no display
    plot(tmp_path / "figure.png")
    assert matplotlib.get_backend() == "svg"
    assert (tmp_path / "figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
