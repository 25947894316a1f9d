"""The reliability matrix: hf-drop tried as a new user and as an adversary would.

Every case is one call into the API or the command line with bad, odd or hostile input. Each
asserts either a clear refusal (the exception class, and a fragment of the message that names
the argument, column or file) or the right result, and every case asserts that no file that
existed before it was changed or removed. The README's reliability section is this table:
``python tests/test_reliability.py`` prints it.
"""

from __future__ import annotations

import contextlib
import io
import sys
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from reliability_cases.core import core_cases, filter_cases, quota_cases, select_cases
from reliability_cases.data import option_file_cases, source_cases, stream_and_group_cases
from reliability_cases.harness import Case, Workspace
from reliability_cases.outputs import hub_cases, metric_cases, train_cases
from reliability_cases.probe import probe_cases, prune_cases
from reliability_cases.records import records_cases
from reliability_cases.seams import seam_cases

CASES = [
    *quota_cases(),
    *select_cases(),
    *filter_cases(),
    *probe_cases(),
    *prune_cases(),
    *hub_cases(),
    *train_cases(),
    *metric_cases(),
    *source_cases(),
    *stream_and_group_cases(),
    *core_cases(),
    *option_file_cases(),
    *seam_cases(),
    *records_cases(),
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("reliability"))


def test_the_matrix_has_at_least_100_cases_over_every_area():
    assert len(CASES) >= 100
    assert {c.area for c in CASES} >= {"quotas", "filter", "probe", "prune", "hub", "train",
                                       "metric"}  # fmt: skip
    assert len({(c.area, c.name) for c in CASES}) == len(CASES), "case names are unique"


def _marks(case: Case) -> list[pytest.MarkDecorator]:
    # Every case works in the workspace, which holds a CLI probe; one reads the real files.
    real = case.name == "a truncated Fashion-MNIST file"
    return [pytest.mark.slow, *([pytest.mark.needs_fashion_mnist] if real else [])]


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, marks=_marks(c)) for c in CASES],
    ids=[f"{c.area}: {c.name}" for c in CASES],
)
def test_case(case: Case, workspace: Workspace) -> None:
    before = workspace.snapshot()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        with contextlib.redirect_stdout(io.StringIO()):
            if case.refusal is None:
                case.action(workspace)
            else:
                with pytest.raises(case.refusal) as caught:
                    case.action(workspace)
                message = str(caught.value)
                assert case.fragment in message, f"{case.fragment!r} not in {message!r}"
    after = workspace.snapshot()
    changed = [path for path, digest in before.items() if after.get(path) != digest]
    assert not changed, f"pre-existing files changed or removed: {changed[:5]}"


def table() -> str:
    """The README's table: every case and its expected outcome, with the totals."""
    lines = ["| area | case | outcome |", "|---|---|---|"]
    lines += [f"| {c.area} | {c.name} | {c.outcome} |" for c in CASES]
    refused = sum(c.refusal is not None for c in CASES)
    lines.append("")
    lines.append(
        f"{len(CASES)} cases: {refused} clear refusals, {len(CASES) - refused} right results; "
        "every case also checks that no pre-existing file changed."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
