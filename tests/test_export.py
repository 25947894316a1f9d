"""Exports of several splits (the pruned one beside the source's others, untouched), the local
``hf-drop export``, ``hf-drop push``'s exit statuses, and the card's settings (hf_drop.hub)."""

import json
import shlex
import sys
from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from huggingface_hub import DatasetCard

from hf_drop import DRoPFilter
from hf_drop.cli import main, parse_command
from hf_drop.core import rules
from hf_drop.data.columns import content_digest
from hf_drop.data.sources import digits_splits
from hf_drop.hub import export, export_saved, load_pruned
from hf_drop.pruning.artifacts import save_subset

sys.path.insert(0, str(Path(__file__).parent))
from conftest import image_dataset, png_bytes

ERRORS = [0.1, 0.4, 0.2, 0.3]


def _split(labels, first_image: int) -> datasets.Dataset:
    """A split of distinct images (``first_image`` onwards) with an 'el2n' column."""
    labels = list(labels)
    images = [
        {"bytes": png_bytes((first_image + i) % 256), "path": None} for i in range(len(labels))
    ]
    scores = np.random.default_rng(first_image).random(len(labels)).round(6)
    return image_dataset(labels, images=images, extra={"el2n": scores})


@pytest.fixture
def splits() -> datasets.DatasetDict:
    """train (100 rows, pruned), validation (20) and test (24), as a DatasetDict."""
    return datasets.DatasetDict(
        train=_split(np.repeat(np.arange(4), [40, 30, 20, 10]), 0),
        validation=_split(np.arange(20) % 4, 120),
        test=_split(np.arange(24) % 4, 150),
    )


def _raw(split: datasets.Dataset) -> list[dict]:
    return split.cast_column("image", datasets.Image(decode=False)).to_list()


def _meta(folder: Path) -> dict:
    return DatasetCard.load(folder / "README.md").data.to_dict()


# --- a DatasetDict in, every split out ----------------------------------------------------------


@pytest.mark.parametrize("given", ["filter", "record"])
def test_a_datasetdict_export_holds_every_split_and_the_others_untouched(splits, given, tmp_path):
    drop = DRoPFilter(0.5, class_errors=ERRORS, seed=0).fit(splits["train"])
    pruned = drop.apply(splits)
    folder = export(pruned, tmp_path / "hub", drop if given == "filter" else drop.provenance())
    loaded = datasets.load_dataset(str(folder))
    assert list(loaded) == ["train", "validation", "test"]
    assert _raw(loaded["train"]) == _raw(pruned["train"]) and len(loaded["train"]) == 50
    for name in ("validation", "test"):  # the same rows, byte for byte, in the same order
        assert _raw(loaded[name]) == _raw(splits[name])
        assert content_digest(loaded[name]) == content_digest(splits[name])
    meta = _meta(folder)
    block = meta["drop"]
    assert block["split"] == "train" and block["num_kept"] == 50
    assert {n: s["num_rows"] for n, s in block["other_splits"].items()} == {
        "validation": 20,
        "test": 24,
    }
    assert block["other_splits"]["test"]["fingerprint"] == splits["test"]._fingerprint
    assert block["other_splits"]["test"]["content"] == content_digest(splits["test"])
    assert [s["name"] for s in meta["dataset_info"]["splits"]] == ["train", "validation", "test"]
    assert [f["split"] for f in meta["configs"][0]["data_files"]] == ["train", "validation", "test"]
    text = DatasetCard.load(folder / "README.md").text
    assert "Only `train` is pruned" in text and "| `test` | 24 | untouched" in text
    assert _raw(load_pruned(folder)) == _raw(pruned["train"])  # the pruned split alone


def test_the_pruned_split_is_found_by_identity_under_any_name(splits, tmp_path):
    train = splits["train"]
    drop = DRoPFilter(0.5, class_errors=ERRORS, seed=0).fit(train)
    renamed = datasets.DatasetDict(test=splits["test"], pruned=drop.apply(train))
    folder = export(renamed, tmp_path / "hub", drop.provenance())
    assert _meta(folder)["drop"]["split"] == "pruned"
    assert set(datasets.load_dataset(str(folder))) == {"test", "pruned"}
    assert len(load_pruned(folder)) == 50  # load_pruned reads the card's split


def test_a_datasetdict_without_the_pruned_rows_is_refused_naming_its_splits(splits, tmp_path):
    drop = DRoPFilter(0.5, class_errors=ERRORS, seed=0).fit(splits["train"])
    unpruned = datasets.DatasetDict(train=splits["train"], test=splits["test"])
    with pytest.raises(
        ValueError, match=r"none of its splits \['train', 'test'\] holds those rows"
    ):
        export(unpruned, tmp_path / "hub", drop.provenance())
    assert not (tmp_path / "hub").exists()


