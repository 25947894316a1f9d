"""Where hf-drop writes: folders it creates, marks as its own, and never lets overlap its inputs.

A user's files are sacred. Every folder hf-drop writes holds :data:`OUTPUT_MARKER`, a small JSON
record of what kind of output it is; a folder is only ever replaced when it holds that marker with
the same kind and the caller asked to overwrite it (``overwrite=True``, ``--overwrite``). An
existing non-empty folder without the marker, a folder of another kind, a file, and any output
that is, contains or lies inside one of the inputs being read are refused before anything is
written, with an :class:`OutputError` (a ``ValueError``) that names the folder and the fix.

An output given as a symlink is written *through* the link: the link stays a link and its target
receives the result. :func:`atomic_output` writes into a hidden temporary sibling of the real
folder (``.NAME.XXXX.partial``, same filesystem) and renames it into place only once complete, so
a killed process never leaves a half-written folder under the output's name.

Standard library only: the CLI checks its ``--output`` with this module before loading anything.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "KINDS",
    "OUTPUT_MARKER",
    "OutputError",
    "atomic_file",
    "atomic_output",
    "dataset_folders",
    "output_kind",
    "prepare_output",
    "read_marker",
    "start_output",
]

OUTPUT_MARKER = ".hf-drop-output.json"

# Every kind of folder hf-drop writes, and how messages name it.
KINDS = {
    "subset": "hf-drop subset (save_subset / hf-drop prune)",
    "export": "hf-drop Hub export (hub.export / hf-drop push)",
    "scores-export": "hf-drop probe-score export (hub.export_scores)",
    "probe": "hf-drop probe run (run_probe / hf-drop probe)",
    "probe-scores": "hf-drop probe score table",
    "train": "hf-drop training run (train_and_evaluate / hf-drop train)",
    "cache": "hf-drop dataset cache",
}


class OutputError(ValueError):
    """An output folder that hf-drop refuses to write: nothing was written."""


def read_marker(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The marker record of a folder hf-drop wrote, or ``None`` (absent, unreadable, damaged)."""
    try:
        record = json.loads((Path(folder) / OUTPUT_MARKER).read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("kind"), str) else None


def output_kind(folder: str | os.PathLike) -> str | None:
    """The kind of hf-drop output ``folder`` is (``"subset"``, ``"export"``, ...), or ``None``."""
    record = read_marker(folder)
    return record["kind"] if record else None


def dataset_folders(*datasets: Any) -> list[Path]:
    """The folders holding the Arrow files of ``datasets`` (``Dataset.cache_files``): inputs that
    an output must not overlap. In-memory datasets have none."""
    folders = []
    for dataset in datasets:
        for entry in getattr(dataset, "cache_files", None) or []:
            if isinstance(entry, dict) and entry.get("filename"):
                folders.append(Path(entry["filename"]).parent)
    return folders


