"""Reading back what was written earlier (JSON records, ``save_to_disk`` folders, parquet tables).

A damaged file (empty, cut short, garbage) is a :class:`DamagedFileError` that names the file, says
what it should hold and what to do about it, never a ``JSONDecodeError`` or an ``ArrowInvalid``
from deep inside a library. No torch here: the probe result, the CLI and the Hub code all use it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["DamagedFileError", "load_saved", "read_json", "read_parquet"]


class DamagedFileError(ValueError):
    """A file that exists but cannot be read as what it should be."""


def read_json(path: str | os.PathLike, what: str, fix: str) -> dict[str, Any]:
    """The JSON object in ``path`` (``what`` it is, e.g. "the probe's configuration"); ``fix`` says
    what to do if the file is missing or damaged (e.g. "run the probe again")."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{path} is missing ({what}): {fix}") from error
    except (OSError, UnicodeDecodeError) as error:
        raise DamagedFileError(f"{path} ({what}) cannot be read ({error}): {fix}") from error
    if not text.strip():
        raise DamagedFileError(f"{path} ({what}) is empty: {fix}")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise DamagedFileError(
            f"{path} ({what}) is damaged, not valid JSON (cut short?): {error}; {fix}"
        ) from error
    if not isinstance(value, dict):
        raise DamagedFileError(
            f"{path} ({what}) holds a JSON {type(value).__name__}, not an object: {fix}"
        )
    return value


def load_saved(path: str | os.PathLike, what: str, fix: str) -> Any:
    """``datasets.load_from_disk(path)``, with a missing or damaged folder a clear error."""
    import datasets

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing ({what}): {fix}")
    try:
        return datasets.load_from_disk(str(path))
    except Exception as error:  # ArrowInvalid, OSError, JSONDecodeError, ...: name the file
        damaged = _damaged_arrow_file(path)
        where = f"{path} ({what})" + (f": its file {damaged}" if damaged else "")
        raise DamagedFileError(
            f"{where} cannot be read: {type(error).__name__}: {error}; {fix}"
        ) from error


def _damaged_arrow_file(folder: Path) -> Path | None:
    """The first Arrow file under a ``save_to_disk`` folder that pyarrow cannot read, if any."""
    import pyarrow as pa

    for file in sorted(folder.glob("**/*.arrow")):
        try:
            with pa.memory_map(str(file)) as source:
                pa.ipc.open_stream(source).read_all()
        except Exception:
            return file.relative_to(folder)
    return None


def read_parquet(path: str | os.PathLike, what: str, fix: str) -> Any:
    """``pyarrow.parquet.read_table(path)``, with a missing or damaged file a clear error."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing ({what}): {fix}")
    try:
        return pq.read_table(path)
    except Exception as error:  # ArrowInvalid, OSError: name the file
        raise DamagedFileError(
            f"{path} ({what}) cannot be read: {type(error).__name__}: {error}; {fix}"
        ) from error
