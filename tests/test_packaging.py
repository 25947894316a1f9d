"""The install: the core (``pip install hf-drop``) prunes without torch, a command that needs an
extra names it, and ``pyproject.toml`` declares every module hf-drop imports.

The core is proved in a child process in which the optional modules cannot be found: a
``sitecustomize`` (first on ``PYTHONPATH``) wraps every finder on ``sys.meta_path`` so that
torch, transformers and the rest look not installed (``importlib.util.find_spec`` gives None, an
import raises ``ModuleNotFoundError``), as they are after ``pip install hf-drop``.
"""

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import numpy as np
import pytest
from conftest import image_dataset

import hf_drop
from hf_drop.io.extras import DISTRIBUTIONS, EXTRAS, MissingExtraError, require

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# transformers is in the core (the command line's HfArgumentParser), without torch.
HIDDEN = ["torch", "torchvision", "timm", "accelerate", "evaluate", "matplotlib"]
HIDDEN += ["sklearn"]

SITECUSTOMIZE = f"""
import sys

HIDDEN = {set(HIDDEN)!r}


class Hidden:
    # A finder that finds nothing of the hidden packages and defers to the one it wraps for
    # everything else (distribution metadata included).
    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            return None
        find = getattr(self.finder, "find_spec", None)
        return None if find is None else find(name, path, target)

    def __getattr__(self, name):
        return getattr(self.finder, name)


sys.meta_path[:] = [Hidden(finder) for finder in sys.meta_path]
"""


def requirement_name(requirement: str) -> str:
    """``"mkdocstrings[python]>=0.26"`` -> ``"mkdocstrings"``, normalised as PyPI does."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert name, requirement
    return re.sub(r"[-_.]+", "-", name.group(0)).lower()


def distribution(module: str) -> str:
    return requirement_name(DISTRIBUTIONS.get(module, module))


def core() -> set[str]:
    return {requirement_name(r) for r in PYPROJECT["project"]["dependencies"]}


def extras() -> dict[str, set[str]]:
    declared = PYPROJECT["project"]["optional-dependencies"]
    return {extra: {requirement_name(r) for r in reqs} for extra, reqs in declared.items()}


@pytest.fixture
def core_env(tmp_path):
    """Environment and folder for a child process that has only the core install."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT), env.get("PYTHONPATH", "")])
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TQDM_DISABLE="1")
    work = tmp_path / "work"
    work.mkdir()
    return env, work


def run_core(env, cwd, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def saved_dataset(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), [80, 60, 40, 20])
    rng.shuffle(labels)
    folder = tmp_path / "data"
    image_dataset(labels).save_to_disk(str(folder))
    return folder


