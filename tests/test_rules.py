"""A selection rule is added in one place: a rule registered in hf_drop.core.rules works in
DRoPFilter (checks, choice, method name), in the CLI's choices, and in the card's reproduce
command, which rebuilds the same rows."""

import json
import shlex
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pyarrow.parquet as pq
import pytest
from huggingface_hub import DatasetCard

from hf_drop import DRoPFilter
from hf_drop.cli import build_parser, main
from hf_drop.core import rules
from hf_drop.core.quotas import budget
from hf_drop.hub import export_saved
from hf_drop.pruning.artifacts import save_subset


@dataclass(frozen=True)
class SmallestFirst(rules.QuotaRule):
    """Fill the smallest classes first, whole, until the budget is spent; ``cap`` is the largest
    share of a class kept (a setting of the rule's own)."""

    name: ClassVar[str] = "smallest_first"
    help: ClassVar[str] = "the smallest classes first, whole"
    cap: float = 1.0

    def counts(self, inputs: rules.QuotaInputs) -> np.ndarray:
        left = budget(int(inputs.sizes.sum()), inputs.density)
        counts = np.zeros(len(inputs.sizes), dtype=np.int64)
        for k in np.argsort(inputs.sizes, kind="stable"):
            counts[k] = min(int(inputs.sizes[k] * self.cap), left)
            left -= counts[k]
        return counts

    def label(self, shrunk: bool = False) -> str:
        return "Small" if self.cap == 1 else f"Small(cap {self.cap:g})"


@dataclass(frozen=True)
class Middle(rules.KeepRule):
    """Keep the scores closest to the median (shifted by ``offset``), overall or per class."""

    name: ClassVar[str] = "middle"
    help: ClassVar[str] = "closest to the median"
    offset: float = 0.0

    def select(self, scores, budget, labels, seed):
        distance = np.abs(scores - np.median(scores) - self.offset)
        order = np.argsort(distance, kind="stable")
        if labels is None:
            return np.sort(order[:budget])
        kept = [order[labels[order] == k][:n] for k, n in enumerate(budget)]
        return np.sort(np.concatenate(kept)).astype(np.int64)


@pytest.fixture
def registered():
    """The two rules, registered for one test (the registry is global)."""
    yield rules.register_quota_rule(SmallestFirst), rules.register_keep_rule(Middle)
    del rules.QUOTA_RULES["smallest_first"], rules.KEEP_RULES["middle"]


def test_a_registered_quota_rule_works_in_the_filter(registered, dataset):
    drop = DRoPFilter(0.5, quota="smallest_first").fit(dataset)
    # classes of 80, 60, 40, 20 rows: a budget of 100 takes 20 + 40 and 40 of the 60
    assert drop.quotas_.tolist() == [0, 40, 40, 20]
    assert drop.method == "Random+Small"
    assert np.bincount(np.asarray(dataset["label"])[drop.indices_], minlength=4).tolist() == [
        0,
        40,
        40,
        20,
    ]


def test_a_registered_keep_rule_works_within_classes_and_globally(registered, dataset):
    scores = np.asarray(dataset["el2n"])
    labels = np.asarray(dataset["label"])
    drop = DRoPFilter(0.5, within="el2n", keep="middle", quota="proportional").fit(dataset)
    assert drop.method == "el2n(middle)+Proportional"
    for k, n in enumerate(drop.quotas_):
        mine = scores[drop.indices_[labels[drop.indices_] == k]]
        rest = np.setdiff1d(np.flatnonzero(labels == k), drop.indices_)
        median = np.median(scores)
        assert n == len(mine)
        assert len(rest) == 0 or np.abs(mine - median).max() <= np.abs(scores[rest] - median).min()
    overall = DRoPFilter(0.5, within="el2n", keep="middle", quota="global").fit(dataset)
    assert len(overall.indices_) == 100


