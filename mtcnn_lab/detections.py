"""``Detections``: what the detector returns for one image, and its JSON form."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Detections", "Detector", "BatchDetector"]


@dataclass(frozen=True, eq=False)
class Detections:
    """Faces found in one image, in OpenFace's output order (final NMS pick order).

    * ``boxes`` float32 (N, 4): OpenFace's final boxes ``x, y, width, height`` in pixels, after its
      tightening correction; OpenFace uses them as 0-based rectangles.
    * ``confidences`` float32 (N,): ONet face probabilities.
    * ``landmarks`` float64 (N, 5, 2): pixel ``x, y`` of the left eye, right eye, nose, left and
      right mouth corner (left/right as seen in the image), decoded as OpenFace's MATLAB twin does.
    * ``boxes_pre_correction`` float32 (N, 4): the ONet-regressed boxes before the correction
      (OpenFace's internal 1-based convention).
    * ``onet_input_boxes`` int64 (N, 4): the square ``[x, y, s, s]`` crops fed to ONet (1-based).
    * ``onet_outputs`` float32 (N, 16): ONet's raw outputs for those crops.
    * ``trace``: per-stage candidates (same fields as the C++ stages reference) when requested.
    """

    boxes: np.ndarray
    confidences: np.ndarray
    landmarks: np.ndarray
    boxes_pre_correction: np.ndarray
    onet_input_boxes: np.ndarray
    onet_outputs: np.ndarray
    trace: dict | None = field(default=None, repr=False)

    @classmethod
    def empty(cls, trace: dict | None = None) -> Detections:
        """No faces."""
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                   np.zeros((0, 5, 2)), np.zeros((0, 4), np.float32),
                   np.zeros((0, 4), np.int64), np.zeros((0, 16), np.float32), trace)

    ARRAYS = ("boxes", "confidences", "landmarks", "boxes_pre_correction", "onet_input_boxes", "onet_outputs")
    """The array fields, in order."""

    def identical(self, other: Detections) -> bool:
        """Whether every array field of ``other`` has this one's dtype, shape and bits (the trace aside)."""
        pairs = [(getattr(self, f), getattr(other, f)) for f in self.ARRAYS]
        return all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in pairs)

    def __len__(self) -> int:
        return len(self.confidences)

    def single_face_index(self) -> int | None:
        """The face OpenFace's video tools keep: the widest box, the first one on ties."""
        return int(np.argmax(self.boxes[:, 2])) if len(self) else None

    def faces(self) -> list[dict]:
        """One dict per face with the fields of the C++ reference JSON (floats as Python floats)."""
        return [
            {
                "bbox": [float(v) for v in self.boxes[i]],
                "confidence": float(self.confidences[i]),
                "landmarks": [[float(x), float(y)] for x, y in self.landmarks[i]],
                "bbox_pre_correction": [float(v) for v in self.boxes_pre_correction[i]],
                "onet_input_box": [int(v) for v in self.onet_input_boxes[i]],
            }
            for i in range(len(self))
        ]


@runtime_checkable
class Detector(Protocol):
    """What the video and corpus layers need of a detector: faces in one BGR uint8 (H, W, 3) image.
    :class:`~mtcnn_lab.MTCNN` is one; so is a test's stand-in."""

    def detect(self, image: np.ndarray) -> Detections:
        """The faces of ``image``."""
        ...


@runtime_checkable
class BatchDetector(Detector, Protocol):
    """A :class:`Detector` that also takes several images per call, with each image's ``detect`` result."""

    @property
    def preferred_batch(self) -> int:
        """How many images a call should get (the runtime's sweet spot)."""
        ...

    def detect_batch(self, images: Iterable[np.ndarray], batch: int | None = None) -> list[Detections]:
        """``[detect(image) for image in images]``, up to ``batch`` images per pass through the cascade."""
        ...
