"""What a result was made with: library versions and the machine.

A probe or a training run is bitwise repeatable on one machine, but not across CPUs: torch picks
its float kernels by instruction set (AVX2, AVX-512, ...), and a few epochs of training amplify
last-bit differences into different class errors. So the records name the machine too.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any

__all__ = ["machine", "versions"]


def versions(*packages: str) -> dict[str, str | None]:
    """hf-drop's and Python's versions, and those of ``packages`` (``None`` if not installed).

    An imported package reports its own ``__version__``, which keeps a local build tag such as
    torch's ``+cpu`` or ``+cu130`` that the installed metadata may lack.
    """
    from .._version import __version__

    found: dict[str, str | None] = {"hf_drop": __version__, "python": platform.python_version()}
    for name in packages:
        version = getattr(sys.modules.get(name), "__version__", None)
        if version is None:
            try:
                version = metadata.version(name)
            except metadata.PackageNotFoundError:
                version = None
        found[name] = version
    return found


def machine() -> dict[str, Any]:
    """The platform, CPU model and instruction set torch uses, thread count and GPUs."""
    import torch

    return {
        "platform": platform.platform(),
        "cpu": _cpu_model() or platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
    }


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # not Linux
        pass
    return None