@pytest.mark.slow  # a second interpreter on the core install: about 6 s
def test_the_core_install_prunes_exports_and_runs_hf_drop_prune_without_torch(
    core_env, saved_dataset, tmp_path
):
    env, work = core_env
    script = textwrap.dedent(
        f"""
        import importlib.util, json, sys
        hidden = {HIDDEN!r}
        assert all(importlib.util.find_spec(name) is None for name in hidden)

        import datasets
        import hf_drop
        from hf_drop import DRoPFilter, hub
        from hf_drop.pruning.artifacts import save_subset

        train = datasets.load_from_disk({str(saved_dataset)!r})
        drop = DRoPFilter(0.5, class_errors=[0.1, 0.2, 0.3, 0.4], seed=0).fit(train)
        subset = drop.apply(train)
        save_subset(subset, "subset", drop)
        hub.export(subset, "export", drop)
        pruned = hub.load_pruned("export")
        try:
            from hf_drop import run_probe
        except ImportError as error:
            probe_error = str(error)
        print(json.dumps({{
            "file": hf_drop.__file__,
            "kept": len(subset),
            "reloaded": len(pruned),
            "probe_error": probe_error,
            "imported": sorted(m for m in sys.modules if m.partition(".")[0] in hidden),
        }}))
        """
    )
    out = run_core(env, work, "-c", script)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(result["file"]).parent == ROOT / "hf_drop"  # this checkout, not an install
    assert result["kept"] == result["reloaded"] == 100
    assert "hf-drop[probe]" in result["probe_error"]
    assert "pip install 'hf-drop[probe]'" in result["probe_error"]
    assert result["imported"] == []
    assert (work / "subset" / "pruning.json").is_file()
    card = (work / "export" / "README.md").read_text(encoding="utf-8")
    assert "kept_fraction.png" not in card  # no matplotlib: the card goes without its picture
    assert not (work / "export" / "kept_fraction.png").exists()

    out = run_core(
        env,
        work,
        "-m",
        "hf_drop",
        "prune",
        "--class-errors",
        "[0.1, 0.2, 0.3, 0.4]",
        "--dataset",
        str(saved_dataset),
        "--density",
        "0.5",
        "--output",
        str(tmp_path / "cli_subset"),
    )
    assert out.returncode == 0, out.stderr
    record = json.loads((tmp_path / "cli_subset" / "pruning.json").read_text(encoding="utf-8"))
    assert record["num_kept"] == 100
    # hf-drop export, like prune and push, needs no extra.
    out = run_core(env, work, "-m", "hf_drop", "export", str(tmp_path / "cli_subset"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "cli_subset-hub" / "README.md").is_file()


@pytest.mark.parametrize(
    ("command", "extra"),
    [
        (["probe", "--dataset", "digits", "--output", "probe"], "probe"),
        (["train", "--dataset", "digits", "--output", "train"], "train"),
        (["report", "runs", "--output", "report.png"], "plots"),
    ],
)
def test_a_command_without_its_extra_exits_2_naming_it(core_env, command, extra):
    env, work = core_env
    out = run_core(env, work, "-m", "hf_drop", *command)
    assert out.returncode == 2, out.stderr
    assert f"hf-drop {command[0]}: error: hf-drop {command[0]} needs hf-drop[{extra}]" in out.stderr
    assert f"pip install 'hf-drop[{extra}]'" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (work / command[-1]).exists()


def test_a_command_s_help_needs_no_extra(core_env):
    env, work = core_env
    out = run_core(env, work, "-m", "hf_drop", "probe", "--help")
    assert out.returncode == 0, out.stderr
    assert "--dataset" in out.stdout


def test_require_names_the_extra_and_the_package():
    with pytest.raises(MissingExtraError, match=r"the digits dataset needs hf-drop\[probe\]") as e:
        require("not_a_module_hf_drop_knows", "probe", "the digits dataset")
    assert "pip install 'hf-drop[probe]'" in str(e.value)
    assert isinstance(e.value, ModuleNotFoundError)  # what `except ImportError` code expects
    assert require("json", "probe").dumps([1]) == "[1]"


def test_the_all_extra_is_the_union_of_the_others():
    declared = PYPROJECT["project"]["optional-dependencies"]
    others = {r for extra, reqs in declared.items() if extra != "all" for r in reqs}
    assert set(declared["all"]) == others


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.partition(".")[0])
    return found - set(sys.stdlib_module_names) - {"hf_drop"}


def test_every_module_hf_drop_imports_is_declared():
    declared = core().union(*extras().values())
    undeclared = {
        f"{module} ({path.relative_to(ROOT)})"
        for path in (ROOT / "hf_drop").rglob("*.py")
        for module in _imports(path)
        if distribution(module) not in declared
    }
    assert not undeclared


def test_the_extras_hf_drop_names_in_its_errors_install_those_modules():
    declared = extras()
    for extra, modules in EXTRAS.items():
        assert {distribution(m) for m in modules} <= declared[extra], extra


def test_the_core_depends_on_no_model_library():
    # transformers is there for HfArgumentParser, the command line's parser; without torch, it
    # holds no model that can run.
    models = {distribution(m) for modules in EXTRAS.values() for m in modules} - {"transformers"}
    assert not core() & models
    assert "torch" not in core()


def test_the_version_is_the_package_s():
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    attr = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "hf_drop._version.__version__"
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+)?", hf_drop.__version__)
