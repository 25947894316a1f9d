"""A user's files are sacred (hf_drop.io.outputs): specification, for every writer of hf-drop.

No command or function removes or replaces anything it did not create. Every writer is held to
the same cases: an existing non-empty folder that is not its own output is refused and left byte
for byte as it was; a previous output of the same kind is replaced only when asked; an output
never is, contains or lies inside what is read; a symlinked output is written through; another
kind of hf-drop output is refused even with overwrite; an unwritable output is a clear error.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import shutil
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pytest
from conftest import image_dataset

import hf_drop.io.outputs
import hf_drop.probe.run
from hf_drop import DRoPFilter
from hf_drop.cli import main
from hf_drop.data.sources import _FASHION_FILES, fashion_mnist
from hf_drop.hub import export, export_saved, export_scores
from hf_drop.io.outputs import (
    OUTPUT_MARKER,
    OutputError,
    atomic_output,
    claim,
    output_kind,
    prepare_output,
    read_marker,
    start_output,
)
from hf_drop.probe import ProbeConfig, ProbeResult, run_probe
from hf_drop.pruning.artifacts import save_subset
from hf_drop.train import TrainConfig, train_and_evaluate

# One epoch on 50 tiny images: the probe learns little, and says so; that is not under test here.
pytestmark = pytest.mark.filterwarnings(r"ignore:class\(es\) .* validation error")

PROBE = ProbeConfig(model="test_resnet", epochs=1, batch_size=64)
TRAIN = TrainConfig(model="test_resnet", epochs=1, batch_size=64)


# --- what every test compares: a folder tree, bytes included ------------------------------------


def tree(root: Path) -> dict[str, Any]:
    """Every entry under ``root`` (symlinks not followed): file bytes, folders, link targets."""
    found: dict[str, Any] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            key = str(path.relative_to(root))
            if path.is_symlink():
                found[key] = ("link", os.readlink(path))
            elif path.is_dir():
                found[key] = ("dir",)
            else:
                found[key] = ("file", path.read_bytes())
    return found


def user_folder(folder: Path) -> Path:
    """A folder of the user's own: notes, data, and a checkpoint of their own model."""
    (folder / "checkpoints" / "mine").mkdir(parents=True)
    (folder / "checkpoints" / "mine" / "model.pt").write_bytes(b"\x00weights\xff")
    (folder / "scores").mkdir()
    (folder / "scores" / "el2n.npy").write_bytes(b"my scores")
    (folder / "notes.md").write_text("my notes\n")
    return folder


def previous_output(folder: Path, kind: str) -> Path:
    """A folder as an earlier hf-drop output of ``kind`` left it, plus a stale file of its own."""
    with atomic_output(folder, kind) as tmp:
        (tmp / "stale.txt").write_text("from an earlier run")
    return folder


# --- the inputs: a saved dataset, a probe of it, a subset of it -----------------------------------


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    labels = np.repeat(np.arange(4), [20, 15, 10, 5])
    data_dir = root / "data"
    datasets.DatasetDict(
        {"train": image_dataset(labels), "test": image_dataset(labels)}
    ).save_to_disk(str(data_dir))
    data = datasets.load_from_disk(str(data_dir))  # memory-mapped: its files are an input
    probe_dir = root / "probe"
    run_probe(data["train"], data["test"], PROBE, probe_dir, source={"name": str(data_dir)})
    drop = DRoPFilter(0.5, quota="proportional").fit(data["train"])
    subset = drop.apply(data["train"])
    subset_dir = save_subset(subset, root / "subset", drop)
    return types.SimpleNamespace(
        root=root,
        data_dir=data_dir,
        data=data,
        probe_dir=probe_dir,
        drop=drop,
        subset=subset,
        subset_dir=subset_dir,
    )


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No token: ``hf-drop push`` exports, then stops with a clear message."""
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)


def cli(*args: str) -> None:
    """``hf-drop ARGS``; a refusal (exit 2) becomes a ValueError with the message printed.
    The push commands end, offline, with "no Hugging Face token" once the export is written."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as exit_info:
            if exit_info.code and "no Hugging Face token" not in err.getvalue():
                raise ValueError(err.getvalue()) from None


