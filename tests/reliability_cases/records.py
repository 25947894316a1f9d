"""Reliability cases of the records: every artifact says truly how it was made."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1]))

from .harness import (
    Case,
    CliRefusal,
    cli,
)


def records_cases() -> list[Case]:
    """Outputs replace only what hf-drop wrote; every record it reads back (pruning.json,
    probe_config.json, class_metrics.json, metrics.json, the output marker) is checked, field by
    field, with the file named; the report counts each run once, by its settings."""
    from hf_drop.hub import export_saved, export_scores, load_pruned
    from hf_drop.io.files import DamagedFileError
    from hf_drop.io.outputs import KINDS, OUTPUT_MARKER, OutputError, atomic_output, prepare_output
    from hf_drop.probe import ProbeResult

    def digest(folder: Path) -> dict[str, str]:
        return {
            str(p.relative_to(folder)): "dir" if p.is_dir() and not p.is_symlink()
            else hashlib.sha256(p.read_bytes()).hexdigest() if not p.is_symlink() else "link"
            for p in sorted(folder.rglob("*"))
        }  # fmt: skip

    def untouched(folder: Path, call: Callable[[], object]) -> None:
        """``call``, which must be refused, and ``folder`` exactly as it was after it."""
        before = digest(folder)
        try:
            call()
        finally:
            assert digest(folder) == before, f"{folder} was changed"

    def with_user_file(folder: Path, name: str = "mine/notes.txt") -> Path:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("the user's own\n")
        return folder

    def trained(ws) -> Path:
        """One training run on the subset, shared by the cases that read one."""
        if getattr(ws, "trained", None) is None:
            ws.trained = ws.root / "runs" / "train"
            cli("train", "--dataset", ws.subset, "--model", "test_resnet", "--epochs", "1",
                "--eval-from-probe", ws.probe, "--output", ws.trained)  # fmt: skip
        return ws.trained

    # --- overwrite replaces only what hf-drop wrote, for every writer ---

    def any_kind(kind):
        def action(ws):
            folder = ws.new(kind)
            with atomic_output(folder, kind) as tmp:
                (tmp / "part").mkdir()
                (tmp / "part" / "ours.bin").write_bytes(b"ours")
            with_user_file(folder, "part/deep/mine.txt")

            def overwrite():
                with atomic_output(folder, kind, overwrite=True) as tmp:
                    (tmp / "new.bin").write_bytes(b"new")

            untouched(folder, overwrite)

        return action

    def save_over(ws, name):
        from hf_drop import DRoPFilter
        from hf_drop.pruning.artifacts import save_subset

        target = with_user_file(ws.copy_of(ws.subset), name)
        drop = DRoPFilter.from_probe(ProbeResult.load(ws.probe), 0.5, min_per_class=2, seed=3)
        drop.fit(ws.train)
        untouched(target, lambda: save_subset(drop.apply(ws.train), target, drop, overwrite=True))

    def prune_over(ws):
        target = with_user_file(ws.copy_of(ws.subset), "notes.txt")
        untouched(target, lambda: cli("prune", "--probe", ws.probe, "--density", "0.5",
                                      "--seed", "4", "--overwrite", "--output", target))  # fmt: skip

    def export_over(ws):
        target = with_user_file(ws.copy_of(ws.export), "data/mine.parquet")
        untouched(target, lambda: export_saved(ws.subset, target, overwrite=True))

    def scores_export_over(ws):
        target = ws.new("scores-export")
        export_scores(ws.probe, target)
        with_user_file(target, "NOTES.md")
        untouched(target, lambda: export_scores(ws.probe, target, overwrite=True))

    def probe_scores_over(ws):
        from hf_drop.probe.result import write_result

        folder = with_user_file(ws.copy_of(ws.probe), "scores/mine.npy")
        history = [[{"accuracy": 1.0, "recall": [1.0], "support": [1], "train_loss": 0.0}]]
        try:
            write_result(folder, scores={"el2n": np.zeros(2)}, labels=np.zeros(2, np.int64),
                         names=["a"], history=history, class_errors_from="final", record={})  # fmt: skip
        finally:
            assert (folder / "scores" / "mine.npy").read_text() == "the user's own\n"

    def train_over(ws):
        target = with_user_file(ws.copy_of(trained(ws)), "model/mine.txt")
        untouched(target, lambda: cli("train", "--dataset", ws.subset, "--model", "test_resnet",
                                      "--epochs", "1", "--eval-from-probe", ws.probe,
                                      "--overwrite", "--output", target))  # fmt: skip

    def probe_lists_its_files(ws):
        # Written in place over a run (and resumable): its marker still lists every file.
        assert prepare_output(ws.probe, "probe", overwrite=True) == ws.probe.resolve()
        assert "probe_config.json" in json.loads((ws.probe / OUTPUT_MARKER).read_text())["files"]

    def probe_with_user_file(ws):
        folder = with_user_file(ws.copy_of(ws.probe), "checkpoints/mine.pt")
        prepare_output(folder, "probe", overwrite=True)

    def older_marker(ws, extra=None):
        """A subset as an hf-drop that listed no files left it: replaced when it holds only what
        a subset holds."""
        target = ws.copy_of(ws.subset)
        (target / OUTPUT_MARKER).write_text(json.dumps({"kind": "subset"}))

        def prune():
            cli("prune", "--probe", ws.probe, "--density", "0.5", "--seed", "4", "--overwrite",
                "--output", target)  # fmt: skip

        if extra:
            untouched(with_user_file(target, extra), prune)
        prune()
        assert json.loads((target / "pruning.json").read_text())["params"]["seed"] == 4

    def user_link(ws):
        target = ws.copy_of(ws.subset)
        (target / "my-data").symlink_to(ws.user)
        untouched(target, lambda: cli("prune", "--probe", ws.probe, "--density", "0.5",
                                      "--overwrite", "--output", target))  # fmt: skip

    def appears_while_written(ws):
        target = ws.copy_of(ws.subset)

        def overwrite():
            with atomic_output(target, "subset", overwrite=True) as tmp:
                (tmp / "state.json").write_text("{}")
                with_user_file(target, "late.txt")  # added while the new output is written

        try:
            overwrite()
        finally:
            assert (target / "late.txt").is_file() and (target / "pruning.json").is_file()

    def marker(ws, record, user_file=None):
        folder = ws.copy_of(ws.subset)
        if user_file:
            with_user_file(folder, user_file)
        (folder / OUTPUT_MARKER).write_text(json.dumps(record))
        untouched(folder, lambda: prepare_output(folder, "subset", overwrite=True))

    # --- records read back: the file and the field named, never a KeyError ---

    def edited(ws, folder: Path, name: str, change) -> Path:
        target = ws.copy_of(folder)
        path = target / name
        record = json.loads(path.read_text())
        path.write_text(json.dumps(change(record)))
        return target

    def without(*keys):
        def change(record):
            inner = record
            for key in keys[:-1]:
                inner = inner[key]
            del inner[keys[-1]]
            return record

        return change

    def setting(value, *keys):
        def change(record):
            inner = record
            for key in keys[:-1]:
                inner = inner[key]
            inner[keys[-1]] = value
            return record

        return change

    def export_of(ws, change):
        return export_saved(edited(ws, ws.subset, "pruning.json", change), ws.new("export"))

    def probe_of(ws, name, change):
        return ProbeResult.load(edited(ws, ws.probe, name, change))

    def card_counts(ws):
        folder = ws.copy_of(ws.export)
        card = (folder / "README.md").read_text()
        line = next(x for x in card.splitlines() if x.startswith("  num_kept: "))
        (folder / "README.md").write_text(card.replace(line, f"{line[:12]}'{line[12:]}'"))
        return load_pruned(folder, source=ws.train)

    # --- the report: each run once, grouped by every setting that differs ---

    def report(ws, *runs):
        from hf_drop.evaluation.report import load_runs, summarize

        return summarize(load_runs(runs))

    def run_like(ws, change):
        return edited(ws, trained(ws), "metrics.json", change)

    def other_settings(ws):
        other = run_like(ws, lambda r: r | {"run_id": "other", "training_args": r["training_args"]
                                            | {"lr_scheduler_type": "cosine"}})  # fmt: skip
        table = report(ws, trained(ws), other)
        assert len(table) == 2 and set(table["runs"]) == {1}
        assert "training_args.lr_scheduler_type" in " ".join(table.index.get_level_values(2))

    def seeds(ws):
        other = run_like(ws, lambda r: r | {"run_id": "seed-1", "accuracy": 0.5,
                                            "config": r["config"] | {"seed": 1}})  # fmt: skip
        table = report(ws, trained(ws), other)
        assert list(table["runs"]) == [2] and table.index.nlevels == 2

    def linked_twice(ws):
        link = ws.new("link")
        link.symlink_to(trained(ws))
        report(ws, trained(ws), link)

    def card_text(ws):
        text = (trained(ws) / "model" / "README.md").read_text()
        pruning = json.loads((ws.subset / "pruning.json").read_text())
        assert f"it keeps {pruning['num_kept']} of the {pruning['num_rows']} rows" in text
        assert "None" not in text.split("## Training data")[1].split("##")[0]

    def card_of_older_record(ws):
        from hf_drop.train.card import model_card

        record = json.loads((trained(ws) / "metrics.json").read_text())
        del record["provenance"]["num_kept"]
        text = str(model_card(record))
        assert "it keeps part of the rows" in text and "None of the" not in text

    return [
        *[Case("outputs", f"overwrite of a previous {kind} output holding a user's file",
               any_kind(kind), OutputError, "part/deep/") for kind in KINDS],
        Case("outputs", "save_subset overwrite=True over a subset holding a user's file",
             lambda ws: save_over(ws, "notes.txt"), OutputError, "notes.txt, which hf-drop did"),
        Case("outputs", "save_subset overwrite=True over a user's folder inside a subset",
             lambda ws: save_over(ws, "mine/deep/er/notes.txt"), OutputError, "mine/"),
        Case("outputs", "prune --overwrite over a subset holding a user's file", prune_over,
             CliRefusal, "notes.txt"),
        Case("outputs", "export_saved overwrite=True over an export with a user's shard",
             export_over, OutputError, "data/mine.parquet"),
        Case("outputs", "export_scores overwrite=True over one holding a user's file",
             scores_export_over, OutputError, "NOTES.md"),
        Case("outputs", "a probe's score table rewritten over a user's file in scores/",
             probe_scores_over, OutputError, "mine.npy"),
        Case("outputs", "train --overwrite over a run holding a user's file in model/",
             train_over, CliRefusal, "model/mine.txt"),
        Case("outputs", "a probe run written in place lists every file it wrote",
             probe_lists_its_files),
        Case("outputs", "overwrite of a probe run holding a user's file in checkpoints/",
             probe_with_user_file, OutputError, "checkpoints/mine.pt"),
        Case("outputs", "overwrite of a subset whose older marker lists no files",
             older_marker),
        Case("outputs", "overwrite of an older-marker subset holding a user's file",
             lambda ws: older_marker(ws, "extra.csv"), CliRefusal, "did not list its files"),
        Case("outputs", "overwrite of a subset holding the user's symlink", user_link,
             CliRefusal, "my-data"),
        Case("outputs", "a user's file added while the new output is written",
             appears_while_written, OutputError, "late.txt"),
        Case("outputs", "a marker of an unknown kind", lambda ws: marker(ws, {"kind": "weird"}),
             OutputError, "hf-drop 'weird' output"),
        Case("outputs", "a marker whose kind is not a string", lambda ws: marker(ws, {"kind": 5}),
             OutputError, "is not a previous"),
        Case("outputs", "a marker whose files are not a list, over a user's file",
             lambda ws: marker(ws, {"kind": "subset", "files": "all"}, "mine.txt"), OutputError,
             "mine.txt, which is not a file an hf-drop subset writes"),
        Case("records", "pruning.json without params",
             lambda ws: export_of(ws, without("params")), DamagedFileError,
             "pruning.json (how the subset was made) lacks the field 'params'"),
        Case("records", "pruning.json without params.seed",
             lambda ws: export_of(ws, without("params", "seed")), DamagedFileError,
             "'params.seed'"),
        Case("records", "pruning.json with a density that is text",
             lambda ws: export_of(ws, setting("0.5", "params", "density")), DamagedFileError,
             "'params.density' is \"0.5\", not a number"),
        Case("records", "pruning.json of another tool",
             lambda ws: export_of(ws, lambda r: {"pruned": True}), DamagedFileError,
             "'method', 'params'"),
        Case("records", "pruning.json from a newer hf-drop",
             lambda ws: export_of(ws, setting(99, "format_version")), DamagedFileError,
             "written by a newer hf-drop"),
        Case("records", "probe_config.json without source",
             lambda ws: probe_of(ws, "probe_config.json", without("source")), DamagedFileError,
             "probe_config.json (the probe's configuration) lacks the field 'source'"),
        Case("records", "probe_config.json whose row count is text",
             lambda ws: probe_of(ws, "probe_config.json", setting("9", "source", "num_rows")),
             DamagedFileError, "'source.num_rows'"),
        Case("records", "prune --probe whose probe_config.json has no config",
             lambda ws: cli("prune", "--probe", edited(ws, ws.probe, "probe_config.json",
                            without("config")), "--density", "0.5", "--output", ws.new()),
             CliRefusal, "'config'"),
        Case("records", "class_metrics.json with a class without its error",
             lambda ws: probe_of(ws, "class_metrics.json", without("classes", 0, "error")),
             DamagedFileError, "'classes[0].error'"),
        Case("records", "class_metrics.json of another tool",
             lambda ws: probe_of(ws, "class_metrics.json", lambda r: {"f1": 0.3}),
             DamagedFileError, "lacks the field 'classes'"),
        Case("records", "metrics.json of another tool",
             lambda ws: report(ws, run_like(ws, lambda r: {"eval_accuracy": 0.9})),
             DamagedFileError, "metrics.json (a training run's record) lacks the fields"),
        Case("records", "metrics.json whose accuracy is text",
             lambda ws: report(ws, run_like(ws, setting("0.9", "accuracy"))), DamagedFileError,
             "'accuracy' is \"0.9\""),
        Case("records", "a card whose num_kept is text", card_counts, ValueError,
             "not counts"),
        Case("report", "hf-drop report RUN RUN",
             lambda ws: cli("report", trained(ws), trained(ws), "--output",
                            ws.new("r.png")), CliRefusal, "is given twice"),
        Case("report", "the same run through a symlink", linked_twice, ValueError,
             "is given twice"),
        Case("report", "a copy of a run's folder",
             lambda ws: report(ws, trained(ws), ws.copy_of(trained(ws))), ValueError,
             "is the same run as"),
        Case("report", "runs that differ in a training setting are not averaged", other_settings),
        Case("report", "runs that differ only in their seed are averaged", seeds),
        Case("card", "the model card says how many rows the subset keeps", card_text),
        Case("card", "a record without num_kept never says None", card_of_older_record),
    ]  # fmt: skip
