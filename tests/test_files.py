"""Damaged artifacts (hf_drop.io.files): a clear error naming the file and the fix, never a
JSONDecodeError / ArrowInvalid traceback; and an empty (density 0) subset."""

import shutil

import datasets
import pytest

from hf_drop.cli import main
from hf_drop.io.files import DamagedFileError, load_saved, read_json
from hf_drop.probe import ProbeResult

pytestmark = pytest.mark.slow  # a CLI probe


@pytest.fixture(scope="module")
def probe(tmp_path_factory, digits_probe):
    """A CLI probe of digits (validated on half of its test split: splits.json is written)."""
    root = tmp_path_factory.mktemp("files")
    (root / "probe").symlink_to(digits_probe, target_is_directory=True)
    main(["prune", "--probe", str(root / "probe"), "--density", "0.5",
          "--output", str(root / "subset")])  # fmt: skip
    return root


def _copy(folder, tmp_path):
    target = tmp_path / folder.name
    shutil.copytree(folder, target)
    return target


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_read_json_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "record.json"
    path.write_text('{"a": 1}')
    assert read_json(path, "a record", "write it again") == {"a": 1}
    for text, message in [
        ("", "is empty"),
        ('{"a": [1, 2', "is damaged, not valid JSON"),
        ("[1, 2]", "holds a JSON list, not an object"),
    ]:
        path.write_text(text)
        with pytest.raises(DamagedFileError, match=rf"{path} \(a record\) {message}.*write it"):
            read_json(path, "a record", "write it again")
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DamagedFileError, match=rf"{path} \(a record\) cannot be read"):
        read_json(path, "a record", "write it again")
    with pytest.raises(FileNotFoundError, match=r"nowhere\.json is missing \(a record\)"):
        read_json(tmp_path / "nowhere.json", "a record", "write it again")


@pytest.mark.parametrize(
    "name", ["probe_config.json", "class_metrics.json", "splits.json"], ids=lambda n: n
)
@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_a_damaged_probe_json_file_is_refused_on_load(probe, tmp_path, name, damage):
    folder = _copy(probe / "probe", tmp_path)
    assert (folder / name).exists()
    _truncate(folder / name) if damage == "truncated" else (folder / name).write_text("")
    # Refused by ProbeResult.load itself, before anything uses the result.
    with pytest.raises(DamagedFileError, match=rf"{folder / name} .*run the probe again"):
        ProbeResult.load(folder)


def test_a_damaged_score_table_names_its_arrow_file(probe, tmp_path):
    folder = _copy(probe / "probe", tmp_path)
    (arrow,) = (folder / "scores").glob("*.arrow")
    _truncate(arrow)
    with pytest.raises(
        DamagedFileError, match=rf"{folder / 'scores'} .*its file {arrow.name}.*run the probe again"
    ):
        ProbeResult.load(folder)
    arrow.write_bytes(b"")
    with pytest.raises(DamagedFileError, match=rf"its file {arrow.name}"):
        load_saved(folder / "scores", "scores", "run the probe again")


def test_the_cli_says_which_probe_file_is_damaged(probe, tmp_path, capsys):
    folder = _copy(probe / "probe", tmp_path)
    _truncate(folder / "class_metrics.json")
    with pytest.raises(SystemExit) as exit_info:
        main(["prune", "--probe", str(folder), "--density", "0.5",
              "--output", str(tmp_path / "subset")])  # fmt: skip
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "class_metrics.json" in err and "run the probe again" in err
    assert "Traceback" not in err and not (tmp_path / "subset").exists()


def test_train_names_a_damaged_pruning_json(probe, tmp_path, capsys):
    subset = _copy(probe / "subset", tmp_path)
    _truncate(subset / "pruning.json")
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--dataset", str(subset), "--eval-from-probe", str(probe / "probe"),
              "--model", "test_resnet", "--epochs", "1", "--output", str(tmp_path / "run")])  # fmt: skip
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"{subset / 'pruning.json'}" in err and "run hf-drop prune again" in err


def test_a_density_zero_subset_is_readable_and_train_refuses_it(probe, tmp_path, capsys):
    main(["prune", "--probe", str(probe / "probe"), "--density", "0",
          "--output", str(tmp_path / "empty")])  # fmt: skip
    subset = datasets.load_from_disk(str(tmp_path / "empty"))
    full = datasets.load_from_disk(str(probe / "subset"))
    assert len(subset) == 0 and subset.features == full.features
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--dataset", str(tmp_path / "empty"), "--eval-from-probe",
              str(probe / "probe"), "--model", "test_resnet", "--epochs", "1",
              "--output", str(tmp_path / "run")])  # fmt: skip
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "the training set is empty" in err and "pruned at density 0.0" in err
    assert not (tmp_path / "run").exists()
