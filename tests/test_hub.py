"""Publishing: Hub-layout exports, dataset cards, indices-only subsets, upload (hf_drop.hub)."""

import json
import signal
import subprocess
import sys
import time

import datasets
import numpy as np
import pytest
from huggingface_hub import DatasetCard

import hf_drop.hub
from hf_drop import DRoPFilter
from hf_drop.cli import main
from hf_drop.hub import export, export_saved, export_scores, load_pruned, push
from hf_drop.probe import ProbeResult
from hf_drop.sources import digits_splits


@pytest.fixture(scope="module")
def pruned(tmp_path_factory):
    """A CLI probe of digits and an el2n+DRoP subset of its training split."""
    root = tmp_path_factory.mktemp("hub")
    main(["probe", "--dataset", "digits", "--model", "test_resnet", "--epochs", "1",
          "--output", str(root / "probe")])  # fmt: skip
    main(["prune", "--probe", str(root / "probe"), "--density", "0.4", "--within", "el2n",
          "--min-per-class", "3", "--output", str(root / "subset")])  # fmt: skip
    train = digits_splits()["train"]
    drop = DRoPFilter.from_probe(
        ProbeResult.load(root / "probe"), 0.4, within="el2n", min_per_class=3
    ).fit(train)
    return root, train, drop


def test_an_export_loads_back_with_the_same_rows_features_and_classes(pruned, tmp_path):
    _, train, drop = pruned
    subset = drop.apply(train)
    folder = export(subset, tmp_path / "full", drop.provenance(), kept_indices=drop.indices_)
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "data", "kept_fraction.png"]
    assert [p.name for p in (folder / "data").iterdir()] == ["train-00000-of-00001.parquet"]
    loaded = datasets.load_dataset(str(folder), split="train")
    assert loaded.features == subset.features
    assert loaded.features["label"].names == [str(d) for d in range(10)]
    raw = datasets.Image(decode=False)
    assert loaded.cast_column("image", raw).to_list() == subset.cast_column("image", raw).to_list()


def test_the_card_parses_back_with_its_drop_metadata(pruned, tmp_path):
    _, train, drop = pruned
    folder = export(
        drop.apply(train),
        tmp_path / "full",
        drop.provenance(),
        kept_indices=drop.indices_,
        license="mit",
        tags=["digits"],
    )
    card = DatasetCard.load(folder / "README.md")
    meta = card.data.to_dict()
    assert meta["license"] == "mit" and {"hf-drop", "digits"} <= set(meta["tags"])
    assert meta["configs"][0]["data_files"][0]["path"] == "data/train-*"
    assert meta["dataset_info"]["splits"][0]["num_examples"] == len(drop.indices_)
    block = meta["drop"]
    assert block["method"] == "el2n+DRoP" and block["density"] == 0.4
    assert block["kept_per_class"] == drop.quotas_.tolist()
    assert block["class_errors"] == pytest.approx(drop.class_errors_.tolist())
    assert block["source"]["label_hash"] == drop.label_hash_
    assert block["source"]["fingerprint"] == train._fingerprint
    assert block["probe"]["model"]["name"] == "test_resnet"
    assert set(block["versions"]) >= {"hf_drop", "datasets"}
    # The body says what was done and how to do it again.
    assert "| class | error | size | kept | kept fraction |" in card.text
    assert "hf-drop probe --dataset digits --model test_resnet --epochs 1" in card.text
    assert "hf-drop prune --probe" in card.text and "--within el2n" in card.text


def test_indices_only_round_trips_through_the_source(pruned, tmp_path):
    root, train, drop = pruned
    folder = export_saved(root / "subset", tmp_path / "indices", mode="indices")
    table = datasets.load_dataset(str(folder), split="train")
    assert table.column_names == ["index", "label"] and len(table) == len(drop.indices_)
    assert "image" not in table.features
    rebuilt = load_pruned(folder)  # reloads "digits" by the name its card records
    assert rebuilt["label"][:] == drop.apply(train)["label"][:]
    assert np.array_equal(np.asarray(table["index"][:]), drop.indices_)
    assert len(load_pruned(folder, source=train)) == len(drop.indices_)


