"""A published subset can be rebuilt from its card: the card's commands, run in an empty folder,
give the same kept rows, for every method of the benchmark and for hand-given class errors."""

import json
import shlex
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from huggingface_hub import DatasetCard

from hf_drop.cli import main
from hf_drop.hub import export_saved

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "recipes"))

from benchmark import METHODS  # noqa: E402

# The benchmark's methods, as hf-drop prune flags (from_probe arguments -> CLI options).
FLAGS = {"within": "--within", "keep": "--keep", "quota": "--quota"}
FLAGS["strategy_score"] = "--strategy-score"


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
