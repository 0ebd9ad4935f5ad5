"""OpenFace's bilinear resizing, compiled and fused with MTCNN's input normalisation.

OpenFace converts the frame to float32 once, then calls ``cv::resize(..., INTER_LINEAR)`` for every
pyramid level and every zero-padded RNet/ONet crop buffer (``docs/openface_mtcnn.md`` §5, §7). Its OpenCV (Debian's 4.6,
built without Intel IPP) runs the generic separable path, which these kernels reproduce bit for bit
(checked against OpenFace's own layer dumps of the reference data in tests/test_resize.py):

* per destination column (and row) ``d``: ``f = float32((d + 0.5) * (1 / (dst / src)) - 0.5)``,
  source index ``floor(f)``, weight ``f - floor(f)`` in float32, both clamped at the borders;
* rows first: ``h = s0 * (1 - wx) + s1 * wx``, then columns: ``h0 * (1 - wy) + h1 * wy``, float32,
  no fused multiply-add.

opencv-python's wheels route the same call to Intel IPP, which rounds differently in the last bits,
so ``cv2.resize`` is not used for the network inputs. The kernels read the BGR image directly
(uint8 to float32 is exact, so no float copy of the frame is made), treat pixels outside the image
as 0 (OpenFace's zero-filled crop buffer), and write normalised ``(v - 127.5) * 0.0078125`` R, G, B
planes. They release the GIL.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mtcnn_lab.errors import InputError

F32 = np.float32


@njit(cache=True, nogil=True)
def _linear_taps(src: int, dst: int) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's INTER_LINEAR source index (int64) and float32 weight of the second tap, per output pixel."""
    scale = 1.0 / (dst / src)
    index = np.empty(dst, np.int64)
    weight = np.empty(dst, np.float32)
    for d in range(dst):
        f = np.float32((d + 0.5) * scale - 0.5)
        s = int(np.floor(f))
        f = f - np.float32(s)
        if s < 0:
            f, s = np.float32(0), 0
        if s >= src - 1:
            f, s = np.float32(0), src - 1
        index[d] = s
        weight[d] = f
    return index, weight


@njit(cache=True, nogil=True)
def _window_taps(start, length, limit, out_size):
    """Clamped image indices and weights of both taps for a window of ``length`` pixels at ``start``;
    a tap outside ``[0, limit)`` gets weight 0, which is exact (pixels are finite), like reading a 0."""
    index, w1 = _linear_taps(length, out_size)
    i0, i1 = np.empty(out_size, np.int64), np.empty(out_size, np.int64)
    w0 = np.empty(out_size, np.float32)
    for d in range(out_size):
        p0, p1 = start + index[d], start + min(index[d] + 1, length - 1)
        w0[d] = np.float32(1) - w1[d] if 0 <= p0 < limit else np.float32(0)
        if not 0 <= p1 < limit:
            w1[d] = np.float32(0)
        i0[d], i1[d] = min(max(p0, 0), limit - 1), min(max(p1, 0), limit - 1)
    return i0, i1, w0, w1


@njit(cache=True, nogil=True)
def resize_window(image, top, left, height, width, out) -> None:
    """Resize the ``height`` x ``width`` window at ``(top, left)`` of a BGR (H, W, 3) image into
    ``out`` (3, h, w), normalised R, G, B; window pixels outside the image count as 0."""
    x0, x1, a0, a1 = _window_taps(left, width, image.shape[1], out.shape[2])
    y0, y1, b0, b1 = _window_taps(top, height, image.shape[0], out.shape[1])
    mean, unit = np.float32(127.5), np.float32(0.0078125)
    w = out.shape[2]
    h0, h1 = np.empty((3, w), np.float32), np.empty((3, w), np.float32)  # the two source rows, resized
    for y in range(out.shape[1]):
        row0, row1 = image[y0[y]], image[y1[y]]
        for x in range(w):
            p0, p1 = x0[x], x1[x]
            for c in range(3):
                h0[c, x] = np.float32(row0[p0, c]) * a0[x] + np.float32(row0[p1, c]) * a1[x]
                h1[c, x] = np.float32(row1[p0, c]) * a0[x] + np.float32(row1[p1, c]) * a1[x]
        for c in range(3):  # one contiguous output row per channel: this loop vectorises
            plane = out[2 - c, y]
            for x in range(w):
                plane[x] = (h0[c, x] * b0[y] + h1[c, x] * b1[y] - mean) * unit


def checked_bgr(image: np.ndarray) -> np.ndarray:
    """``image`` as a C-contiguous BGR (H, W, 3) uint8 or float32 array, the kernels' input."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype not in (np.uint8, np.float32):
        raise InputError(f"expected a BGR (H, W, 3) uint8 or float32 image, got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


def resized_input(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The whole BGR image resized to ``size = (h, w)`` as a normalised float32 (3, h, w) R,G,B input."""
    h, w = size
    out = np.empty((3, h, w), F32)
    image = checked_bgr(image)
    resize_window(image, 0, 0, image.shape[0], image.shape[1], out)
    return out
