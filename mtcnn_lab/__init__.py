"""mtcnn-lab: OpenFace 2.2's MTCNN face detector in Python, C++-exact, with fast runtimes.

Public API: :class:`MTCNN`, :class:`Detections`, :func:`load_weights`.
"""

from importlib.metadata import PackageNotFoundError, version

from mtcnn_lab.detections import Detections
from mtcnn_lab.detector import MTCNN
from mtcnn_lab.weights.sets import load_weights

try:
    __version__ = version("mtcnn-lab")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["MTCNN", "Detections", "load_weights", "__version__"]
