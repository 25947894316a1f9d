"""A ``DRoPFilter`` as one JSON file: its parameters and, when fitted, its fit.

``DRoPFilter.save(path)`` / ``DRoPFilter.load(path)`` go through here. The file is plain JSON (no
pickle: loading it runs no code), and lossless: a loaded filter has the same parameters (so a
refit gives the same subset), the same record, and the same kept rows, still checked by identity
(``apply`` refuses any dataset but the fitted one, exactly as before saving).

Values JSON has no type for are tagged objects: ``{"ndarray": {...}}`` (dtype, shape and the
bytes, zlib-compressed and base64-encoded, so that per-row arrays stay small), ``{"mapping":
[[key, value], ...]}`` (int and str keys kept apart), ``{"series": ...}``, ``{"class_errors":
...}``, ``{"quota_rule": "drop(mode='count', ...)"}`` (every setting pinned) and ``{"float":
"nan"}``. A parameter of any other type is refused at ``save``, naming it.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import os
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..core import rules as R
from ..core.uncertainty import ClassErrors
from ..io.files import DamagedFileError, read_json
from ..io.outputs import atomic_file
from .record import PruningRecord
from .rows import ById, ByKey, ByPosition, FittedRows, UnitReader
from .stream import ClassReader, StreamDecision

if TYPE_CHECKING:
    from .filter import DRoPFilter

__all__ = ["FORMAT", "FORMAT_VERSION", "load_filter", "save_filter"]

FORMAT = "hf_drop.DRoPFilter"
FORMAT_VERSION = 1
_FIX = "save the filter again with DRoPFilter.save(path)"


def save_filter(drop: DRoPFilter, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``drop`` (fitted or not) to the JSON file ``path``; complete or absent. An existing
    file is replaced only with ``overwrite=True``. A filter with a parameter changed since its
    fit is refused (its fit and its parameters would disagree)."""
    params = drop.get_params()
    fitted = None
    if hasattr(drop, "rows_"):
        rows = drop.fitted_rows()  # a stale fit is refused here, naming the changed parameters
        fitted = {"record": drop.record_.to_dict(), "rows": _rows_to_json(rows)}
    from .._version import __version__

    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "hf_drop_version": __version__,
        "params": {name: _encode(value, name) for name, value in params.items()},
        "fitted": fitted,
    }
    text = json.dumps(document, indent=1, allow_nan=False)
    with atomic_file(path, overwrite=overwrite, what="DRoPFilter file") as tmp:
        tmp.write_text(text)
    return Path(path)


def load_filter(cls: type[DRoPFilter], path: str | os.PathLike) -> DRoPFilter:
    """The filter saved in ``path`` by :func:`save_filter`: a ``DamagedFileError`` (a
    ``ValueError``) names the file and what is wrong with it."""
    document = read_json(path, "a saved DRoPFilter", _FIX)
    if document.get("format") != FORMAT:
        raise DamagedFileError(
            f"{path} is not a saved DRoPFilter (its 'format' is {document.get('format')!r}, "
            f"expected {FORMAT!r}): load a file written by DRoPFilter.save"
        )
    version = document.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise DamagedFileError(
            f"{path} is a saved DRoPFilter of format_version {version!r}; this hf-drop reads "
            f"format_version {FORMAT_VERSION} and older: upgrade hf-drop"
        )
    try:
        params = {name: _decode(value) for name, value in document["params"].items()}
        drop = cls(**params)
        fitted = document.get("fitted")
        if fitted is not None:
            record = _record(fitted["record"])
            drop._set_fitted(record, _rows_from_json(fitted["rows"]), params)
    except (KeyError, TypeError, IndexError, AttributeError, ValueError) as error:
        if isinstance(error, DamagedFileError):
            raise
        raise DamagedFileError(f"{path} (a saved DRoPFilter) is damaged: {error!r}; {_FIX}") from (
            error
        )
    return drop


# --- values ---------------------------------------------------------------------------------------


