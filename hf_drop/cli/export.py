"""``hf-drop export``: write a subset (or a probe's scores) as a Hub dataset folder, card
included, without uploading it; ``hf-drop push`` is this and an upload."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .base import BaseCommand

__all__ = ["CardArguments", "Export", "ExportArguments", "default_export_dir", "write_export"]


@dataclass(kw_only=True)
class CardArguments:
    """What the dataset card says beside what hf-drop records (``export`` and ``push``)."""

    license: str | None = field(
        default=None,
        metadata={
            "help": "the card's license, e.g. mit (default for a subset: its source's, if known)"
        },
    )
    tags: list[str] = field(
        default_factory=list,
        metadata={"help": "tags for the card, beside hf-drop's own", "nargs": "*"},
    )
    pretty_name: str | None = field(
        default=None, metadata={"help": "the card's human-readable name"}
    )


@dataclass(kw_only=True)
class ExportArguments:
    """What ``hf-drop export`` writes, and where."""

    folder: str = field(
        metadata={
            "help": "a subset folder (hf-drop prune) or a probe folder (hf-drop probe)",
            "positional": True,
        }
    )
    output: str | None = field(
        default=None,
        metadata={
            "help": "the export folder (default: FOLDER-hub); new or empty, never inside FOLDER"
        },
    )
    indices_only: bool = field(
        default=False,
        metadata={"help": "publish the kept row indices of the source, not its images"},
    )
    overwrite: bool = field(default=False, metadata={"help": "replace a previous export"})


class Export(BaseCommand):
    name = "export"
    help = "write a pruned subset as a Hub dataset folder (card included), without uploading"
    description = (
        "Write FOLDER (a subset written by hf-drop prune, with any untouched splits saved "
        "beside it, or a probe folder: its score table) as the folder a Hub dataset repository "
        "holds: parquet shards under data/ and a README.md dataset card that says how it was "
        "made. load_dataset(OUTPUT) reads it back; hf-drop push OUTPUT uploads it as it is."
    )
    options = ((ExportArguments, None), (CardArguments, "the dataset card"))

    def run(self) -> None:
        args = self.args
        out = Path(args.output) if args.output else default_export_dir(args.folder)
        card = {"license": args.license, "tags": args.tags, "pretty_name": args.pretty_name}
        write_export(args.folder, out, args.indices_only, args.overwrite, card)
        print(f"upload it with: hf-drop push {out} --repo-id USER/NAME")


def default_export_dir(folder: str | Path) -> Path:
    """Where an export of ``folder`` goes unless told: beside it, ``FOLDER-hub``."""
    return Path(f"{str(folder).rstrip('/')}-hub")


def write_export(
    folder: str | Path,
    out: Path,
    indices_only: bool,
    overwrite: bool,
    card: dict,
    *,
    accepts_exports: bool = False,
) -> Path:
    """Export a subset folder (its splits, its card) or a probe folder (its score table) to
    ``out``; anything else is a FileNotFoundError saying what ``folder`` should be (or an
    export too, for a caller that ``accepts_exports``)."""
    from ..hub import export_saved, export_scores, exported
    from ..probe.result import CONFIG_FILE
    from ..pruning.artifacts import PRUNING_FILE

    folder = Path(folder)
    if (folder / PRUNING_FILE).exists():
        mode = "indices" if indices_only else "full"
        export_saved(folder, out, mode=mode, overwrite=overwrite, **card)
        print(f"exported {folder} -> {out}")
    elif (folder / CONFIG_FILE).exists():
        if indices_only:
            raise ValueError(f"{folder} is a probe folder: its scores have no --indices-only form")
        export_scores(folder, out, overwrite=overwrite, **card)
        print(f"exported the probe scores of {folder} -> {out}")
    elif exported(folder):
        raise ValueError(
            f"{folder} is already an export: upload it with hf-drop push {folder} --repo-id "
            "USER/NAME, or export the subset folder it was exported from"
        )
    else:
        raise FileNotFoundError(
            f"{folder} is not a subset folder (no {PRUNING_FILE}), "
            + (
                f"a probe folder (no {CONFIG_FILE}) nor an hf-drop export (no README.md with a "
                "drop card)"
                if accepts_exports
                else f"nor a probe folder (no {CONFIG_FILE})"
            )
        )
    return out
