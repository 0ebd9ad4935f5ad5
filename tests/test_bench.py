"""The benchmark harness (mtcnn_lab.lab.bench runners, benchmarks/bench_backends.py, ``mtcnn-lab bench``).

Timing logic is tested with fake runners on a fake clock (exact, sleep-free); the pymtcnn-missing
path by hiding the module; a real smoke run with pymtcnn only where pymtcnn is importable
(the bench environment, ``benchmarks/setup_bench_env.sh``).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from mtcnn_lab.cascade.timer import StageTimer
from mtcnn_lab.cli import main
from mtcnn_lab.lab.bench import report as report_module
from mtcnn_lab.lab.bench.harness import bench_runners, parity_summary
from mtcnn_lab.lab.bench.pymtcnn import _instrumented, _PinnedOrt, _stage_wrappers, pymtcnn_runner
from mtcnn_lab.lab.bench.report import BENCH_SCHEMA, bench_report, dev_frames, write_report
from mtcnn_lab.lab.bench.runners import (
    GPU_MARKS,
    BoxesResult,
    Runner,
    RunnerUnavailable,
    as_boxes_result,
    default_cpu_backend,
    mtcnn_runner,
)

from .conftest import require_shared

ROOT = Path(__file__).resolve().parents[1]
STAGES = {"pyramid", "pnet", "proposals_nms", "crops", "rnet", "onet"}


class FakeClock:
    """A clock that only moves when a fake detector says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def fake_runner(name: str, clock: FakeClock, ms_per_pixel_row: float, log: list, threads: int = 1,
                boxes: list | None = None) -> Runner:
    """A runner whose call 'takes' ``ms_per_pixel_row * image height`` ms and returns fixed boxes."""

    def detect(image: np.ndarray) -> BoxesResult:
        log.append((name, image.shape[0]))
        clock.now += ms_per_pixel_row * image.shape[0] / 1e3
        return BoxesResult.of(boxes or [], [0.9] * len(boxes or []))

    def stage_fn(image: np.ndarray, timer: StageTimer) -> None:
        timer.seconds["pnet"] += 0.001
        timer.seconds["rnet"] += 0.003

    return Runner(name=name, detect=detect, threads=threads, stage_fn=stage_fn, kind="fake", info={"fake": True},
                  close=lambda: log.append((name, "closed")))


@pytest.fixture
def images() -> dict[str, np.ndarray]:
    return {f"img{h}": np.zeros((h, 8, 3), np.uint8) for h in (10, 20, 30)}


def test_times_ratios_and_summaries_are_exact_on_a_fake_clock(images):
    clock, log = FakeClock(), []
    fast = fake_runner("fast", clock, 1.0, log)
    slow = fake_runner("slow", clock, 3.0, log)
    out = bench_runners([fast, slow], images, repeats=3, warmup=2, clock=clock)
    assert out["threads"] == 1 and out["repeats"] == 3 and out["frames"] == 3
    f, s = out["runners"]["fast"], out["runners"]["slow"]
    assert f["per_frame"]["img20"]["median_ms"] == pytest.approx(20.0)
    assert s["per_frame"]["img30"]["p95_ms"] == pytest.approx(90.0)
    assert f["sum_of_medians_ms"] == pytest.approx(60.0)
    assert s["sum_of_medians_ms"] == pytest.approx(180.0)
    assert f["fps"] == pytest.approx(3 / 60.0 * 1e3)
    assert f["median_ms"] == pytest.approx(20.0)
    ratio = out["ratios"]["slow/fast"]
    assert ratio["sum_of_medians"] == pytest.approx(3.0)
    assert ratio["median_of_frame_ratios"] == pytest.approx(3.0)
    assert f["stages"]["stage_ms"] == pytest.approx({"pnet": 3.0, "rnet": 9.0})
    assert f["stages"]["stage_share"] == pytest.approx({"pnet": 0.25, "rnet": 0.75})
    assert f["memory"]["tracemalloc_peak_mb"] > 0  # the fake detector allocates; tracemalloc must see it
    assert f["parity"] is None and f["info"] == {"fake": True}


