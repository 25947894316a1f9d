"""Publishing: Hub-layout exports, dataset cards, indices-only subsets, upload (hf_drop.hub)."""

import json
import re
import signal
import subprocess
import sys
import time

import datasets
import numpy as np
import pytest
from huggingface_hub import DatasetCard

import hf_drop.hub.layout
import hf_drop.hub.publish
from hf_drop import DRoPFilter
from hf_drop.cli import main
from hf_drop.data.sources import digits_splits
from hf_drop.hub import export, export_saved, export_scores, load_pruned, push
from hf_drop.probe import ProbeResult


@pytest.fixture(scope="module")
def pruned(tmp_path_factory, digits_probe):
    """A CLI probe of digits and an el2n+DRoP subset of its training split."""
    root = tmp_path_factory.mktemp("hub")
    (root / "probe").symlink_to(digits_probe, target_is_directory=True)
    main(["prune", "--probe", str(root / "probe"), "--density", "0.4", "--within", "el2n",
          "--min-per-class", "3", "--output", str(root / "subset")])  # fmt: skip
    train = digits_splits()["train"]
    drop = DRoPFilter.from_probe(
        ProbeResult.load(root / "probe"), 0.4, within="el2n", min_per_class=3
    ).fit(train)
    return root, train, drop


@pytest.mark.slow
def test_an_export_loads_back_with_the_same_rows_features_and_classes(pruned, tmp_path):
    _, train, drop = pruned
    subset = drop.apply(train)
    folder = export(subset, tmp_path / "full", drop.provenance(), kept_indices=drop.indices_)
    assert sorted(p.name for p in folder.iterdir()) == [
        ".hf-drop-output.json",  # hf-drop's marker: push leaves it out of the upload
        "README.md",
        "data",
        "kept_fraction.png",
    ]
    (shard,) = [p.name for p in (folder / "data").iterdir()]
    assert re.fullmatch(r"train-00000-of-00001-[0-9a-f]{16}\.parquet", shard)
    loaded = datasets.load_dataset(str(folder), split="train")
    assert loaded.features == subset.features
    assert loaded.features["label"].names == [str(d) for d in range(10)]
    raw = datasets.Image(decode=False)
    assert loaded.cast_column("image", raw).to_list() == subset.cast_column("image", raw).to_list()


@pytest.mark.slow
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
    assert meta["configs"][0]["data_files"][0]["path"] == [
        f"data/{p.name}" for p in (folder / "data").iterdir()
    ]
    assert meta["dataset_info"]["splits"][0]["num_examples"] == len(drop.indices_)
    block = meta["drop"]
    assert block["method"] == "el2n+DRoP(saturating, floor 0.5, shrunk)"
    assert block["settings"]["density"] == 0.4 and block["settings"]["min_per_class"] == 3
    assert block["settings"]["within"] == "el2n"
    assert block["settings"]["quota"] == {
        "name": "drop", "mode": "saturating", "strength": 1.0, "floor": 0.5, "shrink": True
    }  # fmt: skip
    assert meta["source_datasets"] == ["digits"]
    assert block["quotas"] == drop.quotas_.tolist()
    assert block["class_errors"] == pytest.approx(drop.class_errors_.tolist())
    assert block["source"]["label_hash"] == drop.label_hash_
    assert block["source"]["fingerprint"] == train._fingerprint
    assert block["probe"]["model"]["name"] == "test_resnet"
    assert set(block["versions"]) >= {"hf_drop", "datasets"}
    # The body says what was done and how to do it again.
    assert "| class | error | size | kept | kept fraction |" in card.text
    assert "hf-drop probe --dataset digits --model test_resnet --epochs 1" in card.text
    assert "hf-drop prune --probe" in card.text and "--within el2n" in card.text


def test_the_card_gives_size_task_and_byte_counts_as_push_to_hub_would(dataset, tmp_path):
    drop = DRoPFilter(0.5, class_errors=[0.1, 0.2, 0.3, 0.4], seed=0).fit(dataset)
    folder = export(
        drop.apply(dataset),
        tmp_path / "full",
        drop.provenance(),
        license="mit",
        tags=["robust", "hf-drop"],
        pretty_name="Four classes, DRoP 50%",
    )
    meta = DatasetCard.load(folder / "README.md").data.to_dict()
    assert meta["size_categories"] == ["n<1K"]  # 100 rows
    assert meta["task_categories"] == ["image-classification"]  # it holds images and labels
    assert meta["license"] == "mit" and meta["pretty_name"] == "Four classes, DRoP 50%"
    assert meta["tags"] == ["hf-drop", "data-pruning", "drop", "robust"]  # each tag once
    info = meta["dataset_info"]
    (split,) = info["splits"]
    assert split == {"name": "train", "num_bytes": split["num_bytes"], "num_examples": 100}
    # num_bytes: the split's Arrow size with its images (as it loads); download_size: the parquet
    # files' bytes; dataset_size: the sum of the splits' num_bytes.
    loaded = datasets.load_dataset(str(folder), split="train")
    assert split["num_bytes"] == pytest.approx(loaded.data.nbytes, rel=0.01)
    assert split["num_bytes"] > sum(len(image["bytes"]) for image in loaded.cast_column(
        "image", datasets.Image(decode=False))["image"])  # fmt: skip
    assert info["dataset_size"] == split["num_bytes"]
    assert info["download_size"] == sum(p.stat().st_size for p in (folder / "data").iterdir())


