"""A published subset can be rebuilt from its card: the card's commands, run in an empty folder,
give the same kept rows, for every method of the benchmark, for hand-given class errors (a dict,
with their support, a ClassErrors), for groups, and with the dataset's recorded revision."""

import json
import shlex
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from huggingface_hub import DatasetCard

from hf_drop.cli import main
from hf_drop.hub import export_saved

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "recipes"))

from benchmark import METHODS  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from conftest import image_dataset  # noqa: E402

# The benchmark's methods, as hf-drop prune flags (from_probe arguments -> CLI options).
FLAGS = {"within": "--within", "keep": "--keep", "quota": "--quota"}
FLAGS["strategy_score"] = "--strategy-score"
FLAGS["mode"] = "--mode"


def _flags(method: dict) -> list[str]:
    return [token for key, value in method.items() for token in (FLAGS[key], str(value))]


def _run(command: str, folder: Path, monkeypatch) -> None:
    tokens = shlex.split(command)
    assert tokens[0] == "hf-drop", command
    monkeypatch.chdir(folder)
    main(tokens[1:])


def _kept(folder: Path) -> list[int]:
    return pq.read_table(folder / "kept_indices.parquet")["index"].to_pylist()


def _card_commands(subset: Path, export: Path) -> tuple[list[str], str]:
    export_saved(subset, export)
    card = DatasetCard.load(export / "README.md")
    commands = card.data.to_dict()["drop"]["reproduce"]
    for command in commands:
        assert command in card.text, "the card's body shows the same commands"
    return commands, (export / "README.md").read_text() + (subset / "pruning.json").read_text()


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    root = tmp_path_factory.mktemp("original")
    main(["probe", "--dataset", "digits", "--model", "test_resnet", "--epochs", "2",
          "--embeddings", "--output", str(root / "probe")])  # fmt: skip
    return root


@pytest.fixture(scope="module")
def rebuilt_probe(tmp_path_factory):
    """The probe command of the cards, run once in a fresh folder (it is the same for all)."""
    return tmp_path_factory.mktemp("rebuilt")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.slow
def test_every_method_is_rebuilt_from_its_card(method, probe, rebuilt_probe, tmp_path, monkeypatch):
    subset = tmp_path / "made" / "subset"
    main(["prune", "--probe", str(probe / "probe"), "--density", "0.4", "--seed", "3",
          *_flags(METHODS[method]), "--output", str(subset)])  # fmt: skip
    commands, published = _card_commands(subset, tmp_path / "made" / "export")
    assert str(tmp_path) not in published and str(probe) not in published, "no local paths"
    assert len(commands) == 2 and commands[0].startswith("hf-drop probe --dataset digits")

    if not (rebuilt_probe / "probe").exists():
        _run(commands[0], rebuilt_probe, monkeypatch)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "probe").symlink_to(rebuilt_probe / "probe")
    _run(commands[1], fresh, monkeypatch)

    assert _kept(fresh / "subset") == _kept(subset)
    again = json.loads((fresh / "subset" / "pruning.json").read_text())
    original = json.loads((subset / "pruning.json").read_text())
    assert again["method"] == original["method"]
    assert again["quotas"] == original["quotas"]


def test_hand_given_class_errors_are_rebuilt_without_a_probe(tmp_path, monkeypatch):
    errors = {str(k): round(0.05 + 0.03 * k, 4) for k in range(10)}
    subset = tmp_path / "made" / "subset"
    main(["prune", "--dataset", "digits", "--class-errors", json.dumps(errors), "--density",
          "0.3", "--mode", "count", "--min-per-class", "4", "--output", str(subset)])  # fmt: skip
    commands, published = _card_commands(subset, tmp_path / "made" / "export")
    assert len(commands) == 1, "no probe command for errors given by hand"
    assert "hf-drop probe" not in published and "given by hand" in published
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    _run(commands[0], fresh, monkeypatch)
    assert _kept(fresh / "subset") == _kept(subset)


# --- filters built in Python: the record's commands rebuild the very same rows ------------------


