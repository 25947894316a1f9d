"""DRoP on streams: each row's fate depends only on the seed, its id and its class, so every
shard, order, shuffle buffer and node decides the same; counts are exact or within the stated
binomial bound; nothing is held per row and no image is decoded."""

import pickle

import datasets
import numpy as np
import pytest
from datasets.distributed import split_dataset_by_node
from hypothesis import given, settings
from hypothesis import strategies as st

from hf_drop import DRoPFilter
from hf_drop.pruning.stream import class_keys, row_keys

NAMES = ["a", "b", "c", "d"]
ERRORS = [0.1, 0.2, 0.3, 0.4]


def labelled(n: int, seed: int = 0, string_ids: bool = False, payload=None) -> datasets.Dataset:
    rng = np.random.default_rng(seed)
    labels = rng.choice(4, n, p=[0.4, 0.3, 0.2, 0.1])
    ids = np.arange(n) * 7 + 3
    columns = {"label": labels, "id": [f"row-{i}" for i in ids] if string_ids else ids}
    features = {
        "label": datasets.ClassLabel(names=NAMES),
        "id": datasets.Value("string" if string_ids else "int64"),
    }
    if payload is not None:
        columns["image"], features["image"] = payload(n), datasets.Image()
    return datasets.Dataset.from_dict(columns, features=datasets.Features(features))


def kept_ids(stream) -> list:
    return sorted(row["id"] for row in stream.select_columns(["id"]))


DATA = labelled(6000)
VIEWS = {
    "8 shards": lambda d: d.to_iterable_dataset(num_shards=8),
    "1 shard": lambda d: d.to_iterable_dataset(num_shards=1),
    "reversed": lambda d: d.select(range(len(d) - 1, -1, -1)).to_iterable_dataset(num_shards=3),
    "shuffled rows": lambda d: d.shuffle(seed=5).to_iterable_dataset(num_shards=4),
    "shuffle buffer": lambda d: d.to_iterable_dataset(num_shards=6).shuffle(
        seed=3, buffer_size=500
    ),
}


@pytest.mark.parametrize("mode", ["approximate", "exact"])
@pytest.mark.parametrize("view", list(VIEWS))
def test_every_order_and_sharding_keeps_the_same_rows(mode, view):
    fitted = DRoPFilter(0.3, class_errors=ERRORS, id_column="id", stream_mode=mode)
    fitted.fit(VIEWS["8 shards"](DATA))
    reference = kept_ids(fitted.apply(VIEWS["8 shards"](DATA)))
    assert kept_ids(fitted.apply(VIEWS[view](DATA))) == reference
    # fitting on another view of the same rows gives the same filter
    refit = DRoPFilter(0.3, class_errors=ERRORS, id_column="id", stream_mode=mode)
    refit.fit(VIEWS[view](DATA))
    assert kept_ids(refit.apply(VIEWS["1 shard"](DATA))) == reference


@pytest.mark.parametrize("mode", ["approximate", "exact"])
@pytest.mark.parametrize("world", [2, 3])
def test_nodes_of_split_dataset_by_node_decide_alone_and_together_keep_the_whole(mode, world):
    stream = DATA.to_iterable_dataset(num_shards=6)
    drop = DRoPFilter(0.5, class_errors=ERRORS, id_column="id", stream_mode=mode).fit(stream)
    whole = kept_ids(drop.apply(stream))
    parts = [
        kept_ids(drop.apply(split_dataset_by_node(stream, rank, world))) for rank in range(world)
    ]
    assert sorted(i for part in parts for i in part) == whole
    # splitting after the filter is the same as before it
    after = [
        kept_ids(split_dataset_by_node(drop.apply(stream), rank, world)) for rank in range(world)
    ]
    assert after == parts


def _counts(drop, stream) -> np.ndarray:
    labels = [row["label"] for row in drop.apply(stream).select_columns(["label"])]
    return np.bincount(labels, minlength=len(drop.classes_))


