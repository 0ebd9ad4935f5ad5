"""Benchmark reports: the frames to time (the dev inputs or given paths), C++'s own timings, the JSON report."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from mtcnn_lab.errors import InputError
from mtcnn_lab.lab.bench.harness import PARITY_PX, bench_runners
from mtcnn_lab.lab.bench.pymtcnn import pymtcnn_cache_dir, pymtcnn_runner
from mtcnn_lab.lab.bench.runners import RunnerUnavailable, default_cpu_backend, mtcnn_runner
from mtcnn_lab.lab.bench.system import load_average, machine_info, versions
from mtcnn_lab.weights.models_cache import models_root as default_models_root

log = logging.getLogger(__name__)

BENCH_SCHEMA = "mtcnn-lab/bench-backends/1"
"""``schema`` value of the JSON :func:`bench_report` writes (see ``benchmarks/README.md``)."""


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


def path_frames(paths: Sequence[str], limit: int | None = None,
                decode: str | None = None) -> tuple[dict[str, np.ndarray], dict, dict]:
    """Images and video frames (default positions, decode profile ``decode``) from ``paths``; C++ faces
    where the default manifest has them."""
    from mtcnn_lab.io.inputs import iter_inputs

    known: dict[tuple[str, int | None], object] = {}
    try:
        from mtcnn_lab.lab.dataset import load_manifest

        for item in load_manifest():
            for source in (item.source, item.frame_png):
                if source is not None:
                    known[(os.path.realpath(source), None if source == item.frame_png else item.frame)] = item
    except InputError as err:  # no manifest or no reference here: these frames are timed without parity
        log.info("no C++ faces for the given paths: %s", err)
    images, faces, entries = {}, {}, {}
    for item in iter_inputs(paths, decode=decode):
        if item.error is not None:
            raise InputError(item.error)
        name = item.path if item.frame is None else f"{item.path}#{item.frame}"
        images[name] = item.image
        ref = known.get((os.path.realpath(item.path), item.frame))
        faces[name] = None if ref is None else ref.cpp_faces
        entries[name] = {} if ref is None else (ref.cpp or {})
        if limit is not None and len(images) >= limit:
            break
    return images, faces, entries


def _cpp_timing(entries: dict[str, dict]) -> dict | None:
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
    if models_root is None:  # the bench cache, else mtcnn-lab's own ($OPENFACE_MODELS_DIR or the user's)
        models_root = pymtcnn_cache or pymtcnn_cache_dir()
    pym: dict = {"requested": pymtcnn, "available": False}
    report = {
        "schema": BENCH_SCHEMA, "version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {**machine_info(), "versions": versions(), "load_average_start": load_average()},
        "settings": {"backends": backends, "threads": list(threads), "repeats": repeats, "warmup": warmup,
                     "frames": len(images), "frame_ids": list(images), "baseline": None,
                     "parity_tolerance_px": PARITY_PX, "models_root": str(models_root or default_models_root())},
        "pymtcnn": pym, "runs": {}, "ratios": {}, "parity": {},
        "cpp_reference_timing": _cpp_timing(cpp_entries) if cpp_entries else None,
    }
    for t in threads:
        runners = []
        try:
            for b in backends:
                runner = mtcnn_runner(b, t, models_root=models_root)
                if any(r.name == runner.name for r in runners):
                    say(f"backend {b!r} is {runner.name}, already in the list; timed once")
                    runner.close()
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
            report["parity"][str(t)] = {name: (r["parity"] or {}).get("max_px_error")
                                        for name, r in run["runners"].items()}
            for name, r in run["runners"].items():
                parity = r["parity"]
                worst = parity and parity["max_px_error"]
                extra = "" if parity is None else (
                    f"; vs C++: {parity['images_same_count']}/{parity['images']} same count, "
                    f"max |Δ| {'-' if worst is None else f'{worst:.2g}'} px")
                say(f"  {name:24s} {r['sum_of_medians_ms']:9.1f} ms summed medians, "
                    f"{r['fps'] or 0:6.1f} FPS{extra}")
            for key, ratio in run["ratios"].items():
                say(f"  ratio {key}: {_fmt(ratio['sum_of_medians'])} (summed medians), "
                    f"{_fmt(ratio['median_of_frame_ratios'])} (median per frame)")
        finally:
            for runner in runners:
                runner.close()
    report["machine"]["load_average_end"] = load_average()
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
