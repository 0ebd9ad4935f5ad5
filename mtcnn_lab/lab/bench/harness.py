"""The benchmark harness: runners timed together on the same frames, interleaved, with parity against C++."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from mtcnn_lab.lab.bench.runners import BoxesResult, Runner
from mtcnn_lab.lab.bench.system import pinned_all_threads, proc_status, reset_rss_peak, ru_maxrss_mb, thread_settings
from mtcnn_lab.lab.bench.timing import summarise

PARITY_PX = 0.01
"""Box tolerance (px) against C++ OpenFace used for ``parity.within_tolerance``."""


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

    rss_before = proc_status("VmRSS")
    reset = reset_rss_peak()
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
              "rss_peak_mb": proc_status("VmHWM") if reset else None,
              "process_max_rss_mb": ru_maxrss_mb(),
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


def _check_runners(runners: Sequence[Runner], repeats: int, warmup: int) -> int:
    """The one thread count of ``runners``; ValueError for what cannot be benchmarked together."""
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
    return next(iter(threads))


def _timed_rounds(runners: Sequence[Runner], images: dict[str, np.ndarray], repeats: int, warmup: int,
                  clock: Callable[[], float], say: Callable[[str], None]) -> dict[str, dict[str, list[float]]]:
    """Milliseconds per runner and image: per image, ``warmup`` untimed calls of each runner, then
    ``repeats`` rounds of one timed call per runner, the order rotated every round."""
    times: dict[str, dict[str, list[float]]] = {r.name: {name: [] for name in images} for r in runners}
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
    return times


def _runner_result(runner: Runner, times: dict[str, list[float]], passes: dict,
                   cpp_faces: dict[str, list[dict] | None]) -> dict:
    """One runner's entry of the report: per-frame summaries, totals, stages, memory, parity, info."""
    per_frame = {name: {**summarise(t), "faces": len(passes["outputs"][name])} for name, t in times.items()}
    medians = np.array([v["median_ms"] for v in per_frame.values()], np.float64)
    total = float(medians.sum())
    return {"kind": runner.kind, "threads": runner.threads, "frames": len(times),
            "sum_of_medians_ms": total, "median_ms": float(np.median(medians)),
            "p95_ms": float(np.percentile(medians, 95)),
            "sum_of_p95_ms": float(sum(v["p95_ms"] for v in per_frame.values())),
            "fps": float(len(medians) / total * 1e3) if total > 0 else None,
            "stages": passes.get("stages"), "memory": passes.get("memory"),
            "parity": parity_summary(passes["outputs"], cpp_faces), "info": runner.info, "per_frame": per_frame}


def _ratios(results: dict[str, dict], names: list[str], images: list[str]) -> dict[str, dict]:
    """For every runner but the first, ``<other>/<first>``: summed medians and per-frame median ratios."""
    base = results[names[0]]
    ratios = {}
    for name in names[1:]:
        a = results[name]
        per = [a["per_frame"][n]["median_ms"] / base["per_frame"][n]["median_ms"] for n in images
               if base["per_frame"][n]["median_ms"] > 0]
        ratios[f"{name}/{names[0]}"] = {
            "sum_of_medians": a["sum_of_medians_ms"] / base["sum_of_medians_ms"] if base["sum_of_medians_ms"] else None,
            "median_of_frame_ratios": float(np.median(per)) if per else None,
            "min_of_frame_ratios": float(np.min(per)) if per else None}
    return ratios


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
    n_threads = _check_runners(runners, repeats, warmup)
    from mtcnn_lab.io.images import as_bgr_uint8

    images = {name: np.ascontiguousarray(as_bgr_uint8(image)) for name, image in images.items()}
    say = progress or (lambda text: None)
    results: dict[str, dict] = {r.name: {} for r in runners}
    with pinned_all_threads(n_threads):
        settings = thread_settings()
        # 1. one untimed pass per runner: its boxes (for parity) and its memory
        for r in runners:
            say(f"{r.name}: untimed pass (parity, memory)")
            if memory:
                results[r.name]["outputs"], results[r.name]["memory"] = _probe(r, images)
            else:
                results[r.name]["outputs"] = {name: r.result(image) for name, image in images.items()}
        # 2. the timed calls, interleaved
        times = _timed_rounds(runners, images, repeats, warmup, clock, say)
        settings_after = thread_settings()
        # 3. one instrumented pass per runner: per-stage times
        if stages:
            for r in runners:
                say(f"{r.name}: per-stage pass")
                results[r.name]["stages"] = _stage_pass(r, images)
    # 4. per runner: summaries, parity; ratios against the first
    out_runners = {r.name: _runner_result(r, times[r.name], results[r.name], cpp_faces or {}) for r in runners}
    return {"threads": n_threads, "repeats": repeats, "warmup": warmup, "frames": len(images),
            "order": "per frame: warm-up of each runner, then repeats rounds of one call per runner, order "
                     "rotated every round",
            "thread_settings": {"during": settings, "after": settings_after},
            "runners": out_runners, "ratios": _ratios(out_runners, [r.name for r in runners], list(images))}