def test_exact_mode_keeps_exactly_the_quotas_of_the_in_memory_filter():
    stream = DATA.to_iterable_dataset(num_shards=4)
    for density in (0.05, 0.3, 0.77, 1.0):
        drop = DRoPFilter(density, class_errors=ERRORS, id_column="id", stream_mode="exact")
        drop.fit(stream)
        in_memory = DRoPFilter(density, class_errors=ERRORS).fit(DATA)
        assert drop.quotas_.tolist() == in_memory.quotas_.tolist()
        assert _counts(drop, stream).tolist() == drop.quotas_.tolist()


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32), st.floats(0.02, 0.98))
def test_approximate_counts_lie_within_the_stated_binomial_bound(seed, density):
    """The README's bound: |kept - q_k| <= 5 sqrt(q_k (1 - q_k / N_k)) + 1 per class."""
    stream = DATA.to_iterable_dataset(num_shards=2)
    drop = DRoPFilter(density, quota="proportional", id_column="id", seed=seed).fit(stream)
    counts, q, n = _counts(drop, stream), drop.quotas_, drop.class_sizes_
    bound = 5 * np.sqrt(q * (1 - q / n)) + 1
    assert np.all(np.abs(counts - q) <= bound), (counts, q, bound)


def test_seeds_change_the_rows_not_the_counts_of_exact_mode():
    stream = DATA.to_iterable_dataset(num_shards=2)
    runs = [
        DRoPFilter(0.3, class_errors=ERRORS, id_column="id", seed=s, stream_mode="exact").fit(
            stream
        )
        for s in (0, 1)
    ]
    a, b = (kept_ids(drop.apply(stream)) for drop in runs)
    assert len(a) == len(b) and a != b


def test_string_ids_string_labels_and_plain_integer_labels():
    strings = labelled(3000, string_ids=True)
    by_name = strings.cast_column("label", datasets.Value("int64")).map(
        lambda row: {"name": NAMES[row["label"]]}
    )
    by_name = by_name.remove_columns("label").rename_column("name", "label")
    plain = strings.cast_column("label", datasets.Value("int64"))
    results = []
    for data in (strings, by_name, plain):
        stream = data.to_iterable_dataset(num_shards=3)
        drop = DRoPFilter(0.4, class_errors=ERRORS, id_column="id", stream_mode="exact")
        drop.fit(stream)
        results.append((drop.quotas_.tolist(), kept_ids(drop.apply(stream.shuffle(seed=1)))))
        assert drop.classes_ == (NAMES if data is not plain else ["0", "1", "2", "3"])
    assert results[0] == results[1] == results[2]


def test_class_sizes_fit_reads_nothing():
    reads = []

    def rows():
        reads.append(1)
        yield from DATA

    stream = datasets.IterableDataset.from_generator(rows, features=DATA.features)
    sizes = dict(zip(NAMES, np.bincount(DATA["label"], minlength=4).tolist(), strict=True))
    drop = DRoPFilter(0.3, class_errors=ERRORS, id_column="id", class_sizes=sizes).fit(stream)
    assert reads == []
    counted = DRoPFilter(0.3, class_errors=ERRORS, id_column="id").fit(DATA.to_iterable_dataset())
    assert drop.quotas_.tolist() == counted.quotas_.tolist()
    assert kept_ids(drop.apply(stream)) == kept_ids(counted.apply(DATA.to_iterable_dataset()))


def test_memory_is_per_class_not_per_row():
    small, large = labelled(1000), labelled(50_000)
    sizes = []
    for data in (small, large):
        drop = DRoPFilter(0.3, class_errors=ERRORS, id_column="id", stream_mode="exact")
        drop.fit(data.to_iterable_dataset(num_shards=2))
        sizes.append(len(pickle.dumps(drop.rows_)))
    assert sizes[0] == sizes[1]


def test_images_are_never_decoded(undecodable):
    data = undecodable.add_column("id", list(range(len(undecodable))))
    stream = data.to_iterable_dataset(num_shards=2)
    for mode in ("approximate", "exact"):
        drop = DRoPFilter(0.5, class_errors=ERRORS, id_column="id", stream_mode=mode).fit(stream)
        assert len(kept_ids(drop.apply(stream))) > 0  # would raise if an image were decoded


def test_the_output_keeps_the_stream_format_and_columns():
    stream = DATA.to_iterable_dataset(num_shards=2)
    drop = DRoPFilter(0.3, class_errors=ERRORS, id_column="id").fit(stream)
    row = next(iter(drop.apply(stream)))
    assert set(row) == {"label", "id"} and isinstance(row["label"], int)
    table = next(iter(drop.apply(stream.with_format("numpy")).iter(batch_size=4)))
    assert isinstance(table["id"], np.ndarray)


