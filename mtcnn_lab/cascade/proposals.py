"""PNet's output turned into candidate boxes (OpenFace's ``generate_bounding_boxes``,
``docs/openface_mtcnn.md`` §5)."""

from __future__ import annotations

import numpy as np
from numba import njit

from mtcnn_lab.params import FACE_CELL

F32 = np.float32
PNET_STRIDE = 2


def float_exp(x: np.ndarray) -> np.ndarray:
    """``exp`` of a float32 array as float32: computed in double, then rounded once to float32.

    numpy's own float32 ``exp`` picks a SIMD routine by CPU (AVX-512F, AVX2, scalar) that can differ in
    the last bit. A double ``exp`` is within an ulp or two of the exact value, and all float32 inputs but
    two lie farther than that from a float32 rounding boundary, so the rounded result is the correctly
    rounded float32 on every CPU and torch device (the device cascade computes it the same way; the two
    inputs are pinned in ``tests/test_device_cascade.py``), as close as a float gets to ``std::exp(float)``.
    """
    with np.errstate(over="ignore", under="ignore"):
        return np.exp(np.asarray(x, F32).astype(np.float64)).astype(F32)


def face_probability_map(logits: np.ndarray) -> np.ndarray:
    """PNet's face probability ``1 / (1 + exp(l0 - l1))`` in float32, from (2, h, w) logits.

    Like OpenCV's float maths it saturates to exactly 1.0 for ``l0 - l1 < -16.6``.
    """
    diff = (logits[0] - logits[1]).astype(F32)
    return F32(1) / (F32(1) + float_exp(diff))


@njit(cache=True, nogil=True)
def _cells_above(prob, regression, scale, threshold):
    """:func:`pnet_proposals` in one compiled pass: count the cells, then fill the three arrays."""
    count = 0
    for x in range(prob.shape[1]):
        for y in range(prob.shape[0]):
            if prob[y, x] >= threshold:
                count += 1
    boxes = np.empty((count, 4), np.float32)
    scores = np.empty(count, np.float32)
    regs = np.empty((count, 4), np.float32)
    k = 0
    for x in range(prob.shape[1]):  # column by column, as OpenFace scans
        for y in range(prob.shape[0]):
            if prob[y, x] >= threshold:
                x1 = np.trunc(np.float32(PNET_STRIDE * x + 1) / scale)
                y1 = np.trunc(np.float32(PNET_STRIDE * y + 1) / scale)
                x2 = np.trunc(np.float32(PNET_STRIDE * x + FACE_CELL) / scale)
                y2 = np.trunc(np.float32(PNET_STRIDE * y + FACE_CELL) / scale)
                boxes[k, 0], boxes[k, 1], boxes[k, 2], boxes[k, 3] = x1, y1, x2 - x1, y2 - y1
                scores[k] = prob[y, x]
                for i in range(4):
                    regs[k, i] = regression[i, y, x]
                k += 1
    return boxes, scores, regs


def pnet_proposals(prob: np.ndarray, regression: np.ndarray, scale: float,
                   threshold: float = 0.6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heat-map cells with ``prob >= threshold`` as boxes in image pixels (1-based convention).

    Cells are listed column by column (x outer, y inner), as OpenFace scans them; the order
    decides NMS ties. Corners are ``int((2x + 1) / scale)`` .. ``int((2x + 12) / scale)`` with a
    float32 scale. Returns boxes float32 (N, 4) x, y, w, h, scores float32 (N,), regression
    float32 (N, 4) ``dx1, dy1, dx2, dy2``.
    """
    return _cells_above(np.asarray(prob, F32), np.asarray(regression, F32), F32(scale), F32(threshold))
