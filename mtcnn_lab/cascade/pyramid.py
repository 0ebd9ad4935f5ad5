"""The image pyramid of PNet: every level resized and normalised (scales and sizes: :mod:`mtcnn_lab.params`).

Images are BGR uint8 (H, W, 3) as OpenCV reads them; network inputs are float32 (3, h, w) in
R, G, B order, normalised as ``(v - 127.5) * 0.0078125``.
"""

from __future__ import annotations

from concurrent.futures import Executor

import numpy as np

from mtcnn_lab.cascade.resize import resized_input
from mtcnn_lab.params import CascadeParams, level_size, pyramid_scales


def pyramid_levels(image: np.ndarray, min_face: float = CascadeParams.min_face, factor: float = CascadeParams.factor,
                   pool: Executor | None = None) -> list[tuple[float, np.ndarray]]:
    """Every pyramid level of a BGR (H, W, 3) image (uint8 or float32) as ``(scale, float32 (3, h, w)
    R,G,B input)``, resized exactly as OpenFace's OpenCV does (:mod:`mtcnn_lab.cascade.resize`).

    With ``pool`` (an executor with a free thread), the levels after the first are resized there while
    this thread resizes the first: about as much work, as each level has half the pixels of the one before.
    """
    height, width = image.shape[:2]
    plan = [(scale, level_size(height, width, scale)) for scale in pyramid_scales(height, width, min_face, factor)]
    if pool is None or len(plan) < 2:
        return _resized(image, plan)
    rest = pool.submit(_resized, image, plan[1:])
    return _resized(image, plan[:1]) + rest.result()


def _resized(image: np.ndarray, plan: list[tuple[float, tuple[int, int]]]) -> list[tuple[float, np.ndarray]]:
    """``(scale, level)`` for each ``(scale, (h, w))`` of ``plan``."""
    return [(scale, resized_input(image, size)) for scale, size in plan]
