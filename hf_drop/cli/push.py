"""``hf-drop push``: ``hf-drop export`` and an upload with ``huggingface_hub``.

Exit status: 0 uploaded; 2 nothing uploaded because the input or the export failed (a bad
option, not a subset folder, ...), as argparse's usage errors; :data:`UPLOAD_FAILED` (3) the
export folder is complete and only the upload failed (no token, offline, refused): the message
says where the folder is and how to upload it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .base import BaseCommand, CommandError
from .export import CardArguments, default_export_dir, write_export

__all__ = ["UPLOAD_FAILED", "Push", "PushArguments"]

UPLOAD_FAILED = 3  # the export is written; only the upload failed


@dataclass(kw_only=True)
class PushArguments:
    """What ``hf-drop push`` exports and uploads."""

    folder: str = field(
        metadata={
            "help": "a subset folder (hf-drop prune), a probe folder (hf-drop probe), or an "
            "exported folder (hf-drop export: uploaded as it is)",
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


class Push(BaseCommand):
    name = "push"
    help = "export a pruned subset as a Hub dataset (card included) and upload it"
    description = (
        "Export FOLDER as hf-drop export does (a subset written by hf-drop prune, or a probe "
        "folder: its score table), then upload it; a FOLDER that is already such an export is "
        "uploaded as it is. The export is written locally first, so a failed upload loses "
        "nothing. Exit status 2: nothing was exported (bad input); 3: the export is complete "
        "and only the upload failed (push the export folder again)."
    )
    options = ((PushArguments, None), (CardArguments, "the dataset card"))

    def run(self) -> None:
        from ..hub import exported, push

        args = self.args
        folder = Path(args.folder)
        out = Path(args.export_dir) if args.export_dir else default_export_dir(folder)
        card = {"license": args.license, "tags": args.tags, "pretty_name": args.pretty_name}
        if exported(folder):
            if args.export_dir or args.indices_only or any(card.values()):
                raise ValueError(
                    f"{folder} is already an export: it is uploaded as it is, card included; "
                    "drop --export-dir, --indices-only, --license, --tags and --pretty-name (or "
                    "pass the subset folder it was exported from)"
                )
            out = folder
        else:
            write_export(folder, out, args.indices_only, args.overwrite, card, accepts_exports=True)
        try:
            url = push(out, args.repo_id, private=args.private)
        except RuntimeError as error:  # the export is complete; the upload alone failed
            raise CommandError(str(error), UPLOAD_FAILED) from error
        print(f"uploaded to {url}")
