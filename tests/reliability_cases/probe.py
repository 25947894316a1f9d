"""Reliability cases of the probe and of pruning from it."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import datasets
import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1]))

from conftest import image_dataset

from .harness import (
    Case,
    CliRefusal,
    cli,
    leaves_nothing,
    photos,
    small,
    within_class_permutation,
)


def probe_cases() -> list[Case]:
    from hf_drop.probe import ProbeConfig, ProbeResult, run_probe

    def corrupt(ws, name, content=b'{"config": '):
        folder = ws.copy_of(ws.probe)
        (folder / name).write_bytes(content)
        result = ProbeResult.load(folder)
        result.class_errors  # noqa: B018
        result.score("el2n")

    def corrupt_scores(ws):
        folder = ws.copy_of(ws.probe)
        for arrow in (folder / "scores").glob("*.arrow"):
            arrow.write_bytes(arrow.read_bytes()[:100])
        ProbeResult.load(folder).score("el2n")

    def shifted_index(ws):
        folder = ws.copy_of(ws.probe)
        scores = datasets.load_from_disk(str(ws.probe / "scores"))
        import shutil

        shutil.rmtree(folder / "scores")
        scores.map(lambda r: {"index": 0}).save_to_disk(str(folder / "scores"))
        ProbeResult.load(folder).score("el2n")

    def mixed_sizes(ws):
        import PIL.Image

        def png(size):
            buffer = io.BytesIO()
            PIL.Image.fromarray(np.zeros(size, np.uint8)).save(buffer, format="PNG")
            return {"bytes": buffer.getvalue(), "path": None}

        data = image_dataset([0, 1, 2, 3] * 4, images=[png((8, 8))] * 15 + [png((9, 7))])
        run_probe(data, data, ProbeConfig("test_resnet", epochs=1), ws.new("probe"))

    def empty(ws):
        data = image_dataset([0, 1]).select([])
        run_probe(data, small(), ProbeConfig("test_resnet", epochs=1), ws.new("probe"))

    def digits_cli(ws, *extra, output=None):
        cli("probe", "--dataset", "digits", "--model", "test_resnet", "--epochs", "1",
            *extra, "--output", output or ws.new("probe"))  # fmt: skip

    def other_data_same_folder(ws):
        from hf_drop.data.sources import digits_splits

        splits = digits_splits()
        other = datasets.DatasetDict(
            {"train": within_class_permutation(splits["train"]).flatten_indices(),
             "test": splits["test"]}
        )  # fmt: skip
        path = ws.new("digits-permuted")
        other.save_to_disk(str(path))
        folder = ws.copy_of(ws.probe)
        cli("probe", "--dataset", path, "--model", "test_resnet", "--epochs", "1",
            "--embeddings", "--output", folder)  # fmt: skip

    return [
        Case("probe", "result folder that is empty", lambda ws: ProbeResult.load(ws.new()),
             FileNotFoundError, "no probe result"),
        Case("probe", "truncated probe_config.json",
             lambda ws: corrupt(ws, "probe_config.json"), ValueError, "probe_config.json"),
        Case("probe", "empty class_metrics.json",
             lambda ws: corrupt(ws, "class_metrics.json", b""), ValueError, "class_metrics.json"),
        Case("probe", "corrupted Arrow file of the scores", corrupt_scores, ValueError, "scores"),
        Case("probe", "scores whose index column is all zeros", shifted_index, ValueError,
             "does not name each of the"),
        Case("probe", "--lr nan", lambda ws: digits_cli(ws, "--lr", "nan"), CliRefusal, "lr"),
        Case("probe", "--lr inf", lambda ws: digits_cli(ws, "--lr", "inf"), CliRefusal, "lr"),
        Case("probe", "--seed -1", lambda ws: digits_cli(ws, "--seed", "-1"), CliRefusal, "seed"),
        Case("probe", "--data_fraction 1.5", lambda ws: digits_cli(ws, "--data_fraction", "1.5"),
             CliRefusal, "data_fraction must be a number in (0, 1]"),
        Case("probe", "--data_fraction smaller than one row per class",
             lambda ws: digits_cli(ws, "--data_fraction", "0.001"), CliRefusal,
             "fewer rows than the 10 classes: raise data_fraction"),
        Case("probe", "--epochs 0", lambda ws: digits_cli(ws, "--epochs", "0"), CliRefusal,
             "epochs must be a positive int"),
        Case("probe", "--batch-size 0", lambda ws: digits_cli(ws, "--batch-size", "0"),
             CliRefusal, "batch_size must be a positive int"),
        Case("probe", "--score-epoch beyond the schedule",
             lambda ws: digits_cli(ws, "--score-epoch", "5"), CliRefusal, "score_epoch"),
        Case("probe", "--output onto the user's folder",
             lambda ws: digits_cli(ws, output=ws.user), CliRefusal, "not empty"),
        Case("probe", "--output onto a file",
             lambda ws: digits_cli(ws, output=ws.user / "notes.txt"), CliRefusal, "notes.txt"),
        Case("probe", "--output onto a saved subset",
             lambda ws: digits_cli(ws, output=ws.subset), CliRefusal, "subset"),
        Case("probe", "finished folder rerun on another dataset of the same size",
             other_data_same_folder, CliRefusal, "another dataset"),
        Case("probe", "unknown dataset name", lambda ws: cli(
            "probe", "--dataset", "no/such-dataset", "--model", "test_resnet", "--epochs", "1",
            "--output", ws.new()), CliRefusal, "could not load dataset 'no/such-dataset'"),
        Case("probe", "unknown split", lambda ws: digits_cli(ws, "--split", "dev"), CliRefusal,
             "--split 'dev' is not a split"),
        Case("probe", "unknown image column", lambda ws: digits_cli(ws, "--image-column", "img"),
             CliRefusal, "image column 'img'"),
        Case("probe", "unknown validation split", lambda ws: digits_cli(ws, "--val-split", "val"),
             CliRefusal, "--val-split 'val' is not a split"),
        Case("probe", "unknown model", lambda ws: cli(
            "probe", "--dataset", "digits", "--model", "no_such_model_xyz", "--epochs", "1",
            "--output", ws.new()), CliRefusal, "no_such_model_xyz"),
        Case("probe", "--val-fraction 1.5", lambda ws: digits_cli(ws, "--val-fraction", "1.5"),
             CliRefusal, "fraction must lie strictly between 0 and 1"),
        Case("probe", "a TrainingArguments field the probe cannot honour",
             lambda ws: digits_cli(ws, "--gradient_accumulation_steps", "2"), CliRefusal,
             "the probe trains in its own Accelerate loop and cannot honour them"),
        Case("probe", "--per_device_train_batch_size 0 (transformers' name of --batch-size)",
             lambda ws: digits_cli(ws, "--per_device_train_batch_size", "0"), CliRefusal,
             "batch_size must be a positive int"),
        Case("probe", "--batch-size and --per_device_train_batch_size together",
             lambda ws: digits_cli(ws, "--batch-size", "8", "--per_device_train_batch_size", "8"),
             CliRefusal, "set the same thing: give one of them"),
        Case("probe", "images of different sizes", mixed_sizes, ValueError, "sizes"),
        Case("probe", "photos of many sizes: a short error, no folder left behind",
             lambda ws: leaves_nothing(ws, "probe", photos(ws), "--model", "test_resnet",
                                       "--epochs", "1"), CliRefusal, "pass --image_size HxW"),
        Case("probe", "--image-size 0", lambda ws: digits_cli(ws, "--image-size", "0"),
             CliRefusal, "image_size must be"),
        Case("probe", "an empty training split", empty, ValueError, "empty"),
    ]  # fmt: skip


def prune_cases() -> list[Case]:
    def prune(ws, *extra, output=None):
        cli("prune", "--probe", ws.probe, "--density", "0.5", *extra,
            "--output", output or ws.new("subset"))  # fmt: skip

    def overwrite(ws):
        target = ws.copy_of(ws.subset)
        prune(ws, "--seed", "4", "--overwrite", output=target)
        assert json.loads((target / "pruning.json").read_text())["params"]["seed"] == 4

    def symlinked(ws):
        real = ws.new("real")
        real.mkdir(parents=True)
        link = ws.new("link")
        link.symlink_to(real)
        prune(ws, output=link)
        assert link.is_symlink() and (real / "pruning.json").is_file()

    def hand_errors(ws, errors, *extra):
        cli("prune", "--dataset", "digits", "--class-errors", json.dumps(errors), "--density",
            "0.5", *extra, "--output", ws.new())  # fmt: skip

    def dataset_moved(ws):
        folder = ws.copy_of(ws.probe)
        record = json.loads((folder / "probe_config.json").read_text())
        record["source"].update(name="photos", path=str(ws.root / "moved" / "photos"))
        (folder / "probe_config.json").write_text(json.dumps(record))
        cli("prune", "--probe", folder, "--density", "0.5", "--output", ws.new("subset"))

    return [
        Case("prune", "the probe's local dataset moved: says to pass --dataset",
             dataset_moved, CliRefusal, "Pass --dataset PATH"),
        Case("prune", "--output is the probe folder", lambda ws: prune(ws, output=ws.probe),
             CliRefusal, "probe"),
        Case("prune", "--output is the folder holding the probe and other runs",
             lambda ws: prune(ws, output=ws.probe.parent), CliRefusal, "runs"),
        Case("prune", "--output inside the probe folder",
             lambda ws: prune(ws, output=ws.probe / "inner"), CliRefusal, "probe"),
        Case("prune", "--output is the user's folder", lambda ws: prune(ws, output=ws.user),
             CliRefusal, "not empty"),
        Case("prune", "--output is a previous subset, no --overwrite",
             lambda ws: prune(ws, output=ws.subset), CliRefusal, "--overwrite"),
        Case("prune", "--output is a previous subset, with --overwrite", overwrite),
        Case("prune", "--output is a symlink: written through", symlinked),
        Case("prune", "--strategy-score with --quota drop",
             lambda ws: prune(ws, "--strategy-score", "el2n", "--quota", "drop"), CliRefusal,
             "strategy_scores only applies to quota='strategy'"),
        Case("prune", "--keep k_center without --within", lambda ws: prune(ws, "--keep", "k_center"),
             CliRefusal, "keep='k_center' needs a score"),
        Case("prune", "--keep easy without --within", lambda ws: prune(ws, "--keep", "easy"),
             CliRefusal, "keep='easy' needs a score"),
        Case("prune", "--mode count with --quota proportional",
             lambda ws: prune(ws, "--mode", "count", "--quota", "proportional"), CliRefusal,
             "mode only applies to quota='drop'"),
        Case("prune", "--floor 2", lambda ws: prune(ws, "--floor", "2"), CliRefusal,
             "floor must be a number in [0, 1]"),
        Case("prune", "--floor with --quota drop_paper",
             lambda ws: prune(ws, "--floor", "0.2", "--quota", "drop_paper"), CliRefusal,
             "exactly the paper's Algorithm 1"),
        Case("prune", "--ccs-beta without --keep ccs",
             lambda ws: prune(ws, "--within", "aum", "--ccs-beta", "0.2"), CliRefusal,
             "only apply to keep='ccs'"),
        Case("prune", "--min-per-class with --quota global",
             lambda ws: prune(ws, "--quota", "global", "--min-per-class", "2"), CliRefusal,
             "min_per_class does not apply"),
        Case("prune", "--within an unknown score", lambda ws: prune(ws, "--within", "nope"),
             CliRefusal, "--within 'nope' is not a score"),
        Case("prune", "--density 1.5", lambda ws: prune(ws, "--density", "1.5"), CliRefusal,
             "density"),
        Case("prune", "--seed -1", lambda ws: prune(ws, "--seed", "-1"), CliRefusal,
             "seed must be an int >= 0"),
        Case("prune", "--split with --probe", lambda ws: prune(ws, "--split", "test"), CliRefusal,
             "--split applies to --class-errors"),
        Case("prune", "--with-scores naming an unknown score",
             lambda ws: prune(ws, "--with-scores", "nope"), CliRefusal, "no score ['nope']"),
        Case("prune", "--probe of an unfinished run",
             lambda ws: cli("prune", "--probe", ws.user, "--density", "0.5", "--output", ws.new()),
             CliRefusal, "no probe_config.json"),
        Case("prune", "--class-errors without --dataset",
             lambda ws: cli("prune", "--class-errors", "[0.1]", "--density", "0.5", "--output",
                            ws.new()), CliRefusal, "--class-errors needs --dataset"),
        Case("prune", "--class-errors with too few classes",
             lambda ws: hand_errors(ws, [0.1, 0.2]), CliRefusal, "class_errors has shape (2,)"),
        Case("prune", "--class-errors above 1", lambda ws: hand_errors(ws, [2.0] * 10),
             CliRefusal, "class_errors must lie in [0, 1]"),
        Case("prune", "--class-errors with --with-scores",
             lambda ws: hand_errors(ws, [0.1] * 10, "--with-scores"), CliRefusal,
             "--with-scores needs --probe"),
        Case("prune", "--keep-other-splits with --with-scores",
             lambda ws: prune(ws, "--keep-other-splits", "--with-scores"), CliRefusal,
             "--with-scores adds score columns to the pruned split only"),
        Case("prune", "--keep-other-splits of a slice",
             lambda ws: hand_errors(ws, [0.1] * 10, "--split", "train[:100]",
                                    "--keep-other-splits"),
             CliRefusal, "is not one split of"),
    ]  # fmt: skip
