"""Evaluation metrics as local ``evaluate`` modules (loadable offline, by path)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["CLASS_ACCURACY_PATH", "load_class_accuracy"]

# evaluate.load() takes this folder: it imports class_accuracy.py from it.
CLASS_ACCURACY_PATH = str(Path(__file__).parent / "class_accuracy")


def load_class_accuracy():
    """The class-wise accuracy metric (``evaluate.load`` of the module shipped with hf-drop)."""
    import evaluate

    return evaluate.load(CLASS_ACCURACY_PATH)