def test_a_different_source_is_refused(pruned, tmp_path):
    root, train, _ = pruned
    folder = export_saved(root / "subset", tmp_path / "indices", mode="indices")
    with pytest.raises(ValueError, match="1436 rows instead of 1437"):
        load_pruned(folder, source=train.select(range(1436)))
    with pytest.raises(ValueError, match=r"label hash .* instead of"):
        load_pruned(folder, source=train.shuffle(seed=0))
    relabelled = train.map(lambda row: row)  # same labels, another fingerprint
    with pytest.raises(ValueError, match=r"fingerprint .* instead of"):
        load_pruned(folder, source=relabelled)


def test_a_failed_export_leaves_nothing_that_looks_complete(pruned, tmp_path, monkeypatch):
    _, train, drop = pruned

    def crash(*args, **kwargs):
        raise RuntimeError("killed mid-way")

    monkeypatch.setattr(hf_drop.hub, "_plot", crash)
    with pytest.raises(RuntimeError, match="killed mid-way"):
        export(drop.apply(train), tmp_path / "out", drop.provenance(), kept_indices=drop.indices_)
    assert list(tmp_path.iterdir()) == []


def test_a_killed_export_is_never_left_looking_complete(tmp_path):
    code = (
        "import sys; from hf_drop.sources import fashion_mnist; from hf_drop import DRoPFilter;"
        "from hf_drop.hub import export; train = fashion_mnist()['train'];"
        "drop = DRoPFilter(0.9, quota='proportional').fit(train);"
        "export(drop.apply(train), sys.argv[1], drop.provenance())"
    )
    target = tmp_path / "export"
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(target)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".export.*.partial/data/*")) and time.monotonic() < deadline:
        assert process.poll() is None, "the export ended before it could be killed"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not target.exists(), "a half-written export must not appear under its name"


def test_probe_scores_export_the_same_way(pruned, tmp_path):
    root, _, _ = pruned
    folder = export_scores(root / "probe", tmp_path / "scores")
    scores = datasets.load_dataset(str(folder), split="train")
    assert len(scores) == 1437 and {"index", "el2n", "forgetting", "aum"} <= set(
        scores.column_names
    )
    meta = DatasetCard.load(folder / "README.md").data.to_dict()
    assert meta["drop_probe"]["model"]["name"] == "test_resnet"
    assert len(meta["drop_probe"]["class_errors"]) == 10


def test_push_without_a_token_or_offline_says_so_and_keeps_the_folder(
    pruned, tmp_path, monkeypatch
):
    root, _, _ = pruned
    folder = export_saved(root / "subset", tmp_path / "export")
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(RuntimeError, match=r"no Hugging Face token.*export is complete in"):
        push(folder, "someone/drop-digits")
    with pytest.raises(
        RuntimeError, match=r"could not upload to someone/drop-digits.*push it later"
    ):
        push(folder, "someone/drop-digits", token="hf_not_a_real_token")  # offline in tests
    assert (folder / "README.md").exists() and list((folder / "data").iterdir())


def test_cli_push_exports_first_then_fails_clearly_offline(pruned, tmp_path, capsys, monkeypatch):
    root, _, _ = pruned
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(SystemExit) as exit_info:
        main(["push", str(root / "subset"), "--repo-id", "someone/x", "--indices-only",
              "--export-dir", str(tmp_path / "hub")])  # fmt: skip
    assert exit_info.value.code == 2
    assert "no Hugging Face token" in capsys.readouterr().err
    card = DatasetCard.load(tmp_path / "hub" / "README.md")
    assert card.data.to_dict()["drop"]["export"] == "indices"
    record = json.loads((root / "subset" / "pruning.json").read_text())
    assert card.data.to_dict()["drop"]["n_kept"] == record["n_kept"]
