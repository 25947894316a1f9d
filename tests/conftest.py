"""Small synthetic image datasets for the tests."""

import contextlib
import hashlib
import io
import os

# Nothing may reach for the Hub at test time: an unknown dataset or model name must fail fast.
# Set before datasets (and huggingface_hub) are imported: they read these once, at import.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# Under pytest -n (pytest-xdist), one torch thread per worker (and per child process): workers
# share the cores, and small models gain nothing from more threads.
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import datasets
import numpy as np
import pytest
from hypothesis import settings
from PIL import Image as PILImage

# CI replays the same examples on every run (a red CI is then reproducible); locally hypothesis
# keeps exploring new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
# make test-fast (-m "not slow"): a quick check, fewer examples per property (the full suite
# keeps hypothesis' 100).
settings.register_profile("fast", max_examples=20)
if os.environ.get("CI"):
    settings.load_profile("ci")

CLASS_NAMES = ["tshirt", "trouser", "pullover", "dress"]


def png_bytes(value: int) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(np.full((4, 4), value, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def image_dataset(labels, images=None, extra=None) -> datasets.Dataset:
    """Rows of (image, label[, extra columns]); images default to distinct 4x4 grey PNGs."""
    labels = list(labels)
    if images is None:
        images = [{"bytes": png_bytes(i % 256), "path": f"img_{i}.png"} for i in range(len(labels))]
    columns = {"image": images, "label": labels, **(extra or {})}
    features = {"image": datasets.Image(), "label": datasets.ClassLabel(names=CLASS_NAMES)}
    features.update({name: datasets.Value("float64") for name in extra or {}})
    return datasets.Dataset.from_dict(columns, features=datasets.Features(features))


@pytest.fixture
def dataset() -> datasets.Dataset:
    """200 PNG images in 4 classes of 80, 60, 40, 20, with an 'el2n' score column."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), [80, 60, 40, 20])
    rng.shuffle(labels)
    return image_dataset(labels, extra={"el2n": rng.random(len(labels)).round(6)})


@pytest.fixture
def undecodable() -> datasets.Dataset:
    """Same labels, but every image is garbage bytes: decoding any of them raises."""
    labels = np.repeat(np.arange(4), [80, 60, 40, 20])
    images = [{"bytes": b"not an image %d" % i, "path": None} for i in range(len(labels))]
    return image_dataset(labels, images=images, extra={"el2n": np.linspace(0, 1, len(labels))})


def launch_two(*args: str) -> list[str]:
    """``accelerate launch`` of ``args`` on 2 CPU processes (with ``ACCELERATE_USE_CPU=1`` in
    the environment), on a TCP port free now: tests run in parallel (pytest -n) would otherwise
    meet on torch.distributed's default port 29500."""
    import socket
    import sys
    from pathlib import Path

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    accelerate = str(Path(sys.executable).with_name("accelerate"))
    return [accelerate, "launch", "--multi_gpu", "--num_processes", "2",
            "--main_process_port", str(port), *args]  # fmt: skip


def tree_digest(folder) -> str:
    """A digest of every file's path and bytes under ``folder``."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="session")
def digits_probe(tmp_path_factory):
    """One CLI probe of digits for the whole session (``hf-drop probe --dataset digits --model
    test_resnet --epochs 1``: validated on half of test), shared by the tests that only read it.
    Never write into it (copy it first, ``shutil.copytree``): the session checks at its end that
    no file in it changed."""
    from hf_drop.cli import main

    folder = tmp_path_factory.mktemp("shared") / "digits-probe"
    with contextlib.redirect_stdout(io.StringIO()):
        main(["probe", "--dataset", "digits", "--model", "test_resnet", "--epochs", "1",
              "--output", str(folder)])  # fmt: skip
    before = tree_digest(folder)
    yield folder
    assert tree_digest(folder) == before, f"a test wrote into the shared probe {folder}"


def pytest_configure(config):
    if config.getoption("markexpr") == "not slow" and not os.environ.get("CI"):
        settings.load_profile("fast")


def pytest_ignore_collect(collection_path, config):
    """Under ``-m "not slow"`` (make test-fast), a module marked slow as a whole is not even
    imported: importing the Trainer alone takes seconds."""
    if config.getoption("markexpr") != "not slow" or collection_path.suffix != ".py":
        return None
    text = collection_path.read_text() if collection_path.name.startswith("test_") else ""
    return True if "\npytestmark = pytest.mark.slow" in text else None
