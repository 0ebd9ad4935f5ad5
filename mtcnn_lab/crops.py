"""Cutting square boxes out of the image for RNet and ONet (spec §7)."""

from __future__ import annotations

import cv2
import numpy as np

from .pyramid import normalise


def crop_geometry(box: np.ndarray, height: int, width: int) -> tuple[int, int, int, int, int, int]:
    """Source and destination of one crop copy, as OpenFace computes them.

    ``box`` is an integer square ``[x, y, s, s]`` in the 1-based convention; it covers the 0-based
    image columns ``x-1 .. x+s-1``. Returns ``(sx_in, sy_in, ex_in, ey_in, sx_out, sy_out)``:
    image pixels ``[sx_in, ex_in) x [sy_in, ey_in)`` go to the (s+1)x(s+1) buffer at
    ``(sx_out, sy_out)``.
    """
    x, y, s = int(box[0]), int(box[1]), int(box[2])
    return (max(x - 1, 0), max(y - 1, 0), min(x + s, width), min(y + s, height),
            max(1 - x, 0), max(1 - y, 0))


def crop_boxes(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Network inputs (N, 3, size, size) float32 R,G,B for integer square boxes (N, 4).

    ``image`` is the BGR image as uint8, or already converted to float32 (then crops inside the
    image are resized straight from it, without a copy).

    Each box is copied into a zero-filled (s+1)x(s+1) float32 buffer (parts outside the image
    stay 0, i.e. black), resized with INTER_LINEAR to ``size`` x ``size`` and normalised.
    """
    height, width = image.shape[:2]
    resized = np.empty((len(boxes), size, size, 3), np.float32)
    for k, box in enumerate(boxes):
        side = int(box[2]) + 1
        sx, sy, ex, ey, ox, oy = crop_geometry(box, height, width)
        if ex - sx == side and ey - sy == side:  # inside the image: no padding needed
            buffer = image[sy:ey, sx:ex].astype(np.float32, copy=False)
        else:
            buffer = np.zeros((side, side, 3), np.float32)
            if ex > sx and ey > sy:
                buffer[oy:oy + ey - sy, ox:ox + ex - sx] = image[sy:ey, sx:ex]
        cv2.resize(buffer, (size, size), dst=resized[k], interpolation=cv2.INTER_LINEAR)
    return normalise(resized)