def test_runners_are_interleaved_per_frame_with_rotated_order(images):
    clock, log = FakeClock(), []
    runners = [fake_runner(n, clock, 1.0, log) for n in ("a", "b", "c")]
    bench_runners(runners, images, repeats=3, warmup=1, clock=clock, stages=False, memory=False)
    untimed = 3 * len(images)  # the parity pass: each runner once per image, runner by runner
    assert log[:untimed] == [(n, h) for n in "abc" for h in (10, 20, 30)]
    first_frame = [n for n, h in log[untimed:untimed + 12]]
    assert first_frame == ["a", "b", "c",  # warm-up
                           "a", "b", "c", "b", "c", "a", "c", "a", "b"]  # rounds, rotated
    assert {h for _, h in log[untimed:untimed + 12]} == {10}
    assert len(log) == untimed + 12 * len(images)


def test_harness_rejects_bad_settings(images):
    clock, log = FakeClock(), []
    a, b = fake_runner("a", clock, 1, log, threads=1), fake_runner("b", clock, 1, log, threads=2)
    with pytest.raises(ValueError, match="one thread count"):
        bench_runners([a, b], images)
    with pytest.raises(ValueError, match="unique"):
        bench_runners([a, a], images)
    with pytest.raises(ValueError, match="repeats"):
        bench_runners([a], images, repeats=0)
    with pytest.raises(ValueError, match="no runner"):
        bench_runners([], images)


def test_parity_summary_against_cpp_faces():
    cpp = {"x": [{"bbox": [10, 10, 50, 50], "confidence": 0.99}], "y": [], "z": None}
    exact = {"x": BoxesResult.of([[10, 10, 50, 50]], [0.99]), "y": BoxesResult.of([]),
             "z": BoxesResult.of([[1, 1, 5, 5]])}
    summary = parity_summary(exact, cpp)
    assert summary["images"] == 2 and summary["images_same_count"] == 2  # z has no reference
    assert summary["max_px_error"] == 0 and summary["within_tolerance"] and summary["frames_off"] == []
    assert summary["max_confidence_error"] == pytest.approx(0)
    off = {"x": BoxesResult.of([[10.02, 10, 50, 50]]), "y": BoxesResult.of([[0, 0, 30, 30]])}
    summary = parity_summary(off, cpp)
    assert summary["max_px_error"] == pytest.approx(0.02)
    assert summary["images_same_count"] == 1 and not summary["within_tolerance"]
    assert summary["frames_off"] == ["x", "y"] and summary["max_confidence_error"] is None  # NaN confidences
    assert parity_summary(exact, {}) is None


def test_boxes_result_reads_detections_and_pymtcnn_tuples():
    from mtcnn_lab.detections import Detections

    assert len(as_boxes_result(Detections.empty())) == 0
    empty = Detections.empty()
    one = Detections(np.array([[1, 2, 3, 4]], np.float32), np.array([0.75], np.float32), np.zeros((1, 5, 2)),
                     *(np.zeros((1,) + a.shape[1:], a.dtype) for a in (empty.boxes_pre_correction,
                                                                       empty.onet_input_boxes, empty.onet_outputs)))
    r = as_boxes_result(one)
    assert r.boxes.tolist() == [[1, 2, 3, 4]] and r.confidences.tolist() == [0.75]
    r = as_boxes_result((np.array([[1.0, 2, 3, 4]]), np.zeros((1, 5, 2))))
    assert r.boxes.shape == (1, 4) and np.isnan(r.confidences).all()
    with pytest.raises(ValueError, match="1 boxes but 2 confidences"):
        BoxesResult.of([[1, 2, 3, 4]], [0.5, 0.6])
    with pytest.raises(TypeError, match="cannot read boxes from a int"):
        as_boxes_result(42)


def test_stage_wrappers_time_each_method_exclusively():
    clock = FakeClock()

    class Detector:
        def outer(self):
            clock.now += 1.0
            self.inner()
            clock.now += 0.5
            return "done"

        def inner(self):
            clock.now += 2.0

    detector, timer = Detector(), StageTimer()
    wrappers = _stage_wrappers(timer, {"outer": "pyramid", "inner": "pnet"}, clock=clock)
    with _instrumented(detector, wrappers):
        assert detector.outer() == "done"
    assert dict(timer.seconds) == {"pyramid": 1.5, "pnet": 2.0}
    assert "outer" not in vars(detector) and "inner" not in vars(detector)  # restored


