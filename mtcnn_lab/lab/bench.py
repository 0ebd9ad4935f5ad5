"""Timing harness shared by ``benchmarks/`` scripts and the benchmark notebook.

Times are wall-clock milliseconds per call, reported as the median (and p95) over repeats after
warm-up. Thread counts are pinned for BLAS (threadpoolctl) and OpenCV while a measurement runs.

:func:`benchmark_detector` times one detector. The runner harness (:class:`Runner`,
:func:`bench_runners`, :func:`bench_report`) times several side by side, interleaved frame by frame in
one process: mtcnn-lab backends (:func:`mtcnn_runner`) and pymtcnn 1.2.0's ONNX CPU backend
(:func:`pymtcnn_runner`), with per-stage times, peak memory, thread settings and parity with C++;
``benchmarks/bench_backends.py`` and ``mtcnn-lab bench`` drive it (see ``benchmarks/README.md``).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from mtcnn_lab.errors import BackendUnavailable


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


def benchmark_detector(detector, images: dict[str, np.ndarray], repeats: int = 5, warmup: int = 1,
                       threads: int | None = None) -> dict:
    """Time ``detector.detect`` on every image: per-image median/p95, their sums, FPS and stage shares.

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
        "p95_ms": float(np.percentile(medians, 95)), "fps": float(len(medians) / medians.sum() * 1e3),
        "stage_share": {k: v / total_stage for k, v in sorted(stages.seconds.items())},
        "stage_ms": {k: v * 1e3 for k, v in sorted(stages.seconds.items())},
        "per_image": per_image,
    }


# --------------------------------------------------------------------------------------------
# runners: mtcnn-lab backends and pymtcnn timed alike, interleaved, in one process

BENCH_SCHEMA = "mtcnn-lab/bench-backends/1"
"""``schema`` value of the JSON :func:`bench_report` writes (see ``benchmarks/README.md``)."""

GPU_MARKS = ("gpu", "cuda", "mps", "coreml")
"""Backend names containing one of these do not run on the CPU."""

