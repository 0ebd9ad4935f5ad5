"""Loaded once by the fork server that starts the detection workers (:mod:`mtcnn_lab.video.workers`).

Importing this module imports what a worker needs (the detector, numba, OpenVINO when installed)
and loads the compiled kernels (numba's first call initialises its compiler), so each
worker forked from the server starts with all of that done instead of paying it again. It has no
use of its own and starts no thread (the server must stay safe to fork).
"""

from __future__ import annotations

import contextlib

import numpy as np

from mtcnn_lab.cascade import boxes, crops, proposals, resize
from mtcnn_lab.detector import MTCNN  # noqa: F401  (imported for the workers)
from mtcnn_lab.video import stream  # noqa: F401  (imported for the workers)

with contextlib.suppress(ImportError):  # the default CPU runtime
    import openvino  # noqa: F401


def _load_kernels() -> None:
    image = np.zeros((24, 24, 3), np.uint8)
    resize.resized_input(image, (12, 12))
    crops.crop_boxes(image, np.array([[1, 1, 10, 10]]), 24)
    for dtype in (np.float32, np.int64):  # PNet's and ONet's boxes; RNet's squared boxes
        boxes.nms(np.zeros((1, 4), dtype), np.ones(1, np.float32), 0.5)
    proposals.pnet_proposals(np.ones((2, 2), np.float32), np.zeros((4, 2, 2), np.float32), 0.5)


_load_kernels()
