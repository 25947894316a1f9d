"""Pruning speed: DRoPFilter's fast path against a per-example predicate in Dataset.filter.

A label column of ``--rows`` rows in ``--classes`` classes is written to disk and memory-mapped
back (an Arrow-backed dataset, as after ``load_dataset``). Timed, side by side in one run:

* fast path: ``DRoPFilter(...).fit(ds)`` (read labels, quotas, random selection within class)
  then ``.apply(ds)`` (``Dataset.select``), on all rows; its stages are timed one by one too,
  beside a plain ``Dataset.select`` of the same numpy indices;
* slow path: the same subset reached by ``Dataset.filter`` with a per-example Python predicate
  ``lambda example, i: keep[i]``, on the first ``--slice-rows`` rows.

A label column alone is the best case for the predicate: a row is one int. Real datasets carry
images, which a per-example predicate decodes, so the same two paths are also timed side by side
on ``--image-rows`` rows with a 28x28 PNG image column.

Prints one JSON line; ``--output`` appends it to a file too. Run: ``make bench``.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import datasets
import numpy as np
import PIL.Image
from _results import emit

import hf_drop
from hf_drop import DRoPFilter
from hf_drop.core.quotas import drop_quotas
from hf_drop.core.selection import random_within_class
from hf_drop.data.columns import read_labels


def build(rows: int, classes: int, folder: str) -> datasets.Dataset:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, classes, size=rows)
    features = datasets.Features({"label": datasets.ClassLabel(num_classes=classes)})
    datasets.Dataset.from_dict({"label": labels}, features=features).save_to_disk(folder)
    return datasets.load_from_disk(folder)


def build_with_images(rows: int, classes: int) -> datasets.Dataset:
    rng = np.random.default_rng(2)
    pngs = []
    for _ in range(256):  # distinct images, cycled: building stays cheap, decoding does not
        buffer = io.BytesIO()
        PIL.Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(buffer, "PNG")
        pngs.append({"bytes": buffer.getvalue(), "path": None})
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(num_classes=classes)}
    )
    return datasets.Dataset.from_dict(
        {"image": [pngs[i % 256] for i in range(rows)], "label": rng.integers(0, classes, rows)},
        features=features,
    )


def fast_and_slow(ds: datasets.Dataset, errors: np.ndarray, density: float, repeats: int):
    """Median seconds of fit + apply, and seconds of the per-example predicate; same rows."""
    runs = []
    for _ in range(repeats):
        drop = DRoPFilter(density, class_errors=errors, seed=0)
        fast, seconds = timed(lambda drop=drop: drop.fit(ds).apply(ds))
        runs.append(seconds)
    keep = np.zeros(len(ds), dtype=bool)
    keep[drop.indices_] = True
    slow, slow_seconds = timed(lambda: ds.filter(lambda example, i: keep[i], with_indices=True))
    assert slow["label"][:] == fast["label"][:], "both paths must give the same rows"
    return statistics.median(runs), runs, slow_seconds


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--slice-rows", type=int, default=1_000_000)
    parser.add_argument("--image-rows", type=int, default=100_000)
    parser.add_argument("--density", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=3, help="fast-path runs; the median counts")
    parser.add_argument("--output", type=Path, help="append the JSON line to this file")
    args = parser.parse_args(argv)

    datasets.disable_caching()  # every filter really runs; nothing is read back from a cache
    with tempfile.TemporaryDirectory() as folder:
        print(f"building {args.rows:,} rows in {args.classes:,} classes ...", file=sys.stderr)
        ds = build(args.rows, args.classes, folder)
        errors = np.random.default_rng(1).uniform(0.01, 0.5, size=args.classes)

        # Fast path on all rows, end to end through the public API, then its stages one by one.
        runs = []
        for _ in range(args.repeats):
            drop = DRoPFilter(args.density, class_errors=errors, quota="drop_paper", seed=0)
            subset, seconds = timed(lambda drop=drop: drop.fit(ds).apply(ds))
            runs.append(seconds)
        labels, t_read = timed(lambda: read_labels(ds, "label").ids)
        sizes = np.bincount(labels, minlength=args.classes)
        counts, t_quotas = timed(lambda: drop_quotas(sizes, errors, args.density))
        kept, t_pick = timed(lambda: random_within_class(labels, counts, seed=0))
        _, t_select = timed(lambda: drop.apply(ds))  # the last fit's indices, as `kept`
        assert np.array_equal(drop.indices_, kept)
        _, t_plain_select = timed(lambda: ds.select(kept))  # what apply improves on
        assert len(subset) == counts.sum()

        # Slow path on a slice: the same rows through a per-example Python predicate.
        print(f"per-example filter over {args.slice_rows:,} rows ...", file=sys.stderr)
        _, _, t_slow = fast_and_slow(
            ds.select(range(args.slice_rows)), errors, args.density, repeats=1
        )

    print(f"both paths over {args.image_rows:,} rows with images ...", file=sys.stderr)
    image_fast, image_runs, image_slow = fast_and_slow(
        build_with_images(args.image_rows, args.classes), errors, args.density, args.repeats
    )

    fast_seconds = statistics.median(runs)
    per_row_fast = fast_seconds / args.rows
    per_row_slow = t_slow / args.slice_rows
    result = {
        "benchmark": "prune_speed",
        "rows": args.rows,
        "classes": args.classes,
        "density": args.density,
        "kept": int(counts.sum()),
        "fast_seconds": round(fast_seconds, 3),
        "fast_seconds_runs": [round(t, 3) for t in runs],
        "fast_stages_seconds": {
            "read_labels": round(t_read, 3),
            "quotas": round(t_quotas, 4),
            "random_within_class": round(t_pick, 3),
            "apply_select": round(t_select, 3),
            "plain_select_of_numpy_indices": round(t_plain_select, 3),
        },
        "slow_rows": args.slice_rows,
        "slow_seconds": round(t_slow, 3),
        "fast_rows_per_second": round(args.rows / fast_seconds),
        "slow_rows_per_second": round(args.slice_rows / t_slow),
        "per_row_speedup": round(per_row_slow / per_row_fast, 1),
        "with_images": {
            "rows": args.image_rows,
            "fast_seconds": round(image_fast, 3),
            "fast_seconds_runs": [round(t, 3) for t in image_runs],
            "slow_seconds": round(image_slow, 3),
            "per_row_speedup": round(image_slow / image_fast, 1),
        },
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "versions": {
            "hf_drop": hf_drop.__version__,
            "datasets": datasets.__version__,
            "numpy": np.__version__,
        },
    }
    return emit(result, args.output)


if __name__ == "__main__":
    main()
