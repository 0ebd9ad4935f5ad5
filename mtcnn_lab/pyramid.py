"""The image pyramid of PNet: scales, level sizes, resizing and normalisation (spec §3, §5).

Images are BGR uint8 (H, W, 3) as OpenCV reads them; network inputs are float32 (3, h, w) in
R, G, B order, normalised as ``(v - 127.5) * 0.0078125``.
"""

from __future__ import annotations

import math
from concurrent.futures import Executor

import numpy as np

from .resize import resized_input

FACE_CELL = 12
"""PNet's receptive field in pixels: the smallest face PNet sees at scale 1."""


def pyramid_scales(height: int, width: int, min_face: float = 60.0,
                   factor: float = 0.709) -> list[float]:
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


def pyramid_levels(image: np.ndarray, min_face: float = 60.0, factor: float = 0.709,
                   pool: Executor | None = None) -> list[tuple[float, np.ndarray]]:
    """Every pyramid level of a BGR (H, W, 3) image (uint8 or float32) as ``(scale, float32 (3, h, w)
    R,G,B input)``, resized exactly as OpenFace's OpenCV does (:mod:`mtcnn_lab.resize`).

    With ``pool`` (an executor with a free thread), the levels after the first are resized there while
    this thread resizes the first: about as much work, as each level has half the pixels of the one before.
    """
    height, width = image.shape[:2]
    scales = pyramid_scales(height, width, min_face, factor)
    sizes = [level_size(height, width, scale) for scale in scales]
    if pool is None or len(sizes) < 2:
        return [(scale, resized_input(image, size)) for scale, size in zip(scales, sizes, strict=True)]
    rest = pool.submit(lambda: [resized_input(image, size) for size in sizes[1:]])
    first = resized_input(image, sizes[0])
    return list(zip(scales, [first, *rest.result()], strict=True))
