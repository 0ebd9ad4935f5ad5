"""mtcnn-lab: OpenFace 2.2's MTCNN face detector in Python, C++-exact, with fast runtimes.

Public API: :class:`MTCNN` (the detector), :class:`Detections` (its result), :class:`CascadeParams`
(OpenFace's parameters), :func:`load_weights`, :func:`detect_video` (a whole video, resumable, on worker
processes), :func:`run_corpus` (many videos on Dask; needs the ``dask`` extra when called) and the errors
of :mod:`mtcnn_lab.errors`. The research lab (:mod:`mtcnn_lab.lab`) is imported on its own.
"""

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
from mtcnn_lab.version import __version__
from mtcnn_lab.video.stream import detect_video
from mtcnn_lab.weights.sets import load_weights

__all__ = [
    "MTCNN", "BackendUnavailable", "CascadeParams", "ConversionError", "Detections", "InputError",
    "LicenseNotAccepted", "MtcnnLabError", "OutputExists", "ParameterError", "WeightsError", "__version__",
    "detect_video", "load_weights", "run_corpus",
]
