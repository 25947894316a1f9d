"""Saved subsets: complete or absent, and saying how they were made."""

import json

import datasets
import numpy as np
import pytest

from hf_drop import DRoPFilter
from hf_drop.data.sources import digits
from hf_drop.evaluation.plots import plot_kept_fraction
from hf_drop.io.outputs import OUTPUT_MARKER, atomic_output
from hf_drop.pruning.artifacts import save_subset

ERRORS = [0.1, 0.02, 0.3, 0.2]


def test_save_subset_round_trips_with_its_provenance(dataset, tmp_path):
    drop = DRoPFilter(0.5, class_errors=ERRORS, seed=3).fit(dataset)
    folder = save_subset(drop.apply(dataset), tmp_path / "subset", drop)
    loaded = datasets.load_from_disk(str(folder))
    assert loaded["label"][:] == drop.apply(dataset)["label"][:]
    record = json.loads((folder / "pruning.json").read_text())
    assert record["method"] == "Random+DRoP(saturating, floor 0.5)"
    assert record["rules"]["quota"] == "drop(mode=saturating, strength=1.0, floor=0.5, shrink=true)"
    assert record["params"]["seed"] == 3 and record["params"]["class_errors"] == ERRORS
    assert record["quotas"] == drop.quotas_.tolist() and record["num_kept"] == 100
    assert record["source"]["label_hash"] == drop.label_hash_
    assert set(record["versions"]) >= {"hf_drop", "datasets", "numpy"}
    assert (folder / "pruning_report.csv").read_text().startswith("class,name,size,kept")


def _previous_subset(target):
    """A folder as a previous save_subset left it: its marker and one file."""
    with atomic_output(target, "subset") as tmp:
        (tmp / "old.txt").write_text("previous")


def test_a_failed_save_leaves_nothing_and_keeps_the_previous_folder(tmp_path):
    target = tmp_path / "out"
    _previous_subset(target)
    with pytest.raises(RuntimeError), atomic_output(target, "subset", overwrite=True) as tmp:
        (tmp / "half.txt").write_text("half-written")
        raise RuntimeError("killed mid-way")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert sorted(p.name for p in target.iterdir()) == [OUTPUT_MARKER, "old.txt"]


def test_a_successful_save_replaces_the_previous_folder_only_when_asked(tmp_path):
    target = tmp_path / "out"
    _previous_subset(target)
    with pytest.raises(ValueError, match="holds a previous hf-drop subset"):
        with atomic_output(target, "subset") as tmp:
            pass
    with atomic_output(target, "subset", overwrite=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert sorted(p.name for p in target.iterdir()) == [OUTPUT_MARKER, "new.txt"]


def test_save_subset_refuses_a_subset_the_filter_did_not_make(dataset, tmp_path):
    drop = DRoPFilter(0.5, class_errors=ERRORS).fit(dataset)
    with pytest.raises(ValueError, match=r"pass drop\.apply"):
        save_subset(dataset, tmp_path / "subset", drop)
    assert not (tmp_path / "subset").exists()


@pytest.mark.parametrize(
    ("kwargs", "method"),
    [
        ({"class_errors": ERRORS}, "Random+DRoP(saturating, floor 0.5)"),
        ({"class_errors": ERRORS, "mode": "paper"}, "Random+DRoP(paper, floor 0.5)"),
        ({"class_errors": ERRORS, "quota": "drop_paper"}, "Random+DRoP(paper)"),
        ({"class_errors": ERRORS, "mode": "count", "floor": 0.0}, "Random+DRoP(count)"),
        (
            {"class_errors": ERRORS, "strength": 0.5},
            "Random+DRoP(saturating, strength 0.5, floor 0.5)",
        ),
        (
            {"class_errors": ERRORS, "class_support": [9] * 4},
            "Random+DRoP(saturating, floor 0.5, shrunk)",
        ),
        ({"class_errors": ERRORS, "within": "el2n"}, "el2n+DRoP(saturating, floor 0.5)"),
        ({"quota": "proportional"}, "Random+Proportional"),
        ({"quota": "strategy", "within": "el2n"}, "el2n"),
        ({"quota": "strategy", "strategy_scores": "el2n"}, "Random+StrategyQ(el2n)"),
        (
            {"class_errors": ERRORS, "within": "el2n", "keep": "ccs"},
            "el2n(ccs)+DRoP(saturating, floor 0.5)",
        ),
    ],
)
def test_method_names_follow_the_paper(kwargs, method):
    assert DRoPFilter(0.5, **kwargs).method == method


def test_kept_fraction_plot_is_a_png(dataset, tmp_path):
    drop = DRoPFilter(0.5, class_errors=ERRORS).fit(dataset)
    plot_kept_fraction(drop.report(), tmp_path / "kept.png")
    assert (tmp_path / "kept.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_digits_are_real_labelled_images():
    data = digits()
    assert len(data) == 1797
    assert data.features["label"].names == [str(d) for d in range(10)]
    image = data[0]["image"]
    assert image.size == (8, 8) and image.mode == "L"
    assert np.bincount(data["label"][:]).min() >= 170
    assert np.asarray(image).max() > 200, "pixels are scaled to 0..255"