# --- every writer ---------------------------------------------------------------------------------


@dataclass
class Writer:
    name: str
    kind: str
    product: str  # a file every complete output of this writer holds
    source: str  # the attribute of env that it reads (an input the output may not overlap)
    write: Any  # (env, folder, overwrite) -> None
    overwrites: bool = True  # takes overwrite (the probe resumes instead)
    slow: bool = False  # trains for real in the success cases: covered by its library function

    def __repr__(self) -> str:
        return self.name


def _source(env, writer: Writer) -> Path:
    path = getattr(env, writer.source)
    # The library functions read the split's Arrow folder; the commands name the dataset folder.
    cli = writer.name.startswith("hf-drop")
    return path / "train" if writer.source == "data_dir" and not cli else path


WRITERS = [
    Writer(
        "save_subset",
        "subset",
        "pruning.json",
        "data_dir",
        lambda env, out, ow: save_subset(env.subset, out, env.drop, overwrite=ow),
    ),
    Writer(
        "hub.export",
        "export",
        "README.md",
        "data_dir",
        lambda env, out, ow: export(
            env.subset, out, env.drop.provenance(), kept_indices=env.drop.indices_, overwrite=ow
        ),
    ),
    Writer(
        "hub.export_scores",
        "scores-export",
        "README.md",
        "probe_dir",
        lambda env, out, ow: export_scores(env.probe_dir, out, overwrite=ow),
    ),
    Writer(
        "hub.export_saved",
        "export",
        "README.md",
        "subset_dir",
        lambda env, out, ow: export_saved(env.subset_dir, out, overwrite=ow),
    ),
    Writer(
        "run_probe",
        "probe",
        "probe_config.json",
        "data_dir",
        lambda env, out, ow: run_probe(env.data["train"], env.data["test"], PROBE, out),
        overwrites=False,
    ),
    Writer(
        "train_and_evaluate",
        "train",
        "metrics.json",
        "data_dir",
        lambda env, out, ow: train_and_evaluate(
            env.data["train"], env.data["test"], TRAIN, out, overwrite=ow
        ),
    ),
    Writer(
        "hf-drop prune",
        "subset",
        "pruning.json",
        "probe_dir",
        lambda env, out, ow: cli(
            *"prune --density 0.5 --quota proportional --probe".split(),
            env.probe_dir,
            "--output",
            out,
            *(["--overwrite"] if ow else []),
        ),
    ),
    Writer(
        "hf-drop push",
        "export",
        "README.md",
        "subset_dir",
        lambda env, out, ow: cli(
            "push",
            env.subset_dir,
            *"--repo-id someone/x --export-dir".split(),
            out,
            *(["--overwrite"] if ow else []),
        ),
    ),
    Writer(
        "hf-drop train",
        "train",
        "metrics.json",
        "data_dir",
        lambda env, out, ow: cli(
            "train",
            "--dataset",
            env.data_dir,
            "--eval-dataset",
            env.data_dir,
            "--output",
            out,
            *"--model test_resnet --epochs 1 --batch-size 64".split(),
            *(["--overwrite"] if ow else []),
        ),
        slow=True,
    ),
    Writer(
        "hf-drop probe",
        "probe",
        "probe_config.json",
        "data_dir",
        lambda env, out, ow: cli(
            "probe",
            "--dataset",
            env.data_dir,
            "--output",
            out,
            *"--val-split test --model test_resnet --epochs 1 --batch-size 64".split(),
        ),
        overwrites=False,
        slow=True,
    ),
]
FAST = [w for w in WRITERS if not w.slow]
OVERWRITING = [w for w in FAST if w.overwrites]


# (a) ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("writer", WRITERS, ids=repr)
@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.slow
def test_a_foreign_non_empty_folder_is_refused_and_left_byte_identical(
    env, tmp_path, writer, overwrite
):
    out = user_folder(tmp_path / "out")
    before = tree(tmp_path)
    with pytest.raises(ValueError, match=r"out is not empty and is not a previous hf-drop"):
        writer.write(env, out, overwrite)
    assert tree(tmp_path) == before


