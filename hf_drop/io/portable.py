"""Records that mean the same thing on another machine: no absolute paths of this one.

Provenance (``pruning.json``, dataset cards) names datasets, models and commands. An absolute
local path in them would point nowhere on the reader's machine, and would tell the world how
the author's disk is laid out; a relative path or a Hub name is kept as it is.
"""

from __future__ import annotations

import shlex
from pathlib import PurePath

__all__ = ["portable_command", "portable_name"]


def portable_name(name: str | None) -> str | None:
    """``name`` itself, or the last part of an absolute path (``/home/u/data/cats`` -> ``cats``)."""
    if name is None or not PurePath(name).is_absolute():
        return name
    return PurePath(name).name or name


# hf-drop's spellings of the output folder (--output_dir as in transformers' scripts).
_OUTPUT_FLAGS = ("--output", "--output_dir", "--output-dir")


def portable_command(command: str | None, output: str) -> str | None:
    """An ``hf-drop`` command line with absolute paths shortened and ``--output`` set to
    ``output``, so that the command can be run again in any folder."""
    if not command:
        return command
    tokens = shlex.split(command)
    result = []
    skip = False
    for index, token in enumerate(tokens):
        if skip:
            skip = False
            continue
        if token in _OUTPUT_FLAGS and index + 1 < len(tokens):
            result += ["--output", output]
            skip = True
        elif token.split("=", 1)[0] in _OUTPUT_FLAGS:
            result += ["--output", output]
        elif "=" in token and token.startswith("--"):
            flag, value = token.split("=", 1)
            result.append(f"{flag}={portable_name(value)}")
        else:
            result.append(portable_name(token))
    return shlex.join(result)
