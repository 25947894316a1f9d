"""From a ``datasets.Dataset`` of images to batches of tensors: one code path for every model.

:class:`ImageBatches` answers a whole batch of row indices with one Arrow query (torch's
DataLoader calls ``__getitems__``), decodes only the image column, and returns the pixels, the
labels and the row indices, so that per-sample results can be gathered by index.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence

import datasets
import numpy as np
import pyarrow as pa
import torch
from numpy.typing import NDArray
from PIL import Image
from torch.utils.data import DataLoader, Sampler
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from .models import Preprocess

__all__ = [
    "Augment",
    "EpochSampler",
    "ImageBatches",
    "check_image_split",
    "check_one_size",
    "describe_sizes",
    "image_sizes",
    "loader",
    "pixels",
]


def check_image_split(split: datasets.Dataset, role: str, image_column: str) -> int:
    """Raise a clear error unless ``split`` is a non-empty Dataset with an Image column; return
    the number of channels its images have (1 for grayscale, else 3)."""
    if not isinstance(split, datasets.Dataset):
        raise TypeError(f"the {role} must be a datasets.Dataset, got {type(split).__name__}")
    if len(split) == 0:
        raise ValueError(f"the {role} is empty")
    if image_column not in split.column_names:
        raise ValueError(
            f"image column {image_column!r} is not a column of the {role}; its columns are "
            f"{split.column_names}"
        )
    if not isinstance(split.features[image_column], datasets.Image):
        raise ValueError(
            f"column {image_column!r} of the {role} must be an Image column, got "
            f"{split.features[image_column]}"
        )
    try:
        mode = split[0][image_column].mode
    except Exception as error:  # undecodable bytes, a missing file
        raise ValueError(
            f"row 0 of the {role} is not a readable image ({error}): fix or drop it"
        ) from error
    return 1 if mode in ("L", "I", "I;16", "F", "1") else 3


# Image sizes are read from the headers of at most this many rows per split (about 0.8 s for
# 60,000 PNGs); beyond it, of this many rows spread evenly, and batches check the rest.
SIZE_SCAN_ROWS = 100_000


def image_sizes(split: datasets.Dataset, role: str, image_column: str) -> dict[tuple, list[int]]:
    """``{(width, height): [first row, count]}`` of the images of ``split``, from their headers
    (PIL reads the header without decoding pixels); every row up to :data:`SIZE_SCAN_ROWS`, else
    that many rows spread evenly."""
    num_rows = len(split)
    positions = np.arange(num_rows, dtype=np.int64)
    if num_rows > SIZE_SCAN_ROWS:
        positions = np.linspace(0, num_rows - 1, SIZE_SCAN_ROWS).round().astype(np.int64)
    rows = pa.array(positions)
    if split._indices is not None:  # positions of the view -> rows of the underlying table
        rows = split._indices.column(0).take(rows)
    cells = split.data.column(image_column).take(rows).combine_chunks()
    sizes: dict[tuple, list[int]] = {}
    for position, data, path in zip(
        positions.tolist(),
        cells.field("bytes").to_pylist(),
        cells.field("path").to_pylist(),
        strict=True,
    ):
        try:
            with Image.open(io.BytesIO(data) if data is not None else path) as image:
                size = _decoded_size(image)
        except Exception as error:  # undecodable bytes, a missing file, no image at all
            raise ValueError(
                f"row {position} of the {role} is not a readable image ({error}): fix or drop it"
            ) from error
        entry = sizes.setdefault(size, [position, 0])
        entry[1] += 1
    return sizes


def _decoded_size(image: Image.Image) -> tuple[int, int]:
    """The size ``datasets`` decodes ``image`` to: its header's, turned by an EXIF orientation
    (``datasets`` applies ``exif_transpose``). A PNG's EXIF is only read if it precedes the
    pixels: reading it otherwise would decode them."""
    width, height = image.size
    if image.format == "PNG" and "exif" not in image.info:
        return width, height
    orientation = image.getexif().get(0x0112)  # EXIF Orientation: 5..8 swap width and height
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def describe_sizes(sizes: dict[tuple, list[int]], most: int = 3) -> str:
    """``"8x8 (1430 images, e.g. row 0), 16x16 (7 images, e.g. row 12)"``, most common first;
    beyond the ``most`` commonest, only how many other sizes and images there are (photos may
    come in thousands of sizes: an error must stay readable)."""
    ordered = sorted(sizes.items(), key=lambda item: -item[1][1])
    shown = [
        f"{w}x{h} ({n} image{'s' * (n != 1)}, e.g. row {row})"
        for (w, h), (row, n) in ordered[:most]
    ]
    rest = ordered[most:]
    if rest:
        images = sum(n for _, (_, n) in rest)
        shown.append(f"and {len(rest)} other sizes ({images} images)")
    return ", ".join(shown)


def check_one_size(
    sizes: dict[str, dict[tuple, list[int]]], preprocess: Preprocess, model: str
) -> None:
    """Images of several sizes (``{role: image_sizes(...)}``) only with a preprocessing that
    resizes them to one; else a short error that says to pass ``--image_size``."""
    if preprocess.image_size is not None:
        return
    every = {size for found in sizes.values() for size in found}
    if len(every) <= 1:
        return
    found = "; ".join(f"{role}: {describe_sizes(s)}" for role, s in sizes.items() if s)
    (width, height), _ = max(
        ((size, n) for found in sizes.values() for size, (_, n) in found.items()),
        key=lambda item: item[1],
    )
    raise ValueError(
        f"the images are of {len(every)} sizes ({found}), and model {model!r} keeps each "
        f"image's own size, so a batch cannot stack them: pass --image_size HxW "
        f"(image_size= in Python), e.g. --image_size {height}x{width}, to resize them all"
    )


class ImageBatches(torch.utils.data.Dataset):
    """Rows of ``dataset`` as ``{"pixel_values", "labels", "index"}`` batches."""

    def __init__(
        self,
        dataset: datasets.Dataset,
        image_column: str,
        label_ids: NDArray[np.int64],
        preprocess: Preprocess,
        augment: bool = False,
    ) -> None:
        if len(label_ids) != len(dataset):
            raise ValueError(f"{len(label_ids)} labels for {len(dataset)} rows")
        self.images = dataset.select_columns([image_column])
        self.image_column = image_column
        self.label_ids = np.asarray(label_ids, dtype=np.int64)
        self.preprocess = preprocess
        self.augment = Augment() if augment else None

    def __len__(self) -> int:
        return len(self.label_ids)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.__getitems__([index])

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        indices = [int(i) for i in indices]
        images = self.images[indices][self.image_column]
        pixels = [self._pixels(image) for image in images]
        first_row: dict[tuple, int] = {}
        for row, x in zip(indices, pixels, strict=True):
            first_row.setdefault(tuple(x.shape[-2:]), row)
        if len(first_row) > 1:  # image_sizes scans the headers before training; this, the rest
            found = ", ".join(f"{w}x{h} (row {row})" for (h, w), row in list(first_row.items())[:3])
            more = f" and {len(first_row) - 3} other sizes" if len(first_row) > 3 else ""
            raise ValueError(
                f"images of different sizes in one batch: {found}{more}; the model keeps each "
                "image's own size, so a batch cannot stack them: pass --image_size HxW "
                "(image_size= in Python) to resize them all"
            )
        return {
            "pixel_values": torch.stack(pixels),
            "labels": torch.from_numpy(self.label_ids[indices]),
            "index": torch.tensor(indices, dtype=torch.int64),
        }

    def _pixels(self, image: Image.Image) -> torch.Tensor:
        return pixels(image, self.preprocess, self.augment)


def pixels(image: Image.Image, preprocess: Preprocess, augment=None) -> torch.Tensor:
    """One image as a normalised ``(channels, height, width)`` float tensor: converted to the
    model's channels, resized if it has a size, augmented if ``augment``, scaled and normalised.
    Every model's images, in training, probing and :mod:`hf_drop.modeling.transforms`, go through here."""
    p = preprocess
    image = image.convert("L" if p.channels == 1 else "RGB")
    x = F.pil_to_tensor(image)
    if p.image_size is not None and tuple(x.shape[-2:]) != tuple(p.image_size):
        x = F.resize(
            x, list(p.image_size), interpolation=_interpolation(p.interpolation), antialias=True
        )
    if augment is not None:
        x = augment(x)
    x = x.float().div_(255.0)
    return F.normalize(x, list(p.mean), list(p.std))


