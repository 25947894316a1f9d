"""A benchmark run against a baseline commit, side by side in one run: "nothing slower", measured.

The same benchmark script (from this tree) runs in fresh interpreters, alternating between the
baseline's ``hf_drop`` (a temporary ``git worktree`` of ``--ref``, first on ``PYTHONPATH``) and
this tree's, ``--rounds`` times each; the medians of the chosen metrics and their ratio (this
tree / baseline; below 1 is faster) are printed as one JSON line and appended to ``--output``::

    python benchmarks/against_baseline.py --ref ebd9773 --metric fast_seconds \\
        --output benchmarks/results/against_baseline.jsonl -- prune_speed.py --rows 10000000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _results import emit

ROOT = Path(__file__).resolve().parents[1]


def run_once(tree: Path, script: list[str]) -> dict:
    """One run of the benchmark with ``tree``'s hf_drop; its JSON line."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script[0]), *script[1:]],
        env=env,
        cwd=ROOT / "benchmarks",
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def value(result: dict, path: str) -> float:
    for key in path.split("."):
        result = result[key]
    return float(result)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ref", required=True, help="the baseline commit")
    parser.add_argument("--metric", action="append", required=True, help="a.b key of the JSON")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path)
    parser.add_argument("script", nargs=argparse.REMAINDER, help="-- SCRIPT.py [ARGS]")
    args = parser.parse_args(argv)
    script = args.script[1:] if args.script[:1] == ["--"] else args.script
    commit = subprocess.run(
        ["git", "rev-parse", args.ref], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        baseline = Path(tmp) / "baseline"
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(baseline), commit],
                       cwd=ROOT, check=True)  # fmt: skip
        try:
            runs: dict[str, list[dict]] = {"baseline": [], "this": []}
            for _ in range(args.rounds):  # alternating: drift in the machine hits both sides
                runs["baseline"].append(run_once(baseline, script))
                runs["this"].append(run_once(ROOT, script))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=ROOT)
    medians = {
        side: {m: statistics.median(value(r, m) for r in results) for m in args.metric}
        for side, results in runs.items()
    }
    result = {
        "benchmark": "against_baseline",
        "script": " ".join(script),
        "baseline": commit[:10],
        "this": subprocess.run(
            ["git", "rev-parse", "--short=10", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
        "rounds": args.rounds,
        "medians": medians,
        "ratio_this_over_baseline": {
            m: round(medians["this"][m] / medians["baseline"][m], 3) for m in args.metric
        },
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    return emit(result, args.output)


if __name__ == "__main__":
    main()
