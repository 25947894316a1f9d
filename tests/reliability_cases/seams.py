"""Reliability cases at the seams between features."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import ClassVar

import datasets
import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1]))

from conftest import CLASS_NAMES

from .harness import (
    ERRORS,
    Case,
    CliRefusal,
    cli,
    fitted,
    small,
    with_ids,
)


def seam_cases() -> list[Case]:
    """The seams a fresh adversarial sweep found after the core split: scores as pandas
    Series, ids that change or repeat, parts of a subset, records of another subset, rules
    given twice or returning nonsense, group names that collide."""
    import dataclasses
    from decimal import Decimal

    import pandas as pd

    from hf_drop import DRoPFilter
    from hf_drop.core import rules as R
    from hf_drop.core.uncertainty import ClassErrors, class_errors_from_predictions
    from hf_drop.hub import export
    from hf_drop.pruning.artifacts import save_subset

    def same_rows(one, other):
        def check(_):
            a = DRoPFilter(**({"density": 0.5, "class_errors": ERRORS} | one)).fit(
                with_ids(small())
            )
            b = DRoPFilter(**({"density": 0.5, "class_errors": ERRORS} | other)).fit(
                with_ids(small())
            )
            assert a.indices_.tolist() == b.indices_.tolist()

        return check

    scores = small()["el2n"]
    by_value = pd.Series(scores).sort_values()
    by_id = pd.Series(scores, index=range(1000, 1200)).sample(frac=1, random_state=0)

    def fit_with(**kwargs):
        return lambda _: DRoPFilter(**({"density": 0.5, "class_errors": ERRORS} | kwargs)).fit(
            with_ids(small())
        )

    def streamed(ids=None, mode="approximate"):
        data = small().add_column("id", list(range(200)) if ids is None else ids)
        drop = DRoPFilter(0.5, class_errors=ERRORS, id_column="id", stream_mode=mode)
        return drop, data

    def string_ids(_):
        drop, data = streamed()
        drop.fit(data.to_iterable_dataset())
        cast = data.cast_column("id", datasets.Value("string"))
        list(drop.apply(cast.to_iterable_dataset()))

    def repeated_ids(mode):
        def check(_):
            drop, data = streamed(ids=[7] * 200, mode=mode)
            drop.fit(data.to_iterable_dataset())

        return check

    def part_of_stream(mode, take):
        def check(workspace):
            drop, data = streamed(mode=mode)
            stream = data.to_iterable_dataset()
            save_subset(drop.fit(stream).apply(stream).take(take), workspace.new("s"), drop)

        return check

    def other_record(_workspace, indices=False):
        a, data = fitted()
        b = DRoPFilter(0.5, class_errors=ERRORS, seed=1).fit(data)
        kept = a.indices_ if indices else None
        export(a.apply(data), _workspace.new("e"), b.provenance(), kept_indices=kept,
               mode="indices" if indices else "full")  # fmt: skip

    def wrong_indices(workspace):
        a, data = fitted()
        export(a.apply(data), workspace.new("e"), a.provenance(), mode="indices",
               kept_indices=np.sort((a.indices_ + 1) % 200))  # fmt: skip

    def group_names(_):
        data = small().add_column("frame", [i % 2 for i in range(200)])
        errors = ClassErrors.from_counts([1] * 8, [10] * 8,
                                         names=[f"{c}/{f}" for c in ["tshrt", *CLASS_NAMES[1:]]
                                                for f in (0, 1)])  # fmt: skip
        DRoPFilter(0.5, class_errors=errors, group_column=["label", "frame"],
                   missing_error=0.2).fit(data)  # fmt: skip

    def overwrite_string(workspace):
        drop, data = fitted()
        folder = workspace.copy_of(workspace.subset)
        save_subset(drop.apply(data), folder, drop, overwrite="false")

    def edited_card(workspace):

        drop, data = fitted()
        folder = export(drop.apply(data), workspace.new("e"), drop)
        card = folder / "README.md"
        card.write_text(card.read_text() + "\nmy own notes\n")
        os.utime(card, ns=(1, 1))  # even with its time set back: the size differs
        export(drop.apply(data), folder, drop, overwrite=True)

    @dataclasses.dataclass(frozen=True)
    class Everything(R.QuotaRule):
        name: ClassVar[str] = "everything_sweep"
        help: ClassVar[str] = "keeps every row whatever the density (a broken rule)"

        def counts(self, inputs):
            return inputs.sizes.copy()

    @dataclasses.dataclass(frozen=True)
    class Capped(R.QuotaRule):
        name: ClassVar[str] = "capped_sweep"
        help: ClassVar[str] = "proportional, with an optional cap and a tag"
        cap: float | None = None
        tag: str = "a,b"

        def counts(self, inputs):
            from hf_drop.core.quotas import proportional_quotas

            return proportional_quotas(inputs.sizes, inputs.density)

    def registered(rule, action):
        def check(workspace):
            R.register_quota_rule(rule)
            try:
                return action(workspace)
            finally:
                del R.QUOTA_RULES[rule.name]

        return check

    def broken_rule(_):
        DRoPFilter(0.5, quota="everything_sweep").fit(small())

    def optional_setting(_):
        rule = R.quota_rule("capped_sweep(cap=0.8, tag='x, (y)')")
        assert rule.cap == 0.8 and rule.tag == "x, (y)"
        assert R.quota_rule(rule.spec()) == rule

    def slashed_groups(_):
        data = small().add_column("p", ["a/b" if i % 2 else "a" for i in range(200)])
        data = data.add_column("q", ["c" if i % 2 else "b/c" for i in range(200)])
        DRoPFilter(0.5, quota="proportional", group_column=["p", "q"]).fit(data)

    def slashed_but_distinct(_):  # Fashion-MNIST's "T-shirt/top" with a frame column
        data = small().add_column("where", [f"x/{i % 2}" for i in range(200)])
        drop = DRoPFilter(0.5, quota="proportional", group_column=["label", "where"]).fit(data)
        assert "tshirt/x/0" in drop.classes_ and len(drop.classes_) == 8

    def id_filter_on_unknown_stream(_):
        data = with_ids(small())
        drop = DRoPFilter(0.5, class_errors=ERRORS, id_column="row_id").fit(data)

        def rows():
            yield from ({"label": r["label"]} for r in data.select_columns(["label"]))

        list(drop.apply(datasets.IterableDataset.from_generator(rows)))

    def stream_filter_on_dict(_):
        drop, data = streamed()
        drop.fit(data.to_iterable_dataset())
        pruned = drop.apply(datasets.DatasetDict({"train": data, "test": data.select(range(10))}))
        assert len(pruned["test"]) == 10 and len(pruned["train"]) < 200

    def card_of(make):
        def check(workspace):
            from huggingface_hub import DatasetCard

            drop, subset = make(workspace)
            folder = export(subset, workspace.new("e"), drop)
            (command,) = DatasetCard.load(folder / "README.md").data.to_dict()["drop"]["reproduce"]
            assert command.startswith("# not rebuilt by a command")

        return check

    def stream_card(_):
        drop, data = streamed()
        stream = data.to_iterable_dataset()
        return drop, drop.fit(stream).apply(stream)

    def overridden_card(workspace):
        drop = DRoPFilter.from_probe(workspace.probe, 0.5, class_errors=[0.5] * 10)
        return drop, drop.fit(workspace.train).apply(workspace.train)

    def odd_tags(workspace):
        drop, data = fitted()
        export(drop.apply(data), workspace.new("e"), drop, tags=[1, None])

    def digit_class_errors(_):
        data = datasets.Dataset.from_dict({"label": [str(k % 12) for k in range(60)]})
        errors = class_errors_from_predictions(list(range(12)), [0] * 12)
        DRoPFilter(0.5, class_errors=errors).fit(data)

    return [
        Case("seams", "scores as a Series sorted by value: read by index", same_rows(
             {"within": by_value}, {"within": "el2n"})),
        Case("seams", "scores as a Series indexed by id, shuffled", same_rows(
             {"within": by_id, "id_column": "row_id"}, {"within": "el2n", "id_column": "row_id"})),
        Case("seams", "strategy scores as a Series sorted by value", same_rows(
             {"quota": "strategy", "strategy_scores": by_value},
             {"quota": "strategy", "strategy_scores": "el2n"})),
        Case("seams", "scores as a Series with an index of other rows", fit_with(
             within=pd.Series(scores, index=range(5, 205))), ValueError,
             "within is a pandas Series whose index is not the row positions"),
        Case("seams", "a ClassErrors named by ids on digit class names", digit_class_errors,
             ValueError, "it is ambiguous; build it with class_names="),
        Case("seams", "errors as a Series naming a class twice", fit_with(class_errors=pd.Series(
             [0.1, 0.2, 0.3, 0.4, 0.9], index=[*CLASS_NAMES, "tshirt"])), ValueError,
             "gives class(es) ['tshirt'] more than once"),
        Case("seams", "a stream whose ids became strings", string_ids, ValueError,
             "fitted on int ids"),
        Case("seams", "a stream whose ids repeat (exact)", repeated_ids("exact"), ValueError,
             "repeats ids"),
        Case("seams", "a stream whose ids repeat (approximate)", repeated_ids("approximate"),
             ValueError, "repeats ids"),
        Case("seams", "the label column as id column", fit_with(id_column="label"), ValueError,
             "id_column 'label' is the label column"),
        Case("seams", "part of an exact stream subset saved", part_of_stream("exact", 5),
             ValueError, "it is part of the filter's kept rows"),
        Case("seams", "part of an approximate stream subset saved",
             part_of_stream("approximate", 10), ValueError, "give or take its Binomial spread"),
        Case("seams", "export with the record of a filter of another seed", other_record,
             ValueError, "belongs to another subset"),
        Case("seams", "an indices export with the record of another seed",
             lambda ws: other_record(ws, indices=True), ValueError, "belongs to another subset"),
        Case("seams", "an indices export with indices of other rows", wrong_indices, ValueError,
             "kept_indices are not the kept rows' source positions"),
        Case("seams", "group errors with a misspelled group", group_names, ValueError,
             "ClassErrors for groups ['tshrt/0', 'tshrt/1']"),
        Case("seams", "a setting twice in one spec", fit_with(quota="drop(floor=0.3, floor=0.9)"),
             ValueError, "gives floor twice"),
        Case("seams", "a spec setting and its older argument", fit_with(
             quota="drop(floor=0.3)", floor=0.8), ValueError, "floor is given twice"),
        Case("seams", "a CCS spec and ccs_beta", fit_with(within="el2n", keep="ccs(beta=0.2)",
             ccs_beta=0.4), ValueError, "beta is given twice"),
        Case("seams", "the CLI: a spec setting and its flag", lambda ws: cli(
             "prune", "--probe", ws.probe, "--density", "0.5", "--quota", "drop(floor=0.3)",
             "--floor", "0.8", "--output", ws.new()), CliRefusal, "floor is given twice"),
        Case("seams", "the CLI: class errors naming a class twice", lambda ws: cli(
             "prune", "--dataset", "digits", "--class-errors", '{"0": 0.1, "0": 0.2}',
             "--density", "0.5", "--output", ws.new()), CliRefusal, "more than once"),
        Case("seams", "overwrite='false' in Python", overwrite_string, ValueError,
             "overwrite must be True or False"),
        Case("seams", "overwrite of an export whose card was edited", edited_card, ValueError,
             "README.md, which hf-drop wrote but was changed since"),
        Case("seams", "a registered rule that keeps every row", registered(Everything, broken_rule),
             ValueError, "sum to 200, but density 0.5 keeps 100"),
        Case("seams", "a rule with an optional and a text setting, by spec",
             registered(Capped, optional_setting)),
        Case("seams", "group values whose '/' make two groups one name", slashed_groups,
             ValueError, "give two groups the same name ['a/b/c']"),
        Case("seams", "group values holding '/' that stay distinct", slashed_but_distinct),
        Case("seams", "an id filter on a stream of unknown features without ids",
             id_filter_on_unknown_stream, ValueError, "has no column 'row_id'"),
        Case("seams", "a stream fit applied to a DatasetDict", stream_filter_on_dict),
        Case("seams", "CCS beta of 1", lambda _: R.CCS(beta=1), ValueError, "ccs beta"),
        Case("seams", "density as a Decimal", same_rows({"density": Decimal("0.5")}, {})),
        Case("seams", "export tags that are not strings", odd_tags, ValueError,
             "tags must be a list of non-empty strings"),
        Case("seams", "the card of a stream subset", card_of(stream_card)),
        Case("seams", "the card of a probe filter with errors given by hand",
             card_of(overridden_card)),
    ]  # fmt: skip
