"""Publishing pruned subsets and score tables on the Hugging Face Hub.

:func:`export` writes, atomically, exactly the layout ``push_to_hub`` uploads: parquet shards under
``data/`` and a ``README.md`` dataset card whose YAML holds ``configs``, ``dataset_info`` and a
``drop`` block that says how the subset was made; a ``DatasetDict`` is published with every split,
the pruned one found by identity and the others untouched. ``load_dataset(folder)`` reads it
back. An
*indices-only* export publishes the kept row indices of a source dataset instead of its images;
:func:`load_pruned` rebuilds the subset from the source and refuses a source that differs.
:func:`push` uploads a folder with ``huggingface_hub`` (``hf-drop export`` writes one, ``hf-drop
push`` writes and uploads it).

One module per part: :mod:`~hf_drop.hub.publish` (export, push), :mod:`~hf_drop.hub.load`,
:mod:`~hf_drop.hub.card` (the dataset card) and :mod:`~hf_drop.hub.layout` (shards and YAML).
"""

from .card import CARD_FILE, PLOT_FILE, reproduce_commands
from .layout import SPLIT
from .load import load_pruned
from .publish import export, export_saved, export_scores, exported, push, read_provenance

__all__ = [
    "CARD_FILE",
    "PLOT_FILE",
    "SPLIT",
    "export",
    "export_saved",
    "export_scores",
    "exported",
    "load_pruned",
    "push",
    "read_provenance",
    "reproduce_commands",
]
