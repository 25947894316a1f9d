"""Building blocks for a user's own Trainer script (hf_drop.modeling.transforms)."""

import pickle

import numpy as np
import pytest
import torch
from transformers import Trainer, TrainingArguments

from hf_drop.data.sources import digits_splits
from hf_drop.evaluation.metrics import trainer_compute_metrics
from hf_drop.modeling.images import ImageBatches
from hf_drop.modeling.models import Preprocess, build_model
from hf_drop.modeling.transforms import collate_images, image_transform


@pytest.fixture(scope="module")
def digits():
    splits = digits_splits()
    return splits["train"].select(range(32)), splits["test"].select(range(16))


@pytest.fixture(scope="module")
def built():
    """test_resnet as hf-drop train builds it: a transformers model for grayscale digits."""
    names = [str(d) for d in range(10)]
    return build_model("test_resnet", 10, 1, class_names=names, as_transformers=True)


def probe_batch(dataset, preprocess, rows):
    labels = np.array(dataset["label"][:])
    return ImageBatches(dataset, "image", labels, preprocess).__getitems__(rows)


def test_the_transform_gives_the_probes_tensors_for_the_same_rows(digits, built):
    train, _ = digits
    classifier, preprocess, _ = built
    transform = image_transform(classifier.model)
    assert transform.preprocess == preprocess
    rows = [0, 5, 31, 7]
    batch = collate_images([train.with_transform(transform)[i] for i in rows])
    expected = probe_batch(train, preprocess, rows)
    assert torch.equal(batch["pixel_values"], expected["pixel_values"])
    assert torch.equal(batch["labels"], expected["labels"])
    assert batch["pixel_values"].dtype == torch.float32 and batch["labels"].dtype == torch.int64


def test_a_resizing_preprocess_gives_the_probes_tensors_too(digits):
    train, _ = digits
    preprocess = Preprocess(
        3, (16, 16), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), interpolation="bicubic"
    )
    batch = train.with_transform(image_transform(preprocess))[:5]
    expected = probe_batch(train, preprocess, list(range(5)))
    assert torch.equal(torch.stack(batch["pixel_values"]), expected["pixel_values"])
    assert expected["pixel_values"].shape == (5, 3, 16, 16)


def test_a_name_resolves_as_build_model_does(built):
    _, preprocess, _ = built
    assert image_transform("test_resnet", channels=1).preprocess == preprocess
    pretrained = image_transform("test_resnet", pretrained=True).preprocess
    assert pretrained.source == "timm data config" and pretrained.image_size == (160, 160)
    # Pretrained weights take RGB whatever the images, as in build_model: grayscale is converted.
    assert image_transform("test_resnet", channels=1, pretrained=True).preprocess == pretrained
    with pytest.raises(ValueError, match="channels goes with a model name only"):
        image_transform(built[0], channels=3)
    with pytest.raises(ValueError, match="not a Preprocess"):
        image_transform(preprocess, channels=1)
    with pytest.raises(ValueError, match="unknown model 'no_such_model'"):
        image_transform("no_such_model")


def test_a_transformers_checkpoint_brings_its_image_processor(tmp_path):
    from transformers import (
        AutoModelForImageClassification,
        ResNetConfig,
        ResNetForImageClassification,
        ViTImageProcessor,
    )

    config = ResNetConfig(embedding_size=8, hidden_sizes=[8], depths=[1], num_labels=3)
    ResNetForImageClassification(config).save_pretrained(tmp_path)
    size, mean, std = {"height": 12, "width": 12}, [0.1, 0.2, 0.3], [0.4, 0.5, 0.6]
    ViTImageProcessor(size=size, image_mean=mean, image_std=std).save_pretrained(tmp_path)
    _, preprocess, _ = build_model(str(tmp_path), 3, 3)
    assert preprocess.source == "image processor" and preprocess.image_size == (12, 12)
    model = AutoModelForImageClassification.from_pretrained(tmp_path)
    assert image_transform(model).preprocess == preprocess
    assert image_transform(str(tmp_path)).preprocess == preprocess


@pytest.mark.slow
def test_a_user_trainer_script_runs_on_the_public_blocks_alone(digits, built, tmp_path):
    train, test = digits
    classifier, _, _ = built
    model = classifier.model
    names = train.features["label"].names
    transform = image_transform(model)
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=8,
        learning_rate=0.05,
        save_strategy="no",
        report_to="none",
        remove_unused_columns=False,  # the transform reads the image column
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train.with_transform(image_transform(model, augment=True)),
        eval_dataset=test.with_transform(transform),
        data_collator=collate_images,
        compute_metrics=trainer_compute_metrics(names),
    )
    trainer.train()
    metrics = trainer.evaluate()
    assert trainer.state.global_step == 2
    assert {"eval_accuracy", "eval_worst_class_accuracy", "eval_best_minus_worst"} <= set(metrics)
    present = {names[k] for k in set(test["label"])}
    assert {k for k in metrics if k.startswith("eval_class_accuracy/")} == {
        f"eval_class_accuracy/{n}" for n in present
    }
    assert all(isinstance(value, float) for value in metrics.values())


def test_missing_columns_and_string_labels_are_clear_errors(built):
    transform = image_transform(built[1])
    with pytest.raises(
        ValueError, match=r"image_column 'image' is not in the batch.*remove_unused"
    ):
        transform({"label": [0]})
    from PIL import Image

    image = Image.new("L", (8, 8))
    with pytest.raises(ValueError, match=r"class ids, got 'cat'.*class_encode_column\('label'\)"):
        transform({"image": [image], "label": ["cat"]})
    unlabelled = image_transform(built[1], label_column=None)({"image": [image]})
    assert set(unlabelled) == {"pixel_values"}


def test_collate_refuses_images_of_different_shapes():
    rows = [{"pixel_values": torch.zeros(1, 8, 8)}, {"pixel_values": torch.zeros(1, 9, 9)}]
    with pytest.raises(ValueError, match=r"different shapes in one batch.*row 1"):
        collate_images(rows)
    assert set(collate_images(rows[:1])) == {"pixel_values"}


def test_the_transform_pickles_for_dataloader_workers(built):
    transform = image_transform(built[1], augment=True)
    assert pickle.loads(pickle.dumps(transform)) == transform


def test_the_cifar_vgg_is_the_papers_network():
    """VGG-16/19 with bias-free 3x3 convolutions, batch norm (momentum 0.01) and one linear layer
    from 512 channels: 14.7M and 20.1M parameters (counted by hand: 9 c_in c_out per convolution, 2 c per batch norm, 512 k + k for the head), against 138M for timm's ImageNet vgg16_bn."""
    import timm
    import torch

    for name, classes, params in (
        ("vgg16_bn_cifar", 10, 14_724_042),
        ("vgg19_bn_cifar", 100, 20_081_188),
    ):
        built = build_model(name, num_classes=classes, image_channels=3)[0]
        assert sum(p.numel() for p in built.parameters()) == params
        assert built.head.in_features == 512 and built.head.out_features == classes
        convs = [m for m in built.modules() if isinstance(m, torch.nn.Conv2d)]
        assert len(convs) == int(name[3:5]) - 3 and all(c.bias is None for c in convs)
        norms = [m for m in built.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert {m.momentum for m in norms} == {0.01}
        assert built(torch.zeros(2, 3, 32, 32)).shape == (2, classes)
    with pytest.raises(ValueError, match="no pretrained weights"):
        timm.create_model("vgg16_bn_cifar", pretrained=True)
