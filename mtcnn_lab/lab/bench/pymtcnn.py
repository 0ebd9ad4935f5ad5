"""pymtcnn 1.2.0 as a runner: its ONNX CPU backend built with a pinned thread count, and its stages timed
by wrapping its methods (see ``benchmarks/README.md``)."""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from mtcnn_lab.lab.bench.runners import BoxesResult, Runner, RunnerUnavailable, onnx_thread_info


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
    thread_info = onnx_thread_info(sessions)
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

    info = {"package": "pymtcnn", "version": importlib.metadata.version("pymtcnn"), "model_dir": str(model_dir),
            "provider": detector.get_active_provider(), "onnxruntime_sessions": thread_info,
            "threads_pinned_by": "SessionOptions proxy at construction (intra_op_num_threads, inter_op 1)",
            "rnet_onet_batch": 1, "stage_note": "pyramid = _pnet_stage's own time (resize, normalise, score map)"}
    return Runner(name="pymtcnn-onnx-cpu", detect=detector.detect, threads=threads, result_fn=result_fn,
                  stage_fn=stage_fn, kind="pymtcnn", info=info)
