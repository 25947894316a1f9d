"""The reliability matrix's harness: a case, the workspace every case runs in (a finished
probe, a saved subset, an export and a user's own files), ``hf-drop`` as a user runs it, and
small data."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1]))

from conftest import image_dataset

ERRORS = [0.1, 0.4, 0.2, 0.3]


class CliRefusal(Exception):
    """``hf-drop`` exited with status 2 and a message (no traceback)."""


def cli(*argv: str) -> None:
    from hf_drop.cli import main

    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            main([str(a) for a in argv])
    except SystemExit as exit:
        if exit.code not in (0, None):
            raise CliRefusal(stderr.getvalue()) from None


@dataclass
class Case:
    area: str
    name: str
    action: Callable[[Workspace], object]
    refusal: type[BaseException] | None = None  # None: the action asserts the right result
    fragment: str = ""

    @property
    def outcome(self) -> str:
        if self.refusal is None:
            return "right result"
        return f"refused: {self.refusal.__name__} '{self.fragment}'"


class Workspace:
    """A folder with a finished probe, a saved subset, an export, and a user's own files."""

    def __init__(self, root: Path) -> None:
        from hf_drop.cli import main
        from hf_drop.data.sources import digits_splits
        from hf_drop.hub import export_saved

        self.root = root
        self.probe = root / "runs" / "probe"
        self.subset = root / "runs" / "subset"
        self.export = root / "runs" / "export"
        self.user = root / "mine"
        (self.user / "checkpoints" / "mine").mkdir(parents=True)
        (self.user / "notes.txt").write_text("my notes\n")
        (self.user / "checkpoints" / "mine" / "weights.bin").write_bytes(b"\x00" * 64)
        with contextlib.redirect_stdout(io.StringIO()):
            main(["probe", "--dataset", "digits", "--model", "test_resnet", "--epochs", "1",
                  "--embeddings", "--output", str(self.probe)])  # fmt: skip
            main(["prune", "--probe", str(self.probe), "--density", "0.5", "--min-per-class",
                  "2", "--output", str(self.subset)])  # fmt: skip
        export_saved(self.subset, self.export, mode="indices")
        self.train = digits_splits()["train"]
        self.counter = 0

    def new(self, name: str = "out") -> Path:
        """A path that does not exist yet, for an output."""
        self.counter += 1
        return self.root / "new" / f"{self.counter}-{name}"

    def copy_of(self, folder: Path) -> Path:
        import shutil

        target = self.new(folder.name)
        shutil.copytree(folder, target, symlinks=True)
        return target

    def snapshot(self) -> dict[str, str]:
        files = {}
        for path in sorted(self.root.rglob("*")):
            if path.is_symlink():
                files[str(path)] = "link:" + os.readlink(path)
            elif path.is_file():
                files[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        return files


# --- small data ---------------------------------------------------------------------------------


def small() -> datasets.Dataset:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), [80, 60, 40, 20])
    rng.shuffle(labels)
    return image_dataset(labels, extra={"el2n": rng.random(len(labels)).round(6)})


def fitted(**kwargs):
    from hf_drop import DRoPFilter

    data = small()
    return DRoPFilter(0.5, class_errors=ERRORS, **kwargs).fit(data), data


def drop_filter(**kwargs):
    from hf_drop import DRoPFilter

    return DRoPFilter(**({"density": 0.5, "class_errors": ERRORS} | kwargs))


def within_class_permutation(data: datasets.Dataset) -> datasets.Dataset:
    labels = np.array(data["label"][:])
    order = np.arange(len(labels))
    for k in np.unique(labels):
        rows = np.flatnonzero(labels == k)
        order[rows] = np.random.default_rng(k).permutation(rows)
    return data.select(order)


def with_ids(data: datasets.Dataset) -> datasets.Dataset:
    return data.add_column("row_id", list(range(1000, 1000 + len(data))))


def expect_rows(subset: datasets.Dataset, source: datasets.Dataset, rows) -> None:
    raw = datasets.Image(decode=False)
    got = subset.cast_column("image", raw)["image"]
    want = source.select(rows).cast_column("image", raw)["image"]
    assert [g["bytes"] for g in got] == [w["bytes"] for w in want]


def photos(ws, sizes: int = 40) -> Path:
    """An imagefolder of ``sizes`` differently sized photos (train and test), as users have."""
    import PIL.Image

    folder = ws.new("photos")
    for k in range(sizes):
        split = "test" if k % 4 == 0 else "train"
        path = folder / split / ("cat" if k % 2 else "dog") / f"{k}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        PIL.Image.fromarray(np.zeros((8 + k, 30 - k % 20), np.uint8)).save(path)
    return folder


def leaves_nothing(ws, command: str, dataset: Path, *extra: str) -> None:
    """``hf-drop COMMAND`` into a new nested output; refused, and nothing of it left behind."""
    output = ws.new("nested") / "runs" / command
    try:
        cli(command, "--dataset", dataset, *extra, "--output", output)
    finally:
        assert not output.parent.parent.exists(), "a failed run left a folder behind"


def splits_subset(ws: Workspace) -> Path:
    """A subset of digits saved with its untouched test split (prune --keep-other-splits)."""
    folder = ws.new("splits")
    cli("prune", "--dataset", "digits", "--class-errors", json.dumps([0.1] * 10), "--density",
        "0.5", "--keep-other-splits", "--output", folder)  # fmt: skip
    return folder
