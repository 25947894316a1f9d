"""Probe overhead: the probe with every score on, against a plain Accelerate training loop.

Both train the same model on the same Fashion-MNIST rows for the same epochs, with the same data
pipeline, optimizer, schedule and per-epoch validation; the probe adds its per-sample
bookkeeping, the gathers, embeddings and an epoch checkpoint (full-parameter GraNd is off).
Runs alternate (plain, probe, plain, probe, ...) so that drift hits both; medians count.

Prints one JSON line; ``--output`` appends it to a file too. Run: ``make bench-probe``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import accelerate
import numpy as np
import torch
import torch.nn.functional as F
from _results import emit
from accelerate import Accelerator
from accelerate.utils import set_seed

import hf_drop
from hf_drop.data.columns import read_labels
from hf_drop.data.sources import fashion_mnist
from hf_drop.modeling.images import ImageBatches, loader
from hf_drop.modeling.models import build_model
from hf_drop.probe import ProbeConfig, run_probe


def plain_loop(train, val, config: ProbeConfig) -> float:
    """What a user would write without hf-drop: build, prepare, train, validate each epoch.
    Timed from the call to the end, like the probe."""
    start = time.perf_counter()
    accelerator = Accelerator()
    set_seed(config.seed)
    labels, val_labels = read_labels(train, "label"), read_labels(val, "label")
    model, preprocess, _ = build_model(config.model, len(labels.names), 1)
    train_loader = loader(
        ImageBatches(train, "image", labels.ids, preprocess), config.batch_size, seed=config.seed
    )
    val_loader = loader(
        ImageBatches(val, "image", val_labels.ids, preprocess), config.batch_size, shuffle=False
    )
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=config.epochs * len(train_loader)
    )
    model, optimizer, scheduler, train_loader, val_loader = accelerator.prepare(
        model, optimizer, scheduler, train_loader, val_loader
    )
    start = time.perf_counter()
    for epoch in range(config.epochs):
        model.train()
        train_loader.set_epoch(epoch)
        for batch in train_loader:
            loss = F.cross_entropy(model(batch["pixel_values"]), batch["labels"])
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        model.eval()
        correct = 0
        with torch.no_grad():
            for batch in val_loader:
                predicted = model(batch["pixel_values"]).argmax(1)
                p, y = accelerator.gather_for_metrics((predicted, batch["labels"]))
                correct += int((p == y).sum())
        accelerator.print(f"plain epoch {epoch + 1}: val acc {correct / len(val):.4f}")
    seconds = time.perf_counter() - start
    accelerator.free_memory(model, optimizer, scheduler, train_loader, val_loader)
    return seconds


def probe_run(train, val, config: ProbeConfig) -> float:
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        run_probe(train, val, config, Path(folder) / "probe")
        return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="test_resnet")
    parser.add_argument("--train-rows", type=int, default=20_000)
    parser.add_argument("--val-rows", type=int, default=2_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, help="append the JSON line to this file")
    parser.add_argument(
        "--label", help="which code this measures (e.g. a branch and commit), recorded as 'code'"
    )
    args = parser.parse_args(argv)

    print(f"hf_drop from {Path(hf_drop.__file__).parent}", file=sys.stderr)
    data = fashion_mnist()
    train = data["train"].select(range(args.train_rows))
    val = data["test"].select(range(args.val_rows))
    config = ProbeConfig(
        model=args.model,
        epochs=args.epochs,
        batch_size=args.batch_size,
        embeddings=True,
        du_window=2,
    )
    plain, probe = [], []
    for repeat in range(args.repeats):
        print(f"repeat {repeat + 1}/{args.repeats}: plain loop, then probe", file=sys.stderr)
        plain.append(plain_loop(train, val, config))
        probe.append(probe_run(train, val, config))
    result = {
        "benchmark": "probe_overhead",
        **({"code": args.label} if args.label else {}),
        "model": args.model,
        "train_rows": args.train_rows,
        "val_rows": args.val_rows,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "plain_seconds": round(statistics.median(plain), 2),
        "probe_seconds": round(statistics.median(probe), 2),
        "plain_runs": [round(t, 2) for t in plain],
        "probe_runs": [round(t, 2) for t in probe],
        "ratio": round(statistics.median(probe) / statistics.median(plain), 3),
        "probe_images_per_second": round(args.train_rows * args.epochs / statistics.median(probe)),
        "scores": "loss, el2n, grand (last layer), forgetting, aum, dynamic uncertainty, margin, "
        "entropy, embeddings; full GraNd off",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch threads "
        f"{torch.get_num_threads()}, Python {platform.python_version()}",
        "versions": {
            "hf_drop": hf_drop.__version__,
            "torch": torch.__version__,
            "accelerate": accelerate.__version__,
            "numpy": np.__version__,
        },
    }
    return emit(result, args.output)


if __name__ == "__main__":
    main()
