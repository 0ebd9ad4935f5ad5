"""The whole cascade on a GPU (``torch-cascade-cuda``): parity with C++ on the dev inputs and throughput on
batches of 1920x1080 and 1080x1920 frames, end to end from uint8 frames in host memory to Detections.

Frames for the throughput are OpenFace's sample stills and video frames resized to the target size (each a
different picture; a batch cycles through them). There is no C++ run on them, so each frame's face count
is compared with the host cascade's on the same frame (a CPU backend that matches C++ on the dev inputs,
``tests/test_parity.py``). On the dev inputs and those frames the device cascade's Detections and traces are
also compared, bit for bit, with the host cascade on the same nets and device, and ``detect_batch`` with
``detect``. Used by ``benchmarks/gpu.py``; on a CPU it runs as a smoke test.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from mtcnn_lab.cascade.device.stages import run_device_cascade
from mtcnn_lab.cascade.stages import run_cascade
from mtcnn_lab.detector import MTCNN
from mtcnn_lab.io.images import read_image
from mtcnn_lab.lab.bench.system import machine_info
from mtcnn_lab.lab.parity import load_cpp_reference, parity_row

__all__ = ["FRAME_SIZES", "BATCH_SIZES", "resized_stills", "dev_parity", "same_bits", "batch_throughput",
           "gpu_report"]

FRAME_SIZES = {"landscape_1920x1080": (1920, 1080), "portrait_1080x1920": (1080, 1920)}
"""Frame sizes of the throughput runs, ``(width, height)`` in pixels."""
BATCH_SIZES = (1, 8, 32, 64, 128)
"""Frames per ``detect_batch`` call in the throughput runs."""


def resized_stills(samples: Path, size: tuple[int, int], limit: int | None = None) -> list[np.ndarray]:
    """OpenFace's sample stills and extracted video frames (``samples/*.jpg``, ``samples/frames/*.png``)
    resized to ``size = (width, height)`` with ``cv2.INTER_LINEAR``: BGR uint8 frames, at most ``limit``."""
    paths = sorted(samples.glob("sample*.jpg")) + sorted((samples / "frames").glob("*.png"))
    return [cv2.resize(read_image(path), size, interpolation=cv2.INTER_LINEAR) for path in paths[:limit]]


def dev_parity(detector: MTCNN, reference: Path, samples: Path, limit: int | None = None) -> dict:
    """The dev inputs of ``reference`` (``cpp_mtcnn_dev.json``) through ``detector.detect_batch``: how many
    have C++'s face count, and the largest box, landmark and confidence differences where they do."""
    entries = load_cpp_reference(reference)[:limit]
    found = detector.detect_batch([read_image(samples / e["image"]) for e in entries])
    rows = [parity_row(d, e) for d, e in zip(found, entries, strict=True)]
    same = [r for r in rows if r.same_count]
    return {"inputs": len(rows), "same_count": len(same), "faces": sum(r.faces for r in rows),
            "max_bbox_px": max((r.bbox for r in same), default=0.0),
            "max_landmarks_px": max((r.landmarks for r in same), default=0.0),
            "max_confidence": max((r.confidence for r in same), default=0.0),
            "different_count": [r.image for r in rows if not r.same_count]}


def same_bits(detector: MTCNN, frames: Sequence[np.ndarray], batch: int) -> dict:
    """Whether the device cascade gives every frame, in batches of ``batch``, the Detections and traces of the
    host cascade run frame by frame on the same nets (and device), and of ``detect``."""
    together = detector.detect_batch(frames, batch=batch)
    host = [run_cascade(frame, detector.backend, detector.params, trace=True) for frame in frames]
    singles = [detector.detect(frame) for frame in frames]
    nets = detector.backend.device_nets
    traced = [d for i in range(0, len(frames), batch)
              for d in run_device_cascade(frames[i:i + batch], nets, detector.params, trace=True)]
    return {"frames": len(frames), "batch": batch,
            "detect_batch_equals_detect": sum(a.identical(b) for a, b in zip(together, singles, strict=True)),
            "device_equals_host_cascade": sum(a.identical(b) and a.trace == b.trace
                                              for a, b in zip(traced, host, strict=True))}


