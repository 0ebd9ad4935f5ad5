"""Whether the device cascade gives, on this device, the bits of the host cascade on the same nets: checked
when a detector with such a backend is built (:class:`~mtcnn_lab.MTCNN`), since GPU libraries choose their
kernels by device, shape and alignment, and nothing here has run on every GPU."""

from __future__ import annotations

import numpy as np

from mtcnn_lab.backends.base import Backend
from mtcnn_lab.cascade.device.stages import run_device_cascade
from mtcnn_lab.cascade.stages import run_cascade
from mtcnn_lab.params import CascadeParams

__all__ = ["CHECK_PARAMS", "check_frames", "device_cascade_mismatch"]

CHECK_PARAMS = CascadeParams(min_face=24, thresholds=(0.0, 0.0, 0.0))
"""Thresholds 0 let every candidate of a frame reach RNet and ONet, so every step and NMS is exercised."""


def check_frames(seed: int = 0) -> list[np.ndarray]:
    """Two 96x72 BGR uint8 frames of smoothed noise (each level, stage and NMS gets candidates)."""
    import cv2

    rng = np.random.default_rng(seed)
    return [cv2.GaussianBlur(rng.integers(0, 256, (72, 96, 3), dtype=np.uint8), (0, 0), 2) for _ in range(2)]


def device_cascade_mismatch(backend: Backend) -> str | None:
    """None when ``backend``'s device cascade gives :func:`check_frames`, in one call, the Detections and
    traces of the host cascade run frame by frame on the same nets; else what differs, in one line."""
    frames = check_frames()
    together = run_device_cascade(frames, backend.device_nets, CHECK_PARAMS, trace=True)
    for index, (frame, ours) in enumerate(zip(frames, together, strict=True)):
        host = run_cascade(frame, backend, CHECK_PARAMS, trace=True)
        if not ours.identical(host):
            return f"check frame {index}: the device cascade's faces differ from the host cascade's"
        stage = next((key for key in host.trace if ours.trace.get(key) != host.trace[key]), None)
        if stage is not None:
            return f"check frame {index}: the device cascade's {stage} differ from the host cascade's"
    return None
