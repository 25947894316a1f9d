"""Import time: what it costs to reach hf-drop's light entry points, in fresh interpreters.

Each case runs ``--repeats`` times in a new ``python -X importtime`` process; the median wall time
of the whole process and the self-reported cumulative import time of ``hf_drop`` are printed with
the heavy libraries that ended up loaded. Side by side in the same run, the baselines: an empty
interpreter, ``import datasets`` (what any user of hf-drop loads anyway) and ``import torch``.

Targets (issue 12): ``from hf_drop import DRoPFilter`` and ``ProbeResult.load(folder)`` under 1 s,
without torch. ``ProbeResult.load`` reads a small probe folder written once by this script.

Prints one JSON line; ``--output`` appends it to a file too. Run: ``make bench-import``.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import emit

HEAVY = ("torch", "transformers", "timm", "accelerate", "datasets", "pandas")


def _probe_folder(root: Path) -> Path:
    """A finished probe on 200 digits, 1 epoch (written in a subprocess: torch stays out of here)."""
    folder = root / "probe"
    code = (
        "from hf_drop.data.sources import load_source\n"
        "from hf_drop.probe import ProbeConfig, run_probe\n"
        "data = load_source('digits')\n"
        "run_probe(data['train'].select(range(200)), data['test'].select(range(100)),\n"
        f"          ProbeConfig(model='test_resnet', epochs=1, batch_size=50), {str(folder)!r})\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return folder


def _case(code: str, repeats: int) -> dict:
    walls, imports, loaded = [], [], {}
    report = f"\nimport sys, json\nprint(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    for _ in range(repeats):
        start = time.perf_counter()
        run = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code + report],
            capture_output=True,
            text=True,
            check=True,
        )
        walls.append(time.perf_counter() - start)
        # "import time: self | cumulative | name": the top-level package lines
        cumulative = [
            int(m.group(1))
            for m in re.finditer(
                r"import time:\s+\d+ \|\s+(\d+) \| (?:hf_drop|datasets|torch)$", run.stderr, re.M
            )
        ]
        imports.append(sum(cumulative) / 1e6)
        loaded = json.loads(run.stdout.strip().splitlines()[-1])
    return {
        "wall_s": round(statistics.median(walls), 3),
        "imports_s": round(statistics.median(imports), 3),
        "loaded": sorted(name for name, yes in loaded.items() if yes),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = _probe_folder(Path(tmp))
        cases = {
            "python (empty)": "pass",
            "import datasets (baseline)": "import datasets",
            "import torch (baseline)": "import torch",
            "from hf_drop import DRoPFilter": "from hf_drop import DRoPFilter",
            "ProbeResult.load(folder)": (
                f"from hf_drop import ProbeResult\nProbeResult.load({str(folder)!r}).class_errors"
            ),
            "DRoPFilter.from_probe(folder)": (
                f"from hf_drop import DRoPFilter\nDRoPFilter.from_probe({str(folder)!r}, 0.5)"
            ),
            "import hf_drop.core (numpy)": "import hf_drop.core.quotas, hf_drop.core.rules",
        }
        results = {name: _case(code, args.repeats) for name, code in cases.items()}
    for name, result in results.items():
        print(f"{name:34s} {result['wall_s']:6.3f} s  loaded: {', '.join(result['loaded'])}")
    emit(
        {
            "benchmark": "import_time",
            "python": platform.python_version(),
            "repeats": args.repeats,
            "cases": results,
            "target_s": 1.0,
            "met": all(
                results[name]["wall_s"] < 1.0 and "torch" not in results[name]["loaded"]
                for name in ("from hf_drop import DRoPFilter", "ProbeResult.load(folder)")
            ),
        },
        args.output,
    )


if __name__ == "__main__":
    main()