def prepare_output(
    folder: str | os.PathLike,
    kind: str,
    *,
    overwrite: bool = False,
    resume: bool = False,
    inputs: Iterable[str | os.PathLike | None] = (),
    what: str = "output folder",
) -> Path:
    """Check that ``folder`` may receive an output of ``kind``; return its real path (symlinks
    resolved), which is where to write. Nothing is written, except missing parent folders.

    Refused (:class:`OutputError`): a ``folder`` that is, contains or lies inside one of
    ``inputs`` (what is read: ``None`` entries are skipped); one that exists and is not a
    folder; an existing non-empty folder unless its marker says ``kind`` and ``overwrite`` (to
    replace it) or ``resume`` (to go on writing into it) is set; a folder that cannot be written.
    An existing empty folder is fine. ``what`` names the folder in messages (e.g. ``"--output"``).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown output kind {kind!r}: one of {sorted(KINDS)}")
    given = Path(folder)
    real = Path(os.path.realpath(given))
    label = f"{what} {given}" + (f" (a link to {real})" if given.is_symlink() else "")
    noun = KINDS[kind].split(" (")[0]

    _refuse_overlap(real, inputs, label, "folder")

    if os.path.lexists(real):
        if not real.is_dir():
            raise OutputError(
                f"{label} exists and is not a folder: nothing was written; choose a new folder"
            )
        try:
            entries = [entry.name for entry in os.scandir(real)]
        except OSError as error:
            raise OutputError(
                f"{label} cannot be read ({error.strerror or error}): nothing was written; "
                "choose another folder"
            ) from error
        if entries:
            record = read_marker(real)
            if record is None:
                raise OutputError(
                    f"{label} is not empty and is not a previous {noun}: nothing was written; "
                    "choose a new folder (or an empty one)"
                )
            if record["kind"] != kind:
                other = KINDS.get(record["kind"], f"hf-drop {record['kind']!r} output")
                raise OutputError(
                    f"{label} holds a previous {other.split(' (')[0]}, not a {noun}: nothing "
                    "was written; choose another folder"
                )
            if not (overwrite or resume):
                raise OutputError(
                    f"{label} holds a previous {noun}: nothing was written; pass overwrite=True "
                    "(--overwrite) to replace it, or choose a new folder"
                )
        if not os.access(real, os.W_OK | os.X_OK):
            raise OutputError(
                f"{label} is not writable: nothing was written; choose another folder"
            )
        return real

    try:
        real.parent.mkdir(parents=True, exist_ok=True)
        _new_partial(real).rmdir()
    except OSError as error:
        raise OutputError(
            f"{label} cannot be created ({error.strerror or error}"
            f"{f': {error.filename}' if getattr(error, 'filename', None) else ''}): nothing was "
            "written; choose a folder you can write to"
        ) from error
    return real


def start_output(
    folder: str | os.PathLike,
    kind: str,
    *,
    inputs: Iterable[str | os.PathLike | None] = (),
    what: str = "output folder",
) -> Path:
    """For an output written in place over time (a probe run that resumes): check it as
    :func:`prepare_output` does with ``resume=True``, then create the folder and write its marker
    at once, so that an unwritable folder fails before any work. Returns the real path."""
    real = prepare_output(folder, kind, resume=True, inputs=inputs, what=what)
    try:
        real.mkdir(exist_ok=True)
        if read_marker(real) is None:
            _write_marker(real, kind)
    except OSError as error:
        raise OutputError(
            f"{what} {folder} cannot be written ({error.strerror or error}): choose a folder you "
            "can write to"
        ) from error
    return real


@contextmanager
def atomic_output(
    folder: str | os.PathLike,
    kind: str,
    *,
    overwrite: bool = False,
    inputs: Iterable[str | os.PathLike | None] = (),
    what: str = "output folder",
) -> Iterator[Path]:
    """Yield a new temporary sibling of ``folder``'s real path, marked as an output of ``kind``;
    it takes ``folder``'s place only if the block succeeds.

    ``folder`` is checked first as :func:`prepare_output` checks it (an empty folder, or a
    previous output of the same kind with ``overwrite=True``, is replaced; anything else is
    refused). An exception removes the temporary folder and nothing else; a killed process leaves
    at most a hidden ``.NAME.XXXX.partial`` folder, never a half-written ``folder``.
    """
    inputs = list(inputs)
    real = prepare_output(folder, kind, overwrite=overwrite, inputs=inputs, what=what)
    try:
        tmp = _new_partial(real)
    except OSError as error:
        raise OutputError(
            f"{what} {folder}: its parent folder {real.parent} is not writable "
            f"({error.strerror or error}): nothing was written; choose another folder"
        ) from error
    try:
        _write_marker(tmp, kind)
        yield tmp
        # Checked again: something may have appeared under the name while the output was written.
        prepare_output(folder, kind, overwrite=overwrite, inputs=inputs, what=what)
        _swap(tmp, real, kind)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


@contextmanager
def atomic_file(
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    inputs: Iterable[str | os.PathLike | None] = (),
    what: str = "output file",
) -> Iterator[Path]:
    """Yield a temporary sibling path of the single file ``path`` (same suffix) to write; it
    replaces ``path`` (its real path: a symlink is written through) only if the block succeeds.

    A file has no room for a marker, so an existing ``path`` is replaced only with
    ``overwrite=True`` (the user named it and asked); a ``path`` that is a folder, or lies inside
    one of ``inputs``, is refused."""
    given = Path(path)
    real = Path(os.path.realpath(given))
    _refuse_overlap(real, inputs, f"{what} {given}", "path")
    if os.path.lexists(real):
        if not real.is_file():
            raise OutputError(
                f"{what} {given} exists and is not a file: nothing was written; choose a new path"
            )
        if not overwrite:
            raise OutputError(
                f"{what} {given} exists: nothing was written; pass overwrite=True (--overwrite) "
                "to replace it, or choose a new path"
            )
    tmp = real.with_name(f".{real.stem}.{secrets.token_hex(4)}.partial{real.suffix}")
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
        tmp.touch(exist_ok=False)
    except OSError as error:
        raise OutputError(
            f"{what} {given} cannot be written ({error.strerror or error}): nothing was written; "
            "choose a path you can write to"
        ) from error
    try:
        yield tmp
        os.replace(tmp, real)
    finally:
        tmp.unlink(missing_ok=True)


def _new_partial(real: Path) -> Path:
    """A new, empty, hidden sibling ``.NAME.XXXXXXXX.partial`` of ``real``, made with the
    permissions any new folder gets (``tempfile.mkdtemp`` would make it private to its owner)."""
    for _ in range(100):
        tmp = real.with_name(f".{real.name}.{secrets.token_hex(4)}.partial")
        try:
            tmp.mkdir()
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"no free temporary name beside {real}")


def _refuse_overlap(
    real: Path, inputs: Iterable[str | os.PathLike | None], label: str, place: str
) -> None:
    """An OutputError if the output ``real`` is, lies inside or contains one of ``inputs``."""
    for item in inputs:
        if item is None:
            continue
        source = Path(os.path.realpath(item))
        if real == source:
            relation = "is the input"
        elif real.is_relative_to(source):
            relation = "lies inside the input"
        elif source.is_relative_to(real):
            relation = "contains the input"
        else:
            continue
        raise OutputError(
            f"{label} {relation} {item}: an output never overlaps what is read; nothing was "
            f"written; choose a {place} outside it"
        )


def _write_marker(folder: Path, kind: str) -> None:
    from .._version import __version__

    record = {"kind": kind, "hf_drop_version": __version__}
    partial = folder / (OUTPUT_MARKER + ".partial")
    partial.write_text(json.dumps(record) + "\n")
    partial.replace(folder / OUTPUT_MARKER)


def _swap(tmp: Path, real: Path, kind: str) -> None:
    """Rename ``tmp`` to ``real``; an existing ``real`` is an empty folder or ours of ``kind``."""
    if not os.path.lexists(real):
        tmp.rename(real)
        return
    if not any(real.iterdir()):
        try:
            tmp.rename(real)  # POSIX: atomically replaces an empty folder
        except OSError:
            real.rmdir()  # only while still empty; a folder that filled up meanwhile stays
            tmp.rename(real)
        return
    # A previous output of the same kind, to be replaced: two renames, then the old one goes.
    aside = real.with_name(f".{real.name}.{secrets.token_hex(4)}.old")
    real.rename(aside)
    if output_kind(aside) != kind:  # changed under us: put it back, touch nothing
        aside.rename(real)
        raise OutputError(f"{real} changed while the new output was written: nothing was replaced")
    try:
        tmp.rename(real)
    except OSError:
        aside.rename(real)
        raise
    shutil.rmtree(aside)
