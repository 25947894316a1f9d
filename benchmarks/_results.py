"""What the benchmarks share: one JSON line on stdout, appended to a results file too."""

from __future__ import annotations

import json
from pathlib import Path


def emit(result: dict, output: Path | None) -> dict:
    """Print ``result`` as one JSON line; append it to ``output`` when given."""
    line = json.dumps(result)
    print(line)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        with output.open("a") as f:
            f.write(line + "\n")
    return result