# (b) ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("writer", OVERWRITING, ids=repr)
@pytest.mark.slow
def test_a_previous_output_of_the_same_kind_is_replaced_only_with_overwrite(env, tmp_path, writer):
    out = previous_output(tmp_path / "out", writer.kind)
    before = tree(tmp_path)
    with pytest.raises(ValueError, match=r"holds a previous hf-drop .*--overwrite"):
        writer.write(env, out, False)
    assert tree(tmp_path) == before

    writer.write(env, out, True)
    assert (out / writer.product).is_file() and not (out / "stale.txt").exists()
    assert output_kind(out) == writer.kind
    assert [p.name for p in tmp_path.iterdir()] == ["out"], "no temporary folder is left"


@pytest.mark.parametrize("writer", FAST, ids=repr)
@pytest.mark.slow
def test_an_existing_empty_folder_is_used(env, tmp_path, writer):
    (tmp_path / "out").mkdir()
    writer.write(env, tmp_path / "out", False)
    assert (tmp_path / "out" / writer.product).is_file()
    assert read_marker(tmp_path / "out")["kind"] == writer.kind
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


# (c) ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("writer", WRITERS, ids=repr)
@pytest.mark.parametrize(
    ("where", "relation"),
    [("same", "is the input"), ("inside", "lies inside the input"), ("parent", "contains")],
)
@pytest.mark.slow
def test_an_output_overlapping_an_input_is_refused_with_nothing_changed(
    env, writer, where, relation
):
    source = _source(env, writer)
    out = {"same": source, "inside": source / "out", "parent": source.parent}[where]
    before = tree(env.root)
    with pytest.raises(ValueError, match=relation):
        writer.write(env, out, True)
    assert tree(env.root) == before


# (d) ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("writer", FAST, ids=repr)
@pytest.mark.parametrize("target_exists", [True, False])
@pytest.mark.slow
def test_a_symlinked_output_is_written_through_and_stays_a_link(
    env, tmp_path, writer, target_exists
):
    target = tmp_path / "elsewhere" / "real"
    if target_exists:
        target.mkdir(parents=True)
    else:
        target.parent.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target, target_is_directory=True)
    writer.write(env, link, False)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert (target / writer.product).is_file() and output_kind(target) == writer.kind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "link"]
    assert [p.name for p in target.parent.iterdir()] == ["real"], "no temporary folder is left"


# (e) ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("writer", WRITERS, ids=repr)
@pytest.mark.slow
def test_another_kind_of_hf_drop_output_is_refused_even_with_overwrite(env, tmp_path, writer):
    other = "scores-export" if writer.kind != "scores-export" else "subset"
    out = previous_output(tmp_path / "out", other)
    before = tree(tmp_path)
    with pytest.raises(ValueError, match=r"holds a previous hf-drop .*, not a"):
        writer.write(env, out, True)
    assert tree(tmp_path) == before


# (f) ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("writer", WRITERS, ids=repr)
@pytest.mark.slow
def test_an_output_under_a_file_is_a_clear_error(env, tmp_path, writer):
    (tmp_path / "a-file").write_text("not a folder")
    before = tree(tmp_path)
    with pytest.raises(ValueError, match=r"a-file/out cannot be created \(.*\): nothing was"):
        writer.write(env, tmp_path / "a-file" / "out", True)
    assert tree(tmp_path) == before


@pytest.mark.parametrize("writer", WRITERS, ids=repr)
@pytest.mark.slow
def test_an_unwritable_parent_is_a_clear_error(env, tmp_path, writer, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path))

    # The filesystem says no (a read-only mount; chmod does not stop root, who runs the tests).
    monkeypatch.setattr(hf_drop.io.outputs, "_new_partial", refuse)
    with pytest.raises(ValueError, match=r"out cannot be created \(Permission denied"):
        writer.write(env, tmp_path / "out", True)
    assert list(tmp_path.iterdir()) == []


