"""PNet's output turned into candidate boxes (``generate_bounding_boxes``, spec §5)."""

from __future__ import annotations

import numpy as np

from .pyramid import FACE_CELL

F32 = np.float32
PNET_STRIDE = 2


def face_probability_map(logits: np.ndarray) -> np.ndarray:
    """PNet's face probability ``1 / (1 + exp(l0 - l1))`` in float32, from (2, h, w) logits.

    Like OpenCV's float maths it saturates to exactly 1.0 for ``l0 - l1 < -16.6``.
    """
    diff = (logits[0] - logits[1]).astype(F32)
    with np.errstate(over="ignore"):
        return F32(1) / (F32(1) + np.exp(diff))


def pnet_proposals(prob: np.ndarray, regression: np.ndarray, scale: float,
                   threshold: float = 0.6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heat-map cells with ``prob >= threshold`` as boxes in image pixels (1-based convention).

    Cells are listed column by column (x outer, y inner), as OpenFace scans them; the order
    decides NMS ties. Corners are ``int((2x + 1) / scale)`` .. ``int((2x + 12) / scale)`` with a
    float32 scale. Returns boxes float32 (N, 4) x, y, w, h, scores float32 (N,), regression
    float32 (N, 4) ``dx1, dy1, dx2, dy2``.
    """
    xs, ys = np.nonzero(prob.T >= F32(threshold))
    scale32 = F32(scale)
    x1 = np.trunc((PNET_STRIDE * xs + 1).astype(F32) / scale32)
    y1 = np.trunc((PNET_STRIDE * ys + 1).astype(F32) / scale32)
    x2 = np.trunc((PNET_STRIDE * xs + FACE_CELL).astype(F32) / scale32)
    y2 = np.trunc((PNET_STRIDE * ys + FACE_CELL).astype(F32) / scale32)
    boxes = np.stack([x1, y1, x2 - x1, y2 - y1], axis=1).astype(F32)
    return boxes, prob[ys, xs].astype(F32), regression[:, ys, xs].T.astype(F32)
