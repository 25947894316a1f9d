"""Building blocks for your own ``transformers.Trainer`` script: the probe's image transform, as a
``Dataset.with_transform`` callable, and a collator.

::

    from hf_drop.evaluation.metrics import trainer_compute_metrics
    from hf_drop.modeling.transforms import collate_images, image_transform

    train = train.with_transform(image_transform("test_resnet", channels=1))
    trainer = Trainer(model, TrainingArguments(..., remove_unused_columns=False),
                      train_dataset=train, data_collator=collate_images,
                      compute_metrics=trainer_compute_metrics(names))

The pixels are those of the probe and of ``hf-drop train`` for the same model (one code path,
:func:`hf_drop.modeling.images.pixels`); the size and normalisation come from the model's image
processor or timm data config as :func:`hf_drop.modeling.models.preprocess_for` resolves them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral
from typing import Any

import torch
from PIL import Image

from .images import Augment, pixels
from .models import Preprocess, preprocess_for

__all__ = ["ImageTransform", "collate_images", "image_transform"]


@dataclass(frozen=True)
class ImageTransform:
    """A batch of dataset rows -> ``{"pixel_values": [tensor, ...], "labels": [int, ...]}``.

    Made by :func:`image_transform`; picklable, so DataLoader workers can take it.
    """

    preprocess: Preprocess
    image_column: str = "image"
    label_column: str | None = "label"
    augment: bool = False
    _augment: Augment | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_augment", Augment() if self.augment else None)

    def __call__(self, batch: Mapping[str, Sequence[Any]]) -> dict[str, list]:
        images = _column(batch, self.image_column, "image_column")
        out: dict[str, list] = {
            "pixel_values": [
                pixels(_image(x, self.image_column), self.preprocess, self._augment) for x in images
            ]
        }
        if self.label_column is not None:
            labels = _column(batch, self.label_column, "label_column")
            out["labels"] = [_label(y, self.label_column) for y in labels]
        return out


def image_transform(
    model_or_name: str | Preprocess | torch.nn.Module,
    *,
    image_column: str = "image",
    label_column: str | None = "label",
    augment: bool = False,
    channels: int | None = None,
    pretrained: bool = False,
) -> ImageTransform:
    """The transform that turns rows of an image dataset into a model's inputs, for
    ``dataset.with_transform(...)``.

    Args:
        model_or_name: a model name as :func:`hf_drop.modeling.models.build_model` takes it (timm
            architecture, Hub checkpoint id, ``save_pretrained`` folder), a built model (timm,
            transformers, or what ``build_model`` returns), or the
            :class:`~hf_drop.modeling.models.Preprocess` that ``build_model`` returns.
        image_column: the ``datasets.Image`` column.
        label_column: the class-id column (a ``ClassLabel`` or integers), returned as
            ``labels``; None for unlabelled data.
        augment: the probe's light augmentation (random crop with 2 pixels of padding, then a
            horizontal flip), for training sets only.
        channels: with a model name, the images' channels (1 for grayscale; default 3), as
            ``build_model``'s ``image_channels``: a timm architecture from scratch is built for
            them. A built model or a ``Preprocess`` already fixes its channels.
        pretrained: for a timm model, whether it has pretrained weights (then its data config
            sets size and normalisation), as passed to ``build_model``.

    With ``transformers.Trainer``, pass ``remove_unused_columns=False``: the Trainer otherwise
    drops the image column before the transform sees it. Collate with :func:`collate_images`.
    """
    if isinstance(model_or_name, Preprocess):
        if channels is not None or pretrained:
            raise ValueError(
                "channels and pretrained go with a model name or model, not a Preprocess: it "
                "already fixes the channels, size and normalisation"
            )
        preprocess = model_or_name
    else:
        preprocess = preprocess_for(model_or_name, channels=channels, pretrained=pretrained)
    return ImageTransform(preprocess, image_column, label_column, augment)


def collate_images(batch: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
    """Rows of an :func:`image_transform` dataset -> ``{"pixel_values": (N, C, H, W) float,
    "labels": (N,) int64}``: a ``data_collator`` for ``transformers.Trainer``. Other keys are
    left out; ``labels`` only if every row has one."""
    if len(batch) == 0:
        raise ValueError("collate_images got an empty batch")
    missing = [k for k, row in enumerate(batch) if "pixel_values" not in row]
    if missing:
        raise ValueError(
            f"row {missing[0]} of the batch has no 'pixel_values' (its keys are "
            f"{sorted(batch[missing[0]])}): set the dataset's transform with "
            "dataset.with_transform(image_transform(...))"
        )
    images = [torch.as_tensor(row["pixel_values"]) for row in batch]
    first_row: dict[tuple, int] = {}
    for k, x in enumerate(images):
        first_row.setdefault(tuple(x.shape), k)
    if len(first_row) > 1:
        found = ", ".join(f"{shape} (row {k})" for shape, k in first_row.items())
        raise ValueError(
            f"images of different shapes in one batch: {found}; a batch cannot stack them: "
            "resize the images to one size first, or use a model whose preprocessing has a size"
        )
    out = {"pixel_values": torch.stack(images)}
    if all("labels" in row for row in batch):
        out["labels"] = torch.tensor([int(row["labels"]) for row in batch], dtype=torch.int64)
    return out


def _column(batch: Mapping[str, Sequence[Any]], column: str, role: str) -> Sequence[Any]:
    if column not in batch:
        raise ValueError(
            f"{role} {column!r} is not in the batch, whose columns are {sorted(batch)}: pass "
            f"{role}=..., and with transformers.Trainer set remove_unused_columns=False (it "
            "drops the columns the model does not take before the transform sees them)"
        )
    return batch[column]


def _image(value: Any, column: str) -> Image.Image:
    if not isinstance(value, Image.Image):
        raise ValueError(
            f"column {column!r} must hold decoded images (a datasets.Image column), got "
            f"{type(value).__name__}"
        )
    return value


def _label(value: Any, column: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(
            f"label column {column!r} must hold class ids, got {value!r}: encode it first, "
            f"e.g. dataset.class_encode_column({column!r})"
        )
    return int(value)
