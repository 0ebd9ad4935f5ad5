"""pymtcnn 1.2.0's ``MTCNN`` API on mtcnn-lab's OpenFace-exact cascade.

pyclnf and pyfaceau take their face boxes from ``pymtcnn.MTCNN().detect(image_bgr)``. This class has
pymtcnn 1.2.0's constructor arguments, methods and return values:

* ``detect(img)`` -> ``(bboxes, landmarks)``: float64 ``(N, 4)`` boxes ``x, y, width, height`` in pixels
  after OpenFace's final correction (the boxes OpenFace's C++ detector returns) and float64
  ``(N, 5, 2)`` landmark ``x, y`` pixels; ``img`` is BGR uint8 ``(H, W, 3)`` as OpenCV reads it.
  ``detect(img, return_debug=True)`` adds a dict (``confidences``, ``trace``).
* ``detect_batch(frames)`` -> a list of ``(bboxes, landmarks)``, one per frame.
* ``get_backend_info()`` -> ``{"backend": name}``; ``backend_name``; ``repr``.

It defines no ``detect_and_correct``: pyclnf calls that method first when a detector has it (its
RetinaFace path). The boxes are OpenFace's to within 1e-3 px (``tests/test_compat_pymtcnn.py``); the
landmarks are decoded as OpenFace's MATLAB twin does (:class:`~mtcnn_lab.detections.Detections`),
while pymtcnn scales them by the square's width without OpenFace's +1.

To make pyclnf or pyfaceau use it without editing them, register it as ``pymtcnn`` before they import
it (opt-in, for this process only)::

    >>> from mtcnn_lab.compat import pymtcnn
    >>> pymtcnn.install()                   # 'import pymtcnn' now gives this module
    >>> from pyclnf import CLNF
    >>> clnf = CLNF(detector="pymtcnn")     # its MTCNN() is ours

:func:`uninstall` puts back what was registered before.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from types import ModuleType

import numpy as np

from mtcnn_lab.detections import Detections
from mtcnn_lab.detector import MTCNN as _Detector
from mtcnn_lab.errors import BackendUnavailable

__all__ = ["MTCNN", "BACKENDS", "PYMTCNN_API", "install", "uninstall"]

log = logging.getLogger(__name__)

PYMTCNN_API = "1.2.0"
"""The pymtcnn release whose API this module reproduces."""

BACKENDS: dict[str, tuple[str, ...]] = {
    "auto": ("auto",),
    "coreml": ("coreml",),
    "onnx": ("onnx-gpu", "onnx"),
    "cuda": ("onnx-gpu",),
    "cpu": ("openvino", "onnx", "numpy"),
}
"""pymtcnn's backend names -> mtcnn-lab backends tried in order (``cpu``: the fastest exact CPU runtime)."""

_previous: list[ModuleType | None] = []


class MTCNN:
    """pymtcnn 1.2.0's detector class, running mtcnn-lab's cascade (OpenFace's defaults: minimum face
    60 px, factor 0.709, thresholds 0.6/0.7/0.7, which pymtcnn also fixes).

    ``backend``: one of pymtcnn's names, ``auto`` (default), ``coreml``, ``onnx``, ``cuda``, ``cpu``
    (:data:`BACKENDS`); anything else is a ValueError, as in pymtcnn. ``model_dir`` is accepted and not
    read: the weights are mtcnn-lab's ``auto`` set (OpenFace's ``.dat`` files when installed, else the
    bundled bit-identical MIT weights). ``verbose`` prints the chosen backend; ``debug_mode`` makes
    :meth:`detect` return the debug dict as well. ``threads`` sizes the runtime's thread pool; other
    keyword arguments (pymtcnn's backend options) are ignored with a warning.

    >>> detector = MTCNN()
    >>> bboxes, landmarks = detector.detect(image_bgr)      # (N, 4) x, y, w, h and (N, 5, 2)
    >>> results = detector.detect_batch([frame1, frame2])    # [(bboxes, landmarks), ...]
    """

    def __init__(self, backend: str | None = None, model_dir: str | None = None, verbose: bool = False,
                 debug_mode: bool = False, **kwargs):
        name = "auto" if backend is None else str(backend).lower()
        if name not in BACKENDS:
            raise ValueError(f"Invalid backend '{backend}'. Must be one of: {', '.join(BACKENDS)}")
        threads = kwargs.pop("threads", None)
        if kwargs:
            log.warning("pymtcnn options %s are ignored by mtcnn-lab's compatible MTCNN", sorted(kwargs))
        if model_dir is not None:
            log.info("model_dir %s is not read: mtcnn-lab uses its 'auto' weights", model_dir)
        self.verbose, self.debug_mode = verbose, debug_mode
        self._detector = _first_that_builds(BACKENDS[name], threads)
        self.backend_name = self._detector.recipe()["backend"]  # the name `mtcnn-lab backends` lists
        if verbose:
            print(f"[OK] mtcnn-lab's pymtcnn-compatible MTCNN on the {self.backend_name} backend")

    def detect(self, img: np.ndarray, return_debug: bool = False) -> tuple:
        """Faces of one BGR uint8 ``(H, W, 3)`` image: ``(bboxes, landmarks)``, plus a dict with the
        confidences and the per-stage trace when ``return_debug`` (or ``debug_mode``) is set."""
        debug = return_debug or self.debug_mode
        faces = self._detector.detect(img, trace=debug)
        if debug:
            return (*_pymtcnn_result(faces), {"confidences": faces.confidences.astype(np.float64),
                                              "trace": faces.trace})
        return _pymtcnn_result(faces)

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`detect` for each frame, in order (frames of one size share network calls)."""
        return [_pymtcnn_result(faces) for faces in self._detector.detect_batch(frames)]

    def get_backend_info(self) -> dict:
        """``{"backend": name}`` of the mtcnn-lab backend running the cascade."""
        return {"backend": self.backend_name}

    def close(self) -> None:
        """Release the backend and the resizing thread."""
        self._detector.close()

    def __enter__(self) -> MTCNN:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MTCNN(backend={self.backend_name})"


def _first_that_builds(names: tuple[str, ...], threads: int | None) -> _Detector:
    reasons = []
    for name in names:
        try:
            return _Detector(backend=name, threads=threads)
        except (BackendUnavailable, ImportError) as err:
            log.info("backend %s unavailable: %s", name, err)
            reasons.append(f"{name}: {err}")
    raise BackendUnavailable(f"no backend for this pymtcnn name works here ({'; '.join(reasons)}); "
                             "run 'mtcnn-lab backends' to see what to install")


def _pymtcnn_result(faces: Detections) -> tuple[np.ndarray, np.ndarray]:
    return faces.boxes.astype(np.float64).reshape(-1, 4), faces.landmarks.astype(np.float64).reshape(-1, 5, 2)


def install() -> None:
    """Register this module as ``pymtcnn`` (``sys.modules``) for this process, so that ``from pymtcnn
    import MTCNN`` in pyclnf, pyfaceau or any other code gets :class:`MTCNN`."""
    _previous.append(sys.modules.get("pymtcnn"))
    sys.modules["pymtcnn"] = sys.modules[__name__]


def uninstall() -> None:
    """Undo the last :func:`install`: ``pymtcnn`` is again what it was (or unimported)."""
    if not _previous:
        return
    previous = _previous.pop()
    if previous is None:
        sys.modules.pop("pymtcnn", None)
    else:
        sys.modules["pymtcnn"] = previous
