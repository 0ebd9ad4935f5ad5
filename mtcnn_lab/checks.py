"""Argument checks shared by the runtime: one-line :class:`~mtcnn_lab.errors.ParameterError`\\ s."""

from __future__ import annotations

from mtcnn_lab.errors import ParameterError

__all__ = ["positive_int"]


def positive_int(value: object, name: str, optional: bool = False) -> int | None:
    """``value`` when it is an int >= 1 (bool is not); None too when ``optional``. Otherwise a
    ParameterError that names ``name`` and what it must be."""
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ParameterError(f"{name} must be a positive integer{' or None' if optional else ''}, not {value!r}")
    return value
