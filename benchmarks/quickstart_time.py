"""Wall time of the README's three-command quickstart on a local imagefolder (issue 18: under 5
minutes with the `all` extra on this machine).

The imagefolder is scikit-learn's digits written as PNG files (photos/{train,test}/<class>/*.png:
1,437 and 360 images), the commands are the README's, run as written (10 probe epochs, 10
training epochs) in a fresh folder, each a new `hf-drop` process as a user runs it. The time of
each command and the total are printed and appended to results/quickstart_time.jsonl, with the
machine's load average (other work slows it).

    python benchmarks/quickstart_time.py
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).parent / "results" / "quickstart_time.jsonl"


def readme_commands() -> list[str]:
    """The bash block under "Your own imagefolder in three commands", one command per entry."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Your own imagefolder in three commands") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def main() -> None:
    from hf_drop.data.sources import digits_splits

    work = Path(tempfile.mkdtemp(prefix="quickstart-"))
    for split, rows in digits_splits().items():
        names = rows.features["label"].names
        for n, row in enumerate(rows):
            path = work / "photos" / split / names[row["label"]] / f"{n}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            row["image"].save(path)
    hf_drop = Path(sys.executable).with_name("hf-drop")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    times, load = {}, os.getloadavg()[0]
    for command in readme_commands():
        argv = shlex.split(command)
        assert argv[0] == "hf-drop", command
        start = time.perf_counter()
        subprocess.run([str(hf_drop), *argv[1:]], cwd=work, env=env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        times[argv[1]] = round(time.perf_counter() - start, 1)
        print(f"{argv[1]:6} {times[argv[1]]:7.1f} s", file=sys.stderr)
    total = round(sum(times.values()), 1)
    row = {"images": 1797, "seconds": times, "total_seconds": total, "load_before": load,
           "load_after": os.getloadavg()[0], "cpus": os.cpu_count()}  # fmt: skip
    with OUT.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(f"total  {total:7.1f} s (load average {load:.1f} before, {row['load_after']:.1f} after)")


if __name__ == "__main__":
    main()
