"""mkdocs hooks: the pages that are generated, and the files the site takes from the repository.

- ``<!-- generated: cli -->`` becomes each ``hf-drop`` command's ``--help``, from
  ``hf_drop.cli.build_parser()`` (the parsers the command line runs).
- ``<!-- generated: reliability -->`` becomes the reliability matrix, and
  ``<!-- generated: reliability-summary -->`` its count per area, from
  ``python tests/test_reliability.py`` (its ``table()``, the cases the tests run).
- The benchmark figures (``benchmarks/results/**/*.png``) and ``CHANGELOG.md`` join the site, so
  that a page links them by their path in the repository (``../../benchmarks/results/...``),
  which GitHub renders too.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
RESULTS = "benchmarks/results"
REPO_LINK = re.compile(r"(?:\.\./)+(benchmarks/results/[\w./-]+)")


def on_files(files, config):
    for png in sorted((ROOT / RESULTS).rglob("*.png")):
        uri = png.relative_to(ROOT).as_posix()
        files.append(File.generated(config, uri, abs_src_path=str(png)))
    files.append(File.generated(config, "changelog.md", abs_src_path=str(ROOT / "CHANGELOG.md")))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    depth = page.file.src_uri.count("/")
    markdown = REPO_LINK.sub(lambda m: "../" * depth + m.group(1), markdown)
    if "<!-- generated: cli -->" in markdown:
        markdown = markdown.replace("<!-- generated: cli -->", cli_reference())
    if "<!-- generated: public -->" in markdown:
        markdown = markdown.replace("<!-- generated: public -->", public_names())
    if "<!-- generated: reliability" in markdown:
        table = reliability_table()
        markdown = markdown.replace("<!-- generated: reliability -->", table)
        markdown = markdown.replace("<!-- generated: reliability-summary -->", summary(table))
    return markdown


@functools.cache
def cli_reference() -> str:
    """Each command's ``--help`` as the parser prints it, at a fixed width."""
    os.environ["COLUMNS"] = "90"  # argparse wraps to the terminal's width
    sys.path.insert(0, str(ROOT))
    from hf_drop.cli import COMMANDS, build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.choices and set(a.choices) >= set(COMMANDS))
    parts = ["## `hf-drop`", "", "```text", parser.format_help().rstrip(), "```", ""]
    for name in COMMANDS:
        help_text = commands.choices[name].format_help().rstrip()
        parts += [f"## `hf-drop {name}`", "", "```text", help_text, "```", ""]
    return "\n".join(parts)


PUBLIC = [
    ("hf_drop", "the names most scripts need"),
    ("hf_drop.core.rules", "the rules as objects, and their registry"),
    ("hf_drop.core.quotas", "class quotas, numpy only"),
    ("hf_drop.core.selection", "which samples, given counts and scores, numpy only"),
    ("hf_drop.core.uncertainty", "class errors with their support and intervals"),
    ("hf_drop.probe", "the probe: run it, read it, or make a Trainer run one"),
    ("hf_drop.pruning.artifacts", "a subset saved with its record"),
    ("hf_drop.train", "training and judging with transformers.Trainer; DRoP while you train"),
    ("hf_drop.evaluation.metrics", "the class-wise accuracy metric"),
    ("hf_drop.modeling.transforms", "the image path, for your own Trainer script"),
    ("hf_drop.hub", "export, push, load_pruned"),
    ("hf_drop.data.sources", "where data comes from, built-in sources"),
    ("hf_drop.io.logs", "verbosity and progress bars"),
    ("hf_drop.cli", "the hf-drop command"),
]


@functools.cache
def public_names() -> str:
    """Each public module and its ``__all__``, read from the package itself."""
    import importlib

    sys.path.insert(0, str(ROOT))
    rows = ["| module | what | names |", "|---|---|---|"]
    for name, what in PUBLIC:
        names = ", ".join(f"`{n}`" for n in importlib.import_module(name).__all__)
        rows.append(f"| `{name}` | {what} | {names} |")
    return "\n".join(rows)


@functools.cache
def reliability_table() -> str:
    done = subprocess.run(
        [sys.executable, "tests/test_reliability.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
    )
    return done.stdout.strip()


def summary(table: str) -> str:
    """Cases per area: how many are refusals, how many right results."""
    refused, right = Counter(), Counter()
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("area", "---"):
            continue
        (refused if cells[2].startswith("refused") else right)[cells[0]] += 1
    rows = ["| area | cases | clear refusals | right results |", "|---|---:|---:|---:|"]
    for area in dict.fromkeys([*refused, *right]):
        total = refused[area] + right[area]
        rows.append(f"| {area} | {total} | {refused[area]} | {right[area]} |")
    all_refused, all_right = sum(refused.values()), sum(right.values())
    rows.append(
        f"| **total** | **{all_refused + all_right}** | **{all_refused}** | **{all_right}** |"
    )
    return "\n".join(rows)
