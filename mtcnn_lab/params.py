"""The detector's parameters (OpenFace's defaults) and the image pyramid they imply: scales, level sizes.

Pure arithmetic, shared by the cascade (:mod:`mtcnn_lab.cascade`) and the Core ML converter (the PNet
input shapes it enumerates). OpenFace's ``FaceDetectorMTCNN::DetectFaces`` (``FaceDetectorMTCNN.cpp``)
sets these values and computes the pyramid the same way, in double.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
        if not self.min_face >= 12:
            raise ParameterError(f"min_face must be at least 12 px (PNet's cell), not {self.min_face}")
        if not 0 < self.factor < 1:
            raise ParameterError(f"factor must be between 0 and 1 (exclusive), not {self.factor}")
        if len(self.thresholds) != 3 or not all(0 <= t <= 1 for t in self.thresholds):
            raise ParameterError(f"thresholds must be three values in [0, 1], not {self.thresholds}")
        for name in ("nms_per_scale", "nms_pyramid", "nms_rnet", "nms_onet"):
            if not 0 <= getattr(self, name) <= 1:
                raise ParameterError(f"{name} must be in [0, 1], not {getattr(self, name)}")
        if len(self.correction) != 4:
            raise ParameterError(f"correction must have 4 coefficients, not {self.correction}")


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
