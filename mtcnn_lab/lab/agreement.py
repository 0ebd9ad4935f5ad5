"""Agreement between two runs (e.g. FP16 against FP32): faces matched by IoU, and how PNet's proposals move
when only its box offsets change."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mtcnn_lab.backends.base import ONE_INPUT_PER_CALL, Backend
from mtcnn_lab.cascade.boxes import iou
from mtcnn_lab.detections import Detections
from mtcnn_lab.params import CascadeParams


@dataclass(frozen=True)
class Agreement:
    """How far one run's detections are from another's (e.g. FP16 vs FP32) on one image.

    Faces are matched greedily by IoU (>= ``min_iou``); ``ious`` and ``px_errors`` (largest
    |difference| of x, y, w, h) are per matched face.
    """

    image: str
    faces_a: int
    faces_b: int
    matched: int
    ious: tuple[float, ...]
    px_errors: tuple[float, ...]

    @property
    def same_count(self) -> bool:
        """True when both runs found the same number of faces."""
        return self.faces_a == self.faces_b


def match_faces(a: np.ndarray, b: np.ndarray, min_iou: float = 0.3) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching of boxes ``a`` to ``b`` by descending IoU: ``(i, j, iou)`` pairs."""
    m = iou(a, b)
    pairs = []
    while m.size and m.max() >= min_iou:
        i, j = np.unravel_index(np.argmax(m), m.shape)
        pairs.append((int(i), int(j), float(m[i, j])))
        m[i, :], m[:, j] = -1, -1
    return pairs


def agreement(image: str, a: Detections, b: Detections, min_iou: float = 0.3) -> Agreement:
    """Compare two runs on one image (see :class:`Agreement`)."""
    pairs = match_faces(a.boxes, b.boxes, min_iou)
    px = [float(np.abs(a.boxes[i].astype(np.float64) - b.boxes[j]).max()) for i, j, _ in pairs]
    return Agreement(image, len(a), len(b), len(pairs), tuple(v for *_, v in pairs), tuple(px))


def summarise_agreement(rows: list[Agreement]) -> dict:
    """Totals over images: count agreement, IoU mean/median/min, share of IoU > 0.99, max px error."""
    ious = np.array([v for r in rows for v in r.ious])
    px = np.array([v for r in rows for v in r.px_errors])
    return {
        "images": len(rows),
        "images_same_count": sum(r.same_count for r in rows),
        "faces_a": sum(r.faces_a for r in rows), "faces_b": sum(r.faces_b for r in rows),
        "matched": int(len(ious)),
        "iou_mean": float(ious.mean()) if len(ious) else None,
        "iou_median": float(np.median(ious)) if len(ious) else None,
        "iou_min": float(ious.min()) if len(ious) else None,
        "share_iou_above_0.99": float((ious > 0.99).mean()) if len(ious) else None,
        "max_px_error": float(px.max()) if len(px) else None,
    }


class _Replay:
    """A PNet-only backend that replays recorded heat maps in call order (see :func:`pnet_offset_shift`)."""

    name = "replay"
    batch_limits = ONE_INPUT_PER_CALL

    def __init__(self, maps: list[np.ndarray]):
        self.maps = list(maps)

    def run_pnet(self, images: np.ndarray) -> np.ndarray:
        return self.maps.pop(0)


class _Recorder:
    """Wraps a backend and keeps every PNet output it returns."""

    def __init__(self, backend):
        self.backend, self.name, self.maps = backend, backend.name, []
        self.batch_limits = backend.batch_limits

    def run_pnet(self, images: np.ndarray) -> np.ndarray:
        self.maps.append(self.backend.run_pnet(images))
        return self.maps[-1]


def pnet_offset_shift(image: np.ndarray, reference: Backend, other: Backend, params: CascadeParams | None = None
                      ) -> dict:
    """How PNet's square integer proposals change when its box offsets come from ``other`` (e.g. FP16).

    Stage 1 of the cascade (:func:`~mtcnn_lab.cascade.stages.stage_pnet`) is run with ``reference``, with
    ``other``, and once more with ``reference``'s face scores and ``other``'s regression offsets
    (channels 2-5), replayed from the first two runs: the same cells pass the threshold and the NMS
    in the same order, so the proposals pair up one to one and any change comes from the offsets
    alone, through the truncation of the regressed, squared boxes to integers.

    Returns ``proposals`` (reference count), ``moved`` (proposals whose integer x, y or side
    differs), ``shifts`` (per proposal the largest |Δ| of x, y, side in px), ``offsets_max_abs``
    (largest |Δ| of any offset over every heat-map cell), and for the full ``other`` run
    ``proposals_other`` and ``identical`` (reference proposals found exactly among them).
    """
    from mtcnn_lab.cascade.stages import stage_pnet
    from mtcnn_lab.io.images import as_bgr_uint8

    image = as_bgr_uint8(image)
    params = params or CascadeParams()
    ref, oth = _Recorder(reference), _Recorder(other)
    boxes_ref = stage_pnet(image, ref, params)
    boxes_other = stage_pnet(image, oth, params)
    mixed = []
    for a, b in zip(ref.maps, oth.maps, strict=True):
        m = a.copy()
        m[:, 2:6] = b[:, 2:6]
        mixed.append(m)
    boxes_mixed = stage_pnet(image, _Replay(mixed), params)
    shifts = np.abs(boxes_mixed[:, :3] - boxes_ref[:, :3]).max(axis=1, initial=0) if len(boxes_ref) else \
        np.zeros(0, np.int64)
    offsets = max((float(np.abs(a[:, 2:6].astype(np.float64) - b[:, 2:6]).max(initial=0.0))
                   for a, b in zip(ref.maps, oth.maps, strict=True)), default=0.0)
    found = {tuple(b) for b in boxes_other.tolist()}
    return {
        "proposals": len(boxes_ref),
        "moved": int((shifts > 0).sum()),
        "shifts": shifts.astype(np.int64),
        "offsets_max_abs": offsets,
        "proposals_other": len(boxes_other),
        "identical": sum(tuple(b) in found for b in boxes_ref.tolist()),
    }
