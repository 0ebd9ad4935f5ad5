"""mtcnn-lab: OpenFace 2.2's MTCNN face detector in Python, C++-exact, with fast runtimes.

Public API: :class:`MTCNN` (the detector), :class:`Detections` (its result), :class:`CascadeParams`
(OpenFace's parameters), :func:`load_weights`, :func:`detect_video` (a whole video, resumable, on worker
processes), :func:`run_corpus` (many videos on Dask; needs the ``dask`` extra when called) and the errors
of :mod:`mtcnn_lab.errors`. The research lab (:mod:`mtcnn_lab.lab`) is imported on its own.

The names are imported when first used (PEP 562), so ``import mtcnn_lab.errors`` or the ``mtcnn-lab``
command's start does not load the runtimes and compiled kernels before it needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mtcnn_lab.version import __version__

_PUBLIC = {
    "MTCNN": "mtcnn_lab.detector", "Detections": "mtcnn_lab.detections", "CascadeParams": "mtcnn_lab.params",
    "load_weights": "mtcnn_lab.weights.sets", "detect_video": "mtcnn_lab.video.stream",
    "run_corpus": "mtcnn_lab.corpus",
    **{name: "mtcnn_lab.errors" for name in ("BackendUnavailable", "ConversionError", "InputError",
                                              "LicenseNotAccepted", "MtcnnLabError", "OutputExists",
                                              "ParameterError", "WeightsError")},
}
"""Each public name and the module that defines it."""

__all__ = [
    "MTCNN", "BackendUnavailable", "CascadeParams", "ConversionError", "Detections", "InputError",
    "LicenseNotAccepted", "MtcnnLabError", "OutputExists", "ParameterError", "WeightsError", "__version__",
    "detect_video", "load_weights", "run_corpus",
]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value  # imported once
        return value
    raise AttributeError(f"module 'mtcnn_lab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from mtcnn_lab.corpus import run_corpus
    from mtcnn_lab.detections import Detections
    from mtcnn_lab.detector import MTCNN
    from mtcnn_lab.errors import (
        BackendUnavailable,
        ConversionError,
        InputError,
        LicenseNotAccepted,
        MtcnnLabError,
        OutputExists,
        ParameterError,
        WeightsError,
    )
    from mtcnn_lab.params import CascadeParams
    from mtcnn_lab.video.stream import detect_video
    from mtcnn_lab.weights.sets import load_weights
