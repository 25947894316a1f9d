"""Offline stand-ins for what the README and the docs fetch from the Hugging Face Hub.

Nothing in the tests can reach the Hub, so ``tests/test_docs.py`` runs the docs' code with:

- ``load_dataset(ID)`` of a Hub dataset id the docs show: the local data in ``HUB_DATASETS``
  (the same images and class names where the docs rely on them);
- ``push`` / ``hf-drop push``: uploads go to a local folder (``hub_dir``), and ``load_dataset``,
  ``load_pruned`` and ``DatasetCard.load`` of a pushed repository read it back from there;
- ``AutoModelForImageClassification.from_pretrained(ID)`` of a Hub model id: a small timm model
  from scratch (``test_resnet``) with the requested ``num_labels`` (local folders load as usual).

``install`` patches the running interpreter; ``sitecustomize`` writes a ``sitecustomize.py``
that does the same (datasets and Hub only) in every subprocess a ``bash`` block starts.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

# Hub dataset id shown in the docs -> the built-in source that stands in for it.
HUB_DATASETS = {
    "zalando-datasets/fashion_mnist": "fashion_mnist",  # Debian's real files, the Hub's names
}


def _split_of(data, split: str | None):
    from hf_drop.data.sources import select_split

    return data if split is None else select_split(data, split, "split")


def install(hub_dir: str | Path, setattr: Callable[[Any, str, Any], None] = setattr) -> None:
    """Patch ``datasets`` and ``huggingface_hub`` (``setattr`` may be pytest's monkeypatch)."""
    import datasets
    import huggingface_hub

    hub = Path(hub_dir)
    original_load = datasets.load_dataset
    original_card = huggingface_hub.DatasetCard.load.__func__

    def load_dataset(path, name=None, *args, split=None, streaming=False, **kwargs):
        if isinstance(path, str) and path in HUB_DATASETS:
            from hf_drop.data.sources import load_source

            data = _split_of(load_source(HUB_DATASETS[path]), split)
            return data.to_iterable_dataset() if streaming else data
        if isinstance(path, str) and (hub / path / "README.md").is_file():  # pushed here
            path = str(hub / path)
        return original_load(path, name, *args, split=split, streaming=streaming, **kwargs)

    def card_load(cls, repo_id_or_path, *args, **kwargs):
        local = hub / str(repo_id_or_path) / "README.md"
        if local.is_file():
            repo_id_or_path = local
        return original_card(cls, repo_id_or_path, *args, **kwargs)

    class HfApi:
        """Uploads into ``hub_dir/<repo_id>`` instead of the Hub."""

        def __init__(self, *args, **kwargs) -> None:
            pass

        def create_repo(self, repo_id, **kwargs) -> None:
            (hub / repo_id).mkdir(parents=True, exist_ok=True)

        def upload_folder(self, *, folder_path, repo_id, ignore_patterns=(), **kwargs):
            target = hub / repo_id
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(folder_path, target, ignore=shutil.ignore_patterns(*ignore_patterns))
            return SimpleNamespace(repo_url=f"https://huggingface.co/datasets/{repo_id}")

    setattr(datasets, "load_dataset", load_dataset)
    setattr(huggingface_hub.DatasetCard, "load", classmethod(card_load))
    setattr(huggingface_hub, "HfApi", HfApi)
    setattr(huggingface_hub, "get_token", lambda *args, **kwargs: "offline-stand-in")


def install_models(setattr: Callable[[Any, str, Any], None] = setattr) -> None:
    """``from_pretrained`` of a Hub model id gives a small model built from scratch."""
    from transformers import AutoModelForImageClassification

    original = AutoModelForImageClassification.from_pretrained.__func__

    def from_pretrained(cls, name, *args, num_labels: int | None = None, **kwargs):
        if Path(str(name)).is_dir():
            extra = {} if num_labels is None else {"num_labels": num_labels}
            return original(cls, name, *args, **extra, **kwargs)
        from hf_drop.modeling.models import build_model

        classifier = build_model("test_resnet", num_labels or 2, 3, as_transformers=True)[0]
        return classifier.model

    setattr(AutoModelForImageClassification, "from_pretrained", classmethod(from_pretrained))


def sitecustomize(folder: Path, hub_dir: Path, repo_root: Path) -> None:
    """A ``sitecustomize.py`` in ``folder`` that installs the stand-ins in each subprocess."""
    tests = Path(__file__).resolve().parent
    (folder / "sitecustomize.py").write_text(
        "import sys\n"
        f"sys.path[:0] = [{str(repo_root)!r}, {str(tests)!r}]\n"
        "import docs_offline\n"
        f"docs_offline.install({str(hub_dir)!r})\n"
    )