def _small():
    """200 PNG rows in 4 classes of 80, 60, 40, 20, with a score and a 'place' column."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), [80, 60, 40, 20])
    rng.shuffle(labels)
    data = image_dataset(labels, extra={"el2n": rng.random(len(labels)).round(6)})
    return data.add_column("place", ["land" if i % 3 else "water" for i in range(len(data))])


def _rebuild(drop, data, tmp_path, monkeypatch) -> tuple[list[str], dict]:
    """Save ``drop``'s subset of ``data`` (kept as ./source in two folders), run the record's
    prune command in the second one, and check that it keeps the very same rows."""
    from hf_drop.cli.reproduce import reproduce_commands
    from hf_drop.pruning.artifacts import save_subset

    original, rebuilt = tmp_path / "original", tmp_path / "rebuilt"
    for folder in (original, rebuilt):
        data.save_to_disk(str(folder / "source"))
    monkeypatch.chdir(original)
    save_subset(drop.fit(data).apply(data), original / "subset", drop)
    record = json.loads((original / "subset" / "pruning.json").read_text())
    commands = reproduce_commands(record)
    monkeypatch.chdir(rebuilt)
    main(shlex.split(commands[-1])[1:])
    assert _kept(rebuilt / "subset") == drop.indices_.tolist() == _kept(original / "subset")
    again = json.loads((rebuilt / "subset" / "pruning.json").read_text())
    assert again["quotas"] == record["quotas"] and again["method"] == record["method"]
    return commands, again


def _hand(**kwargs):
    from hf_drop import DRoPFilter

    return DRoPFilter(0.4, source={"name": "source", "split": "train"}, **kwargs)


ERRORS = {"tshirt": 0.3, "trouser": 0.05, "pullover": 0.45, "dress": 0.2}


def test_a_hand_given_class_errors_dict_is_rebuilt(tmp_path, monkeypatch):
    commands, _ = _rebuild(_hand(class_errors=ERRORS, seed=5), _small(), tmp_path, monkeypatch)
    assert len(commands) == 1 and "--class-errors" in commands[0] and "--seed 5" in commands[0]


def test_class_support_is_carried(tmp_path, monkeypatch):
    data = _small()
    support = {"tshirt": 4, "trouser": 60, "pullover": 3, "dress": 50}
    drop = _hand(class_errors=ERRORS, class_support=support)
    commands, again = _rebuild(drop, data, tmp_path, monkeypatch)
    assert "--class-support" in commands[0]
    assert again["class_support"] == [support[n] for n in again["classes"]]
    without = _hand(class_errors=ERRORS).fit(data)
    assert without.indices_.tolist() != drop.indices_.tolist(), "the support changes the rows"


def test_a_class_errors_object_is_rebuilt_with_its_support(tmp_path, monkeypatch):
    from hf_drop.core.uncertainty import ClassErrors

    errors = ClassErrors(
        names=("tshirt", "trouser", "pullover", "dress"),
        errors=[0.5, 0.1, 0.6, 0.25],
        support=[4, 50, 5, 40],
        mistakes=[2, 5, 3, 10],
    )
    commands, _ = _rebuild(_hand(class_errors=errors), _small(), tmp_path, monkeypatch)
    assert "--class-support" in commands[0]


def test_a_group_column_is_carried(tmp_path, monkeypatch):
    data = _small()
    groups = sorted({f"{c}/{p}" for c in ERRORS for p in ("land", "water")})
    errors = {g: round(0.05 + 0.07 * k, 3) for k, g in enumerate(groups)}
    drop = _hand(class_errors=errors, group_column=["label", "place"], within="el2n")
    commands, again = _rebuild(drop, data, tmp_path, monkeypatch)
    assert "--group-column label place" in commands[0] and "--within el2n" in commands[0]
    assert again["params"]["group_column"] == ["label", "place"]


def test_a_recorded_revision_is_carried(tmp_path, monkeypatch):
    from hf_drop import DRoPFilter

    source = {"name": "source", "split": "train", "revision": "v1.0"}
    drop = DRoPFilter(0.4, class_errors=ERRORS, source=source, mode="count")
    commands, again = _rebuild(drop, _small(), tmp_path, monkeypatch)
    assert "--revision v1.0" in commands[0] and "drop(mode=count, " in commands[0]
    assert again["source"]["revision"] == "v1.0", "and recorded again"


@pytest.mark.parametrize("mode", ["paper", "count", "saturating"])
def test_a_record_says_every_setting_so_a_change_of_default_cannot_change_it(
    mode, tmp_path, monkeypatch
):
    from hf_drop.cli.reproduce import reproduce_commands
    from hf_drop.pruning.artifacts import save_subset

    data = _small()
    drop = _hand(class_errors=ERRORS, mode=mode).fit(data)
    save_subset(drop.apply(data), tmp_path / "subset", drop)
    record = json.loads((tmp_path / "subset" / "pruning.json").read_text())
    assert record["rules"]["quota"] == f"drop(mode={mode}, strength=1.0, floor=0.5, shrink=true)"
    # A record from before rules were written in full: "drop" for the default of its day, whose
    # settings in force its drop_settings hold; its command keeps them, whatever the default now.
    record["rules"]["quota"] = "drop"
    (command,) = reproduce_commands(record)
    assert f"'drop(mode={mode}, strength=1.0, floor=0.5, shrink=true)'" in command


@pytest.mark.slow
def test_a_probe_based_filter_from_python_is_rebuilt(probe, tmp_path, monkeypatch):
    from hf_drop import DRoPFilter
    from hf_drop.cli.reproduce import reproduce_commands
    from hf_drop.data.sources import digits_splits
    from hf_drop.pruning.artifacts import save_subset

    train = digits_splits()["train"]
    drop = DRoPFilter.from_probe(probe / "probe", 0.3, within="aum", keep="easy", seed=2)
    save_subset(drop.fit(train).apply(train), tmp_path / "subset", drop)
    commands = reproduce_commands(json.loads((tmp_path / "subset" / "pruning.json").read_text()))
    assert commands[0].startswith("hf-drop probe --dataset digits") and "probe" in commands[0]
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "probe").symlink_to(probe / "probe")  # the probe itself: rebuilt by the test above
    _run(commands[1], fresh, monkeypatch)
    assert _kept(fresh / "subset") == drop.indices_.tolist()


def test_the_probe_command_keeps_its_revision_and_spells_paths_portably():
    from hf_drop.cli.reproduce import probe_command

    recorded = ("hf-drop probe --dataset /home/me/data/cats --revision abc123 --model test_resnet "
                "--num_train_epochs 2 --output_dir=/home/me/runs/p")  # fmt: skip
    command = probe_command({}, {"command": recorded, "config": {}})
    assert command == (
        "hf-drop probe --dataset cats --revision abc123 --model test_resnet --epochs 2 "
        "--output probe"
    )
