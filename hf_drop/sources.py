"""Datasets that ship inside a package, for use without the Hugging Face Hub."""

from __future__ import annotations

import datasets
import numpy as np

__all__ = ["digits"]


def digits() -> datasets.Dataset:
    """scikit-learn's 1,797 handwritten digits as 8x8 grayscale images with a ``ClassLabel``.

    The 0..16 pixel intensities are scaled to 0..255 so that the images look like images.
    """
    from sklearn.datasets import load_digits

    raw = load_digits()
    images = (raw.images * (255.0 / 16.0)).round().astype(np.uint8)
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=[str(d) for d in range(10)])}
    )
    return datasets.Dataset.from_dict(
        {"image": list(images), "label": raw.target.tolist()}, features=features
    )