class EpochSampler(Sampler[int]):
    """A fresh permutation each epoch, a pure function of ``(seed, epoch)``: a resumed run or a
    run on more processes sees the same order."""

    def __init__(self, num_samples: int, seed: int, shuffle: bool = True) -> None:
        self.num_samples = num_samples
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.num_samples))
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.num_samples)
        return iter(order.tolist())


def loader(
    batches: ImageBatches,
    batch_size: int,
    *,
    seed: int = 0,
    shuffle: bool = True,
    num_workers: int = 0,
) -> DataLoader:
    """A DataLoader over :class:`ImageBatches` with an :class:`EpochSampler`."""
    return DataLoader(
        batches,
        batch_size=batch_size,
        sampler=EpochSampler(len(batches), seed, shuffle),
        collate_fn=_as_is,
        num_workers=num_workers,
    )


def _as_is(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return batch  # ImageBatches.__getitems__ already returns a whole batch


class Augment:
    """Light augmentation: a random crop of the image padded by 2 pixels, back to its own size,
    then a horizontal flip with probability 1/2 (not label-preserving for every dataset: digits
    are not mirror-symmetric). Randomness from torch's global generator, which checkpoints save."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        x = v2.RandomCrop((height, width), padding=2)(x)
        return v2.RandomHorizontalFlip()(x)


def _interpolation(name: str) -> v2.InterpolationMode:
    return {"bicubic": v2.InterpolationMode.BICUBIC, "nearest": v2.InterpolationMode.NEAREST}.get(
        name, v2.InterpolationMode.BILINEAR
    )
