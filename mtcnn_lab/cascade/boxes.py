"""Box arithmetic of OpenFace's MTCNN: NMS, regression, squaring, the final correction, IoU.

Boxes are float32 arrays (N, 4) of ``x, y, width, height`` in pixels. Inside the cascade they
follow OpenFace's 1-based MATLAB convention (a square box ``[X, Y, s, s]`` covers the 0-based
pixels ``X-1 .. X+s-1``); the final corrected boxes are used by OpenFace as 0-based rectangles.
Every function reproduces the float32/int arithmetic of ``FaceDetectorMTCNN.cpp``
(``docs/openface_mtcnn.md`` §6, §8, §9).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mtcnn_lab.params import OPENFACE_CORRECTION

F32 = np.float32


def _integer_rects(boxes: np.ndarray) -> np.ndarray:
    """``cv::Rect(Rect_<float>)``: x, y, w, h each rounded half to even, as int64 (N, 4)."""
    return np.rint(np.asarray(boxes, np.float64)).astype(np.int64)


@njit(cache=True, nogil=True, error_model="numpy")
def _greedy_picks(boxes: np.ndarray, order: np.ndarray, threshold: np.float32, by_min: bool) -> np.ndarray:
    """The entries of ``order`` (pick order) kept by greedy suppression of ``boxes`` (N, 4).

    Boxes are compared as ``cv::Rect``s (x, y, w, h rounded half to even, as :func:`_integer_rects`),
    with overlaps as OpenFace computes them: half-open intersections (0 when disjoint), areas
    ``w * h`` with no +1, converted to float32; the ratio is float32.
    """
    n = order.shape[0]
    rects = np.empty((n, 4), np.int64)
    for i in range(n):
        for k in range(4):
            rects[i, k] = np.int64(np.rint(np.float64(boxes[order[i], k])))
    removed = np.zeros(n, np.bool_)
    picked = np.empty(n, np.int64)
    count = 0
    for i in range(n):
        if removed[i]:
            continue
        picked[count] = order[i]
        count += 1
        xi, yi, wi, hi = rects[i, 0], rects[i, 1], rects[i, 2], rects[i, 3]
        for j in range(i + 1, n):
            if removed[j]:
                continue
            xj, yj, wj, hj = rects[j, 0], rects[j, 1], rects[j, 2], rects[j, 3]
            iw = min(xi + wi, xj + wj) - max(xi, xj)
            ih = min(yi + hi, yj + hj) - max(yi, yj)
            inter = np.float32(iw * ih) if iw > 0 and ih > 0 else np.float32(0)
            if by_min:
                denom = np.float32(min(wi * hi, wj * hj))
            else:
                denom = np.float32(wi * hi + wj * hj) - inter
            if np.float32(inter / denom) > threshold:
                removed[j] = True
    return picked[:count]


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union") -> np.ndarray:
    """OpenFace's non-maximum suppression; returns kept indices in pick order.

    Boxes are compared as integer rectangles (half-open, area ``w*h``, no +1). The highest score is
    picked first; among equal scores the later index wins (``std::multimap`` order). A box is
    removed when its overlap with a picked box is strictly greater than ``threshold``; ``mode`` is
    ``"union"`` (IoU) or ``"min"`` (intersection over the smaller area).
    """
    if mode not in ("union", "min"):
        raise ValueError(f"nms mode must be 'union' or 'min', not {mode!r}")
    order = np.argsort(np.asarray(scores, F32), kind="stable")[::-1]  # descending; ties: later index first
    boxes = np.asarray(boxes).reshape(-1, 4)
    if boxes.dtype not in (np.float32, np.int64):  # the kernel is compiled for the cascade's two dtypes
        boxes = boxes.astype(np.float64)
    return _greedy_picks(boxes, np.ascontiguousarray(order), F32(threshold), mode == "min")


def apply_regression(boxes: np.ndarray, regression: np.ndarray, add1: bool) -> np.ndarray:
    """OpenFace's ``apply_correction``: shift box corners by regression offsets times the size.

    ``regression`` is (N, 4) ``dx1, dy1, dx2, dy2``. The box is first made an integer rect; with
    ``add1`` its width and height get +1 (used after ONet only). Returns float32 (N, 4) boxes.
    """
    rects = _integer_rects(boxes)
    if add1:
        rects[:, 2:] += 1
    x, y, w, h = (rects[:, k].astype(F32) for k in range(4))
    xr, yr = (rects[:, 0] + rects[:, 2]).astype(F32), (rects[:, 1] + rects[:, 3]).astype(F32)
    reg = np.asarray(regression, F32)
    new_x1 = x + reg[:, 0] * w
    new_y1 = y + reg[:, 1] * h
    new_x2 = xr + reg[:, 2] * w
    new_y2 = yr + reg[:, 3] * h
    return np.stack([new_x1, new_y1, new_x2 - new_x1, new_y2 - new_y1], axis=1).astype(F32)


def square_boxes(boxes: np.ndarray) -> np.ndarray:
    """OpenFace's ``rectify``: grow each box to a square around its centre, truncated to int.

    Side ``s = max(w, h)``; ``x += 0.5 * (w - s)``, ``y += 0.5 * (h - s)``; x, y and s are then
    truncated toward zero. Returns int64 (N, 4) ``x, y, s, s``.
    """
    b = np.asarray(boxes, F32)
    w, h = b[:, 2], b[:, 3]
    side = np.maximum(w, h)
    x = (b[:, 0].astype(np.float64) + 0.5 * (w - side).astype(np.float64)).astype(F32)
    y = (b[:, 1].astype(np.float64) + 0.5 * (h - side).astype(np.float64)).astype(F32)
    s = np.trunc(side).astype(np.int64)
    return np.stack([np.trunc(x).astype(np.int64), np.trunc(y).astype(np.int64), s, s], axis=1)


def openface_correction(
    boxes: np.ndarray, coefficients: tuple[float, float, float, float] = OPENFACE_CORRECTION
) -> np.ndarray:
    """OpenFace's final tightening of the ONet box, computed in double and stored as float32."""
    b = np.asarray(boxes, F32).astype(np.float64)
    cx, cy, cw, ch = coefficients
    out = np.stack([b[:, 2] * cx + b[:, 0], b[:, 3] * cy + b[:, 1], cw * b[:, 2], ch * b[:, 3]], 1)
    return out.astype(F32).reshape(-1, 4)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU (float64, shape (len(a), len(b))) of continuous x, y, w, h boxes."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax2[:, None], bx2) - np.maximum(a[:, None, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(ay2[:, None], by2) - np.maximum(a[:, None, 1], b[:, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + b[:, 2] * b[:, 3] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)