def test_pinned_ort_sets_threads_and_delegates_the_rest():
    ort = pytest.importorskip("onnxruntime")
    proxy = _PinnedOrt(ort, 2)
    options = proxy.SessionOptions()
    assert options.intra_op_num_threads == 2 and options.inter_op_num_threads == 1
    assert proxy.GraphOptimizationLevel is ort.GraphOptimizationLevel


def test_missing_pymtcnn_is_one_line_and_our_backends_still_run(monkeypatch, images, tmp_path):
    monkeypatch.setitem(sys.modules, "pymtcnn", None)  # import pymtcnn -> ImportError
    with pytest.raises(RunnerUnavailable, match="pymtcnn is not importable"):
        pymtcnn_runner(1)
    clock, log = FakeClock(), []
    monkeypatch.setattr(report_module, "mtcnn_runner", lambda b, t, **kw: fake_runner(b, clock, 1.0, log, threads=t))
    lines: list[str] = []
    report = bench_report(images, backends=["fast"], threads=(1, 2), repeats=1, warmup=0, say=lines.append)
    assert sum("pymtcnn not benchmarked" in line for line in lines) == 1
    assert report["pymtcnn"]["available"] is False and "not importable" in report["pymtcnn"]["reason"]
    assert set(report["runs"]) == {"1", "2"}
    assert list(report["runs"]["2"]["runners"]) == ["fast"] and report["ratios"]["1"] == {}


def test_report_json_layout(monkeypatch, images, tmp_path):
    clock, log = FakeClock(), []
    monkeypatch.setattr(report_module, "mtcnn_runner",
                        lambda b, t, **kw: fake_runner(b, clock, 1.0 if b == "ours" else 2.5, log, threads=t,
                                                       boxes=[[10, 10, 50, 50]]))
    monkeypatch.setattr(report_module, "pymtcnn_runner", lambda t, cache=None: fake_runner("pym", clock, 2.0, log, t,
                                                                                 boxes=[[10, 10, 50, 50]]))
    cpp = {name: [{"bbox": [10, 10, 50, 50], "confidence": 0.9}] for name in images}
    entries = {name: {"timing_ms": {"median_1thread": 5.0, "median_2threads": 4.0}} for name in images}
    report = bench_report(images, cpp, backends=["ours", "other"], threads=[1], repeats=2, warmup=1,
                                cpp_entries=entries, say=lambda text: None, clock=clock)
    path = write_report(report, tmp_path / "bench" / "out.json")
    data = json.loads(path.read_text())
    assert data["schema"] == BENCH_SCHEMA
    assert {"schema", "version", "created", "machine", "settings", "pymtcnn", "runs", "ratios", "parity",
            "cpp_reference_timing"} <= set(data)
    assert data["settings"]["baseline"] == "ours" and data["settings"]["frame_ids"] == list(images)
    assert data["pymtcnn"]["available"] is True
    run = data["runs"]["1"]
    assert list(run["runners"]) == ["ours", "other", "pym"]
    for result in run["runners"].values():
        assert {"kind", "threads", "frames", "sum_of_medians_ms", "median_ms", "p95_ms", "fps", "stages",
                "memory", "parity", "info", "per_frame"} <= set(result)
        assert set(result["per_frame"]) == set(images)
        assert result["parity"]["within_tolerance"] and result["parity"]["max_px_error"] == 0
    assert data["ratios"]["1"]["other/ours"]["sum_of_medians"] == pytest.approx(2.5)
    assert data["ratios"]["1"]["pym/ours"]["sum_of_medians"] == pytest.approx(2.0)
    assert data["parity"]["1"] == {"ours": 0.0, "other": 0.0, "pym": 0.0}
    assert data["cpp_reference_timing"] == {"1": {"sum_of_medians_ms": 15.0, "frames": 3},
                                            "2": {"sum_of_medians_ms": 12.0, "frames": 3}}
    assert {"during", "after"} == set(run["thread_settings"])
    assert run["thread_settings"]["during"]["opencv"] == 1


def test_real_numpy_runner_times_every_stage():
    runner = mtcnn_runner("numpy", 1, weights="zhang2016")
    image = np.random.default_rng(0).integers(0, 255, (90, 120, 3), np.uint8)
    out = bench_runners([runner], {"noise": image}, repeats=1, warmup=0)
    result = out["runners"][runner.name]
    assert result["sum_of_medians_ms"] > 0 and result["info"]["backend"] == "numpy"
    assert set(result["stages"]["stage_ms"]) <= STAGES and "pnet" in result["stages"]["stage_ms"]


