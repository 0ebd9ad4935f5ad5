"""``MTCNN``: the public detector, OpenFace's cascade on a chosen backend and weight set."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

from mtcnn_lab.backends.base import Backend
from mtcnn_lab.backends.select import pick_backend
from mtcnn_lab.cascade.stages import run_cascade_batch
from mtcnn_lab.cascade.timer import NO_TIMER, StageTimer
from mtcnn_lab.checks import positive_int
from mtcnn_lab.detections import Detections
from mtcnn_lab.errors import BackendUnavailable, InputError, ParameterError
from mtcnn_lab.io.images import as_bgr_uint8
from mtcnn_lab.params import CascadeParams
from mtcnn_lab.weights.netspec import WeightSet
from mtcnn_lab.weights.sets import load_weights

__all__ = ["MTCNN"]

log = logging.getLogger(__name__)

HOST_BATCH = 4
"""Frames per :meth:`MTCNN.detect_batch` pass when the cascade runs on the host."""


class MTCNN:
    """OpenFace 2.2's MTCNN face detector.

    ``backend``: ``"auto"`` (the best runtime that passes its self-check), a name from
    ``mtcnn-lab backends`` (``"numpy"`` is the C++-exact reference) or a backend object. ``weights``: ``"openface"``
    (OpenFace's ``.dat`` files from the model cache), ``"zhang2016"`` (the bundled MIT weights,
    bit-identical), ``"auto"`` (OpenFace's when installed) or a :class:`WeightSet`. The remaining
    keyword arguments are :class:`CascadeParams` fields; the defaults are OpenFace's (minimum face
    60 px, pyramid factor 0.709, thresholds 0.6/0.7/0.7). ``threads`` sizes the runtime's thread pool
    (onnxruntime, OpenVINO); unless it is 1, the resizing (pyramid levels, RNet/ONet crops) is also
    split over two threads, this one and a helper. Constructing never downloads anything. :meth:`recipe` rebuilds the
    detector elsewhere, e.g. in worker processes.
    """

    def __init__(self, backend: str | Backend = "auto", weights: str | WeightSet = "auto",
                 models_root: str | Path | None = None, threads: int | None = None, **params):
        self.weights = weights if isinstance(weights, WeightSet) else load_weights(weights, models_root)
        self.params = CascadeParams(**params)
        positive_int(threads, "threads", optional=True)
        self.resize_pool = None if threads == 1 else ThreadPoolExecutor(1, thread_name_prefix="mtcnn-resize")
        self._backend_name: str | None = None  # the choice a worker process can build again
        self._closed = False
        if isinstance(backend, str):
            self._backend_name, self.backend = pick_backend(backend, self.weights, threads)
            if self.backend.device_nets is not None:
                self._check_device_cascade(backend, threads)
        elif isinstance(backend, Backend):
            self.backend = backend
        else:
            raise ParameterError(f"backend must be a name from `mtcnn-lab backends` (e.g. 'auto') or an object with "
                                 f"every member of mtcnn_lab.backends.base.Backend, not {type(backend).__name__}")
        log.info("MTCNN: %s weights (%s), %s backend", self.weights.name, self.weights.source,
                 self.backend.name)

    def _check_device_cascade(self, requested: str, threads: int | None) -> None:
        """Keep a whole-cascade backend only when its cascade gives the host cascade's bits on this device
        (:func:`~mtcnn_lab.cascade.device.check.device_cascade_mismatch`); ``auto`` then takes the next backend."""
        from mtcnn_lab.cascade.device.check import device_cascade_mismatch  # imports torch, as the backend did

        problem = device_cascade_mismatch(self.backend)
        if problem is None:
            return
        name = self.backend.name
        self.backend.close()
        if requested != "auto":
            raise BackendUnavailable(f"{name} cannot be used here: {problem}; choose another backend")
        log.warning("backend %s skipped: %s", name, problem)
        self._backend_name, self.backend = pick_backend("auto", self.weights, threads, exclude=(self._backend_name,))

    def close(self) -> None:
        """Stop the resizing helper thread and close the backend when this detector built it (a backend
        given as an object stays the caller's). Also ``with MTCNN(...) as detector:``. Detecting afterwards
        raises ParameterError."""
        self._closed = True
        if self.resize_pool is not None:
            self.resize_pool.shutdown()
            self.resize_pool = None
        if self._backend_name is not None:
            self.backend.close()

    def __enter__(self) -> MTCNN:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MTCNN(backend={self.backend.name!r}, weights={self.weights.name!r}, {self.params})"

    def recipe(self, threads: int | None = None) -> dict:
        """Keyword arguments that build this detector again with ``threads``, e.g. in a worker process:
        ``MTCNN(**detector.recipe(threads=1))``. Picklable: the backend name (what ``"auto"`` chose), the loaded
        :class:`WeightSet` and the cascade parameters. ParameterError when the backend was given as an
        object (it cannot be rebuilt)."""
        if self._backend_name is None:
            raise ParameterError(f"this detector's backend ({self.backend.name}) was given as an object and cannot "
                                 "be rebuilt in worker processes; pass the backend by name, e.g. "
                                 "MTCNN(backend='openvino')")
        return {"backend": self._backend_name, "weights": self.weights, "threads": threads, **asdict(self.params)}

    @property
    def preferred_batch(self) -> int:
        """How many frames :meth:`detect_batch` takes at once by default: 4, or the device's choice when the
        backend runs the whole cascade on a device (``torch-cascade``: 64 on CUDA)."""
        nets = self.backend.device_nets
        return HOST_BATCH if nets is None else nets.preferred_batch

    def _cascade(self, images: list[np.ndarray], trace: bool = False, timer: StageTimer = NO_TIMER) -> list[Detections]:
        """The cascade on BGR uint8 images: on the backend's device when it has
        :class:`~mtcnn_lab.backends.base.DeviceNets` (any sizes at once), else on the host (one size)."""
        nets = self.backend.device_nets
        if nets is None:
            return run_cascade_batch(images, self.backend, self.params, trace, timer, self.resize_pool)
        from mtcnn_lab.cascade.device.stages import run_device_cascade  # imports torch: only for such backends

        return run_device_cascade(images, nets, self.params, trace, timer)

    def detect(self, image: np.ndarray, trace: bool = False, timer: StageTimer = NO_TIMER) -> Detections:
        """Faces in one BGR uint8 (H, W, 3) image (gray H x W and BGRA are converted).

        Images smaller than about 42 px on their short side give no faces (OpenFace throws).
        ``trace=True`` records the per-stage candidates in ``Detections.trace``; a
        :class:`~mtcnn_lab.cascade.timer.StageTimer` adds up the seconds spent in each stage.

        >>> detector = MTCNN(backend="numpy", weights="zhang2016")
        >>> faces = detector.detect(cv2.imread("face.jpg"))   # doctest: +SKIP
        >>> faces.boxes   # float32 (N, 4) x, y, width, height in pixels   # doctest: +SKIP
        """
        self._check_open()
        return self._cascade([as_bgr_uint8(image)], trace, timer)[0]

    def _check_open(self) -> None:
        if self._closed:
            raise ParameterError("this MTCNN detector was closed; build a new one to detect again")

    def detect_batch(self, images: Iterable[np.ndarray], batch: int | None = None) -> list[Detections]:
        """:meth:`detect` for each image, in order, with the same results bit for bit.

        Up to ``batch`` images at a time (None: :attr:`preferred_batch`) go through the cascade together
        (:func:`~mtcnn_lab.cascade.stages.run_cascade_batch`; on a device, all sizes at once, else consecutive
        images of one size): each net takes them in one call as far as the backend measured, on this machine,
        that batching leaves every input's outputs unchanged, and one call per image beyond that.

        >>> detector = MTCNN(backend="torch-cascade-cuda")   # doctest: +SKIP
        >>> per_frame = detector.detect_batch(frames)         # 64 frames per pass on the GPU   # doctest: +SKIP
        """
        batch = self.preferred_batch if batch is None else positive_int(batch, "batch")
        self._check_open()
        if isinstance(images, np.ndarray) and images.ndim != 4:
            raise InputError(f"detect_batch takes a sequence of images or an (N, H, W, 3) array, not an array of "
                             f"shape {images.shape}; for one image use detect")
        if not isinstance(images, Iterable) or isinstance(images, str | bytes):
            raise InputError(f"detect_batch takes a sequence of images (BGR uint8 arrays), not "
                             f"{type(images).__name__}")
        on_device = self.backend.device_nets is not None
        results: list[Detections] = []
        group: list[np.ndarray] = []
        for image in map(as_bgr_uint8, images):
            if group and (len(group) == batch or (image.shape != group[0].shape and not on_device)):
                results += self._cascade(group)
                group = []
            group.append(image)
        return results + (self._cascade(group) if group else [])
