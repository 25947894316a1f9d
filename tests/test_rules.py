"""A selection rule is added in one place: a rule registered in hf_drop.core.rules works in
DRoPFilter (checks, choice, method name), in the CLI's choices, and in the card's reproduce
command, which rebuilds the same rows."""

import json
import shlex

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


def _smallest_first(inputs: rules.QuotaInputs) -> np.ndarray:
    """Fill the smallest classes first, whole, until the budget is spent."""
    left = budget(int(inputs.sizes.sum()), inputs.density)
    counts = np.zeros(len(inputs.sizes), dtype=np.int64)
    for k in np.argsort(inputs.sizes, kind="stable"):
        counts[k] = min(inputs.sizes[k], left)
        left -= counts[k]
    return counts


def _middle(scores, budget, labels, seed, settings):
    """Keep the scores closest to the median, overall or per class."""
    distance = np.abs(scores - np.median(scores))
    order = np.argsort(distance, kind="stable")
    if labels is None:
        return np.sort(order[:budget])
    kept = [order[labels[order] == k][:n] for k, n in enumerate(budget)]
    return np.sort(np.concatenate(kept)).astype(np.int64)


@pytest.fixture
def registered():
    quota = rules.register_quota_rule(
        rules.QuotaRule(
            "smallest_first", "the smallest classes first, whole", "Small", _smallest_first
        )
    )
    keep = rules.register_keep_rule(rules.KeepRule("middle", "closest to the median", _middle))
    yield quota, keep
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


def test_rule_checks_come_from_the_registry(registered, dataset):
    with pytest.raises(ValueError, match=r"quota must be one of .*'smallest_first'"):
        DRoPFilter(0.5, quota="nope").fit(dataset)
    with pytest.raises(ValueError, match="floor only applies to quota='drop'"):
        DRoPFilter(0.5, quota="smallest_first", floor=0.2).fit(dataset)
    with pytest.raises(ValueError, match="keep='middle' needs a score"):
        DRoPFilter(0.5, keep="middle", quota="smallest_first").fit(dataset)
    with pytest.raises(ValueError, match="already registered"):
        rules.register_keep_rule(rules.KeepRule("middle", "again", _middle))


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
        quota="smallest_first",
        within="el2n",
        keep="middle",
        source={"name": str(original / "source"), "split": "train"},
    )
    save_subset(drop.fit(dataset).apply(dataset), original / "subset", drop)
    export_saved(original / "subset", original / "export")
    card = DatasetCard.load(original / "export" / "README.md")
    (command,) = card.data.to_dict()["drop"]["reproduce"]
    assert "--quota smallest_first" in command and "--keep middle" in command
    assert "the smallest classes first" in card.text
    monkeypatch.chdir(rebuilt)
    main(shlex.split(command)[1:])
    kept = pq.read_table(rebuilt / "subset" / "kept_indices.parquet")["index"].to_pylist()
    assert kept == drop.indices_.tolist()
    assert json.loads((rebuilt / "subset" / "pruning.json").read_text())["method"] == drop.method
