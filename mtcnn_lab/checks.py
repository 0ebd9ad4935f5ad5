"""Argument checks shared by the runtime: one-line :class:`~mtcnn_lab.errors.ParameterError`\\ s."""

from __future__ import annotations

from collections.abc import Iterable

from mtcnn_lab.errors import ParameterError

__all__ = ["positive_int", "one_of"]


def positive_int(value: object, name: str, optional: bool = False) -> int | None:
    """``value`` when it is an int >= 1 (bool is not); None too when ``optional``. Otherwise a
    ParameterError that names ``name`` and what it must be."""
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ParameterError(f"{name} must be a positive integer{' or None' if optional else ''}, not {value!r}")
    return value


def one_of(value: object, choices: Iterable[str], what: str, hint: str = "") -> str:
    """``value`` when it is one of ``choices``; else a ParameterError "unknown ``what`` ...; choose one of ..."
    (then ``hint``, e.g. where the choices are explained)."""
    choices = list(choices)
    if not isinstance(value, str) or value not in choices:
        raise ParameterError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}{hint}")
    return value
