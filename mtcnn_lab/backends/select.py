"""Choosing a backend by name. The one place that knows which runtimes exist."""

from __future__ import annotations

from ..errors import ParameterError
from ..weights import WeightSet
from .base import Backend
from .numpy import NumpyBackend

BACKENDS = ("numpy",)


def make_backend(name: str, weights: WeightSet) -> Backend:
    """Build the backend called ``name`` for a weight set (``"auto"`` picks the best available)."""
    if name in ("numpy", "auto"):
        return NumpyBackend(weights)
    raise ParameterError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)} or 'auto'")