def test_a_stream_fitted_filter_gives_the_same_rows_in_memory_and_through_dataset_filter():
    stream = DATA.to_iterable_dataset(num_shards=3)
    drop = DRoPFilter(0.3, class_errors=ERRORS, id_column="id", stream_mode="exact").fit(stream)
    expected = kept_ids(drop.apply(stream))
    assert sorted(drop.apply(DATA)["id"]) == expected
    filtered = DATA.shuffle(seed=2).filter(drop, input_columns=drop.input_columns, batched=True)
    assert sorted(filtered["id"]) == expected


def test_a_dataset_fitted_filter_applies_to_a_stream_of_the_same_rows():
    drop = DRoPFilter(0.3, class_errors=ERRORS, id_column="id").fit(DATA)
    expected = sorted(drop.apply(DATA)["id"])
    assert kept_ids(drop.apply(DATA.shuffle(seed=4).to_iterable_dataset(num_shards=5))) == expected
    other = labelled(6000, seed=9)  # same ids, other labels
    with pytest.raises(ValueError, match="label"):
        kept_ids(drop.apply(other.to_iterable_dataset()))
    positional = DRoPFilter(0.3, class_errors=ERRORS).fit(DATA)
    with pytest.raises(ValueError, match="by position"):
        positional.apply(DATA.to_iterable_dataset())


def test_keys_depend_on_seed_class_and_id_only():
    import pyarrow as pa

    ids = pa.array([5, 6, 7])
    first = row_keys(ids, np.array([0, 1, 2]), class_keys(3, 3))
    assert np.array_equal(first, row_keys(ids, np.array([0, 1, 2]), class_keys(3, 3)))
    assert not np.any(first == row_keys(ids, np.array([1, 2, 0]), class_keys(3, 3)))
    assert not np.any(first == row_keys(ids, np.array([0, 1, 2]), class_keys(4, 3)))
    # uniform: the top bit splits 100k keys evenly
    many = row_keys(pa.array(np.arange(100_000)), np.zeros(100_000, np.int64), class_keys(0, 1))
    assert abs(int((many >> np.uint64(63)).sum()) - 50_000) < 1_000


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "needs id_column"),
        ({"id_column": "id", "within": "x", "keep": "hard"}, "pruned at random within each class"),
        ({"id_column": "id", "quota": "strategy", "strategy_scores": "x"}, "at random"),
        ({"id_column": "id", "stream_mode": "fast"}, "stream_mode must be one of"),
        ({"id_column": "nope"}, r"no column\(s\) \['nope'\]"),
        ({"id_column": "id", "class_sizes": [1, 2]}, "class_sizes has shape"),
    ],
)
def test_streams_refuse_what_they_cannot_do(options, message):
    data = DATA.add_column("x", np.zeros(len(DATA)))
    with pytest.raises(ValueError, match=message):
        DRoPFilter(0.3, class_errors=ERRORS, **options).fit(data.to_iterable_dataset())


def test_stream_options_are_refused_for_a_dataset():
    with pytest.raises(ValueError, match="stream_mode applies to a stream"):
        DRoPFilter(0.3, class_errors=ERRORS, stream_mode="exact").fit(DATA)
    with pytest.raises(ValueError, match="class_sizes applies to a stream"):
        DRoPFilter(0.3, class_errors=ERRORS, class_sizes=[1, 2, 3, 4]).fit(DATA)


def test_a_stream_with_unknown_labels_is_refused_while_streaming():
    drop = DRoPFilter(0.3, class_errors=ERRORS, id_column="id").fit(DATA.to_iterable_dataset())
    wider = DATA.cast_column("label", datasets.ClassLabel(names=[*NAMES, "e"]))
    wider = wider.map(lambda row, i: {"label": 4 if i == 10 else row["label"]}, with_indices=True)
    with pytest.raises(ValueError, match=r"labels \[4\] that are not classes"):
        kept_ids(drop.apply(wider.to_iterable_dataset()))


def test_a_probe_filter_refuses_a_stream_of_another_size():
    drop = DRoPFilter(0.3, class_errors=ERRORS, id_column="id", source={"num_rows": 5999})
    with pytest.raises(ValueError, match="holds 6000 rows"):
        drop.fit(DATA.to_iterable_dataset())
