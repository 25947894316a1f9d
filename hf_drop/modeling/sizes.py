"""Image sizes as options spell them: ``224`` or ``224x160`` (height x width). No torch here: the
configurations read them."""

from __future__ import annotations

from typing import Any

__all__ = ["image_size_text", "parse_image_size"]


def parse_image_size(value: Any, what: str = "image_size") -> tuple[int, int] | None:
    """``(height, width)`` from ``224``, ``"224"``, ``"224x160"`` or ``(224, 160)``; ``None``
    stays ``None``. ``what`` names the option in errors."""
    if value is None:
        return None
    size: Any = value
    if isinstance(value, str):
        parts = value.lower().replace(" ", "").split("x")
        if len(parts) not in (1, 2) or not all(part.isdigit() for part in parts):
            raise ValueError(
                f"{what} must be SIZE or HxW in pixels (e.g. 224 or 224x160), got {value!r}"
            )
        size = [int(part) for part in parts]
    elif isinstance(value, int) and not isinstance(value, bool):
        size = [value]
    if not isinstance(size, list | tuple) or len(size) not in (1, 2):
        raise ValueError(
            f"{what} must be an int, 'HxW' or (height, width), got {type(value).__name__} {value!r}"
        )
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in size):
        raise ValueError(f"{what} must be positive pixel counts, got {value!r}")
    return (int(size[0]), int(size[-1]))


def image_size_text(size: tuple[int, int] | None) -> str | None:
    """``"224x160"`` (height x width), the spelling ``--image_size`` takes."""
    return None if size is None else f"{size[0]}x{size[1]}"
