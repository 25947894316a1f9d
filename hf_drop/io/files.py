"""Reading back what was written earlier (JSON records, ``save_to_disk`` folders, parquet tables).

A damaged file (empty, cut short, garbage) is a :class:`DamagedFileError` that names the file, says
what it should hold and what to do about it, never a ``JSONDecodeError`` or an ``ArrowInvalid``
from deep inside a library. No torch here: the probe result, the CLI and the Hub code all use it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "DamagedFileError",
    "check_fields",
    "load_saved",
    "read_json",
    "read_parquet",
    "read_record",
]


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


# What read_record's field types mean: float is any number, int excludes True/False.
_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", int: "an int", float: "a number"}


def read_record(
    path: str | os.PathLike,
    what: str,
    fix: str,
    fields: Mapping[str, type | tuple[type | None, ...]],
    *,
    version: int = 1,
) -> dict[str, Any]:
    """The JSON record in ``path``, read as :func:`read_json` reads it, with every one of ``fields``
    present and of its type, or a :class:`DamagedFileError` that names the file and the fields.

    ``fields`` maps a field (``"params.density"`` inside ``"params"``) to its type: ``dict``,
    ``list``, ``str``, ``int``, ``float`` (any number), ``object`` (present, any value), or a
    tuple of them where ``None`` is allowed too. The record's ``format_version`` may be at most ``version``; a record without one
    is version 0 (written before records had versions) and is read when its fields are there."""
    record = read_json(path, what, fix)
    found = record.get("format_version", 0)
    if not _is(found, int) or found < 0:
        raise DamagedFileError(
            f"{path} ({what}): its field 'format_version' is {found!r}, not an int >= 0: {fix}"
        )
    if found > version:
        raise DamagedFileError(
            f"{path} ({what}) has format_version {found}; this hf-drop reads up to {version}: "
            "it was written by a newer hf-drop; upgrade hf-drop to read it"
        )
    check_fields(record, fields, path, what, fix)
    return record


def check_fields(
    record: Mapping[str, Any],
    fields: Mapping[str, type | tuple[type | None, ...]],
    path: str | os.PathLike,
    what: str,
    fix: str,
    *,
    prefix: str = "",
) -> None:
    """A :class:`DamagedFileError` unless ``record`` (read from ``path``) has every one of
    ``fields`` with its type (as :func:`read_record` takes them); ``prefix`` names where
    ``record`` sits in the file (``"classes[3]."``)."""
    missing, wrong = [], []
    for name, kind in fields.items():
        value: Any = record
        for key in name.split("."):
            value = value.get(key, _MISSING) if isinstance(value, dict) else _MISSING
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if value is _MISSING:
            # Inside a field already missing: that one is named, not everything it would hold.
            if not any(name.startswith(f"{m[len(prefix) :]}.") for m in missing):
                missing.append(prefix + name)
        elif not any(_is(value, k) for k in kinds):
            expected = " or ".join("null" if k is None else _TYPE_NAMES[k] for k in kinds)
            wrong.append(f"{prefix + name!r} is {_short(value)}, not {expected}")
    if missing:
        raise DamagedFileError(
            f"{path} ({what}) lacks the field{'s' if len(missing) > 1 else ''} "
            f"{', '.join(map(repr, missing))}: it is not an hf-drop record, or it was cut or "
            f"edited; {fix}"
        )
    if wrong:
        raise DamagedFileError(
            f"{path} ({what}): field {'; field '.join(wrong)}: it is not an hf-drop record, or it "
            f"was edited; {fix}"
        )


_MISSING = object()


def _is(value: Any, kind: type | None) -> bool:
    if kind is None:
        return value is None
    if kind in (int, float) and isinstance(value, bool):
        return False
    return isinstance(value, (int, float) if kind is float else kind)


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


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
