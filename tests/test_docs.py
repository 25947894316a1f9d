"""Every ```python and ```bash block of README.md and docs/**/*.md runs as written.

The blocks of one page run in order, in a fresh folder, as a reader would run them: the Python
blocks share one namespace, and what a block writes (``runs/probe``, ...) is there for the next.
The folder holds ``photos/``, the "your own imagefolder" of the quickstart: scikit-learn's real
digits written as ``photos/{train,test}/<class>/<n>.png`` (40 and 12 per class: the pages run
their commands as written, on fewer images).

What differs from a reader's machine, on purpose:

- Offline stand-ins for the Hub (``tests/docs_offline.py``): ``load_dataset`` of a Hub id the
  docs show gives local data (``zalando-datasets/fashion_mnist`` is Debian's real Fashion-MNIST),
  ``push`` uploads to a local folder that ``load_dataset``/``load_pruned`` read back, and
  ``AutoModelForImageClassification.from_pretrained`` of a Hub model id builds a small model from
  scratch. In-process for Python blocks; through ``sitecustomize`` for ``bash`` blocks.
- Short schedules: ``--epochs N``, ``epochs=N`` and ``num_train_epochs=N`` run 1 epoch, and
  ``--num-inits N`` one initialisation (``SHORTER``).
- ``hf-drop`` is this checkout's (``python -m hf_drop``), and ``pip install`` lines are not run
  (they would change the environment the tests run in).
- A ```yaml block whose first line is a comment naming a file (``# probe.yaml``) is written to
  that file, for the blocks after it (the docs show files of options that way).
- A block right after ``<!-- no-test: reason -->`` is not run (multi-GPU launches, ``make``
  targets that run this suite); the reason is required, and such blocks are counted below.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

from hf_drop.data.sources import FASHION_MNIST_ROOT

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
SHORTER = [
    (re.compile(r"--epochs[ =]\d+"), "--epochs 1"),
    (re.compile(r"\bepochs=\d+"), "epochs=1"),
    (re.compile(r"\bnum_train_epochs=\d+"), "num_train_epochs=1"),
    (re.compile(r"--num[-_]inits[ =]\d+"), "--num-inits 1"),
]
FENCE = re.compile(r"^[ \t]*```(\w*)[^\n]*\n(.*?)^[ \t]*```[ \t]*$", re.S | re.M)
FILE_NAME = re.compile(r"#\s*([\w.-]+\.(?:ya?ml|json))\s*\n")
NO_TEST = re.compile(r"<!--\s*no-test:?(.*?)-->\s*$")
NEEDS_FASHION_MNIST = ("zalando-datasets/fashion_mnist", "fashion_mnist")


@dataclass
class Block:
    page: Path
    line: int
    language: str
    code: str
    skip: str | None  # the reason given in <!-- no-test: reason -->

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        language = match.group(1)
        if language not in ("python", "bash", "yaml"):
            continue
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = NO_TEST.search(before)
        skip = marker.group(1).strip() if marker else None
        line = text[: match.start()].count("\n") + 1
        found.append(Block(page, line, language, textwrap.dedent(match.group(2)), skip))
    return found


ALL = [block for page in PAGES for block in blocks(page) if block.language != "yaml"]


def runnable(page: Path) -> list[str]:
    """The code a page runs, in order."""
    return [b.code for b in blocks(page) if b.skip is None and b.language != "yaml"]


# A page whose runnable code is exactly an earlier page's (the site's home page is the README)
# is not run twice: test_a_page_left_out_runs_the_same_code_as_another says it is the same code.
TESTED_PAGES = []
for _page in PAGES:
    if runnable(_page) and all(runnable(_page) != runnable(p) for p in TESTED_PAGES):
        TESTED_PAGES.append(_page)


def shorter(code: str) -> str:
    for pattern, replacement in SHORTER:
        code = pattern.sub(replacement, code)
    return code


def test_the_docs_have_code_and_every_skip_says_why():
    assert len(ALL) >= 30
    assert all(b.skip for b in ALL if b.skip is not None), [b.where for b in ALL if b.skip == ""]
    skipped = [b for b in ALL if b.skip is not None]
    assert len(skipped) <= len(ALL) // 4, "no-test is for the few blocks that cannot run here"


def test_a_page_left_out_runs_the_same_code_as_another():
    left_out = [p for p in PAGES if runnable(p) and p not in TESTED_PAGES]
    assert [p.name for p in left_out] == ["index.md"]  # the README, as the site's home page
    for page in left_out:
        assert any(runnable(page) == runnable(p) for p in TESTED_PAGES)


@pytest.mark.parametrize("block", [b for b in ALL if b.language == "python"], ids=lambda b: b.where)
def test_python_blocks_parse(block: Block) -> None:
    ast.parse(block.code, block.where)


# Images per class of the stand-in imagefolder (train, test): a stratified part of digits, small
# enough that the pages' probes and trainings take seconds; every page runs the same commands.
PHOTOS_PER_CLASS = {"train": 40, "test": 12}


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """scikit-learn's digits as an imagefolder: photos/{train,test}/<class>/<n>.png, the first
    ``PHOTOS_PER_CLASS`` images of each class."""
    from hf_drop.data.sources import digits_splits

    root = tmp_path_factory.mktemp("imagefolder") / "photos"
    for split, rows in digits_splits().items():
        names = rows.features["label"].names
        written = dict.fromkeys(range(len(names)), 0)
        for n, row in enumerate(rows):
            label = row["label"]
            if written[label] == PHOTOS_PER_CLASS[split]:
                continue
            written[label] += 1
            path = root / split / names[label] / f"{n}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            row["image"].save(path)
    return root


def _environment(work: Path) -> dict[str, str]:
    import docs_offline

    site = work / ".standins"
    site.mkdir()
    docs_offline.sitecustomize(site, work / ".hub", ROOT)
    shims = work / ".bin"
    shims.mkdir()
    shim = shims / "hf-drop"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m hf_drop "$@"\n')
    shim.chmod(0o755)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT), env.get("PYTHONPATH", "")])
    env["PATH"] = os.pathsep.join([str(shims), str(Path(sys.executable).parent), env["PATH"]])
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TQDM_DISABLE="1")
    return env


def _run_bash(block: Block, code: str, work: Path, env: dict[str, str]) -> None:
    code = re.sub(r"(?m)^\s*(python -m )?pip install .*$", ":", code)
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", code],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, (
        f"{block.where} exited {done.returncode}:\n{code}\n--- stdout\n{done.stdout[-3000:]}"
        f"\n--- stderr\n{done.stderr[-3000:]}"
    )


@pytest.mark.slow
@pytest.mark.parametrize("page", TESTED_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_runs(page: Path, photos: Path, tmp_path: Path, monkeypatch) -> None:
    import docs_offline

    code_blocks = [b for b in blocks(page) if b.skip is None]
    text = "\n".join(b.code for b in code_blocks)
    if any(name in text for name in NEEDS_FASHION_MNIST) and not FASHION_MNIST_ROOT.is_dir():
        pytest.fail(f"{FASHION_MNIST_ROOT} is missing (apt-get install dataset-fashion-mnist)")
    (tmp_path / "photos").symlink_to(photos, target_is_directory=True)
    env = _environment(tmp_path)
    docs_offline.install(tmp_path / ".hub", monkeypatch.setattr)
    docs_offline.install_models(monkeypatch.setattr)
    monkeypatch.chdir(tmp_path)
    # A page may register rules (the rules guide does): the registry is global, so each page
    # gets a copy, and the tests after it see the registry as it was.
    from hf_drop.core import rules

    monkeypatch.setattr(rules, "QUOTA_RULES", dict(rules.QUOTA_RULES))
    monkeypatch.setattr(rules, "KEEP_RULES", dict(rules.KEEP_RULES))
    module = types.ModuleType("__docs__")  # a module of its own: dataclasses look it up
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace = module.__dict__
    for block in code_blocks:
        code = shorter(block.code)
        if block.language == "yaml":
            name = FILE_NAME.match(block.code)
            if name:
                (tmp_path / name.group(1)).write_text(block.code)
        elif block.language == "bash":
            _run_bash(block, code, tmp_path, env)
        else:
            exec(compile(code, block.where, "exec"), namespace)