def test_a_rule_carries_its_own_settings(registered, dataset):
    capped = DRoPFilter(0.5, quota=SmallestFirst(cap=0.5)).fit(dataset)
    # classes of 80, 60, 40, 20 rows, half of each at most: 10 + 20 + 30 + 40 = 100
    assert capped.quotas_.tolist() == [40, 30, 20, 10]
    assert capped.method == "Random+Small(cap 0.5)"
    by_spec = DRoPFilter(0.5, quota="smallest_first(cap=0.5)").fit(dataset)
    assert by_spec.indices_.tolist() == capped.indices_.tolist()
    assert capped.provenance()["rules"]["quota"] == "smallest_first(cap=0.5)"
    keep = DRoPFilter(0.5, within="el2n", keep=Middle(offset=0.2), quota="proportional")
    assert keep.fit(dataset).method == "el2n(middle(offset=0.2))+Proportional"
    with pytest.raises(ValueError, match=r"floor applies to the rule object itself"):
        DRoPFilter(0.5, class_errors=[0.1] * 4, quota=rules.DRoP(), floor=0.2).fit(dataset)


def test_rule_checks_come_from_the_registry(registered, dataset):
    with pytest.raises(ValueError, match=r"quota must be one of .*'smallest_first'"):
        DRoPFilter(0.5, quota="nope").fit(dataset)
    with pytest.raises(ValueError, match="floor only applies to quota='drop'"):
        DRoPFilter(0.5, quota="smallest_first", floor=0.2).fit(dataset)
    with pytest.raises(ValueError, match="keep='middle' needs a score"):
        DRoPFilter(0.5, keep="middle", quota="smallest_first").fit(dataset)
    with pytest.raises(ValueError, match="already registered"):
        rules.register_keep_rule(Middle)
    with pytest.raises(ValueError, match=r"takes settings \['offset'\]"):
        DRoPFilter(0.5, within="el2n", keep="middle(width=2)").fit(dataset)
    with pytest.raises(ValueError, match=r"middle\(offset=...\) must be float"):
        DRoPFilter(0.5, within="el2n", keep="middle(offset=wide)").fit(dataset)


def test_the_cli_offers_registered_rules(registered):
    args = build_parser().parse_args(
        [
            "prune",
            "--probe",
            "p",
            "--density",
            "0.5",
            "--quota",
            "smallest_first",
            "--keep",
            "middle",
            "--output",
            "o",
        ]
    )
    assert (args.quota, args.keep) == ("smallest_first", "middle")
    with_settings = build_parser().parse_args(
        ["prune", "--probe", "p", "--density", "0.5", "--quota", "smallest_first(cap=0.5)",
         "--keep", "middle(offset=0.1)", "--output", "o"]
    )  # fmt: skip
    assert (with_settings.quota, with_settings.keep) == (
        "smallest_first(cap=0.5)",
        "middle(offset=0.1)",
    )
    help_text = build_parser()._subparsers._group_actions[0].choices["prune"].format_help()
    assert "the smallest classes first" in " ".join(help_text.split())


def test_the_card_rebuilds_a_subset_of_a_registered_rule(
    registered, dataset, tmp_path, monkeypatch
):
    original, rebuilt = tmp_path / "original", tmp_path / "rebuilt"
    for folder in (original, rebuilt):  # the source, as a user would have it in each folder
        dataset.save_to_disk(str(folder / "source"))
    drop = DRoPFilter(
        0.5,
        class_errors=[0.1, 0.2, 0.3, 0.4],
        quota=SmallestFirst(cap=0.75),
        within="el2n",
        keep=Middle(offset=0.1),
        source={"name": str(original / "source"), "split": "train"},
    )
    save_subset(drop.fit(dataset).apply(dataset), original / "subset", drop)
    export_saved(original / "subset", original / "export")
    card = DatasetCard.load(original / "export" / "README.md")
    (command,) = card.data.to_dict()["drop"]["reproduce"]
    assert "--quota 'smallest_first(cap=0.75)'" in command
    assert "--keep 'middle(offset=0.1)'" in command
    assert "the smallest classes first" in card.text
    monkeypatch.chdir(rebuilt)
    main(shlex.split(command)[1:])
    kept = pq.read_table(rebuilt / "subset" / "kept_indices.parquet")["index"].to_pylist()
    assert kept == drop.indices_.tolist()
    assert json.loads((rebuilt / "subset" / "pruning.json").read_text())["method"] == drop.method