# --- the probe: its folder, its checkpoints, its score table --------------------------------------


def _no_training(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("a model was built: the refusal came after training started")

    monkeypatch.setattr(hf_drop.probe.run, "build_model", fail)


@pytest.mark.slow
def test_the_probe_refuses_a_foreign_checkpoints_folder_before_any_training(
    env, tmp_path, monkeypatch
):
    out = tmp_path / "o"
    (out / "checkpoints" / "mine").mkdir(parents=True)
    (out / "checkpoints" / "mine" / "weights.bin").write_bytes(b"mine")
    before = tree(tmp_path)
    _no_training(monkeypatch)
    with pytest.raises(ValueError, match=r"o is not empty and is not a previous hf-drop probe"):
        run_probe(env.data["train"], env.data["test"], PROBE, out)
    assert tree(tmp_path) == before


@pytest.mark.slow
def test_a_read_only_probe_output_fails_before_the_first_epoch(env, tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("")
    _no_training(monkeypatch)
    with pytest.raises(ValueError, match=r"a-file/run cannot be created"):
        run_probe(env.data["train"], env.data["test"], PROBE, tmp_path / "a-file" / "run")


@pytest.mark.slow
def test_the_probe_removes_only_its_own_checkpoints(env, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / OUTPUT_MARKER).write_text(json.dumps({"kind": "probe"}))  # a run of this folder
    (out / "checkpoints" / "mine").mkdir(parents=True)
    (out / "checkpoints" / "mine" / "weights.bin").write_bytes(b"mine")
    (out / "checkpoints" / "init000-notes.txt").write_text("mine too")
    (out / "checkpoints" / "init000-epoch0000").mkdir()  # a half-written one of its own
    theirs = {k: v for k, v in tree(out / "checkpoints").items() if "epoch0000" not in k}
    config = ProbeConfig(model="test_resnet", epochs=2, batch_size=64)  # one rotation
    run_probe(env.data["train"], env.data["test"], config, out)
    assert tree(out / "checkpoints") == theirs, "the user's entries stay; the probe's go"
    assert ProbeResult.load(out).scores.num_rows == len(env.data["train"])


@pytest.mark.slow
def test_the_probe_never_replaces_a_score_table_it_did_not_write(env, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / OUTPUT_MARKER).write_text(json.dumps({"kind": "probe"}))
    (out / "scores").mkdir()
    (out / "scores" / "mine.csv").write_text("index,score\n")
    before = tree(out / "scores")
    with pytest.raises(ValueError, match=r"scores is not empty and is not a previous"):
        run_probe(env.data["train"], env.data["test"], PROBE, out)
    assert tree(out / "scores") == before
    assert not (out / "probe_config.json").exists()


@pytest.mark.slow
def test_a_finished_probe_of_an_older_version_is_read_not_written(env, tmp_path):
    out = tmp_path / "old"
    shutil.copytree(env.probe_dir, out)
    (out / OUTPUT_MARKER).unlink()
    before = tree(tmp_path)
    result = run_probe(env.data["train"], env.data["test"], PROBE, out)
    assert result.scores.num_rows == len(env.data["train"])
    assert tree(tmp_path) == before


# --- hf-drop push: subset, export or probe folder ---------------------------------------------------


@pytest.mark.slow
def test_push_refuses_to_export_a_subset_onto_itself(env):
    before = tree(env.root)
    with pytest.raises(ValueError, match="is the input"):
        cli("push", env.subset_dir, "--repo-id", "someone/x", "--export-dir", env.subset_dir)
    assert tree(env.root) == before


@pytest.mark.slow
def test_push_keeps_a_previous_default_export_unless_told(env, tmp_path):
    subset = tmp_path / "sub"
    shutil.copytree(env.subset_dir, subset)
    cli("push", subset, "--repo-id", "someone/x")
    first = tree(tmp_path / "sub-hub")
    with pytest.raises(ValueError, match=r"sub-hub holds a previous hf-drop Hub export"):
        cli("push", subset, "--repo-id", "someone/x", "--indices-only")
    assert tree(tmp_path / "sub-hub") == first
    cli("push", subset, "--repo-id", "someone/x", "--indices-only", "--overwrite")
    assert datasets.load_dataset(str(tmp_path / "sub-hub"), split="train").column_names == [
        "index",
        "label",
    ]


@pytest.mark.slow
def test_the_retry_command_push_prints_works_on_the_export_folder(env, tmp_path, capsys):
    subset = tmp_path / "sub"
    shutil.copytree(env.subset_dir, subset)
    with pytest.raises(SystemExit):
        main(["push", str(subset), "--repo-id", "someone/x", "--private"])
    err = capsys.readouterr().err
    command = err.split("push it later with `")[1].split("`")[0]
    assert command == f"hf-drop push {tmp_path / 'sub-hub'} --repo-id someone/x --private"
    before = tree(tmp_path)
    with pytest.raises(SystemExit):
        main(shlex.split(command)[1:])
    err = capsys.readouterr().err
    assert "no Hugging Face token" in err and "exported" not in err, "uploaded as it is"
    assert tree(tmp_path) == before


@pytest.mark.slow
def test_push_of_a_probe_folder_exports_its_scores(env, tmp_path):
    probe = tmp_path / "probe"
    shutil.copytree(env.probe_dir, probe)
    cli("push", probe, "--repo-id", "someone/scores")
    assert output_kind(tmp_path / "probe-hub") == "scores-export"
    scores = datasets.load_dataset(str(tmp_path / "probe-hub"), split="train")
    assert len(scores) == len(env.data["train"])


@pytest.mark.slow
def test_push_uploads_the_export_without_hf_drops_marker(env, tmp_path, monkeypatch):
    calls = {}

    class Api:
        def __init__(self, token=None):
            pass

        def create_repo(self, *args, **kwargs):
            pass

        def upload_folder(self, **kwargs):
            calls.update(kwargs)
            return types.SimpleNamespace(repo_url="https://huggingface.co/datasets/someone/x")

    monkeypatch.setattr("huggingface_hub.HfApi", Api)
    monkeypatch.setattr("huggingface_hub.get_token", lambda: "hf_token")
    folder = export_saved(env.subset_dir, tmp_path / "hub")
    cli("push", folder, "--repo-id", "someone/x")
    assert calls["folder_path"] == str(folder)
    assert OUTPUT_MARKER in calls["ignore_patterns"]


def test_push_names_what_it_accepts(tmp_path):
    user_folder(tmp_path / "mine")
    with pytest.raises(ValueError, match=r"not a subset folder .* nor an hf-drop export"):
        cli("push", tmp_path / "mine", "--repo-id", "someone/x")
    assert not (tmp_path / "mine-hub").exists()


# --- hf-drop report: one file --------------------------------------------------------------------


def test_report_never_replaces_a_file_unless_told(tmp_path):
    (tmp_path / "report.png").write_bytes(b"my picture")
    with pytest.raises(ValueError, match=r"report\.png exists: .*--overwrite"):
        cli("report", tmp_path / "run", "--output", tmp_path / "report.png")
    with pytest.raises(ValueError, match="lies inside the input"):
        cli("report", tmp_path / "run", "--output", tmp_path / "run" / "report.png")
    assert tree(tmp_path) == {"report.png": ("file", b"my picture")}


# --- the dataset cache, and the module's own contract ----------------------------------------------


def _small_fashion_root(root: Path) -> Path:
    import gzip
    import struct

    root.mkdir()
    for (images, labels), n in zip(_FASHION_FILES.values(), [20, 10], strict=True):
        for name, array in ((images, np.zeros((n, 28, 28))), (labels, np.arange(n) % 10)):
            header = struct.pack(">HBB", 0, 8, array.ndim)
            header += struct.pack(f">{array.ndim}I", *array.shape)
            with gzip.open(root / name, "wb") as f:
                f.write(header + array.astype(np.uint8).tobytes())
    return root


def test_the_dataset_cache_never_replaces_a_foreign_folder(tmp_path):
    root = _small_fashion_root(tmp_path / "fashion")
    fashion_mnist(root=root, cache_dir=tmp_path / "cache")
    (cache,) = (tmp_path / "cache").iterdir()
    assert output_kind(cache) == "cache"
    shutil.rmtree(cache)
    user_folder(cache)
    before = tree(tmp_path)
    with pytest.raises(ValueError, match="is not empty and is not a previous hf-drop dataset"):
        fashion_mnist(root=root, cache_dir=tmp_path / "cache")
    assert tree(tmp_path) == before


def test_the_marker_names_the_kind_and_the_version(tmp_path):
    from hf_drop import __version__

    with atomic_output(tmp_path / "out", "subset") as tmp:
        assert read_marker(tmp) == {
            "kind": "subset",
            "format_version": 1,
            "hf_drop_version": __version__,
            "files": [],
        }
        (tmp / "data").mkdir()
        (tmp / "data" / "part.parquet").write_bytes(b"rows")
    assert read_marker(tmp_path / "out")["files"] == ["data/", "data/part.parquet"]
    with pytest.raises(ValueError, match="unknown output kind"):
        prepare_output(tmp_path / "x", "nope")


def test_an_output_written_in_place_is_replaced_only_while_it_holds_what_was_claimed(tmp_path):
    out = start_output(tmp_path / "probe", "probe")
    (out / "scores").mkdir()
    (out / "scores" / "data-00000-of-00001.arrow").write_bytes(b"rows")
    claim(out, "scores", "class_metrics.json")  # a file is claimed before it is written
    (out / "class_metrics.json").write_text("{}")
    checkpoint = out / "checkpoints" / "init000-epoch0001"  # written and removed as it goes
    checkpoint.mkdir(parents=True)
    (checkpoint / "model.safetensors").write_bytes(b"weights")
    prepare_output(out, "probe", overwrite=True)
    (out / "notes.md").write_text("mine")
    before = tree(tmp_path)
    with pytest.raises(OutputError, match=r"holds notes\.md, which hf-drop did not write"):
        prepare_output(out, "probe", overwrite=True)
    assert tree(tmp_path) == before


def test_a_marker_without_a_list_is_trusted_only_for_the_files_of_its_kind(tmp_path):
    out = tmp_path / "subset"
    out.mkdir()
    (out / OUTPUT_MARKER).write_text(json.dumps({"kind": "subset"}))  # an older hf-drop's
    for name in ("data-00000-of-00001.arrow", "state.json", "pruning.json"):
        (out / name).write_text("x")
    prepare_output(out, "subset", overwrite=True)
    (out / "model.pt").write_text("the user's")
    with pytest.raises(OutputError, match=r"model\.pt, which is not a file an hf-drop subset"):
        prepare_output(out, "subset", overwrite=True)


def test_a_failed_write_removes_only_its_temporary_folder(tmp_path):
    out = previous_output(tmp_path / "out", "export")
    before = tree(tmp_path)
    with pytest.raises(RuntimeError), atomic_output(out, "export", overwrite=True) as tmp:
        (tmp / "half.parquet").write_bytes(b"half")
        raise RuntimeError("killed mid-way")
    assert tree(tmp_path) == before


def test_a_file_where_the_folder_should_be_is_refused(tmp_path):
    (tmp_path / "out").write_text("a file")
    with pytest.raises(OutputError, match="exists and is not a folder"):
        prepare_output(tmp_path / "out", "subset", overwrite=True)
    assert (tmp_path / "out").read_text() == "a file"


def test_an_output_gets_the_permissions_of_any_new_folder(tmp_path):
    (tmp_path / "plain").mkdir()
    with atomic_output(tmp_path / "out", "export") as tmp:
        (tmp / "data").mkdir()
    mode = (tmp_path / "plain").stat().st_mode
    assert (tmp_path / "out").stat().st_mode == mode, "not private to its owner, like mkdtemp's"
