"""Timing harness shared by ``benchmarks/`` scripts and the benchmark notebook.

Times are wall-clock milliseconds per call, reported as the median (and p95) over repeats after
warm-up. Thread counts are pinned for BLAS (threadpoolctl) and OpenCV while a measurement runs.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import cv2
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits


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


def machine_info() -> dict:
    """What the numbers were measured on: CPU, cores, Python, numpy's BLAS, OpenCV."""
    blas = [{"api": i.get("internal_api"), "version": i.get("version"), "arch": i.get("architecture")}
            for i in threadpool_info() if i.get("user_api") == "blas"]
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "numpy": np.__version__, "opencv": cv2.__version__,
            "blas": blas, "cpu_count": __import__("os").cpu_count()}