def batch_throughput(detector: MTCNN, frames: Sequence[np.ndarray], batch: int, seconds: float,
                     expected_counts: Sequence[int], clock: Callable[[], float] = time.perf_counter) -> dict:
    """Frames per second of ``detector.detect_batch`` on batches of ``batch`` frames (cycling through
    ``frames``) after one warm-up batch, timed for at least ``seconds`` (whole batches); whether every frame's
    face count equals ``expected_counts`` (one per frame of ``frames``); the device's peak memory (CUDA)."""
    picks = [i % len(frames) for i in range(batch)]
    chunk = [frames[i] for i in picks]
    peak = _reset_peak(detector)
    mismatched = _mismatches(detector.detect_batch(chunk, batch=batch), picks, expected_counts)
    calls, start = 0, clock()
    while True:
        mismatched += _mismatches(detector.detect_batch(chunk, batch=batch), picks, expected_counts)
        calls += 1
        elapsed = clock() - start
        if elapsed >= seconds:
            break
    return {"batch": batch, "calls": calls, "seconds": elapsed, "fps": calls * batch / elapsed,
            "face_count_mismatches": mismatched, **peak()}


def _mismatches(found, picks: list[int], expected: Sequence[int]) -> int:
    return sum(len(d) != expected[i] for d, i in zip(found, picks, strict=True))


def _reset_peak(detector: MTCNN) -> Callable[[], dict]:
    """Reset the CUDA allocator's high-water marks; a function that reads them in MiB (None off CUDA)."""
    nets = detector.backend.device_nets
    if nets is None or nets.device.type != "cuda":
        return lambda: {"peak_allocated_mib": None, "peak_reserved_mib": None}
    import torch

    torch.cuda.synchronize(nets.device)
    torch.cuda.reset_peak_memory_stats(nets.device)
    return lambda: {"peak_allocated_mib": torch.cuda.max_memory_allocated(nets.device) / 2**20,
                    "peak_reserved_mib": torch.cuda.max_memory_reserved(nets.device) / 2**20}


def gpu_report(backend: str, shared: Path, host_backend: str = "torch", batch_sizes: Sequence[int] = BATCH_SIZES,
               seconds: float = 3.0, limit: int | None = None, progress: Callable[[str], None] = print) -> dict:
    """Parity, bit identity and throughput of ``backend`` (``torch-cascade-cuda`` on a GPU; ``torch-cascade`` on
    a CPU as a smoke test) with ``shared`` the folder holding ``reference/`` and ``samples/``; ``host_backend``
    (a CPU backend: ``torch``, which a GPU machine has) gives the expected face counts of the resized frames;
    ``limit`` caps the dev inputs and distinct frames (smoke tests)."""
    with MTCNN(backend=backend, weights="zhang2016") as detector, \
            MTCNN(backend=host_backend, weights="zhang2016") as host:
        report: dict = {"backend": detector.backend.name, "host_backend": host.backend.name, "machine": machine_info(),
                        "device": _device_info(detector), "batch_limits": dict(detector.backend.batch_limits)}
        progress(f"{report['device']}: parity on the dev inputs")
        report["dev_parity"] = dev_parity(detector, shared / "reference" / "cpp_mtcnn_dev.json", shared / "samples",
                                          limit)
        dev_images = [read_image(shared / "samples" / e["image"])
                      for e in load_cpp_reference(shared / "reference" / "cpp_mtcnn_dev.json")[:limit]]
        report["same_bits"] = {"dev_inputs": same_bits(detector, dev_images, 64)}
        report["throughput"] = {}
        for name, size in FRAME_SIZES.items():
            frames = resized_stills(shared / "samples", size, limit)
            counts = [len(host.detect(frame)) for frame in frames]
            report.setdefault("same_bits", {})[name] = same_bits(detector, frames, max(batch_sizes))
            progress(f"{name}: {report['same_bits'][name]}")
            rows = []
            for batch in batch_sizes:
                rows.append(batch_throughput(detector, frames, batch, seconds, counts))
                progress(f"{name} batch {batch}: {rows[-1]['fps']:.1f} FPS")
            report["throughput"][name] = {"distinct_frames": len(frames), "host_face_counts": counts, "rows": rows}
    return report


def _device_info(detector: MTCNN) -> str:
    """The GPU's name and memory, or the CPU."""
    nets = detector.backend.device_nets
    if nets is None or nets.device.type != "cuda":
        return f"{detector.backend.name} on {machine_info()['processor']}"
    import torch

    props = torch.cuda.get_device_properties(nets.device)
    return f"{props.name}, {props.total_memory / 2**30:.0f} GiB, torch {torch.__version__}"