def test_an_indices_export_of_several_splits_is_refused(splits, tmp_path):
    drop = DRoPFilter(0.5, class_errors=ERRORS, seed=0).fit(splits["train"])
    with pytest.raises(
        ValueError, match=r"mode='indices'.*other splits \(\['validation', 'test'\]\)"
    ):
        export(drop.apply(splits), tmp_path / "hub", drop, mode="indices")


def test_splits_of_other_features_are_refused_naming_the_split(splits, tmp_path):
    drop = DRoPFilter(0.5, class_errors=ERRORS, seed=0).fit(splits["train"])
    pruned = drop.apply(splits)
    pruned["test"] = pruned["test"].remove_columns("el2n")
    with pytest.raises(ValueError, match=r"split 'test' has other features than split 'train'"):
        export(pruned, tmp_path / "hub", drop)


def test_a_saved_datasetdict_keeps_its_splits_and_exports_them(splits, tmp_path):
    drop = DRoPFilter(0.5, class_errors=ERRORS, seed=0).fit(splits["train"])
    save_subset(drop.apply(splits), tmp_path / "subset", drop)
    saved = datasets.load_from_disk(str(tmp_path / "subset"))
    assert list(saved) == ["train", "validation", "test"]
    assert _raw(saved["validation"]) == _raw(splits["validation"])
    record = json.loads((tmp_path / "subset" / "pruning.json").read_text())
    assert record["splits"]["pruned"] == "train"
    assert record["splits"]["others"]["validation"]["content"] == content_digest(
        splits["validation"]
    )
    folder = export_saved(tmp_path / "subset", tmp_path / "hub")
    assert list(datasets.load_dataset(str(folder))) == ["train", "validation", "test"]
    with pytest.raises(ValueError, match="no indices form"):
        export_saved(tmp_path / "subset", tmp_path / "idx", mode="indices")


def test_an_untouched_split_edited_after_saving_is_refused(splits, tmp_path):
    drop = DRoPFilter(0.5, class_errors=ERRORS, seed=0).fit(splits["train"])
    save_subset(drop.apply(splits), tmp_path / "subset", drop)
    edited = datasets.load_from_disk(str(tmp_path / "subset"))
    edited["test"] = edited["test"].select(range(10))
    edited.save_to_disk(str(tmp_path / "edited"))
    (tmp_path / "edited" / "pruning.json").write_text(
        (tmp_path / "subset" / "pruning.json").read_text()
    )
    for name in ("kept_indices.parquet", "pruning_report.csv"):
        (tmp_path / "edited" / name).write_bytes((tmp_path / "subset" / name).read_bytes())
    with pytest.raises(ValueError, match=r"split 'test' of .* is not the split that was saved"):
        export_saved(tmp_path / "edited", tmp_path / "hub")


# --- hf-drop prune --keep-other-splits, hf-drop export ------------------------------------------


def test_cli_prune_keeps_the_other_splits_untouched_and_export_publishes_them(tmp_path, capsys):
    errors = json.dumps([0.1] * 9 + [0.5])
    main(["prune", "--dataset", "digits", "--class-errors", errors, "--density", "0.5",
          "--keep-other-splits", "--output", str(tmp_path / "subset")])  # fmt: skip
    assert "beside the untouched test (360 rows)" in capsys.readouterr().out
    source = digits_splits()
    saved = datasets.load_from_disk(str(tmp_path / "subset"))
    assert content_digest(saved["test"]) == content_digest(source["test"])
    assert _raw(saved["test"]) == _raw(source["test"])
    record = json.loads((tmp_path / "subset" / "pruning.json").read_text())
    assert record["splits"]["others"]["test"]["fingerprint"] == source["test"]._fingerprint
    main(["export", str(tmp_path / "subset")])
    assert "upload it with: hf-drop push" in capsys.readouterr().out
    folder = tmp_path / "subset-hub"
    loaded = datasets.load_dataset(str(folder))
    assert len(loaded["test"]) == 360 and len(loaded["train"]) == len(saved["train"])
    assert loaded["test"]["label"][:] == source["test"]["label"][:]
    meta = _meta(folder)
    assert meta["source_datasets"] == ["digits"]
    # The card names the source's split as it was, not the copy saved on the way.
    assert meta["drop"]["other_splits"]["test"]["fingerprint"] == source["test"]._fingerprint
    (command,) = meta["drop"]["reproduce"]
    assert "--keep-other-splits" in command  # the command makes the same folder again


