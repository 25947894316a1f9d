"""The package's layers: every import inside hf_drop runs downward, and the light layers stay light.

The order is the pipeline's (see ``hf_drop/__init__.py``). A module may import from its own layer
and those before it, at module level or inside a function alike: a lazy import that runs upward
is still a cycle in the design.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import hf_drop

PACKAGE = Path(hf_drop.__file__).parent
LAYERS = [
    "_version",
    "core",
    "io",
    "data",
    "evaluation",
    "modeling",
    "probe",
    "pruning",
    "train",
    "hub",
    "cli",
    "__main__",
    "__init__",
]


def _layer(module: str) -> int:
    """Rank of the layer of ``hf_drop.x.y`` (x decides); the package root is the top."""
    parts = module.split(".")
    head = parts[1] if len(parts) > 1 else "__init__"
    if head not in LAYERS:
        raise AssertionError(f"{module} is in no layer: add {head!r} to LAYERS")
    return LAYERS.index(head)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every hf_drop import in ``path``, at any depth."""
    name = _module_name(path)
    return _imports_in(path.read_text(), name, is_package=path.name == "__init__.py")


def _imports_in(source: str, name: str, is_package: bool) -> list[tuple[int, str]]:
    package = name if is_package else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            targets = [target]
            if node.module is None or target.count(".") == 0:  # from . import x: x may be a module
                targets = [f"{target}.{alias.name}" for alias in node.names]
            found += [(node.lineno, t) for t in targets if t.startswith("hf_drop")]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("hf_drop")]
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))
# The one call that runs up, on purpose, and why: a card's reproduce commands are spelled by
# the command line, the only place that knows how a command is spelled (DESIGN.md: cli/ builds
# the reproduce command from a record). The reproduce module imports nothing from hub.
CALLS_UP = {("hf_drop.hub", "hf_drop.cli.reproduce")}


def test_every_module_is_in_a_layer():
    for path in MODULES:
        _layer(_module_name(path) if path.name != "__init__.py" or path.parent != PACKAGE else "x")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_downward(path: Path):
    name = _module_name(path)
    if path.parent == PACKAGE and path.name == "__init__.py":
        return  # the package root re-exports every layer
    here = _layer(name)
    upward = [
        f"line {line}: {target}"
        for line, target in _imports(path)
        if _layer(target) > here and (name, target) not in CALLS_UP
    ]
    assert not upward, f"{name} (layer {LAYERS[here]}) imports upward: {upward}"


def test_the_checker_sees_an_upward_import():
    """The rule above can fail: a core module importing the filter is caught, lazy or not."""
    text = "import numpy\n\ndef f():\n    from ..pruning.filter import DRoPFilter\n"
    found = _imports_in(text, "hf_drop.core.fake", is_package=False)
    assert found == [(4, "hf_drop.pruning.filter")]
    assert _layer(found[0][1]) > _layer("hf_drop.core.fake")
    from_root = _imports_in("from .. import cli\n", "hf_drop.core.fake", is_package=False)
    assert from_root == [(1, "hf_drop.cli")]


ENTRY_POINTS = [
    "import hf_drop",
    "from hf_drop import DRoPFilter",
    "from hf_drop import ProbeResult",
    "from hf_drop.probe import ProbeResult",
    "import hf_drop.cli",
]
CORE = (
    "import hf_drop.core.quotas, hf_drop.core.selection, hf_drop.core.uncertainty, "
    "hf_drop.core.rules"
)
HEAVY = ("torch", "datasets", "pandas", "transformers", "timm")


@pytest.fixture(scope="module")
def loaded() -> dict[str, dict[str, bool]]:
    """For each entry point, which heavy libraries a fresh interpreter holds after it (the
    interpreters run side by side: each takes about a second to start)."""
    report = f"\nimport json, sys\nprint(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    runs = {
        code: subprocess.Popen(
            [sys.executable, "-c", code + report], stdout=subprocess.PIPE, text=True
        )
        for code in [CORE, *ENTRY_POINTS]
    }
    found = {}
    for code, run in runs.items():
        out, _ = run.communicate()
        assert run.returncode == 0, code
        found[code] = json.loads(out.strip().splitlines()[-1])
    return found


@pytest.mark.slow
def test_core_imports_numpy_only(loaded):
    assert not any(loaded[CORE].values()), loaded[CORE]


@pytest.mark.parametrize("code", ENTRY_POINTS)
@pytest.mark.slow
def test_reading_and_pruning_never_import_torch(code, loaded):
    modules = loaded[code]
    assert not modules["torch"] and not modules["transformers"] and not modules["timm"], modules


def test_lazy_exports_resolve():
    for name in hf_drop.__all__:
        assert getattr(hf_drop, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        hf_drop.nope  # noqa: B018
