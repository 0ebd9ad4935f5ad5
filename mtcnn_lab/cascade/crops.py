"""Cutting square boxes out of the image for RNet and ONet (``docs/openface_mtcnn.md`` §7)."""

from __future__ import annotations

from concurrent.futures import Executor

import numpy as np
from numba import njit

from mtcnn_lab.cascade.resize import checked_bgr, resize_window

SPLIT_MIN = 16
"""With a pool, crop_boxes splits its boxes over two threads from this many boxes on."""


@njit(cache=True, nogil=True)
def _crop_into(image, boxes, out):
    for k in range(boxes.shape[0]):
        side = boxes[k, 2] + 1
        resize_window(image, boxes[k, 1] - 1, boxes[k, 0] - 1, side, side, out[k])


def crop_boxes(image: np.ndarray, boxes: np.ndarray, size: int, pool: Executor | None = None) -> np.ndarray:
    """Network inputs (N, 3, size, size) float32 R,G,B for integer square boxes (N, 4) ``[x, y, s, s]``.

    ``image`` is the BGR (H, W, 3) image, uint8 or float32. As in OpenFace, a box in the 1-based
    convention covers the 0-based pixels ``x-1 .. x+s-1`` (and the same rows); they are copied into
    a zero-filled (s+1) x (s+1) float32 buffer (parts outside the image stay 0, i.e. black), which is
    resized with INTER_LINEAR to ``size`` x ``size`` and normalised. One compiled pass does all of
    that per box (:func:`mtcnn_lab.cascade.resize.resize_window`), without building the buffer. With ``pool``
    (an executor with a free thread), the second half of the boxes is cut there meanwhile.
    """
    boxes = np.ascontiguousarray(boxes, np.int64).reshape(-1, 4)
    image = checked_bgr(image)
    out = np.empty((len(boxes), 3, int(size), int(size)), np.float32)
    if pool is None or len(boxes) < SPLIT_MIN:
        _crop_into(image, boxes, out)
        return out
    half = len(boxes) // 2
    second = pool.submit(_crop_into, image, boxes[half:], out[half:])
    _crop_into(image, boxes[:half], out[:half])
    second.result()
    return out
