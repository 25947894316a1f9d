"""Where hf-drop writes: folders it creates, marks as its own, and never lets overlap its inputs.

A user's files are sacred. Every folder hf-drop writes holds :data:`OUTPUT_MARKER`, a small JSON
record of what kind of output it is and of every file and folder hf-drop wrote into it
(``"files"``, relative paths, folders ending in ``/``). A folder is only ever replaced when it
holds that marker with the same kind, the caller asked to overwrite it (``overwrite=True``,
``--overwrite``), and everything in it is listed there: a file the user added to a previous output,
at any depth, makes the overwrite refuse, naming the file, before anything is removed. An existing
non-empty folder without the marker, a folder of another kind, a file, and any output that is,
contains or lies inside one of the inputs being read are refused before anything is written, with
an :class:`OutputError` (a ``ValueError``) that names the folder and the fix.

How the list stays true: :func:`atomic_output` lists the temporary folder once the block has
written it (everything there is hf-drop's), just before it takes the output's place. An output
written in place over time (:func:`start_output`: a probe run that resumes) starts with an empty
list, and its writers add what they write with :func:`claim`. Recognised by their names instead:
the probe's checkpoints (``checkpoints/initIII-epochEEEE/``), written and removed as it goes, and
the ``cache-<fingerprint>.arrow`` files that ``datasets`` adds beside a saved dataset's shards.
A marker written before hf-drop listed its files (no ``"files"``) is trusted only for the files
its kind is known to write (a ``save_to_disk`` folder's Arrow shards and JSON, hf-drop's own
records); anything else in such a folder makes the overwrite refuse.

An output given as a symlink is written *through* the link: the link stays a link and its target
receives the result. :func:`atomic_output` writes into a hidden temporary sibling of the real
folder (``.NAME.XXXX.partial``, same filesystem) and renames it into place only once complete, so
a killed process never leaves a half-written folder under the output's name.

Standard library only: the CLI checks its ``--output`` with this module before loading anything.
"""

from __future__ import annotations

import errno
import json
import os
import re
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
    "claim",
    "dataset_folders",
    "missing_folders",
    "output_kind",
    "prepare_output",
    "read_marker",
    "release_output",
    "remove_empty",
    "start_output",
]

OUTPUT_MARKER = ".hf-drop-output.json"
MARKER_VERSION = 1  # 1: the marker lists the files ("files"); 0 (no "format_version"): it did not

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
    resolved), which is where to write. Nothing is written.

    Refused (:class:`OutputError`): a ``folder`` that is, contains or lies inside one of
    ``inputs`` (what is read: ``None`` entries are skipped); one that exists and is not a
    folder; an existing non-empty folder unless its marker says ``kind`` and ``overwrite`` (to
    replace it) or ``resume`` (to go on writing into it) is set; with ``overwrite``, a previous
    output holding anything its marker does not list (a user's file, at any depth); a folder that
    cannot be written. An existing empty folder is fine. ``what`` names the folder in messages (e.g. ``"--output"``).
    Missing parent folders are not created: the writer creates them (and removes them again
    if it fails).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown output kind {kind!r}: one of {sorted(KINDS)}")
    for name, flag in (("overwrite", overwrite), ("resume", resume)):
        if not isinstance(flag, bool):  # "false" is truthy: it would replace the user's output
            raise OutputError(f"{name} must be True or False, got {flag!r}: nothing was written")
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
            if overwrite:
                _refuse_foreign(real, record, label, noun)
        if not os.access(real, os.W_OK | os.X_OK):
            raise OutputError(
                f"{label} is not writable: nothing was written; choose another folder"
            )
        return real

    missing = missing_folders(real.parent)
    try:
        if missing:
            # Checked without creating them (a refusal, or a failed run, would leave them
            # behind; and processes checking at once would race to remove them): the nearest
            # existing folder must take a new one.
            base = missing[-1].parent
            if not base.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(base))
            if not os.access(base, os.W_OK | os.X_OK):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(base))
        else:
            _new_partial(real).rmdir()
    except OSError as error:
        raise OutputError(
            f"{label} cannot be created ({error.strerror or error}"
            f"{f': {error.filename}' if getattr(error, 'filename', None) else ''}): nothing was "
            "written; choose a folder you can write to"
        ) from error
    return real