def test_cli_prune_keep_other_splits_refuses_a_slice(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["prune", "--dataset", "digits", "--class-errors", json.dumps([0.1] * 10),
              "--density", "0.5", "--split", "train[:500]", "--keep-other-splits",
              "--output", str(tmp_path / "subset")])  # fmt: skip
    assert exit_info.value.code == 2 and not (tmp_path / "subset").exists()


def test_cli_export_writes_the_folder_and_uploads_nothing(splits, tmp_path, monkeypatch, capsys):
    def no_upload(*args, **kwargs):
        raise AssertionError("hf-drop export uploaded")

    monkeypatch.setattr("huggingface_hub.HfApi.upload_folder", no_upload)
    monkeypatch.setattr("huggingface_hub.HfApi.create_repo", no_upload)
    drop = DRoPFilter(0.5, class_errors=ERRORS, seed=0).fit(splits["train"])
    save_subset(drop.apply(splits["train"]), tmp_path / "subset", drop)
    main(["export", str(tmp_path / "subset"), "--output", str(tmp_path / "out"), "--license",
          "mit", "--tags", "robust"])  # fmt: skip
    meta = _meta(tmp_path / "out")
    assert meta["license"] == "mit" and "robust" in meta["tags"]
    assert len(datasets.load_dataset(str(tmp_path / "out"), split="train")) == 50
    # An export is not exported again (push uploads it as it is); nothing is written.
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(tmp_path / "out"), "--output", str(tmp_path / "again")])
    assert exit_info.value.code == 2 and "already an export" in capsys.readouterr().err
    assert not (tmp_path / "again").exists()


# --- hf-drop push: 2 nothing exported, 3 exported but not uploaded ------------------------------


@pytest.fixture
def subset(splits, tmp_path) -> Path:
    drop = DRoPFilter(0.5, class_errors=ERRORS, seed=0).fit(splits["train"])
    return save_subset(drop.apply(splits), tmp_path / "subset", drop)


def test_push_exits_3_when_the_export_is_written_and_the_upload_fails(
    subset, tmp_path, monkeypatch, capsys
):
    def refused(*args, **kwargs):
        raise ConnectionError("the Hub could not be reached")

    monkeypatch.setattr("huggingface_hub.get_token", lambda: "hf_token_for_the_test")
    monkeypatch.setattr("huggingface_hub.HfApi.create_repo", lambda *a, **k: None)
    monkeypatch.setattr("huggingface_hub.HfApi.upload_folder", refused)
    with pytest.raises(SystemExit) as exit_info:
        main(["push", str(subset), "--repo-id", "someone/x", "--export-dir", str(tmp_path / "e")])
    assert exit_info.value.code == 3
    err = capsys.readouterr().err
    assert "could not upload to someone/x" in err and "the Hub could not be reached" in err
    assert f"the export is complete in {tmp_path / 'e'}" in err
    assert f"hf-drop push {tmp_path / 'e'} --repo-id someone/x" in err
    assert f"hf upload someone/x {tmp_path / 'e'} --repo-type dataset" in err
    assert len(datasets.load_dataset(str(tmp_path / "e"))["test"]) == 24  # complete
    # The retry the message gives uploads the export as it is.
    uploaded = []
    monkeypatch.setattr(
        "huggingface_hub.HfApi.upload_folder", lambda self, **kw: uploaded.append(kw)
    )
    main(["push", str(tmp_path / "e"), "--repo-id", "someone/x"])
    assert uploaded[0]["folder_path"] == str(tmp_path / "e")
    assert "uploaded to https://huggingface.co/datasets/someone/x" in capsys.readouterr().out