def test_an_indices_only_card_names_no_task_it_cannot_serve_alone(dataset, tmp_path):
    drop = DRoPFilter(0.5, class_errors=[0.1, 0.2, 0.3, 0.4], seed=0).fit(dataset)
    folder = export(
        drop.apply(dataset), tmp_path / "idx", drop.provenance(), kept_indices=drop.indices_,
        mode="indices",
    )  # fmt: skip
    meta = DatasetCard.load(folder / "README.md").data.to_dict()
    assert "task_categories" not in meta and meta["size_categories"] == ["n<1K"]
    (split,) = meta["dataset_info"]["splits"]
    assert split["num_bytes"] == 100 * (8 + 8)  # two int64 columns: index and label
    assert meta["dataset_info"]["download_size"] == sum(
        p.stat().st_size for p in (folder / "data").iterdir()
    )


@pytest.mark.parametrize(
    ("rows", "category"),
    [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (9999, "1K<n<10K"), (70_000, "10K<n<100K"),
     (1_281_167, "1M<n<10M"), (10**12 - 1, "100B<n<1T"), (10**12, "n>1T")],
)  # fmt: skip
def test_size_categories_are_the_hubs_buckets(rows, category):
    assert hf_drop.hub.layout.size_category(rows) == category


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_different_source_is_refused(pruned, tmp_path):
    root, train, _ = pruned
    folder = export_saved(root / "subset", tmp_path / "indices", mode="indices")
    with pytest.raises(ValueError, match="1436 rows instead of 1437"):
        load_pruned(folder, source=train.select(range(1436)))
    with pytest.raises(ValueError, match=r"label hash .*not the dataset that was pruned"):
        load_pruned(folder, source=train.shuffle(seed=0))
    # A permutation within classes keeps the label hash; the content digest sees it.
    labels = np.array(train["label"][:])
    order = np.arange(len(train))
    for k in range(10):
        rows = np.flatnonzero(labels == k)
        order[rows] = rows[::-1]
    with pytest.raises(ValueError, match=r"other values in column\(s\) \['image'\]"):
        load_pruned(folder, source=train.select(order))
    # The same rows under another fingerprint are the same rows.
    same = train.map(lambda row: row)
    assert same._fingerprint != train._fingerprint
    assert len(load_pruned(folder, source=same)) == len(load_pruned(folder, source=train))


@pytest.mark.slow
def test_a_failed_export_leaves_nothing_that_looks_complete(pruned, tmp_path, monkeypatch):
    _, train, drop = pruned

    def crash(*args, **kwargs):
        raise RuntimeError("killed mid-way")

    monkeypatch.setattr(hf_drop.hub.publish, "plot_kept_fraction_png", crash)
    with pytest.raises(RuntimeError, match="killed mid-way"):
        export(drop.apply(train), tmp_path / "out", drop.provenance(), kept_indices=drop.indices_)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.needs_fashion_mnist
