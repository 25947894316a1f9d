"""Identity, not position: a DRoPFilter gives the fitted rows, or refuses; never other rows.

Every way a dataset's rows can move (shuffle, a permutation within classes, sorting, a chained
filter, shards put back together in another order, another dataset of the same size) is tried
against every way of applying a filter (``apply``, ``Dataset.filter`` batched and unbatched,
with and without an id column).
"""

import datasets
import numpy as np
import pytest
from conftest import image_dataset, png_bytes
from hypothesis import given
from hypothesis import strategies as st

from hf_drop import DRoPFilter
from hf_drop.data.columns import check_identity, content_digest, dataset_identity

ERRORS = [0.1, 0.4, 0.2, 0.3]


def _within_class_permutation(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    order = np.arange(len(labels))
    rng = np.random.default_rng(seed)
    for k in np.unique(labels):
        rows = np.flatnonzero(labels == k)
        order[rows] = rng.permutation(rows)
    return order


def _with_ids(data: datasets.Dataset) -> datasets.Dataset:
    return data.add_column("row_id", [f"r{i:05d}" for i in range(len(data))])


def _other_images(data: datasets.Dataset) -> datasets.Dataset:
    """Same length, same labels, other images: another dataset that only content can tell."""
    images = [{"bytes": png_bytes((i * 7 + 3) % 256), "path": None} for i in range(len(data))]
    return image_dataset(data["label"][:], images=images).add_column("el2n", data["el2n"][:])


def _sharded_in_reverse(data: datasets.Dataset) -> datasets.Dataset:
    shards = [data.shard(4, i, contiguous=True) for i in range(4)]
    return datasets.concatenate_datasets(shards[::-1])


# Transformations that move rows: name -> (function, whether the same rows are all still there).
MOVED = {
    "shuffle": (lambda d: d.shuffle(seed=1), True),
    "within_class_permutation": (
        lambda d: d.select(_within_class_permutation(np.array(d["label"][:]))),
        True,
    ),
    "sorted_by_label": (lambda d: d.sort("label"), True),
    "reversed": (lambda d: d.select(range(len(d) - 1, -1, -1)), True),
    "shards_reordered": (_sharded_in_reverse, True),
    "chained_filter": (lambda d: d.filter(lambda row: row["el2n"] > 0.2), False),
    "same_size_other_images": (_other_images, False),
}


@pytest.mark.parametrize("move", MOVED)
def test_apply_refuses_a_dataset_whose_rows_moved(dataset, move):
    drop = DRoPFilter(0.5, class_errors=ERRORS).fit(dataset)
    moved = MOVED[move][0](dataset)
    with pytest.raises(ValueError, match="fitted on another dataset"):
        drop.apply(moved)


@pytest.mark.parametrize("move", [m for m in MOVED if m != "within_class_permutation"])
def test_dataset_filter_refuses_batches_whose_labels_moved(dataset, move):
    """By position, each batch's labels are checked against the fitted rows' labels."""
    drop = DRoPFilter(0.5, class_errors=ERRORS).fit(dataset)
    moved = MOVED[move][0](dataset)
    if move == "same_size_other_images":  # same labels at the same positions: right rows
        kept = moved.filter(drop, with_indices=True, batched=True, input_columns="label")
        assert len(kept) == len(drop.indices_)
        return
    with pytest.raises(ValueError, match="other labels than the fitted rows"):
        moved.filter(drop, with_indices=True, batched=True, input_columns="label")
    with pytest.raises(ValueError, match="other labels than the fitted rows"):
        moved.filter(drop, with_indices=True, batched=False, input_columns="label")


@pytest.mark.parametrize("move", MOVED)
def test_with_an_id_column_the_fitted_rows_are_kept_or_the_dataset_refused(dataset, move):
    data = _with_ids(dataset)
    drop = DRoPFilter(0.5, class_errors=ERRORS, id_column="row_id").fit(data)
    fitted = set(data.select(drop.indices_)["row_id"])
    move_rows, same_rows = MOVED[move]
    moved = move_rows(data) if move != "same_size_other_images" else _with_other_ids(data)
    if not same_rows:
        with pytest.raises(ValueError, match=r"fitted on|other labels|rows this DRoPFilter"):
            drop.apply(moved)
        return
    for subset in (
        drop.apply(moved),
        moved.filter(drop, with_indices=True, batched=True, input_columns=drop.input_columns),
        moved.filter(drop, batched=True, input_columns=drop.input_columns),
        moved.filter(drop, batch_size=7),
    ):
        assert set(subset["row_id"]) == fitted
        # The rows are the fitted rows, images and all, not rows that sit where they sat.
        by_id = {r["row_id"]: r for r in data.select(drop.indices_)}
        for row in subset.select(range(0, len(subset), 9)):
            assert row["image"].tobytes() == by_id[row["row_id"]]["image"].tobytes()


def _with_other_ids(data: datasets.Dataset) -> datasets.Dataset:
    return data.remove_columns("row_id").add_column(
        "row_id", [f"x{i:05d}" for i in range(len(data))]
    )


def test_ids_the_filter_never_saw_are_refused_in_dataset_filter(dataset):
    data = _with_ids(dataset)
    drop = DRoPFilter(0.5, class_errors=ERRORS, id_column="row_id").fit(data)
    with pytest.raises(ValueError, match="id\\(s\\) this DRoPFilter was not fitted on"):
        _with_other_ids(data).filter(drop, batched=True, input_columns=drop.input_columns)


def test_ids_with_other_labels_are_refused(dataset):
    data = _with_ids(dataset)
    drop = DRoPFilter(0.5, class_errors=ERRORS, id_column="row_id").fit(data)
    relabelled = data.map(lambda row: {"label": (row["label"] + 1) % 4})
    with pytest.raises(ValueError, match="other labels than the fitted rows at these ids"):
        drop.apply(relabelled)
    with pytest.raises(ValueError, match="other labels"):
        relabelled.filter(drop, batched=True, input_columns=drop.input_columns)


def test_duplicate_or_missing_ids_are_refused(dataset):
    duplicated = dataset.add_column("row_id", [i // 2 for i in range(len(dataset))])
    with pytest.raises(ValueError, match="id_column 'row_id' has duplicate ids"):
        DRoPFilter(0.5, class_errors=ERRORS, id_column="row_id").fit(duplicated)
    with pytest.raises(ValueError, match="id_column 'rid' is not a column"):
        DRoPFilter(0.5, class_errors=ERRORS, id_column="rid").fit(dataset)
    floats = dataset.add_column("row_id", [i + 0.5 for i in range(len(dataset))])
    with pytest.raises(ValueError, match="must hold int or string ids"):
        DRoPFilter(0.5, class_errors=ERRORS, id_column="row_id").fit(floats)


def test_the_same_rows_by_another_road_are_accepted(dataset, tmp_path):
    """Not a refusal machine: the fitted rows, reloaded or re-viewed, give the fitted subset."""
    drop = DRoPFilter(0.5, class_errors=ERRORS).fit(dataset)
    dataset.save_to_disk(str(tmp_path / "saved"))
    same = {
        "reloaded": datasets.load_from_disk(str(tmp_path / "saved")),
        "identity_select": dataset.select(range(len(dataset))),
        "flattened_indices": dataset.shuffle(seed=3).sort("el2n").flatten_indices(),
        "a_column_removed": dataset.remove_columns("el2n"),
        "a_column_added": dataset.add_column("extra", list(range(len(dataset)))),
    }
    same["flattened_indices"] = dataset.select(range(len(dataset))).flatten_indices()
    expected = dataset.select(drop.indices_)
    for name, data in same.items():
        subset = drop.apply(data)
        assert subset["label"] == expected["label"], name
        assert [im.tobytes() for im in subset["image"]] == [
            im.tobytes() for im in expected["image"]
        ], name


@given(st.permutations(list(range(60))))
def test_any_reordering_is_refused_and_ids_follow_any_reordering(order):
    """Up to 256 rows every row is digested, so any reordering of distinct rows is seen."""
    labels = np.arange(60) % 4
    data = image_dataset(labels).add_column("row_id", list(range(60)))
    moved = data.select(order)
    by_position = DRoPFilter(0.5, quota="proportional", seed=1).fit(data)
    if list(order) == list(range(60)):
        assert by_position.apply(moved)["row_id"] == by_position.indices_.tolist()
    else:
        with pytest.raises(ValueError):
            by_position.apply(moved)
    by_id = DRoPFilter(0.5, quota="proportional", seed=1, id_column="row_id").fit(data)
    assert sorted(by_id.apply(moved)["row_id"]) == by_id.indices_.tolist()


def test_a_large_dataset_permuted_within_classes_is_refused():
    """Above 256 rows the digest samples positions; a permutation moves nearly all of them."""
    labels = np.arange(5000) % 10
    rng = np.random.default_rng(0)
    data = datasets.Dataset.from_dict(
        {"label": labels.tolist(), "pixels": rng.integers(0, 2**31, 5000).tolist()}
    )
    drop = DRoPFilter(0.3, quota="proportional").fit(data)
    moved = data.select(_within_class_permutation(labels))
    assert drop.label_hash_ == DRoPFilter(0.3, quota="proportional").fit(moved).label_hash_
    with pytest.raises(ValueError, match=r"other values in column\(s\) \['pixels'\]"):
        drop.apply(moved)


def test_a_dataset_dict_is_pruned_on_the_fitted_split_only(dataset):
    test = dataset.select(range(120))
    splits = datasets.DatasetDict({"train": dataset, "test": test})
    drop = DRoPFilter(0.5, class_errors=ERRORS).fit(dataset)
    pruned = drop.apply(splits)
    assert len(pruned["train"]) == len(drop.indices_)
    assert pruned["test"] is test, "the other splits are left as they are"
    with pytest.raises(ValueError, match="none of its splits"):
        drop.apply(datasets.DatasetDict({"test": test}))
    with pytest.raises(ValueError, match="several"):
        drop.apply(datasets.DatasetDict({"a": dataset, "b": dataset}))
    # DatasetDict.filter hands the train positions to test: refused, not applied.
    relabelled = datasets.DatasetDict(
        {"train": dataset, "test": dataset.shuffle(seed=2).flatten_indices()}
    )
    with pytest.raises(ValueError, match="other labels than the fitted rows"):
        relabelled.filter(drop, with_indices=True, batched=True, input_columns="label")


def test_filter_arguments_that_cannot_be_checked_are_refused(dataset):
    drop = DRoPFilter(0.5, class_errors=ERRORS).fit(dataset)
    with pytest.raises(TypeError, match="with_indices=True"):
        dataset.filter(drop, batched=True, input_columns="label")
    with pytest.raises(ValueError, match="expects the labels of column 'label'"):
        dataset.filter(drop, with_indices=True, batched=True, input_columns=["el2n"])
    with pytest.raises(ValueError, match="the batch lacks column\\(s\\) \\['label'\\]"):
        dataset.remove_columns("label").filter(drop, with_indices=True, batched=True)
    with_ids = DRoPFilter(0.5, class_errors=ERRORS, id_column="row_id").fit(_with_ids(dataset))
    with pytest.raises(TypeError, match=r"input_columns=\['label', 'row_id'\]"):
        _with_ids(dataset).filter(with_ids, batched=True, input_columns=["label", "row_id", "el2n"])


def test_string_labels_are_checked_in_dataset_filter():
    data = datasets.Dataset.from_dict({"label": ["b", "a", "c", "a"] * 25})
    drop = DRoPFilter(0.5, quota="proportional").fit(data)
    kept = data.filter(drop, with_indices=True, batched=True, input_columns="label")
    assert len(kept) == len(drop.indices_)
    with pytest.raises(ValueError, match="other labels"):
        data.sort("label").filter(drop, with_indices=True, batched=True, input_columns="label")


def test_identity_records_are_json_ready_and_checked(dataset):
    import json

    record = json.loads(json.dumps(dataset_identity(dataset, "label")))
    check_identity(dataset, record, seen="x", fix="y")
    assert content_digest(dataset)["rows"] == len(dataset)
    with pytest.raises(ValueError, match=r"^recorded: .*: refit$"):
        check_identity(dataset.shuffle(seed=0), record, seen="recorded:", fix="refit")


def test_images_are_digested_by_content_not_by_path(tmp_path):
    """The same image files under another folder are the same rows."""
    from PIL import Image

    digests = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        paths = []
        for i in range(3):
            path = tmp_path / folder / f"{i}.png"
            Image.fromarray(np.full((4, 4), i * 50, np.uint8)).save(path)
            paths.append(str(path))
        data = datasets.Dataset.from_dict(
            {"image": paths, "label": [0, 1, 0]},
            features=datasets.Features(
                {"image": datasets.Image(), "label": datasets.ClassLabel(names=["x", "y"])}
            ),
        )
        digests.append(content_digest(data))
    assert digests[0] == digests[1]


def test_a_dataset_without_any_recorded_content_column_cannot_be_verified(dataset):
    """Only labels left: a permutation within classes would pass, so the rows are refused."""
    drop = DRoPFilter(0.5, class_errors=ERRORS).fit(dataset)
    with pytest.raises(ValueError, match="its rows cannot be verified"):
        drop.apply(dataset.remove_columns(["image", "el2n"]))
    assert len(drop.apply(dataset.remove_columns("el2n"))) == len(drop.indices_)
