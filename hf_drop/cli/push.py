"""``hf-drop push``: export a subset (or a probe's scores) as a Hub dataset and upload it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .base import BaseCommand

__all__ = ["Push", "PushArguments"]


@dataclass(kw_only=True)
class PushArguments:
    """What ``hf-drop push`` exports and uploads, and the card it writes."""

    folder: str = field(
        metadata={
            "help": "a subset folder (hf-drop prune), a probe folder (hf-drop probe), or an "
            "exported folder (uploaded as it is)",
            "positional": True,
        }
    )
    repo_id: str = field(metadata={"help": "the Hub dataset repository, user/name"})
    private: bool = field(default=False, metadata={"help": "make the repository private"})
    indices_only: bool = field(
        default=False,
        metadata={"help": "publish the kept row indices of the source, not its images"},
    )
    export_dir: str | None = field(
        default=None,
        metadata={
            "help": "where the export is written (default: FOLDER-hub); new or empty, never FOLDER"
        },
    )
    overwrite: bool = field(
        default=False, metadata={"help": "replace a previous export in --export-dir"}
    )
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


class Push(BaseCommand):
    name = "push"
    help = "export a pruned subset as a Hub dataset (card included) and upload it"
    description = (
        "Export FOLDER (a subset written by hf-drop prune, or a probe folder: its score table) "
        "to a Hub repository layout with a dataset card, then upload it; a FOLDER that is "
        "already such an export is uploaded as it is. The export is written locally first, so "
        "a failed upload loses nothing."
    )
    options = ((PushArguments, None),)

    def run(self) -> None:
        from ..hub import export_saved, export_scores, exported, push
        from ..probe.result import CONFIG_FILE
        from ..pruning.artifacts import PRUNING_FILE

        args = self.args
        folder = Path(args.folder)
        out = Path(args.export_dir or f"{str(args.folder).rstrip('/')}-hub")
        card = {"license": args.license, "tags": args.tags, "pretty_name": args.pretty_name}
        if exported(folder):
            if args.export_dir or args.indices_only or any(card.values()):
                raise ValueError(
                    f"{folder} is already an export: it is uploaded as it is, card included; "
                    "drop --export-dir, --indices-only, --license, --tags and --pretty-name (or "
                    "pass the subset folder it was exported from)"
                )
            out = folder
        elif (folder / PRUNING_FILE).exists():
            mode = "indices" if args.indices_only else "full"
            export_saved(folder, out, mode=mode, overwrite=args.overwrite, **card)
            print(f"exported {folder} -> {out}")
        elif (folder / CONFIG_FILE).exists():
            if args.indices_only:
                raise ValueError(
                    f"{folder} is a probe folder: its scores have no --indices-only form"
                )
            export_scores(folder, out, overwrite=args.overwrite, **card)
            print(f"exported the probe scores of {folder} -> {out}")
        else:
            raise FileNotFoundError(
                f"{folder} is not a subset folder (no {PRUNING_FILE}), a probe folder (no "
                f"{CONFIG_FILE}) nor an hf-drop export (no README.md with a drop card)"
            )
        try:
            url = push(out, args.repo_id, private=args.private)
        except RuntimeError as error:
            raise ValueError(str(error)) from error
        print(f"uploaded to {url}")
