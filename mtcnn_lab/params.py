"""The detector's parameters (OpenFace's defaults) and the image pyramid they imply: scales, level sizes.

Pure arithmetic, shared by the cascade (:mod:`mtcnn_lab.cascade`) and the Core ML converter (the PNet
input shapes it enumerates). OpenFace's ``FaceDetectorMTCNN::DetectFaces`` (``FaceDetectorMTCNN.cpp``)
sets these values and computes the pyramid the same way, in double.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from mtcnn_lab.errors import ParameterError

__all__ = ["OPENFACE_CORRECTION", "CascadeParams", "FACE_CELL", "pyramid_scales", "level_size"]

OPENFACE_CORRECTION = (-0.0075, 0.2459, 1.0323, 0.7751)
"""OpenFace's final box correction: x += w*c0, y += h*c1, w *= c2, h *= c3 (doubles)."""


@dataclass(frozen=True)
class CascadeParams:
    """Detector parameters; the defaults are OpenFace's.

    ``min_face`` is the smallest face searched for, in pixels; ``factor`` the pyramid step;
    ``thresholds`` the PNet/RNet/ONet score thresholds (kept when ``score >= t``); the ``nms_*``
    values are overlap thresholds (removed when ``overlap > t``); ``correction`` OpenFace's final
    box correction coefficients (``(0, 0, 1, 1)`` disables it).
    """

    min_face: float = 60.0
    factor: float = 0.709
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    nms_per_scale: float = 0.5
    nms_pyramid: float = 0.7
    nms_rnet: float = 0.7
    nms_onet: float = 0.7
    correction: tuple[float, float, float, float] = OPENFACE_CORRECTION

    def __post_init__(self) -> None:
        if not _number(self.min_face) or not 12 <= self.min_face < math.inf:
            raise ParameterError(f"min_face must be a number of pixels, at least 12 (PNet's cell), "
                                 f"not {self.min_face!r}")
        if not _number(self.factor) or not 0 < self.factor <= MAX_FACTOR:
            raise ParameterError(f"factor must be a number in (0, {MAX_FACTOR}] (each step closer to 1 adds pyramid "
                                 f"levels; OpenFace uses 0.709), not {self.factor!r}")
        if not _numbers(self.thresholds, 3) or not all(0 <= t <= 1 for t in self.thresholds):
            raise ParameterError(f"thresholds must be three numbers in [0, 1], not {self.thresholds!r}")
        for name in ("nms_per_scale", "nms_pyramid", "nms_rnet", "nms_onet"):
            if not _number(getattr(self, name)) or not 0 <= getattr(self, name) <= 1:
                raise ParameterError(f"{name} must be a number in [0, 1], not {getattr(self, name)!r}")
        if not _numbers(self.correction, 4):
            raise ParameterError(f"correction must be 4 finite numbers, not {self.correction!r}")
        for name in ("min_face", "factor", "nms_per_scale", "nms_pyramid", "nms_rnet", "nms_onet"):
            object.__setattr__(self, name, float(getattr(self, name)))  # numpy scalars and ints as Python floats
        for name in ("thresholds", "correction"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))


MAX_FACTOR = 0.99
"""The largest pyramid step accepted: the number of levels grows as ``1 / log(1 / factor)``, so a step closer to
1 makes a frame's pyramid (and its run time) grow without bound."""


def _number(value: object) -> bool:
    """Whether ``value`` is a finite real number, numpy's included (``True``/``False`` are not numbers here)."""
    try:
        return (isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
                and math.isfinite(float(value)))
    except OverflowError:  # an int too large for a float
        return False


def _numbers(values: object, count: int) -> bool:
    """Whether ``values`` is a tuple, list or 1-D array of ``count`` finite real numbers."""
    if isinstance(values, np.ndarray):
        values = values.tolist() if values.ndim == 1 else None
    return isinstance(values, tuple | list) and len(values) == count and all(_number(v) for v in values)


FACE_CELL = 12
"""PNet's receptive field in pixels: the smallest face PNet sees at scale 1."""


def pyramid_scales(height: int, width: int, min_face: float = CascadeParams.min_face,
                   factor: float = CascadeParams.factor) -> list[float]:
    """Scales ``(12 / min_face) * factor**i`` for every level that still sees ``min_face`` faces.

    Computed in double like OpenFace. OpenFace throws when ``min(H, W) < min_face * factor``
    (about 42.5 px for the defaults); here such images simply get no levels (no faces).
    """
    min_dim = min(height, width)
    if min_dim <= 0 or min_dim < min_face * factor:
        return []
    num_scales = math.floor(math.log(min_face / min_dim) / math.log(factor)) + 1
    first = FACE_CELL / min_face
    return [first * factor**i for i in range(max(num_scales, 0))]


def level_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """Pyramid level size ``(h, w) = (ceil(H * scale), ceil(W * scale))`` in pixels."""
    return math.ceil(height * scale), math.ceil(width * scale)
