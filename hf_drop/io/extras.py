"""Optional dependencies: which extra of hf-drop installs a module, and the error that says so.

``pip install hf-drop`` installs what pruning needs (numpy, pandas, pyarrow, datasets,
huggingface_hub, pillow for images); the probe, training and plots need the extras ``probe``, ``train`` and
``plots``. Where hf-drop reaches an optional module, :func:`require` imports it or raises a
:class:`MissingExtraError` that names the extra and the command that installs it, and
:func:`require_extra` checks a whole extra before work starts (``hf-drop probe`` exits 2 with that
message, not a traceback). The extras themselves are declared in ``pyproject.toml``; a test
checks that every module hf-drop imports is declared there.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

__all__ = [
    "DISTRIBUTIONS",
    "EXTRAS",
    "MissingExtraError",
    "explain",
    "missing_modules",
    "require",
    "require_extra",
]

# The optional modules hf-drop imports, by the extra that installs them (pyproject.toml declares
# the same; scikit-learn is for the built-in digits dataset).
_MODELS = ("torch", "torchvision", "accelerate", "transformers", "timm", "sklearn")
EXTRAS: dict[str, tuple[str, ...]] = {
    "probe": _MODELS,
    "train": (*_MODELS, "evaluate"),
    "plots": ("matplotlib",),
}
# Import names whose distribution is named otherwise.
DISTRIBUTIONS = {"PIL": "pillow", "sklearn": "scikit-learn", "yaml": "pyyaml"}


class MissingExtraError(ModuleNotFoundError):
    """An optional dependency is not installed; the message names the extra that installs it."""


def _message(what: str, packages: list[str], extra: str, alone: bool = False) -> str:
    """``alone``: the one package is all that ``what`` lacks (a feature that needs only it)."""
    names = ", ".join(packages)
    verb = "is" if len(packages) == 1 else "are"
    alone = alone and len(packages) == 1 and len(EXTRAS.get(extra, ())) > 1
    also = f", or just pip install {packages[0]}" if alone else ""
    return (
        f"{what} needs hf-drop[{extra}] ({names} {verb} not installed): "
        f"pip install 'hf-drop[{extra}]'{also}"
    )


def require(module: str, extra: str, what: str | None = None) -> ModuleType:
    """``importlib.import_module(module)``, or a :class:`MissingExtraError` naming ``extra``
    when ``module`` (or the package it belongs to) is not installed. ``what`` names the feature
    in the message (default: the module)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        top = module.partition(".")[0]
        if error.name is None or error.name.partition(".")[0] != top:
            raise  # something else is missing: not ours to explain
        package = DISTRIBUTIONS.get(top, top)
        message = _message(what or module, [package], extra, alone=what is not None)
        raise MissingExtraError(message, name=top) from None


def explain(error: ModuleNotFoundError, extra: str, what: str) -> ModuleNotFoundError:
    """``error`` said as a :class:`MissingExtraError` naming ``extra`` when the module it misses
    is an optional one (of any extra); any other missing module is returned as it was."""
    top = (error.name or "").partition(".")[0]
    optional = {module for modules in EXTRAS.values() for module in modules}
    if isinstance(error, MissingExtraError) or top not in optional:
        return error
    return MissingExtraError(_message(what, [DISTRIBUTIONS.get(top, top)], extra), name=top)


def missing_modules(extra: str) -> list[str]:
    """The distributions of ``extra`` whose modules cannot be found (nothing is imported)."""
    return [
        DISTRIBUTIONS.get(module, module)
        for module in EXTRAS[extra]
        if importlib.util.find_spec(module) is None
    ]


def require_extra(extra: str, what: str) -> None:
    """Refuse early, naming ``extra``, when any module of it is missing: ``what`` (e.g.
    ``"hf-drop probe"``) is what the user asked for."""
    missing = missing_modules(extra)
    if missing:
        raise MissingExtraError(_message(what, missing, extra), name=missing[0])
