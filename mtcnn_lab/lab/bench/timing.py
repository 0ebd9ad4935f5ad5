"""Timing calls: pinned thread counts, repeated timed calls, their summary, a detector over frames."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import cv2
import numpy as np
from threadpoolctl import threadpool_limits

if TYPE_CHECKING:
    from mtcnn_lab.detector import MTCNN


@contextmanager
def pinned_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` BLAS and OpenCV threads, restoring OpenCV's setting after."""
    previous = cv2.getNumThreads()
    cv2.setNumThreads(threads)
    try:
        with threadpool_limits(threads):
            yield
    finally:
        cv2.setNumThreads(previous)


def time_calls(function: Callable[[], object], repeats: int = 5, warmup: int = 1) -> list[float]:
    """Milliseconds of ``repeats`` calls of ``function`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def summarise(times_ms: Sequence[float]) -> dict[str, float]:
    """Median, p95, min and mean of a list of times in ms."""
    t = np.asarray(times_ms, np.float64)
    return {"median_ms": float(np.median(t)), "p95_ms": float(np.percentile(t, 95)),
            "min_ms": float(t.min()), "mean_ms": float(t.mean())}


def benchmark_detector(detector: MTCNN, images: dict[str, np.ndarray], repeats: int = 5, warmup: int = 1,
                       threads: int | None = None) -> dict:
    """Time ``detector.detect`` on every image: per-image median/p95, the median, p5 and p95 over the images of
    those medians, their sum, FPS and stage shares.

    ``images`` maps a name to a BGR uint8 image. ``threads`` pins BLAS/OpenCV threads while timing
    (backends with their own pools, such as onnxruntime, are configured when they are built).
    Stage times come from one extra timed run per image with a :class:`~mtcnn_lab.cascade.timer.StageTimer`.
    """
    from contextlib import nullcontext

    from mtcnn_lab.cascade.timer import StageTimer
    from mtcnn_lab.io.images import as_bgr_uint8

    per_image, stages = {}, StageTimer()
    with pinned_threads(threads) if threads else nullcontext():
        for name, image in images.items():
            image = as_bgr_uint8(image)
            per_image[name] = summarise(time_calls(lambda image=image: detector.detect(image), repeats, warmup))
            detector.detect(image, timer=stages)
    medians = np.array([v["median_ms"] for v in per_image.values()])
    total_stage = sum(stages.seconds.values()) or 1.0
    return {
        "backend": detector.backend.name, "threads": threads, "repeats": repeats, "images": len(images),
        "sum_of_medians_ms": float(medians.sum()), "median_ms": float(np.median(medians)),
        "p5_ms": float(np.percentile(medians, 5)), "p95_ms": float(np.percentile(medians, 95)),
        "fps": float(len(medians) / medians.sum() * 1e3),
        "stage_share": {k: v / total_stage for k, v in sorted(stages.seconds.items())},
        "stage_ms": {k: v * 1e3 for k, v in sorted(stages.seconds.items())},
        "per_image": per_image,
    }
