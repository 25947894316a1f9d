"""Specification of the probe run and its result (hf_drop.probe), on real digits."""

import json

import datasets
import numpy as np
import pytest
import torch

from hf_drop import DRoPFilter
from hf_drop.data.columns import read_labels
from hf_drop.data.sources import digits_splits
from hf_drop.modeling.images import ImageBatches, loader
from hf_drop.modeling.models import build_model
from hf_drop.probe import ProbeConfig, ProbeResult, run_probe
from hf_drop.probe.dynamics import Dynamics
from hf_drop.probe.run import _full_grand

pytestmark = pytest.mark.slow  # probe runs

CONFIG = ProbeConfig(model="test_resnet", epochs=3, batch_size=64, full_grand=True, embeddings=True)


@pytest.fixture(scope="module")
def digits_data():
    return digits_splits()


@pytest.fixture(scope="module")
def result(digits_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("probe")
    return run_probe(
        digits_data["train"], digits_data["test"], CONFIG, folder, source={"name": "digits"}
    )


def test_the_result_holds_every_score_for_every_training_sample(result, digits_data):
    train = digits_data["train"]
    scores = result.scores
    assert len(scores) == len(train)
    assert scores["index"][:] == list(range(len(train)))
    assert scores["label"][:] == train["label"][:]
    expected = {
        "loss",
        "el2n",
        "grand",
        "grand_full",
        "forgetting",
        "aum",
        "dynamic_uncertainty",
        "margin",
        "entropy",
    }
    assert set(result.score_names) == expected
    for name in expected:
        assert np.all(np.isfinite(result.score(name))), name
    embedding = result.score("embedding")
    assert embedding.shape[0] == len(train) and embedding.dtype == np.float16


def test_embeddings_of_the_first_initialisation_survive_the_next(digits_data, tmp_path):
    config = ProbeConfig(model="test_resnet", epochs=1, num_inits=2, embeddings=True)
    result = run_probe(digits_data["train"], digits_data["test"], config, tmp_path)
    embedding = result.score("embedding")
    assert embedding.shape[0] == 1437 and np.abs(embedding).sum() > 0
    assert len(result.class_metrics["accuracy_by_epoch"]) == 2


def test_class_metrics_give_recall_by_epoch_and_the_errors_used(result, digits_data):
    test_labels = np.array(digits_data["test"]["label"][:])
    classes = result.class_metrics["classes"]
    assert [c["name"] for c in classes] == [str(d) for d in range(10)]
    assert [c["support"] for c in classes] == np.bincount(test_labels).tolist()
    for c in classes:
        assert len(c["recall_by_epoch"]) == 1 and len(c["recall_by_epoch"][0]) == 3
        assert c["recall"] == pytest.approx(c["recall_by_epoch"][0][-1])
        assert c["error"] == pytest.approx(1 - c["recall"])
    assert result.class_errors.shape == (10,)


def test_class_metrics_record_the_mistakes_behind_each_error(result, digits_data):
    classes = result.class_metrics["classes"]
    for c in classes:
        hits = round(c["recall_by_epoch"][0][-1] * c["support"])
        assert c["mistakes_by_init"] == [c["support"] - hits]
        assert c["mistakes"] == sum(c["mistakes_by_init"])
        assert c["support_total"] == c["support"] * CONFIG.num_inits
    table = result.class_table()
    assert list(table.columns) == [
        "name",
        "train_size",
        "support",
        "mistakes",
        "error",
        "error_low",
        "error_high",
    ]
    assert table["support"].sum() == len(digits_data["test"])
    assert table["train_size"].sum() == len(digits_data["train"])
    support_total = np.array([c["support_total"] for c in classes])
    np.testing.assert_allclose(table["error"], table["mistakes"] / support_total)
    np.testing.assert_allclose(table["error"], result.class_errors)
    assert (table["error_low"] <= table["error"]).all()
    assert (table["error"] <= table["error_high"]).all()


def test_the_config_records_model_source_processes_and_versions(result, digits_data):
    record = json.loads((result.folder / "probe_config.json").read_text())
    train = digits_data["train"]
    assert record["config"]["model"] == "test_resnet" and record["config"]["epochs"] == 3
    assert record["config"]["resolved_score_epoch"] == 0
    assert record["model"]["kind"] == "timm" and record["processes"] == 1
    assert record["source"]["name"] == "digits"
    assert record["source"]["fingerprint"] == train._fingerprint
    assert record["source"]["num_rows"] == len(train)
    assert record["source"]["label_hash"] == read_labels(train, "label").hash
    assert {"hf_drop", "torch", "accelerate", "datasets", "timm"} <= set(record["versions"])
    assert record["versions"]["torch"] == torch.__version__  # with its build tag
    assert record["machine"]["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert record["machine"]["cpu"] and record["machine"]["cpu_count"] >= 1
    assert not (result.folder / "checkpoints").exists(), "checkpoints go once the result is whole"


def test_running_again_returns_the_finished_result(result, digits_data):
    again = run_probe(digits_data["train"], digits_data["test"], CONFIG, result.folder)
    assert np.array_equal(again.score("loss"), result.score("loss"))
    with pytest.raises(ValueError, match="another configuration"):
        run_probe(
            digits_data["train"],
            digits_data["test"],
            ProbeConfig(model="test_resnet", epochs=2),
            result.folder,
        )


def test_from_probe_prunes_with_the_probes_errors_and_scores(result, digits_data):
    train = digits_data["train"]
    drop = DRoPFilter.from_probe(result, 0.5, min_per_class=5).fit(train)
    assert drop.class_errors_.tolist() == pytest.approx(result.class_errors.tolist())
    # The probe's validation support comes along, so the robust default shrinks the errors.
    assert drop.method == "Random+DRoP(saturating, floor 0.5, shrunk)"
    assert drop.class_support_.tolist() == result.class_errors_with_support.support.tolist()
    paper = DRoPFilter.from_probe(result, 0.5, quota="drop_paper", min_per_class=5).fit(train)
    assert paper.method == "Random+DRoP(paper)"
    assert paper.class_errors_used_.tolist() == paper.class_errors_.tolist()
    hard = DRoPFilter.from_probe(result.folder, 0.5, within="el2n", min_per_class=5).fit(train)
    assert hard.method == "el2n+DRoP(saturating, floor 0.5, shrunk)"
    el2n, labels = result.score("el2n"), np.array(train["label"][:])
    kept = np.zeros(len(train), bool)
    kept[hard.indices_] = True
    for k in range(10):
        if kept[labels == k].any() and (~kept[labels == k]).any():
            assert el2n[kept & (labels == k)].min() >= el2n[~kept & (labels == k)].max()
    # AUM is "higher is easier": keep="hard" keeps the lowest AUM.
    aum = DRoPFilter.from_probe(result, 0.5, within="aum", quota="proportional").fit(train)
    a = result.score("aum")
    assert a[aum.indices_].mean() < a.mean()
    strategyq = DRoPFilter.from_probe(result, 0.5, strategy_score="el2n").fit(train)
    assert strategyq.method == "Random+StrategyQ(el2n)"


def test_from_probe_refuses_a_dataset_the_probe_did_not_see(result, digits_data):
    other = digits_data["train"].select(range(100))
    with pytest.raises(
        ValueError, match=r"come from another dataset: this one has 100 rows instead of 1437"
    ):
        DRoPFilter.from_probe(result, 0.5, min_per_class=1).fit(other)


def test_scores_become_columns_that_the_filter_reads_by_name(result, digits_data):
    train = digits_data["train"]
    columns_before = list(train.column_names)
    scored = result.add_scores(train)
    assert train.column_names == columns_before, "the source is not modified"
    assert scored.column_names == [*columns_before, "row_id"] + [
        c for c in result.scores.column_names if c not in ("index", "label")
    ]
    assert scored["row_id"][:] == list(range(len(train))), "the probe's row index, as an id"
    assert np.array_equal(np.array(scored["label"][:]), np.array(train["label"][:]))
    for name in ("el2n", "aum", "forgetting"):
        assert np.array_equal(np.array(scored[name][:]), result.score(name))
    assert np.array(scored["embedding"][:]).shape == result.score("embedding").shape

    # By column name, the same subsets as from_probe: EL2N+DRoP, and AUM (higher is easier).
    errors = result.class_errors
    support = result.class_errors_with_support.support
    by_column = DRoPFilter(
        0.5, class_errors=errors, class_support=support, within="el2n", min_per_class=5
    ).fit(scored)
    by_probe = DRoPFilter.from_probe(result, 0.5, within="el2n", min_per_class=5).fit(train)
    assert np.array_equal(by_column.indices_, by_probe.indices_)
    lowest_aum = DRoPFilter(0.5, within="aum", keep="easy", quota="proportional").fit(scored)
    hardest = DRoPFilter.from_probe(result, 0.5, within="aum", quota="proportional").fit(train)
    assert np.array_equal(lowest_aum.indices_, hardest.indices_)
    centers = DRoPFilter(
        0.3, class_errors=errors, within="embedding", keep="k_center", min_per_class=5
    ).fit(scored)
    assert len(centers.indices_) == round(0.3 * len(train))

    # Scores travel with the rows through select.
    subset = by_column.apply(scored)
    assert np.array_equal(np.array(subset["el2n"][:]), result.score("el2n")[by_column.indices_])


def test_add_scores_refuses_bad_input(result, digits_data):
    train = digits_data["train"]
    only = result.add_scores(train, ["el2n"], prefix="probe_")
    assert only.column_names == [*train.column_names, "row_id", "probe_el2n"]
    with pytest.raises(ValueError, match=r"names: no score \['nope'\]"):
        result.add_scores(train, ["el2n", "nope"])
    with pytest.raises(ValueError, match=r"already has columns \['probe_el2n'\]"):
        result.add_scores(only, ["el2n"], prefix="probe_", id_column=None)
    with pytest.raises(
        ValueError, match=r"saw another dataset: this one has 1436 rows instead of 1437"
    ):
        result.add_scores(train.select(range(1436)))
    with pytest.raises(ValueError, match="label hash"):
        result.add_scores(train.shuffle(seed=0))
    # A permutation within classes keeps the label hash; the content digest sees it.
    labels = np.array(train["label"][:])
    within = np.arange(len(train))
    for k in np.unique(labels):
        rows = np.flatnonzero(labels == k)
        within[rows] = np.random.default_rng(k).permutation(rows)
    with pytest.raises(ValueError, match=r"other values in column\(s\) \['image'\]"):
        result.add_scores(train.select(within))


def test_full_grand_equals_a_per_sample_autograd_loop(digits_data):
    from accelerate import Accelerator

    torch.manual_seed(0)
    model, preprocess, _ = build_model("test_resnet", 10, 1)
    subset = digits_data["train"].select(range(12))
    ids = np.array(subset["label"][:])
    batches = loader(ImageBatches(subset, "image", ids, preprocess), 5, shuffle=False)
    dynamics = Dynamics(12, 1, 0, 1)
    _full_grand(Accelerator(), model, batches, dynamics, chunk=2)
    model.eval()
    for i in range(12):
        batch = batches.dataset[i]
        loss = torch.nn.functional.cross_entropy(model(batch["pixel_values"]), batch["labels"])
        grads = torch.autograd.grad(loss, list(model.parameters()))
        expected = torch.sqrt(sum(g.pow(2).sum() for g in grads)).item()
        assert dynamics.arrays["grand_full"][i] == pytest.approx(expected, rel=1e-4)


# --- bad input, before any training -----------------------------------------------------------


def test_bad_inputs_fail_before_training(digits_data, tmp_path):
    train, test = digits_data["train"], digits_data["test"]
    cases = [
        (train.rename_column("label", "y"), test, {}, "label_column 'label' is not a column"),
        (train, test, {"image_column": "pixels"}, "image column 'pixels' is not a column"),
        (
            train.cast_column("label", datasets.Value("int64")).map(
                lambda r: {"image": 0},
                features=datasets.Features(
                    {"image": datasets.Value("int64"), "label": datasets.Value("int64")}
                ),
            ),
            test,
            {},
            "must be an Image column",
        ),
        (train.select([]), test, {}, "the train split is empty"),
        (
            train.filter(lambda r: r["label"] != 3),
            test,
            {},
            r"validation classes \['3'\] do not occur",
        ),
        (train, test, {"model": "no_such_net"}, "unknown model 'no_such_net'"),
    ]
    for i, (tr, va, overrides, message) in enumerate(cases):
        config = ProbeConfig(**{"model": "test_resnet", "epochs": 1, **overrides})
        with pytest.raises(ValueError, match=message):
            run_probe(tr, va, config, tmp_path / str(i))
        assert not (tmp_path / str(i) / "checkpoints").exists(), "nothing was trained"


def test_config_values_are_checked():
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        ProbeConfig(model="x", epochs=0)
    with pytest.raises(ValueError, match="score_epoch must lie in"):
        ProbeConfig(model="x", epochs=3, score_epoch=3)
    assert ProbeConfig(model="x", epochs=20).resolved_score_epoch == 2
    assert ProbeConfig(model="x", epochs=1).resolved_score_epoch == 0


def test_an_unfinished_result_is_not_loaded(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(FileNotFoundError, match="unfinished probe run"):
        ProbeResult.load(tmp_path)


# --- models -----------------------------------------------------------------------------------


def test_a_local_transformers_folder_builds_with_or_without_weights(tmp_path):
    from transformers import ResNetConfig, ResNetForImageClassification

    config = ResNetConfig(
        num_channels=1, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_labels=3
    )
    ResNetForImageClassification(config).save_pretrained(tmp_path / "weights")
    config.save_pretrained(tmp_path / "config_only")
    for folder in ("weights", "config_only"):
        model, preprocess, spec = build_model(str(tmp_path / folder), 10, 1)
        assert spec.kind == "transformers" and spec.pretrained == (folder == "weights")
        assert model(torch.zeros(2, 1, 16, 16)).shape == (2, 10)
        assert model.head.out_features == 10 and preprocess.channels == 1


def rgb_dataset(n: int, seed: int) -> datasets.Dataset:
    """Coloured 12x12 images whose class is the dominant channel: learnable, and RGB."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    images = rng.integers(0, 60, (n, 12, 12, 3), dtype=np.uint8)
    images[np.arange(n), :, :, labels] += 180
    return datasets.Dataset.from_dict(
        {"image": list(images), "label": labels.tolist()},
        features=datasets.Features(
            {"image": datasets.Image(), "label": datasets.ClassLabel(names=["r", "g", "b"])}
        ),
    )


def test_a_transformers_model_probes_rgb_images(tmp_path):
    from transformers import ResNetConfig

    ResNetConfig(
        num_channels=3, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1]
    ).save_pretrained(tmp_path / "model")
    config = ProbeConfig(model=str(tmp_path / "model"), epochs=3, batch_size=16, lr=0.1)
    result = run_probe(rgb_dataset(96, 0), rgb_dataset(30, 1), config, tmp_path / "run")
    assert result.record["model"]["kind"] == "transformers"
    assert np.all(np.isfinite(result.score("grand")))
    assert result.class_metrics["accuracy_by_epoch"][0][-1] > 0.6, "it learns from colour"


def test_a_timm_model_follows_the_data_channels():
    model, preprocess, spec = build_model("test_resnet", 7, 1)
    assert spec.kind == "timm" and preprocess.channels == 1 and preprocess.image_size is None
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 7)


def test_an_unknown_model_lists_what_was_tried():
    with pytest.raises(ValueError, match=r"not a local folder; not a timm architecture.*org/name"):
        build_model("definitely_not_a_model", 10, 1)


def test_a_probe_on_a_fraction_of_the_rows_sets_the_quotas_of_all_of_them(digits_data, tmp_path):
    """``data_fraction``: the probe trains on a stratified sample (its cost), measures class
    errors on the whole validation split, and prunes the whole training set at random within
    each class; anything that would rank rows by its partial scores is refused, with why."""
    from dataclasses import replace

    from hf_drop.core.quotas import budget
    from hf_drop.probe.run import _sample

    train, val = digits_data["train"], digits_data["test"]
    config = ProbeConfig(model="test_resnet", epochs=2, batch_size=64, data_fraction=0.25, seed=3)
    result = run_probe(train, val, config, tmp_path / "cheap", source={"name": "digits"})
    labels = np.array(train["label"][:])
    index = np.array(result.scores["index"][:])
    n = budget(len(train), 0.25)
    assert len(index) == len(set(index.tolist())) == n == result.record["trained_rows"]
    assert np.array_equal(np.sort(index), _sample(labels, config))  # the sample, by its seed
    assert result.scores["label"][:] == labels[index].tolist()
    sizes, counts = np.bincount(labels), np.bincount(labels[index], minlength=10)
    assert np.all(np.abs(counts - 0.25 * sizes) < 1)  # the class proportions
    assert result.record["batch"]["steps_per_epoch"] == -(-n // 64)  # a quarter of the steps
    assert result.source["num_rows"] == len(train)  # it identifies the set it prunes
    assert result.data_fraction == 0.25
    assert int(result.class_errors_with_support.support.sum()) == len(val)

    drop = DRoPFilter.from_probe(result, 0.5, min_per_class=5).fit(train)
    assert len(drop.indices_) == budget(len(train), 0.5)
    assert drop.class_errors_.tolist() == pytest.approx(result.class_errors.tolist())
    refusals = [
        lambda: DRoPFilter.from_probe(result, 0.5, within="el2n"),
        lambda: DRoPFilter.from_probe(result, 0.5, strategy_score="forgetting"),
        lambda: result.add_scores(train),
        lambda: result.score("aum"),
    ]
    for refused in refusals:
        with pytest.raises(ValueError, match=rf"trained on {n} of the 1437 training rows"):
            refused()
    with pytest.raises(ValueError, match="come from another dataset"):
        DRoPFilter.from_probe(result, 0.5).fit(train.select(np.sort(index)))
    # its scores exported: the rows it trained on, and a card that says they are a sample
    from hf_drop.hub import export_scores

    folder = export_scores(result, tmp_path / "scores")
    exported = datasets.load_dataset(str(folder), split="train")
    assert sorted(exported["index"]) == sorted(index.tolist())
    card = (folder / "README.md").read_text()
    assert f"{n} of its 1437 rows (`data_fraction` 0.25)" in card
    assert "One row per training sample" not in card and "within=" not in card
    assert run_probe(train, val, config, tmp_path / "cheap").folder == result.folder
    with pytest.raises(ValueError, match="another configuration"):
        run_probe(train, val, replace(config, data_fraction=1.0), tmp_path / "cheap")


@pytest.mark.parametrize("seed", range(20))
def test_the_probes_sample_keeps_the_class_proportions_and_every_class(seed):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 60, size=rng.integers(2, 12))
    labels = rng.permutation(np.repeat(np.arange(len(sizes)), sizes))
    fraction = float(rng.uniform(0.05, 1.0))
    config = ProbeConfig(model="x", data_fraction=fraction, seed=seed)
    from hf_drop.core.quotas import budget
    from hf_drop.probe.run import _sample

    if budget(len(labels), fraction) < len(sizes):
        with pytest.raises(
            ValueError, match=r"fewer rows than the .* classes: raise data_fraction"
        ):
            _sample(labels, config)
        return
    rows = _sample(labels, config)
    counts = np.bincount(labels[rows], minlength=len(sizes))
    assert len(rows) == len(np.unique(rows)) == budget(len(labels), fraction)
    assert np.all(counts >= 1) and np.all(counts <= sizes)
    assert np.array_equal(rows, _sample(labels, config))  # by its seed


def test_the_probes_sample_size_is_the_budget_rounded_half_up():
    from hf_drop.probe.run import _sample

    # 2.5 rows round half up to 3, one of each class (Python's round() would make it 2, fewer
    # than the classes, and refuse).
    rows = _sample(np.array([0, 0, 1, 1, 2]), ProbeConfig(model="x", data_fraction=0.5))
    assert sorted(np.array([0, 0, 1, 1, 2])[rows].tolist()) == [0, 1, 2]


def test_data_fraction_is_checked():
    for bad in (0, 1.5, -0.1, float("nan"), True, "0.5"):
        with pytest.raises(ValueError, match=r"data_fraction must be a number in \(0, 1\]"):
            ProbeConfig(model="x", data_fraction=bad)
    assert ProbeConfig(model="x").data_fraction == 1.0