def _encode(value: Any, name: str) -> Any:
    """A parameter value as JSON that :func:`_decode` turns back into an equal value."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, np.generic):
        return _encode(value.item(), name)
    if isinstance(value, ClassErrors):
        return {
            "class_errors": {
                "names": list(value.names),
                "errors": _array(value.errors),
                "support": _array(value.support),
                "mistakes": _array(value.mistakes),
                "train_sizes": None if value.train_sizes is None else _array(value.train_sizes),
                "num_inits": value.num_inits,
            }
        }
    if isinstance(value, R.QuotaRule):
        return {"quota_rule": value.spec(full=True)}
    if isinstance(value, R.KeepRule):
        return {"keep_rule": value.spec(full=True)}
    if isinstance(value, np.ndarray):
        return {"ndarray": _array(value)}
    if isinstance(value, pd.Series):
        return {"series": {"index": _array(value.index.to_numpy()), "values": _array(value)}}
    if isinstance(value, Mapping):
        return {"mapping": [[_encode(k, name), _encode(v, name)] for k, v in value.items()]}
    if isinstance(value, list | tuple):
        return {"list": [_encode(v, name) for v in value], "tuple": isinstance(value, tuple)}
    raise TypeError(
        f"DRoPFilter.save cannot write parameter {name!r}, a {type(value).__name__}: give it as a "
        "number, string, list, dict, numpy array, pandas Series, ClassErrors or rule object"
    )


_TAGS: dict[str, Callable[[Any], Any]] = {
    "float": float,
    "class_errors": lambda d: ClassErrors(
        names=tuple(d["names"]),
        errors=_unarray(d["errors"]),
        support=_unarray(d["support"]),
        mistakes=_unarray(d["mistakes"]),
        train_sizes=None if d["train_sizes"] is None else _unarray(d["train_sizes"]),
        num_inits=d["num_inits"],
    ),
    "quota_rule": R.quota_rule,
    "keep_rule": R.keep_rule,
    "ndarray": lambda d: _unarray(d),
    "series": lambda d: pd.Series(_unarray(d["values"]), index=_unarray(d["index"])),
    "mapping": lambda pairs: {_decode(k): _decode(v) for k, v in pairs},
}


def _decode(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if "list" in value:
        items = [_decode(v) for v in value["list"]]
        return tuple(items) if value.get("tuple") else items
    (tag, content), *rest = value.items()
    if rest or tag not in _TAGS:
        raise ValueError(f"unknown value {value!r}")
    return _TAGS[tag](content)


def _array(values: Any) -> dict[str, Any]:
    """An array as JSON: strings and other objects as a list, numbers as compressed bytes."""
    array = np.asarray(values)
    if array.dtype.kind in "OUS":
        items = [v.item() if isinstance(v, np.generic) else v for v in array.reshape(-1)]
        if not all(isinstance(v, str | int | float | bool) for v in items):
            raise TypeError(f"cannot write an array of {array.dtype} values as JSON")
        return {"shape": list(array.shape), "values": items}
    data = zlib.compress(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).data)
    return {
        "dtype": array.dtype.newbyteorder("<").str,
        "shape": list(array.shape),
        "zlib_base64": base64.b64encode(data).decode("ascii"),
    }


def _unarray(d: Mapping[str, Any]) -> np.ndarray:
    shape = tuple(d["shape"])
    if "values" in d:
        array = np.empty(len(d["values"]), dtype=object)
        array[:] = d["values"]
        return array.reshape(shape)
    raw = zlib.decompress(base64.b64decode(d["zlib_base64"]))
    return np.frombuffer(raw, dtype=np.dtype(d["dtype"])).reshape(shape).copy()


# --- the fit --------------------------------------------------------------------------------------


def _record(saved: Mapping[str, Any]) -> PruningRecord:
    names = {f.name for f in dataclasses.fields(PruningRecord)} - {"extra"}
    fields = {k: v for k, v in saved.items() if k in names}
    extra = {k: v for k, v in saved.items() if k not in names}
    return PruningRecord(**fields, extra=extra)


def _rows_to_json(rows: FittedRows) -> dict[str, Any]:
    units = dataclasses.asdict(rows.units)
    if isinstance(rows, ByKey):
        d = rows.decision
        return {
            "kind": "by_key",
            "units": units,
            "reader": dataclasses.asdict(d.reader),
            "id_column": d.id_column,
            "keys": _array(d.keys),
            "thresholds": _array(d.thresholds),
            "keep_none": _array(d.keep_none),
            "id_kind": d.id_kind,
            "exact": rows.exact,
            "sizes": _array(rows.sizes),
            "quotas": _array(rows.quotas),
        }
    if isinstance(rows, ById | ByPosition):
        common = {"units": units, "labels": _array(rows.labels), "indices": _array(rows.indices)}
        if isinstance(rows, ById):
            return {"kind": "by_id", **common, "ids": _array(rows.ids.to_numpy()), "id": rows.key}
        return {
            "kind": "by_position",
            **common,
            "identity": rows.identity,
            "subset_identity": rows.subset_identity,
        }
    raise TypeError(f"DRoPFilter.save cannot write fitted rows of type {type(rows).__name__}")


def _rows_from_json(saved: Mapping[str, Any]) -> FittedRows:
    units = UnitReader(**saved["units"])
    kind = saved["kind"]
    if kind == "by_key":
        decision = StreamDecision(
            reader=ClassReader(**saved["reader"]),
            id_column=saved["id_column"],
            keys=_unarray(saved["keys"]),
            thresholds=_unarray(saved["thresholds"]),
            keep_none=_unarray(saved["keep_none"]),
            id_kind=saved["id_kind"],
        )
        sizes, quotas = _unarray(saved["sizes"]), _unarray(saved["quotas"])
        return ByKey(units, decision, saved["exact"], sizes, quotas)
    labels = _unarray(saved["labels"]).astype(np.int64)
    indices = _unarray(saved["indices"]).astype(np.int64)
    if kind == "by_id":
        return ById(units, labels, indices, pd.Index(_unarray(saved["ids"])), saved["id"])
    if kind == "by_position":
        return ByPosition(units, labels, indices, saved["identity"], saved["subset_identity"])
    raise ValueError(f"unknown kind of fitted rows {kind!r}")