def test_push_exits_3_without_a_token_after_the_export(subset, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(SystemExit) as exit_info:
        main(["push", str(subset), "--repo-id", "someone/x"])
    assert exit_info.value.code == 3 and "no Hugging Face token" in capsys.readouterr().err
    assert (tmp_path / "subset-hub" / "README.md").is_file()


def test_push_exits_2_when_nothing_could_be_exported(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("huggingface_hub.get_token", lambda: "hf_token_for_the_test")
    (tmp_path / "mine").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(["push", str(tmp_path / "mine"), "--repo-id", "someone/x"])
    assert exit_info.value.code == 2 and "is not a subset folder" in capsys.readouterr().err
    assert not (tmp_path / "mine-hub").exists()


# --- the card's settings: resolved, in one place, for every rule ---------------------------------


def _rule_cases() -> list[tuple[str, str | None]]:
    """Every registered quota rule with the default keep, and every keep rule under drop, each
    by name and with a setting off its default where it has one."""
    cases: list[tuple[str, str | None]] = [(name, None) for name in rules.QUOTA_RULES]
    cases += [("drop(mode=count, floor=0.2)", None), ("drop", "ccs(beta=0.2, strata=5)")]
    cases += [("drop", name) for name in rules.KEEP_RULES]
    return cases


def _filter_for(quota: str, keep: str | None, data: datasets.Dataset) -> DRoPFilter:
    rule = rules.quota_rule(quota)
    keep_rule = None if keep is None else rules.keep_rule(keep)
    within = "random"
    if keep_rule is not None:
        within = "embedding" if keep_rule.ndim == 2 else "el2n"
    options = {"strategy_scores": "el2n"} if rule.from_selection else {}
    if rule.class_blind and keep_rule is None:
        within = "el2n"
    return DRoPFilter(
        0.5,
        class_errors=ERRORS if rule.needs_errors else None,
        quota=quota,
        keep=keep,
        within=within,
        seed=3,
        min_per_class=2 if rule.takes_min_per_class else 0,
        source={"name": "user/photos", "split": "train"},
        **options,
    )


@pytest.mark.parametrize(("quota", "keep"), _rule_cases(), ids=str)
def test_the_card_settings_are_those_the_reproduce_command_sets(quota, keep, tmp_path):
    rng = np.random.default_rng(0)
    data = _split(np.repeat(np.arange(4), [40, 30, 20, 10]), 0)
    data = data.add_column("embedding", rng.random((len(data), 3)).round(4).tolist())
    drop = _filter_for(quota, keep, data).fit(data)
    folder = export(drop.apply(data), tmp_path / "hub", drop)
    front = (folder / "README.md").read_text().split("---\n")[1]
    meta = yaml.safe_load(front)  # plain YAML, no Python tags
    assert meta["source_datasets"] == ["user/photos"]
    block = meta["drop"]
    settings = block["settings"]
    assert not {"mode", "quota", "density", "seed", "within"} & set(block), "one place"
    nulls = [k for k, v in settings.items() if v is None and k != "keep"]
    assert not nulls, f"settings {nulls} are null"
    assert settings["quota"]["name"] == rules.quota_rule(quota).name
    assert None not in settings["quota"].values()
    (command,) = block["reproduce"]
    args = parse_command(shlex.split(command)[1:]).args
    # Every option the command sets is a card setting of the same value.
    assert settings["density"] == args.density and settings["seed"] == args.seed
    assert settings["min_per_class"] == args.min_per_class
    assert settings["within"] == args.within
    # With --class-errors, --strategy-score implies --quota strategy.
    given = rules.quota_rule(args.quota or "strategy")
    assert {"name": given.name, **given.settings} == settings["quota"]
    if args.keep is None:
        assert settings["keep"] is None
    else:
        kept = rules.keep_rule(args.keep)
        assert {"name": kept.name, **kept.settings} == settings["keep"]
    if args.strategy_score is not None:
        assert settings["strategy_score"] == args.strategy_score
    for option in ("mode", "floor", "strength", "ccs_beta", "ccs_strata"):
        assert getattr(args, option) is None, "the rule's settings travel in its spec"


def test_the_card_of_a_subset_with_its_splits_rebuilds_the_same_folder(tmp_path, monkeypatch):
    errors = json.dumps([0.3, 0.1, 0.2, 0.1, 0.1, 0.4, 0.1, 0.2, 0.1, 0.5])
    main(["prune", "--dataset", "digits", "--class-errors", errors, "--density", "0.3",
          "--keep-other-splits", "--output", str(tmp_path / "subset")])  # fmt: skip
    export_saved(tmp_path / "subset", tmp_path / "hub")
    (command,) = _meta(tmp_path / "hub")["drop"]["reproduce"]
    (tmp_path / "again").mkdir()
    monkeypatch.chdir(tmp_path / "again")
    main(shlex.split(command)[1:])
    kept = [
        pq.read_table(folder / "kept_indices.parquet")["index"].to_pylist()
        for folder in (tmp_path / "subset", tmp_path / "again" / "subset")
    ]
    assert kept[0] == kept[1]
    rebuilt = datasets.load_from_disk(str(tmp_path / "again" / "subset"))
    assert list(rebuilt) == ["train", "test"]
    assert content_digest(rebuilt["test"]) == content_digest(digits_splits()["test"])
