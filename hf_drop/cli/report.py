"""``hf-drop report``: compare trained runs, average and worst-class accuracy by method."""

from __future__ import annotations

from dataclasses import dataclass, field

from .base import BaseCommand

__all__ = ["Report", "ReportArguments"]


@dataclass(kw_only=True)
class ReportArguments:
    """The runs ``hf-drop report`` compares, and the picture it draws."""

    runs: list[str] = field(
        metadata={"help": "folders written by hf-drop train", "positional": True, "nargs": "+"}
    )
    # A file, not a folder: transformers' --output_dir would not mean the same.
    output: str = field(
        default="report.png", metadata={"help": "the PNG to write (a new file)", "aliases": []}
    )
    overwrite: bool = field(default=False, metadata={"help": "replace an existing --output file"})


class Report(BaseCommand):
    name = "report"
    help = "compare trained runs: average and worst-class accuracy by method"
    description = (
        "Read the metrics.json of each run folder; print a table by method and density (mean "
        "and sd over seeds) and draw it."
    )
    options = ((ReportArguments, None),)

    def run(self) -> None:
        from ..evaluation.report import load_runs, plot_runs, summarize
        from ..io.outputs import atomic_file

        args = self.args
        # Refused before anything is read: an existing --output without --overwrite, or one
        # inside a run folder.
        with atomic_file(
            args.output, overwrite=args.overwrite, inputs=args.runs, what="--output"
        ) as tmp:
            runs = load_runs(args.runs)
            table = summarize(runs)
            print(table.to_string(float_format=lambda v: f"{v:.4f}", na_rep="-"))
            plot_runs(runs, tmp)
        print(f"wrote {args.output}")
