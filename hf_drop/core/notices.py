"""The base of hf-drop's warning categories, so that one filter or one level reaches them all."""

from __future__ import annotations

__all__ = ["HfDropWarning"]


class HfDropWarning(UserWarning):
    """A result hf-drop produced but a user should look at (:class:`QuotaWarning`,
    ``ProbeWarning``). Shown by Python's ``warnings``; silenced with hf-drop's logs above
    ``warning`` (``HF_DROP_VERBOSITY=error``, :func:`hf_drop.io.logs.set_verbosity`)."""