def test_a_killed_export_is_never_left_looking_complete(tmp_path):
    code = (
        "import sys; from hf_drop.data.sources import fashion_mnist; from hf_drop import DRoPFilter;"
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


@pytest.mark.slow
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
    assert meta["size_categories"] == ["1K<n<10K"]  # 1437 rows
    assert "task_categories" not in meta  # scores about a dataset, not a task's data
    (split,) = meta["dataset_info"]["splits"]
    assert split["num_examples"] == 1437
    assert meta["dataset_info"]["dataset_size"] == split["num_bytes"]
    assert meta["dataset_info"]["download_size"] == sum(
        p.stat().st_size for p in (folder / "data").iterdir()
    )


@pytest.mark.slow
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


@pytest.mark.slow
def test_cli_push_exports_first_then_fails_clearly_offline(pruned, tmp_path, capsys, monkeypatch):
    root, _, _ = pruned
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(SystemExit) as exit_info:
        main(["push", str(root / "subset"), "--repo-id", "someone/x", "--indices-only",
              "--export-dir", str(tmp_path / "hub")])  # fmt: skip
    assert exit_info.value.code == 3  # exported, not uploaded
    assert "no Hugging Face token" in capsys.readouterr().err
    card = DatasetCard.load(tmp_path / "hub" / "README.md")
    assert card.data.to_dict()["drop"]["export"] == "indices"
    record = json.loads((root / "subset" / "pruning.json").read_text())
    assert card.data.to_dict()["drop"]["num_kept"] == record["num_kept"]


def test_cli_push_puts_license_tags_and_pretty_name_on_the_card(tmp_path, capsys, monkeypatch):
    errors = json.dumps([0.1] * 10)
    main(["prune", "--dataset", "digits", "--class-errors", errors, "--density", "0.5",
          "--output", str(tmp_path / "subset")])  # fmt: skip
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(SystemExit) as exit_info:
        main(["push", str(tmp_path / "subset"), "--repo-id", "someone/x", "--license", "mit",
              "--tags", "digits", "robust", "--pretty-name", "Digits at half"])  # fmt: skip
    assert exit_info.value.code == 3  # exported, not uploaded
    err = capsys.readouterr().err
    assert f"the export is complete in {tmp_path / 'subset-hub'}; push it later with" in err
    meta = DatasetCard.load(tmp_path / "subset-hub" / "README.md").data.to_dict()
    assert meta["license"] == "mit" and meta["pretty_name"] == "Digits at half"
    assert {"hf-drop", "digits", "robust"} <= set(meta["tags"])
    assert meta["task_categories"] == ["image-classification"]
    assert meta["size_categories"] == ["n<1K"]  # half of digits' 1437 training rows
    # An existing export is uploaded as it is: its card cannot be changed on the way.
    with pytest.raises(SystemExit) as exit_info:
        main(["push", str(tmp_path / "subset-hub"), "--repo-id", "someone/x", "--license",
              "apache-2.0"])  # fmt: skip
    assert exit_info.value.code == 2 and "already an export" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_push_puts_card_options_on_a_probe_scores_card(pruned, tmp_path, capsys, monkeypatch):
    root, _, _ = pruned
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(SystemExit) as exit_info:
        main(["push", str(root / "probe"), "--repo-id", "someone/s", "--export-dir",
              str(tmp_path / "scores"), "--license", "cc-by-4.0", "--tags", "el2n",
              "--pretty-name", "Digits probe scores"])  # fmt: skip
    assert exit_info.value.code == 3 and "push it later" in capsys.readouterr().err
    meta = DatasetCard.load(tmp_path / "scores" / "README.md").data.to_dict()
    assert meta["license"] == "cc-by-4.0" and meta["pretty_name"] == "Digits probe scores"
    assert {"probe-scores", "el2n"} <= set(meta["tags"])


# --- load_pruned refuses an indices table or a card that cannot give the right rows ------------


def _with_index(folder, index):
    """``folder`` (an indices-only export) with its index column replaced, as a damaged or edited
    upload would have it; everything else (labels, card) as exported."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (shard,) = (folder / "data").glob("*.parquet")
    table = pq.read_table(shard)
    column = table.schema.get_field_index("index")
    table = table.set_column(column, "index", pa.array(np.asarray(index, dtype=np.int64)))
    pq.write_table(table, shard)
    return folder


def _with_drop(folder, **changes):
    """``folder`` with keys of its card's ``drop`` block changed (``None``: removed)."""
    card = DatasetCard.load(folder / "README.md")
    drop = dict(card.data.drop)
    for key, value in changes.items():
        drop.pop(key, None) if value is None else drop.__setitem__(key, value)
    card.data.drop = drop
    card.save(str(folder / "README.md"))
    return folder


@pytest.fixture
def indices_export(pruned, tmp_path):
    root, train, drop = pruned
    folder = export_saved(root / "subset", tmp_path / "indices", mode="indices")
    return folder, train, drop


@pytest.mark.slow
def test_a_shifted_index_column_is_refused_by_its_labels(indices_export):
    folder, train, drop = indices_export
    # The same rows, each paired with its neighbour's label: per-class counts still match, so
    # only the recorded labels can tell.
    _with_index(folder, np.roll(drop.indices_, 1))
    with pytest.raises(ValueError, match=r"labels recorded in .* differ .*shifted"):
        load_pruned(folder, source=train)


@pytest.mark.slow
def test_an_index_column_pointing_at_other_rows_is_refused(indices_export):
    folder, train, drop = indices_export
    others = np.setdiff1d(np.arange(len(train)), drop.indices_)[: len(drop.indices_)]
    _with_index(folder, others)
    with pytest.raises(ValueError, match=r"samples per class, but its card says"):
        load_pruned(folder, source=train)


@pytest.mark.slow
def test_an_all_zero_index_column_is_refused_before_the_source_is_loaded(indices_export):
    folder, _, drop = indices_export
    _with_index(folder, np.zeros(len(drop.indices_)))
    # No source= and none reloaded: the table alone is enough to refuse it.
    with pytest.raises(ValueError, match=rf"{len(drop.indices_) - 1} repeated indices"):
        load_pruned(folder)


@pytest.mark.slow
def test_out_of_range_indices_are_refused(indices_export):
    folder, train, drop = indices_export
    index = drop.indices_.copy()
    index[0], index[1] = 5000, -1
    _with_index(folder, index)
    with pytest.raises(ValueError, match=r"2 indices outside the source's 1437 rows"):
        load_pruned(folder, source=train)


@pytest.mark.slow
def test_a_card_whose_counts_disagree_with_the_index_column_is_refused(indices_export):
    folder, train, drop = indices_export
    _with_drop(folder, num_kept=len(drop.indices_) + 1)
    with pytest.raises(ValueError, match=r"indices but the card says .* rows were kept"):
        load_pruned(folder, source=train)


@pytest.mark.slow
def test_missing_card_keys_are_clear_errors_naming_the_folder(indices_export):
    folder, train, _ = indices_export
    _with_drop(folder, export=None)
    with pytest.raises(ValueError, match=rf"card of {folder} has 'export': None"):
        load_pruned(folder, source=train)
    _with_drop(folder, export="indices", quotas=None)
    with pytest.raises(ValueError, match=rf"'drop' block in the card of {folder} lacks"):
        load_pruned(folder, source=train)
    card = DatasetCard.load(folder / "README.md")
    del card.data.drop
    card.save(str(folder / "README.md"))
    with pytest.raises(ValueError, match=rf"{folder} has no 'drop' block in its card"):
        load_pruned(folder, source=train)
    (folder / "README.md").unlink()
    with pytest.raises(FileNotFoundError, match=rf"{folder} holds no README.md"):
        load_pruned(folder, source=train)


@pytest.mark.slow
def test_a_source_that_cannot_be_reloaded_says_to_pass_it(pruned, tmp_path):
    _, train, drop = pruned
    # Fitted on an in-memory dataset: the card names no source to load again.
    anonymous = DRoPFilter(0.4, class_errors=drop.class_errors_).fit(train)
    folder = export(
        anonymous.apply(train),
        tmp_path / "anonymous",
        anonymous.provenance(),
        kept_indices=anonymous.indices_,
        mode="indices",
    )
    with pytest.raises(ValueError, match=r"names no reloadable source.*pass source="):
        load_pruned(folder)
    assert len(load_pruned(folder, source=train)) == len(anonymous.indices_)


@pytest.mark.slow
def test_export_names_the_provenance_keys_it_lacks(pruned, tmp_path):
    _, train, drop = pruned
    with pytest.raises(ValueError, match=r"provenance lacks \['method', .*DRoPFilter\.provenance"):
        export(drop.apply(train), tmp_path / "out", {})
    partial = drop.provenance()
    del partial["params"]["seed"], partial["quotas"]
    with pytest.raises(ValueError, match=r"lacks \['quotas', 'params\.seed'\]"):
        export(drop.apply(train), tmp_path / "out", partial)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_damaged_files_of_a_saved_subset_are_named_by_export_saved(pruned, tmp_path):
    import shutil

    from hf_drop.io.files import DamagedFileError

    root, _, _ = pruned
    for name, damage in [
        ("pruning.json", b""),
        ("pruning.json", b'{"method": "Random+DRoP", "par'),
        ("kept_indices.parquet", b"garbage"),
        ("data-00000-of-00001.arrow", b"garbage"),
    ]:
        copy = tmp_path / f"subset-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(root / "subset", copy)
        (copy / name).write_bytes(damage)
        with pytest.raises(DamagedFileError, match=rf"{copy}.*{name}"):
            try:
                export_saved(copy, tmp_path / "out", mode="indices")
            except DamagedFileError as error:
                assert "run hf-drop prune again" in str(error)
                raise


@pytest.mark.slow
def test_exports_of_the_same_name_load_their_own_rows(pruned, tmp_path):
    """datasets caches a local folder by its name and its card's file list: the shard names
    carry a digest of their bytes, so another export of the same name is never read from the
    cache of the first."""
    _, train, _ = pruned
    loaded = []
    for seed in (0, 1):
        other = DRoPFilter(0.4, quota="proportional", seed=seed).fit(train)
        folder = export(other.apply(train), tmp_path / f"run{seed}" / "subset", other.provenance())
        loaded.append(datasets.load_dataset(str(folder), split="train")["label"][:])
        assert loaded[-1] == other.apply(train)["label"][:]
    assert loaded[0] != loaded[1]