def test_default_cpu_backend_is_not_a_gpu_one():
    name = default_cpu_backend()
    assert not any(mark in name for mark in GPU_MARKS)


def test_cli_bench_writes_the_report(monkeypatch, tmp_path, images, capsys):
    clock, log = FakeClock(), []
    monkeypatch.setattr(report_module, "mtcnn_runner", lambda b, t, **kw: fake_runner(b, clock, 1.0, log, threads=t))
    monkeypatch.setattr(report_module, "dev_frames", lambda limit=None, manifest=None: (
        dict(list(images.items())[:limit]), {}, {}))
    monkeypatch.setitem(sys.modules, "pymtcnn", None)
    out = tmp_path / "b.json"
    code = main(["bench", "--backend", "x", "--backend", "y", "--backend", "x", "--pymtcnn", "--threads", "1",
                 "--repeats", "1", "--limit", "2", "--out", str(out), "-q"])
    assert code == 0
    data = json.loads(out.read_text())
    assert list(data["runs"]["1"]["runners"]) == ["x", "y"] and data["settings"]["frames"] == 2
    closed = [entry[0] for entry in log if entry[1] == "closed"]
    assert sorted(closed) == ["x", "x", "y"] and log[-1][1] == "closed"  # the duplicate at once, all after timing
    printed = capsys.readouterr().out
    assert "pymtcnn not benchmarked" in printed and f"wrote {out}" in printed


@pytest.mark.parametrize("args, needle", [(["--repeats", "0"], "--repeats"), (["--threads", "0"], "--threads"),
                                          (["--limit", "0"], "--limit")])
def test_cli_bench_bad_options_are_one_line_errors(args, needle, capsys, tmp_path):
    assert main(["bench", *args, "--out", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and needle in err and len(err.strip().splitlines()) == 1


def test_script_help_runs():
    import subprocess

    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_backends.py"), "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--limit" in done.stdout


@pytest.mark.skipif(importlib.util.find_spec("pymtcnn") is None,
                    reason="pymtcnn is not installed here (only in .venv-bench: benchmarks/setup_bench_env.sh)")
def test_pymtcnn_smoke_on_two_frames():
    require_shared("reference", "cpp_mtcnn_dev.json")
    images, faces, _ = dev_frames(limit=2)
    try:
        runner = pymtcnn_runner(1)
    except RunnerUnavailable as err:
        pytest.skip(f"pymtcnn is installed but not ready: {err}")
    sessions = runner.info["onnxruntime_sessions"]
    assert {v["intra_op_num_threads"] for v in sessions.values()} == {1}
    out = bench_runners([runner], images, repeats=1, warmup=0, cpp_faces=faces)
    result = out["runners"][runner.name]
    assert set(result["stages"]["stage_ms"]) <= STAGES
    assert result["parity"]["images_same_count"] == 2 and result["parity"]["max_px_error"] < 0.01
    assert result["parity"]["max_confidence_error"] < 1e-4


def test_path_frames_takes_cpp_faces_from_the_manifest_and_times_without_them_when_it_is_missing(
        tmp_path, monkeypatch, caplog):
    sample = require_shared("samples", "sample1.jpg")
    expected = json.loads(require_shared("reference", "cpp_mtcnn_dev.json").read_text())
    images, faces, entries = report_module.path_frames([str(sample)])
    assert list(images) == [str(sample)] and images[str(sample)].shape[2] == 3
    cpp = faces[str(sample)]
    assert cpp is not None and entries[str(sample)]
    assert len(cpp) == len(expected_faces(expected, "sample1.jpg"))

    monkeypatch.setenv("MTCNN_LAB_MANIFEST", str(tmp_path / "missing.json"))
    with caplog.at_level("INFO", logger=report_module.__name__):
        images, faces, entries = report_module.path_frames([str(sample)])
    assert faces == {str(sample): None} and entries == {str(sample): {}}
    assert "no C++ faces" in caplog.text and "missing.json" in caplog.text


def expected_faces(reference: dict, name: str) -> list:
    """The C++ faces of ``name`` in ``reference/cpp_mtcnn_dev.json``, read without the lab's loader."""
    return next(entry["faces"] for entry in reference["results"] if entry["image"] == name)