def missing_folders(path: str | os.PathLike) -> list[Path]:
    """``path`` and those of its parents that do not exist yet, deepest first: what creating
    ``path`` would create, and what a failed run removes again (:func:`remove_empty`)."""
    missing = []
    path = Path(os.path.abspath(path))
    while not os.path.lexists(path) and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def remove_empty(folders: Iterable[Path]) -> None:
    """Remove those of ``folders`` (deepest first) that exist and are empty; never anything
    else (a folder in which something appeared meanwhile stays)."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # absent, or not empty
            pass


def start_output(
    folder: str | os.PathLike,
    kind: str,
    *,
    inputs: Iterable[str | os.PathLike | None] = (),
    what: str = "output folder",
) -> Path:
    """For an output written in place over time (a probe run that resumes): check it as
    :func:`prepare_output` does with ``resume=True``, then create the folder and write its marker
    at once, so that an unwritable folder fails before any work. Returns the real path.

    The marker's list of files starts empty: whoever writes into the folder adds what it writes
    with :func:`claim`."""
    real = prepare_output(folder, kind, resume=True, inputs=inputs, what=what)
    try:
        real.mkdir(parents=True, exist_ok=True)
        if read_marker(real) is None:
            _write_marker(real, kind, [])
    except OSError as error:
        raise OutputError(
            f"{what} {folder} cannot be written ({error.strerror or error}): choose a folder you "
            "can write to"
        ) from error
    return real


def release_output(folder: str | os.PathLike, kind: str, *, created: Iterable[Path] = ()) -> bool:
    """Undo :func:`start_output` for a run that failed before it wrote anything: remove the
    marker and the empty folders in ``folder``, and those of ``created`` (what the run created:
    ``folder`` and its parents, :func:`missing_folders`) that are then empty; a folder the user
    made stays, as it was. Nothing happens, and ``False`` is returned, when the folder holds any
    file but its marker (a checkpoint to resume, a user's file) or is not an output of
    ``kind``."""
    real = Path(os.path.realpath(folder))
    record = read_marker(real)
    if record is None or record["kind"] != kind or _listed(record):
        return False
    try:
        entries = _entries(real)
    except OSError:
        return False
    if any(not entry.endswith("/") for entry in entries):
        return False
    for entry in sorted(entries, key=lambda e: -e.count("/")):  # the deepest folders first
        (real / entry).rmdir()
    (real / OUTPUT_MARKER).unlink()
    remove_empty(created)
    return True


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
    previous output of the same kind with ``overwrite=True`` and nothing in it but what its marker
    lists, is replaced; anything else is refused). The new marker lists every file the block
    wrote. An exception removes the temporary folder and nothing else; a killed process leaves
    at most a hidden ``.NAME.XXXX.partial`` folder, never a half-written ``folder``.
    """
    inputs = list(inputs)
    real = prepare_output(folder, kind, overwrite=overwrite, inputs=inputs, what=what)
    created = missing_folders(real.parent)
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
        tmp = _new_partial(real)
    except OSError as error:
        remove_empty(created)
        raise OutputError(
            f"{what} {folder}: its parent folder {real.parent} is not writable "
            f"({error.strerror or error}): nothing was written; choose another folder"
        ) from error
    try:
        _write_marker(tmp, kind, [])
        yield tmp
        # Everything in the temporary folder is what the block wrote: that is the output's list,
        # with each file's size and time, so that a file edited later is the user's, not ours.
        entries = _entries(tmp)
        _write_marker(tmp, kind, entries, _stamps(tmp, entries))
        # Checked again: something may have appeared under the name while the output was written.
        prepare_output(folder, kind, overwrite=overwrite, inputs=inputs, what=what)
        _swap(tmp, real, kind)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        remove_empty(created)  # a failed run leaves no folder of its own behind, not even empty
        raise
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
        if not isinstance(overwrite, bool):
            raise OutputError(f"overwrite must be True or False, got {overwrite!r}")
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


def claim(folder: str | os.PathLike, *names: str) -> None:
    """Add ``names`` (paths relative to ``folder``: files, or folders with everything in them) to
    the files the marker of the output ``folder`` lists as hf-drop's: for an output written in
    place (:func:`start_output`). Call it before the files are complete, so that a run cut short
    leaves nothing of its own unlisted. A folder without a marker is not an output: left alone."""
    folder = Path(folder)
    record = read_marker(folder)
    if record is None:
        return
    listed = set(_listed(record) or [])
    for name in names:
        path = folder / name
        if path.is_dir() and not path.is_symlink():
            listed.add(Path(name).as_posix() + "/")
            inside = _entries(path, own_marker=False)  # a nested output's marker is ours too
            listed.update(f"{Path(name).as_posix()}/{entry}" for entry in inside)
        else:
            listed.add(Path(name).as_posix())
    _write_marker(folder, record["kind"], sorted(listed))


def _write_marker(
    folder: Path, kind: str, files: list[str], stamps: dict[str, list[int]] | None = None
) -> None:
    from .._version import __version__

    record: dict[str, Any] = {
        "kind": kind,
        "format_version": MARKER_VERSION,
        "hf_drop_version": __version__,
        "files": files,
    }
    if stamps is not None:
        record["stamps"] = stamps
    partial = folder / (OUTPUT_MARKER + ".partial")
    partial.write_text(json.dumps(record, indent=0) + "\n")
    partial.replace(folder / OUTPUT_MARKER)


def _entries(folder: Path, *, own_marker: bool = True) -> list[str]:
    """Every file and folder under ``folder`` as a relative POSIX path (folders end in ``/``),
    without ``folder``'s own marker (unless ``own_marker=False``). Links are entries, never
    followed."""
    found = []

    def unreadable(error: OSError) -> None:
        raise error  # a folder that cannot be listed may hold anything: never skip it

    for root, dirs, files in os.walk(folder, onerror=unreadable):
        base = Path(root).relative_to(folder)
        for name in dirs:
            link = os.path.islink(os.path.join(root, name))
            found.append((base / name).as_posix() + ("" if link else "/"))
        found.extend((base / name).as_posix() for name in files)
    own = {OUTPUT_MARKER, OUTPUT_MARKER + ".partial"} if own_marker else set()
    return sorted(entry for entry in found if entry not in own)


def _stamps(folder: Path, entries: list[str]) -> dict[str, list[int]]:
    """Size and modification time (ns) of each listed file (not folders, not links)."""
    stamps = {}
    for entry in entries:
        path = folder / entry
        if not entry.endswith("/") and not path.is_symlink():
            info = path.stat()
            stamps[entry] = [info.st_size, info.st_mtime_ns]
    return stamps


def _edited(real: Path, record: dict[str, Any]) -> list[str]:
    """The listed files whose size or time changed since hf-drop wrote them: edited by hand."""
    stamps = record.get("stamps")
    if not isinstance(stamps, dict):
        return []
    edited = []
    for entry, stamp in stamps.items():
        path = real / entry
        if path.is_file() and not path.is_symlink():
            info = path.stat()
            if [info.st_size, info.st_mtime_ns] != stamp:
                edited.append(entry)
    return sorted(edited)


def _listed(record: dict[str, Any]) -> list[str] | None:
    """The files a marker lists, or ``None`` for a marker that lists none (older than the list)."""
    files = record.get("files")
    if isinstance(files, list) and all(isinstance(f, str) for f in files):
        return files
    return None


# What a kind's folder holds that its list cannot: the probe's checkpoints, which it writes and
# removes as it goes (hf_drop.probe.run), and the cache files `datasets` writes beside the Arrow
# files of a saved dataset (`map` or `filter` on what load_from_disk read: derived, fingerprint-
# named). Paths as _entries gives them.
_CACHE = r"cache-[0-9a-f]{16}(?:_\d{5}_of_\d{5})?\.arrow"
_PROBE_CHECKPOINTS = r"checkpoints/(?:init\d{3}-epoch\d{4}/.*)?"
_UNLISTED = {
    kind: re.compile(pattern)
    for kind, pattern in {
        "subset": _CACHE,
        "probe-scores": _CACHE,
        "cache": rf"[^/]+/{_CACHE}",
        "probe": rf"{_PROBE_CHECKPOINTS}|scores/{_CACHE}",
    }.items()
}
# What a kind writes, by name, for a marker older than the list of files: the output's own
# files and those of save_to_disk.
_SAVED = r"(?:data-\d{5}-of-\d{5}\.arrow|dataset_info\.json|state\.json)"
_SHARDS = r"(?:README\.md|data/|data/[^/]+\.parquet)"
_BEFORE_LISTS = {
    kind: re.compile(pattern)
    for kind, pattern in {
        "subset": rf"{_SAVED}|pruning\.json|pruning_report\.csv|kept_indices\.parquet",
        "probe-scores": _SAVED,
        "cache": rf"dataset_dict\.json|[^/]+/|[^/]+/{_SAVED}",
        "export": rf"{_SHARDS}|kept_fraction\.png",
        "scores-export": _SHARDS,
        "probe": (
            r"probe_config\.json|class_metrics\.json|splits\.json|scores/"
            rf"|scores/(?:{_SAVED}|\.hf-drop-output\.json)"
        ),
        "train": (
            r"metrics\.json|model/|model/(?:README\.md|config\.json|preprocessor_config\.json"
            r"|generation_config\.json|model(?:-\d{5}-of-\d{5})?\.safetensors"
            r"|model\.safetensors\.index\.json)|checkpoints/|checkpoints/checkpoint-\d+/[^/]*"
        ),
    }.items()
}


def _foreign(real: Path, record: dict[str, Any]) -> list[str]:
    """What the output ``real`` holds that hf-drop did not write (by its marker, or its kind's
    layout): the files and folders an overwrite would remove but must not."""
    listed = _listed(record)
    known = [_UNLISTED.get(record["kind"])]
    if listed is None:
        known.append(_BEFORE_LISTS.get(record["kind"]))
    patterns = [pattern for pattern in known if pattern is not None]
    ours = set(listed or [])
    return [
        entry
        for entry in _entries(real)
        if entry not in ours and not any(pattern.fullmatch(entry) for pattern in patterns)
    ]


def _refuse_foreign(real: Path, record: dict[str, Any], label: str, noun: str) -> None:
    """An OutputError naming the first file in the output ``real`` that hf-drop did not write."""
    try:
        foreign = _foreign(real, record)
    except OSError as error:
        raise OutputError(
            f"{label} cannot be read throughout ({error.strerror or error}: {error.filename}): "
            "nothing was removed or written; choose a new folder"
        ) from error
    edited = _edited(real, record)
    if edited:
        raise OutputError(
            f"{label} holds {edited[0]}, which hf-drop wrote but was changed since (edited by "
            "hand?): nothing was removed or written; move it out of the folder (or restore it) "
            "to replace the previous output, or choose a new folder"
        )
    if not foreign:
        return
    more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
    why = (
        "which hf-drop did not write there"
        if _listed(record) is not None
        else f"which is not a file an {noun} writes (the folder was written by an "
        "hf-drop that did not list its files)"
    )
    raise OutputError(
        f"{label} holds {foreign[0]}{more}, {why}: nothing was removed or written; move it out "
        "of the folder to replace the previous output, or choose a new folder"
    )


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
    try:
        record = read_marker(aside)
        unchanged = record is not None and record["kind"] == kind and not _foreign(aside, record)
    except OSError:
        unchanged = False
    # Changed under us (another kind, or a file added since the check): put it back, touch nothing.
    if not unchanged:
        aside.rename(real)
        raise OutputError(f"{real} changed while the new output was written: nothing was replaced")
    try:
        tmp.rename(real)
    except OSError:
        aside.rename(real)
        raise
    shutil.rmtree(aside)
