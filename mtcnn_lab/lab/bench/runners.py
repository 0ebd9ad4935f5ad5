"""Runners: a detector under test as one timed call, its thread count and its boxes, for mtcnn-lab's backends."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mtcnn_lab.backends.onnx import OnnxBackend
from mtcnn_lab.detections import Detections
from mtcnn_lab.errors import BackendUnavailable

GPU_MARKS = ("gpu", "cuda", "mps", "coreml")
"""Backend names containing one of these do not run on the CPU."""


@dataclass(frozen=True, eq=False)
class BoxesResult:
    """Boxes ``x, y, width, height`` (float64, N x 4) and confidences (float64, N; NaN where unknown)."""

    boxes: np.ndarray
    confidences: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def of(cls, boxes: object, confidences: object | None = None) -> BoxesResult:
        """Normalise any array-likes; ``confidences=None`` gives NaN for every box."""
        b = np.asarray(boxes, np.float64).reshape(-1, 4)
        c = np.full(len(b), np.nan) if confidences is None else np.asarray(confidences, np.float64).reshape(-1)
        if len(c) != len(b):
            raise ValueError(f"{len(b)} boxes but {len(c)} confidences")
        return cls(b, c)


def as_boxes_result(raw: object) -> BoxesResult:
    """A detector's output as :class:`BoxesResult`: :class:`~mtcnn_lab.detections.Detections`, or a
    ``(boxes, landmarks)`` tuple as pymtcnn returns (no confidences)."""
    if isinstance(raw, BoxesResult):
        return raw
    if isinstance(raw, Detections):
        return BoxesResult.of(raw.boxes, raw.confidences)
    if isinstance(raw, tuple) and len(raw) >= 1:
        return BoxesResult.of(raw[0])
    raise TypeError(f"cannot read boxes from a {type(raw).__name__}")


@dataclass
class Runner:
    """One detector as the harness sees it.

    * ``detect(image) -> raw``: the call that is timed (BGR uint8 in; output converted after timing).
    * ``threads``: the thread count it was built for; the harness pins BLAS/OpenCV (and torch) to it.
    * ``to_result(raw) -> BoxesResult``: untimed conversion (default :func:`as_boxes_result`).
    * ``result_fn(image) -> BoxesResult``: optional untimed call used for parity and memory when the
      timed call cannot give everything (pymtcnn's confidences); default ``to_result(detect(image))``.
    * ``stage_fn(image, timer)``: optional; one detection that adds seconds per stage to the
      :class:`~mtcnn_lab.cascade.timer.StageTimer` ``timer``.
    * ``kind`` (``"mtcnn-lab"`` / ``"pymtcnn"`` / ...), ``info``: what to record about it (backend,
      provider, the runtime's configured thread counts...).
    * ``close()``: releases the detector's runtime once its timing is done (default: nothing to release).
    """

    name: str
    detect: Callable[[np.ndarray], object]
    threads: int | None = None
    to_result: Callable[[object], BoxesResult] = as_boxes_result
    result_fn: Callable[[np.ndarray], BoxesResult] | None = None
    stage_fn: Callable[[np.ndarray, object], object] | None = None
    kind: str = "mtcnn-lab"
    info: dict = field(default_factory=dict)
    close: Callable[[], None] = field(default=lambda: None)

    def result(self, image: np.ndarray) -> BoxesResult:
        """One untimed detection as :class:`BoxesResult`."""
        return self.result_fn(image) if self.result_fn is not None else self.to_result(self.detect(image))


class RunnerUnavailable(BackendUnavailable):
    """A runner cannot be built here (a :class:`~mtcnn_lab.errors.BackendUnavailable`); one-line message."""


def onnx_thread_info(sessions: dict) -> dict:
    """The configured intra/inter-op thread counts of onnxruntime sessions (0 = onnxruntime's default)."""
    out = {}
    for net, session in sessions.items():
        options = session.get_session_options()
        out[net] = {"intra_op_num_threads": options.intra_op_num_threads,
                    "inter_op_num_threads": options.inter_op_num_threads,
                    "provider": session.get_providers()[0]}
    return out


def default_cpu_backend() -> str:
    """The backend ``auto`` picks on a CPU-only machine: the first of ``AUTO_ORDER`` that is not a GPU one."""
    from mtcnn_lab.backends.select import AUTO_ORDER

    return next(name for name in AUTO_ORDER if not any(mark in name for mark in GPU_MARKS))


def mtcnn_runner(backend: str, threads: int | None, weights: str = "auto", models_root: str | Path | None = None,
                 **params) -> Runner:
    """A :class:`Runner` for mtcnn-lab's ``MTCNN`` on ``backend`` (a name from ``mtcnn-lab backends``).

    ``threads`` sizes the runtime's own pool (onnxruntime ``intra_op_num_threads``); the harness pins
    BLAS/OpenCV/torch. Stage times come from :meth:`MTCNN.detect` with a StageTimer.
    """
    from mtcnn_lab.detector import MTCNN
    from mtcnn_lab.errors import MtcnnLabError

    try:
        detector = MTCNN(backend=backend, weights=weights, models_root=models_root, threads=threads, **params)
    except MtcnnLabError as err:
        raise RunnerUnavailable(f"mtcnn-lab backend {backend!r}: {err}") from None
    info = {"backend": detector.backend.name, "requested": backend, "weights": detector.weights.name,
            "weights_source": str(detector.weights.source)}
    if isinstance(detector.backend, OnnxBackend):
        info["onnxruntime_sessions"] = onnx_thread_info(detector.backend.sessions)

    def stage_fn(image: np.ndarray, timer) -> object:
        return detector.detect(image, timer=timer)

    return Runner(name=detector.backend.name, detect=detector.detect, threads=threads, stage_fn=stage_fn,
                  kind="mtcnn-lab", info=info, close=detector.close)