PARITY_PX = 0.01
"""Box tolerance (px) against C++ OpenFace used for ``parity.within_tolerance``."""


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
    """A detector's output as :class:`BoxesResult`: ``Detections``/objects with ``boxes`` and
    ``confidences``, or a ``(boxes, landmarks)`` tuple as pymtcnn returns (no confidences)."""
    if isinstance(raw, BoxesResult):
        return raw
    if hasattr(raw, "boxes") and hasattr(raw, "confidences"):
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
    """

    name: str
    detect: Callable[[np.ndarray], object]
    threads: int | None = None
    to_result: Callable[[object], BoxesResult] = as_boxes_result
    result_fn: Callable[[np.ndarray], BoxesResult] | None = None
    stage_fn: Callable[[np.ndarray, object], object] | None = None
    kind: str = "mtcnn-lab"
    info: dict = field(default_factory=dict)

    def result(self, image: np.ndarray) -> BoxesResult:
        """One untimed detection as :class:`BoxesResult`."""
        return self.result_fn(image) if self.result_fn is not None else self.to_result(self.detect(image))


class RunnerUnavailable(BackendUnavailable):
    """A runner cannot be built here (a :class:`~mtcnn_lab.errors.BackendUnavailable`); one-line message."""


def _onnx_thread_info(sessions: dict) -> dict:
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
    if isinstance(getattr(detector.backend, "sessions", None), dict):
        info["onnxruntime_sessions"] = _onnx_thread_info(detector.backend.sessions)

    def stage_fn(image: np.ndarray, timer) -> object:
        return detector.detect(image, timer=timer)

    return Runner(name=detector.backend.name, detect=detector.detect, threads=threads, stage_fn=stage_fn,
                  kind="mtcnn-lab", info=info)


class _PinnedOrt:
    """onnxruntime, except that ``SessionOptions()`` comes with ``threads`` intra-op threads (inter-op 1)."""

    def __init__(self, ort, threads: int):
        self._ort, self._threads = ort, threads

    def __getattr__(self, name: str):
        return getattr(self._ort, name)

    def SessionOptions(self):  # noqa: N802 - onnxruntime's name
        options = self._ort.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return options


def pymtcnn_cache_dir() -> Path | None:
    """Where the bench environment keeps pymtcnn's model cache, if it says so.

    ``<venv>/openface_models_dir`` (written by ``benchmarks/setup_bench_env.sh``) for the running
    interpreter, else ``$OPENFACE_MODELS_DIR``, else ``None`` (pymtcnn's default folder).
    """
    import os
    import sys

    note = Path(sys.prefix) / "openface_models_dir"
    if note.is_file() and note.read_text().strip():
        return Path(note.read_text().strip())
    env = os.environ.get("OPENFACE_MODELS_DIR", "").strip()
    return Path(env).expanduser() if env else None


# pymtcnn method -> stage; timed exclusively (a method's time excludes the wrapped methods it calls)
_PYMTCNN_STAGES = {
    "_pnet_stage": "pyramid",  # what is left of it: resize, normalise, score map, its loops
    "_run_pnet": "pnet",
    "_generate_bboxes": "proposals_nms", "_nms": "proposals_nms", "_apply_bbox_regression": "proposals_nms",
    "_square_bbox": "proposals_nms",
    "_rnet_stage": "proposals_nms", "_onet_stage": "proposals_nms",  # their own filtering and regression
    "_extract_crop": "crops",
    "_run_rnet_batch": "rnet",
    "_run_onet_batch": "onet",
}


@contextmanager
def _instrumented(obj, wrappers: dict[str, Callable[[Callable], Callable]]) -> Iterator[None]:
    """Shadow methods of ``obj`` with instance attributes ``wrap(original)`` for the block."""
    for name, wrap in wrappers.items():
        setattr(obj, name, wrap(getattr(obj, name)))
    try:
        yield
    finally:
        for name in wrappers:
            obj.__dict__.pop(name, None)


def _stage_wrappers(timer, stages: dict[str, str], clock: Callable[[], float] = time.perf_counter) -> dict:
    """Wrappers that add each call's exclusive time (minus wrapped callees) to ``timer.seconds[stage]``."""
    children: list[float] = []

    def wrap_for(stage: str):
        def wrap(method):
            def timed(*args, **kwargs):
                children.append(0.0)
                start = clock()
                try:
                    return method(*args, **kwargs)
                finally:
                    elapsed = clock() - start
                    inner = children.pop()
                    timer.seconds[stage] += elapsed - inner
                    if children:
                        children[-1] += elapsed
            return timed
        return wrap

    return {name: wrap_for(stage) for name, stage in stages.items()}


def pymtcnn_runner(threads: int, cache_dir: str | Path | None = None) -> Runner:
    """A :class:`Runner` for pymtcnn's ONNX backend on the CPU with exactly ``threads`` intra-op threads.

    pymtcnn 1.2.0's ``ONNXMTCNN`` takes no thread setting: it builds ``ort.SessionOptions()`` itself
    (onnxruntime's default: one intra-op thread per physical core). While it is constructed, its
    module's ``ort`` is replaced by a proxy whose ``SessionOptions()`` sets ``intra_op_num_threads =
    threads`` and ``inter_op_num_threads = 1`` (as mtcnn-lab's own ONNX backend does), nothing else;
    the sessions' options are read back to check. OpenCV/BLAS threads are pinned by the harness.

    Boxes: pymtcnn returns ``(bboxes, landmarks)``, bboxes ``x, y, w, h`` after OpenFace's final
    correction (the same convention as ``Detections.boxes``), no confidences: the untimed parity call
    reads them from its final NMS ('Min'). The models come from ``cache_dir`` (default
    :func:`pymtcnn_cache_dir`) and must have been converted already (``benchmarks/setup_bench_env.sh``);
    nothing is downloaded or written. Raises :class:`RunnerUnavailable` with the reason.
    """
    try:
        import pymtcnn
        from pymtcnn import models as pymodels
        from pymtcnn.backends import onnx_backend
    except ImportError as err:
        raise RunnerUnavailable(f"pymtcnn is not importable here ({err}); set up the bench environment with "
                                "benchmarks/setup_bench_env.sh and run with .venv-bench/bin/python") from None
    if onnx_backend.ort is None:
        raise RunnerUnavailable("pymtcnn's ONNX backend needs onnxruntime (pip install 'pymtcnn[onnx]==1.2.0')")
    cache = Path(cache_dir) if cache_dir is not None else pymtcnn_cache_dir()
    if not pymodels.models_ready(cache):
        where = pymodels.models_dir(cache)
        raise RunnerUnavailable(f"pymtcnn's converted models are not in {where}; run benchmarks/setup_bench_env.sh "
                                "(it converts a writable copy of the OpenFace model cache)")
    model_dir = pymodels.models_dir(cache)
    real_ort = onnx_backend.ort
    onnx_backend.ort = _PinnedOrt(real_ort, threads)
    try:
        detector = onnx_backend.ONNXMTCNN(model_dir=str(model_dir), provider="cpu")
    finally:
        onnx_backend.ort = real_ort
    sessions = {"pnet": detector.pnet, "rnet": detector.rnet, "onet": detector.onet}
    thread_info = _onnx_thread_info(sessions)
    wrong = {net: v["intra_op_num_threads"] for net, v in thread_info.items() if v["intra_op_num_threads"] != threads}
    if wrong:
        raise RunnerUnavailable(f"could not pin pymtcnn's onnxruntime threads to {threads}: {wrong}")

    def result_fn(image: np.ndarray) -> BoxesResult:
        scores: list[np.ndarray] = []

        def capture(nms):
            def wrapped(boxes, threshold, method):
                pick = nms(boxes, threshold, method)
                if method == "Min":  # the final NMS of the ONet stage; boxes[:, 4] holds the scores
                    scores.append(np.asarray(boxes)[np.asarray(pick, np.int64), 4])
                return pick
            return wrapped

        with _instrumented(detector, {"_nms": capture}):
            bboxes, _ = detector.detect(image)
        return BoxesResult.of(bboxes, scores[-1] if scores and len(scores[-1]) == len(bboxes) else None)

    def stage_fn(image: np.ndarray, timer) -> object:
        with _instrumented(detector, _stage_wrappers(timer, _PYMTCNN_STAGES)):
            return detector.detect(image)

    info = {"package": "pymtcnn", "version": getattr(pymtcnn, "__version__", None), "model_dir": str(model_dir),
            "provider": detector.get_active_provider(), "onnxruntime_sessions": thread_info,
            "threads_pinned_by": "SessionOptions proxy at construction (intra_op_num_threads, inter_op 1)",
            "rnet_onet_batch": 1, "stage_note": "pyramid = _pnet_stage's own time (resize, normalise, score map)"}
    return Runner(name="pymtcnn-onnx-cpu", detect=detector.detect, threads=threads, result_fn=result_fn,
                  stage_fn=stage_fn, kind="pymtcnn", info=info)


# --------------------------------------------------------------------------------------------
# memory, threads


def _proc_status(key: str) -> float | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in MiB, or None off Linux."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def _reset_rss_peak() -> bool:
    """Reset the kernel's resident-set high-water mark (Linux ``clear_refs`` 5); False when not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _ru_maxrss_mb() -> float | None:
    try:
        import resource
        import sys
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def os_thread_count() -> int | None:
    """Threads of this process as the OS counts them (runtime pools included), or None off Linux."""
    import os

    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return None


def thread_settings() -> dict:
    """The thread counts in force: OpenCV, each BLAS/OpenMP pool (threadpoolctl), torch if loaded, OS threads."""
    import sys

    pools = [{"api": i.get("internal_api"), "user_api": i.get("user_api"), "num_threads": i.get("num_threads")}
             for i in threadpool_info()]
    out = {"opencv": cv2.getNumThreads(), "pools": pools, "os_threads": os_thread_count()}
    if "torch" in sys.modules:
        out["torch"] = sys.modules["torch"].get_num_threads()
    return out


@contextmanager
def pinned_all_threads(threads: int | None) -> Iterator[None]:
    """:func:`pinned_threads` plus torch's intra-op pool when torch is loaded; nothing when ``threads`` is None."""
    import sys

    if threads is None:
        yield
        return
    torch = sys.modules.get("torch")
    previous = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(threads)
    try:
        with pinned_threads(threads):
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(previous)


# --------------------------------------------------------------------------------------------
# the harness


def parity_summary(results: dict[str, BoxesResult], cpp_faces: dict[str, list[dict] | None],
                   tolerance_px: float = PARITY_PX) -> dict | None:
    """A runner's boxes against C++ OpenFace on the frames that have a reference; None when none has.

    Faces are matched greedily by IoU (:func:`mtcnn_lab.lab.agreement.agreement`); ``max_px_error`` is the
    largest |Δ| of x, y, w or h over matched faces; ``within_tolerance``: every frame has C++'s face
    count, every face matched, and ``max_px_error <= tolerance_px``.
    """
    from mtcnn_lab.lab.agreement import agreement, match_faces, summarise_agreement

    rows, conf, frames_off = [], [], []
    for name, ours in results.items():
        faces = cpp_faces.get(name)
        if faces is None:
            continue
        cpp = BoxesResult.of([f["bbox"] for f in faces], [f.get("confidence", np.nan) for f in faces])
        row = agreement(name, ours, cpp)
        rows.append(row)
        for i, j, _ in match_faces(ours.boxes, cpp.boxes):
            conf.append(abs(ours.confidences[i] - cpp.confidences[j]))
        if not row.same_count or row.matched != row.faces_b or (row.px_errors and max(row.px_errors) > tolerance_px):
            frames_off.append(name)
    if not rows:
        return None
    summary = summarise_agreement(rows)
    summary["faces_runner"], summary["faces_cpp"] = summary.pop("faces_a"), summary.pop("faces_b")
    known = [c for c in conf if np.isfinite(c)]
    summary["max_confidence_error"] = float(max(known)) if known else None
    summary["tolerance_px"] = tolerance_px
    summary["frames_off"] = frames_off
    summary["within_tolerance"] = not frames_off
    summary["per_frame_max_px"] = {r.image: (max(r.px_errors) if r.px_errors else None) for r in rows}
    return summary


def _probe(runner: Runner, images: dict[str, np.ndarray]) -> tuple[dict[str, BoxesResult], dict]:
    """One untimed pass of ``runner.result`` over all images, measuring memory: results and memory dict."""
    import tracemalloc

    rss_before = _proc_status("VmRSS")
    reset = _reset_rss_peak()
    already = tracemalloc.is_tracing()
    if not already:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    results = {name: runner.result(image) for name, image in images.items()}
    peak = tracemalloc.get_traced_memory()[1]
    if not already:
        tracemalloc.stop()
    memory = {"tracemalloc_peak_mb": (peak - base) / 2**20,
              "rss_before_mb": rss_before,
              "rss_peak_mb": _proc_status("VmHWM") if reset else None,
              "process_max_rss_mb": _ru_maxrss_mb(),
              "method": "tracemalloc peak of Python/numpy allocations above the pass's start (untimed pass); "
                        + ("kernel RSS high-water mark reset before the pass (clear_refs)" if reset
                           else "RSS peak per runner unavailable: process_max_rss_mb is the whole process's")}
    if memory["rss_peak_mb"] is not None and rss_before is not None:
        memory["rss_peak_delta_mb"] = memory["rss_peak_mb"] - rss_before
    return results, memory


def _stage_pass(runner: Runner, images: dict[str, np.ndarray]) -> dict | None:
    """Per-stage milliseconds summed over all images from one untimed instrumented pass, and their shares."""
    from mtcnn_lab.cascade.timer import StageTimer

    if runner.stage_fn is None:
        return None
    timer = StageTimer()
    total = 0.0
    for image in images.values():
        start = time.perf_counter()
        runner.stage_fn(image, timer)
        total += time.perf_counter() - start
    staged = sum(timer.seconds.values())
    return {"stage_ms": {k: v * 1e3 for k, v in sorted(timer.seconds.items())},
            "stage_share": {k: v / (staged or 1.0) for k, v in sorted(timer.seconds.items())},
            "total_ms": total * 1e3, "unattributed_ms": (total - staged) * 1e3}


def bench_runners(runners: Sequence[Runner], images: dict[str, np.ndarray], repeats: int = 5, warmup: int = 1,
                  cpp_faces: dict[str, list[dict] | None] | None = None, stages: bool = True, memory: bool = True,
                  clock: Callable[[], float] = time.perf_counter, progress: Callable[[str], None] | None = None,
                  ) -> dict:
    """Time ``runners`` on the same ``images`` (name -> BGR uint8), interleaved, and compare them.

    All runners must share one ``threads`` value (pinned for BLAS/OpenCV/torch during the whole
    measurement). Order: first one untimed pass per runner (parity results and memory: tracemalloc
    peak, RSS high-water mark), then for each image, for each runner ``warmup`` untimed calls, then
    ``repeats`` rounds of one timed call per runner, the runner order rotated every round so machine
    noise falls on all alike; last, one instrumented pass per runner for per-stage times.

    Returns ``{"threads", "repeats", "warmup", "frames", "order", "runners": {name: result},
    "ratios": {...}, "thread_settings"}``; a runner's result has ``sum_of_medians_ms``,
    ``median_ms``/``p95_ms`` (over the per-frame medians), ``fps`` (frames / summed medians),
    ``per_frame`` (median/p95/min/mean ms and face count per image), ``stages``, ``memory``,
    ``parity`` (vs ``cpp_faces``, name -> C++ faces or None) and ``info``. ``ratios`` holds, for every
    runner but the first, ``<other>/<first>``: the other's summed medians over the first's, and the
    median of the per-frame ratios (> 1: the first is faster).
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, not {repeats} and {warmup}")
    if not runners:
        raise ValueError("no runner to benchmark")
    names = [r.name for r in runners]
    if len(set(names)) != len(names):
        raise ValueError(f"runner names must be unique, got {names}")
    threads = {r.threads for r in runners}
    if len(threads) != 1:
        raise ValueError(f"runners benchmarked together must share one thread count, got {sorted(threads, key=str)}")
    (n_threads,) = threads
    from mtcnn_lab.io.images import as_bgr_uint8

    images = {name: np.ascontiguousarray(as_bgr_uint8(image)) for name, image in images.items()}
    say = progress or (lambda text: None)
    cpp_faces = cpp_faces or {}
    results: dict[str, dict] = {r.name: {} for r in runners}
    times: dict[str, dict[str, list[float]]] = {r.name: {name: [] for name in images} for r in runners}
    with pinned_all_threads(n_threads):
        settings = thread_settings()
        for r in runners:
            say(f"{r.name}: untimed pass (parity, memory)")
            if memory:
                outputs, results[r.name]["memory"] = _probe(r, images)
            else:
                outputs = {name: r.result(image) for name, image in images.items()}
            results[r.name]["outputs"] = outputs
        for k, (name, image) in enumerate(images.items()):
            say(f"frame {k + 1}/{len(images)} {name}")
            for r in runners:
                for _ in range(warmup):
                    r.detect(image)
            for rep in range(repeats):
                shift = rep % len(runners)
                for r in list(runners[shift:]) + list(runners[:shift]):
                    start = clock()
                    r.detect(image)
                    times[r.name][name].append((clock() - start) * 1e3)
        settings_after = thread_settings()
        if stages:
            for r in runners:
                say(f"{r.name}: per-stage pass")
                results[r.name]["stages"] = _stage_pass(r, images)
    out_runners = {}
    for r in runners:
        per_frame = {name: {**summarise(t), "faces": len(results[r.name]["outputs"][name])}
                     for name, t in times[r.name].items()}
        medians = np.array([v["median_ms"] for v in per_frame.values()], np.float64)
        total = float(medians.sum())
        out_runners[r.name] = {
            "kind": r.kind, "threads": r.threads, "frames": len(images),
            "sum_of_medians_ms": total, "median_ms": float(np.median(medians)),
            "p95_ms": float(np.percentile(medians, 95)),
            "sum_of_p95_ms": float(sum(v["p95_ms"] for v in per_frame.values())),
            "fps": float(len(medians) / total * 1e3) if total > 0 else None,
            "stages": results[r.name].get("stages"), "memory": results[r.name].get("memory"),
            "parity": parity_summary(results[r.name]["outputs"], cpp_faces),
            "info": r.info, "per_frame": per_frame,
        }
    base = runners[0].name
    ratios = {}
    for r in runners[1:]:
        a, b = out_runners[r.name], out_runners[base]
        per = [a["per_frame"][n]["median_ms"] / b["per_frame"][n]["median_ms"] for n in images
               if b["per_frame"][n]["median_ms"] > 0]
        ratios[f"{r.name}/{base}"] = {
            "sum_of_medians": a["sum_of_medians_ms"] / b["sum_of_medians_ms"] if b["sum_of_medians_ms"] else None,
            "median_of_frame_ratios": float(np.median(per)) if per else None,
            "min_of_frame_ratios": float(np.min(per)) if per else None}
    return {"threads": n_threads, "repeats": repeats, "warmup": warmup, "frames": len(images),
            "order": "per frame: warm-up of each runner, then repeats rounds of one call per runner, order "
                     "rotated every round",
            "thread_settings": {"during": settings, "after": settings_after},
            "runners": out_runners, "ratios": ratios}


# --------------------------------------------------------------------------------------------
# frames and the whole report (benchmarks/bench_backends.py, ``mtcnn-lab bench``)


def dev_frames(limit: int | None = None, manifest: str | Path | None = None
               ) -> tuple[dict[str, np.ndarray], dict[str, list[dict] | None], dict[str, dict]]:
    """The evaluation set's images (default: the 50 dev inputs of ``data/manifest.json``).

    Returns ``(images, cpp_faces, cpp_entries)`` keyed by item id; ``limit`` keeps that many items
    spread over the groups (:meth:`~mtcnn_lab.lab.dataset.Dataset.subset`).
    """
    from mtcnn_lab.lab.dataset import load_manifest

    dataset = load_manifest(manifest, quick=limit)
    images, faces, entries = {}, {}, {}
    for item, image in dataset.iter_images():
        images[item.id] = image
        faces[item.id] = item.cpp_faces
        entries[item.id] = item.cpp or {}
    return images, faces, entries


def path_frames(paths: Sequence[str], limit: int | None = None) -> tuple[dict[str, np.ndarray], dict, dict]:
    """Images and video frames (default positions) from ``paths``; C++ faces where the default manifest has them."""
    import os

    from mtcnn_lab.errors import InputError
    from mtcnn_lab.io.inputs import iter_inputs

    known: dict[tuple[str, int | None], object] = {}
    try:
        from mtcnn_lab.lab.dataset import load_manifest

        for item in load_manifest():
            for source in (item.source, item.frame_png):
                if source is not None:
                    known[(os.path.realpath(source), None if source == item.frame_png else item.frame)] = item
    except Exception:  # noqa: BLE001 - no manifest, no reference: parity is skipped
        pass
    images, faces, entries = {}, {}, {}
    for item in iter_inputs(paths):
        if item.error is not None:
            raise InputError(item.error)
        name = item.path if item.frame is None else f"{item.path}#{item.frame}"
        images[name] = item.image
        ref = known.get((os.path.realpath(item.path), item.frame))
        faces[name] = getattr(ref, "cpp_faces", None)
        entries[name] = getattr(ref, "cpp", None) or {}
        if limit is not None and len(images) >= limit:
            break
    return images, faces, entries


def versions() -> dict:
    """Versions of the runtimes that matter for the numbers (absent ones omitted)."""
    from importlib import metadata

    out = {}
    for dist in ("mtcnn-lab", "onnxruntime", "torch", "pymtcnn", "opencv-python-headless", "opencv-python", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def _load_average() -> list[float] | None:
    import os

    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def cpp_timing(entries: dict[str, dict]) -> dict | None:
    """C++ OpenFace's own per-frame medians (1 and 2 threads) summed over the frames that have them.

    They were measured when the reference was made, on another machine: context, not a same-run ratio.
    """
    out = {}
    for key, label in (("median_1thread", "1"), ("median_2threads", "2")):
        values = [e["timing_ms"][key] for e in entries.values() if e and key in e.get("timing_ms", {})]
        if values and len(values) == len(entries):
            out[label] = {"sum_of_medians_ms": float(sum(values)), "frames": len(values)}
    return out or None


def bench_report(images: dict[str, np.ndarray], cpp_faces: dict[str, list[dict] | None] | None = None,
                 backends: Sequence[str] | None = None, threads: Sequence[int] = (1, 2), repeats: int = 5,
                 warmup: int = 1, pymtcnn: bool = True, models_root: str | Path | None = None,
                 pymtcnn_cache: str | Path | None = None, cpp_entries: dict[str, dict] | None = None,
                 say: Callable[[str], None] = print, progress: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> dict:
    """mtcnn-lab's ``backends`` (default: :func:`default_cpu_backend`) and pymtcnn's ONNX CPU backend,
    timed on the same ``images`` in this process, once per thread count (see ``benchmarks/README.md``).

    The first backend is the baseline of the ratios. When pymtcnn cannot be built, ``say`` gets one
    line and only mtcnn-lab's backends are timed. ``models_root``: the OpenFace model cache for
    mtcnn-lab (default: the bench cache, else mtcnn-lab's own default).
    """
    from mtcnn_lab.version import __version__

    backends = list(backends or [default_cpu_backend()])
    if not images:
        raise ValueError("no frames to benchmark")
    if any(t < 1 for t in threads):
        raise ValueError(f"thread counts must be >= 1, got {list(threads)}")
    if models_root is None:  # the bench cache, $OPENFACE_MODELS_DIR, else ../shared beside the checkout
        models_root = pymtcnn_cache or pymtcnn_cache_dir()
        shared = Path("..", "shared", "OpenFaceModels").resolve()  # beside the repository, the working directory
        if models_root is None and shared.is_dir():
            models_root = shared
    pym: dict = {"requested": pymtcnn, "available": False}
    report = {
        "schema": BENCH_SCHEMA, "version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {**machine_info(), "versions": versions(), "load_average_start": _load_average()},
        "settings": {"backends": backends, "threads": list(threads), "repeats": repeats, "warmup": warmup,
                     "frames": len(images), "frame_ids": list(images), "baseline": None,
                     "parity_tolerance_px": PARITY_PX, "models_root": str(models_root) if models_root else None},
        "pymtcnn": pym, "runs": {}, "ratios": {}, "parity": {},
        "cpp_reference_timing": cpp_timing(cpp_entries) if cpp_entries else None,
    }
    for t in threads:
        runners = []
        for b in backends:
            runner = mtcnn_runner(b, t, models_root=models_root)
            if any(r.name == runner.name for r in runners):
                say(f"backend {b!r} is {runner.name}, already in the list; timed once")
                continue
            runners.append(runner)
        if pymtcnn:
            try:
                runners.append(pymtcnn_runner(t, pymtcnn_cache))
                pym.update(available=True, version=runners[-1].info.get("version"),
                           model_dir=runners[-1].info.get("model_dir"),
                           threads_pinned_by=runners[-1].info.get("threads_pinned_by"))
            except RunnerUnavailable as err:
                if "reason" not in pym:
                    say(f"pymtcnn not benchmarked: {err}")
                pym["reason"] = str(err)
        report["settings"]["baseline"] = runners[0].name
        say(f"{t} thread(s): {', '.join(r.name for r in runners)} on {len(images)} frame(s), "
            f"{repeats} repeat(s)")
        run = bench_runners(runners, images, repeats=repeats, warmup=warmup, cpp_faces=cpp_faces,
                            progress=progress, clock=clock)
        report["runs"][str(t)] = run
        report["ratios"][str(t)] = run["ratios"]
        report["parity"][str(t)] = {name: (r["parity"] or {}).get("max_px_error") for name, r in run["runners"].items()}
        for name, r in run["runners"].items():
            parity = r["parity"]
            worst = parity and parity["max_px_error"]
            extra = "" if parity is None else (
                f"; vs C++: {parity['images_same_count']}/{parity['images']} same count, "
                f"max |Δ| {'-' if worst is None else f'{worst:.2g}'} px")
            say(f"  {name:24s} {r['sum_of_medians_ms']:9.1f} ms summed medians, {r['fps'] or 0:6.1f} FPS{extra}")
        for key, ratio in run["ratios"].items():
            say(f"  ratio {key}: {_fmt(ratio['sum_of_medians'])} (summed medians), "
                f"{_fmt(ratio['median_of_frame_ratios'])} (median per frame)")
        del runners
    report["machine"]["load_average_end"] = _load_average()
    return report


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def write_report(report: dict, out: str | Path) -> Path:
    """Write ``report`` as indented JSON to ``out`` (folders created); returns the path."""
    import json

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=_json_default) + "\n")
    return out


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
